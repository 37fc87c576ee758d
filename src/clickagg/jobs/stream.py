"""The streaming job: `spark-submit jobs/stream.py --spec FILE|--spec-json JSON ...`.

Runs the ingest and aggregate queries of one Aggregation until stopped. It runs on any
master (local, standalone, Kubernetes); the operator passes the spec as JSON. The CLI
(`clickagg stream`) and the demo call `start` and `run` here too, so every way of running
the stream sets it up the same: collections, metrics, progress reports, both queries.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from clickagg.domain import model
from clickagg.jobs import arguments, spark
from clickagg.pipeline import archive, metrics, progress, stream
from clickagg.store import collections, solr_cells

log = logging.getLogger("clickagg.jobs.stream")


@dataclass(frozen=True)
class Options:
    solr_url: str
    data_root: str
    trigger_seconds: float | None = None  # None: spec.spark.triggerInterval
    available_now: bool = False  # process what is there, then stop
    master: str | None = None  # a local master (local[N]); None: spark-submit's
    jars: tuple[str, ...] = ()  # jars of a local session (the JVM sessionizer, Kafka's source)
    metrics_port: int = 0  # serve Prometheus /metrics on this port (0: off)


@dataclass(frozen=True)
class Running:
    """A started stream: its session, both queries, and the metrics they feed."""

    session: SparkSession
    ingest: StreamingQuery
    aggregate: StreamingQuery
    metrics: metrics.StreamMetrics
    ensured: list[collections.Ensured]

    def stop(self) -> None:
        for query in (self.ingest, self.aggregate):
            stream.stop_between_batches(query)


def start(
    aggregation: model.Aggregation, options: Options, session: SparkSession | None = None
) -> Running:
    """Ensure the collections (or wait for the operator to), then start both queries (with
    availableNow, ingest has finished when this returns). `session`: one the caller set up,
    else the job's own."""
    trigger = options.trigger_seconds or aggregation.trigger_interval.approx_seconds
    with solr_cells.SolrCellStore(options.solr_url) as store:
        ensured = store.ensure_collections(aggregation, collections.JOB_WAIT_SECONDS)
    for item in ensured:
        log.info(
            "%s: collection %s %s",
            aggregation.name,
            item.collection,
            "created" if item.created else "present",
        )
    if session is None:
        session = spark.session_for(aggregation.name, options.master, options.jars)
    paths = archive.JobPaths.of(options.data_root, aggregation)
    job_metrics = metrics.StreamMetrics(aggregation.name)
    ingest_lines = progress.IngestLines()
    session.streams.addListener(metrics.ProgressListener(job_metrics, ingest_lines))
    session.streams.addListener(
        progress.ProgressReporter(
            aggregation,
            lambda: solr_cells.SolrCellStore(options.solr_url, connect_retries=1),
            stream.aggregate_query_name(aggregation),
            executors_of(session),
            stream.ingest_query_name(aggregation),
            ingest_lines,
        )
    )
    if options.metrics_port:
        metrics.serve(job_metrics, options.metrics_port)
    source = stream.source_of(aggregation)
    ingest = stream.ingest(
        session,
        aggregation,
        paths,
        source,
        trigger,
        available_now=options.available_now,
        on_batch=lambda batch_id, report: _count_ingest(
            ingest_lines, job_metrics, batch_id, report
        ),
    )
    if options.available_now:
        # The aggregate query reads what ingest archived.
        try:
            ingest.awaitTermination()
        except StreamingQueryException as exc:
            raise _explained(source, exc) from None
    aggregate = stream.aggregate(
        session,
        aggregation,
        paths,
        lambda: solr_cells.SolrCellStore(options.solr_url),
        trigger,
        available_now=options.available_now,
        on_batch=lambda _, report: job_metrics.record_solr_write(report),
    )
    log.info(
        "%s: streaming from %s into %s every %.0fs",
        aggregation.name,
        source.kind,
        aggregation.finest.collection,
        trigger,
    )
    return Running(session, ingest, aggregate, job_metrics, ensured)


def executors_of(session: SparkSession) -> int:
    """The executors the rates are measured with: spark.executor.instances as the Spark
    Operator sets it from the SparkApplication; 1 on a local master (one JVM does it all)."""
    if str(session.conf.get("spark.master", "")).startswith("local"):
        return 1
    return int(session.conf.get("spark.executor.instances", None) or 1)


def run(aggregation: model.Aggregation, options: Options) -> None:
    """Start the stream and run it until a query ends (with availableNow: until done)."""
    running = start(aggregation, options)
    if options.available_now:
        running.aggregate.awaitTermination()
        return
    with contextlib.suppress(StreamingQueryException):
        running.session.streams.awaitAnyTermination()
    # One query ended: stop the other so the driver exits and is restarted from checkpoints.
    queries = (running.ingest, running.aggregate)
    failed = [q for q in queries if q.exception() is not None]
    for query in queries:
        query.stop()
    if failed:
        failure = failed[0].exception()
        assert failure is not None
        explained = stream.source_failure(stream.source_of(aggregation), failure)
        raise SystemExit(f"{failed[0].name} failed: {explained or failure}")


def _explained(source: stream.Source, failure: StreamingQueryException) -> Exception:
    """A TLS or authentication failure as the KafkaTlsError or KafkaAuthError that explains
    it; else the failure."""
    return stream.source_failure(source, failure) or failure


def main(argv: Sequence[str] | None = None) -> None:
    parser = arguments.parser("clickagg-stream", __doc__)
    parser.add_argument(
        "--trigger-seconds", type=float, help="overrides spec.spark.triggerInterval"
    )
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="process what is there, then stop (tests, catch-up)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=9108,
        help="serve Prometheus /metrics on this port (0: off)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    arguments.configure_logging()
    options = Options(
        solr_url=args.solr_url,
        data_root=args.data_root,
        trigger_seconds=args.trigger_seconds,
        available_now=args.available_now,
        master=args.master,
        jars=arguments.jars_of(args),
        metrics_port=args.metrics_port,
    )
    run(arguments.aggregation_of(args), options)


def _count_ingest(
    ingest_lines: progress.IngestLines,
    job_metrics: metrics.StreamMetrics,
    batch_id: int,
    report: archive.IngestReport,
) -> None:
    ingest_lines.record(batch_id, report.lines)
    job_metrics.record_ingest(report.dead_letters, report.too_late, report.bots)
