"""`make demo`: the whole local path on a laptop, with a real SolrCloud and Spark.

It generates a day of traffic for a mid-size shop, streams it through the streaming job
(progress bar and live KPIs in the terminal), rolls the finest level up into the coarser
ones (showing each level's document count and last rolled-up bucket), reads the top
campaigns, offers and contents back from Solr, and then serves the dashboard on loopback
until Ctrl-C (unless told not to).
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clickagg import sim
from clickagg.cli import jobs_cmd, render
from clickagg.domain import buckets, durations, level_progress, model, plan, specfile, validation
from clickagg.jobs import rollup as rollup_job
from clickagg.jobs import stream as stream_job
from clickagg.local import cache, solr
from clickagg.pipeline import metrics
from clickagg.pipeline import session as spark_session
from clickagg.sim import landing
from clickagg.store import cell_reads, collections, protocol, queries, solr_cells

DAY_MS = 86_400_000
LIVE_KPIS = (
    "visits",
    "unique_visitors",
    "page_views",
    "orders",
    "revenue",
    "conversion_rate",
    "bounce_rate",
    "click_through_rate",
)


@dataclass(frozen=True)
class DemoOptions:
    visitors: int
    duration_ms: int
    seed: int
    keep: bool
    start_ms: int | None = None  # None: the traffic ends at the current minute
    serve_port: int | None = None  # None: do not serve the dashboard at the end


def run(console: Console, spec_file: Path, options: DemoOptions) -> None:
    declared = specfile.load(spec_file)
    console.print(f"[green]{spec_file}: valid[/green]")
    render.plan_tables(console, declared, plan.build(declared))
    work = cache.cache_root() / "demo" / declared.name
    shutil.rmtree(work, ignore_errors=True)
    was_running = solr.status() is not None
    started = time.monotonic()
    endpoints = solr.up()
    console.print(
        f"SolrCloud (2 nodes) up in {time.monotonic() - started:.1f}s: {endpoints.base_url}"
    )
    try:
        aggregation = _local_aggregation(declared, work / "landing", endpoints.base_url)
        with solr_cells.SolrCellStore(endpoints.base_url) as store:
            collections.delete_level_collections(store.client, aggregation)
            start_ms, end_ms = _stream(console, aggregation, work, store, options)
            _roll_up(console, aggregation, store, str(work / "data"), start_ms)
            _summary(console, store, aggregation, start_ms, end_ms)
        if options.serve_port is not None:
            _serve(console, aggregation, endpoints.base_url, options.serve_port)
    finally:
        if not (options.keep or was_running):
            solr.down()
            console.print("SolrCloud stopped (use --keep to leave it running)")


def _local_aggregation(
    declared: model.Aggregation, landing_dir: Path, solr_url: str
) -> model.Aggregation:
    """The declared spec, reading the demo's landing directory and writing to local Solr."""
    body = declared.spec.model_dump(by_alias=True, exclude_none=True)
    body["source"] = {"type": "files", "files": {"path": str(landing_dir), "maxFilesPerTrigger": 4}}
    body["solr"] = {"url": solr_url, "shards": 2, "replicationFactor": 1}
    body["rawArchive"] = {"retention": "forever"}
    # Settled three hours after the watermark (not a day), so the demo can roll up most of
    # what it has just streamed; not less, since the stream's first micro-batch measures
    # `too_late` from its own newest event, and its 4 files span up to 2.4 hours (`_stream`).
    body["lateness"] = {**body.get("lateness", {}), "allowedLateness": "3h"}
    return validation.validate_spec(declared.name, declared.namespace, body)


def _stream(
    console: Console,
    aggregation: model.Aggregation,
    work: Path,
    store: solr_cells.SolrCellStore,
    options: DemoOptions,
) -> tuple[int, int]:
    """Generate the traffic and stream it through the streaming job; its [start, end)."""
    if options.start_ms is None:
        end_ms = int(time.time() * 1000) // 60_000 * 60_000
        start_ms = end_ms - options.duration_ms
    else:
        start_ms, end_ms = options.start_ms, options.start_ms + options.duration_ms
    profile = sim.TrafficProfile(visitors=options.visitors)
    console.print(
        f"generating {durations.Duration(0, options.duration_ms // 1000).short()} of traffic "
        f"from {sim.iso(start_ms)} for {options.visitors:,} visitors (seed {options.seed})"
    )
    lines = list(sim.generate(profile, sim.Faults(), start_ms, options.duration_ms, options.seed))
    jars = ",".join(jobs_cmd.local_jars(kafka=False))
    session = spark_session.local_session(f"{aggregation.name}-demo", conf={"spark.jars": jars})
    session.sparkContext.setLogLevel("ERROR")  # "batch falling behind" is what a demo does
    job = stream_job.Options(
        solr_url=store.client.base_url, data_root=str(work / "data"), trigger_seconds=2
    )
    running = stream_job.start(aggregation, job, session)
    for ensured in running.ensured:
        console.print(f"collection {ensured.collection}: created")
    # Lines land in arrival order, in about 40 files while the job runs. A file also ends
    # after 1/40 of the span: a quiet night's lines would otherwise fill one file for hours,
    # and the first batch would turn its older events into `too_late` dead letters.
    rolling = landing.Rolling(
        lines_per_file=max(1, len(lines) // 40),
        arrival_ms_per_file=max(1, options.duration_ms // 40),
    )
    feeder = threading.Thread(
        target=landing.write_files,
        args=(lines, work / "landing"),
        kwargs={"rolling": rolling},
        daemon=True,
    )
    feeder.start()
    try:
        _watch(console, aggregation, running.metrics, len(lines), store, start_ms, end_ms)
    finally:
        running.stop()
        session.stop()
    return start_ms, end_ms


def _roll_up(
    console: Console,
    aggregation: model.Aggregation,
    store: solr_cells.SolrCellStore,
    data_root: str,
    start_ms: int,
) -> None:
    """Settle the finest level, run the rollup job over every level, then show what each
    level holds."""
    session = spark_session.local_session(f"{aggregation.name}-demo-rollup")
    session.sparkContext.setLogLevel("ERROR")
    started = time.monotonic()
    try:
        result = rollup_job.roll_up_levels(session, aggregation, store, data_root=data_root)
    finally:
        session.stop()
    console.print(f"rolled up in {time.monotonic() - started:.1f}s")
    runs = {run.level: run for run in result.levels}
    table = Table(title="levels in Solr")
    for column in ("level", "documents", "last rolled-up bucket", "retention"):
        table.add_column(column, justify="right" if column == "documents" else "left")
    for level in aggregation.levels:
        count = cell_reads.count(store.client, level.collection, queries.aggregate_cells())
        run = runs.get(level.name)
        if run is None:
            shown = "streamed live"
        elif run.report.last_bucket_ms is None:
            shown = _none_yet(level, run.report, start_ms)
        else:
            shown = buckets.iso(run.report.last_bucket_ms)
        table.add_row(level.name, f"{count:,}", shown, level.retention_text)
    console.print(table)


def _none_yet(level: model.Level, report: level_progress.LevelReport, start_ms: int) -> str:
    """Why a level has no bucket yet: its first bucket ends after the settled input (a run
    just after midnight has no complete day)."""
    first_end = buckets.end(buckets.floor(start_ms, level.granularity), level.granularity)
    settled = (
        f", input settled to {buckets.iso(report.input_end_ms)}" if report.input_end_ms else ""
    )
    return f"none yet: the first bucket ends {buckets.iso(first_end)}{settled}"


def _watch(
    console: Console,
    aggregation: model.Aggregation,
    job_metrics: metrics.StreamMetrics,
    total: int,
    store: protocol.CellStore,
    start_ms: int,
    end_ms: int,
) -> None:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TimeElapsedColumn(),
    )
    ingested = progress.add_task("archived", total=total)
    aggregated = progress.add_task("sessionized + in Solr", total=total)
    quiet_since: float | None = None
    with Live(console=console) as live:
        while True:
            done_in = job_metrics.value("clickagg_input_rows_total", query="ingest")
            dead = job_metrics.value("clickagg_dead_letters_total")
            # The aggregate query reads valid events only: dead letters count as done.
            done_agg = job_metrics.value("clickagg_input_rows_total", query="aggregate") + dead
            progress.update(ingested, completed=done_in)
            progress.update(aggregated, completed=done_agg)
            live.update(Group(progress, _live_table(store, aggregation, start_ms, end_ms)))
            if done_in >= total and done_agg >= done_in:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 5:  # a last batch for the closing timers
                    return
            time.sleep(1.0)


def _live_table(
    store: protocol.CellStore, aggregation: model.Aggregation, start_ms: int, end_ms: int
) -> Table:
    table = Table(title="live KPIs of the day (from Solr)")
    values = store.totals(aggregation.finest, start_ms, end_ms + 1, LIVE_KPIS)
    for name in LIVE_KPIS:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_row(*(_shown(name, values[name]) for name in LIVE_KPIS))
    return table


def _summary(
    console: Console,
    store: protocol.CellStore,
    aggregation: model.Aggregation,
    start_ms: int,
    end_ms: int,
) -> None:
    # An hour before the traffic and a minute after it: every bucket a visit can reach.
    start_ms, end_ms = start_ms - 3_600_000, end_ms + 60_000
    level = aggregation.finest
    for dimension, by, names in (
        ("campaign", "visits", ("visits", "conversion_rate", "revenue", "revenue_per_visit")),
        ("offer", "clicks", ("impressions", "clicks", "click_through_rate", "orders")),
        ("content", "page_views", ("page_views", "entries", "exit_rate", "bounces")),
    ):
        rows = store.top(level, dimension, start_ms, end_ms, by=by, names=names)
        table = Table(title=f"top {dimension}s by {by.replace('_', ' ')}")
        table.add_column(dimension)
        for name in names:
            table.add_column(name.replace("_", " "), justify="right")
        for row in rows:
            table.add_row(row.value, *(_shown(n, row.kpis[n]) for n in names))
        console.print(table)


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name.endswith("_rate") or name.endswith("_share"):
        return f"{100 * value:.1f} %"
    if "revenue" in name:
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def _serve(console: Console, aggregation: model.Aggregation, solr_url: str, port: int) -> None:
    """The KPI service and dashboard over what the demo streamed, until Ctrl-C."""
    from clickagg.service import server, settings

    with server.Server(settings.Settings((aggregation,), solr_url), "127.0.0.1", port) as running:
        console.print(f"[bold]dashboard: {running.url}/[/bold]  (API docs at {running.url}/docs; "
                      "Ctrl-C stops serving)")  # fmt: skip
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopped serving")
