"""The stream's `__progress__` document in the finest collection: written by the job,
read by the operator (see `clickagg.domain.progress` for what it holds)."""

from __future__ import annotations

from clickagg.domain import model, progress
from clickagg.store import client as solr


def write(
    client: solr.SolrClient,
    level: model.Level,
    *,
    lag_ms: int,
    reported_ms: int,
    newest_event_ms: int | None,
    watermark_ms: int | None,
) -> None:
    document = progress.document(
        level,
        lag_ms=lag_ms,
        reported_ms=reported_ms,
        newest_event_ms=newest_event_ms,
        watermark_ms=watermark_ms,
    )
    client.add(level.collection, [document])


def read(client: solr.SolrClient, level: model.Level) -> progress.Report | None:
    """The newest report (real-time get: committed or not); None before the first."""
    stored = client.get(level.collection, [progress.PROGRESS_ID])
    return progress.report_of(stored[0]) if stored else None
