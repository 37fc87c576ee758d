"""The Spark standalone cluster: a master and two workers on 127.0.0.2 and 127.0.0.3.

The proof is Spark's own record: the driver writes an event log, and its task-end events say
on which host and at which locality level every task ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickagg import errors
from clickagg.local import process
from clickagg.local import spark_cluster as local_spark_cluster

pytestmark = pytest.mark.cluster

DRIVER = Path(__file__).with_name("locality_driver.py")
DRIVER_TIMEOUT_S = 300


def test_the_master_counts_a_live_worker_on_each_host(
    spark_cluster: local_spark_cluster.SparkClusterEndpoints,
) -> None:
    assert spark_cluster.worker_hosts == process.NODE_HOSTS
    assert local_spark_cluster.alive_worker_hosts(spark_cluster) == list(process.NODE_HOSTS)


def test_executors_run_on_both_hosts_and_a_preferred_host_is_node_local(
    spark_cluster: local_spark_cluster.SparkClusterEndpoints, tmp_path: Path
) -> None:
    events, printed = run_driver(spark_cluster, tmp_path)
    assert sorted(printed["locality_result"]) == [
        f"ITEM-ON-{host}" for host in sorted(process.NODE_HOSTS)
    ]
    assert executor_hosts(events) == set(process.NODE_HOSTS)

    spread = tasks_of_job(events, "spread")
    assert len(spread) == 8
    assert {task["Host"] for task in spread} == set(process.NODE_HOSTS)

    # One partition per host, each preferring it: each ran on that host, NODE_LOCAL.
    local = tasks_of_job(events, "locality")
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


def run_driver(
    cluster: local_spark_cluster.SparkClusterEndpoints, work: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run locality_driver.py against the cluster; its event log and its printed JSON line."""
    event_dir = work / "events"
    event_dir.mkdir()
    conf = json.dumps(local_spark_cluster.session_conf(cluster))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": process.LOOPBACK}
    result = subprocess.run(
        [sys.executable, str(DRIVER), conf, str(event_dir), *cluster.worker_hosts],
        capture_output=True, text=True, env=env, timeout=DRIVER_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"driver failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    log = event_dir / str(printed["app_id"])
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return events, printed


def executor_hosts(events: list[dict[str, Any]]) -> set[str]:
    return {
        str(event["Executor Info"]["Host"])
        for event in events
        if event["Event"] == "SparkListenerExecutorAdded"
    }


def tasks_of_job(events: list[dict[str, Any]], description: str) -> list[dict[str, Any]]:
    """The Task Info of every finished task of the job with this description."""
    stages = {
        stage
        for event in events
        if event["Event"] == "SparkListenerJobStart"
        and event.get("Properties", {}).get("spark.job.description") == description
        for stage in event["Stage IDs"]
    }
    assert stages, f"no job described {description!r} in the event log"
    return [
        event["Task Info"]
        for event in events
        if event["Event"] == "SparkListenerTaskEnd" and event["Stage ID"] in stages
    ]
