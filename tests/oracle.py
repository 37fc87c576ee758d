"""An independent test oracle: the aggregate state of docs/semantics.md, computed in DuckDB.

It shares no code with clickagg on purpose. Python checks each line against the event contract
(docs/events.md) and flags bots with the crawler-user-agents pattern list; deduplication,
sessionization, attribution and every sum are DuckDB SQL.

What it does not do, so test data must not rely on it:
* enrichment: dimension values are read from the event's own fields as sent (no channel
  derived from utm parameters or referrer, no page from the url, no campaign from
  `utm_campaign`, no device class or browser family from the user agent);
* bots that only ua-parser would call a Spider (the oracle uses the crawler pattern list only);
* capped dimensions: no value folds into `__other__`.

`unique_visitors` is the exact distinct count; Solr holds a HyperLogLog estimate of it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.resources
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

NONE_VALUE = "__none__"
RESERVED = frozenset({"__none__", "__other__"})
DAY_MS = 86_400_000
PAST_LIMIT_MS = 30 * DAY_MS
FUTURE_LIMIT_MS = 1 * DAY_MS
EVENT, VISIT = "event", "visit"
DERIVED_VISITOR_TYPE = "visitor_type"

REQUIRED_STRINGS = ("event_id", "visitor_id", "type")
OPTIONAL_STRINGS = (
    "page",
    "url",
    "referrer",
    "campaign",
    "channel",
    "offer",
    "product_category",
    "device_class",
    "browser_family",
    "country",
    "user_agent",
    "order_id",
)
#: optional fields that feed dimensions, where the reserved values are rejected
DIMENSION_FIELDS = frozenset(
    {
        "page",
        "campaign",
        "channel",
        "offer",
        "product_category",
        "device_class",
        "browser_family",
        "country",
    }
)

#: the state fields of docs/kpis.md, except the sketch, in document order
EVENT_FIELDS = (
    "events",
    "page_views",
    "product_views",
    "add_to_carts",
    "orders",
    "revenue",
    "impressions",
    "clicks",
    "entries",
    "exits",
)
VISIT_FIELDS = (
    "visits",
    "new_visits",
    "visits_with_order",
    "closed_visits",
    "bounces",
    "engaged_visits",
    "visit_duration_seconds_sum",
    "visit_page_views_sum",
    "visits_with_cart",
    "visits_with_cart_without_order",
)
STATE_FIELDS = (*EVENT_FIELDS, *VISIT_FIELDS)
#: everything a cell holds: the state fields plus the exact distinct visitor count
CELL_FIELDS = (*STATE_FIELDS, "unique_visitors")

_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))"
)
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


CellKey = tuple[str, int, tuple[str, ...]]


@dataclass
class OracleResult:
    """What the job should have written, plus the counts around it."""

    #: (cuboid name, bucket start epoch ms, dimension values) -> field -> value
    cells: dict[CellKey, dict[str, float]] = field(default_factory=dict)
    #: bucket start epoch ms -> bot events in it
    bot_events: dict[int, int] = field(default_factory=dict)
    dead_letters: int = 0
    #: valid events after deduplication, bots included
    valid_events: int = 0
    #: valid lines dropped because an earlier line had the same event_id
    duplicates: int = 0
    #: (cuboid name, bucket, values) -> the distinct visitor ids (with `with_visitors`)
    visitors: dict[CellKey, list[str]] = field(default_factory=dict)


def cuboid_name(dims: Sequence[str]) -> str:
    return "+".join(dims) if dims else "totals"


def compute(
    lines: Iterable[bytes],
    *,
    finest_granularity_s: int,
    session_timeout_s: int,
    dimensions: Mapping[str, tuple[str, str]],
    cuboids: Sequence[tuple[str, ...]],
    close_all_visits: bool = True,
    watermark_ms: int | None = None,
    max_line_bytes: int = 65536,
    now_ms: int,
    allowed_lateness_ms: int | None = None,
    deliveries: Sequence[int] | None = None,
    with_visitors: bool = False,
) -> OracleResult:
    """The expected aggregate state of `lines`, in arrival order (see module doc).

    A visit is closed when `close_all_visits` is set; otherwise when `watermark_ms` is given
    and is past its last event time plus the session timeout; otherwise never.

    With `allowed_lateness_ms`, the past limit is no longer 30 days before `now_ms`: a line is
    too late when its time is more than that before the newest valid event time among the
    lines of earlier deliveries (`deliveries[i]`: the delivery, one ingest batch, of line i,
    in delivery order; one delivery when absent); a newer line of its own delivery does not
    count. The first delivery with a valid event has no earlier one: its own newest counts.

    `with_visitors` also lists each cell's distinct visitors (to build a level's sketches).
    """
    _check_dimensions(dimensions, cuboids)
    sources = sorted({src for src, _ in dimensions.values() if src != DERIVED_VISITOR_TYPE})
    rows: dict[str, list[Any]] = {
        name: [] for name in ("seq", "event_id", "ts_ms", "visitor_id", "type", "revenue", "bot")
    }
    for src in sources:
        rows[f"f_{src}"] = []
    result = OracleResult()
    records = [
        _valid_record(
            line,
            now_ms=now_ms,
            max_line_bytes=max_line_bytes,
            past_limit=allowed_lateness_ms is None,
        )
        for line in lines
    ]
    if allowed_lateness_ms is not None:
        records = _without_too_late(records, allowed_lateness_ms, deliveries)
    for seq, record in enumerate(records):
        if record is None:
            result.dead_letters += 1
            continue
        rows["seq"].append(seq)
        rows["event_id"].append(record["event_id"])
        rows["ts_ms"].append(record["ts_ms"])
        rows["visitor_id"].append(record["visitor_id"])
        rows["type"].append(record["type"])
        rows["revenue"].append(record.get("revenue"))
        ua = record.get("user_agent")
        rows["bot"].append(ua is not None and _is_crawler(ua))
        for src in sources:
            rows[f"f_{src}"].append(record.get(src))
    schema = pa.schema(
        [
            ("seq", pa.int64()),
            ("event_id", pa.string()),
            ("ts_ms", pa.int64()),
            ("visitor_id", pa.string()),
            ("type", pa.string()),
            ("revenue", pa.float64()),
            ("bot", pa.bool_()),
            *[(f"f_{src}", pa.string()) for src in sources],
        ]
    )
    raw = pa.Table.from_pydict(rows, schema=schema)

    with _duckdb() as con:
        con.register("raw_events", raw)
        closed = _closed_sql(close_all_visits, watermark_ms, session_timeout_s * 1000)
        grains = (finest_granularity_s, session_timeout_s)
        _cells_of_raw_events(con, result, grains, dimensions, cuboids, closed, with_visitors)
    return result


@contextlib.contextmanager
def _duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB on UTC, closed after use."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def compute_native(
    files: Sequence[Path],
    *,
    finest_granularity_s: int,
    session_timeout_s: int,
    dimensions: Mapping[str, tuple[str, str]],
    cuboids: Sequence[tuple[str, ...]],
    now_ms: int,
) -> OracleResult:
    """`compute`'s cells (all visits closed) with DuckDB reading the files itself: JSON
    parsed and checked in SQL, no Python per line (bots judged once per distinct user
    agent). A reference for the engine's speed, not an oracle: its checks are looser than
    `_valid_record`'s (no duplicate-key, UTF-8 or reserved-value checks; ISO times as
    DuckDB casts them)."""
    _check_dimensions(dimensions, cuboids)
    sources = sorted({src for src, _ in dimensions.values() if src != DERIVED_VISITOR_TYPE})
    result = OracleResult()
    with _duckdb() as con:
        listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
        # Each line is parsed three times (its type, its fields' types, their values), not
        # once per field: DuckDB's JSON functions take a list of paths.
        names = ("ts", "revenue", *REQUIRED_STRINGS, *OPTIONAL_STRINGS)
        paths = ", ".join(f"'$.{n}'" for n in names)
        con.execute(
            f"""
            CREATE TABLE lines AS
            SELECT seq, json_type(json) AS kind, json_type(json, [{paths}]) AS t,
                json_extract_string(json, [{paths}]) AS v
            FROM (
                SELECT row_number() OVER () AS seq, json
                FROM read_ndjson_objects([{listed}], ignore_errors = true)
            )
            """  # noqa: S608 - the benchmark's own paths and this module's names
        )
        at = {n: i + 1 for i, n in enumerate(names)}  # DuckDB lists count from 1

        def value(n: str) -> str:
            return f"v[{at[n]}]"

        def kind(n: str) -> str:
            return f"coalesce(t[{at[n]}], 'NULL')"

        ts = f"""CASE WHEN {kind("ts")} IN ('BIGINT', 'UBIGINT') THEN {value("ts")}::BIGINT
                     WHEN {kind("ts")} = 'VARCHAR'
                     THEN epoch_ms(try_cast({value("ts")} AS TIMESTAMPTZ)) END"""
        optional = "".join(f", nullif(trim({value(src)}), '') AS f_{src}" for src in sources)
        required = " AND ".join(
            [
                *(f"{kind(n)} = 'VARCHAR' AND trim({value(n)}) <> ''" for n in REQUIRED_STRINGS),
                *(f"{kind(n)} IN ('VARCHAR', 'NULL')" for n in OPTIONAL_STRINGS),
                *(
                    f"coalesce({value(n)}, '') NOT IN ('{NONE_VALUE}', '__other__')"
                    for n in sorted(DIMENSION_FIELDS)
                ),
                f"{kind('revenue')} IN ('NULL', 'BIGINT', 'UBIGINT', 'DOUBLE')",
            ]
        )
        con.execute(
            f"""
            CREATE TABLE checked AS
            SELECT seq, {value("event_id")} AS event_id, {ts} AS ts_ms,
                {value("visitor_id")} AS visitor_id, {value("type")} AS type,
                try_cast({value("revenue")} AS DOUBLE) AS revenue,
                {value("user_agent")} AS user_agent{optional}
            FROM lines
            WHERE kind = 'OBJECT' AND {required}
            """  # noqa: S608 - field names from this module
        )
        limits = f"ts_ms BETWEEN {now_ms - PAST_LIMIT_MS} AND {now_ms + FUTURE_LIMIT_MS}"
        agents = [r[0] for r in con.execute("SELECT DISTINCT user_agent FROM checked").fetchall()]
        bots = pa.table(
            {
                "user_agent": pa.array(agents, pa.string()),
                "is_bot": pa.array([a is not None and _is_crawler(a) for a in agents]),
            }
        )
        con.register("bots", bots)
        con.execute(
            f"""
            CREATE TABLE raw_events AS
            SELECT c.* EXCLUDE (user_agent), b.is_bot AS bot
            FROM checked c JOIN bots b ON b.user_agent IS NOT DISTINCT FROM c.user_agent
            WHERE {limits} AND (revenue IS NULL OR (isfinite(revenue) AND revenue >= 0))
            """  # noqa: S608 - integers only
        )
        result.dead_letters = _scalar(con, "SELECT count(*) FROM lines") - _scalar(
            con, "SELECT count(*) FROM raw_events"
        )
        every_visit_closed = _closed_sql(True, None, session_timeout_s * 1000)
        grains = (finest_granularity_s, session_timeout_s)
        _cells_of_raw_events(con, result, grains, dimensions, cuboids, every_visit_closed, False)
    return result


def _cells_of_raw_events(
    con: duckdb.DuckDBPyConnection,
    result: OracleResult,
    grains: tuple[int, int],
    dimensions: Mapping[str, tuple[str, str]],
    cuboids: Sequence[tuple[str, ...]],
    closed_sql: str,
    with_visitors: bool,
) -> None:
    """The SQL part: the table `raw_events` → `result`'s counts and cells; `grains` are the
    finest granularity and the session timeout, in seconds."""
    finest_granularity_s, session_timeout_s = grains
    _build_tables(
        con,
        granularity_ms=finest_granularity_s * 1000,
        timeout_ms=session_timeout_s * 1000,
        closed_sql=closed_sql,
    )
    valid_lines = _scalar(con, "SELECT count(*) FROM raw_events")
    result.valid_events = _scalar(con, "SELECT count(*) FROM deduped")
    result.duplicates = valid_lines - result.valid_events
    result.bot_events = dict(
        con.execute(
            "SELECT bucket, count(*) FROM deduped WHERE bot GROUP BY bucket ORDER BY bucket"
        ).fetchall()
    )
    for dims in cuboids:
        found, visitors = _cuboid_cells(con, dims, dimensions, with_visitors)
        result.cells.update(found)
        result.visitors.update(visitors)


# ---------------------------------------------------------------------------------- SQL part


def _build_tables(
    con: duckdb.DuckDBPyConnection, *, granularity_ms: int, timeout_ms: int, closed_sql: str
) -> None:
    # The first line to arrive with an event_id wins; bots are valid events, counted apart.
    con.execute(
        f"""
        CREATE TABLE deduped AS
        SELECT * EXCLUDE (arrival), ts_ms - (ts_ms % {granularity_ms}) AS bucket
        FROM (
            SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY seq) AS arrival
            FROM raw_events
        )
        WHERE arrival = 1
        """  # noqa: S608 - integers only
    )
    # Visits: a gap strictly longer than the timeout starts a new one.
    con.execute(
        f"""
        CREATE TABLE sessionized AS
        WITH gaps AS (
            SELECT *,
                CASE WHEN lag(ts_ms) OVER w IS NULL OR ts_ms - lag(ts_ms) OVER w > {timeout_ms}
                     THEN 1 ELSE 0 END AS starts_visit
            FROM deduped
            WHERE NOT bot
            WINDOW w AS (PARTITION BY visitor_id ORDER BY ts_ms, event_id)
        )
        SELECT *,
            sum(starts_visit) OVER (
                PARTITION BY visitor_id ORDER BY ts_ms, event_id
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS visit_no
        FROM gaps
        """  # noqa: S608 - integers only
    )
    con.execute(
        f"""
        CREATE TABLE visits AS
        SELECT *, {closed_sql} AS closed
        FROM (
            SELECT visitor_id, visit_no,
                min(ts_ms) AS first_ts,
                max(ts_ms) AS last_ts,
                count(*) FILTER (WHERE type = 'page_view') AS page_views,
                count(*) FILTER (WHERE type = 'order') > 0 AS has_order,
                count(*) FILTER (WHERE type = 'add_to_cart') > 0 AS has_cart,
                CASE WHEN visit_no = 1 THEN 'new' ELSE 'returning' END AS visitor_type
            FROM sessionized
            GROUP BY visitor_id, visit_no
        )
        """  # noqa: S608 - integers only
    )
    # One row per counted event with its contribution to every state field. Visit-level
    # fields ride on the visit's first event, whose cell is the visit's attribution.
    con.execute(
        """
        CREATE TABLE contributions AS
        WITH ranked AS (
            SELECT s.*,
                row_number() OVER v = 1 AS is_first_event,
                CASE WHEN s.type = 'page_view' THEN
                    row_number() OVER (PARTITION BY s.visitor_id, s.visit_no, s.type
                                       ORDER BY s.ts_ms, s.event_id) = 1
                    ELSE FALSE END AS is_first_page_view,
                CASE WHEN s.type = 'page_view' THEN
                    row_number() OVER (PARTITION BY s.visitor_id, s.visit_no, s.type
                                       ORDER BY s.ts_ms DESC, s.event_id DESC) = 1
                    ELSE FALSE END AS is_last_page_view
            FROM sessionized s
            WINDOW v AS (PARTITION BY s.visitor_id, s.visit_no ORDER BY s.ts_ms, s.event_id)
        )
        SELECT r.*, vi.visitor_type, vi.closed,
            1 AS events,
            (r.type = 'page_view')::INT AS page_views,
            (r.type = 'product_view')::INT AS product_views,
            (r.type = 'add_to_cart')::INT AS add_to_carts,
            (r.type = 'order')::INT AS orders,
            CASE WHEN r.type = 'order' THEN coalesce(r.revenue, 0.0) ELSE 0.0 END AS revenue_sum,
            (r.type = 'impression')::INT AS impressions,
            (r.type = 'click')::INT AS clicks,
            r.is_first_page_view::INT AS entries,
            (r.is_last_page_view AND vi.closed)::INT AS exits,
            r.is_first_event::INT AS visits,
            (r.is_first_event AND vi.visit_no = 1)::INT AS new_visits,
            (r.is_first_event AND vi.has_order)::INT AS visits_with_order,
            (r.is_first_event AND vi.closed)::INT AS closed_visits,
            (r.is_first_event AND vi.closed AND vi.page_views = 1)::INT AS bounces,
            (r.is_first_event AND vi.closed AND (
                vi.last_ts - vi.first_ts >= 10000 OR vi.page_views >= 2 OR vi.has_order
            ))::INT AS engaged_visits,
            CASE WHEN r.is_first_event AND vi.closed
                 THEN (vi.last_ts - vi.first_ts) / 1000.0 ELSE 0.0 END
                AS visit_duration_seconds_sum,
            CASE WHEN r.is_first_event AND vi.closed THEN vi.page_views ELSE 0 END
                AS visit_page_views_sum,
            (r.is_first_event AND vi.closed AND vi.has_cart)::INT AS visits_with_cart,
            (r.is_first_event AND vi.closed AND vi.has_cart AND NOT vi.has_order)::INT
                AS visits_with_cart_without_order
        FROM ranked r
        JOIN visits vi USING (visitor_id, visit_no)
        """
    )
    # The visit's first event, for the visit-scoped dimension values.
    con.execute(
        """
        CREATE TABLE first_events AS
        SELECT * FROM contributions WHERE is_first_event
        """
    )


def _closed_sql(close_all: bool, watermark_ms: int | None, timeout_ms: int) -> str:
    if close_all:
        return "TRUE"
    if watermark_ms is None:
        return "FALSE"
    return f"last_ts + {int(timeout_ms)} < {int(watermark_ms)}"


def _cuboid_cells(
    con: duckdb.DuckDBPyConnection,
    dims: tuple[str, ...],
    dimensions: Mapping[str, tuple[str, str]],
    with_visitors: bool,
) -> tuple[dict[CellKey, dict[str, float]], dict[CellKey, list[str]]]:
    dim_sql = []
    for name in dims:
        src, scope = dimensions[name]
        if src == DERIVED_VISITOR_TYPE:
            dim_sql.append("c.visitor_type")
        elif scope == EVENT:
            dim_sql.append(f"coalesce(c.f_{src}, '{NONE_VALUE}')")
        else:
            dim_sql.append(f"coalesce(fe.f_{src}, '{NONE_VALUE}')")
    sums = [
        f"sum(c.{'revenue_sum' if name == 'revenue' else name})::DOUBLE" for name in STATE_FIELDS
    ]
    distinct = ["list(DISTINCT c.visitor_id)"] if with_visitors else []
    select = ", ".join(
        ["c.bucket", *dim_sql, *sums, "count(DISTINCT c.visitor_id)::DOUBLE", *distinct]
    )
    group = ", ".join(["c.bucket", *dim_sql])
    query = (
        f"SELECT {select} FROM contributions c "  # noqa: S608 - checked identifiers only
        "JOIN first_events fe ON fe.visitor_id = c.visitor_id AND fe.visit_no = c.visit_no "
        f"GROUP BY {group}"
    )
    cells: dict[CellKey, dict[str, float]] = {}
    visitors: dict[CellKey, list[str]] = {}
    name = cuboid_name(dims)
    width = len(dims)
    for row in con.execute(query).fetchall():
        key = (name, int(row[0]), tuple(row[1 : 1 + width]))
        state = row[1 + width : 1 + width + len(CELL_FIELDS)]
        cells[key] = dict(zip(CELL_FIELDS, (float(v) for v in state), strict=True))
        if with_visitors:
            visitors[key] = list(row[-1])
    return cells, visitors


def _scalar(con: duckdb.DuckDBPyConnection, query: str) -> int:
    row = con.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def _check_dimensions(
    dimensions: Mapping[str, tuple[str, str]], cuboids: Sequence[tuple[str, ...]]
) -> None:
    for name, (src, scope) in dimensions.items():
        if src != DERIVED_VISITOR_TYPE and src not in OPTIONAL_STRINGS:
            raise ValueError(f"dimension {name!r}: unknown source field {src!r}")
        if scope not in (EVENT, VISIT):
            raise ValueError(f"dimension {name!r}: scope must be 'event' or 'visit'")
    for dims in cuboids:
        for name in dims:
            if name not in dimensions:
                raise ValueError(f"cuboid {dims!r}: unknown dimension {name!r}")


# --------------------------------------------------------------------------- validation part


class _Invalid(Exception):
    pass


def _without_too_late(
    records: Sequence[dict[str, Any] | None],
    allowed_lateness_ms: int,
    deliveries: Sequence[int] | None,
) -> list[dict[str, Any] | None]:
    """Records later than the allowed lateness behind the newest event of the deliveries
    before theirs (the first with an event: its own) become None (dead letters)."""
    delivery_of = list(deliveries) if deliveries is not None else [0] * len(records)
    newest_in: dict[int, int] = {}
    for record, delivery in zip(records, delivery_of, strict=True):
        if record is not None:
            newest_in[delivery] = max(newest_in.get(delivery, record["ts_ms"]), record["ts_ms"])
    newest_before: dict[int, int | None] = {}
    running: int | None = None
    for delivery in sorted(set(delivery_of)):
        newest_before[delivery] = running if running is not None else newest_in.get(delivery)
        if delivery in newest_in:
            running = newest_in[delivery] if running is None else max(running, newest_in[delivery])

    def too_late(record: dict[str, Any], delivery: int) -> bool:
        newest = newest_before[delivery]
        return newest is not None and record["ts_ms"] < newest - allowed_lateness_ms

    return [
        None if record is None or too_late(record, delivery) else record
        for record, delivery in zip(records, delivery_of, strict=True)
    ]


def _valid_record(
    line: bytes, *, now_ms: int, max_line_bytes: int, past_limit: bool = True
) -> dict[str, Any] | None:
    """The checked fields of a valid line (blank optional strings dropped), or None."""
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    if len(line) > max_line_bytes:
        return None
    try:
        text = line.decode("utf-8", errors="strict")
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, _Invalid):  # JSONDecodeError is a ValueError
        return None
    if not isinstance(obj, dict):
        return None
    out: dict[str, Any] = {}
    for name in REQUIRED_STRINGS:
        value = obj.get(name)
        if not isinstance(value, str) or value.strip() == "":
            return None
        out[name] = value
    ts = _ts_ms(obj.get("ts"))
    too_old = past_limit and ts is not None and ts < now_ms - PAST_LIMIT_MS
    if ts is None or ts < 0 or too_old or ts > now_ms + FUTURE_LIMIT_MS:
        return None
    out["ts_ms"] = ts
    for name in OPTIONAL_STRINGS:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return None
        if value.strip() == "":
            continue  # blank means no value
        if name in DIMENSION_FIELDS and value in RESERVED:
            return None
        out[name] = value
    revenue = obj.get("revenue")
    if revenue is not None:
        if type(revenue) not in (int, float) or not _finite(revenue) or revenue < 0:
            return None
        out["revenue"] = float(revenue)
    return out


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer too large for a float
        return False


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _Invalid
    return dict(pairs)


def _no_constant(_: str) -> None:
    raise _Invalid  # NaN, Infinity, -Infinity are no JSON numbers


def _ts_ms(value: Any) -> int | None:
    # JSON has one number type; a whole float such as 1455616800000.0 is an integer too.
    if type(value) is int:
        return value
    if type(value) is float:
        return int(value) if value.is_integer() else None
    if not isinstance(value, str):
        return None
    m = _ISO.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = m.groups()
    try:
        offset = dt.timedelta(hours=int(off_h), minutes=int(off_m)) if not zulu else dt.timedelta()
        if sign == "-":
            offset = -offset
        moment = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=dt.timezone(offset),
        )
    except ValueError:
        return None
    whole_seconds = (moment - _UNIX_EPOCH) // dt.timedelta(seconds=1)
    millis = int((frac or "").ljust(3, "0")[:3])  # digits beyond milliseconds are cut off
    return whole_seconds * 1000 + millis


# ------------------------------------------------------------------------------------- bots


@functools.cache
def _crawler_patterns() -> tuple[re.Pattern[str], ...]:
    data = importlib.resources.files("crawleruseragents").joinpath("crawler-user-agents.json")
    return tuple(re.compile(entry["pattern"]) for entry in json.loads(data.read_text("utf-8")))


@functools.lru_cache(maxsize=65536)
def _is_crawler(user_agent: str) -> bool:
    return any(pattern.search(user_agent) for pattern in _crawler_patterns())
