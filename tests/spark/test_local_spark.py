"""The real Spark 4.3 runs here in local mode, with Python workers from our venv."""

from __future__ import annotations

import sys
from typing import Any

import pytest

pytestmark = pytest.mark.spark


def test_spark_version_is_4_3(spark: Any) -> None:
    assert spark.version.startswith("4.3")


def test_window_aggregation_with_hll_sketch(spark: Any) -> None:
    from pyspark.sql import functions as F

    rows = [
        ("2026-11-26 10:01:00", "v1"),
        ("2026-11-26 10:05:00", "v2"),
        ("2026-11-26 10:14:59", "v1"),
        ("2026-11-26 10:15:00", "v3"),
    ]
    events = spark.createDataFrame(rows, "ts string, visitor string").withColumn(
        "ts", F.to_timestamp("ts")
    )
    buckets = (
        events.groupBy(F.window("ts", "15 minutes").start.alias("bucket"))
        .agg(
            F.count("*").alias("events"),
            F.hll_sketch_estimate(F.hll_sketch_agg("visitor", 12)).alias("visitors"),
        )
        .orderBy("bucket")
        .collect()
    )
    assert [(r.events, r.visitors) for r in buckets] == [(3, 2), (1, 1)]


def test_python_workers_use_the_venv_interpreter(spark: Any) -> None:
    from pyspark.sql import functions as F

    executable = F.udf(lambda _: sys.executable)
    seen = spark.range(1).select(executable("id").alias("python")).first().python
    assert seen == sys.executable
