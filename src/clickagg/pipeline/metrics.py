"""Prometheus metrics of the streaming job, fed by Spark's query progress events.

The text exposition format is small enough to write directly, which keeps the job image
free of another dependency. One `StreamMetrics` serves /metrics on the driver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pyspark.sql.streaming.listener import StreamingQueryListener

from clickagg.domain import buckets
from clickagg.pipeline import progress
from clickagg.store import protocol

#: The ingest query's label (`stream.ingest_query_name`).
_INGEST = "ingest"
_HELP = {
    "clickagg_input_rows_per_second": ("gauge", "Rows per second arriving at the query."),
    "clickagg_processed_rows_per_second": ("gauge", "Rows per second the query processed."),
    "clickagg_batch_duration_seconds": ("gauge", "Duration of the query's last micro-batch."),
    "clickagg_batches_total": ("counter", "Micro-batches completed."),
    "clickagg_input_rows_total": ("counter", "Rows read by the query."),
    "clickagg_watermark_lag_seconds": ("gauge", "Wall clock minus the event-time watermark."),
    "clickagg_dead_letters_total": ("counter", "Lines rejected by the event contract."),
    "clickagg_too_late_total": ("counter", "Events later than the allowed lateness."),
    "clickagg_bot_events_total": ("counter", "Valid events from bots, counted apart."),
    "clickagg_solr_write_seconds_sum": ("counter", "Seconds spent writing cells to Solr."),
    "clickagg_solr_write_seconds_count": ("counter", "Cell writes to Solr (one per batch)."),
    "clickagg_solr_cells_written_total": ("counter", "Cell documents replaced in Solr."),
    "clickagg_solr_cells_skipped_total": (
        "counter",
        "Cells the (stream, batch) guard skipped: a re-run batch had already written them.",
    ),
}


class StreamMetrics:
    """Thread-safe metric values keyed by (name, labels)."""

    def __init__(self, aggregation: str) -> None:
        self.aggregation = aggregation
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[(name, self._labels(labels))] = value

    def add(self, name: str, amount: float, **labels: str) -> None:
        with self._lock:
            key = (name, self._labels(labels))
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get((name, self._labels(labels)), 0.0)

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        with self._lock:
            items = sorted(self._values.items())
        lines: list[str] = []
        described: set[str] = set()
        for (name, labels), value in items:
            if name not in described and name in _HELP:
                kind, text = _HELP[name]
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                described.add(name)
            rendered = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{rendered}}} {value:.6g}" if rendered else f"{name} {value:.6g}")
        return "\n".join(lines) + "\n"

    def record_solr_write(self, report: protocol.WriteReport) -> None:
        self.add("clickagg_solr_write_seconds_sum", report.seconds)
        self.add("clickagg_solr_write_seconds_count", 1)
        self.add("clickagg_solr_cells_written_total", report.written)
        self.add("clickagg_solr_cells_skipped_total", report.skipped)

    def record_ingest(self, dead_letters: int, too_late: int, bots: int) -> None:
        self.add("clickagg_dead_letters_total", dead_letters)
        self.add("clickagg_too_late_total", too_late)
        self.add("clickagg_bot_events_total", bots)

    def _labels(self, labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({"aggregation": self.aggregation, **labels}.items()))


class ProgressListener(StreamingQueryListener):
    """Turns each query progress event into metric values."""

    def __init__(
        self, metrics: StreamMetrics, ingest_lines: progress.IngestLines | None = None
    ) -> None:
        self.metrics = metrics
        self.ingest_lines = ingest_lines or progress.IngestLines()

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        pass

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        report = event.progress
        query = _query_label(report.name or "")
        rows = int(report.numInputRows or 0)
        if query == _INGEST:
            rows = self.ingest_lines.of(report)
        # The ingest's own count over Spark's (which counts each read of the batch).
        scale = rows / report.numInputRows if report.numInputRows else 1.0
        m = self.metrics
        m.set(
            "clickagg_input_rows_per_second",
            (report.inputRowsPerSecond or 0) * scale,
            query=query,
        )
        m.set(
            "clickagg_processed_rows_per_second",
            (report.processedRowsPerSecond or 0) * scale,
            query=query,
        )
        m.set(
            "clickagg_batch_duration_seconds",
            report.durationMs.get("triggerExecution", 0) / 1000,
            query=query,
        )
        m.add("clickagg_batches_total", 1, query=query)
        m.add("clickagg_input_rows_total", rows, query=query)
        watermark = (report.eventTime or {}).get("watermark")
        if watermark and not watermark.startswith("1970"):
            lag = time.time() - _epoch_seconds(watermark)
            m.set("clickagg_watermark_lag_seconds", lag, query=query)

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        pass

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802 (Spark's listener API)
        pass


def serve(
    metrics: StreamMetrics,
    port: int,
    host: str = "0.0.0.0",  # noqa: S104 (Prometheus scrapes the driver pod from outside)
) -> ThreadingHTTPServer:
    """Serve /metrics in a daemon thread; returns the server (call shutdown() to stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = metrics.render().encode()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass  # scrapes every few seconds would drown the job's log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def _query_label(name: str) -> str:
    return name.rsplit("-", 1)[-1] if "-" in name else name


def _epoch_seconds(iso: str) -> float:
    return buckets.parse_iso(iso) / 1000
