"""Faults for real: kill -9 the streaming driver mid-run, then compare with the oracle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import polling
import streaming
from clickagg.local import solr_security
from clickagg.pipeline import archive, stream
from clickagg.sim import landing
from clickagg.store import collections as solr_collections
from fixtures import solr as fixtures_solr

pytestmark = pytest.mark.e2e

START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - 6) * streaming.HOUR_MS


def committed_batches(paths: archive.JobPaths) -> int:
    commits = Path(paths.checkpoint("aggregate")) / "commits"
    return len([p for p in commits.glob("[0-9]*")]) if commits.exists() else 0


def test_kill_9_of_the_driver_neither_loses_nor_double_counts(
    spark: Any, solr: Any, solr_client: Any, tmp_path: Path
) -> None:
    landing_dir = tmp_path / "landing"
    aggregation = streaming.aggregation_for(landing_dir, solr.base_url, "kill-run")
    spec = streaming.write_spec(aggregation, tmp_path / "spec.yaml")
    paths = archive.JobPaths(str(tmp_path / "data"))
    # The operator's part: only its user may create collections.
    with fixtures_solr.client_as(solr.base_url, solr_security.OPERATOR) as client:
        solr_collections.ensure_level_collections(client, aggregation)
    lines = streaming.traffic_lines(START_MS, hours=2, visitors=500, seed=11)
    half = len(lines) // 2
    landing.write_files(lines[:half], landing_dir, rolling=streaming.ROLLING, prefix="a")

    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clickagg",
            "stream",
            str(spec),
            "--solr-url",
            solr.base_url,
            "--data",
            paths.root,
            "--trigger-seconds",
            "1",
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        polling.eventually(lambda: committed_batches(paths) >= 2, "two committed batches", 240)
        landing.write_files(lines[half:], landing_dir, rolling=streaming.ROLLING, prefix="b")
        seen = committed_batches(paths)
        polling.eventually(
            lambda: committed_batches(paths) > seen, "a batch of the second half", 120
        )
        time.sleep(1.5)  # land inside a later batch
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver JVM and its Python workers
        driver.wait()
    assert driver.returncode == -signal.SIGKILL

    streaming.assert_equals_oracle(
        spark, solr.base_url, solr_client, aggregation, paths, landing_dir, lines, START_MS
    )


def test_a_solr_node_stopped_mid_run_loses_nothing(
    spark: Any, solr: Any, solr_client: Any, tmp_path: Path
) -> None:
    from clickagg.local import solr as local_solr

    landing_dir = tmp_path / "landing"
    aggregation = streaming.aggregation_for(
        landing_dir,
        solr.base_url,
        "node-down-run",
    )
    replicated = aggregation.spec.solr.model_copy(update={"replication_factor": 2})
    aggregation = streaming.with_solr(aggregation, replicated)
    paths = archive.JobPaths(str(tmp_path / "data"))
    # The operator's part: only its user may create collections.
    with fixtures_solr.client_as(solr.base_url, solr_security.OPERATOR) as client:
        solr_collections.ensure_level_collections(client, aggregation)
    lines = streaming.traffic_lines(START_MS, hours=2, visitors=500, seed=13)
    third = len(lines) // 3
    landing.write_files(lines[:third], landing_dir, rolling=streaming.ROLLING, prefix="a")

    source = stream.source_of(aggregation)
    queries = [
        stream.ingest(spark, aggregation, paths, source, 1),
        stream.aggregate(spark, aggregation, paths, streaming.store_at(solr.base_url), 1),
    ]
    try:
        polling.eventually(lambda: committed_batches(paths) >= 2, "two committed batches", 240)
        local_solr.stop_node(1, fixtures_solr.SECURE_INSTANCE)
        try:
            landing.write_files(
                lines[third : 2 * third], landing_dir, rolling=streaming.ROLLING, prefix="b"
            )
            seen = committed_batches(paths)
            polling.eventually(
                lambda: committed_batches(paths) >= seen + 2, "batches with a node down", 240
            )
        finally:
            local_solr.start_node(1, fixtures_solr.SECURE_INSTANCE)
        landing.write_files(lines[2 * third :], landing_dir, rolling=streaming.ROLLING, prefix="c")
        seen = committed_batches(paths)
        polling.eventually(
            lambda: committed_batches(paths) > seen, "a batch after the restart", 240
        )
    finally:
        for query in queries:
            query.stop()
    for query in queries:
        assert query.exception() is None, query.exception()

    streaming.assert_equals_oracle(
        spark, solr.base_url, solr_client, aggregation, paths, landing_dir, lines, START_MS
    )
