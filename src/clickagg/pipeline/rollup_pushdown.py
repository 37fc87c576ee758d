"""The rollup's default combine: sums computed inside Solr, sketches merged per shard.

`PushdownCombine` asks the store for the additive state of every coarser cell in one
JSON facet request (each shard sums its own documents; only the coarser cells travel),
then reads the finer sketches shard by shard, concurrently, merges each shard's per
coarser cell, and merges the shards' results. Solr cannot merge HLL sketches; the per
shard step is where a locality-aware reader (Spark tasks on the Solr nodes) would slot in.
Spark itself is not needed: what remains after the pushdown is small enough for the
driver (measured in docs/benchmarks.md, "Rollups and retention").
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from clickagg.domain import buckets, cells, model, rollup, sessions, sketches
from clickagg.pipeline.rollup import Combined
from clickagg.store import protocol

CellKey = tuple[str, tuple[str, ...], int]  # cuboid, values, coarser bucket


class PushdownCombine:
    """Sums in Solr, sketches merged per shard on the driver; `seconds` says where the time
    went (per coarser level and phase, summed over calls)."""

    def __init__(self, aggregation: model.Aggregation, store: protocol.CellStore) -> None:
        self.aggregation = aggregation
        self.store = store
        self.cuboids = {c.name for c in aggregation.cuboids}
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def __call__(self, finer: model.Level, coarser: model.Level, span: buckets.Span) -> Combined:
        started = time.monotonic()
        summed = self.store.summed_into(
            finer, coarser, span, self.aggregation.cuboids, sessions.FIELDS
        )
        spent = self.seconds[coarser.name]
        spent["sums in Solr"] += time.monotonic() - started
        started = time.monotonic()
        shards = self.store.shards(finer)
        with ThreadPoolExecutor(max(len(shards), 1)) as pool:
            per_shard = list(
                pool.map(lambda shard: self._merged(finer, coarser, span, shard), shards)
            )
        merged = _merged_across([found for found, _ in per_shard])
        spent["sketches read and merged"] += time.monotonic() - started
        # Summed over the shards' threads: the CPU part of the phase.
        spent["of which merging, per shard"] += sum(seconds for _, seconds in per_shard)
        combined = [
            dataclasses.replace(
                cell, sketch=merged.get((cell.cuboid.name, cell.values, cell.bucket_ms))
            )
            for cell in summed.cells
        ]
        bots = {bucket_ms: round(events) for bucket_ms, events in summed.bot_events.items()}
        return Combined(combined, bots, summed.documents)

    def _merged(
        self, finer: model.Level, coarser: model.Level, span: buckets.Span, shard: str
    ) -> tuple[dict[CellKey, bytes | None], float]:
        """One shard's sketches merged per coarser cell of a cuboid the spec declares, and
        the seconds the merging took."""
        grouped: dict[CellKey, list[bytes | None]] = defaultdict(list)
        for document_id, sketch in self.store.sketches_in(finer, span, shard):
            _, bucket_ms, cuboid, values = cells.parse_doc_id(document_id)
            if cuboid in self.cuboids:
                grouped[(cuboid, values, rollup.parent(bucket_ms, coarser))].append(sketch)
        started = time.monotonic()
        merged = {key: sketches.merge(found) for key, found in grouped.items()}
        return merged, time.monotonic() - started


def _merged_across(per_shard: Sequence[dict[CellKey, bytes | None]]) -> dict[CellKey, bytes]:
    grouped: dict[CellKey, list[bytes | None]] = defaultdict(list)
    for merged in per_shard:
        for key, sketch in merged.items():
            grouped[key].append(sketch)
    return {
        key: sketch
        for key, found in grouped.items()
        if (sketch := sketches.merge(found)) is not None
    }
