"""The settle job: `spark-submit jobs/settle.py --spec ...`: one settle pass over the finest
level (see `clickagg.pipeline.settle`). `clickagg settle` and the rollup job call `run`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from pyspark.sql import SparkSession

from clickagg.domain import buckets, model
from clickagg.jobs import arguments, spark
from clickagg.pipeline import archive, settle
from clickagg.store import protocol, solr_cells

log = logging.getLogger("clickagg.jobs.settle")


def run(
    aggregation: model.Aggregation,
    store: protocol.CellStore,
    session: SparkSession,
    paths: archive.JobPaths,
    *,
    force: buckets.Span | None = None,
) -> settle.SettleReport:
    """Settle what the stream's watermark allows; `force`: recompute that span's settled
    buckets too. Returns the pass's report; its mark is also in the store."""
    return settle.settle(session, aggregation, paths, store, force=force)


def main(argv: Sequence[str] | None = None) -> None:
    parser = arguments.parser("clickagg-settle", __doc__)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    arguments.configure_logging()
    aggregation = arguments.aggregation_of(args)
    session = spark.session_for(f"{aggregation.name}-settle", args.master, arguments.jars_of(args))
    paths = archive.JobPaths.of(args.data_root, aggregation)
    with solr_cells.SolrCellStore(args.solr_url) as store:
        report = run(aggregation, store, session, paths)
    log.info(
        "settled %d late events: %d spans, %d documents",
        report.late_events,
        len(report.recomputed),
        report.documents,
    )
