"""A rollup on the two-host layout: Solr nodes and Spark workers on 127.0.0.2 and 127.0.0.3.

The finest level holds the oracle's cells of generated traffic (with sketches of their
visitors); a driver on the standalone cluster rolls up 1h and 1d with the rollup job's
default combine for a cluster: sums in Solr, each shard's sketches merged by a Spark task
that prefers the hosts of the shard's replicas. Spark's event log must show every
shard-read task NODE_LOCAL on the host of the replica it read, every read must have come
from its own host, and every rolled-up document must equal the oracle computed from the raw
events at its granularity.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import driver_runs
import pytest

import oracle
import service_data
import streaming
from clickagg.domain import model, sessions
from clickagg.local import process
from clickagg.local import spark_cluster as local_spark_cluster
from clickagg.pipeline import shard_tasks
from clickagg.store import cell_writes, rollup_reads
from clickagg.store import client as store_client

pytestmark = pytest.mark.cluster

DRIVER = Path(__file__).with_name("rollup_driver.py")
DAY_MS = 86_400_000
DAY_START_MS = (int(time.time() * 1000) // DAY_MS - 2) * DAY_MS
LEVELS = [
    {"granularity": "15m", "retention": "5d"},
    {"granularity": "1h", "retention": "6d"},
    {"granularity": "1d", "retention": "forever"},
]


def test_shard_reads_run_node_local_and_the_rollup_equals_the_oracle(
    solr: Any,
    solr_client: store_client.SolrClient,
    spark_cluster: local_spark_cluster.SparkClusterEndpoints,
    tmp_path: Path,
) -> None:
    aggregation = streaming.aggregation_for(
        tmp_path / "landing", solr.base_url, "cluster-rollup", levels=LEVELS
    )
    lines = [
        item.line
        for item in streaming.traffic_lines(DAY_START_MS + 9 * streaming.HOUR_MS, 3, 60, seed=31)
    ]
    fill_finest_level(aggregation, solr_client, lines)
    day_end = DAY_START_MS + DAY_MS
    spec = streaming.write_spec(aggregation, tmp_path / "spec.yaml")

    events, printed = driver_runs.run_driver(
        spark_cluster, tmp_path, DRIVER, str(spec), solr.base_url, str(day_end),
        *spark_cluster.worker_hosts,
    )  # fmt: skip

    def replica_hosts(level: model.Level) -> dict[str, set[str]]:
        found = rollup_reads.replicas(solr_client, level.collection)
        return {shard: {replica.host for replica in on} for shard, on in found.items()}

    finest_hosts = replica_hosts(aggregation.finest)
    assert set().union(*finest_hosts.values()) == set(process.NODE_HOSTS), finest_hosts
    reads = []
    # Each coarser level read its finer level's collection, whose shards Solr placed anew.
    for finer, coarser in zip(aggregation.levels, aggregation.levels[1:], strict=False):
        hosts = replica_hosts(finer)
        level_reads = [rollup_reads.ShardRead(**read) for read in printed["reads"][coarser.name]]
        # One read per shard per piece (a day of 15m into 1h, 24 hours of 1h into 1d).
        assert len(level_reads) == len(hosts), (coarser.name, level_reads, hosts)
        for read in level_reads:
            assert read.same_host and read.replica_host in hosts[read.shard], (read, hosts)
        reads += level_reads
    tasks = driver_runs.tasks_of_jobs(events, shard_tasks.JOB_DESCRIPTION)
    assert len(tasks) == len(reads)
    assert {(task["Host"], task["Locality"]) for task in tasks} == {
        (host, "NODE_LOCAL") for host in process.NODE_HOSTS
    }
    assert sorted(task["Host"] for task in tasks) == sorted(read.reader_host for read in reads)

    problems = [
        problem
        for level in aggregation.levels[1:]
        for problem in level_problems(aggregation, solr_client, level, lines, day_end)
    ]
    assert not problems, f"{len(problems)} differences, first: " + "\n".join(problems[:15])


def fill_finest_level(
    aggregation: model.Aggregation, client: store_client.SolrClient, lines: list[bytes]
) -> None:
    """The finest level as the oracle computes it from `lines`, each cell with a sketch of
    its visitors, written as the streaming job writes cells (its own equality with the
    oracle is tests/e2e's business; here only the rollup is under test)."""
    finest = aggregation.finest
    expected = streaming.oracle_result(
        aggregation, lines, int(finest.granularity.approx_seconds), with_visitors=True
    )
    filled = service_data.Cells(aggregation)
    for (name, bucket_ms, values), state in expected.cells.items():
        dimensions = () if name == oracle.cuboid_name(()) else tuple(name.split("+"))
        who = expected.visitors[(name, bucket_ms, values)]
        filled.add(dimensions, bucket_ms, values, {f: state[f] for f in sessions.FIELDS}, who)
    filled.write(client)
    cell_writes.write_bot_counts(
        client, finest, expected.bot_events, stream_id="cluster-test", batch_id=0
    )
    client.commit(finest.collection)


def level_problems(
    aggregation: model.Aggregation,
    client: store_client.SolrClient,
    level: model.Level,
    lines: list[bytes],
    end_ms: int,
) -> list[str]:
    """Where the level's rolled-up documents before `end_ms` differ from the oracle."""
    granularity_s = int(level.granularity.approx_seconds)
    expected = streaming.oracle_result(aggregation, lines, granularity_s)
    return streaming.rolled_up_problems(client, aggregation, level, expected, end_ms, least=20)
