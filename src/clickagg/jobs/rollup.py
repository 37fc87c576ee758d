"""The rollup job: `spark-submit jobs/rollup.py --spec ... [--level L] [--follow]`.

With `--level L` (what each `<name>-rollup-<L>` ScheduledSparkApplication runs) it builds
L from the level before it, then applies L's retention; the first coarser level settles
the finest level first and also applies the finest level's and the raw archive's
retention. With no `--level` it does every level, finest first. An Aggregation with one
level runs `--level <finest>`: nothing to roll up, retention only. `clickagg rollup` and
`clickagg retention` call `run`, `roll_up_levels` and `retention_plan` here too.

`--combine pushdown` (the default) sums inside Solr and merges sketches per shard (in Spark
tasks on the shards' hosts on a cluster, in driver threads in local mode);
`--combine spark` reads every finer document and sums and merges in Spark (the path a
locality-aware reader builds on; docs/architecture.md says why the default is the other).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import SparkSession

from clickagg import errors
from clickagg.domain import model, retention, rollup
from clickagg.jobs import arguments, spark
from clickagg.jobs import settle as settle_job
from clickagg.pipeline import archive, archive_retention, locality, rollup_pushdown, shard_tasks
from clickagg.pipeline import rollup as spark_rollup
from clickagg.store import collections, protocol, solr_cells

log = logging.getLogger("clickagg.jobs.rollup")

CombineName = Literal["pushdown", "spark"]
COMBINES: tuple[CombineName, ...] = ("pushdown", "spark")


@dataclass(frozen=True)
class Options:
    solr_url: str
    data_root: str
    level: str | None = None  # None: every level
    follow: bool = False  # keep every level current until stopped
    follow_seconds: float = 60.0
    master: str | None = None  # a local master (local[N]); None: spark-submit's
    jars: tuple[str, ...] = ()
    combine: CombineName = "pushdown"


@dataclass(frozen=True)
class Result:
    levels: tuple[spark_rollup.LevelRun, ...]
    plan: retention.Plan
    deleted: dict[str, int]


def settled_end(aggregation: model.Aggregation, store: protocol.CellStore) -> int | None:
    """Where the finest level is settled up to: the last settle pass's mark, computed from
    the aggregate query's committed watermark (None: no settle pass has run yet)."""
    mark = store.settle_mark(aggregation.finest)
    return mark.settled_end_ms if mark is not None else None


def settle_finest_level(
    spark_session: SparkSession,
    aggregation: model.Aggregation,
    store: protocol.CellStore,
    paths: archive.JobPaths,
) -> int | None:
    """Settle the finest level (recompute the settled buckets late events touched), then
    say where it is settled up to: the pass's mark, the same one `settled_end` reads."""
    report = settle_job.run(aggregation, store, spark_session, paths)
    return report.mark.settled_end_ms if report.mark is not None else None


def scope(aggregation: model.Aggregation, level: str | None) -> tuple[int, ...]:
    """The indexes of the levels a run rolls up (the finest one: retention only)."""
    names = [lv.name for lv in aggregation.levels]
    if level is None:
        return tuple(range(len(names)))
    if level not in names:
        message = f"{aggregation.name} has no level {level} (levels: {', '.join(names)})"
        raise errors.SpecError([errors.SpecIssue("--level", message)])
    return (names.index(level),)


def last_rolled_up(
    aggregation: model.Aggregation, store: protocol.CellStore
) -> dict[str, int | None]:
    return {
        level.name: store.read_level_progress(level).last_bucket_ms
        for level in aggregation.levels[1:]
    }


def roll_up_levels(
    spark_session: SparkSession,
    aggregation: model.Aggregation,
    store: protocol.CellStore,
    *,
    level: str | None = None,
    now_ms: int | None = None,
    data_root: str | None = None,
    combine: CombineName = "pushdown",
) -> Result:
    """Roll up the levels in scope, finest first, then apply their retention."""
    indexes = scope(aggregation, level)
    paths = archive.JobPaths.of(data_root, aggregation) if data_root is not None else None
    # Only the first coarser level's run settles (it needs the archive); others read the mark.
    settled = (
        settle_finest_level(spark_session, aggregation, store, paths)
        if 1 in indexes and paths is not None
        else settled_end(aggregation, store)
    )
    runs = roll_up_coarser(spark_session, aggregation, store, indexes, settled, combine)
    # Retention: each level's own job forgets its level; the first one also the finest's.
    forget = {aggregation.levels[i].name for i in indexes}
    if 1 in indexes or 0 in indexes:
        forget.add(aggregation.finest.name)
    plan = retention_plan(aggregation, store, now_ms=now_ms, settled=settled)
    deleted = apply_retention(aggregation, store, plan, forget)
    if forget & {aggregation.finest.name} and paths is not None:
        archive_retention.apply(spark_session, paths, plan.archive)
    return Result(runs, plan, deleted)


def roll_up_coarser(
    spark_session: SparkSession,
    aggregation: model.Aggregation,
    store: protocol.CellStore,
    indexes: Sequence[int],
    settled: int | None,
    combine: CombineName | spark_rollup.Combine = "pushdown",
) -> tuple[spark_rollup.LevelRun, ...]:
    """Roll up the coarser levels among `indexes`, finest first, up to what `settled` (the
    finest level's settled end) allows; changed finer buckets are found by their write stamps."""
    if isinstance(combine, str):
        combine = combine_for(combine, spark_session, aggregation, store)
    runs = []
    for index in indexes:
        if index == 0:
            continue
        input_end = rollup.input_end(
            aggregation.levels, index, settled, last_rolled_up(aggregation, store)
        )
        runs.append(spark_rollup.roll_up(aggregation, index, store, combine, input_end))
    return tuple(runs)


def combine_for(
    name: CombineName,
    spark_session: SparkSession,
    aggregation: model.Aggregation,
    store: protocol.CellStore,
) -> spark_rollup.Combine:
    """The read-and-aggregate step by name."""
    if name == "spark":
        return spark_rollup.SparkCombine(spark_session, aggregation, store)
    return rollup_pushdown.PushdownCombine(aggregation, store, shard_merge(spark_session, store))


def shard_merge(
    spark_session: SparkSession, store: protocol.CellStore
) -> rollup_pushdown.ShardMerge:
    """Where the pushdown merges each shard's sketches: in Spark tasks on the shards' hosts
    on a cluster; in driver threads in local mode (one host: tasks would add only their
    scheduling)."""
    master = spark_session.sparkContext.master or "local"
    if master.startswith("local"):
        log.info("sketches merged per shard in driver threads (master %s)", master)
        return rollup_pushdown.DriverThreads(store, locality.own_host())
    log.info("sketches merged per shard in Spark tasks on the replicas' hosts (master %s)", master)
    return shard_tasks.SparkTasks(spark_session)


def retention_plan(
    aggregation: model.Aggregation,
    store: protocol.CellStore,
    *,
    now_ms: int | None = None,
    settled: int | None = None,
) -> retention.Plan:
    """What retention deletes and holds back now (domain.retention.plan over Solr's state)."""
    return retention.plan(
        aggregation,
        int(time.time() * 1000) if now_ms is None else now_ms,
        settled_end_ms=settled if settled is not None else settled_end(aggregation, store),
        last_rolled_up=last_rolled_up(aggregation, store),
    )


def apply_retention(
    aggregation: model.Aggregation,
    store: protocol.CellStore,
    plan: retention.Plan,
    names: set[str],
) -> dict[str, int]:
    """Delete what the plan lets go in the named levels; record each level's horizon."""
    deleted: dict[str, int] = {}
    for level, forgetting in zip(aggregation.levels, plan.levels, strict=True):
        before = forgetting.delete_before_ms
        if level.name not in names:
            continue
        for line in forgetting.lines():
            log.info("%s: %s", aggregation.name, line)
        if before is None:
            continue
        deleted[level.name] = store.delete_buckets_before(level, before)
        report = store.read_level_progress(level)
        if report.horizon_ms is None or report.horizon_ms < before:
            store.report_level_progress(level, dataclasses.replace(report, horizon_ms=before))
    return deleted


def run(aggregation: model.Aggregation, options: Options) -> Result:
    """Roll up (and apply retention) once, or with `follow` until stopped."""
    scope(aggregation, options.level)  # an unknown level fails before Spark starts
    session = spark.session_for(f"{aggregation.name}-rollup", options.master, options.jars)
    stop = threading.Event()
    with solr_cells.SolrCellStore(options.solr_url) as store:
        store.ensure_collections(aggregation, collections.JOB_WAIT_SECONDS)
        while True:
            result = roll_up_levels(
                session,
                aggregation,
                store,
                level=options.level,
                data_root=options.data_root,
                combine=options.combine,
            )
            if not options.follow or stop.wait(options.follow_seconds):
                return result


def parse(argv: Sequence[str]) -> tuple[model.Aggregation, Options]:
    """The job's command line (what the operator's ScheduledSparkApplications pass)."""
    parser = arguments.parser("clickagg-rollup", __doc__)
    parser.add_argument("--level", help="the level to build (default: every level)")
    parser.add_argument("--follow", action="store_true", help="keep every level current")
    parser.add_argument(
        "--combine",
        choices=COMBINES,
        default="pushdown",
        help="sum in Solr and merge sketches per shard (default), or read all and sum in Spark",
    )
    args = parser.parse_args(argv)
    options = Options(
        solr_url=args.solr_url,
        data_root=args.data_root,
        level=args.level,
        follow=args.follow,
        master=args.master,
        jars=arguments.jars_of(args),
        combine=args.combine,
    )
    aggregation = arguments.aggregation_of(args)
    scope(aggregation, options.level)  # an unknown level fails here, naming the levels
    return aggregation, options


def main(argv: Sequence[str] | None = None) -> None:
    aggregation, options = parse(sys.argv[1:] if argv is None else argv)
    arguments.configure_logging()
    result = run(aggregation, options)
    for level_run in result.levels:
        log.info("%s", level_run)
