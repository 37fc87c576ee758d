"""Replay of a day of traffic against DuckDB on the same events, in the same run (issue 10 §4).

Real engines: its own 2-node SolrCloud (free ports, its own run dir), a local[2] SparkSession
with the JVM sessionizer's jar. A day of generated shop traffic (with faults) lands as files
and the stream's `ingest` query archives it (availableNow, not timed: that is the stream's
work), with a sentinel 5 h after the day so every visit is closed. Then, timed:

- **replay** of the day (`pipeline/replay.py`, what `jobs/replay.py` runs): read the archive,
  first arrivals, sessionize every visitor, sum the cells, replace them in Solr; `--rounds`
  times, the first paying for JIT and Python workers (a replay job starts cold);
- **DuckDB**: the test oracle (`tests/oracle.py`: line checks in Python, then SQL) over the
  same lines, the reference the ratio divides by.

It checks that Solr's finest level after the replay equals the oracle's cells, samples peak
RSS of the driver JVM and the Python workers from /proc, and appends the figures to
docs/benchmarks.md with the commit and the load average (`--no-record` skips that).

    PYTHONPATH=src PYSPARK_PYTHON=$VENV/bin/python $VENV/bin/python \
        benchmarks/replay_day.py [--visitors 6000] [--rounds 2] [--conf KEY=VALUE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the DuckDB oracle and the streaming helpers

import run_facts  # noqa: E402
import stream_throughput  # noqa: E402

import streaming  # noqa: E402
from clickagg.domain import sessions  # noqa: E402
from clickagg.local import process  # noqa: E402
from clickagg.local import sessionizer as local_sessionizer  # noqa: E402
from clickagg.local import solr as local_solr  # noqa: E402
from clickagg.pipeline import archive, replay, stream  # noqa: E402
from clickagg.pipeline import session as spark_session  # noqa: E402
from clickagg.sim import landing  # noqa: E402
from clickagg.store import solr_cells  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Replay of a day"
INTRO = f"""
{HEADING}

`benchmarks/replay_day.py`: a day of generated shop traffic (with faults) is archived by the
stream's `ingest` query (not timed), then the replay of that day (`pipeline/replay.py`, what
`jobs/replay.py` runs) is timed against the DuckDB test oracle over the same lines, in the
same run, on local[2] with its own 2-node SolrCloud. The run compares Solr's finest level
after the replay with the oracle's cells and says where they differ. Target: the replay
within 2.0× of DuckDB's time.
"""
DAY_MS = 24 * streaming.HOUR_MS
TARGET_RATIO = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=6000, help="visitors in the day")
    parser.add_argument("--rounds", type=int, default=2, help="replays of the same day")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    options = parser.parse_args()
    commit = run_facts.git_commit(("src", "examples"))
    load_before = run_facts.load_average()
    work = Path(tempfile.mkdtemp(prefix="replay-day-"))
    with stream_throughput.solr_cloud(work / "run") as solr:
        conf = {"spark.jars": str(local_sessionizer.jar())}
        conf.update(item.split("=", 1) for item in options.conf)
        spark = spark_session.local_session("replay-day", conf=conf)
        try:
            figures = measure(spark, solr.base_url, work, options)
        finally:
            spark.stop()
    figures["load"] = f"{load_before} → {run_facts.load_average()}"
    text = report(figures, options)
    print(text)
    if not options.no_record:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        machine = "; ".join(f"{k} {v}" for k, v in run_facts.machine().items())
        section = f"\n### {stamp}: replay of a day (commit {commit})\n\nMachine: {machine}.\n\n"
        run_facts.append_section(DOCS, HEADING, INTRO, section + text + "\n")


def measure(spark: Any, solr_url: str, work: Path, options: argparse.Namespace) -> dict[str, Any]:
    day_ms = (int(time.time() * 1000) // DAY_MS - 2) * DAY_MS  # a whole day, two days back
    landing_dir = work / "landing"
    files = {"path": str(landing_dir), "maxFilesPerTrigger": 1000}
    aggregation = streaming.aggregation_for(
        landing_dir,
        solr_url,
        "replay-day",
        source={"type": "files", "files": files},
        # One ingest batch measures lateness from its own newest event, the sentinel 29 h
        # after the day's start: with the example's 1d, the day's first 5 h would be too late.
        lateness={"watermark": "10m", "allowedLateness": "3d"},
    )
    paths = archive.JobPaths(str(work / "data"))
    with solr_cells.SolrCellStore(solr_url) as store:
        store.ensure_collections(aggregation)
    began = time.monotonic()
    emitted = streaming.traffic_lines(day_ms, 24, options.visitors, seed=options.seed)
    lines = [item.line for item in emitted]
    written = landing.write_files(emitted, landing_dir, rolling=streaming.ROLLING)
    streaming.deliver_to(landing_dir)(streaming.sentinel(day_ms + DAY_MS + 5 * streaming.HOUR_MS))
    generate_s = time.monotonic() - began
    began = time.monotonic()
    source = stream.source_of(aggregation)
    stream.ingest(spark, aggregation, paths, source, 1, available_now=True).awaitTermination()
    archive_s = time.monotonic() - began

    solr_status = process.status(local_solr.PROCESS_NAME)
    sampler = stream_throughput.ResourceSampler(solr_status.pid if solr_status else -1)
    sampler.start()
    rounds = []
    try:
        for _ in range(options.rounds):
            sampler.sample()
            cpu_before = dict(sampler.cpu_ticks)
            driver_python = time.process_time()  # this process: collect, documents, sends
            began = time.monotonic()
            with solr_cells.SolrCellStore(solr_url) as store:
                result = replay.replay(
                    spark,
                    aggregation,
                    paths,
                    store,
                    day_ms,
                    day_ms + DAY_MS,
                    history_ms=sessions.VISITOR_MEMORY_MS,
                )
            seconds = time.monotonic() - began
            sampler.sample()
            cpu = sampler.cpu_seconds(cpu_before)
            cpu["driver Python"] = time.process_time() - driver_python
            rounds.append({"seconds": seconds, "documents": result.documents, "cpu": cpu})
    finally:
        sampler.stop_event.set()
    reference = stream_throughput.reference(list(written.files), aggregation)
    with solr_cells.SolrCellStore(solr_url) as store:
        problems = streaming.oracle_problems(store.client, aggregation, lines, day_ms + DAY_MS)
    return {
        "lines": len(lines),
        "files": len(written.files),
        "replayed_events": result.events,
        "generate_s": generate_s,
        "archive_s": archive_s,
        "rounds": rounds,
        "duckdb_s": reference.seconds,
        "oracle_cells": reference.cells,
        "problems": problems,
        "peak_rss": dict(sampler.peak_rss),
    }


def report(figures: dict[str, Any], options: argparse.Namespace) -> str:
    duck = figures["duckdb_s"]
    mib = stream_throughput.mib
    rows = [
        f"{figures['lines']:,} lines of one day ({options.visitors:,} visitors, seed "
        f"{options.seed}) in {figures['files']} files; the replay counted "
        f"{figures['replayed_events']:,} first arrivals in the day"
        + (f"; Spark settings {options.conf}" if options.conf else "")
        + ".",
        "",
        "| figure | value |",
        "|---|---|",
        f"| generate + land (not timed) / archive by the ingest query (not timed) | "
        f"{figures['generate_s']:.1f} s / {figures['archive_s']:.1f} s |",
    ]
    for number, done in enumerate(figures["rounds"], 1):
        cpu = done["cpu"]
        rows.append(
            f"| replay round {number}{' (cold)' if number == 1 else ''}: wall s, "
            f"CPU-s driver JVM / driver Python / Python workers / Solr, documents | "
            f"{done['seconds']:.1f} s, {cpu['driver JVM']:.0f} / {cpu['driver Python']:.0f} / "
            f"{cpu['Python workers']:.0f} / {cpu['Solr JVM']:.0f}, "
            f"{done['documents']:,} |"
        )
    rows.append(
        f"| DuckDB oracle, same lines (Python line checks + SQL) | {duck:.1f} s "
        f"({figures['lines'] / duck:,.0f} lines/s) |"
    )
    for number, done in enumerate(figures["rounds"], 1):
        ratio = done["seconds"] / duck
        rows.append(
            f"| **replay / DuckDB time**, round {number} | **{ratio:.2f}×** "
            f"(target ≤ {TARGET_RATIO:g}×: {run_facts.verdict(ratio <= TARGET_RATIO)}) |"
        )
    peak = figures["peak_rss"]
    rows += [
        f"| peak RSS while replaying: driver JVM / Python workers / Solr JVM | "
        f"{mib(peak['driver JVM'])} / {mib(peak['Python workers'])} / "
        f"{mib(peak['Solr JVM'])} |",
        f"| check: Solr's finest level vs the oracle's {figures['oracle_cells']:,} cells | "
        + (
            "equal"
            if not figures["problems"]
            else f"{len(figures['problems'])} DIFFER: {figures['problems'][:3]}"
        )
        + " |",
        f"| load average (1/5/15 min) before → after | {figures['load']} |",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
