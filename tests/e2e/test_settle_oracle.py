"""Settling the finest level against the DuckDB oracle: late events behind the watermark
are counted, cells the stream's corrections emptied are deleted (a sketch cannot forget a
visitor), and each pass leaves a mark a rollup can read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_first_arrival import (
    DAY_START_MS,
    HOUR_MS,
    MINUTE_MS,
    close_visits,
    deliver,
    event,
    expected_cells,
    prepare,
)

import streaming
from clickagg.domain import buckets, sessions
from clickagg.pipeline import settle
from clickagg.store import solr_cells

pytestmark = pytest.mark.e2e


def test_settle_counts_late_events_and_deletes_cells_no_event_supports(
    spark: Any, solr: Any, solr_client: Any, tmp_path: Path
) -> None:
    lateness = {"watermark": "2h", "allowedLateness": "3h"}
    aggregation, paths = prepare(tmp_path, solr.base_url, "settle-run", lateness=lateness)
    landing = tmp_path / "landing"
    at_10 = DAY_START_MS + 10 * HOUR_MS
    delivered: list[bytes] = []

    def send(name: str, lines: list[bytes]) -> None:
        deliver(landing, name, lines)
        delivered.extend(lines)
        streaming.run_to_end(spark, aggregation, paths, solr.base_url)

    # Issue 7's u2: a product view at 10:30 bridges u2's visits of 10:00 and 11:00.
    send(
        "a",
        [
            event("u2-1", at_10, "u2", page="first"),
            event("u2-3", at_10 + HOUR_MS, "u2", page="third"),
        ],
    )
    send("b", [event("u2-2", at_10 + 30 * MINUTE_MS, "u2", type="product_view")])
    # u3 at 13:00 moves the watermark to 11:00; u4's 10:45 is then late (behind it), and a
    # copy of u5's first event arrives later with another time: the first copy counts.
    send("c", [event("u3-1", at_10 + 3 * HOUR_MS, "u3"), event("u5-1", at_10 + 2 * HOUR_MS, "u5")])
    send(
        "d",
        [
            event("u4-1", at_10 + 45 * MINUTE_MS, "u4", page="late"),
            event("u5-1", at_10 + 150 * MINUTE_MS, "u5"),
        ],
    )
    # Beyond the allowed lateness of the newest event: a dead letter, counted nowhere.
    deliver(landing, "e", [event("u6-1", at_10 - MINUTE_MS, "u6")])
    streaming.run_to_end(spark, aggregation, paths, solr.base_url)
    close_visits(spark, aggregation, paths, solr.base_url, at_10 + 24 * HOUR_MS)
    expected = expected_cells(aggregation, delivered).cells
    before_ms = at_10 + 6 * HOUR_MS

    def problems() -> list[str]:
        actual = streaming.solr_cells(solr_client, aggregation, before_ms)
        return streaming.differences(expected, actual, sessions.FIELDS, sketch_tolerance=0.05)

    assert problems(), "the stream alone should miss u4 and keep u2's emptied cells"
    with solr_cells.SolrCellStore(solr.base_url) as store:
        report = settle.settle(spark, aggregation, paths, store)
        assert not problems(), "\n".join(problems()[:15])
        assert report.late_events >= 1
        assert report.mark is not None and report.mark.passes == 1
        assert report.mark.settled_end_ms >= before_ms
        assert any(s.start_ms <= at_10 + HOUR_MS < s.end_ms for s in report.recomputed)
        marked = store.resettled_since(aggregation.finest, 0)
        assert [m.span for m in marked] == list(report.recomputed)
        assert store.settle_mark(aggregation.finest) == report.mark
        again = settle.settle(spark, aggregation, paths, store)
        assert again.recomputed == () and again.mark is not None and again.mark.passes == 2
    actual = streaming.solr_cells(solr_client, aggregation, before_ms)
    # The cells u2 left when its visits merged: attributed to landing page `third` and to
    # `returning`. All their counts were 0 and the sketch still held u2.
    left = [
        key
        for key in actual
        if key[1] == at_10 + HOUR_MS
        and any(
            (name, value) in {("landing_page", "third"), ("visitor_type", "returning")}
            for name, value in zip(key[0].split("+"), key[2], strict=False)
        )
    ]
    assert not left


def test_several_days_with_late_data_and_differing_copies_settle_to_the_oracle(
    spark: Any, solr: Any, solr_client: Any, tmp_path: Path
) -> None:
    """Two days of shop traffic in 12-hour deliveries (one ingest batch each): late lines up
    to 6 hours behind their time (the allowed lateness is 4 hours, so some are too late),
    resent lines, and copies that differ from the first (another time and page). A settle
    pass midway and one at the end: every finest document equals the oracle."""
    from pyspark.sql import functions as F

    from clickagg import sim
    from clickagg.pipeline import archive

    lateness = {"watermark": "30m", "allowedLateness": "4h"}
    aggregation, paths = prepare(tmp_path, solr.base_url, "settle-days", lateness=lateness)
    landing = tmp_path / "landing"
    start = DAY_START_MS - 2 * 24 * HOUR_MS
    faults = sim.Faults(late=0.04, late_max_ms=6 * HOUR_MS, duplicate=0.02)
    emitted = list(
        sim.generate(sim.TrafficProfile(visitors=150), faults, start, 2 * 24 * HOUR_MS, seed=11)
    )
    delivery_ms = 12 * HOUR_MS
    by_delivery: dict[int, list[bytes]] = {}
    for n, item in enumerate(emitted):
        delivery = (item.arrival_ms - start) // delivery_ms
        by_delivery.setdefault(delivery, []).append(item.line)
        if n % 40 == 0 and item.kind == sim.VALID:
            record = json.loads(item.line)
            ts = record["ts"] if isinstance(record["ts"], int) else buckets.parse_iso(record["ts"])
            record["ts"] = ts + 20 * MINUTE_MS
            record["page"] = "copy"
            by_delivery.setdefault(delivery + 1, []).append(json.dumps(record).encode())
    ordered: list[bytes] = []
    deliveries: list[int] = []
    settle_reports = []
    with solr_cells.SolrCellStore(solr.base_url) as store:
        for delivery in sorted(by_delivery):
            deliver(landing, f"d{delivery:03d}", by_delivery[delivery])
            ordered += by_delivery[delivery]
            deliveries += [delivery] * len(by_delivery[delivery])
            streaming.run_to_end(spark, aggregation, paths, solr.base_url)
            if delivery == 2:
                settle_reports.append(settle.settle(spark, aggregation, paths, store))
        close_visits(spark, aggregation, paths, solr.base_url, start + 3 * 24 * HOUR_MS)
        settle_reports.append(settle.settle(spark, aggregation, paths, store))
    expected = expected_cells(
        aggregation, ordered, allowed_lateness_ms=4 * HOUR_MS, deliveries=deliveries
    )
    settled_end = settle_reports[-1].mark.settled_end_ms  # type: ignore[union-attr]
    actual = streaming.solr_cells(solr_client, aggregation, settled_end)
    expected_settled = {k: v for k, v in expected.cells.items() if k[1] < settled_end}
    problems = streaming.differences(
        expected_settled, actual, sessions.FIELDS, sketch_tolerance=0.05
    )
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:15])
    assert len(actual) > 500
    assert streaming.bot_events(solr_client, aggregation) == {
        b: n for b, n in expected.bot_events.items() if b < settled_end
    }
    dead = spark.read.parquet(paths.archive).where(F.col("kind") == archive.DEAD_LETTER)
    reasons = [row.reason for row in dead.select("reason").collect()]
    assert len(reasons) == expected.dead_letters
    assert sum(r.startswith("too_late") for r in reasons) > 0
    assert all(r.late_events > 0 for r in settle_reports)


def test_backfill_loads_history_within_its_window_and_settles_it(
    spark: Any, solr: Any, solr_client: Any, tmp_path: Path
) -> None:
    from clickagg.jobs import backfill as backfill_job

    lateness = {"watermark": "10m", "allowedLateness": "2h"}
    aggregation, paths = prepare(tmp_path, solr.base_url, "backfill-run", lateness=lateness)
    live_ms = DAY_START_MS + 20 * HOUR_MS
    deliver(tmp_path / "landing", "live", [event("live", live_ms, "w1")])
    close_visits(spark, aggregation, paths, solr.base_url, live_ms + HOUR_MS)
    # Far older than the stream's lateness allows: only a backfill can load them.
    at_2 = DAY_START_MS + 2 * HOUR_MS
    history = [
        event("h1", at_2, "h"),
        event("h2", at_2 + 10 * MINUTE_MS, "h", page="b"),
        event("h1", at_2 + HOUR_MS, "h", page="copy"),  # a later copy: dropped
        event("h3", at_2 + 50 * MINUTE_MS, "k"),
    ]
    outside = event("h4", DAY_START_MS + 7 * HOUR_MS, "k")
    source = tmp_path / "history.jsonl"
    source.write_bytes(b"".join(line + b"\n" for line in [*history, outside]))
    window = buckets.Span(DAY_START_MS, DAY_START_MS + 6 * HOUR_MS)
    with solr_cells.SolrCellStore(solr.base_url) as store:
        result = backfill_job.run(aggregation, store, spark, paths, [str(source)], window)
    assert (result.archived.events, result.archived.dead_letters) == (4, 1)
    assert any(s.start_ms <= at_2 < s.end_ms for s in result.settled.recomputed)
    expected = expected_cells(aggregation, history).cells
    actual = {
        key: cell
        for key, cell in streaming.solr_cells(solr_client, aggregation, window.end_ms).items()
        if key[1] >= window.start_ms
    }
    problems = streaming.differences(expected, actual, sessions.FIELDS, sketch_tolerance=0.05)
    assert not problems, "\n".join(problems[:15])
