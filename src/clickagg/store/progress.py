"""The stream's `__progress__` document in the finest collection: written by the job,
read by the operator (see `clickagg.domain.progress` for what it holds)."""

from __future__ import annotations

from clickagg.domain import model, progress
from clickagg.store import client as solr


def write(client: solr.SolrClient, level: model.Level, report: progress.Report) -> None:
    client.add(level.collection, [progress.document(level, report)])


def read(client: solr.SolrClient, level: model.Level) -> progress.Report | None:
    """The newest report (real-time get: committed or not); None before the first."""
    stored = client.get(level.collection, [progress.PROGRESS_ID])
    return progress.report_of(stored[0]) if stored else None
