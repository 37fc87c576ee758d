"""The raw archive: where it is, its row layout, and reading it back.

Every input line is kept as one row: a valid event (kind `event`, bots included and
flagged) or a dead letter (kind `dead_letter`, with its reason and raw bytes), partitioned
by kind, date and hour. The streaming aggregate query and replay both read it from here.
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
        pa.field("ingested_ms", pa.int64()),
        pa.field("kind", pa.string()),
        pa.field("date", pa.string()),
        pa.field("hour", pa.int32()),
    ]
)
PARTITIONS = ("kind", "date", "hour")


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


def spark_schema() -> Any:
    """The archive's Spark schema (a StructType), derived from the Arrow one."""
    return from_arrow_schema(SCHEMA)


def archived_events(spark: SparkSession, paths: JobPaths, *, streaming: bool) -> DataFrame:
    """Valid events from the archive, as a stream (for aggregation) or a table (replay)."""
    reader = spark.readStream if streaming else spark.read
    table = reader.schema(spark_schema()).parquet(paths.archive)
    return table.where(F.col("kind") == EVENT)
