"""The JVM parser against its specification, the Python parser: the same archive rows.

One Spark batch of lines goes through both ingest paths (`spark.clickagg.parser` python and
jvm: parse, enrich, `too_late` marking, the archive write) and every line must give the same
archived row, field for field: the same event, or the same dead letter with the same reason;
the batch's report (counts, newest event time) must be the same too. The lines: generated
shop traffic (bots and broken lines included), tests/hostile.py's lines and near-valid
events, edge cases of the JVM's fast path, and one line per dead-letter reason of
domain/events.py; the test checks that every reason the code can give was given.
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

import hostile
from clickagg import sim
from clickagg.domain import events
from clickagg.pipeline import archive, jvm_parse, parse, stream

pytestmark = pytest.mark.spark

NOW_MS = hostile.NOW_MS
DAY_MS = 86_400_000
#: The batches before had events up to here: lines a day older than this are too late.
NEWEST_BEFORE_MS = NOW_MS
WINDOW = events.TimeWindow(max_past_ms=DAY_MS)
_EVENT = '"event_id":"e","visitor_id":"v","type":"page_view"'


def _line(fields: str, ts: str = str(NOW_MS)) -> bytes:
    return ("{" + _EVENT + ',"ts":' + ts + (("," + fields) if fields else "") + "}").encode()


#: One line per place in domain/events.py that raises a reason (the test counts them), and
#: the too_late marking: the reason it must give.
REASONS: dict[str, tuple[bytes, str]] = {
    "size": (b'{"x":"' + b"y" * events.MAX_LINE_BYTES + b'"}', r"^line is \d+ bytes"),
    "utf-8": (b'{"event_id":"\xff"}', r"^line is not valid UTF-8"),
    "empty": (b"  ", r"^line is empty$"),
    "json": (b'{"event_id":', r"^malformed JSON at column \d+"),
    "depth": (b"[" * 60_000, r"^malformed JSON: nested too deeply$"),
    "object": (b"[1]", r"^expected a JSON object"),
    "duplicate": (_line('"page":"/","page":"/a"'), r"appears more than once$"),
    "constant": (_line("", ts="NaN"), r"is not a JSON number$"),
    "digits": (_line('"x":' + "1" * 101), r"an integer of 101 digits"),
    "missing": (b'{"ts":1,"visitor_id":"v","type":"t"}', r"^field 'event_id': required but"),
    "blank": (_line("").replace(b'"v"', b'" "'), r"^field 'visitor_id': expected a non-empty"),
    "surrogate": (_line('"page":"\\ud800"'), r"^field 'page': .* not valid Unicode"),
    "required surrogate": (
        _line("").replace(b'"v"', b'"\\udc00"'),
        r"^field 'visitor_id': .* not valid Unicode",
    ),
    "not a string": (_line('"page":1'), r"^field 'page': expected a string"),
    "reserved": (_line('"channel":"__other__"'), r"is reserved for the pipeline$"),
    "revenue": (_line('"revenue":-1'), r"^field 'revenue': expected a number >= 0"),
    "ts missing": (b'{"event_id":"e","visitor_id":"v","type":"t"}', r"^field 'ts': required"),
    "ts before 1970": (_line("", ts="-5"), r"^field 'ts': the number -5 is before 1970$"),
    "ts future": (_line("", ts="99999999999999"), r"^field 'ts': .* after now"),
    "ts type": (_line("", ts="true"), r"^field 'ts': expected ISO 8601"),
    "ts invalid": (_line("", ts='"2016-02-30T10:00:00Z"'), r"^field 'ts': .* is no valid time"),
    "too late": (_line("", ts=str(NOW_MS - 2 * DAY_MS)), r"^too_late: field 'ts': "),
}
#: Lines the JVM accepts, at the edges of what it accepts.
EDGES = [
    _line('"page":"   ","url":"https://shop.example/a?utm_campaign=c&utm_medium=cpc"'),
    _line('"revenue":0', ts='"2016-02-16T10:00:00.123456789+0100"'),
    _line('"revenue":-0.0,"referrer":"https://www.google.com/"', ts='"2016-02-16t09:00:00z"'),
    _line('"revenue":12.5e1,"x":[1,{"a":1}]', ts='"2016-02-16T10:00:00-00:30"'),
    _line('"user_agent":"Googlebot/2.1 (+http://www.google.com/bot.html)","x":null'),
    _line('"page":"\\u00e9\\ud83d\\ude00","country":"\\u00a0"'),
    _line('"offer":"__missing__","revenue":1e-320'),
    _line("", ts="1455616800000.0"),
    _line("", ts="0"),
    b" " + _line("") + b" ",
]


def test_jvm_parser_gives_the_python_parsers_rows(spark: Any, tmp_path: Path) -> None:
    corpus = [
        *(line for line, _ in REASONS.values()),
        *EDGES,
        *hostile.LINES.values(),
        *_near_valid(100),
        *_traffic(300),
    ]
    written = {
        path: _archived(spark, corpus, path, tmp_path / path)
        for path in (jvm_parse.PYTHON, jvm_parse.JVM)
    }
    rows = {path: found for path, (found, _) in written.items()}

    assert len(rows[jvm_parse.JVM]) == len(corpus)
    for offset, (python_row, jvm_row) in enumerate(
        zip(rows[jvm_parse.PYTHON], rows[jvm_parse.JVM], strict=True)
    ):
        assert jvm_row == python_row, f"line {offset}: {corpus[offset][:200]!r}"
    assert written[jvm_parse.JVM][1] == written[jvm_parse.PYTHON][1]

    reasons = [row["reason"] for row in rows[jvm_parse.JVM][: len(REASONS)]]
    for (name, (_, pattern)), reason in zip(REASONS.items(), reasons, strict=True):
        assert reason is not None and re.search(pattern, reason), f"{name}: {reason!r}"
    # Every raise in the contract has its line here (the too_late raise is the marking's).
    raises = Path(events.__file__).read_text().count("errors.EventContractError(")
    assert len(REASONS) - 1 == raises


def test_a_batch_of_mostly_bad_lines_is_pythons(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond the deferred lines the driver parses itself, the batch takes the Python path:
    the same rows, from one path only (the JVM wrote nothing)."""
    corpus = [line for line, _ in REASONS.values()] + _traffic(20)
    expected, report = _archived(spark, corpus, jvm_parse.PYTHON, tmp_path / "python")
    monkeypatch.setattr(jvm_parse, "DEFERRED_KEPT_LINES", 3)
    assert _archived(spark, corpus, jvm_parse.JVM, tmp_path / "jvm") == (expected, report)


def test_the_jvm_accepts_valid_traffic_itself(spark: Any) -> None:
    """The fast path is the common path: Python sees only the lines it must judge."""
    lines = [line for line in _traffic(400) if b"bench" not in line]
    frame = _lines_frame(spark, lines)
    settings = parse.ParseSettings(arrival_batch=0, arrival_ms=NOW_MS)
    survey = jvm_parse._class(spark, "io.clickagg.events.EventParser").survey(
        frame._jdf, jvm_parse.config_text(settings, int(time.time() * 1000))
    )
    from pyspark.sql import DataFrame

    deferred = DataFrame(survey, spark).where("kind = 'deferred'").count()
    python = [parse.parse_batches(iter([_arrow(lines)]), settings)]
    dead = sum(b.column("kind").to_pylist().count(archive.DEAD_LETTER) for b in python[0])
    assert deferred == dead


def _archived(
    spark: Any, corpus: list[bytes], path: str, root: Path
) -> tuple[list[dict[str, Any]], archive.IngestReport]:
    """The archive rows `stream.write_archive` wrote for `corpus` with the parser `path`, in
    line order, and its report."""
    frame = _lines_frame(spark, corpus)
    settings = parse.ParseSettings(arrival_batch=7, arrival_ms=NOW_MS + 5000)
    paths = archive.JobPaths(str(root))
    spark.conf.set(jvm_parse.CONF, path)
    try:
        report = stream.write_archive(frame, settings, WINDOW, paths, NEWEST_BEFORE_MS)
    finally:
        spark.conf.unset(jvm_parse.CONF)
    table = spark.read.schema(archive.spark_schema()).parquet(paths.archive)
    found = [_without_clock(row.asDict()) for row in table.collect()]
    return sorted(found, key=lambda row: row["arrival_offset"]), report


def _without_clock(row: dict[str, Any]) -> dict[str, Any]:
    """The future limit's reason names the clock, read by each path at its own moment."""
    if row["reason"]:
        row["reason"] = re.sub(r"after now \(.*\)$", "after now (the clock)", row["reason"])
    return row


def _lines_frame(spark: Any, lines: list[bytes]) -> Any:
    from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType

    schema = StructType(
        [
            StructField("value", BinaryType()),
            StructField("arrival_source", StringType()),
            StructField("arrival_split", LongType()),
        ]
    )
    return spark.createDataFrame([(line, "f", 0) for line in lines], schema).coalesce(1)


def _arrow(lines: list[bytes]) -> Any:
    import pyarrow as pa

    return pa.RecordBatch.from_pydict(
        {"value": lines, "arrival_source": ["f"] * len(lines), "arrival_split": [0] * len(lines)}
    )


def _near_valid(count: int) -> list[bytes]:
    drawn: list[bytes] = []

    @settings(max_examples=count, database=None)
    @given(hostile.near_valid_lines())
    def draw(line: bytes) -> None:
        drawn.append(line)

    draw()
    return drawn


def _traffic(count: int) -> list[bytes]:
    end_ms = (int(time.time() * 1000) // 3_600_000) * 3_600_000
    emitted = sim.generate(
        sim.TrafficProfile(visitors=60), sim.Faults(), end_ms - 3_600_000, 3_600_000, seed=5
    )
    return [item.line for item in itertools.islice(emitted, count)]
