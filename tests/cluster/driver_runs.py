"""Drivers on the standalone cluster run as child processes (the test session's JVM holds
the local SparkContext); what they did is read back from Spark's event log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from clickagg.local import process
from clickagg.local import spark_cluster as local_spark_cluster

DRIVER_TIMEOUT_S = 300


def run_driver(
    cluster: local_spark_cluster.SparkClusterEndpoints, work: Path, driver: Path, *args: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run a driver script against the cluster (its arguments: the session conf, the event
    log dir, `args`); its event log and the JSON line it printed last."""
    event_dir = work / "events"
    event_dir.mkdir()
    conf = json.dumps(local_spark_cluster.session_conf(cluster))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": process.LOOPBACK}
    result = subprocess.run(
        [sys.executable, str(driver), conf, str(event_dir), *args],
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


def tasks_of_jobs(events: list[dict[str, Any]], description: str) -> list[dict[str, Any]]:
    """The Task Info of every finished task of the jobs whose description is or starts with
    `description`."""
    stages = {
        stage
        for event in events
        if event["Event"] == "SparkListenerJobStart"
        and str(event.get("Properties", {}).get("spark.job.description")).startswith(description)
        for stage in event["Stage IDs"]
    }
    assert stages, f"no job described {description!r} in the event log"
    return [
        event["Task Info"]
        for event in events
        if event["Event"] == "SparkListenerTaskEnd" and event["Stage ID"] in stages
    ]
