"""Reports the aggregate query's progress into Solr, where the operator reads the lag.

A Spark listener: after each micro-batch it writes how old the newest applied event was
when the batch ended, and 0 while the query is idle (everything read is applied), with the
input and processing rates of the last batches and the executors that ran them. See
`clickagg.domain.progress` for the document and how the operator reads it.
Each report opens its own store connection, with one quick reconnect at most: a Solr that
is away must not hold up Spark's listener bus.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql.streaming.listener import StreamingQueryListener

from clickagg import errors
from clickagg.domain import buckets, capacity, model, progress
from clickagg.store import protocol

log = logging.getLogger(__name__)


class IngestLines:
    """The lines of each recent ingest batch as the ingest counted them (`on_batch`). Spark's
    progress counts every read of a micro-batch and the JVM parser reads its lines twice
    (`jvm_parse`), so rates of the ingest query use this count where it has one."""

    _KEPT = 64  # batches; a progress event comes right after its batch

    def __init__(self) -> None:
        self._lines: dict[int, int] = {}

    def record(self, batch_id: int, lines: int) -> None:
        self._lines[batch_id] = lines
        for old in [b for b in self._lines if b < batch_id - self._KEPT]:
            del self._lines[old]

    def of(self, report: Any) -> int:
        """The input rows of an ingest query's progress `report`."""
        return self._lines.get(int(report.batchId), int(report.numInputRows or 0))


class ProgressReporter(StreamingQueryListener):
    """Writes the `__progress__` document of one Aggregation's aggregate query."""

    def __init__(
        self,
        aggregation: model.Aggregation,
        open_store: Callable[[], protocol.CellStore],
        query_name: str,
        executors: int = 1,
        ingest_query_name: str = "",
        ingest_lines: IngestLines | None = None,
    ) -> None:
        self.level = aggregation.finest
        self.open_store = open_store
        self.query_name = query_name
        self.query_id = ""  # idle events carry the query's id, not its name
        self.newest_event_ms: int | None = None
        self.watermark_ms: int | None = None
        self.executors = executors
        self.ingest_query_name = ingest_query_name
        self.ingest_lines = ingest_lines or IngestLines()
        self.batches: collections.deque[capacity.Batch] = collections.deque(maxlen=capacity.WINDOW)
        self.ingest_batches: collections.deque[capacity.Batch] = collections.deque(
            maxlen=capacity.WINDOW
        )

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        if event.name == self.query_name:
            self.query_id = str(event.id)

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        report = event.progress
        if report.name == self.ingest_query_name:
            # Reported with the next aggregate batch.
            self.ingest_batches.append(_batch(report, self.ingest_lines.of(report)))
            return
        if report.name != self.query_name:
            return
        self.query_id = str(report.id)
        batch = _batch(report, int(report.numInputRows or 0))
        self.batches.append(batch)
        ended_ms = batch.started_ms + batch.duration_ms
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
        ingest = self.ingest_batches if self.ingest_query_name else self.batches
        rates = capacity.job_rates(ingest, self.batches, self.executors)
        report = progress.Report(
            lag_ms, reported_ms, self.watermark_ms, self.newest_event_ms, rates
        )
        try:
            with contextlib.closing(self.open_store()) as store:
                store.report_progress(self.level, report)
        except errors.SolrError as exc:  # the next report tries again; the job goes on
            log.warning("%s: progress not reported: %s", self.level.collection, exc)


def _batch(report: Any, rows: int) -> capacity.Batch:
    """A StreamingQueryProgress as the rows, start and execution time of its batch."""
    took_ms = int(report.durationMs.get("triggerExecution", 0))
    return capacity.Batch(rows, buckets.parse_iso(report.timestamp), took_ms)
