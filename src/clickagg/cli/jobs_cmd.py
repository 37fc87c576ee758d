"""`clickagg stream`, `replay`, `settle`, `backfill`, `rollup` and `retention`: the Spark
jobs, run locally against local engines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from clickagg import errors
from clickagg.local import cache

console = Console()
LOCAL_MASTER = "local[2]"

SpecArg = Annotated[Path, typer.Argument(help="Aggregation YAML file.", exists=True)]
SolrOption = Annotated[
    str | None, typer.Option(help="Solr base URL; the local SolrCloud's when empty.")
]
DataOption = Annotated[
    str | None,
    typer.Option(help="Archive and checkpoint root; $CLICKAGG_CACHE/data/<name> when empty."),
]


def local_solr_url(given: str | None, role: str = "operator") -> str:
    """`given`, or the local SolrCloud's URL; for a local SolrCloud with authentication and
    no credentials in the environment, `role`'s are put there (user and password file); for
    one with TLS and no CA bundle in the environment, its CA file. Spark's local executors
    inherit this environment, so the jobs' writes carry the same credentials and trust.

    The jobs run locally also do the operator's part (they create missing collections), so
    they take the operator's role; `serve` and `sql` only read and take `query`'s."""
    if given:
        return given
    from clickagg.local import solr
    from clickagg.store import credentials

    running = solr.status()
    if running is None:
        console.print("[red]no Solr: start one with `clickagg local up --solr` or pass --solr-url")
        raise typer.Exit(1)
    if running.auth and credentials.USERNAME_ENV not in os.environ:
        os.environ.update(solr.credentials_env(role))
        console.print(f"Solr user: the local stack's '{role}' ({solr.credentials_file()})")
    if running.tls and credentials.CA_FILE_ENV not in os.environ:
        os.environ.update(solr.tls_env())
    return running.base_url


def data_root(given: str | None, name: str) -> str:
    return given or str(cache.cache_root() / "data" / name)


def local_jars(kafka: bool) -> tuple[str, ...]:
    """The jars of a local session: the JVM sessionizer's, and Kafka's source if read."""
    from clickagg.local import sessionizer

    jars = [str(sessionizer.jar())]
    if kafka:
        from clickagg.local import kafka as local_kafka

        jars += local_kafka.spark_connector_jars()
    return tuple(jars)


def stream(
    spec: SpecArg,
    solr_url: SolrOption = None,
    data: DataOption = None,
    available_now: Annotated[
        bool, typer.Option(help="Process what has arrived, then stop.")
    ] = False,
    trigger_seconds: Annotated[float | None, typer.Option(help="Micro-batch interval.")] = None,
    metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics port (0: off).")] = 0,
) -> None:
    """Run the streaming job in local mode: events → raw archive → live aggregates in Solr."""
    from clickagg.domain import specfile
    from clickagg.jobs import arguments
    from clickagg.jobs import stream as stream_job

    aggregation = specfile.load(spec)
    options = stream_job.Options(
        solr_url=local_solr_url(solr_url),
        data_root=data_root(data, aggregation.name),
        trigger_seconds=trigger_seconds,
        available_now=available_now,
        master=LOCAL_MASTER,
        jars=local_jars(kafka=aggregation.spec.source.kafka is not None),
        metrics_port=metrics_port,
    )
    arguments.configure_logging()
    stream_job.run(aggregation, options)


def replay(
    spec: SpecArg,
    start: Annotated[str, typer.Option("--from", help="Range start, ISO 8601 (UTC if no offset).")],
    end: Annotated[str, typer.Option("--to", help="Range end (exclusive), ISO 8601.")],
    solr_url: SolrOption = None,
    data: DataOption = None,
) -> None:
    """Recompute the finest level for [from, to) from the raw archive and replace it in Solr."""
    from clickagg.domain import buckets, specfile
    from clickagg.jobs import arguments
    from clickagg.jobs import replay as replay_job

    aggregation = specfile.load(spec)
    options = replay_job.Options(
        solr_url=local_solr_url(solr_url),
        data_root=data_root(data, aggregation.name),
        start_ms=buckets.parse_iso(start),
        end_ms=buckets.parse_iso(end),
        master=LOCAL_MASTER,
        jars=local_jars(kafka=False),
    )
    arguments.configure_logging()
    report = replay_job.run(aggregation, options)
    console.print(f"replayed {report.events} events into {report.documents} documents")


def settle(spec: SpecArg, solr_url: SolrOption = None, data: DataOption = None) -> None:
    """Settle the finest level: recompute the settled buckets late events left wrong."""
    from clickagg.domain import specfile
    from clickagg.jobs import arguments, spark
    from clickagg.jobs import settle as settle_job
    from clickagg.pipeline import archive
    from clickagg.store import solr_cells

    aggregation = specfile.load(spec)
    arguments.configure_logging()
    session = spark.session_for(f"{aggregation.name}-settle", LOCAL_MASTER, local_jars(kafka=False))
    paths = archive.JobPaths.of(data_root(data, aggregation.name), aggregation)
    with solr_cells.SolrCellStore(local_solr_url(solr_url)) as store:
        report = settle_job.run(aggregation, store, session, paths)
    spans = ", ".join(str(s) for s in report.recomputed) or "nothing"
    console.print(f"{report.late_events} late events; recomputed {spans}")


def backfill(
    spec: SpecArg,
    files: Annotated[list[str], typer.Argument(help="Raw line files (JSON lines).")],
    start: Annotated[str, typer.Option("--from", help="Window start, ISO 8601.")],
    end: Annotated[str, typer.Option("--to", help="Window end (exclusive), ISO 8601.")],
    solr_url: SolrOption = None,
    data: DataOption = None,
) -> None:
    """Parse historical lines into the archive (events outside [from, to) become dead
    letters), then settle that range."""
    from clickagg.domain import buckets, specfile
    from clickagg.jobs import arguments, spark
    from clickagg.jobs import backfill as backfill_job
    from clickagg.pipeline import archive
    from clickagg.store import solr_cells

    aggregation = specfile.load(spec)
    arguments.configure_logging()
    window = buckets.Span(buckets.parse_iso(start), buckets.parse_iso(end))
    session = spark.session_for(
        f"{aggregation.name}-backfill", LOCAL_MASTER, local_jars(kafka=False)
    )
    paths = archive.JobPaths.of(data_root(data, aggregation.name), aggregation)
    with solr_cells.SolrCellStore(local_solr_url(solr_url)) as store:
        result = backfill_job.run(aggregation, store, session, paths, files, window)
    console.print(
        f"backfilled {result.archived.events} events ({result.archived.dead_letters} dead "
        f"letters); settled {result.settled.documents} documents"
    )


def rollup(
    spec: SpecArg,
    level: Annotated[
        str | None, typer.Option(help="The level to build (default: every level).")
    ] = None,
    follow: Annotated[
        bool, typer.Option(help="Keep every level current until stopped (Ctrl-C).")
    ] = False,
    every: Annotated[float, typer.Option(help="Seconds between runs with --follow.")] = 60.0,
    solr_url: SolrOption = None,
    data: DataOption = None,
) -> None:
    """Build the coarser levels from the finer ones, then apply retention per level."""
    from clickagg.domain import specfile
    from clickagg.jobs import arguments
    from clickagg.jobs import rollup as rollup_job

    aggregation = specfile.load(spec)
    options = rollup_job.Options(
        solr_url=local_solr_url(solr_url),
        data_root=data_root(data, aggregation.name),
        level=level,
        follow=follow,
        follow_seconds=every,
        master=LOCAL_MASTER,
        jars=local_jars(kafka=False),  # the rollup settles first, with the JVM sessionizer
    )
    arguments.configure_logging()
    try:
        result = rollup_job.run(aggregation, options)
    except errors.ClickaggError as exc:
        console.print(f"[red]{exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:  # how --follow ends; every finished pass is already in Solr
        console.print("stopped")
        raise typer.Exit(0) from None
    for run in result.levels:
        console.print(str(run))
    for name, count in result.deleted.items():
        console.print(f"{name}: retention deleted {count} documents")
    if not result.levels:
        console.print(f"nothing to roll up in {', '.join(lv.name for lv in aggregation.levels)}")


def retention(
    spec: SpecArg,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would go and what is held back.")
    ] = False,
    solr_url: SolrOption = None,
    data: DataOption = None,
) -> None:
    """Apply each level's and the raw archive's retention, never before rollup."""
    from clickagg.domain import specfile
    from clickagg.jobs import arguments
    from clickagg.jobs import rollup as rollup_job
    from clickagg.store import solr_cells

    aggregation = specfile.load(spec)
    try:
        with solr_cells.SolrCellStore(local_solr_url(solr_url)) as store:
            plan = rollup_job.retention_plan(aggregation, store)
            for line in plan.lines():
                console.print(line, highlight=False)
            if dry_run:
                return
            arguments.configure_logging()
            names = {level.name for level in aggregation.levels}
            deleted = rollup_job.apply_retention(aggregation, store, plan, names)
    except errors.SolrError as exc:
        console.print(f"[red]{exc}", highlight=False)
        raise typer.Exit(1) from None
    for name, count in deleted.items():
        console.print(f"{name}: deleted {count} documents")
    if plan.archive.delete_before_ms is not None:
        from clickagg.jobs import spark
        from clickagg.pipeline import archive, archive_retention

        session = spark.session_for(f"{aggregation.name}-retention", LOCAL_MASTER, ())
        paths = archive.JobPaths.of(data_root(data, aggregation.name), aggregation)
        partitions = archive_retention.apply(session, paths, plan.archive)
        console.print(f"raw archive: deleted {partitions} hour partitions")
