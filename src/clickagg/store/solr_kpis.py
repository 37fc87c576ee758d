"""`KpiStore` over a SolrCloud: the query service's reads through one shared client."""

from __future__ import annotations

from collections.abc import Sequence

from clickagg.domain import buckets, cells, model, progress, questions
from clickagg.store import cell_reads
from clickagg.store import client as solr
from clickagg.store import progress as stored_progress


class SolrKpiStore:
    """Reads for the service; `client` may carry read-only credentials and is shared by the
    service's threads (size its connection pool for them)."""

    def __init__(self, client: solr.SolrClient) -> None:
        self.client = client

    def healthy(self) -> bool:
        return self.client.ping(refused_raises=True)

    def series(
        self,
        level: model.Level,
        cuboid: model.Cuboid,
        filters: Sequence[questions.Filter],
        span: buckets.Span,
        fields: Sequence[str],
    ) -> dict[int, cells.State]:
        per_bucket = cell_reads.summed(
            self.client, level, cuboid, filters, span, fields, key_field="bucket"
        )
        return {buckets.parse_iso(key): state for key, state in per_bucket.items()}

    def breakdown(
        self,
        level: model.Level,
        cuboid: model.Cuboid,
        dimension: str,
        filters: Sequence[questions.Filter],
        span: buckets.Span,
        fields: Sequence[str],
    ) -> dict[str, cells.State]:
        key_field = cells.dimension_field(dimension)
        return cell_reads.summed(self.client, level, cuboid, filters, span, fields, key_field)

    def progress(self, level: model.Level) -> progress.Report | None:
        return stored_progress.read(self.client, level)

    def levels_with_documents(self, levels: Sequence[model.Level]) -> set[str]:
        return cell_reads.levels_with_documents(self.client, levels)
