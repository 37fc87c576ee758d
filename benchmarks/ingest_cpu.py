"""What one ingest batch costs per parser path: CPU of the JVM and of the Python workers.

The streaming benchmark (stream_throughput.py) measures the whole job; this one isolates the
ingest's `write_archive` (parse, enrich, too_late marking, Parquet archive) over the same N
lines of generated shop traffic (faults included), read as text files like the stream reads
them, in one local[2] session, `spark.clickagg.parser` python then jvm, for some rounds (the
first pays for JIT and Python worker start-up). CPU comes from /proc: the session's JVM, its
Python workers, and this driver's own Python (the JVM path parses deferred lines and builds
its enrichment tables there). Each path's figure is a ratio against the other, same session.

Run: PYTHONPATH=src PYSPARK_PYTHON=$VENV/bin/python $VENV/bin/python \
         benchmarks/ingest_cpu.py [--lines N] [--rounds R] [--paths python,jvm] [--conf K=V]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stream_throughput

from clickagg import sim
from clickagg.domain import events
from clickagg.local import sessionizer
from clickagg.pipeline import archive, jvm_parse, parse, session, stream

HOUR_MS = 3_600_000
LINES_PER_FILE = 5000
TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paths", default=f"{jvm_parse.PYTHON},{jvm_parse.JVM}")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ingest-cpu-"))
    write_traffic(work / "in", args.lines)
    conf = {"spark.jars": str(sessionizer.jar()), **dict(c.split("=", 1) for c in args.conf)}
    spark = session.local_session("ingest-cpu", conf=conf)
    window = events.TimeWindow(max_past_ms=3 * HOUR_MS)
    print(f"load average before: {os.getloadavg()}", flush=True)
    print(
        "| round | parser | lines | dead letters | wall s | JVM CPU-s | Python worker CPU-s "
        "| driver Python CPU-s | lines per CPU-s |",
        flush=True,
    )
    try:
        for round_ in range(args.rounds):
            for path in args.paths.split(","):
                spark.conf.set(jvm_parse.CONF, path)
                lines = stream.file_lines(spark.read.format("text").load(str(work / "in")))
                paths = archive.JobPaths(str(work / f"out-{path}-{round_}"))
                settings = parse.ParseSettings(round_, int(time.time() * 1000))
                jvm_before, python_before = cpu_ticks()
                driver_before = time.process_time()
                started = time.monotonic()
                report = stream.write_archive(lines, settings, window, paths, None)
                wall = time.monotonic() - started
                jvm_after, python_after = cpu_ticks()
                jvm_s = (jvm_after - jvm_before) / TICKS
                python_s = (python_after - python_before) / TICKS
                driver_s = time.process_time() - driver_before
                print(
                    f"| {round_} | {path} | {report.lines:,} | {report.dead_letters:,} | "
                    f"{wall:.1f} | {jvm_s:.1f} | {python_s:.1f} | {driver_s:.1f} | "
                    f"{report.lines / max(jvm_s + python_s + driver_s, 1e-9):,.0f} |",
                    flush=True,
                )
    finally:
        spark.stop()
    print(f"load average after: {os.getloadavg()}", flush=True)


def write_traffic(directory: Path, count: int) -> None:
    directory.mkdir(parents=True)
    end_ms = (int(time.time() * 1000) // HOUR_MS - 1) * HOUR_MS
    profile = sim.TrafficProfile(visitors=max(count // 10, 1))
    emitted = sim.generate(profile, sim.Faults(), end_ms - 2 * HOUR_MS, 2 * HOUR_MS, 11)
    lines = [item.line for item in itertools.islice(emitted, count)]
    for start in range(0, count, LINES_PER_FILE):
        chunk = lines[start : start + LINES_PER_FILE]
        (directory / f"part-{start:09d}.jsonl").write_bytes(b"\n".join(chunk) + b"\n")


def cpu_ticks() -> tuple[int, int]:
    """CPU ticks so far of this process's JVM and of its other children (Python workers)."""
    procs = stream_throughput.read_procs()
    children = stream_throughput.descendants(procs, os.getpid())
    jvm = sum(procs[p].cpu_ticks for p in children if procs[p].comm == "java")
    python = sum(procs[p].cpu_ticks for p in children if procs[p].comm != "java")
    return jvm, python


if __name__ == "__main__":
    main()
