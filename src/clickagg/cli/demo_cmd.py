"""`make demo`: the whole local path on a laptop, with a real SolrCloud and Spark.

It generates a day of traffic for a mid-size shop, streams it through the streaming job
(progress bar and live KPIs in the terminal), then reads the top campaigns, offers and
contents back from Solr.
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

from clickagg.adapters import kpi_reader, landing, metrics, solr_collections, specfile, stream
from clickagg.adapters import solr as solr_client
from clickagg.adapters import spark as spark_adapter
from clickagg.cli import jobs_cmd, render
from clickagg.domain import durations, model, plan, traffic, validation
from clickagg.local import cache, solr

DAY_MS = 86_400_000
LIVE_KPIS = ("visits", "unique_visitors", "page_views", "orders", "revenue",
             "conversion_rate", "bounce_rate", "click_through_rate")  # fmt: skip


@dataclass(frozen=True)
class DemoOptions:
    visitors: int
    duration_ms: int
    seed: int
    keep: bool


def run(console: Console, spec_file: Path, options: DemoOptions) -> None:
    declared = specfile.load(spec_file)
    console.print(f"[green]{spec_file}: valid[/green]")
    render.plan_tables(console, declared, plan.build(declared))
    work = cache.cache_root() / "demo" / declared.name
    shutil.rmtree(work, ignore_errors=True)
    was_running = solr.status() is not None
    started = time.monotonic()
    endpoints = solr.up()
    console.print(f"SolrCloud (2 nodes) up in {time.monotonic() - started:.1f}s: "
                  f"{endpoints.base_url}")  # fmt: skip
    try:
        aggregation = _local_aggregation(declared, work / "landing", endpoints.base_url)
        with solr_client.SolrClient(endpoints.base_url) as client:
            solr_collections.delete_level_collections(client, aggregation)
            for ensured in solr_collections.ensure_level_collections(client, aggregation):
                console.print(f"collection {ensured.collection}: created")
            _stream(console, aggregation, work, endpoints.base_url, options)
            _summary(console, client, aggregation, options)
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
    return validation.validate_spec(declared.name, declared.namespace, body)


def _stream(
    console: Console, aggregation: model.Aggregation, work: Path, solr_url: str,
    options: DemoOptions,
) -> None:  # fmt: skip
    end_ms = int(time.time() * 1000) // 60_000 * 60_000
    start_ms = end_ms - options.duration_ms
    profile = traffic.TrafficProfile(visitors=options.visitors)
    console.print(f"generating {durations.Duration(0, options.duration_ms // 1000).short()} of "
                  f"traffic for {options.visitors:,} visitors (seed {options.seed})")  # fmt: skip
    lines = list(traffic.generate(profile, traffic.Faults(), start_ms, options.duration_ms,
                                  options.seed))  # fmt: skip
    session = spark_adapter.local_session(
        f"{aggregation.name}-demo", conf={"spark.jars": jobs_cmd.local_jars(kafka=False)}
    )
    session.sparkContext.setLogLevel("ERROR")  # "batch falling behind" is what a demo does
    job_metrics = metrics.StreamMetrics(aggregation.name)
    session.streams.addListener(metrics.ProgressListener(job_metrics))
    paths = stream.JobPaths(str(work / "data"))
    queries = [
        stream.ingest(session, aggregation, paths, stream.source_of(aggregation), 2),
        stream.aggregate(session, aggregation, paths, solr_url, 2,
                         on_batch=lambda _, r: job_metrics.record_solr_write(r)),
    ]  # fmt: skip
    # Lines land in arrival order, about 40 files, while the job runs.
    feeder = threading.Thread(
        target=landing.write_files,
        args=(lines, work / "landing"),
        kwargs={"rolling": landing.Rolling(lines_per_file=max(1, len(lines) // 40),
                                           arrival_ms_per_file=None)},
        daemon=True,
    )  # fmt: skip
    feeder.start()
    try:
        _watch(console, aggregation, job_metrics, len(lines), solr_url, start_ms, end_ms)
    finally:
        for query in queries:
            stream.stop_between_batches(query)
        session.stop()


def _watch(
    console: Console, aggregation: model.Aggregation, job_metrics: metrics.StreamMetrics,
    total: int, solr_url: str, start_ms: int, end_ms: int,
) -> None:  # fmt: skip
    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                        TimeElapsedColumn())  # fmt: skip
    ingested = progress.add_task("archived", total=total)
    aggregated = progress.add_task("sessionized + in Solr", total=total)
    quiet_since: float | None = None
    with solr_client.SolrClient(solr_url) as client, Live(console=console) as live:
        while True:
            done_in = job_metrics.value("clickagg_input_rows_total", query="ingest")
            dead = job_metrics.value("clickagg_dead_letters_total")
            # The aggregate query reads valid events only: dead letters count as done.
            done_agg = job_metrics.value("clickagg_input_rows_total", query="aggregate") + dead
            progress.update(ingested, completed=done_in)
            progress.update(aggregated, completed=done_agg)
            live.update(Group(progress, _live_table(client, aggregation, start_ms, end_ms)))
            if done_in >= total and done_agg >= done_in:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 5:  # a last batch for the closing timers
                    return
            time.sleep(1.0)


def _live_table(
    client: solr_client.SolrClient, aggregation: model.Aggregation, start_ms: int, end_ms: int
) -> Table:
    table = Table(title="live KPIs of the day (from Solr)")
    values = kpi_reader.totals(client, aggregation.finest, start_ms, end_ms + 1, LIVE_KPIS)
    for name in LIVE_KPIS:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_row(*(_shown(name, values[name]) for name in LIVE_KPIS))
    return table


def _summary(
    console: Console, client: solr_client.SolrClient, aggregation: model.Aggregation,
    options: DemoOptions,
) -> None:  # fmt: skip
    end_ms = int(time.time() * 1000) + 60_000
    start_ms = end_ms - options.duration_ms - 3_600_000
    level = aggregation.finest
    for dimension, by, names in (
        ("campaign", "visits", ("visits", "conversion_rate", "revenue", "revenue_per_visit")),
        ("offer", "clicks", ("impressions", "clicks", "click_through_rate", "orders")),
        ("content", "page_views", ("page_views", "entries", "exit_rate", "bounces")),
    ):
        rows = kpi_reader.top(client, level, dimension, start_ms, end_ms, by=by, names=names)
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
