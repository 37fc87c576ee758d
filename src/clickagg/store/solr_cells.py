"""`CellStore` over a SolrCloud: one client, the store's modules behind one object."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from clickagg.domain import buckets, cells, kpis, level_progress, model, progress, settle
from clickagg.store import (
    batch,
    cell_reads,
    cell_writes,
    collections,
    protocol,
    rollup_reads,
    settle_marks,
)
from clickagg.store import client as solr
from clickagg.store import progress as stored_progress


class SolrCellStore:
    """The cells of one SolrCloud, reached through one node's base URL."""

    def __init__(self, base_url: str, *, connect_retries: int = 3) -> None:
        self.client = solr.SolrClient(base_url, connect_retries=connect_retries)

    def __enter__(self) -> SolrCellStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def ensure_collections(
        self, aggregation: model.Aggregation, wait_s: float = 0.0
    ) -> list[collections.Ensured]:
        if wait_s > 0:
            return collections.await_level_collections(self.client, aggregation, wait_s)
        return collections.ensure_level_collections(self.client, aggregation)

    def write_deltas(
        self,
        level: model.Level,
        deltas: Sequence[cells.CellDelta],
        *,
        stream_id: str,
        batch_id: int,
    ) -> protocol.WriteReport:
        return cell_writes.write_deltas(
            self.client, level, deltas, stream_id=stream_id, batch_id=batch_id
        )

    def write_bot_counts(
        self, level: model.Level, counts: Mapping[int, int], *, stream_id: str, batch_id: int
    ) -> None:
        cell_writes.write_bot_counts(
            self.client, level, counts, stream_id=stream_id, batch_id=batch_id
        )

    def replace_range(
        self,
        level: model.Level,
        cells_state: Sequence[cells.CellDelta],
        bot_counts: Mapping[int, int],
        *,
        writer: str,
        start_ms: int,
        end_ms: int,
    ) -> int:
        return cell_writes.replace_range(
            self.client,
            level,
            cells_state,
            bot_counts,
            writer=writer,
            start_ms=start_ms,
            end_ms=end_ms,
        )

    def settle_mark(self, level: model.Level) -> settle.Mark | None:
        return settle_marks.read(self.client, level)

    def record_settle(
        self, level: model.Level, mark: settle.Mark, resettled: Sequence[buckets.Span]
    ) -> None:
        settle_marks.write(self.client, level, mark, resettled)

    def resettled_since(self, level: model.Level, after_pass: int) -> list[settle.ResettledSpan]:
        return settle_marks.resettled_since(self.client, level, after_pass)

    def report_progress(self, level: model.Level, report: progress.Report) -> None:
        stored_progress.write(self.client, level, report)

    def totals(
        self,
        level: model.Level,
        start_ms: int,
        end_ms: int,
        names: Sequence[str] = tuple(kpis.CATALOGUE),
    ) -> cell_reads.Kpis:
        return cell_reads.totals(self.client, level, start_ms, end_ms, names)

    def top(
        self,
        level: model.Level,
        dimension: str,
        start_ms: int,
        end_ms: int,
        *,
        by: str,
        names: Sequence[str],
        limit: int = 10,
    ) -> list[cell_reads.Row]:
        return cell_reads.top(
            self.client, level, dimension, start_ms, end_ms, by=by, names=names, limit=limit
        )

    def stream_progress(self, level: model.Level) -> progress.Report | None:
        return stored_progress.read(self.client, level)

    def documents_in(
        self, level: model.Level, start_ms: int, end_ms: int
    ) -> Iterator[dict[str, Any]]:
        return batch.documents_in(self.client, level, start_ms, end_ms)

    def summed_into(
        self,
        finer: model.Level,
        coarser: model.Level,
        span: buckets.Span,
        cuboids: Sequence[model.Cuboid],
        fields: Sequence[str],
    ) -> rollup_reads.Summed:
        return rollup_reads.summed(self.client, finer, coarser, span, cuboids, fields)

    def replicas(self, level: model.Level) -> dict[str, tuple[rollup_reads.Replica, ...]]:
        return rollup_reads.replicas(self.client, level.collection)

    def read_shard(
        self,
        level: model.Level,
        span: buckets.Span,
        replica: rollup_reads.Replica,
        reader_host: str,
    ) -> tuple[list[tuple[str, bytes]], rollup_reads.ShardRead]:
        return rollup_reads.read_shard(self.client, level, span, replica, reader_host)

    def oldest_bucket(self, level: model.Level) -> int | None:
        return batch.oldest_bucket(self.client, level)

    def changed_buckets(
        self, level: model.Level, since_ms: int, start_ms: int, end_ms: int
    ) -> list[int]:
        return batch.changed_buckets(self.client, level, since_ms, start_ms, end_ms)

    def read_level_progress(self, level: model.Level) -> level_progress.LevelReport:
        return batch.read_progress(self.client, level)

    def report_level_progress(self, level: model.Level, report: level_progress.LevelReport) -> None:
        batch.write_progress(self.client, level, report)

    def delete_buckets_before(self, level: model.Level, before_ms: int) -> int:
        return batch.delete_before(self.client, level, before_ms)
