"""Settling the finest level: recompute, from the archive and with replay's code, the
settled buckets that events the stream missed left wrong (`domain.settle`, docs/semantics.md).

A pass takes the watermark of the aggregate query's last committed batch: buckets settle by
it, and recomputed visits close by it, as the stream's state has them (a visit the stream
closes later adds its closing deltas on top, as it would have). It reads the archive, finds
the late events (first arrivals the stream read behind its
watermark, see `archive`), asks `domain.settle` per visitor which settled buckets they
change, recomputes those buckets with the history `domain.settle.read_range` says (wider
when `shortfall` says so), replaces them whole (cells no event supports any more go), and
records the pass in the store (`CellStore.record_settle`), for the next pass and the rollup.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from clickagg.domain import buckets, model, sessions
from clickagg.domain import settle as rules
from clickagg.pipeline import archive, dedup, ingest_log, replay
from clickagg.store import protocol

log = logging.getLogger(__name__)

_EARLIEST = -(2**62)  # before any bucket: nothing settled, nothing arrived
_MAX_WIDENINGS = 5  # each widening reaches a visit further; more means a runaway visitor
_BUCKETS_SCHEMA = "bucket_ms long"
_READ_SCHEMA = "start_ms long, visits_from_ms long, end_ms long"


@dataclass(frozen=True)
class SettleReport:
    mark: rules.Mark | None
    late_events: int
    recomputed: tuple[buckets.Span, ...]
    documents: int


def settle(
    spark: SparkSession,
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    store: protocol.CellStore,
    *,
    force: buckets.Span | None = None,
) -> SettleReport:
    """One settle pass over the finest level; `force` also recomputes the settled buckets
    of a span whatever arrived (backfill: lines the stream never read)."""
    level = aggregation.finest
    delay_ms = _ms(aggregation.watermark)
    archived = archive.archived_events(spark, paths, streaming=False)
    heads = archived.agg(F.max("arrival_ms").alias("arrived")).first()
    previous = store.settle_mark(level)
    watermark = ingest_log.stream_watermark(spark, paths)
    if heads is None or heads["arrived"] is None or not watermark:
        log.info("%s: nothing to settle: the stream has no watermark yet", aggregation.name)
        return SettleReport(previous, 0, (), 0)
    settled_end = rules.settled_end(watermark, level, aggregation.allowed_lateness)
    window = _Window(
        previous_end_ms=previous.settled_end_ms if previous else _EARLIEST,
        settled_end_ms=max(settled_end, previous.settled_end_ms if previous else _EARLIEST),
        arrived_through_ms=previous.arrived_through_ms if previous else _EARLIEST,
        delay_ms=delay_ms,
    )
    targets, late = _late_buckets(archived, window, sessions.Config.of(aggregation))
    if force is not None:
        targets |= {
            b for b in buckets.starts(force, level.granularity) if b < window.settled_end_ms
        }
    spans = rules.recompute_ranges(targets, level)
    documents = sum(_recompute(spark, aggregation, paths, store, span, watermark) for span in spans)
    mark = rules.Mark(
        settled_end_ms=window.settled_end_ms,
        arrived_through_ms=max(int(heads["arrived"]), window.arrived_through_ms),
        watermark_ms=watermark,
        passes=(previous.passes if previous else 0) + 1,
        settled_at_ms=int(time.time() * 1000),
    )
    store.record_settle(level, mark, spans)
    log.info(
        "%s: settle pass %d: settled before %s, %d late events, recomputed %s (%d documents)",
        aggregation.name,
        mark.passes,
        buckets.iso(mark.settled_end_ms),
        late,
        ", ".join(str(s) for s in spans) or "nothing",
        documents,
    )
    return SettleReport(mark, late, spans, documents)


@dataclass(frozen=True)
class _Window:
    """What this pass settles, against what earlier passes did."""

    previous_end_ms: int
    settled_end_ms: int
    arrived_through_ms: int
    delay_ms: int


def _late_buckets(
    archived: DataFrame, window: _Window, config: sessions.Config
) -> tuple[set[int], int]:
    """The settled buckets late events leave wrong, and how many late events there are."""
    missed = F.col("arrival_newest_ms").isNull() | (
        F.col("ts_ms") <= F.col("arrival_newest_ms") - window.delay_ms
    )
    # At or after, not after: the previous pass may have read its newest ingest batch only
    # in part (the batch's partitions commit one by one), so that batch is looked at again.
    news = F.col("arrival_ms") >= window.arrived_through_ms
    # Both ends are bucket starts, so comparing times compares buckets.
    ts = F.col("ts_ms")
    newly_settled = (ts >= window.previous_end_ms) & (ts < window.settled_end_ms)
    settled_again = news & (ts < window.previous_end_ms)
    rows = archived.select(
        "event_id",
        "visitor_id",
        "ts_ms",
        "bot",
        "arrival_ms",
        *archive.ARRIVAL_ORDER,
        missed.alias("missed"),
        news.alias("news"),
    )
    candidates = rows.where(F.col("missed") & (newly_settled | settled_again))
    copies = rows.join(candidates.select("event_id"), "event_id", "left_semi")
    late = dedup.first_arrivals(copies, streaming=False).where(
        F.col("missed") & (newly_settled | settled_again)
    )
    late.cache()
    try:
        late_count = late.count()
        # The copy the stream counted instead of a first copy it missed.
        counted_instead = dedup.first_arrivals(
            copies.where(~F.col("missed")), streaming=False
        ).join(late.select("event_id"), "event_id", "left_semi")
        visitors = (
            late.select("visitor_id")
            .union(counted_instead.select("visitor_id"))
            .union(_reordered_visitors(rows, window))
            .distinct()
        )
        mine = rows.join(visitors, "visitor_id", "left_semi")
        their_copies = rows.join(mine.select("event_id"), "event_id", "left_semi")
        history = dedup.first_arrivals(their_copies, streaming=False).join(
            visitors, "visitor_id", "left_semi"
        )
        flagged = history.withColumn("first", F.lit(True)).unionByName(
            counted_instead.withColumn("first", F.lit(False))
        )
        per_visitor = _VisitorBuckets(config, window)

        def buckets_of(key: tuple[Any, ...], frame: pd.DataFrame) -> pd.DataFrame:
            return per_visitor(key, frame)

        found = (
            flagged.select(
                "visitor_id", "event_id", "ts_ms", "bot", "missed", "news", "first", "arrival_batch"
            )
            .groupBy("visitor_id")
            .applyInPandas(buckets_of, _BUCKETS_SCHEMA)
            .distinct()
            .collect()
        )
    finally:
        late.unpersist()
    return {int(row["bucket_ms"]) for row in found}, late_count


def _reordered_visitors(rows: DataFrame, window: _Window) -> DataFrame:
    """Visitors with an event near the newly settled buckets that arrived after one of
    theirs with a later time: the stream corrected their cells, and a sketch cannot forget
    a visitor, so a cell that lost all of them still counts them (settle deletes it)."""
    near = (F.col("ts_ms") >= window.previous_end_ms - rules.DEFAULT_VISIT_REACH_MS) & (
        F.col("ts_ms") < window.settled_end_ms + rules.DEFAULT_VISIT_REACH_MS
    )
    earlier_batches = (
        Window.partitionBy("visitor_id")
        .orderBy("arrival_batch")
        .rangeBetween(Window.unboundedPreceding, -1)
    )
    seen_before = F.max("ts_ms").over(earlier_batches)
    counted = rows.where(near & ~F.col("missed") & ~F.col("bot"))
    reordered = counted.withColumn("seen_before", seen_before).where(
        F.col("ts_ms") < F.col("seen_before")
    )
    return reordered.select("visitor_id")


@dataclass(frozen=True)
class _VisitorBuckets:
    """applyInPandas: one visitor's events → the settled buckets to recompute."""

    config: sessions.Config
    window: _Window

    def __call__(self, _: tuple[Any, ...], frame: pd.DataFrame) -> pd.DataFrame:
        granularity = self.config.granularity
        rows = list(frame.itertuples(index=False))
        counted = [r for r in rows if not r.bot]
        true_view = [_counted(r) for r in counted if r.first]
        stream_view = [_counted(r) for r in counted if not (r.first and r.missed)]
        late_now = {r.event_id for r in counted if r.first and r.missed and r.news}
        window = self.window
        changed = set(rules.changed_buckets(stream_view, true_view, self.config))
        for view in _views_before_reordering(counted):
            changed |= rules.changed_buckets(view, true_view, self.config)
        found = {b for b in changed if window.previous_end_ms <= b < window.settled_end_ms}
        found |= {
            b
            for b in rules.affected_buckets(true_view, late_now, self.config)
            if b < window.previous_end_ms
        }
        # Bot events count per bucket, whatever the visits.
        for r in rows:
            if r.bot and (r.missed or not r.first):
                b = buckets.floor(int(r.ts_ms), granularity)
                if window.previous_end_ms <= b < window.settled_end_ms or (
                    r.news and b < window.previous_end_ms
                ):
                    found.add(b)
        return pd.DataFrame({"bucket_ms": sorted(found)}, dtype="int64")


def _views_before_reordering(rows: list[Any]) -> Iterator[list[sessions.Counted]]:
    """What the stream had counted of a visitor before each ingest batch that brought one of
    their events behind one it had already seen (the stream corrected cells there)."""
    seen: list[Any] = []
    for batch in sorted({r.arrival_batch for r in rows}):
        arrived = [r for r in rows if r.arrival_batch == batch and not (r.first and r.missed)]
        if seen and arrived and min(r.ts_ms for r in arrived) < max(r.ts_ms for r in seen):
            yield [_counted(r) for r in seen]
        seen += arrived


def _counted(row: Any) -> sessions.Counted:
    # Which buckets change depends on times and ids only.
    return sessions.Counted(int(row.ts_ms), str(row.event_id), "", 0.0, ())


def _recompute(
    spark: SparkSession,
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    store: protocol.CellStore,
    span: buckets.Span,
    watermark_ms: int,
) -> int:
    """Recompute and replace one span, reading wider until every visit in it is proven."""
    config = sessions.Config.of(aggregation)
    read = rules.read_range(span, config)
    for _ in range(_MAX_WIDENINGS):
        events = replay.first_arrivals_between(spark, paths, read.start_ms, read.end_ms)
        wider = _shortfall(events, read, config)
        if wider is None:
            break
        log.info("%s: reading wider for %s: %s", aggregation.name, span, wider.reason)
        read = wider
    else:
        raise RuntimeError(f"{aggregation.name}: {span}: visits reach beyond {read}")
    state, bots = replay.recompute(aggregation, events, span, watermark_ms)
    return store.replace_range(
        aggregation.finest,
        state,
        bots,
        writer=f"settle:{buckets.iso(span.start_ms)}/{buckets.iso(span.end_ms)}",
        start_ms=span.start_ms,
        end_ms=span.end_ms,
    )


def _shortfall(
    events: DataFrame, read: rules.ReadRange, config: sessions.Config
) -> rules.ReadRange | None:
    """The union of the wider reads the visitors touching the target need, or None."""
    target = read.target
    touching = events.where(
        (F.col("ts_ms") >= target.start_ms) & (F.col("ts_ms") < target.end_ms) & ~F.col("bot")
    ).select("visitor_id")
    theirs = events.where(~F.col("bot")).join(touching.distinct(), "visitor_id", "left_semi")
    check = _VisitorShortfall(config, read)

    def wider_of(key: tuple[Any, ...], frame: pd.DataFrame) -> pd.DataFrame:
        return check(key, frame)

    rows = (
        theirs.select("visitor_id", "event_id", "ts_ms")
        .groupBy("visitor_id")
        .applyInPandas(wider_of, _READ_SCHEMA)
        .agg(F.min("start_ms"), F.min("visits_from_ms"), F.max("end_ms"))
        .first()
    )
    if rows is None or rows[0] is None:
        return None
    return rules.ReadRange(
        target,
        int(rows[0]),
        int(rows[1]),
        int(rows[2]),
        "visits reach beyond the first read",
    ).union(read)


@dataclass(frozen=True)
class _VisitorShortfall:
    config: sessions.Config
    read: rules.ReadRange

    def __call__(self, _: tuple[Any, ...], frame: pd.DataFrame) -> pd.DataFrame:
        found = rules.shortfall(
            self.read, [_counted(r) for r in frame.itertuples(index=False)], self.config
        )
        columns: dict[str, Iterator[int] | list[int]] = {
            "start_ms": [found.start_ms] if found else [],
            "visits_from_ms": [found.visits_from_ms] if found else [],
            "end_ms": [found.end_ms] if found else [],
        }
        return pd.DataFrame(columns, dtype="int64")


def _ms(duration: Any) -> int:
    return int(duration.approx_seconds * 1000)
