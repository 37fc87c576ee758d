"""Backfill ("replay and refill"): historical raw lines into the archive, within a window
the user states; settling the range is the job's next step (`jobs.backfill`).

The lines go through the stream's parser. Their arrival batch is `archive.BACKFILL_BATCH`
plus the run's start, so they come before anything the stream read (they are history it
never saw) and each run writes partitions of its own. Their `arrival_newest_ms` is null:
the stream never counted them live, so settle treats every one of them as missed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from clickagg.domain import buckets, model
from clickagg.pipeline import archive, parse, stream

log = logging.getLogger(__name__)
#: Future limit of a backfill: none beyond the stated window.
_NO_FUTURE_LIMIT_MS = 10**15


@dataclass(frozen=True)
class BackfillReport:
    arrival_batch: int
    events: int
    dead_letters: int


def backfill(
    spark: SparkSession,
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    files: Sequence[str],
    window: buckets.Span,
) -> BackfillReport:
    """Parse `files` into the archive; events outside `window` become dead letters."""
    started_ms = int(time.time() * 1000)
    settings = parse.ParseSettings(
        archive.BACKFILL_BATCH + started_ms, started_ms, max_future_ms=_NO_FUTURE_LIMIT_MS
    )
    lines = stream.file_lines(spark.read.format("text").load(list(files)))
    schema = archive.spark_schema()
    parsed = lines.mapInArrow(lambda b: parse.parse_batches(b, settings), schema)
    rows = parsed.mapInArrow(lambda b: parse.mark_outside(b, window), schema)
    archive.append(rows, paths)
    written = (
        spark.read.schema(schema)
        .parquet(paths.archive)
        .where(F.col("arrival_batch") == settings.arrival_batch)
        .groupBy("kind")
        .count()
        .collect()
    )
    counts = {row["kind"]: int(row["count"]) for row in written}
    report = BackfillReport(
        settings.arrival_batch, counts.get(archive.EVENT, 0), counts.get(archive.DEAD_LETTER, 0)
    )
    log.info(
        "%s: backfilled %d files within %s: %d events, %d dead letters",
        aggregation.name,
        len(files),
        window,
        report.events,
        report.dead_letters,
    )
    return report
