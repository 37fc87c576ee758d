"""Faults that really crash: SIGKILL at a chosen point of the streaming driver, and SIGKILL of
the Solr node the job writes through; each run ends equal to the oracle."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import polling
import streaming
from clickagg.local import process, solr_security
from clickagg.local import solr as local_solr
from clickagg.pipeline import archive, stream
from clickagg.sim import landing
from clickagg.store import client as store_client
from clickagg.store import collections as solr_collections
from fixtures import solr as fixtures_solr

pytestmark = pytest.mark.e2e

START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - 6) * streaming.HOUR_MS
FAULT_BATCH = 1


def checkpoint_entries(paths: archive.JobPaths, kind: str) -> set[int]:
    """The aggregate query's batch ids in its checkpoint's `offsets` or `commits` log."""
    folder = Path(paths.checkpoint("aggregate")) / kind
    return {int(p.name) for p in folder.glob("[0-9]*")} if folder.exists() else set()


def start_driver(
    spec: Path, solr_url: str, paths: archive.JobPaths, log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "clickagg", "stream", str(spec),
        "--solr-url", solr_url,
        "--data", paths.root,
        "--trigger-seconds", "1",
    ]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )


def stop_driver(driver: subprocess.Popen[bytes]) -> None:
    if driver.poll() is None:
        os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()


def test_driver_killed_between_solr_write_and_commit_reruns_the_batch_through_the_guard(
    spark: Any, solr: Any, solr_client: Any, tmp_path: Path
) -> None:
    landing_dir = tmp_path / "landing"
    aggregation = streaming.aggregation_for(
        landing_dir, solr.base_url, "crash-after-write", levels=streaming.FINEST_ONLY
    )
    spec = streaming.write_spec(aggregation, tmp_path / "spec.yaml")
    paths = archive.JobPaths(str(tmp_path / "data"))
    solr_collections.ensure_level_collections(solr_client, aggregation)
    lines = streaming.traffic_lines(START_MS, hours=1, visitors=300, seed=17)
    landing.write_files(lines, landing_dir, rolling=streaming.ROLLING, prefix="a")

    # The job SIGKILLs its own process group right after batch FAULT_BATCH's Solr write.
    crashed_log = tmp_path / "driver-crashed.log"
    driver = start_driver(
        spec,
        solr.base_url,
        paths,
        crashed_log,
        {stream.FAULT_AFTER_WRITE_ENV: str(FAULT_BATCH)},
    )
    try:
        polling.eventually(lambda: driver.poll() is not None, "the injected crash", 240)
    finally:
        stop_driver(driver)
    assert driver.returncode == -signal.SIGKILL, crashed_log.read_text()[-3000:]
    crashed = crashed_log.read_text()
    written = re.search(rf"batch {FAULT_BATCH}: .*?; (\d+) cells written", crashed)
    assert written and int(written[1]) > 0, crashed[-3000:]
    # Written to Solr, planned in the offsets log, never committed: Spark must re-run it.
    assert FAULT_BATCH in checkpoint_entries(paths, "offsets")
    assert FAULT_BATCH not in checkpoint_entries(paths, "commits")

    restarted_log = tmp_path / "driver-restarted.log"
    driver = start_driver(spec, solr.base_url, paths, restarted_log, {})
    try:
        polling.eventually(
            lambda: FAULT_BATCH in checkpoint_entries(paths, "commits"),
            "the re-run batch committed",
            240,
        )
    finally:
        stop_driver(driver)
    restarted = restarted_log.read_text()
    guard = re.search(
        rf"batch {FAULT_BATCH}: the \(stream, batch\) guard skipped (\d+) cells", restarted
    )
    assert guard, restarted[-3000:]
    rerun = re.search(rf"batch {FAULT_BATCH}: .*?; (\d+) cells written, (\d+) already", restarted)
    assert rerun, restarted[-3000:]
    # The re-run batch found every cell it had written before the crash.
    assert (int(rerun[1]), int(rerun[2])) == (0, int(written[1]))

    streaming.assert_equals_oracle(
        spark, solr.base_url, solr_client, aggregation, paths, landing_dir, lines, START_MS
    )


JOINED = "solr-crash-node"
JOINED_HOST = fixtures_solr.SPARE_HOST  # the secured cluster's certificate names it


def replicas_on(client: store_client.SolrClient, collection: str, node_name: str) -> list[str]:
    """The replicas of `collection` that node `node_name` hosts, as shard/state."""
    state = client.cluster_status()["collections"][collection]
    return [
        f"{shard_name}/{replica['state']}"
        for shard_name, shard in state["shards"].items()
        for replica in shard["replicas"].values()
        if replica["node_name"] == node_name
    ]


def all_active(client: store_client.SolrClient, collection: str) -> bool:
    state = client.cluster_status()["collections"][collection]
    return all(
        replica["state"] == "active"
        for shard in state["shards"].values()
        for replica in shard["replicas"].values()
    )


def failed_writes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The cell writer's warnings that a Solr call failed and is retried."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "clickagg.store.cell_writes" and "failed" in r.getMessage()
    ]


def start_joined_node(solr: local_solr.SolrEndpoints, port: int) -> str:
    """The third node on JOINED_HOST:port, with the cluster's TLS set-up; its URL."""
    tls_dir = local_solr.tls_dir(fixtures_solr.SECURE_INSTANCE)
    return local_solr.start_joined_node(solr.zk_host, JOINED_HOST, port, JOINED, tls_dir=tls_dir)


def live_nodes(client: store_client.SolrClient) -> list[str]:
    return list(client.cluster_status()["live_nodes"])


@pytest.fixture
def joined_node(solr: Any) -> Iterator[tuple[str, str, int]]:
    """A third node in its own JVM on the session cluster's ZooKeeper: (URL, name, port)."""
    port = process.free_port()
    url = start_joined_node(solr, port)
    try:
        yield url, f"{JOINED_HOST}:{port}_solr", port
    finally:
        local_solr.stop_joined_node(JOINED)


def test_the_solr_node_the_job_writes_through_killed_mid_run_loses_nothing(
    spark: Any,
    solr: Any,
    solr_client: Any,
    joined_node: tuple[str, str, int],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node_url, node_name, port = joined_node
    landing_dir = tmp_path / "landing"
    aggregation = streaming.aggregation_for(
        landing_dir, node_url, "solr-kill-run", levels=streaming.FINEST_ONLY
    )
    replicated = aggregation.spec.solr.model_copy(update={"replication_factor": 2})
    aggregation = streaming.with_solr(aggregation, replicated)
    try:
        run_through_a_killed_node(
            spark, solr, solr_client, aggregation, node_url, node_name, port, tmp_path, caplog
        )
    finally:
        present = set(solr_client.list_collections())
        for level in aggregation.levels:
            if level.collection in present:
                solr_client.delete_collection(level.collection)


def run_through_a_killed_node(
    spark: Any,
    solr: Any,
    solr_client: Any,
    aggregation: Any,
    node_url: str,
    node_name: str,
    port: int,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    landing_dir = tmp_path / "landing"
    collection = aggregation.finest.collection
    paths = archive.JobPaths(str(tmp_path / "data"))
    with fixtures_solr.client_as(node_url, solr_security.OPERATOR) as client:
        solr_collections.ensure_level_collections(client, aggregation)
    hosted = replicas_on(solr_client, collection, node_name)
    assert hosted, f"{node_name} hosts no replica of {collection}"
    lines = streaming.traffic_lines(START_MS, hours=2, visitors=500, seed=19)
    third = len(lines) // 3
    landing.write_files(lines[:third], landing_dir, rolling=streaming.ROLLING, prefix="a")

    source = stream.source_of(aggregation)
    queries = [
        stream.ingest(spark, aggregation, paths, source, 1),
        stream.aggregate(spark, aggregation, paths, streaming.store_at(node_url), 1),
    ]
    try:
        polling.eventually(
            lambda: len(checkpoint_entries(paths, "commits")) >= 2, "two committed batches", 240
        )
        landing.write_files(
            lines[third : 2 * third], landing_dir, rolling=streaming.ROLLING, prefix="b"
        )
        local_solr.kill_joined_node(JOINED)
        # The cluster sees the crash: the node's ZooKeeper session expires; and the job meets
        # it: a write fails and is retried, or (retries spent) the query fails.
        polling.eventually(
            lambda: node_name not in live_nodes(solr_client), "the killed node leaves", 120
        )
        polling.eventually(
            lambda: failed_writes(caplog) or queries[1].exception() is not None,
            "the job writes to the dead node",
            120,
        )
        start_joined_node(solr, port)
        polling.eventually(
            lambda: all_active(solr_client, collection), "its replicas recovered", 180
        )
        landing.write_files(lines[2 * third :], landing_dir, rolling=streaming.ROLLING, prefix="c")
        seen = max(checkpoint_entries(paths, "commits"), default=-1)
        polling.eventually(
            lambda: (
                max(checkpoint_entries(paths, "commits"), default=-1) > seen
                or not queries[1].isActive
            ),
            "a batch after the restart (or the query gave up while the node was down)",
            240,
        )
    finally:
        for query in queries:
            stream.stop_between_batches(query)
    # A batch that found the node dead for longer than the writer's retries fails the query,
    # as it would fail the driver pod; the restarted job (here run_to_end) re-runs that batch
    # through the (stream, batch) guard.
    failures = [str(q.exception()) for q in queries if q.exception() is not None]
    print(
        f"\nreplicas on the killed node: {hosted}; failed write attempts "
        f"{len(failed_writes(caplog))}; queries failed: {failures}"
    )
    streaming.assert_equals_oracle(
        spark, node_url, solr_client, aggregation, paths, landing_dir, lines, START_MS
    )
