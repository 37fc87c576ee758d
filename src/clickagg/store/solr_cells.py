"""`CellStore` over a SolrCloud: one client, the store's modules behind one object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clickagg.domain import buckets, cells, kpis, model, settle
from clickagg.store import cell_reads, cell_writes, collections, protocol, settle_marks
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

    def ensure_collections(self, aggregation: model.Aggregation) -> list[collections.Ensured]:
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

    def report_progress(
        self,
        level: model.Level,
        *,
        lag_ms: int,
        reported_ms: int,
        newest_event_ms: int | None,
        watermark_ms: int | None,
    ) -> None:
        stored_progress.write(
            self.client,
            level,
            lag_ms=lag_ms,
            reported_ms=reported_ms,
            newest_event_ms=newest_event_ms,
            watermark_ms=watermark_ms,
        )

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
