"""The replay job: `spark-submit jobs/replay.py --spec ... --from T1 --to T2`.

Recomputes the finest level for [from, to) from the raw archive and replaces it in Solr;
`clickagg replay` calls `run` here too.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from clickagg.domain import buckets, model, sessions
from clickagg.jobs import arguments, spark
from clickagg.pipeline import archive, replay
from clickagg.store import solr_cells

log = logging.getLogger("clickagg.jobs.replay")


@dataclass(frozen=True)
class Options:
    solr_url: str
    data_root: str
    start_ms: int
    end_ms: int
    master: str | None = None  # a local master (local[N]); None: spark-submit's
    jars: tuple[str, ...] = ()
    history_ms: int = sessions.VISITOR_MEMORY_MS  # how far back a visitor's visits matter


def run(aggregation: model.Aggregation, options: Options) -> replay.ReplayReport:
    session = spark.session_for(f"{aggregation.name}-replay", options.master, options.jars)
    paths = archive.JobPaths.of(options.data_root, aggregation)
    with solr_cells.SolrCellStore(options.solr_url) as store:
        return replay.replay(
            session,
            aggregation,
            paths,
            store,
            options.start_ms,
            options.end_ms,
            history_ms=options.history_ms,
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = arguments.parser("clickagg-replay", __doc__)
    parser.add_argument("--from", dest="start", required=True, help="range start, ISO 8601")
    parser.add_argument("--to", dest="end", required=True, help="range end (exclusive)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    arguments.configure_logging()
    options = Options(
        solr_url=args.solr_url,
        data_root=args.data_root,
        start_ms=buckets.parse_iso(args.start),
        end_ms=buckets.parse_iso(args.end),
        master=args.master,
        jars=arguments.jars_of(args),
    )
    report = run(arguments.aggregation_of(args), options)
    log.info("replayed %d events into %d documents", report.events, report.documents)
