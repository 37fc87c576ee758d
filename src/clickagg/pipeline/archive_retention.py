"""The raw archive's retention: whole hour partitions of events (by event time) and of dead
letters (by arrival) that lie before what `domain.retention` lets go, deleted through
Hadoop's FileSystem so any archive URI Spark reads (file, HDFS, S3) works the same."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pyspark.sql import SparkSession

from clickagg.domain import retention
from clickagg.pipeline import archive

log = logging.getLogger(__name__)
_HOUR_MS = 3_600_000


def apply(spark: SparkSession, paths: archive.JobPaths, forgetting: retention.Forgetting) -> int:
    """Delete the hour partitions that end at or before the plan's limit; how many went."""
    before = forgetting.delete_before_ms
    if before is None:
        return 0
    jvm: Any = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(paths.archive)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    deleted = 0
    for kind in (archive.EVENT, archive.DEAD_LETTER):
        kind_dir = jvm.org.apache.hadoop.fs.Path(root, f"kind={kind}")
        if not fs.exists(kind_dir):
            continue
        for date_status in fs.listStatus(kind_dir):
            date_name = date_status.getPath().getName().removeprefix("date=")
            for hour_status in fs.listStatus(date_status.getPath()):
                hour = int(hour_status.getPath().getName().removeprefix("hour="))
                start = dt.datetime.fromisoformat(date_name).replace(tzinfo=dt.UTC)
                end_ms = int(start.timestamp() * 1000) + (hour + 1) * _HOUR_MS
                if end_ms <= before and fs.delete(hour_status.getPath(), True):
                    deleted += 1
    log.info("archive %s: deleted %d hour partitions before %d", paths.archive, deleted, before)
    return deleted
