"""Parsing and enrichment with the per-line work in the JVM.

`spark.clickagg.parser` chooses how the ingest turns lines into archive rows: `python` (the
default: `parse.parse_batches` and `parse.mark_too_late` through mapInArrow, one Python call
per line) or `jvm`. Both give the same rows; tests/spark/test_jvm_parser.py proves it over
valid and hostile lines, one per dead-letter reason. The JVM path is not the default: it moves
the parsing out of Python, but its joins and lookups cost a fixed amount per batch; it was
1.35x cheaper on a 300k-line batch and dearer on 100k lines (docs/benchmarks.md,
2026-11-30 23:06).

The JVM path:
1. `io.clickagg.events.EventParser` (src/clickagg/pipeline/sessionizer_jvm, Jackson) accepts
   the lines that certainly keep the contract of `domain/events.py` and marks every other
   line `deferred`; Python's `parse.parse_numbered` gives those their event or dead-letter
   reason, so every reason is Python's. Bad lines are few; a batch of only bad lines parses
   at Python's speed, and correctly.
2. Enrichment runs in Python once per distinct user agent and per distinct (url, referrer)
   of the batch (`domain/enrich.py`, the same functions), joined back to the events: user
   agents and landing urls repeat a lot, lines never do.
3. `too_late` marking is column arithmetic over the reason's text from `domain/events.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from clickagg import errors
from clickagg.domain import dimensions, enrich, events
from clickagg.pipeline import archive, jvm_sessionizer, parse

CONF = "spark.clickagg.parser"
JVM = "jvm"
PYTHON = "python"
_CLASS = "io.clickagg.events.EventParser"
_TIME_ZONE = "spark.sql.session.timeZone"
_AGENTS = pa.schema(
    [
        pa.field("user_agent", pa.string()),
        pa.field("agent_device_class", pa.string()),
        pa.field("agent_browser_family", pa.string()),
        pa.field("agent_bot", pa.bool_()),
    ]
)
_LINKS = pa.schema(
    [
        pa.field("url", pa.string()),
        pa.field("referrer", pa.string()),
        pa.field("link_channel", pa.string()),
        pa.field("link_campaign", pa.string()),
        pa.field("link_page", pa.string()),
    ]
)


def chosen(spark: SparkSession) -> str:
    """Which parser the ingest runs, from the Spark setting `spark.clickagg.parser`."""
    value = str(spark.conf.get(CONF, PYTHON)).strip().lower()
    if value not in (JVM, PYTHON):
        raise errors.JobSetupError(f"{CONF} is {value!r}: expected {JVM!r} or {PYTHON!r}")
    return value


@contextlib.contextmanager
def parsed(lines: DataFrame, settings: parse.ParseSettings) -> Iterator[DataFrame]:
    """`lines` (`parse.LINE_COLUMNS`) as archive rows before `too_late` marking, cached
    while the block runs (the ingest reads them three times; the JVM path caches what it
    would compute twice)."""
    spark = lines.sparkSession
    cached: list[DataFrame] = []
    try:
        if chosen(spark) == PYTHON:
            schema = archive.spark_schema()
            frame = lines.mapInArrow(lambda b: parse.parse_batches(b, settings), schema)
            cached.append(frame.persist())
        else:
            # Only the parser's output and the small lookup tables are cached: the joins
            # and the few deferred lines cost less again than caching the batch twice (the
            # in-memory columnar cache was a third of the ingest's JVM time).
            frame = _jvm_parsed(lines, settings, cached)
        yield frame
    finally:
        for frame in cached:
            frame.unpersist()


def marked(
    parsed_rows: DataFrame,
    window: events.TimeWindow,
    reference_ms: int | None,
    newest_ms: int | None,
) -> DataFrame:
    """`parse.mark_too_late` for the chosen parser: the same rows out."""
    if chosen(parsed_rows.sparkSession) == PYTHON:
        schema = archive.spark_schema()
        return parsed_rows.mapInArrow(
            lambda b: parse.mark_too_late(b, window, reference_ms, newest_ms), schema
        )
    limit = events.too_late_limit(window, reference_ms)
    late = F.lit(False)
    reason: Column = F.col("reason")
    if limit is not None and reference_ms is not None and window.max_past_ms is not None:
        late = (F.col("kind") == archive.EVENT) & (F.col("ts_ms") < F.lit(limit))
        before, after = events.too_late_frame(window.max_past_ms, reference_ms)
        reason = F.when(late, F.concat(F.lit(before), _iso("ts_ms"), F.lit(after))).otherwise(
            reason
        )
    blanked = {
        name: F.when(late, F.lit(None)).otherwise(F.col(name))
        for name in (*archive.STRINGS, "revenue", "ts_ms", "bot")
    }
    arrival = F.timestamp_millis("arrival_ms")
    changed = {
        **blanked,
        "reason": reason,
        "raw": F.when(late | (F.col("kind") == archive.DEAD_LETTER), F.col("raw")),
        "kind": F.when(late, F.lit(archive.DEAD_LETTER)).otherwise(F.col("kind")),
        "date": F.when(late, F.date_format(arrival, "yyyy-MM-dd")).otherwise(F.col("date")),
        "hour": F.when(late, F.hour(arrival)).otherwise(F.col("hour")),
        "arrival_newest_ms": F.lit(newest_ms).cast("bigint"),
    }
    return parsed_rows.select(
        *(
            changed[f.name].cast(f.dataType).alias(f.name) if f.name in changed else F.col(f.name)
            for f in archive.spark_schema().fields
        )
    )


def config_text(settings: parse.ParseSettings) -> str:
    """The JVM parser's configuration: tab-separated lines, read by EventParser.Config."""
    lines: list[tuple[object, ...]] = [
        ("max_line_bytes", events.MAX_LINE_BYTES),
        ("raw_kept_bytes", parse.RAW_KEPT_BYTES),
        ("max_future_ms", settings.max_future_ms),
        ("max_integer_digits", events.MAX_INTEGER_DIGITS),
        ("strings", *archive.STRINGS),
        ("required", *(name for name in events.REQUIRED_FIELDS if name != "ts")),
        ("dimension_value_fields", *sorted(events.DIMENSION_VALUE_FIELDS)),
        ("reserved", *sorted(dimensions.RESERVED_VALUES)),
    ]
    return "\n".join("\t".join(str(part) for part in line) for line in lines)


def _jvm_parsed(
    lines: DataFrame, settings: parse.ParseSettings, cached: list[DataFrame]
) -> DataFrame:
    spark = lines.sparkSession
    if str(spark.conf.get(_TIME_ZONE)) != "UTC":
        raise errors.JobSetupError(
            f"the JVM parser writes dates in the session's time zone: set {_TIME_ZONE}=UTC "
            f"(it is {spark.conf.get(_TIME_ZONE)!r}), or set {CONF}={PYTHON}"
        )
    jdf = _parser(spark).parse(lines.select(*parse.LINE_COLUMNS)._jdf, config_text(settings))
    rows = DataFrame(jdf, spark)
    cached.append(rows.persist())
    accepted = _enriched(rows.where(~F.col("deferred")), settings, cached)
    schema = archive.spark_schema()
    deferred = (
        rows.where(F.col("deferred"))
        .select(F.col("raw").alias("value"), "arrival_source", "arrival_offset")
        .mapInArrow(lambda b: parse.parse_numbered(b, settings), schema)
    )
    return accepted.unionByName(deferred)


def _enriched(
    accepted: DataFrame, settings: parse.ParseSettings, cached: list[DataFrame]
) -> DataFrame:
    """Accepted events → archive rows, enriched through per-batch lookup tables."""
    agents = (
        accepted.where(F.col("user_agent").isNotNull())
        .select("user_agent")
        .distinct()
        .mapInArrow(_classify_agents, from_arrow_schema(_AGENTS))
    )
    missing = F.col("channel").isNull() | F.col("campaign").isNull() | F.col("page").isNull()
    links = (
        accepted.where(missing)
        .select("url", "referrer")
        .distinct()
        .mapInArrow(_link_facts, from_arrow_schema(_LINKS))
        .withColumnsRenamed({"url": "link_url", "referrer": "link_referrer"})
    )
    cached.extend((agents.persist(), links.persist()))
    joined = accepted.join(F.broadcast(agents), "user_agent", "left").join(
        F.broadcast(links),
        F.col("url").eqNullSafe(F.col("link_url"))
        & F.col("referrer").eqNullSafe(F.col("link_referrer")),
        "left",
    )
    derived = {
        "channel": F.coalesce("channel", "link_channel"),
        "campaign": F.coalesce("campaign", "link_campaign"),
        "page": F.coalesce("page", "link_page"),
        "device_class": F.coalesce("device_class", "agent_device_class"),
        "browser_family": F.coalesce("browser_family", "agent_browser_family"),
        "bot": F.coalesce("agent_bot", F.lit(False)),
        "reason": F.lit(None),
        "arrival_ms": F.lit(settings.arrival_ms),
        "arrival_newest_ms": F.lit(None),
        "kind": F.lit(archive.EVENT),
        "arrival_batch": F.lit(settings.arrival_batch),
    }
    return joined.select(
        *(
            (derived[f.name] if f.name in derived else F.col(f.name)).cast(f.dataType).alias(f.name)
            for f in archive.spark_schema().fields
        )
    )


def _classify_agents(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        agents = batch.column("user_agent").to_pylist()
        classes = [enrich.classify_user_agent(agent) for agent in agents]
        yield pa.RecordBatch.from_pydict(
            {
                "user_agent": agents,
                "agent_device_class": [c.device_class for c in classes],
                "agent_browser_family": [c.browser_family for c in classes],
                "agent_bot": [c.is_bot for c in classes],
            },
            schema=_AGENTS,
        )


def _link_facts(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        urls = batch.column("url").to_pylist()
        referrers = batch.column("referrer").to_pylist()
        facts = [enrich.link_facts(u, r) for u, r in zip(urls, referrers, strict=True)]
        yield pa.RecordBatch.from_pydict(
            {
                "url": urls,
                "referrer": referrers,
                "link_channel": [f.channel for f in facts],
                "link_campaign": [f.campaign for f in facts],
                "link_page": [f.page for f in facts],
            },
            schema=_LINKS,
        )


def _iso(column: str) -> Column:
    """`events._iso` of epoch milliseconds, in a UTC session."""
    return F.date_format(F.timestamp_millis(column), "yyyy-MM-dd'T'HH:mm:ss'Z'")


def _parser(spark: SparkSession) -> Any:
    return jvm_sessionizer.jvm_class(spark, _CLASS, f"the JVM parser ({_CLASS})", CONF, PYTHON)
