"""Archive rows know how they arrived: offsets increase through a file, `too_late` and
backfill windows turn events into dead letters, and both deduplications keep the copy that
arrived first."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest

from clickagg.domain import buckets, durations, events
from clickagg.pipeline import archive, dedup, parse

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


def test_too_late_is_measured_from_the_newest_event() -> None:
    table = parsed([line("ok", T0), line("late", T0 - 1)], ["f"] * 2, [0, 0])
    window = events.lateness_window(durations.parse("2h"))
    marked = pa.Table.from_batches(
        list(parse.mark_too_late(iter(table.to_batches()), window, T0 + 2 * HOUR))
    ).to_pylist()
    assert [row["kind"] for row in marked] == [archive.EVENT, archive.DEAD_LETTER]
    assert marked[0]["raw"] is None and marked[0]["arrival_newest_ms"] == T0 + 2 * HOUR
    assert marked[1]["reason"].startswith("too_late: field 'ts': 2025-11-29T09:59:59Z")
    assert json.loads(marked[1]["raw"])["event_id"] == "late"


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
    table = pa.Table.from_pylist([r.asDict() for r in frame.collect()])
    streamed = pa.Table.from_batches(list(dedup.first_copies(iter(table.to_batches()))))
    assert sorted((r["event_id"], r["ts_ms"]) for r in streamed.to_pylist()) == [
        ("d1", T0),
        ("d2", T0),
    ]
