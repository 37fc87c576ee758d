"""Rollups over several simulated days against the DuckDB oracle, over real Spark and Solr.

Three days of generated traffic are streamed into the finest level; the rollup job builds
1h from 15m and 1d from 1h. Every document of every coarser level and cuboid must equal
the oracle computed from the raw events at that level's granularity (additive state
exactly, unique visitors within the sketch bound), after a rerun, after a replay of a
rolled-up range, after a SIGKILLed rollup caught up by `--follow`, after a Solr node died
mid-rollup, and after retention (which must leave nothing past a level's horizon and take
nothing from the coarser levels).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

import oracle
import streaming
from clickagg import sim
from clickagg.domain import buckets, kpis, level_progress, model, sessions, sketches
from clickagg.jobs import rollup as rollup_job
from clickagg.local import sessionizer
from clickagg.local import solr as local_solr
from clickagg.pipeline import archive, replay, rollup_pushdown
from clickagg.pipeline import rollup as spark_rollup
from clickagg.sim import landing
from clickagg.store import cell_reads, solr_cells
from clickagg.store import client as store_client
from clickagg.store import collections as solr_collections
from fixtures import solr as fixtures_solr
from polling import eventually

pytestmark = pytest.mark.e2e

DAY_MS = 86_400_000
DAYS = 3
START_MS = (int(time.time() * 1000) // DAY_MS - DAYS - 1) * DAY_MS
LEVELS = [
    {"granularity": "15m", "retention": "5d"},
    {"granularity": "1h", "retention": "6d"},
    {"granularity": "1d", "retention": "forever"},
]


@pytest.fixture(scope="module")
def rolled(
    spark: Any,
    solr: Any,
    solr_client: store_client.SolrClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("rollup-oracle")
    aggregation = streaming.aggregation_for(
        work / "landing", solr.base_url, "rollup-oracle", levels=LEVELS
    )
    lines = streaming.traffic_lines(START_MS, hours=24 * DAYS, visitors=600, seed=11)
    landing.write_files(lines, work / "landing", rolling=streaming.ROLLING)
    paths = archive.JobPaths(str(work / "data"))
    solr_collections.ensure_level_collections(solr_client, aggregation)  # the operator's part
    streaming.run_to_end(spark, aggregation, paths, solr.base_url)
    sentinel_ms = START_MS + DAYS * DAY_MS + 4 * streaming.HOUR_MS
    streaming.close_every_visit(
        spark,
        aggregation,
        paths,
        solr.base_url,
        streaming.deliver_to(work / "landing"),
        sentinel_ms,
    )
    streaming.report_watermark(solr.base_url, aggregation, sentinel_ms)
    with solr_cells.SolrCellStore(solr.base_url) as store:
        first = rollup_job.roll_up_levels(
            spark, aggregation, store, now_ms=START_MS, data_root=paths.root
        )
    spec_file = streaming.write_spec(aggregation, work / "spec.yaml")
    return {
        "aggregation": aggregation,
        "lines": [item.line for item in lines],
        "paths": paths,
        "work": work,
        "spec_file": spec_file,
        "first": first,
        "expected": {},
    }


def expected_cells(rolled: dict[str, Any], level: model.Level) -> oracle.OracleResult:
    cached = rolled["expected"].get(level.name)
    if cached is None:
        granularity_s = int(level.granularity.approx_seconds)
        cached = streaming.oracle_result(rolled["aggregation"], rolled["lines"], granularity_s)
        rolled["expected"][level.name] = cached
    return cast(oracle.OracleResult, cached)


def level_problems(
    rolled: dict[str, Any], client: store_client.SolrClient, level: model.Level
) -> list[str]:
    """Where the level's documents differ from the oracle, over its rolled-up buckets."""
    aggregation = rolled["aggregation"]
    last = solr_progress(client, level).last_bucket_ms
    assert last is not None, f"{level.name} has rolled up nothing"
    end = buckets.end(last, level.granularity)
    expected = expected_cells(rolled, level)
    return streaming.rolled_up_problems(client, aggregation, level, expected, end, least=100)


def solr_progress(
    client: store_client.SolrClient, level: model.Level
) -> level_progress.LevelReport:
    from clickagg.store import batch

    return batch.read_progress(client, level)


def coarser(rolled: dict[str, Any]) -> tuple[model.Level, ...]:
    levels: tuple[model.Level, ...] = rolled["aggregation"].levels[1:]
    return levels


def all_problems(rolled: dict[str, Any], client: store_client.SolrClient) -> list[str]:
    return [p for level in coarser(rolled) for p in level_problems(rolled, client, level)]


def assert_equal_to_oracle(rolled: dict[str, Any], client: store_client.SolrClient) -> None:
    problems = all_problems(rolled, client)
    assert not problems, f"{len(problems)} differences, first: " + "\n".join(problems[:15])


def event_ms(line: bytes) -> int:
    ts = json.loads(line)["ts"]
    return ts if isinstance(ts, int) else buckets.parse_iso(ts)


def forget_rollups(rolled: dict[str, Any], client: store_client.SolrClient) -> None:
    """Empty the coarser levels, progress included, so a rollup starts from scratch."""
    for level in coarser(rolled):
        client.delete_by_query(level.collection, "*:*")
        client.commit(level.collection)


def hour_documents(hour_ms: int) -> str:
    return f'bucket:"{buckets.iso(hour_ms)}" AND -cuboid:"__progress__"'


def damage_and_replay_hour(
    rolled: dict[str, Any],
    spark: Any,
    store: solr_cells.SolrCellStore,
    client: store_client.SolrClient,
    hour_ms: int,
) -> None:
    """Delete the rolled-up hour, so that only rolling it up again from its finer buckets
    repairs it, then replay the hour's finer buckets (which stamps them as changed)."""
    hours = rolled["aggregation"].levels[1]
    held = client.query(hours.collection, {"q": hour_documents(hour_ms), "rows": 0})
    assert held["response"]["numFound"] > 0, f"{buckets.iso(hour_ms)} holds nothing to damage"
    client.delete_by_query(hours.collection, hour_documents(hour_ms))
    client.commit(hours.collection)
    replay.replay(
        spark,
        rolled["aggregation"],
        rolled["paths"],
        store,
        hour_ms,
        hour_ms + streaming.HOUR_MS,
        history_ms=sessions.VISITOR_MEMORY_MS,
    )


def test_every_coarser_document_equals_the_oracle(
    rolled: dict[str, Any], solr_client: store_client.SolrClient
) -> None:
    hours, days = rolled["first"].levels
    assert hours.rolled_up is not None and days.rolled_up is not None
    assert days.report.last_bucket_ms is not None
    assert days.report.last_bucket_ms >= START_MS + (DAYS - 2) * DAY_MS
    assert_equal_to_oracle(rolled, solr_client)


def test_the_pushdown_and_the_spark_combine_give_the_same_cells(
    rolled: dict[str, Any], spark: Any, solr: Any
) -> None:
    """The default combine (sums in Solr, sketches merged per shard) against the one that
    reads every document into Spark, on the same finer documents: the same cells, the same
    counts exactly, sums to the last bits (Solr and Spark add in different orders), bots
    and documents read alike; sketches from different HLL libraries (Java in Spark, C++
    here) agree on their estimates well inside the sketch's error. A spec that dropped two
    cuboids shows both leave those cells out alike."""
    full = rolled["aggregation"]
    dropped = dataclasses.replace(full, cuboids=full.cuboids[:-2])
    day = buckets.Span(START_MS + DAY_MS, START_MS + 2 * DAY_MS)
    with solr_cells.SolrCellStore(solr.base_url) as store:
        for aggregation in (full, dropped):
            for finer, coarser_level in itertools.pairwise(aggregation.levels):
                pushed = rollup_pushdown.PushdownCombine(aggregation, store)(
                    finer, coarser_level, day
                )
                read = spark_rollup.SparkCombine(spark, aggregation, store)(
                    finer, coarser_level, day
                )
                assert_same_combined(pushed, read, f"{coarser_level.name} from {finer.name}")


def assert_same_combined(
    pushed: spark_rollup.Combined, read: spark_rollup.Combined, what: str
) -> None:
    assert pushed.finer_documents == read.finer_documents > 100, what
    assert pushed.bot_counts == read.bot_counts and pushed.bot_counts, what
    by_key = {(c.cuboid, c.bucket_ms, c.values): c for c in read.cells}
    assert len(pushed.cells) == len(by_key) == len(read.cells), what
    for cell in pushed.cells:
        other = by_key[(cell.cuboid, cell.bucket_ms, cell.values)]
        for name, value in cell.deltas.items():
            if kpis.STATE_FIELDS[name].kind == "count":
                assert value == other.deltas[name], (what, cell, name)
            else:
                assert value == pytest.approx(other.deltas[name], rel=1e-12), (what, cell, name)
        ours, theirs = sketches.estimate(cell.sketch), sketches.estimate(other.sketch)
        assert ours == pytest.approx(theirs, rel=0.01), (what, cell.cuboid, cell.values)


def test_a_rerun_changes_nothing(
    rolled: dict[str, Any], spark: Any, solr: Any, solr_client: store_client.SolrClient
) -> None:
    aggregation = rolled["aggregation"]
    before = {
        level.name: sorted(
            (c.cuboid, c.bucket_ms, c.values, _rounded(c.state))
            for c in cell_reads.stored_cells(solr_client, aggregation, level)
        )
        for level in coarser(rolled)
    }
    with solr_cells.SolrCellStore(solr.base_url) as store:
        again = rollup_job.roll_up_levels(
            spark, aggregation, store, now_ms=START_MS, data_root=rolled["paths"].root
        )
    assert all(run.rolled_up is None for run in again.levels), again.levels
    for level in coarser(rolled):
        after = sorted(
            (c.cuboid, c.bucket_ms, c.values, _rounded(c.state))
            for c in cell_reads.stored_cells(solr_client, aggregation, level)
        )
        assert after == before[level.name]


def test_a_replayed_range_is_rolled_up_again(
    rolled: dict[str, Any], spark: Any, solr: Any, solr_client: store_client.SolrClient
) -> None:
    aggregation = rolled["aggregation"]
    damaged = START_MS + DAY_MS + 10 * streaming.HOUR_MS
    with solr_cells.SolrCellStore(solr.base_url) as store:
        damage_and_replay_hour(rolled, spark, store, solr_client, damaged)
        result = rollup_job.roll_up_levels(
            spark, aggregation, store, now_ms=START_MS, data_root=rolled["paths"].root
        )
    hour_run, day_run = result.levels
    assert damaged in hour_run.redone
    assert buckets.floor(damaged, aggregation.levels[2].granularity) in day_run.redone
    assert_equal_to_oracle(rolled, solr_client)


def test_history_backfilled_into_a_rolled_up_range_is_rolled_up_again(
    rolled: dict[str, Any], spark: Any, solr: Any, solr_client: store_client.SolrClient
) -> None:
    """The seed's refill: lines that reach the archive after their range was rolled up are
    settled and rolled up again by the backfill, and every level then counts them."""
    from clickagg.jobs import backfill as backfill_job

    aggregation = rolled["aggregation"]
    window = buckets.Span(
        START_MS + DAY_MS + 2 * streaming.HOUR_MS, START_MS + DAY_MS + 6 * streaming.HOUR_MS
    )
    # Other visitors (another seed), valid lines cut to the window: the backfill refuses the
    # rest, and the stream's tests cover the dead letters.
    history = [
        item.line
        for item in streaming.traffic_lines(window.start_ms, hours=4, visitors=60, seed=23)
        if item.kind == sim.VALID and window.start_ms <= event_ms(item.line) < window.end_ms
    ]
    source = rolled["work"] / "history.jsonl"
    source.write_bytes(b"".join(line + b"\n" for line in history))
    hours = aggregation.levels[1]
    before = solr_client.query(hours.collection, {"q": "*:*", "rows": 0})["response"]["numFound"]
    with solr_cells.SolrCellStore(solr.base_url) as store:
        result = backfill_job.run(aggregation, store, spark, rolled["paths"], [str(source)], window)
    assert result.archived.events == len(history) > 200
    rolled["lines"] = [*rolled["lines"], *history]
    rolled["expected"].clear()
    assert_equal_to_oracle(rolled, solr_client)
    after = solr_client.query(hours.collection, {"q": "*:*", "rows": 0})["response"]["numFound"]
    assert after > before


def test_a_rollup_killed_midway_is_caught_up_by_follow_which_stops_on_ctrl_c(
    rolled: dict[str, Any], spark: Any, solr: Any, solr_client: store_client.SolrClient
) -> None:
    """The SparkApplication's rollup (jobs/rollup.py) SIGKILLed midway from empty coarser
    levels; then `clickagg rollup --follow`, as a user runs it, resumes from where it died
    and catches up (equal to the oracle), a replayed hour is rolled up again by a later
    pass, and Ctrl-C ends it cleanly. One test: each driver start and each rollup from
    scratch costs tens of seconds."""
    hours, days = coarser(rolled)
    reached = {
        level.name: solr_progress(solr_client, level).last_bucket_ms for level in (hours, days)
    }
    final = {name: last for name, last in reached.items() if last is not None}
    assert final == reached, f"nothing rolled up to catch up with: {reached}"
    forget_rollups(rolled, solr_client)
    killed_log = rolled["work"] / "killed-rollup.log"
    with killed_log.open("wb") as out:
        killed = subprocess.Popen(
            [
                sys.executable,
                str(Path(streaming.ROOT) / "jobs" / "rollup.py"),
                "--spec",
                str(rolled["spec_file"]),
                "--solr-url",
                solr.base_url,
                "--data-root",
                rolled["paths"].root,
                "--master",
                "local[1]",
                "--jars",  # as its SparkApplication declares it: settling may sessionize
                str(sessionizer.jar()),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(Path(streaming.ROOT) / "src")},
        )
    try:
        eventually(
            lambda: (
                solr_progress(solr_client, hours).last_bucket_ms is not None
                or killed.poll() is not None
            ),
            "the rollup moved the 1h watermark",
            timeout=300,
        )
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
    midway = solr_progress(solr_client, hours).last_bucket_ms
    assert midway is not None and midway < final[hours.name], killed_log.read_text()[-3000:]

    log = rolled["work"] / "follow.log"
    with log.open("wb") as out:
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clickagg",
                "rollup",
                str(rolled["spec_file"]),
                "--follow",
                "--every",
                "1",
                "--solr-url",
                solr.base_url,
                "--data",
                rolled["paths"].root,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(Path(streaming.ROOT) / "src")},
        )
    try:
        eventually(
            lambda: (
                all(
                    solr_progress(solr_client, level).last_bucket_ms == final[level.name]
                    for level in (hours, days)
                )
                or follower.poll() is not None
            ),
            "--follow caught up with every level",
            timeout=300,
        )
        assert follower.poll() is None, log.read_text()[-3000:]
        assert_equal_to_oracle(rolled, solr_client)
        # A busy hour (mid-day): a night hour of this small shop may hold no event at all on
        # some dates, and then nothing could come back.
        damaged = START_MS + DAY_MS + 10 * streaming.HOUR_MS
        hour_query = hour_documents(damaged)
        with solr_cells.SolrCellStore(solr.base_url) as store:
            damage_and_replay_hour(rolled, spark, store, solr_client, damaged)

        def hour_back() -> bool:
            solr_client.commit(hours.collection)
            found = solr_client.query(hours.collection, {"q": hour_query, "rows": 0})
            return int(found["response"]["numFound"]) > 0

        eventually(hour_back, "a later pass rolled the replayed hour up again", timeout=300)
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if follower.poll() is None:
            follower.kill()
    output = log.read_text()
    assert "stopped" in output and "Traceback" not in output, output[-3000:]
    assert_equal_to_oracle(rolled, solr_client)


def test_a_solr_node_killed_during_a_rollup_then_a_rerun_equals_the_oracle(
    rolled: dict[str, Any], spark: Any, solr: Any, solr_client: store_client.SolrClient
) -> None:
    aggregation = rolled["aggregation"]
    forget_rollups(rolled, solr_client)
    outcome: dict[str, Any] = {}

    def roll_up() -> None:
        try:
            with solr_cells.SolrCellStore(solr.node_url(0)) as store:
                outcome["result"] = rollup_job.roll_up_levels(
                    spark, aggregation, store, now_ms=START_MS, data_root=rolled["paths"].root
                )
        except Exception as exc:  # the node's shards are gone: the run may fail
            outcome["error"] = exc

    worker = threading.Thread(target=roll_up)
    worker.start()
    try:
        eventually(
            lambda: (
                solr_progress(solr_client, aggregation.levels[1]).last_bucket_ms is not None
                or not worker.is_alive()
            ),
            "the rollup has begun writing",
            timeout=300,
        )
        local_solr.stop_node(1, fixtures_solr.SECURE_INSTANCE)
        worker.join(timeout=600)
    finally:
        if local_solr.node_states(fixtures_solr.SECURE_INSTANCE)[1] != "running":
            local_solr.start_node(1, fixtures_solr.SECURE_INSTANCE)
    eventually(lambda: all_healthy(solr_client, aggregation), "every replica is active again", 180)
    with solr_cells.SolrCellStore(solr.base_url) as store:
        rollup_job.roll_up_levels(
            spark, aggregation, store, now_ms=START_MS, data_root=rolled["paths"].root
        )
    assert_equal_to_oracle(rolled, solr_client)


def all_healthy(client: store_client.SolrClient, aggregation: model.Aggregation) -> bool:
    status = client.cluster_status()
    for level in aggregation.levels:
        shards = status["collections"][level.collection]["shards"]
        for shard in shards.values():
            if any(r["state"] != "active" for r in shard["replicas"].values()):
                return False
    return True


def test_retention_dry_run_lists_each_level_and_the_archive_and_deletes_nothing(
    rolled: dict[str, Any], solr: Any, solr_client: store_client.SolrClient
) -> None:
    from typer.testing import CliRunner

    from clickagg.cli import main

    aggregation = rolled["aggregation"]
    before = cell_reads.count(solr_client, aggregation.finest.collection)
    result = CliRunner().invoke(
        main.app,
        ["retention", str(rolled["spec_file"]), "--dry-run", "--solr-url", solr.base_url],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("retention at ")
    for name in ("15m: retention 5d", "1h: retention 6d", "1d: retention forever", "raw archive"):
        assert name in result.output, result.output
    assert cell_reads.count(solr_client, aggregation.finest.collection) == before


def test_retention_leaves_nothing_past_a_horizon_and_takes_nothing_from_coarser_levels(
    rolled: dict[str, Any], spark: Any, solr: Any, solr_client: store_client.SolrClient
) -> None:
    aggregation = rolled["aggregation"]
    now_ms = START_MS + 8 * DAY_MS  # 15m keeps 5 days, 1h 6 days, 1d forever
    with solr_cells.SolrCellStore(solr.base_url) as store:
        result = rollup_job.roll_up_levels(
            spark, aggregation, store, now_ms=now_ms, data_root=rolled["paths"].root
        )
    plan = {f.name: f for f in result.plan.levels}
    finest, hours = aggregation.levels[0], aggregation.levels[1]
    assert result.deleted.get(finest.name, 0) > 0 and result.deleted.get(hours.name, 0) > 0
    for level in (finest, hours):
        limit = plan[level.name].delete_before_ms
        assert limit is not None
        oldest = min(c.bucket_ms for c in cell_reads.stored_cells(solr_client, aggregation, level))
        assert oldest >= limit, f"{level.name} keeps {buckets.iso(oldest)} < {buckets.iso(limit)}"
        # Never before rollup: what the finest level still holds is not yet rolled up.
        horizon = plan[level.name].horizon_ms
        assert horizon is not None and limit <= horizon
        assert solr_progress(solr_client, level).horizon_ms == limit
    # The 1d level keeps everything, still equal to the oracle.
    assert not level_problems(rolled, solr_client, aggregation.levels[2])


def _rounded(state: dict[str, float]) -> tuple[tuple[str, float], ...]:
    # Sums of revenue may differ in the last bits with the order Spark adds them in.
    return tuple(sorted((name, round(value, 6)) for name, value in state.items()))
