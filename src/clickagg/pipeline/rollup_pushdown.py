"""The rollup's default combine: sums computed inside Solr, sketches merged per shard.

`PushdownCombine` asks the store for the additive state of every coarser cell in one
JSON facet request (each shard sums its own documents; only the coarser cells travel),
then has every shard's sketches read from one of its replicas (`distrib=false`) and merged
per coarser cell, and merges the shards' results. Solr cannot merge HLL sketches; where
the per-shard step runs is a `ShardMerge`:
- `DriverThreads`: a thread of the driver per shard, reading the shard's leader. Used when
  Spark runs in local mode: driver and tasks share one host, so Spark tasks would add only
  their scheduling.
- `shard_tasks.SparkTasks`: one Spark task per shard that prefers the hosts of the shard's
  replicas and reads the replica on its own host: the sketches never leave their host, only
  each shard's merged sketches travel to the driver. Used on a cluster.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Protocol

from clickagg.domain import buckets, cells, model, rollup, sessions, sketches
from clickagg.pipeline import locality
from clickagg.pipeline.rollup import Combined
from clickagg.store import protocol, rollup_reads

CellKey = tuple[str, tuple[str, ...], int]  # cuboid, values, coarser bucket
Replicas = Mapping[str, tuple[rollup_reads.Replica, ...]]


@dataclass(frozen=True)
class ShardMerged:
    """One shard's sketches merged per coarser cell, the seconds merging took, and what
    reading them moved."""

    sketches: dict[CellKey, bytes | None]
    merge_seconds: float
    read: rollup_reads.ShardRead


class ShardMerge(Protocol):
    """Reads every shard's sketches of `span` and merges each shard's per coarser cell."""

    def __call__(
        self,
        finer: model.Level,
        coarser: model.Level,
        span: buckets.Span,
        replicas: Replicas,
        cuboids: frozenset[str],
    ) -> list[ShardMerged]: ...


class DriverThreads:
    """Each shard read from its leader and merged by a thread of the driver."""

    def __init__(self, store: protocol.CellStore, reader_host: str) -> None:
        self.store = store
        self.reader_host = reader_host

    def __call__(
        self,
        finer: model.Level,
        coarser: model.Level,
        span: buckets.Span,
        replicas: Replicas,
        cuboids: frozenset[str],
    ) -> list[ShardMerged]:
        def one(shard_replicas: tuple[rollup_reads.Replica, ...]) -> ShardMerged:
            found, read = self.store.read_shard(finer, span, shard_replicas[0], self.reader_host)
            return merged_shard(found, read, coarser, cuboids)

        with ThreadPoolExecutor(max(len(replicas), 1)) as pool:
            return list(pool.map(one, replicas.values()))


class PushdownCombine:
    """Sums in Solr, sketches merged per shard by `shard_merge`; `seconds` says where the
    time went (per coarser level and phase, summed over calls), `reads_by_level` what each
    shard read moved."""

    def __init__(
        self,
        aggregation: model.Aggregation,
        store: protocol.CellStore,
        shard_merge: ShardMerge | None = None,
    ) -> None:
        self.aggregation = aggregation
        self.store = store
        self.shard_merge = shard_merge or DriverThreads(store, locality.own_host())
        self.cuboids = frozenset(c.name for c in aggregation.cuboids)
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.reads_by_level: dict[str, list[rollup_reads.ShardRead]] = defaultdict(list)

    def __call__(self, finer: model.Level, coarser: model.Level, span: buckets.Span) -> Combined:
        started = time.monotonic()
        summed = self.store.summed_into(
            finer, coarser, span, self.aggregation.cuboids, sessions.FIELDS
        )
        spent = self.seconds[coarser.name]
        spent["sums in Solr"] += time.monotonic() - started
        started = time.monotonic()
        per_shard = self.shard_merge(finer, coarser, span, self.store.replicas(finer), self.cuboids)
        merged = _merged_across([shard.sketches for shard in per_shard])
        spent["sketches read and merged"] += time.monotonic() - started
        # Summed over the shards: the CPU part of the phase.
        spent["of which merging, per shard"] += sum(shard.merge_seconds for shard in per_shard)
        self.reads_by_level[coarser.name].extend(shard.read for shard in per_shard)
        combined = [
            replace(cell, sketch=merged.get((cell.cuboid.name, cell.values, cell.bucket_ms)))
            for cell in summed.cells
        ]
        bots = {bucket_ms: round(events) for bucket_ms, events in summed.bot_events.items()}
        return Combined(combined, bots, summed.documents)


def merged_shard(
    found: Iterable[tuple[str, bytes]],
    read: rollup_reads.ShardRead,
    coarser: model.Level,
    cuboids: frozenset[str],
) -> ShardMerged:
    """One shard's sketches merged per coarser cell of a cuboid the spec declares."""
    grouped: dict[CellKey, list[bytes | None]] = defaultdict(list)
    for document_id, sketch in found:
        _, bucket_ms, cuboid, values = cells.parse_doc_id(document_id)
        if cuboid in cuboids:
            grouped[(cuboid, values, rollup.parent(bucket_ms, coarser))].append(sketch)
    started = time.monotonic()
    merged = {key: sketches.merge(found) for key, found in grouped.items()}
    return ShardMerged(merged, time.monotonic() - started, read)


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
