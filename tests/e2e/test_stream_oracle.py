"""The streaming job against an independent DuckDB oracle, over real Spark and Solr.

Generated traffic with duplicates, late and out-of-order events, bots and malformed lines
goes through the landing directory; every KPI state field of every cuboid bucket in Solr
must equal the oracle's (unique visitors within the sketch's error).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import streaming
from clickagg import sim
from clickagg.domain import sessions
from clickagg.local import solr_security
from clickagg.pipeline import archive, metrics, progress
from clickagg.sim import landing
from clickagg.store import collections as solr_collections
from clickagg.store import solr_cells
from fixtures import solr as fixtures_solr

pytestmark = pytest.mark.e2e

START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - 6) * streaming.HOUR_MS


@pytest.fixture(scope="module")
def streamed(spark: Any, solr: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("oracle-run")
    aggregation = streaming.aggregation_for(
        work / "landing", solr.base_url, "oracle-run", levels=streaming.FINEST_ONLY
    )
    lines = streaming.traffic_lines(START_MS, hours=2, visitors=600, seed=7)
    landing.write_files(lines, work / "landing", rolling=streaming.ROLLING)
    # The operator's part: only its user may create collections.
    with fixtures_solr.client_as(solr.base_url, solr_security.OPERATOR) as client:
        solr_collections.ensure_level_collections(client, aggregation)
    paths = archive.JobPaths(str(work / "data"))
    job_metrics = metrics.StreamMetrics(aggregation.name)
    ingest_lines = progress.IngestLines()  # as jobs/stream.py wires it
    listener = metrics.ProgressListener(job_metrics, ingest_lines)
    spark.streams.addListener(listener)

    def record(_: int, report: Any) -> None:
        job_metrics.record_solr_write(report)

    def ingested(batch_id: int, report: Any) -> None:
        ingest_lines.record(batch_id, report.lines)
        job_metrics.record_ingest(report.dead_letters, report.too_late, report.bots)

    streaming.run_to_end(spark, aggregation, paths, solr.base_url, record, ingested)
    sentinel_ms = START_MS + 5 * streaming.HOUR_MS
    streaming.close_every_visit(
        spark,
        aggregation,
        paths,
        solr.base_url,
        streaming.deliver_to(work / "landing"),
        sentinel_ms,
        record,
        ingested,
    )
    time.sleep(2)  # progress events reach listeners asynchronously
    spark.streams.removeListener(listener)
    expected = streaming.oracle_result(aggregation, [item.line for item in lines], 900)
    return {
        "aggregation": aggregation,
        "lines": lines,
        "expected": expected,
        "paths": paths,
        "solr_url": solr.base_url,
        "before_ms": sentinel_ms - streaming.HOUR_MS,
        "metrics": job_metrics,
    }


def test_every_cell_equals_the_oracle(streamed: dict[str, Any], solr_client: Any) -> None:
    aggregation = streamed["aggregation"]
    actual = streaming.solr_cells(solr_client, aggregation, streamed["before_ms"])
    problems = streaming.differences(
        streamed["expected"].cells, actual, sessions.FIELDS, sketch_tolerance=0.05
    )
    assert not problems, f"{len(problems)} differences, first: " + "\n".join(problems[:15])
    assert len(actual) > 1000


def test_bots_are_counted_apart(streamed: dict[str, Any], solr_client: Any) -> None:
    assert streaming.bot_events(solr_client, streamed["aggregation"]) == (
        streamed["expected"].bot_events
    )


def test_every_bad_line_is_a_dead_letter_with_its_reason(
    streamed: dict[str, Any], spark: Any
) -> None:
    from pyspark.sql import functions as F

    archived = spark.read.parquet(streamed["paths"].archive)
    dead = archived.where(F.col("kind") == "dead_letter").select("reason").collect()
    faults = [i for i in streamed["lines"] if i.kind not in sim.ACCEPTED_KINDS]
    assert len(dead) == len(faults) == streamed["expected"].dead_letters
    reasons = " ".join(r.reason for r in dead)
    for kind, phrase in {
        "malformed_json": "malformed JSON",
        "invalid_utf8": "not valid UTF-8",
        "oversized": "more than the limit",
        "missing_field": "required but missing",
        "wrong_type": "expected",
        "ts_far_past": "before the newest event",
        "ts_far_future": "after now",
    }.items():
        if any(i.kind == kind for i in faults):
            assert phrase in reasons, kind


def test_replay_gives_what_streaming_gave_and_twice_changes_nothing(
    streamed: dict[str, Any], spark: Any, solr_client: Any
) -> None:
    from clickagg.pipeline import replay

    aggregation, before_ms = streamed["aggregation"], streamed["before_ms"]
    streamed_cells = streaming.solr_cells(solr_client, aggregation, before_ms)
    for _ in range(2):
        with solr_cells.SolrCellStore(streamed["solr_url"]) as store:
            replay.replay(
                spark,
                aggregation,
                streamed["paths"],
                store,
                START_MS,
                before_ms,
                history_ms=sessions.VISITOR_MEMORY_MS,
            )
        replayed = streaming.solr_cells(solr_client, aggregation, before_ms)
        problems = streaming.differences(
            streamed_cells, replayed, sessions.FIELDS, sketch_tolerance=0.02
        )
        assert not problems, "\n".join(problems[:15])
    assert streaming.bot_events(solr_client, aggregation) == streamed["expected"].bot_events


def test_metrics_count_what_happened(streamed: dict[str, Any]) -> None:
    job_metrics = streamed["metrics"]
    text = job_metrics.render()
    assert job_metrics.value("clickagg_dead_letters_total") == streamed["expected"].dead_letters
    bot_lines = sum(1 for item in streamed["lines"] if item.bot and item.kind != "duplicate")
    assert job_metrics.value("clickagg_bot_events_total") >= bot_lines > 0
    ingested = job_metrics.value("clickagg_input_rows_total", query="ingest")
    assert ingested == len(streamed["lines"]) + 1  # and the sentinel
    for name in (
        "clickagg_batch_duration_seconds",
        "clickagg_watermark_lag_seconds",
        "clickagg_solr_write_seconds_count",
        "clickagg_processed_rows_per_second",
    ):
        assert f"# TYPE {name}" in text, name
