"""The streaming job with its tasks on the standalone cluster: executors on 127.0.0.2 and
127.0.0.3, a driver of its own (tests/cluster/stream_driver.py), the JVM parser and
sessionizer shipped as a jar. One run takes both faults of kill -9, each inside a batch: an
executor's (the standalone worker starts a new one and Spark re-runs its tasks), then the
driver's with its JVM (the master drops the application and its executors; a new driver
resumes from the checkpoints). Then Solr's finest level must equal the DuckDB oracle's
cells. One run, not one per fault: the cluster's start and its batches, and every driver's
start, are the slowest of the suite.
This is the suite's kill -9 of a driver inside a batch; tests/e2e/test_crash_faults.py kills
the local-mode driver between a batch's Solr write and its commit.
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


def test_kill_9_of_an_executor_then_of_the_driver_neither_loses_nor_double_counts(
    spark_cluster: Any, solr: Any, solr_client: Any, tmp_path: Path
) -> None:
    run = _Run(spark_cluster, solr, tmp_path, "kill-run", seed=19)
    driver = run.start("killed-driver.log", stop_file=tmp_path / "stop", upto=1)
    try:
        polling.eventually(lambda: run.committed() >= 2, "two committed batches", 300)
        seen = run.land(2)
        executors = polling.eventually(run.executor_pids, "the run's executors", 60)
        time.sleep(1.0)  # inside the batch of the second third
        os.kill(executors[0], signal.SIGKILL)
        polling.eventually(lambda: run.committed() > seen + 1, "batches after the kill", 300)
        read = run.archive_offset()
        run.land(3)
        # Inside the aggregate's batch of the last third: started (its offset log reads
        # further into the archive), not committed; the next driver must run it again.
        polling.eventually(lambda: run.in_flight(after=read), "its aggregate batch", 300, 0.1)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver's Python, its JVM and workers
        driver.wait()
    assert driver.returncode == -signal.SIGKILL
    assert "Lost executor" in (tmp_path / "killed-driver.log").read_text()
    # The next driver runs what is left to the end, then closes every visit.
    assert _finished(run.start("driver.log", stop_file=None)) == 0
    run.assert_equals_oracle(solr_client)


class _Run:
    def __init__(self, cluster: Any, solr: Any, work: Path, name: str, seed: int) -> None:
        self.cluster, self.solr, self.work = cluster, solr, work
        self.landing = work / "landing"
        self.aggregation = streaming.aggregation_for(
            self.landing, solr.base_url, name, levels=streaming.FINEST_ONLY
        )
        self.spec = streaming.write_spec(self.aggregation, work / "spec.yaml")
        self.paths = archive.JobPaths(str(work / "data"))
        with store_client.SolrClient(solr.base_url) as client:
            solr_collections.ensure_level_collections(client, self.aggregation)
        self.lines = streaming.traffic_lines(START_MS, hours=2, visitors=300, seed=seed)

    def land(self, third: int) -> int:
        """Land the lines of the `third`-th third (1 to 3); the batches committed before."""
        seen = self.committed()
        size = -(-len(self.lines) // 3)
        part = self.lines[(third - 1) * size : third * size]
        landing.write_files(part, self.landing, rolling=streaming.ROLLING, prefix="abc"[third - 1])
        return seen

    def start(
        self, log_name: str, stop_file: Path | None, upto: int | None = None
    ) -> subprocess.Popen[str]:
        """A driver; first land the thirds up to `upto`, if given."""
        for third in range(1, (upto or 0) + 1):
            self.land(third)
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
        log = (self.work / log_name).open("w")
        return subprocess.Popen(
            [sys.executable, str(DRIVER), json.dumps(settings)],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
        )  # fmt: skip

    def committed(self) -> int:
        return self._batches("commits")

    def archive_offset(self) -> int:
        """How far into the archive the aggregate's newest started batch reads (its file
        source's `logOffset`, the last line of the offset log entry), or -1."""
        started = self._batches("offsets")
        if not started:
            return -1
        entry = Path(self.paths.checkpoint("aggregate")) / "offsets" / str(started - 1)
        return int(json.loads(entry.read_text().splitlines()[-1])["logOffset"])

    def in_flight(self, after: int) -> bool:
        """The aggregate runs a batch that reads the archive past `after` (not committed)."""
        return self._batches("offsets") > self.committed() and self.archive_offset() > after

    def _batches(self, log: str) -> int:
        folder = Path(self.paths.checkpoint("aggregate")) / log
        return len(list(folder.glob("[0-9]*"))) if folder.exists() else 0

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
