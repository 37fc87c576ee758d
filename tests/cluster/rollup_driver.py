"""A rollup driven on the standalone cluster, whose shard reads the test finds in Spark's
event log.

    python rollup_driver.py '<session conf as JSON>' EVENT_LOG_DIR SPEC SOLR_URL SETTLED_MS HOST...

It waits until an executor runs on every HOST, then rolls up every coarser level of SPEC
with the rollup job's default combine for a cluster master (sums in Solr, each shard's
sketches merged by a Spark task on a replica's host), the finest level complete up to
SETTLED_MS. It prints one JSON line: the application id and what each shard read moved.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import locality_driver

from clickagg.domain import specfile
from clickagg.jobs import rollup as rollup_job
from clickagg.pipeline import rollup_pushdown
from clickagg.store import solr_cells


def main(
    conf: str, event_log_dir: str, spec: str, solr_url: str, settled: str, *hosts: str
) -> None:
    aggregation = specfile.load(Path(spec))
    session = locality_driver.logged_session("clickagg-cluster-rollup", conf, event_log_dir)
    try:
        locality_driver.wait_for_executors(session.sparkContext, list(hosts))
        with solr_cells.SolrCellStore(solr_url) as store:
            combine = rollup_job.combine_for("pushdown", session, aggregation, store)
            assert isinstance(combine, rollup_pushdown.PushdownCombine)
            indexes = range(1, len(aggregation.levels))
            runs = rollup_job.roll_up_coarser(
                session, aggregation, store, indexes, int(settled), combine
            )
        print(
            json.dumps(
                {
                    "app_id": session.sparkContext.applicationId,
                    "rolled_up": [run.documents for run in runs],
                    # By the coarser level: its reads are of the finer level's collection.
                    "reads": {
                        coarser: [dataclasses.asdict(read) for read in reads]
                        for coarser, reads in combine.reads_by_level.items()
                    },
                }
            )
        )
    finally:
        session.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
