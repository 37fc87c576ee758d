"""The seams between the store and its users: cells, levels and buckets, never HTTP.

The pipeline and the jobs depend on `CellStore`, the query service on `KpiStore` (reads
only); `solr_cells` and `solr_kpis` implement them over a SolrCloud (their tests run
against the real one).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clickagg.domain import buckets, cells, kpis, level_progress, model, progress, questions, settle
from clickagg.store import cell_reads, collections, rollup_reads


@dataclass(frozen=True)
class WriteReport:
    """What one batch's write did: cells replaced, cells skipped as already applied."""

    written: int
    skipped: int
    seconds: float


class CellStore(Protocol):
    def ensure_collections(
        self, aggregation: model.Aggregation, wait_s: float = 0.0
    ) -> list[collections.Ensured]:
        """Each level's collection, created when missing; with `wait_s`, a user Solr does
        not let create them waits that long for them to appear."""
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
        """Make these cells the whole content of the buckets in [start, end), committed."""
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

    def report_progress(self, level: model.Level, report: progress.Report) -> None:
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

    def stream_progress(self, level: model.Level) -> progress.Report | None:
        """The stream's newest progress report (None before the first)."""
        ...

    def documents_in(
        self, level: model.Level, start_ms: int, end_ms: int
    ) -> Iterator[dict[str, Any]]:
        """Every cell and bot-count document of the level with a bucket in [start, end)."""
        ...

    def summed_into(
        self,
        finer: model.Level,
        coarser: model.Level,
        span: buckets.Span,
        cuboids: Sequence[model.Cuboid],
        fields: Sequence[str],
    ) -> rollup_reads.Summed:
        """The finer documents in `span` summed per coarser cell (the state `fields`) and
        per coarser bucket for bots, inside the store."""
        ...

    def replicas(self, level: model.Level) -> dict[str, tuple[rollup_reads.Replica, ...]]:
        """The active replicas of each of the level's shards, the leader first."""
        ...

    def read_shard(
        self,
        level: model.Level,
        span: buckets.Span,
        replica: rollup_reads.Replica,
        reader_host: str,
    ) -> tuple[list[tuple[str, bytes]], rollup_reads.ShardRead]:
        """(document id, sketch) of the level's cells in `span` on one shard, read from
        `replica` alone, and what the read moved to `reader_host`."""
        ...

    def oldest_bucket(self, level: model.Level) -> int | None:
        """The start of the level's oldest bucket holding a document (None: empty)."""
        ...

    def changed_buckets(
        self, level: model.Level, since_ms: int, start_ms: int, end_ms: int
    ) -> list[int]:
        """The level's buckets in [start, end) with a document written at or after since."""
        ...

    def read_level_progress(self, level: model.Level) -> level_progress.LevelReport:
        """The level's batch progress (an empty report before the first)."""
        ...

    def report_level_progress(self, level: model.Level, report: level_progress.LevelReport) -> None:
        """Replace the level's batch progress; the writes it reports on are committed
        already (`replace_range`, `delete_buckets_before` commit)."""
        ...

    def delete_buckets_before(self, level: model.Level, before_ms: int) -> int:
        """Retention: delete the level's documents with a bucket before `before_ms`."""
        ...

    def close(self) -> None: ...


class KpiStore(Protocol):
    """What the query service reads: summed additive state (`hll_visitors` as the merged
    sketch's estimate), the stream's progress, and which levels hold cells."""

    def healthy(self) -> bool:
        """True when the store answers; `errors.SolrAuthError` when it refuses the service's
        credentials (waiting does not mend that)."""
        ...

    def series(
        self,
        level: model.Level,
        cuboid: model.Cuboid,
        filters: Sequence[questions.Filter],
        span: buckets.Span,
        fields: Sequence[str],
    ) -> dict[int, cells.State]:
        """Summed state per bucket start; buckets without cells are absent."""
        ...

    def breakdown(
        self,
        level: model.Level,
        cuboid: model.Cuboid,
        dimension: str,
        filters: Sequence[questions.Filter],
        span: buckets.Span,
        fields: Sequence[str],
    ) -> dict[str, cells.State]:
        """Summed state per value of `dimension` over the whole span (`__none__` included)."""
        ...

    def progress(self, level: model.Level) -> progress.Report | None:
        """The stream's progress report for the finest level, if any."""
        ...

    def levels_with_documents(self, levels: Sequence[model.Level]) -> set[str]:
        """The names of the levels that hold at least one cell."""
        ...
