"""Ad-hoc Spark SQL over an Aggregation's raw archive and aggregate levels (the seed's
"polyglot analytics").

Tables: `events` (valid events; bots flagged by `bot`), `dead_letters` (`reason`, the raw
line), and one per level, `level_15m`, `level_1h`, ... (one row per cell). The levels are
read from Solr by a Python data source whose reads run on the executors, so a query runs on
a cluster as it does locally. A query that fails raises `errors.SqlError` with Spark's own
one-paragraph message, never a JVM stack.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition

from clickagg import errors
from clickagg.domain import model, sessions
from clickagg.pipeline import archive
from clickagg.pipeline import session as spark_session
from clickagg.store import cell_reads
from clickagg.store import client as solr

log = logging.getLogger(__name__)
SOURCE_NAME = "clickagg_cells"


def level_table(level: model.Level) -> str:
    return f"level_{level.name}"


def register(
    spark: SparkSession, aggregation: model.Aggregation, paths: archive.JobPaths, solr_url: str
) -> list[str]:
    """Register every table of the Aggregation; their names, in order."""
    spark.dataSource.register(CellsSource)
    raw = _archive(spark, paths)
    kept = [c for c in raw.columns if c not in ("kind", "reason", "raw")]
    raw.where(F.col("kind") == archive.EVENT).select(*kept).createOrReplaceTempView("events")
    # `ingested_ms` (documented) is when the line's ingest batch began: its `arrival_ms`.
    raw.where(F.col("kind") == archive.DEAD_LETTER).select(
        "reason",
        F.col("raw").cast("string").alias("raw"),
        F.col("arrival_ms").alias("ingested_ms"),
        "date",
        "hour",
    ).createOrReplaceTempView("dead_letters")
    names = [d.name for d in aggregation.dimensions]
    for level in aggregation.levels:
        cells = (
            spark.read.format(SOURCE_NAME)
            .option("solr_url", solr_url)
            .option("collection", level.collection)
            .option("dimensions", ",".join(names))
            .load()
        )
        cells.createOrReplaceTempView(level_table(level))
    return ["events", "dead_letters", *(level_table(level) for level in aggregation.levels)]


def ask(
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    solr_url: str,
    query: str,
    *,
    max_rows: int,
    out: Path | None = None,
    file_format: str = "csv",
) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """`clickagg sql` on a local Spark: the first `max_rows` rows with their columns, or None
    when the whole result went to `out`."""
    spark = spark_session.local_session(f"{aggregation.name}-sql")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        register(spark, aggregation, paths, solr_url)
        result = run(spark, query)
        if out is None:
            return collect(result, max_rows)
        write(result, out, file_format)
        return None
    finally:
        spark.stop()


def run(spark: SparkSession, query: str) -> DataFrame:
    """The query's result, analysed (so a wrong name fails here, with Spark's message)."""
    try:
        result = spark.sql(query)
        result.schema  # noqa: B018 (forces analysis)
    except PySparkException as exc:
        raise errors.SqlError(short_message(exc)) from None
    return result


def collect(frame: DataFrame, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    try:
        rows = frame.limit(limit).collect()
    except PySparkException as exc:
        raise errors.SqlError(short_message(exc)) from None
    return frame.columns, [tuple(row) for row in rows]


def write(frame: DataFrame, path: Path, file_format: str) -> None:
    """The whole result as a Spark output directory of CSV (with a header) or Parquet."""
    try:
        frame.write.mode("overwrite").option("header", "true").format(file_format).save(str(path))
    except PySparkException as exc:
        raise errors.SqlError(short_message(exc)) from None


def short_message(exc: PySparkException) -> str:
    """Spark's message, without the query plan and JVM stack that may follow it."""
    kept = []
    for line in str(exc).split("\n\nJVM stacktrace:", 1)[0].splitlines():
        if line.startswith("\tat "):
            continue
        kept.append(line)
        if "SQLSTATE:" in line:  # the plan comes after the state
            break
    return "\n".join(kept).strip().rstrip(";")


def _archive(spark: SparkSession, paths: archive.JobPaths) -> DataFrame:
    where = paths.archive
    if "://" not in where and not Path(where).is_dir():
        log.info("no raw archive at %s yet: events and dead_letters are empty", where)
        return spark.createDataFrame([], archive.spark_schema())
    return spark.read.schema(archive.spark_schema()).parquet(where)


class CellsSource(DataSource):
    """Options: solr_url, collection, dimensions (comma-separated)."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        dims = [d for d in self.options["dimensions"].split(",") if d]
        columns = ["level string", "bucket timestamp", "bucket_end timestamp", "cuboid string"]
        columns += [f"{d} string" for d in dims]
        columns += [f"{f} double" for f in sessions.FIELDS]
        return ", ".join([*columns, "unique_visitors double"])

    def reader(self, schema: Any) -> DataSourceReader:
        return CellsReader(dict(self.options))


class CellsReader(DataSourceReader):
    """One partition: the cells paged from Solr by cursor, on the executor."""

    def __init__(self, options: dict[str, str]) -> None:
        self.options = options

    def read(self, partition: InputPartition) -> Iterator[tuple[Any, ...]]:
        dims = [d for d in self.options["dimensions"].split(",") if d]
        order = ["level", "bucket", "bucket_end", "cuboid", *dims, *sessions.FIELDS]
        with solr.SolrClient(self.options["solr_url"]) as client:
            for row in cell_reads.cell_rows(client, self.options["collection"], dims):
                row["bucket"], row["bucket_end"] = _time(row["bucket"]), _time(row["bucket_end"])
                yield (*(row.get(name) for name in order), row["unique_visitors"])


def _time(value: object) -> dt.datetime | None:
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
