"""What the service needs from the store, as a Protocol that speaks in levels, cuboids, buckets
and additive state, not HTTP. `clickagg.adapters.kpi_reader.SolrKpiStore` is the one on Solr."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clickagg.domain import model, progress, questions

State = dict[str, float]


class KpiStore(Protocol):
    def healthy(self) -> bool:
        """True when the store answers."""
        ...

    def series(
        self,
        level: model.Level,
        cuboid: model.Cuboid,
        filters: Sequence[questions.Filter],
        span: questions.TimeRange,
        fields: Sequence[str],
    ) -> dict[int, State]:
        """Summed state per bucket start; buckets without cells are absent."""
        ...

    def breakdown(
        self,
        level: model.Level,
        cuboid: model.Cuboid,
        dimension: str,
        filters: Sequence[questions.Filter],
        span: questions.TimeRange,
        fields: Sequence[str],
    ) -> dict[str, State]:
        """Summed state per value of `dimension` over the whole range."""
        ...

    def progress(self, level: model.Level) -> progress.Report | None:
        """The stream's progress report for the finest level, if any."""
        ...

    def levels_with_documents(self, levels: Sequence[model.Level]) -> set[str]:
        """The names of the levels that hold at least one cell."""
        ...
