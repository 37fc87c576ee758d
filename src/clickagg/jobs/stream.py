"""The streaming job: `spark-submit jobs/stream.py --spec FILE|--spec-json JSON ...`.

Runs the ingest and aggregate queries of one Aggregation until stopped. It runs on any
master (local, standalone, Kubernetes); the operator passes the spec as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from clickagg.adapters import (
    metrics,
    progress_report,
    solr,
    solr_collections,
    spark,
    specfile,
    stream,
)
from clickagg.domain import model, validation

log = logging.getLogger("clickagg.jobs.stream")


def arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clickagg-stream", description=__doc__)
    spec = parser.add_mutually_exclusive_group(required=True)
    spec.add_argument("--spec", type=Path, help="Aggregation YAML file")
    spec.add_argument("--spec-json", help="Aggregation object as JSON (from the operator)")
    parser.add_argument("--solr-url", required=True, help="base URL of a Solr node")
    parser.add_argument("--data-root", required=True, help="archive and checkpoint root URI")
    parser.add_argument(
        "--trigger-seconds", type=float, help="overrides spec.spark.triggerInterval"
    )
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="process what is there, then stop (tests, catch-up)",
    )
    parser.add_argument("--master", help="Spark master when not run by spark-submit")
    parser.add_argument("--jars", default="", help="extra jars for a --master session")
    parser.add_argument("--metrics-port", type=int, default=9108,
                        help="serve Prometheus /metrics on this port (0: off)")
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> model.Aggregation:
    if args.spec is not None:
        return specfile.load(args.spec)
    return validation.validate(json.loads(args.spec_json))


def run(args: argparse.Namespace) -> None:
    aggregation = load(args)
    trigger = args.trigger_seconds or aggregation.trigger_interval.approx_seconds
    with solr.SolrClient(args.solr_url) as client:
        for ensured in solr_collections.ensure_level_collections(client, aggregation):
            log.info(
                "%s: collection %s %s",
                aggregation.name,
                ensured.collection,
                "created" if ensured.created else "present",
            )
    session = (
        spark.local_session(aggregation.name, conf={"spark.jars": args.jars} if args.jars else None)
        if args.master
        else spark.session(aggregation.name)
    )
    paths = stream.JobPaths.of(args.data_root, aggregation)
    job_metrics = metrics.StreamMetrics(aggregation.name)
    session.streams.addListener(metrics.ProgressListener(job_metrics))
    session.streams.addListener(
        progress_report.ProgressReporter(
            aggregation, args.solr_url, stream.aggregate_query_name(aggregation)
        )
    )
    if args.metrics_port:
        metrics.serve(job_metrics, args.metrics_port)
    source = stream.source_of(aggregation)
    ingest = stream.ingest(
        session, aggregation, paths, source, trigger, available_now=args.available_now
    )
    if args.available_now:
        ingest.awaitTermination()  # the aggregate query reads what ingest archived
    aggregate = stream.aggregate(
        session, aggregation, paths, args.solr_url, trigger, available_now=args.available_now,
        on_batch=lambda _, report: job_metrics.record_solr_write(report),
    )
    log.info("%s: streaming from %s into %s every %.0fs", aggregation.name, source.kind,
             aggregation.finest.collection, trigger)  # fmt: skip
    if args.available_now:
        aggregate.awaitTermination()
        return
    session.streams.awaitAnyTermination()
    # One query ended: stop the other so the driver exits and is restarted from checkpoints.
    failed = [q for q in (ingest, aggregate) if q.exception() is not None]
    for query in (ingest, aggregate):
        query.stop()
    if failed:
        raise SystemExit(f"{failed[0].name} failed: {failed[0].exception()}")


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(arguments(sys.argv[1:] if argv is None else argv))
