"""The seam between the store and its users: cells, levels and buckets, never HTTP.

The pipeline, the jobs and the coming query service depend on `CellStore`; `solr_cells`
is its implementation over a SolrCloud (its tests run against the real one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from clickagg.domain import buckets, cells, kpis, model, settle
from clickagg.store import cell_reads, collections


@dataclass(frozen=True)
class WriteReport:
    """What one batch's write did: cells replaced, cells skipped as already applied."""

    written: int
    skipped: int
    seconds: float


class CellStore(Protocol):
    def ensure_collections(self, aggregation: model.Aggregation) -> list[collections.Ensured]:
        """Each level's collection, created when missing."""
        ...

    def write_deltas(
        self,
        level: model.Level,
        deltas: Sequence[cells.CellDelta],
        *,
        stream_id: str,
        batch_id: int,
    ) -> WriteReport:
        """Add one batch's deltas to their cells, once per (stream, batch)."""
        ...

    def write_bot_counts(
        self, level: model.Level, counts: Mapping[int, int], *, stream_id: str, batch_id: int
    ) -> None:
        """Add one batch's bot events per bucket, once per (stream, batch)."""
        ...

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
        """Make these cells the whole content of the buckets in [start, end)."""
        ...

    def settle_mark(self, level: model.Level) -> settle.Mark | None:
        """Where the settle passes have got to; None before the first pass."""
        ...

    def record_settle(
        self, level: model.Level, mark: settle.Mark, resettled: Sequence[buckets.Span]
    ) -> None:
        """Record a settle pass: the spans it recomputed (under `mark.passes`), then `mark`."""
        ...

    def resettled_since(self, level: model.Level, after_pass: int) -> list[settle.ResettledSpan]:
        """The spans settle passes after `after_pass` recomputed (a rollup re-rolls them)."""
        ...

    def report_progress(
        self,
        level: model.Level,
        *,
        lag_ms: int,
        reported_ms: int,
        newest_event_ms: int | None,
        watermark_ms: int | None,
    ) -> None:
        """Replace the stream's progress report."""
        ...

    def totals(
        self,
        level: model.Level,
        start_ms: int,
        end_ms: int,
        names: Sequence[str] = tuple(kpis.CATALOGUE),
    ) -> cell_reads.Kpis:
        """KPIs of the totals cuboid over [start, end)."""
        ...

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
        """The values of a dimension with the most of state field `by`, with their KPIs."""
        ...

    def close(self) -> None: ...
