"""SparkSession set-up shared by the jobs, the demo and the tests.

Local mode binds loopback only and keeps the UI off, so tests and demos never need a
network or a free 4040.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession

from clickagg.store import credentials

LOCAL_CONF: Mapping[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.memory": "2g",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    # Commit a changelog per batch instead of a snapshot: state commits took ~40 % less.
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    # pyspark's own worker concatenates empty frames and pandas warns on every batch.
    "spark.executorEnv.PYTHONWARNINGS": "ignore::FutureWarning",
    # The per-cell HLL sketch is an object aggregate: past 128 keys per task Spark falls
    # back to sorting rows by (cuboid, values array, bucket), which was half the JVM's time.
    # 100k cells per task hold at most ~0.2 GB of sketches (lgK 12) before the fallback.
    "spark.sql.objectHashAggregate.sortBased.fallbackThreshold": "100000",
}


def local_session(
    app_name: str = "clickagg", cores: int = 2, conf: Mapping[str, str] | None = None
) -> SparkSession:
    """A local-mode SparkSession whose Python workers run this interpreter."""
    # Workers must import clickagg from the same venv and source tree as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, and no warning
    builder = SparkSession.builder.master(f"local[{cores}]").appName(app_name)
    for key, value in {**LOCAL_CONF, **solr_trust_conf(), **(conf or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


CLUSTER_CONF: Mapping[str, str] = {
    key: LOCAL_CONF[key]
    for key in (
        "spark.sql.session.timeZone",
        "spark.sql.execution.arrow.pyspark.enabled",
        "spark.sql.streaming.stateStore.providerClass",
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled",
        "spark.executorEnv.PYTHONWARNINGS",
        "spark.sql.objectHashAggregate.sortBased.fallbackThreshold",
    )
}


def session(app_name: str) -> SparkSession:
    """A SparkSession on whatever master spark-submit chose."""
    builder = SparkSession.builder.appName(app_name)
    for key, value in {**CLUSTER_CONF, **solr_trust_conf()}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def solr_trust_conf(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The driver's Solr CA bundle path ($CLICKAGG_SOLR_CA_FILE) for the executors too, whose
    Solr clients verify https with it: executors a standalone worker launches do not inherit
    the driver's environment. A path is no secret (credentials never go into Spark's conf)."""
    ca_file = environ.get(credentials.CA_FILE_ENV, "").strip()
    return {f"spark.executorEnv.{credentials.CA_FILE_ENV}": ca_file} if ca_file else {}
