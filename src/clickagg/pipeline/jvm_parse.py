"""Parsing and enrichment with the per-line work in the JVM.

`spark.clickagg.parser` chooses how the ingest turns lines into archive rows: `jvm` (the
default, below) or `python` (`parse.parse_batches` and `parse.mark_too_late` through
mapInArrow, one Python call per line, in `stream.write_archive`). Both give the same rows;
tests/spark/test_jvm_parser.py proves it over valid and hostile lines, one per dead-letter
reason.

The JVM path reads the batch's lines twice and writes the archive once, with no cache and no
join:
1. `io.clickagg.events.EventParser.survey` (src/clickagg/pipeline/sessionizer_jvm, Jackson)
   accepts the lines that certainly keep the contract of `domain/events.py` and marks every
   other line deferred. The driver collects, per partition, the newest accepted event time,
   the distinct user agents and (url, referrer) pairs enrichment reads, and the deferred lines.
2. The driver parses the deferred lines with Python (`parse.parse_numbered`, so every
   dead-letter reason is Python's), and builds the lookup tables with `domain/enrich.py`, once
   per distinct value. Now the batch's newest event time and `too_late` limit are known.
3. `io.clickagg.events.ArchiveRows` parses the lines again (the same clock, so the same
   decisions), enriches through the tables, marks `too_late` and emits archive rows; with the
   driver's rows they are written in one job whose counts come from an `Observation`.
A batch with a partition of more deferred lines than `DEFERRED_KEPT_LINES` (or
`DEFERRED_KEPT_BYTES`), such as a file of garbage, is parsed by the Python path instead: the
driver holds no more per partition.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, Observation, Row, SparkSession
from pyspark.sql import functions as F

from clickagg import errors
from clickagg.domain import dimensions, enrich, events
from clickagg.pipeline import archive, jvm_sessionizer, parse

CONF = "spark.clickagg.parser"
JVM = "jvm"
PYTHON = "python"
#: The driver takes at most this many deferred lines (and bytes of them) per partition.
DEFERRED_KEPT_LINES = 20_000
DEFERRED_KEPT_BYTES = 32 * 2**20
_PARSER = "io.clickagg.events.EventParser"
_ROWS = "io.clickagg.events.ArchiveRows"
_NEWEST, _AGENT, _LINK, _DEFERRED, _OVERFLOW = "newest", "agent", "link", "deferred", "overflow"


def chosen(spark: SparkSession) -> str:
    """Which parser the ingest runs, from the Spark setting `spark.clickagg.parser`."""
    value = str(spark.conf.get(CONF, JVM)).strip().lower()
    if value not in (JVM, PYTHON):
        raise errors.JobSetupError(f"{CONF} is {value!r}: expected {JVM!r} or {PYTHON!r}")
    return value


def write_archive(
    lines: DataFrame,
    settings: parse.ParseSettings,
    window: events.TimeWindow,
    paths: archive.JobPaths,
    newest_before_ms: int | None,
) -> archive.IngestReport | None:
    """`stream.write_archive` with the per-line work in the JVM; None, having written
    nothing, when the batch has more deferred lines than the driver parses itself."""
    spark = lines.sparkSession
    source = lines.select(*parse.LINE_COLUMNS)._jdf
    parser_text = config_text(settings, int(time.time() * 1000))
    survey: dict[str, list[Row]] = {kind: [] for kind in (_NEWEST, _AGENT, _LINK, _DEFERRED)}
    for row in DataFrame(_class(spark, _PARSER).survey(source, parser_text), spark).collect():
        if row["kind"] == _OVERFLOW:
            return None
        survey[row["kind"]].append(row)
    deferred = _deferred_rows(survey[_DEFERRED], settings)
    newest_in_batch = max(
        (
            *(row["arrival_offset"] for row in survey[_NEWEST]),  # Survey puts the time there
            *(
                ts
                for ts, kind in zip(
                    deferred.column("ts_ms").to_pylist(),
                    deferred.column("kind").to_pylist(),
                    strict=True,
                )
                if kind == archive.EVENT
            ),
        ),
        default=None,
    )
    # Through this batch: what the next batch measures from, and settle's late marker.
    newest = max((t for t in (newest_before_ms, newest_in_batch) if t is not None), default=None)
    reference = events.lateness_reference(newest_before_ms, newest_in_batch)
    marking = _marking_text(window, reference, newest, settings)
    tables = _tables(survey[_AGENT], survey[_LINK])
    rows = DataFrame(_class(spark, _ROWS).rows(source, f"{parser_text}\n{marking}", tables), spark)
    if deferred.num_rows:
        marked = next(parse.mark_too_late(iter([deferred]), window, reference, newest))
        table = pa.Table.from_batches([marked])
        rows = rows.unionByName(spark.createDataFrame(table, schema=archive.spark_schema()))
    observation = Observation(f"ingest-{settings.arrival_batch}")
    dead = F.col("kind") == archive.DEAD_LETTER
    archive.append(
        rows.observe(
            observation,
            F.count(F.lit(1)).alias("lines"),
            F.count(F.when(dead, 1)).alias("dead_letters"),
            F.count(F.when(dead & F.col("reason").startswith(events.TOO_LATE), 1)).alias("late"),
            F.count(F.when(~dead & F.col("bot"), 1)).alias("bots"),
        ),
        paths,
    )
    counts = observation.get
    return archive.IngestReport(
        lines=int(counts["lines"]),
        dead_letters=int(counts["dead_letters"]),
        too_late=int(counts["late"]),
        bots=int(counts["bots"]),
        newest_event_ms=newest,
    )


def config_text(settings: parse.ParseSettings, now_ms: int) -> str:
    """The JVM parser's configuration: tab-separated lines, read by EventParser.Config. The
    clock is fixed here so that both passes over a batch decide alike."""
    lines: list[tuple[object, ...]] = [
        ("max_line_bytes", events.MAX_LINE_BYTES),
        ("raw_kept_bytes", parse.RAW_KEPT_BYTES),
        ("max_future_ms", settings.max_future_ms),
        ("max_integer_digits", events.MAX_INTEGER_DIGITS),
        ("now_ms", now_ms),
        ("deferred_kept_lines", DEFERRED_KEPT_LINES),
        ("deferred_kept_bytes", DEFERRED_KEPT_BYTES),
        ("strings", *archive.STRINGS),
        ("required", *(name for name in events.REQUIRED_FIELDS if name != "ts")),
        ("dimension_value_fields", *sorted(events.DIMENSION_VALUE_FIELDS)),
        ("reserved", *sorted(dimensions.RESERVED_VALUES)),
    ]
    return _lines(lines)


def _marking_text(
    window: events.TimeWindow,
    reference_ms: int | None,
    newest_ms: int | None,
    settings: parse.ParseSettings,
) -> str:
    """The batch's settings for ArchiveRows.Marking: the archive's layout, the arrival
    columns, and the `too_late` limit with its reason's text (`events.too_late_reason`)."""
    limit = events.too_late_limit(window, reference_ms)
    frame: tuple[str, str] = ("", "")
    if limit is not None and reference_ms is not None and window.max_past_ms is not None:
        frame = events.too_late_frame(window.max_past_ms, reference_ms)
    return _lines(
        [
            ("archive_schema", archive.spark_schema().json()),
            ("arrival_ms", settings.arrival_ms),
            ("arrival_newest_ms", "" if newest_ms is None else newest_ms),
            ("arrival_batch", settings.arrival_batch),
            ("too_late_limit", "" if limit is None else limit),
            ("too_late_frame", *frame),
            ("kinds", archive.EVENT, archive.DEAD_LETTER),
        ]
    )


def _lines(lines: list[tuple[object, ...]]) -> str:
    text = "\n".join("\t".join(str(part) for part in line) for line in lines)
    if any(c in part for line in lines for part in map(str, line[1:]) for c in "\t\n"):
        raise errors.JobSetupError(f"a JVM parser setting holds a tab or a line break: {text!r}")
    return text


def _deferred_rows(deferred: list[Row], settings: parse.ParseSettings) -> pa.RecordBatch:
    """The deferred lines' archive rows, parsed by Python (before `too_late` marking)."""
    lines = pa.RecordBatch.from_pydict(
        {
            "value": [row["value"] for row in deferred],
            "arrival_source": [row["arrival_source"] for row in deferred],
            "arrival_offset": [row["arrival_offset"] for row in deferred],
        }
    )
    if not deferred:
        return pa.RecordBatch.from_pylist([], schema=archive.SCHEMA)
    return next(parse.parse_numbered(iter([lines]), settings))  # one batch in, one out


def _tables(agents: list[Row], links: list[Row]) -> str:
    """The enrichment lookup tables for ArchiveRows.Tables, by `domain/enrich.py`."""
    agent_rows: list[list[Any]] = []
    for row in agents:
        found = enrich.classify_user_agent(row["a"])
        agent_rows.append([row["a"], found.device_class, found.browser_family, found.is_bot])
    link_rows: list[list[Any]] = []
    for row in links:
        facts = enrich.link_facts(row["a"], row["b"])
        link_rows.append([row["a"], row["b"], facts.channel, facts.campaign, facts.page])
    return json.dumps({"agents": agent_rows, "links": link_rows})


def _class(spark: SparkSession, name: str) -> Any:
    return jvm_sessionizer.jvm_class(spark, name, f"the JVM parser ({name})", CONF, PYTHON)
