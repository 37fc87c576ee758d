"""Archive rows know how they arrived: offsets increase through a file, `too_late` and
backfill windows turn events into dead letters, and both deduplications keep the copy that
arrived first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import streaming
from clickagg.domain import buckets, durations, events
from clickagg.pipeline import archive, dedup, parse, stream

pytestmark = pytest.mark.spark

T0 = 1_764_410_400_000  # 2025-11-29T10:00:00Z
HOUR = 3_600_000


def line(event_id: str, ts_ms: int) -> bytes:
    record = {"event_id": event_id, "ts": ts_ms, "visitor_id": "u1", "type": "page_view"}
    return json.dumps(record).encode()


def parsed(lines: list[bytes], sources: list[str], splits: list[int]) -> pa.Table:
    batch = pa.RecordBatch.from_pydict(
        {"value": lines, "arrival_source": sources, "arrival_split": splits},
        schema=pa.schema(
            [("value", pa.binary()), ("arrival_source", pa.string()), ("arrival_split", pa.int64())]
        ),
    )
    settings = parse.ParseSettings(arrival_batch=7, arrival_ms=T0 + 5 * HOUR)
    return pa.Table.from_batches(list(parse.parse_batches(iter([batch]), settings)))


def test_each_line_gets_an_offset_that_increases_through_its_file() -> None:
    lines = [line(f"e{i}", T0) for i in range(4)]
    table = parsed(lines, ["f1", "f1", "f2", "f1"], [0, 0, 0, 100])
    assert table.column("arrival_offset").to_pylist() == [0, 1, 0, 100]
    assert set(table.column("arrival_batch").to_pylist()) == {7}


def test_too_late_is_measured_from_the_newest_event_of_earlier_batches() -> None:
    table = parsed([line("ok", T0), line("late", T0 - 1)], ["f"] * 2, [0, 0])
    window = events.lateness_window(durations.parse("2h"))
    marked = pa.Table.from_batches(
        list(parse.mark_too_late(iter(table.to_batches()), window, T0 + 2 * HOUR, T0 + 3 * HOUR))
    ).to_pylist()
    assert [row["kind"] for row in marked] == [archive.EVENT, archive.DEAD_LETTER]
    assert marked[0]["raw"] is None and marked[0]["arrival_newest_ms"] == T0 + 3 * HOUR
    assert marked[1]["reason"].startswith("too_late: field 'ts': 2025-11-29T09:59:59Z")
    assert marked[1]["reason"].endswith("before the newest event (2025-11-29T12:00:00Z)")
    assert json.loads(marked[1]["raw"])["event_id"] == "late"
    unmeasured = pa.Table.from_batches(
        list(parse.mark_too_late(iter(table.to_batches()), window, None, None))
    ).to_pylist()
    assert [row["kind"] for row in unmeasured] == [archive.EVENT, archive.EVENT]


def test_a_batch_is_judged_by_the_batches_before_it_not_by_its_own_events(
    spark: Any, tmp_path: Path
) -> None:
    from pyspark.sql import functions as F

    # Issue 7: a catching-up batch spans 3 hours, more than the allowed lateness (2h).
    aggregation = streaming.aggregation_for(
        tmp_path / "landing",
        "http://127.0.0.1:1/solr",
        "late-rule",
        lateness={"watermark": "10m", "allowedLateness": "2h"},
    )
    paths = archive.JobPaths(str(tmp_path / "data"))
    reports: dict[int, archive.IngestReport] = {}
    writer = stream.ArchiveWriter(aggregation, paths, lambda n, r: reports.__setitem__(n, r))

    def ingest(batch_id: int, lines: list[bytes]) -> dict[str, Any]:
        rows = [(value, "f", 0) for value in lines]
        frame = spark.createDataFrame(
            rows, "value binary, arrival_source string, arrival_split long"
        )
        writer(frame, batch_id)
        archived = spark.read.parquet(paths.archive).where(F.col("arrival_batch") == batch_id)
        return {
            (json.loads(r.raw)["event_id"] if r.kind == archive.DEAD_LETTER else r.event_id): r
            for r in archived.collect()
        }

    # The first batch has no earlier one and measures from its own newest event.
    rows = ingest(0, [line("ancient", T0 - 400 * 24 * HOUR), line("seen", T0)])
    assert {name: r.kind for name, r in rows.items()} == {"ancient": "dead_letter", "seen": "event"}
    # The earlier batches' newest is T0: the T0 event beside one at T0 + 3h is counted.
    rows = ingest(1, [line("old", T0), line("new", T0 + 3 * HOUR)])
    assert {name: r.kind for name, r in rows.items()} == {"old": "event", "new": "event"}
    assert {r.arrival_newest_ms for r in rows.values()} == {T0 + 3 * HOUR}
    assert (reports[1].too_late, reports[1].newest_event_ms) == (0, T0 + 3 * HOUR)
    # Now the earlier batches' newest is T0 + 3h: a T0 event is too late, T0 + 1h is not.
    rows = ingest(2, [line("again", T0), line("edge", T0 + HOUR)])
    assert rows["again"].kind == archive.DEAD_LETTER
    assert rows["again"].reason.startswith("too_late: field 'ts': 2025-11-29T10:00:00Z")
    assert rows["again"].reason.endswith("before the newest event (2025-11-29T13:00:00Z)")
    assert rows["edge"].kind == archive.EVENT
    assert {r.arrival_newest_ms for r in rows.values()} == {T0 + 3 * HOUR}
    assert (reports[2].too_late, reports[2].dead_letters) == (1, 1)
    # Spark runs batch 1 again after a crash: the ingest log gives it what it saw before.
    rows = ingest(1, [line("old", T0), line("new", T0 + 3 * HOUR)])
    assert {name: r.kind for name, r in rows.items()} == {"old": "event", "new": "event"}


def test_a_backfill_rejects_events_outside_its_window() -> None:
    table = parsed([line("in", T0), line("out", T0 + HOUR)], ["f"] * 2, [0, 0])
    marked = pa.Table.from_batches(
        list(parse.mark_outside(iter(table.to_batches()), buckets.Span(T0, T0 + HOUR)))
    ).to_pylist()
    assert [row["kind"] for row in marked] == [archive.EVENT, archive.DEAD_LETTER]
    assert "outside the backfill window" in marked[1]["reason"]


def test_both_deduplications_keep_the_first_arrival(spark: Any) -> None:
    # d1's copies: batch 2 line 5, batch 1 line 9 (first), batch 1 line 3 of a later file.
    rows = [
        ("d1", T0 + HOUR, 2, "a", 5),
        ("d1", T0, 1, "a", 9),
        ("d1", T0 + 2 * HOUR, 1, "b", 3),
        ("d2", T0, 3, "a", 0),
    ]
    frame = spark.createDataFrame(
        rows,
        "event_id string, ts_ms long, arrival_batch long, arrival_source string, "
        "arrival_offset long",
    )
    kept = dedup.first_arrivals(frame, streaming=False).collect()
    assert sorted((r.event_id, r.ts_ms) for r in kept) == [("d1", T0), ("d2", T0)]
    jvm_kept = dedup.jvm_first_arrivals(frame).collect()
    assert sorted((r.event_id, r.ts_ms, r.arrival_source) for r in jvm_kept) == [
        ("d1", T0, "a"),
        ("d2", T0, "a"),
    ]
    table = pa.Table.from_pylist([r.asDict() for r in frame.collect()])
    streamed = pa.Table.from_batches(list(dedup.first_copies(iter(table.to_batches()))))
    assert sorted((r["event_id"], r["ts_ms"]) for r in streamed.to_pylist()) == [
        ("d1", T0),
        ("d2", T0),
    ]
