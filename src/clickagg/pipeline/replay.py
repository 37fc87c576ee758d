"""Replay: recompute the finest level for a time range from the raw archive, in batch.

It runs the streaming job's sessionizer (on the same path, JVM or Python) and cell summing
over the archived events, with the watermark the stream has reached, so it gives exactly
what streaming gave; documents are replaced whole, so replaying a range twice changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from clickagg.domain import buckets, cells, model, sessions
from clickagg.pipeline import archive, cell_sums, dedup, sessionize
from clickagg.store import protocol

log = logging.getLogger(__name__)
# A visit that starts in the range may run past its end; read this much further.
_VISIT_TAIL_MS = 24 * 3600 * 1000
_NEWEST = "_newest_copy_ms"


@dataclass(frozen=True)
class ReplayReport:
    documents: int
    events: int
    removed_stale: bool


def replay(
    spark: SparkSession,
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    store: protocol.CellStore,
    start_ms: int,
    end_ms: int,
    *,
    history_ms: int,
) -> ReplayReport:
    """Recompute and replace the finest-level documents with buckets in [start, end)."""
    level = aggregation.finest
    start_ms = buckets.floor(start_ms, level.granularity)
    first = _first_arrivals(spark, paths).persist()
    try:
        newest = first.agg(F.max(_NEWEST)).first()[0]  # type: ignore[index]
        if newest is None:
            return ReplayReport(0, 0, False)
        watermark = int(newest) - int(aggregation.watermark.approx_seconds * 1000)
        read = (F.col("ts_ms") >= start_ms - history_ms) & (
            F.col("ts_ms") < end_ms + _VISIT_TAIL_MS
        )
        window = first.where(read).drop(_NEWEST)
        state, bots = recompute(aggregation, window, buckets.Span(start_ms, end_ms), watermark)
        events = first.where((F.col("ts_ms") >= start_ms) & (F.col("ts_ms") < end_ms)).count()
    finally:
        first.unpersist()
    writer = f"replay:{buckets.iso(start_ms)}/{buckets.iso(end_ms)}"
    written = store.replace_range(
        level, state, bots, writer=writer, start_ms=start_ms, end_ms=end_ms
    )
    log.info("%s: replayed %s: %d events, %d documents", aggregation.name, writer, events, written)
    return ReplayReport(written, events, True)


def _first_arrivals(spark: SparkSession, paths: archive.JobPaths) -> DataFrame:
    """The first arrival of every event id in the archive, with the newest time of any of
    its copies (column `_NEWEST`: the stream's watermark saw every copy): one read and one
    shuffle. All ids, not the replay's window: its `history_ms` reaches back over nearly
    all of the archive, and a copy outside it may still be the first."""
    ranked = dedup.ranked(archive.archived_events(spark, paths, streaming=False))
    newest = F.max("ts_ms").over(Window.partitionBy("event_id"))
    first = ranked.withColumn(_NEWEST, newest).where(dedup.is_first())
    return first.select(*archive.STRINGS, "revenue", "ts_ms", "bot", _NEWEST)  # kept: events


def first_arrivals_between(
    spark: SparkSession, paths: archive.JobPaths, start_ms: int, end_ms: int
) -> DataFrame:
    """The archived events with a time in [start, end) that are their id's first arrival:
    every copy of their ids counts, whatever its time (copies may differ in `ts`)."""
    archived = archive.archived_events(spark, paths, streaming=False)
    in_range = (F.col("ts_ms") >= start_ms) & (F.col("ts_ms") < end_ms)
    ids = archived.where(in_range).select("event_id")
    copies = archived.join(ids, "event_id", "left_semi")
    return dedup.first_arrivals(copies, streaming=False).where(in_range)


def recompute(
    aggregation: model.Aggregation,
    events: DataFrame,
    target: buckets.Span,
    watermark_ms: int,
) -> tuple[list[cells.CellDelta], dict[int, int]]:
    """The whole state of the buckets in `target` from `events` (first arrivals), every
    visitor sessionized in one go with the stream's sessionizer at `watermark_ms`."""
    config = sessions.Config.of(aggregation)
    facts = sessionize.history_facts(events, config, watermark_ms)
    in_range = facts.where(
        (F.col("bucket_ms") >= target.start_ms) & (F.col("bucket_ms") < target.end_ms)
    )
    return cell_sums.cell_deltas(in_range, aggregation)
