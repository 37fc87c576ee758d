"""The Spark standalone cluster: a master and two workers on 127.0.0.2 and 127.0.0.3.

The proof is Spark's own record: the driver writes an event log, and its task-end events say
on which host and at which locality level every task ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import driver_runs
import pytest

from clickagg import errors
from clickagg.local import process
from clickagg.local import spark_cluster as local_spark_cluster

pytestmark = pytest.mark.cluster

DRIVER = Path(__file__).with_name("locality_driver.py")


def test_the_master_counts_a_live_worker_on_each_host(
    spark_cluster: local_spark_cluster.SparkClusterEndpoints,
) -> None:
    assert spark_cluster.worker_hosts == process.NODE_HOSTS
    assert local_spark_cluster.alive_worker_hosts(spark_cluster) == list(process.NODE_HOSTS)


def test_executors_run_on_both_hosts_and_a_preferred_host_is_node_local(
    spark_cluster: local_spark_cluster.SparkClusterEndpoints, tmp_path: Path
) -> None:
    events, printed = driver_runs.run_driver(
        spark_cluster, tmp_path, DRIVER, *spark_cluster.worker_hosts
    )
    assert sorted(printed["locality_result"]) == [
        f"ITEM-ON-{host}" for host in sorted(process.NODE_HOSTS)
    ]
    assert driver_runs.executor_hosts(events) == set(process.NODE_HOSTS)

    spread = driver_runs.tasks_of_jobs(events, "spread")
    assert len(spread) == 8
    assert {task["Host"] for task in spread} == set(process.NODE_HOSTS)

    # One partition per host, each preferring it: each ran on that host, NODE_LOCAL.
    local = driver_runs.tasks_of_jobs(events, "locality")
    placed = sorted((task["Host"], task["Locality"]) for task in local)
    assert placed == [(host, "NODE_LOCAL") for host in sorted(process.NODE_HOSTS)]


@pytest.fixture
def empty_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # No cluster runs here, so up() must really check its arguments.
    monkeypatch.setenv("CLICKAGG_RUN_DIR", str(tmp_path))
    yield tmp_path


@pytest.mark.usefixtures("empty_run_dir")
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"worker_hosts": ("10.0.0.2",)}, "'10.0.0.2' is not a loopback address"),
        ({"worker_hosts": ("127.0.0.2", "127.0.0.2")}, "worker hosts must differ"),
        ({"worker_cores": 0}, "cores must be at least 1, not 0"),
        ({"worker_memory": "2 GB"}, "memory '2 GB' is not a size like 512m or 2g"),
    ],
)
def test_bad_sizes_and_hosts_fail_before_launch(arguments: dict[str, Any], message: str) -> None:
    ports = process.free_ports(2)
    with pytest.raises(errors.LocalStackError, match=message):
        local_spark_cluster.up(*ports, **arguments)
    assert local_spark_cluster.status() is None
