"""The backfill job: `spark-submit jobs/backfill.py --spec ... --from T1 --to T2 FILE...`:
historical raw lines into the archive within a stated window, then settle that range, then
roll it up (`roll_up`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession

from clickagg.domain import buckets, model
from clickagg.jobs import arguments, spark
from clickagg.jobs import rollup as rollup_job
from clickagg.jobs import settle as settle_job
from clickagg.pipeline import archive, backfill, settle
from clickagg.store import protocol, solr_cells

log = logging.getLogger("clickagg.jobs.backfill")


@dataclass(frozen=True)
class BackfillResult:
    archived: backfill.BackfillReport
    settled: settle.SettleReport


def run(
    aggregation: model.Aggregation,
    store: protocol.CellStore,
    session: SparkSession,
    paths: archive.JobPaths,
    files: Sequence[str],
    window: buckets.Span,
) -> BackfillResult:
    """Archive `files` within `window`, settle the window's settled buckets, roll them up."""
    window = window.aligned(aggregation.finest.granularity)
    archived = backfill.backfill(session, aggregation, paths, files, window)
    settled = settle_job.run(aggregation, store, session, paths, force=window)
    roll_up(aggregation, store, session, settled, window)
    return BackfillResult(archived, settled)


def roll_up(
    aggregation: model.Aggregation,
    store: protocol.CellStore,
    session: SparkSession,
    settled: settle.SettleReport,
    span: buckets.Span,
) -> None:
    """Roll the backfilled span up every coarser level with the rollup job's code, up to
    the settle pass's settled end (the rollup finds the span's rewritten buckets by their
    write stamps)."""
    settled_end = settled.mark.settled_end_ms if settled.mark is not None else None
    indexes = range(1, len(aggregation.levels))
    runs = rollup_job.roll_up_coarser(session, aggregation, store, indexes, settled_end)
    log.info(
        "%s: %s settled; rolled up %s",
        aggregation.name,
        span,
        "; ".join(str(run) for run in runs) or "nothing (one level)",
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = arguments.parser("clickagg-backfill", __doc__)
    parser.add_argument("--from", dest="start", required=True, help="window start, ISO 8601")
    parser.add_argument("--to", dest="end", required=True, help="window end (exclusive)")
    parser.add_argument("files", nargs="+", help="raw line files (any Hadoop URI)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    arguments.configure_logging()
    aggregation = arguments.aggregation_of(args)
    window = buckets.Span(buckets.parse_iso(args.start), buckets.parse_iso(args.end))
    session = spark.session_for(
        f"{aggregation.name}-backfill", args.master, arguments.jars_of(args)
    )
    paths = archive.JobPaths.of(args.data_root, aggregation)
    with solr_cells.SolrCellStore(args.solr_url) as store:
        result = run(aggregation, store, session, paths, args.files, window)
    log.info(
        "backfilled %d events (%d dead letters); settled %d documents",
        result.archived.events,
        result.archived.dead_letters,
        result.settled.documents,
    )
