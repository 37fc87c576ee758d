"""The streaming job with its tasks on the standalone cluster: executors on 127.0.0.2 and
127.0.0.3, a driver of its own (tests/cluster/stream_driver.py), the JVM parser and
sessionizer shipped as a jar. An executor is killed with SIGKILL mid-run (the standalone
worker starts a new one and Spark re-runs its tasks), then Solr's finest level must equal the
DuckDB oracle's cells. One run proves both the oracle's equality on the cluster and the
fault: the cluster's start and its batches are the slowest of the suite.
The driver's kill -9 stays in tests/e2e/test_stream_faults.py (local mode: the same driver).
"""

from __future__ import annotations

import json
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
from clickagg.local import process, sessionizer
from clickagg.local import spark_cluster as local_spark_cluster
from clickagg.pipeline import archive, jvm_parse
from clickagg.sim import landing
from clickagg.store import client as store_client
from clickagg.store import collections as solr_collections

pytestmark = pytest.mark.cluster

DRIVER = Path(__file__).with_name("stream_driver.py")
DRIVER_TIMEOUT_S = 600
START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - 6) * streaming.HOUR_MS
SRC = Path(sessionizer.__file__).resolve().parents[2]
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"


def test_kill_9_of_an_executor_neither_loses_nor_double_counts(
    spark_cluster: Any, solr: Any, solr_client: Any, tmp_path: Path
) -> None:
    run = _Run(spark_cluster, solr, tmp_path, "executor-kill-run", seed=19)
    stop_file = tmp_path / "stop"
    driver = run.start(stop_file=stop_file, first_half_only=True)
    try:
        polling.eventually(lambda: run.committed() >= 2, "two committed batches", 300)
        run.land_second_half()
        seen = run.committed()
        executors = polling.eventually(run.executor_pids, "the run's executors", 60)
        time.sleep(1.0)  # inside the batch of the second half
        os.kill(executors[0], signal.SIGKILL)
        polling.eventually(lambda: run.committed() > seen + 1, "batches after the kill", 300)
    finally:
        stop_file.touch()
    assert _finished(driver) == 0
    assert "Lost executor" in (tmp_path / "driver.log").read_text()
    run.assert_equals_oracle(solr_client)


class _Run:
    def __init__(self, cluster: Any, solr: Any, work: Path, name: str, seed: int) -> None:
        self.cluster, self.solr, self.work = cluster, solr, work
        self.landing = work / "landing"
        self.aggregation = streaming.aggregation_for(self.landing, solr.base_url, name)
        self.spec = streaming.write_spec(self.aggregation, work / "spec.yaml")
        self.paths = archive.JobPaths(str(work / "data"))
        with store_client.SolrClient(solr.base_url) as client:
            solr_collections.ensure_level_collections(client, self.aggregation)
        self.lines = streaming.traffic_lines(START_MS, hours=2, visitors=300, seed=seed)
        self.half = len(self.lines) // 2

    def start(self, stop_file: Path | None, first_half_only: bool = False) -> subprocess.Popen[str]:
        upto = self.half if first_half_only else len(self.lines)
        landing.write_files(self.lines[:upto], self.landing, rolling=streaming.ROLLING, prefix="a")
        conf = {
            **local_spark_cluster.session_conf(self.cluster),
            "spark.jars": str(sessionizer.jar()),
            jvm_parse.CONF: jvm_parse.JVM,  # the JVM parser's classes run on the executors
            "spark.executorEnv.PYTHONPATH": str(SRC),
            "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
        }
        settings = {
            "conf": conf,
            "spec": str(self.spec),
            "solr_url": self.solr.base_url,
            "data": self.paths.root,
            "landing": str(self.landing),
            "sentinel_ms": START_MS + 5 * streaming.HOUR_MS,
            "stop_file": None if stop_file is None else str(stop_file),
        }
        env = {
            **os.environ,
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": process.LOOPBACK,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        }
        log = (self.work / "driver.log").open("w")
        return subprocess.Popen(
            [sys.executable, str(DRIVER), json.dumps(settings)],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
        )  # fmt: skip

    def land_second_half(self) -> None:
        landing.write_files(
            self.lines[self.half :], self.landing, rolling=streaming.ROLLING, prefix="b"
        )

    def committed(self) -> int:
        commits = Path(self.paths.checkpoint("aggregate")) / "commits"
        return len(list(commits.glob("[0-9]*"))) if commits.exists() else 0

    def executor_pids(self) -> list[int]:
        """This run's executors: their command line names its application."""
        app_file = Path(self.paths.root) / "app-id"
        if not app_file.exists():
            return []
        app_id = app_file.read_text().strip()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [a.decode(errors="replace") for a in argv]
            if EXECUTOR_CLASS in words and app_id in words:
                found.append(int(entry.name))
        return found

    def assert_equals_oracle(self, client: Any) -> None:
        before_ms = START_MS + 4 * streaming.HOUR_MS
        problems = streaming.oracle_problems(
            client, self.aggregation, [i.line for i in self.lines], before_ms
        )
        assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:15])


def _finished(driver: subprocess.Popen[str]) -> int:
    try:
        return driver.wait(timeout=DRIVER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        raise
