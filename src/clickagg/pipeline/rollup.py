"""Rollups in Spark: build a coarser level from the next finer level's documents.

`roll_up` runs one level incrementally: it rebuilds the coarser buckets whose finer
buckets were written again since the last run (late data settled, a replay), then the
complete buckets past the level's watermark, a day of input at a time, and after each
piece commits and moves the watermark (the `__level__` document). Coarser documents are
replaced whole under deterministic ids, so a rerun, or a run killed midway and started
again, converges on the same documents.

How finer documents are read and combined is behind `Combine`: `SparkCombine` reads them
through the store and sums and merges them in Spark; reading Solr where it lives
(pushdown, locality-aware sketch merges) can replace it without touching the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from clickagg.domain import buckets, cells, durations, kpis, level_progress, model, rollup, sessions
from clickagg.store import protocol
from clickagg.store import sketches as stored_sketches

log = logging.getLogger(__name__)
#: One piece of work reads about this much finer input (at least one coarser bucket).
PIECE_MS = durations.DAY * 1000


@dataclass(frozen=True)
class Combined:
    """Coarser cells (their whole state) and bot counts for one span, and what was read."""

    cells: list[cells.CellDelta]
    bot_counts: dict[int, int]
    finer_documents: int


class Combine(Protocol):
    """The read-and-aggregate step: the finer level's documents in `span`, combined into
    the coarser level's cells (additive state summed, sketches merged)."""

    def __call__(
        self, finer: model.Level, coarser: model.Level, span: buckets.Span
    ) -> Combined: ...


class SparkCombine:
    """Reads the finer documents through the store, sums and merges them in Spark."""

    def __init__(
        self, spark: SparkSession, aggregation: model.Aggregation, store: protocol.CellStore
    ) -> None:
        self.spark = spark
        self.aggregation = aggregation
        self.store = store
        self.rules = rollup.combine_rules(kpis.STATE_FIELDS)

    def __call__(self, finer: model.Level, coarser: model.Level, span: buckets.Span) -> Combined:
        rows = list(self._rows(finer, coarser, span))
        if not rows:
            return Combined([], {}, 0)
        frame = self.spark.createDataFrame(rows, self._schema())
        summed = frame.groupBy("cuboid", "values", "bucket_ms").agg(
            *(
                F.sum(field).alias(field)
                if rule == "sum"
                else F.hll_union_agg(field, True).alias(field)
                for field, rule in self.rules
            )
        )
        return self._combined(summed.collect(), len(rows))

    def _schema(self) -> T.StructType:
        fields = [
            T.StructField("cuboid", T.StringType()),
            T.StructField("values", T.ArrayType(T.StringType())),
            T.StructField("bucket_ms", T.LongType()),
        ]
        for field, rule in self.rules:
            kind = T.BinaryType() if rule == "merge" else T.DoubleType()
            fields.append(T.StructField(field, kind))
        return T.StructType(fields)

    def _rows(
        self, finer: model.Level, coarser: model.Level, span: buckets.Span
    ) -> Iterator[tuple[Any, ...]]:
        by_name = {c.name: c for c in self.aggregation.cuboids}
        for document in self.store.documents_in(finer, span.start_ms, span.end_ms):
            name = str(document["cuboid"])
            cuboid = by_name.get(name)
            values = (
                [str(document[cells.dimension_field(d)]) for d in cuboid.dimensions]
                if cuboid is not None
                else []
            )
            parent = rollup.parent(buckets.parse_iso(str(document["bucket"])), coarser)
            state = [
                stored_sketches.of(document) if rule == "merge" else float(document.get(field) or 0)
                for field, rule in self.rules
            ]
            yield (name, values, parent, *state)

    def _combined(self, rows: Sequence[Any], read: int) -> Combined:
        by_name = {c.name: c for c in self.aggregation.cuboids}
        combined: list[cells.CellDelta] = []
        bots: dict[int, int] = {}
        for row in rows:
            bucket_ms = int(row["bucket_ms"])
            if row["cuboid"] == cells.BOTS_CUBOID:
                bots[bucket_ms] = round(row[cells.BOT_EVENTS_FIELD] or 0)
                continue
            cuboid = by_name.get(row["cuboid"])
            if cuboid is None:  # a cuboid the spec no longer declares
                continue
            document = row.asDict()
            sketch = document.get(cells.SKETCH_FIELD)
            combined.append(
                cells.CellDelta(
                    cuboid=cuboid,
                    bucket_ms=bucket_ms,
                    values=tuple(row["values"]),
                    deltas=cells.state_of(document, sessions.FIELDS),
                    sketch=bytes(sketch) if sketch is not None else None,
                )
            )
        return Combined(combined, bots, read)


@dataclass(frozen=True)
class LevelRun:
    """What one run did to one coarser level."""

    level: str
    redone: tuple[int, ...]  # already rolled-up buckets rebuilt because their input changed
    rolled_up: buckets.Span | None  # new buckets rolled up
    documents: int
    finer_documents: int
    seconds: float
    report: level_progress.LevelReport

    def __str__(self) -> str:
        done = "nothing new" if self.rolled_up is None else f"rolled up {self.rolled_up}"
        last = self.report.last_bucket_ms
        return (
            f"{self.level}: {done}, redid {len(self.redone)} buckets, "
            f"{self.finer_documents} finer documents into {self.documents} in "
            f"{self.seconds:.1f}s; last rolled-up bucket "
            + ("none" if last is None else buckets.iso(last))
        )


def roll_up(
    aggregation: model.Aggregation,
    index: int,
    store: protocol.CellStore,
    combine: Combine,
    input_end_ms: int | None,
) -> LevelRun:
    """Bring `aggregation.levels[index]` up to date with its input, complete up to
    `input_end_ms` (domain.rollup.input_end)."""
    started = time.monotonic()
    run_started_ms = int(time.time() * 1000)
    finer, coarser = aggregation.levels[index - 1], aggregation.levels[index]
    before = store.read_level_progress(coarser)
    last = before.last_bucket_ms
    redone = _redo(store, finer, coarser, before)
    written = read = 0
    for bucket_ms in redone:
        span = rollup.children(bucket_ms, coarser)
        documents, finer_documents = _write(store, combine, finer, coarser, span)
        written, read = written + documents, read + finer_documents
    report = level_progress.LevelReport(
        last, input_end_ms, run_started_ms, before.horizon_ms, run_started_ms
    )
    if redone:
        store.report_level_progress(coarser, report)
    oldest = store.oldest_bucket(finer)
    step = (
        rollup.next_step(coarser, last, input_end_ms, input_start_ms=oldest)
        if oldest is not None
        else None
    )
    if step is not None:
        for piece in _pieces(step.span, coarser):
            documents, finer_documents = _write(store, combine, finer, coarser, piece)
            written, read = written + documents, read + finer_documents
            last_in_piece = buckets.subtract(piece.end_ms, coarser.granularity)
            report = level_progress.LevelReport(
                last_in_piece, input_end_ms, run_started_ms, before.horizon_ms, run_started_ms
            )
            store.report_level_progress(coarser, report)
            log.info("%s: %s rolled up %s", aggregation.name, coarser.name, piece)
    if not redone and step is None:
        store.report_level_progress(coarser, report)
    run = LevelRun(
        coarser.name,
        redone,
        step.span if step else None,
        written,
        read,
        time.monotonic() - started,
        report,
    )
    log.info("%s: %s", aggregation.name, run)
    return run


def _redo(
    store: protocol.CellStore,
    finer: model.Level,
    coarser: model.Level,
    before: level_progress.LevelReport,
) -> tuple[int, ...]:
    """The rolled-up coarser buckets whose finer documents were written since the last run."""
    since = before.changed_since()
    end = rollup.rolled_up_end(before.last_bucket_ms, coarser)
    if since is None or end is None:
        return ()
    changed = store.changed_buckets(finer, since, 0, end)
    redo = rollup.redo(changed, (finer, coarser), {coarser.name: before.last_bucket_ms})
    return redo[coarser.name]


def _pieces(span: buckets.Span, coarser: model.Level) -> Iterator[buckets.Span]:
    """`span` cut into whole coarser buckets, about `PIECE_MS` of input each."""
    start = span.start_ms
    while start < span.end_ms:
        end = buckets.end(start, coarser.granularity)
        while end < span.end_ms and end - start < PIECE_MS:
            end = buckets.end(end, coarser.granularity)
        yield buckets.Span(start, min(end, span.end_ms))
        start = end


def _write(
    store: protocol.CellStore,
    combine: Combine,
    finer: model.Level,
    coarser: model.Level,
    span: buckets.Span,
) -> tuple[int, int]:
    combined = combine(finer, coarser, span)
    written = store.replace_range(
        coarser,
        combined.cells,
        combined.bot_counts,
        writer=f"rollup:{finer.name}",
        start_ms=span.start_ms,
        end_ms=span.end_ms,
    )
    return written, combined.finer_documents
