"""A driver on the standalone cluster whose tasks the test reads back from Spark's event log.

    python locality_driver.py '<session conf as JSON>' EVENT_LOG_DIR HOST [HOST ...]

It waits until an executor runs on every HOST, then runs two jobs, named by their job
description:
- `spread`: a Python map-reduce over more partitions than executors;
- `locality`: one partition per HOST that prefers that host (`locality.rdd_preferring`).
It prints one JSON line: the application id and the `locality` job's result.
"""

from __future__ import annotations

import json
import sys
import time

from pyspark import SparkContext
from pyspark.sql import SparkSession

from clickagg.pipeline import locality

EXECUTORS_TIMEOUT_S = 120.0


def main(conf_json: str, event_log_dir: str, hosts: list[str]) -> None:
    session = logged_session("clickagg-cluster-locality", conf_json, event_log_dir)
    context = session.sparkContext
    try:
        wait_for_executors(context, hosts)
        context.setJobDescription("spread")
        context.parallelize(range(10_000), 8).map(lambda n: n * n).sum()
        context.setJobDescription("locality")
        items = [(f"item-on-{host}", [host]) for host in hosts]
        result = locality.rdd_preferring(context, items).map(str.upper).collect()
        print(json.dumps({"app_id": context.applicationId, "locality_result": result}))
    finally:
        session.stop()


def logged_session(name: str, conf_json: str, event_log_dir: str) -> SparkSession:
    """A session on the cluster (`conf_json`) that writes its event log to `event_log_dir`."""
    builder = SparkSession.builder.appName(name)
    settings = {
        **json.loads(conf_json),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": event_log_dir,
        # One plain JSON-lines file named after the application (Spark 4 rolls and compresses).
        "spark.eventLog.rolling.enabled": "false",
        "spark.eventLog.compress": "false",
        "spark.ui.enabled": "false",
        # Long enough that a busy box never gives up on the preferred host.
        "spark.locality.wait": "30s",
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def wait_for_executors(context: SparkContext, hosts: list[str]) -> None:
    """Poll the status tracker until an executor runs on every host."""
    deadline = time.monotonic() + EXECUTORS_TIMEOUT_S
    while True:
        infos = context._jsc.sc().statusTracker().getExecutorInfos()
        seen = {info.host() for info in infos}
        if set(hosts) <= seen:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"executors on {sorted(seen)} after {EXECUTORS_TIMEOUT_S:.0f}s")
        time.sleep(0.25)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
