"""The raw archive: where it is, its row layout, and reading it back.

Every input line is kept as one row: a valid event (kind `event`, bots included and
flagged) or a dead letter (kind `dead_letter`, with its reason and raw bytes), partitioned
by kind, date, hour and ingest batch. The streaming aggregate query, replay and settle all
read it from here.

Each row says how it arrived, so that deduplication keeps the first copy and settle finds
what the stream missed:
* `arrival_batch`: the ingest micro-batch (below 0 for `clickagg backfill`, see
  `BACKFILL_BATCH`);
* `arrival_source`: the file (its URI) or the Kafka `topic/partition`;
* `arrival_offset`: the Kafka offset, or for a file the start of the line's split plus the
  line's index in it (the line number for a file read in one split; increasing in line
  order in any case);
* `arrival_ms`: the driver's clock when the batch (or backfill run) began;
* `arrival_newest_ms`: the newest event time the stream had seen through this batch: the
  next batch's `too_late` limit measures from it, and minus `lateness.watermark` it bounds
  the stream's watermark when it read the row (null for backfill, which the stream never
  saw as live).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from clickagg.domain import events, model

EVENT = "event"
DEAD_LETTER = "dead_letter"

STRINGS = ("event_id", "visitor_id", "type", *events.OPTIONAL_STRING_FIELDS)
SCHEMA = pa.schema(
    [
        *(pa.field(name, pa.string()) for name in STRINGS),
        pa.field("revenue", pa.float64()),
        pa.field("ts_ms", pa.int64()),
        pa.field("bot", pa.bool_()),
        pa.field("reason", pa.string()),
        pa.field("raw", pa.binary()),
        pa.field("arrival_source", pa.string()),
        pa.field("arrival_offset", pa.int64()),
        pa.field("arrival_ms", pa.int64()),
        pa.field("arrival_newest_ms", pa.int64()),
        pa.field("kind", pa.string()),
        pa.field("date", pa.string()),
        pa.field("hour", pa.int32()),
        pa.field("arrival_batch", pa.int64()),
    ]
)
PARTITIONS = ("kind", "date", "hour", "arrival_batch")
#: First arrival wins: the copy with the smallest of these, in this order, is kept.
ARRIVAL_ORDER = ("arrival_batch", "arrival_source", "arrival_offset")
#: A backfill run's arrival batch is this plus the run's start (ms): negative, so backfilled
#: lines come before anything the stream read (history it never saw), a run after the ones
#: before it, and each run has partitions of its own.
BACKFILL_BATCH = -(2**62)


@dataclass(frozen=True)
class JobPaths:
    """Where one Aggregation's job keeps its checkpoints and, by default, its archive."""

    root: str
    archive_uri: str | None = None  # spec.rawArchive.uri, when the user chose one

    @classmethod
    def of(cls, root: str, aggregation: model.Aggregation) -> JobPaths:
        return cls(root.rstrip("/"), aggregation.spec.raw_archive.uri)

    @property
    def archive(self) -> str:
        return (self.archive_uri or f"{self.root}/archive").rstrip("/")

    def checkpoint(self, query: str) -> str:
        return f"{self.root}/checkpoints/{query}"


@dataclass(frozen=True)
class IngestReport:
    """What one ingest batch archived."""

    lines: int
    dead_letters: int  # too_late ones included
    too_late: int
    bots: int
    newest_event_ms: int | None


def spark_schema() -> Any:
    """The archive's Spark schema (a StructType), derived from the Arrow one."""
    return from_arrow_schema(SCHEMA)


def archived_events(spark: SparkSession, paths: JobPaths, *, streaming: bool) -> DataFrame:
    """Valid events from the archive, as a stream (for aggregation) or a table (replay)."""
    reader = spark.readStream if streaming else spark.read
    if streaming:
        _ensure_folder(spark, paths.archive)
    # Retention deletes whole hour partitions the file sink's log still lists.
    table = (
        reader.schema(spark_schema()).option("ignoreMissingFiles", "true").parquet(paths.archive)
    )
    return table.where(F.col("kind") == EVENT)


def _ensure_folder(spark: SparkSession, uri: str) -> None:
    """A file stream needs its folder at start, and ingest writes it only with its first
    batch; Hadoop's FileSystem so any archive URI works the same."""
    jvm: Any = spark.sparkContext._jvm  # py4j's gateway is untyped
    folder = jvm.org.apache.hadoop.fs.Path(uri)
    folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).mkdirs(folder)


def append(rows: DataFrame, paths: JobPaths) -> None:
    """Write archive rows of one ingest batch (or backfill run). Each batch has partitions of
    its own, overwritten when the batch is written again, so a re-run batch writes once."""
    (
        rows.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(*PARTITIONS)
        .parquet(paths.archive)
    )
