"""Small files beside the checkpoints: the newest event time after each ingest batch, and
the watermark of the aggregate query's last committed batch.

The `too_late` limit of batch N measures from the newest event time of the batches before
N, so a batch that Spark runs again after a crash must see what earlier batches saw: batch N
reads the entry of the newest batch before it, never its own. Written through Hadoop's
FileSystem, so it lives wherever the checkpoints do (a local path, HDFS, S3).
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import SparkSession

from clickagg.pipeline import archive

_KEPT_ENTRIES = 10  # older entries are never read again
_NONE = "none"


def newest_before(spark: SparkSession, paths: archive.JobPaths, batch_id: int) -> int | None:
    """The newest event time through the last batch before `batch_id` (None: none yet)."""
    fs, folder = _folder(spark, paths)
    if not fs.exists(folder):
        return None
    earlier = [n for n in _entries(fs, folder) if n < batch_id]
    if not earlier:
        return None
    stream = fs.open(_path(spark, folder, max(earlier)))
    try:
        text = str(stream.readUTF())
    finally:
        stream.close()
    return None if text == _NONE else int(text)


def record(
    spark: SparkSession, paths: archive.JobPaths, batch_id: int, newest_ms: int | None
) -> None:
    """Keep the newest event time through `batch_id`, and forget old entries."""
    fs, folder = _folder(spark, paths)
    stream = fs.create(_path(spark, folder, batch_id), True)
    try:
        stream.writeUTF(_NONE if newest_ms is None else str(newest_ms))
    finally:
        stream.close()
    for old in _entries(fs, folder):
        if old < batch_id - _KEPT_ENTRIES:
            fs.delete(_path(spark, folder, old), False)


def _folder(spark: SparkSession, paths: archive.JobPaths) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    folder = jvm.org.apache.hadoop.fs.Path(paths.checkpoint("ingest-newest"))
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    return folder.getFileSystem(hadoop_conf), folder


def _path(spark: SparkSession, folder: Any, batch_id: int) -> Any:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return jvm.org.apache.hadoop.fs.Path(folder, str(batch_id))


def _entries(fs: Any, folder: Any) -> list[int]:
    names = [str(status.getPath().getName()) for status in fs.listStatus(folder)]
    return [int(name) for name in names if name.isdigit()]


def stream_watermark(spark: SparkSession, paths: archive.JobPaths) -> int | None:
    """The watermark the aggregate query's last committed batch ran with: its state holds
    exactly the visits that watermark leaves open (None before its first commit)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    root = jvm.org.apache.hadoop.fs.Path(paths.checkpoint("aggregate"))
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    commits = jvm.org.apache.hadoop.fs.Path(root, "commits")
    if not fs.exists(commits):
        return None
    done = _entries(fs, commits)
    if not done:
        return None
    stream = fs.open(jvm.org.apache.hadoop.fs.Path(root, f"offsets/{max(done)}"))
    try:
        text = str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()
    # Spark's offset log: a version line, the batch's metadata as JSON, then the offsets.
    metadata = json.loads(text.splitlines()[1])
    return int(metadata["batchWatermarkMs"])
