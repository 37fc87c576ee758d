"""Faults that really crash: SIGKILL at a chosen point of the streaming driver, and SIGKILL of
the Solr node the job writes through; each run ends equal to the oracle."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import polling
import streaming
from clickagg.pipeline import archive, stream
from clickagg.sim import landing
from clickagg.store import client as store_client
from clickagg.store import collections as solr_collections

pytestmark = pytest.mark.e2e

START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - 6) * streaming.HOUR_MS
FAULT_BATCH = 2


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
    aggregation = streaming.aggregation_for(landing_dir, solr.base_url, "crash-after-write")
    spec = streaming.write_spec(aggregation, tmp_path / "spec.yaml")
    paths = archive.JobPaths(str(tmp_path / "data"))
    with store_client.SolrClient(solr.base_url) as client:
        solr_collections.ensure_level_collections(client, aggregation)
    lines = streaming.traffic_lines(START_MS, hours=2, visitors=500, seed=17)
    half = len(lines) // 2
    landing.write_files(lines[:half], landing_dir, rolling=streaming.ROLLING, prefix="a")

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

    landing.write_files(lines[half:], landing_dir, rolling=streaming.ROLLING, prefix="b")
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
