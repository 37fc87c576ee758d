"""Reports the aggregate query's progress into Solr, where the operator reads the lag.

A Spark listener: after each micro-batch it writes how old the newest applied event was
when the batch ended, and 0 while the query is idle (everything read is applied). See
`clickagg.domain.progress` for the document and how the operator reads it.
Each report opens its own store connection, with one quick reconnect at most: a Solr that
is away must not hold up Spark's listener bus.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql.streaming.listener import StreamingQueryListener

from clickagg import errors
from clickagg.domain import buckets, model, progress
from clickagg.store import protocol

log = logging.getLogger(__name__)


class ProgressReporter(StreamingQueryListener):
    """Writes the `__progress__` document of one Aggregation's aggregate query."""

    def __init__(
        self,
        aggregation: model.Aggregation,
        open_store: Callable[[], protocol.CellStore],
        query_name: str,
    ) -> None:
        self.level = aggregation.finest
        self.open_store = open_store
        self.query_name = query_name
        self.query_id = ""  # idle events carry the query's id, not its name
        self.newest_event_ms: int | None = None
        self.watermark_ms: int | None = None

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        if event.name == self.query_name:
            self.query_id = str(event.id)

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        report = event.progress
        if report.name != self.query_name:
            return
        self.query_id = str(report.id)
        ended_ms = buckets.parse_iso(report.timestamp) + int(
            report.durationMs.get("triggerExecution", 0)
        )
        event_time = report.eventTime or {}
        newest, watermark = event_time.get("max"), event_time.get("watermark")
        if watermark:
            self.watermark_ms = buckets.parse_iso(watermark) or None  # epoch 0: none yet
        if report.numInputRows and newest:
            self.newest_event_ms = buckets.parse_iso(newest)
            self._write(ended_ms - self.newest_event_ms, ended_ms)
        else:
            self._write(0, ended_ms)

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        if self.query_id and str(event.id) == self.query_id:
            self._write(0, int(time.time() * 1000))

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        pass

    def _write(self, lag_ms: int, reported_ms: int) -> None:
        report = progress.Report(lag_ms, reported_ms, self.watermark_ms, self.newest_event_ms)
        try:
            with contextlib.closing(self.open_store()) as store:
                store.report_progress(self.level, report)
        except errors.SolrError as exc:  # the next report tries again; the job goes on
            log.warning("%s: progress not reported: %s", self.level.collection, exc)
