"""How fast is the streaming job, and how fresh are its cells? (issue 3 §5)

The targets are ≥ 50,000 events/s sustained into Solr with a p95 freshness ≤ 10 s. Tests
prove the job is right; only a run over real engines at volume says whether it is fast
enough, where the time goes, and how far it is from a plain batch engine. So this script:

1. starts its own SolrCloud (free ports, its own CLICKAGG_RUN_DIR in a temp dir) and
   creates the collections of examples/shop-kpis.yaml, adapted (temp landing dir, one replica,
   no bound on the plan's size);
2. generates N events of realistic traffic (with faults) into files in a staging dir,
   timed apart. The last line of every file is a *probe*: a page view of a fresh visitor
   with its own campaign value, so its `campaign` cell appears in Solr exactly when the
   file's lines have gone through both queries;
3. runs the job's `ingest` and `aggregate` queries in one local[2] SparkSession (or, with
   `--spark-cluster`, with this process as the driver of a standalone cluster of its own: a
   master and two workers on 127.0.0.2 and 127.0.0.3, one executor of 1 core each) on a
   processing-time trigger, moves the files into the landing dir at a set rate (or all at
   once), and measures throughput (from StreamingQueryProgress), per-batch durations,
   freshness (probe visible in Solr − file landed), peak RSS and CPU of the driver JVM, the
   executor JVMs, the Python workers and the Solr JVM (from /proc);
4. computes the same cells with the DuckDB test oracle (tests/oracle.py) as the reference,
   checks both agree on the event total, and prints a markdown report that it also appends
   to docs/benchmarks.md with the date and commit.

Run: PYTHONPATH=src PYSPARK_PYTHON=$VENV/bin/python $VENV/bin/python \
         benchmarks/stream_throughput.py [--quick] [--events N] [--rate R | --burst]
         [--spark-cluster]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import SparkSession

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the DuckDB oracle lives with the tests

import run_facts  # noqa: E402

import oracle  # noqa: E402
from clickagg import sim  # noqa: E402
from clickagg.domain import buckets, model, validation  # noqa: E402
from clickagg.local import process  # noqa: E402
from clickagg.local import sessionizer as local_sessionizer  # noqa: E402
from clickagg.local import solr as local_solr  # noqa: E402
from clickagg.local import spark_cluster as local_spark_cluster  # noqa: E402
from clickagg.pipeline import archive, jvm_sessionizer, stream  # noqa: E402
from clickagg.pipeline import session as spark  # noqa: E402
from clickagg.sim import landing  # noqa: E402
from clickagg.store import cell_reads, queries, solr_cells  # noqa: E402
from clickagg.store import client as solr  # noqa: E402
from clickagg.store import collections as solr_collections  # noqa: E402

SPEC = ROOT / "examples" / "shop-kpis.yaml"
DOCS = ROOT / "docs" / "benchmarks.md"
NAME = "bench-stream"
TARGET_EVENTS_PER_S = 50_000
TARGET_P95_FRESHNESS_S = 10.0
HOUR_MS = 3_600_000
#: Slightly more visitors than the measured ~12 lines per visitor need; the stream is cut at N.
LINES_PER_VISITOR = 10
PROBE_PREFIX = "bench-probe-"
FAR_FUTURE_MS = buckets.parse_iso("2100-01-01T00:00:00Z")  # the end of every range read
PROBE_POLL_S = 0.25
SAMPLE_EVERY_S = 0.5
CORES = os.cpu_count() or 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class Options:
    events: int
    rate: float | None  # events/s released into the landing dir; None: all at once
    trigger_seconds: float
    lines_per_file: int
    max_files_per_trigger: int
    warmup_files: int
    span_hours: float
    seed: int
    timeout_s: float
    quick: bool
    record: bool
    progress_json: Path | None
    spark_conf: dict[str, str]
    spark_cluster: bool


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, help="traffic lines (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 events, small files")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--rate",
        type=float,
        default=TARGET_EVENTS_PER_S,
        help="events/s moved into the landing dir (default: the target)",
    )
    pace.add_argument(
        "--burst", action="store_true", help="move every file at once: the maximum-throughput run"
    )
    parser.add_argument(
        "--trigger-seconds",
        type=float,
        default=2.0,
        help="processing-time trigger; 0 takes the spec's triggerInterval",
    )
    parser.add_argument("--lines-per-file", type=int, help="default 5000 (2500 with --quick)")
    parser.add_argument(
        "--max-files-per-trigger",
        type=int,
        default=1000,
        help="spec.source.files.maxFilesPerTrigger (the spec default: 1000)",
    )
    parser.add_argument(
        "--warmup-files", type=int, default=2, help="files released and waited for before measuring"
    )
    parser.add_argument(
        "--span-hours", type=float, default=2.0, help="event-time span of the generated traffic"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds to wait for the last probe"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    parser.add_argument("--progress-json", type=Path, help="dump every query progress here")
    parser.add_argument(
        "--spark-cluster",
        action="store_true",
        help="run the tasks on a standalone cluster of its own (master + 2 workers on "
        "loopback), this process as the driver; default: local[2]",
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark setting for the job's session (repeatable), to try a tuning; "
        "spark.clickagg.sessionizer=python runs the Python sessionizer",
    )
    args = parser.parse_args(argv)
    return Options(
        events=args.events or (100_000 if args.quick else 1_000_000),
        rate=None if args.burst else args.rate,
        trigger_seconds=args.trigger_seconds,
        lines_per_file=args.lines_per_file or (2500 if args.quick else 5000),
        max_files_per_trigger=args.max_files_per_trigger,
        warmup_files=args.warmup_files,
        span_hours=args.span_hours,
        seed=args.seed,
        timeout_s=args.timeout,
        quick=args.quick,
        record=not args.no_record,
        progress_json=args.progress_json,
        spark_conf=dict(item.split("=", 1) for item in args.conf),
        spark_cluster=args.spark_cluster,
    )


# ------------------------------------------------------------------------------ set-up


@contextlib.contextmanager
def solr_cloud(
    run_dir: Path, hosts: Sequence[str] | None = None
) -> Iterator[local_solr.SolrEndpoints]:
    """A 2-node SolrCloud of our own: free ports, its own run dir, stopped on exit; node i
    on `hosts[i]` (default: both on 127.0.0.1)."""
    os.environ["CLICKAGG_RUN_DIR"] = str(run_dir)
    ports: list[int] = []
    while len(ports) < 3:
        port = process.free_port()
        if port not in ports:
            ports.append(port)
    endpoints = local_solr.up(zk_port=ports[0], ports=ports[1:], hosts=hosts)
    try:
        yield endpoints
    finally:
        local_solr.down()


def aggregation_for(work: Path, solr_url: str, options: Options) -> model.Aggregation:
    """examples/shop-kpis.yaml reading our landing dir and writing to our Solr."""
    document = yaml.safe_load(SPEC.read_text())
    spec = document["spec"]
    document["metadata"]["name"] = NAME
    spec["source"] = {
        "type": "files",
        "files": {
            "path": str(work / "landing"),
            "maxFilesPerTrigger": options.max_files_per_trigger,
        },
    }
    spec["solr"] = {"url": solr_url, "shards": 2, "replicationFactor": 1}
    spec["limits"] = {"maxDocumentsPerDay": 10**15}
    spec["rawArchive"]["uri"] = str(work / "data" / "archive")
    return validation.validate(document)


# ------------------------------------------------------------------------------ traffic


@dataclass
class Generated:
    files: list[Path]
    traffic_lines: int
    kinds: Counter[str]
    seconds: float

    @property
    def lines(self) -> int:
        return self.traffic_lines + len(self.files)  # one probe per file


def probe_id(index: int) -> str:
    return f"{PROBE_PREFIX}{index:06d}"


def probe(index: int, ts_ms: int) -> sim.Emitted:
    """A fresh visitor's page view with its own campaign: one new `campaign` cell."""
    name = probe_id(index)
    line = json.dumps(
        {
            "event_id": name,
            "ts": ts_ms,
            "visitor_id": name,
            "type": "page_view",
            "page": "/",
            "campaign": name,
            "channel": "email",
            "device_class": "desktop",
            "browser_family": "chrome",
            "country": "DE",
        },
        separators=(",", ":"),
    ).encode()
    return sim.Emitted(line, ts_ms, sim.VALID, visitor_id=name)


def with_probes(
    lines: Iterable[sim.Emitted], lines_per_file: int, kinds: Counter[str]
) -> Iterator[sim.Emitted]:
    """The lines with a probe as the last line of every file (files roll by line count).

    A probe's time is the newest arrival so far, never behind the watermark.
    """
    in_file = probes = last_ms = 0
    for item in lines:
        kinds[item.kind] += 1
        last_ms = max(last_ms, item.arrival_ms)
        yield item
        in_file += 1
        if in_file == lines_per_file - 1:
            yield probe(probes, last_ms)
            probes += 1
            in_file = 0
    if in_file:
        yield probe(probes, last_ms)


def generate(staging: Path, options: Options) -> Generated:
    """N lines of faulty traffic into files in `staging`, in arrival order."""
    started = time.perf_counter()
    end_ms = (int(time.time() * 1000) // HOUR_MS - 1) * HOUR_MS
    span_ms = int(options.span_hours * HOUR_MS)
    profile = sim.TrafficProfile(visitors=math.ceil(options.events / LINES_PER_VISITOR))
    emitted = sim.generate(profile, sim.Faults(), end_ms - span_ms, span_ms, options.seed)
    kinds: Counter[str] = Counter()
    delivered = landing.write_files(
        with_probes(itertools.islice(emitted, options.events), options.lines_per_file, kinds),
        staging,
        rolling=landing.Rolling(lines_per_file=options.lines_per_file, arrival_ms_per_file=None),
        fsync=False,
    )
    return Generated(list(delivered.files), kinds.total(), kinds, time.perf_counter() - started)


# ------------------------------------------------------------------------------ run-time probes


class Releaser(threading.Thread):
    """Moves staged files into the landing dir on a schedule; remembers when each landed."""

    def __init__(self, files: Sequence[Path], landing_dir: Path, offsets: Sequence[float]):
        super().__init__(name="releaser", daemon=True)
        self.files, self.landing_dir, self.offsets = files, landing_dir, offsets
        self.landed_at: list[float] = []
        self.started_at = 0.0

    def run(self) -> None:
        self.started_at = time.time()
        for path, offset in zip(self.files, self.offsets, strict=True):
            delay = self.started_at + offset - time.time()
            if delay > 0:
                time.sleep(delay)
            os.utime(path)  # Spark orders new files by modification time
            path.rename(self.landing_dir / path.name)
            self.landed_at.append(time.time())


def release_offsets(files: Sequence[Path], lines_per_file: int, rate: float | None) -> list[float]:
    """When each file lands, relative to the start: once all its lines have 'arrived'."""
    if rate is None:
        return [0.0] * len(files)
    return [(i + 1) * lines_per_file / rate for i in range(len(files))]


class ProbeWatcher(threading.Thread):
    """Polls Solr for probe cells; remembers when each first became visible to search."""

    def __init__(self, solr_url: str, level: model.Level, expected: int) -> None:
        super().__init__(name="probe-watcher", daemon=True)
        self.solr_url, self.level, self.expected = solr_url, level, expected
        self.seen: dict[str, float] = {}
        self.stop_event = threading.Event()
        self.errors = 0

    def run(self) -> None:
        with solr.SolrClient(self.solr_url) as client:
            while not self.stop_event.wait(PROBE_POLL_S):
                try:
                    values = cell_reads.values_with_prefix(
                        client, self.level, "campaign", PROBE_PREFIX, self.expected + 10
                    )
                except Exception:  # a busy Solr answers late or fails: poll again
                    self.errors += 1
                    continue
                now = time.time()
                for value in values:
                    self.seen.setdefault(value, now)

    def wait_for(self, names: Iterable[str], timeout_s: float) -> bool:
        wanted = set(names)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if wanted <= self.seen.keys():
                return True
            time.sleep(PROBE_POLL_S)
        return False


@dataclass
class ProcStat:
    pid: int
    ppid: int
    comm: str
    rss_bytes: int
    cpu_ticks: int


def read_procs() -> dict[int, ProcStat]:
    procs = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        rest = text[text.rindex(")") + 2 :].split()
        # fields after comm: state ppid ... utime(12) stime(13) ... rss(22), 0-based
        procs[int(entry.name)] = ProcStat(
            int(entry.name),
            int(rest[1]),
            comm,
            int(rest[21]) * PAGE_BYTES,
            int(rest[11]) + int(rest[12]),
        )
    return procs


def descendants(procs: dict[int, ProcStat], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in procs.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


GROUPS = (
    "driver JVM",
    "executor JVMs",
    "Python workers",
    "Solr JVM",
    "Spark daemons",
    "benchmark process",
)
#: The job's processes: what its events per CPU-second and its RSS sum count.
JOB_GROUPS = GROUPS[:4]


class ResourceSampler(threading.Thread):
    """Samples RSS and CPU time of the job's processes and Solr's from /proc.

    On the standalone cluster the master and workers (`daemon_pids`) are Spark daemons, the
    JVMs they start are executors, and the Python processes under those are workers.
    """

    def __init__(self, solr_pid: int, daemon_pids: Sequence[int] = ()) -> None:
        super().__init__(name="resource-sampler", daemon=True)
        self.solr_pid = solr_pid
        self.daemon_pids = set(daemon_pids)
        self.peak_rss = dict.fromkeys((*GROUPS, "total"), 0)
        self.cpu_ticks: dict[int, tuple[str, int]] = {}  # pid -> (group, newest ticks)
        self.stop_event = threading.Event()

    def groups(self, procs: dict[int, ProcStat]) -> dict[int, str]:
        me = os.getpid()
        solr_pids = {self.solr_pid} | descendants(procs, self.solr_pid)
        grouped = {pid: "Solr JVM" for pid in solr_pids if pid in procs}
        grouped[me] = "benchmark process"
        daemons = {pid for pid in self.daemon_pids if pid in procs}
        grouped.update(dict.fromkeys(daemons, "Spark daemons"))
        on_cluster = {child for pid in daemons for child in descendants(procs, pid)}
        for pid in descendants(procs, me) - solr_pids - daemons:
            comm = procs[pid].comm
            if comm == "java":
                grouped[pid] = "executor JVMs" if pid in on_cluster else "driver JVM"
            elif comm.startswith("python"):
                grouped[pid] = "Python workers"
        return grouped

    def sample(self) -> None:
        procs = read_procs()
        rss = dict.fromkeys(GROUPS, 0)
        for pid, group in self.groups(procs).items():
            rss[group] += procs[pid].rss_bytes
            self.cpu_ticks[pid] = (group, procs[pid].cpu_ticks)
        for group, value in rss.items():
            self.peak_rss[group] = max(self.peak_rss[group], value)
        job = sum(rss[g] for g in JOB_GROUPS)
        self.peak_rss["total"] = max(self.peak_rss["total"], job)

    def run(self) -> None:
        while not self.stop_event.wait(SAMPLE_EVERY_S):
            self.sample()

    def cpu_seconds(self, since: dict[int, tuple[str, int]]) -> dict[str, float]:
        """CPU seconds per group since the `since` snapshot of cpu_ticks."""
        spent = dict.fromkeys(GROUPS, 0.0)
        for pid, (group, ticks) in self.cpu_ticks.items():
            spent[group] += (ticks - since.get(pid, (group, 0))[1]) / CLOCK_TICKS
        return spent


# ------------------------------------------------------------------------------ the run


@dataclass
class SolrWrite:
    batch_id: int
    written: int
    skipped: int
    seconds: float


@dataclass
class RunResult:
    measured_from: float
    landed_at: list[float]
    seen: dict[str, float]
    progress: dict[str, list[dict[str, Any]]]
    solr_writes: list[SolrWrite]
    peak_rss: dict[str, int]
    cpu_seconds: dict[str, float]
    complete: bool
    warmup_seconds: float
    probe_errors: int


def start_queries(
    session: Any,
    aggregation: model.Aggregation,
    work: Path,
    solr_url: str,
    trigger_s: float,
    writes: list[SolrWrite],
) -> list[Any]:
    """The job's two queries, started as jobs/stream.py starts them."""
    paths = archive.JobPaths(str(work / "data"))
    source = stream.source_of(aggregation)
    ingest = stream.ingest(session, aggregation, paths, source, trigger_s)

    def on_batch(batch_id: int, report: Any) -> None:
        writes.append(SolrWrite(batch_id, report.written, report.skipped, report.seconds))

    aggregate = stream.aggregate(
        session,
        aggregation,
        paths,
        lambda: solr_cells.SolrCellStore(solr_url),
        trigger_s,
        on_batch=on_batch,
    )
    return [ingest, aggregate]


def run_stream(
    session: Any,
    aggregation: model.Aggregation,
    work: Path,
    solr_url: str,
    generated: Generated,
    options: Options,
) -> RunResult:
    trigger_s = options.trigger_seconds or aggregation.trigger_interval.approx_seconds
    landing_dir = work / "landing"
    landing_dir.mkdir(parents=True, exist_ok=True)
    writes: list[SolrWrite] = []
    watcher = ProbeWatcher(solr_url, aggregation.finest, len(generated.files))
    solr_status = process.status(local_solr.PROCESS_NAME)
    sampler = ResourceSampler(solr_status.pid if solr_status else -1, spark_daemon_pids())
    queries = start_queries(session, aggregation, work, solr_url, trigger_s, writes)
    watcher.start()
    sampler.start()
    try:
        warm, rest = (
            generated.files[: options.warmup_files],
            generated.files[options.warmup_files :],
        )
        warm_started = time.time()
        Releaser(warm, landing_dir, [0.0] * len(warm)).run()
        warm_names = [probe_id(i) for i in range(len(warm))]
        warm_ok = _wait_all(watcher, warm_names, queries, options.timeout_s)
        warmup_seconds = time.time() - warm_started
        _check_queries(queries)
        sampler.sample()
        cpu_before = dict(sampler.cpu_ticks)
        releaser = Releaser(
            rest, landing_dir, release_offsets(rest, options.lines_per_file, options.rate)
        )
        releaser.start()
        wanted = [probe_id(i) for i in range(len(warm), len(generated.files))]
        complete = warm_ok and _wait_all(watcher, wanted, queries, options.timeout_s)
        time.sleep(trigger_s)  # let the progress of the last batches be reported
        sampler.sample()
    finally:
        watcher.stop_event.set()
        sampler.stop_event.set()
        stop_when_idle(queries, timeout_s=10.0)
        progress = {q.name: [json.loads(p.json) for p in q.recentProgress] for q in queries}
    return RunResult(
        measured_from=releaser.started_at,
        landed_at=releaser.landed_at,
        seen=dict(watcher.seen),
        progress=progress,
        solr_writes=writes,
        peak_rss=dict(sampler.peak_rss),
        cpu_seconds=sampler.cpu_seconds(cpu_before),
        complete=complete,
        warmup_seconds=warmup_seconds,
        probe_errors=watcher.errors,
    )


def spark_daemon_pids() -> list[int]:
    """The pids of this run's standalone master and workers (none in local mode)."""
    names = local_spark_cluster.process_names()
    return [running.pid for name in names if (running := process.status(name)) is not None]


def stop_when_idle(queries: list[Any], timeout_s: float) -> None:
    """Stop each query between batches if one ends soon: stopped inside foreachBatch, the
    aggregate query logs a java.lang.StackOverflowError (harmless, but alarming)."""
    deadline = time.time() + timeout_s
    for query in queries:
        while query.isActive and query.status["isTriggerActive"] and time.time() < deadline:
            time.sleep(0.05)
        query.stop()


def _wait_all(
    watcher: ProbeWatcher, wanted: list[str], queries: list[Any], timeout_s: float
) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        _check_queries(queries)
        if watcher.wait_for(wanted, 5.0):
            return True
    return False


def _check_queries(queries: list[Any]) -> None:
    for query in queries:
        if not query.isActive:
            raise RuntimeError(f"query {query.name} stopped: {query.exception()}")


# ------------------------------------------------------------------------------ the reference


@dataclass
class Reference:
    seconds: float
    lines: int
    cells: int
    total_events: float
    #: CPU seconds of this process (DuckDB's threads included): less sensitive to other load
    cpu_seconds: float

    @property
    def per_cpu_second(self) -> float:
        return self.lines / self.cpu_seconds if self.cpu_seconds else 0.0


def reference(
    files: Sequence[Path], aggregation: model.Aggregation, *, native: bool = False
) -> Reference:
    """The same cells by the DuckDB oracle, timed (line checks in Python + SQL); with
    `native`, DuckDB reads the files itself (`oracle.compute_native`, no Python per line)."""
    lines = [line for path in files for line in path.read_bytes().split(b"\n") if line]
    settings: dict[str, Any] = {
        "finest_granularity_s": int(aggregation.finest.granularity.approx_seconds),
        "session_timeout_s": int(aggregation.session_timeout.approx_seconds),
        "dimensions": {d.name: (d.field, d.scope) for d in aggregation.dimensions},
        "cuboids": [c.dimensions for c in aggregation.cuboids],
        "now_ms": int(time.time() * 1000),
    }
    started, cpu_started = time.perf_counter(), time.process_time()
    if native:
        result = oracle.compute_native(files, **settings)
    else:
        result = oracle.compute(lines, **settings)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    totals = sum(v["events"] for (cuboid, _, _), v in result.cells.items() if cuboid == "totals")
    return Reference(seconds, len(lines), len(result.cells), totals, cpu_seconds)


def solr_totals(solr_url: str, aggregation: model.Aggregation) -> tuple[float, int]:
    """Counted events over every totals cell, and how many cell documents there are."""
    level = aggregation.finest
    with solr.SolrClient(solr_url) as client:
        client.commit(level.collection)
        events = cell_reads.totals(client, level, 0, FAR_FUTURE_MS, ("events",))["events"]
        documents = cell_reads.count(client, level.collection, queries.aggregate_cells())
    return float(events or 0.0), documents


# ------------------------------------------------------------------------------ figures


@dataclass
class QueryFigures:
    name: str
    batches: int = 0
    rows: int = 0
    busy_s: float = 0.0
    wall_s: float = 0.0
    durations_s: list[float] = field(default_factory=list)
    #: batches run without input (watermark and timers advance): count and seconds
    no_data_batches: int = 0
    no_data_s: float = 0.0
    #: durationMs summed over every executed batch, with or without input
    phases_ms: Counter[str] = field(default_factory=Counter)
    state_rows: dict[str, int] = field(default_factory=dict)
    #: per state operator at the end: its RocksDB SST files' bytes (the state on disk)
    state_bytes: dict[str, int] = field(default_factory=dict)
    #: per state operator: task time updating state and committing it, summed over tasks
    state_ms: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def rows_per_busy_s(self) -> float:
        return self.rows / self.busy_s if self.busy_s else 0.0

    @property
    def rows_per_wall_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s else 0.0


def batch_start(progress: dict[str, Any]) -> float:
    stamp = progress["timestamp"].replace("Z", "+00:00")
    return dt.datetime.fromisoformat(stamp).timestamp()


def query_figures(name: str, progress: list[dict[str, Any]], since: float) -> QueryFigures:
    """The batches a query ran after the measured release began.

    A progress without `addBatch` is an idle trigger's report, not a batch.
    """
    ran = [p for p in progress if "addBatch" in p["durationMs"] and batch_start(p) >= since - 0.5]
    figures = QueryFigures(name.removeprefix(f"{NAME}-"))
    for p in ran:
        seconds = p["batchDuration"] / 1000
        figures.phases_ms.update(p["durationMs"])
        for op in p.get("stateOperators", []):
            spent = figures.state_ms.setdefault(op["operatorName"], Counter())
            spent.update(
                updates=op["allUpdatesTimeMs"],
                removals=op["allRemovalsTimeMs"],
                commit=op["commitTimeMs"],
            )
        if p["numInputRows"] == 0:
            figures.no_data_batches += 1
            figures.no_data_s += seconds
            continue
        figures.batches += 1
        figures.rows += p["numInputRows"]
        figures.busy_s += seconds
        figures.durations_s.append(seconds)
        figures.wall_s = batch_start(p) + seconds - since
    if ran:
        operators = ran[-1].get("stateOperators", [])
        figures.state_rows = {op["operatorName"]: op["numRowsTotal"] for op in operators}
        figures.state_bytes = {
            op["operatorName"]: int(op.get("customMetrics", {}).get("rocksdbSstFileSize", 0))
            for op in operators
        }
    return figures


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def freshness(run: RunResult, warmup_files: int) -> list[float]:
    """Seconds from a file landing to its probe cell being searchable, per measured file."""
    return [
        run.seen[probe_id(warmup_files + i)] - landed
        for i, landed in enumerate(run.landed_at)
        if probe_id(warmup_files + i) in run.seen
    ]


# ------------------------------------------------------------------------------ report


def mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


@dataclass
class Report:
    options: Options
    generated: Generated
    run: RunResult
    reference: Reference
    solr_events: float
    solr_cells: int
    trigger_s: float
    load_before: str
    load_after: str
    #: DuckDB reading the files itself: the engine's limit on this box
    native_reference: Reference

    def measured_lines(self) -> int:
        warm_files = min(self.options.warmup_files, len(self.generated.files))
        return self.generated.lines - warm_files * self.options.lines_per_file

    def end_to_end(self) -> tuple[float, float]:
        """Measured lines / seconds from the first measured landing to the last probe seen."""
        last_seen = max(self.run.seen.values(), default=self.run.measured_from)
        seconds = last_seen - self.run.measured_from
        return (self.measured_lines() / seconds if seconds > 0 else 0.0), seconds

    def per_cpu_second(self) -> float:
        job = sum(self.run.cpu_seconds[g] for g in JOB_GROUPS)
        return self.measured_lines() / job if job else 0.0

    def spark_mode(self) -> str:
        if not self.options.spark_cluster:
            return "local[2] (driver and tasks in one JVM)"
        return (
            f"standalone cluster ({len(process.NODE_HOSTS)} workers on "
            f"loopback, one executor of {local_spark_cluster.DEFAULT_WORKER_CORES} core and "
            f"{local_spark_cluster.DEFAULT_WORKER_MEMORY} each; the driver in this process)"
        )

    def markdown(self) -> str:
        o, g, run = self.options, self.generated, self.run
        ingest, aggregate = (
            query_figures(name, progress, run.measured_from)
            for name, progress in run.progress.items()
        )
        rate, seconds = self.end_to_end()
        fresh = freshness(run, o.warmup_files)
        p95 = percentile(fresh, 0.95)
        duck_rate = self.reference.lines / self.reference.seconds
        native = self.native_reference
        native_rate = native.lines / native.seconds
        pace = "all files at once (burst)" if o.rate is None else f"{o.rate:,.0f} events/s"
        writes = [w for w in run.solr_writes if w.written or w.skipped]
        solr_s = sum(w.seconds for w in writes)
        lines = [
            f"Mode: {'quick' if o.quick else 'full'}; {g.lines:,} lines ({g.traffic_lines:,} "
            f"traffic + {len(g.files)} probes) in {len(g.files)} files of {o.lines_per_file:,}; "
            f"released {pace} after {o.warmup_files} warm-up files; trigger {self.trigger_s:g} s; "
            f"maxFilesPerTrigger {o.max_files_per_trigger}; event-time span {o.span_hours:g} h; "
            f"traffic mix {dict(g.kinds.most_common())}; Spark {self.spark_mode()}; sessionizer "
            f"{o.spark_conf.get(jvm_sessionizer.CONF, jvm_sessionizer.JVM)}"
            + (f"; Spark settings {o.spark_conf}" if o.spark_conf else "")
            + ".",
            "",
            "| figure | value |",
            "|---|---|",
            f"| generate + write files (not in throughput) | {g.seconds:.1f} s "
            f"({g.lines / g.seconds:,.0f} lines/s) |",
            f"| warm-up ({o.warmup_files} files, first batches, Python workers) | "
            f"{run.warmup_seconds:.1f} s |",
            f"| **sustained end-to-end into Solr** (measured lines / first landing → last probe "
            f"visible) | **{rate:,.0f} events/s** ({self.measured_lines():,} lines in "
            f"{seconds:.1f} s) |",
            *(self._query_rows(q) for q in (ingest, aggregate)),
            f"| freshness p50 / p95 / max (file landed → probe cell searchable, "
            f"{len(fresh)} probes) | {percentile(fresh, 0.5):.1f} / **{p95:.1f}** / "
            f"{max(fresh, default=math.nan):.1f} s |",
            f"| Solr writes (aggregate, in foreachBatch) | {sum(w.written for w in writes):,} "
            f"documents in {len(writes)} batches, {solr_s:.1f} s "
            f"({_share(solr_s * 1000, aggregate.phases_ms['addBatch'])} of addBatch) |",
            f"| peak RSS: {' / '.join(JOB_GROUPS)} / sum | "
            f"{' / '.join(mib(run.peak_rss[g]) for g in JOB_GROUPS)} / "
            f"**{mib(run.peak_rss['total'])}** (Spark daemons "
            f"{mib(run.peak_rss['Spark daemons'])}, not in the sum) |",
            f"| peak RSS of this benchmark's own Python (the job's driver Python + probes) | "
            f"{mib(run.peak_rss['benchmark process'])} |",
            f"| CPU seconds while measured: {' / '.join(GROUPS)} | "
            f"{' / '.join(f'{run.cpu_seconds[g]:.0f}' for g in GROUPS)} |",
            f"| **events per CPU-second** of the job (driver, executors, workers, Solr; less "
            f"sensitive to other load than events/s) | **{self.per_cpu_second():,.0f}** "
            f"(≥ {TARGET_EVENTS_PER_S / CORES:,.0f} needed for the target on {CORES} cores) |",
            f"| `aggregate` state operators: task time updates / removals / commit "
            f"(summed over tasks), rows kept at the end (state on disk) | "
            f"{self._state_text(aggregate)} |",
            f"| DuckDB oracle, same lines, batch (Python line checks + SQL) | "
            f"{self.reference.seconds:.1f} s ({duck_rate:,.0f} events/s; "
            f"{self.reference.per_cpu_second:,.0f} events per CPU-s) |",
            f"| **ratio clickagg / DuckDB** (events/s) | **{rate / duck_rate:.2f}** |",
            f"| DuckDB reading the files itself, same SQL (`read_ndjson_objects`, checks in "
            f"SQL, no Python per line; looser checks, a speed reference only) | "
            f"{native.seconds:.1f} s ({native_rate:,.0f} events/s, "
            f"{native.per_cpu_second:,.0f} per CPU-s; {native.total_events:,.0f} "
            f"counted events, {native.cells:,} cells); clickagg / native DuckDB "
            f"**{rate / native_rate:.2f}** |",
            f"| check: counted events in Solr totals vs oracle | {self.solr_events:,.0f} vs "
            f"{self.reference.total_events:,.0f} "
            f"({'equal' if self.solr_events == self.reference.total_events else 'DIFFER'}); "
            f"{self.solr_cells:,} cell documents vs {self.reference.cells:,} oracle cells |",
            f"| load average (1/5/15 min) before → after | {self.load_before} → "
            f"{self.load_after} |",
            "",
            *self._phase_table(ingest, aggregate),
            "",
            f"Targets: ≥ {TARGET_EVENTS_PER_S:,} events/s sustained "
            f"{run_facts.verdict(rate >= TARGET_EVENTS_PER_S)} ({rate:,.0f}); p95 freshness ≤ "
            f"{TARGET_P95_FRESHNESS_S:g} s {run_facts.verdict(p95 <= TARGET_P95_FRESHNESS_S)} "
            f"({p95:.1f} s)."
            + ("" if run.complete else " **Incomplete: not every probe became visible in time.**"),
        ]
        return "\n".join(lines)

    @staticmethod
    def _query_rows(q: QueryFigures) -> str:
        return (
            f"| `{q.name}` query: {q.batches} batches, {q.rows:,} input rows | "
            f"{q.rows_per_wall_s:,.0f} rows/s of wall time, {q.rows_per_busy_s:,.0f} rows/s "
            f"busy; batch p50 / p95 / max {percentile(q.durations_s, 0.5):.1f} / "
            f"{percentile(q.durations_s, 0.95):.1f} / {max(q.durations_s, default=0):.1f} s; "
            f"{q.no_data_batches} batches without input, {q.no_data_s:.1f} s |"
        )

    @staticmethod
    def _state_text(q: QueryFigures) -> str:
        return "; ".join(
            f"{name}: {ms['updates'] / 1000:.1f} / {ms['removals'] / 1000:.1f} / "
            f"{ms['commit'] / 1000:.1f} s, {q.state_rows.get(name, 0):,} rows"
            + _bytes_per_row(q.state_bytes.get(name, 0), q.state_rows.get(name, 0))
            for name, ms in q.state_ms.items()
        )

    @staticmethod
    def _phase_table(*queries: QueryFigures) -> list[str]:
        phases = (
            "addBatch",
            "latestOffset",
            "queryPlanning",
            "walCommit",
            "commitOffsets",
            "getBatch",
        )
        rows = [
            "| durationMs (sum over measured batches) | " + " | ".join(phases) + " |",
            "|---|" + "---|" * len(phases),
        ]
        for q in queries:
            total = q.phases_ms["triggerExecution"]
            cells = [
                f"{q.phases_ms[p] / 1000:.1f} s ({_share(q.phases_ms[p], total)})" for p in phases
            ]
            rows.append(
                f"| `{q.name}` (triggerExecution {total / 1000:.1f} s) | "
                + " | ".join(cells)
                + " |"
            )
        return rows


def _bytes_per_row(sst_bytes: int, rows: int) -> str:
    """The state on disk per row kept (a visitor's, for the sessionizer), if reported."""
    if not sst_bytes or not rows:
        return ""
    return f" ({mib(sst_bytes)} of RocksDB SST files, {sst_bytes / rows:,.0f} B per row)"


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


SECTION = "## Streaming throughput and freshness"
DOCS_INTRO = f"""# Benchmarks

{SECTION}

`benchmarks/stream_throughput.py` measures the streaming job end to end on real engines:
its own 2-node SolrCloud 9.10.1 (free ports, one replica per shard), the job's `ingest` and
`aggregate` queries in one in-process local[2] SparkSession (with `--spark-cluster`: this
process as the driver of a standalone cluster of its own, a master and two workers on
127.0.0.2 and 127.0.0.3 with one executor of 1 core and 2 GB each) on a processing-time
trigger, and generated shop traffic with faults (duplicates, late and out-of-order lines,
bots, broken lines) over the 16 cuboids of `examples/shop-kpis.yaml`.

What it measures:

- **sustained events/s into Solr**: the lines released after the warm-up, divided by the
  time from the first of them landing to the last of them being searchable in Solr; and
  per query, input rows per second of wall time and of busy (batch) time, from
  `StreamingQueryProgress`;
- **per-batch durations** and their `durationMs` phases (`addBatch` is the work itself);
- **freshness**: the last line of every file is a probe event (a new visitor with its own
  campaign); freshness is the time from the file appearing in the landing dir to the probe's
  `campaign` cell answering a Solr query (soft commit every second included);
- **peak RSS and CPU** of the driver JVM, the executor JVMs (on the cluster), the Python
  workers and the Solr JVM, from /proc; and each state operator's bytes on disk per row
  kept (RocksDB's `rocksdbSstFileSize` over its rows, when the progress reports it: with
  changelog checkpointing only once a snapshot was uploaded, so not in short runs);
- **the reference**: the same lines through the DuckDB oracle of `tests/oracle.py` (line
  checks in Python, then SQL), as a batch; the ratio is clickagg's events/s over DuckDB's.
  A second row times DuckDB reading the files itself (`oracle.compute_native`: JSON parsed
  and checked in SQL, bots judged once per distinct user agent, then the same SQL): the
  engine's limit on this box, with looser line checks, so a speed reference only.
  The run also checks that Solr's counted events equal the oracle's.

Targets: ≥ 50,000 events/s sustained with p95 freshness ≤ 10 s.

Run it (a few minutes with `--quick`; `--burst` releases every file at once for the
maximum throughput, `--rate` paces the release, `--no-record` skips this file):

```sh
VENV=$(make -s print-venv)
PYTHONPATH=src PYSPARK_PYTHON=$VENV/bin/python $VENV/bin/python \\
    benchmarks/stream_throughput.py --quick
```

The machine is a shared, noisy 2-core VM; each run records its load average, and figures
from runs with other work on the box are lower bounds.
"""


def record(report_text: str, title: str, commit: str, info: dict[str, str]) -> None:
    """Add the run at the end of this benchmark's section of docs/benchmarks.md."""
    text = DOCS.read_text() if DOCS.exists() else DOCS_INTRO
    if SECTION not in text:
        text = text.rstrip("\n") + "\n\n" + DOCS_INTRO.split("\n", 2)[2]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine_line = "; ".join(f"{k} {v}" for k, v in info.items())
    run = f"### {stamp}: {title}\n\nCommit {commit}. Machine: {machine_line}.\n\n{report_text}\n\n"
    start = text.index(SECTION) + len(SECTION)
    following = text.find("\n## ", start)  # the next benchmark's section, if any
    end = len(text) if following < 0 else following + 1
    before = text[:end].rstrip("\n") + "\n\n"
    DOCS.write_text(before + run + text[end:].lstrip("\n") if following >= 0 else before + run)


# ------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(sys.argv[1:] if argv is None else argv)
    # A SIGTERM (timeout, kill) unwinds like Ctrl-C, so Solr and Spark are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # The code the run loads, even if the tree changes meanwhile.
    commit = run_facts.git_commit(("src", "examples"))
    work = Path(tempfile.mkdtemp(prefix="clickagg-bench-"))
    load_before = run_facts.load_average()
    try:
        report = benchmark(work, options, load_before)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report.markdown()
    print(text)
    if options.record:
        pace = "burst" if options.rate is None else f"paced at {options.rate:,.0f} events/s"
        where = "standalone cluster" if options.spark_cluster else "local[2]"
        title = (
            f"{'quick, ' if options.quick else ''}{report.generated.lines:,} events, {pace}, "
            f"{where}"
        )
        record(text, title, commit, run_facts.machine())
        print(f"\nappended to {DOCS.relative_to(ROOT)}", file=sys.stderr)


def benchmark(work: Path, options: Options, load_before: str) -> Report:
    with (
        solr_cloud(work / "run") as endpoints,
        spark_cluster(options.spark_cluster) as cluster,
    ):
        aggregation = aggregation_for(work, endpoints.base_url, options)
        with solr.SolrClient(endpoints.base_url) as client:
            solr_collections.ensure_level_collections(client, aggregation)
        _say(f"generating {options.events:,} events")
        generated = generate(work / "staging", options)
        _say(
            f"{generated.lines:,} lines in {len(generated.files)} files, "
            f"{generated.seconds:.1f} s; starting Spark"
        )
        conf = {
            "spark.sql.streaming.numRecentProgressUpdates": "100000",
            "spark.jars": str(local_sessionizer.jar()),
            **options.spark_conf,
        }
        session = spark_session(conf, cluster)
        try:
            trigger_s = options.trigger_seconds or aggregation.trigger_interval.approx_seconds
            run = run_stream(session, aggregation, work, endpoints.base_url, generated, options)
            load_after = run_facts.load_average()
        finally:
            session.stop()
        solr_events, solr_cells = solr_totals(endpoints.base_url, aggregation)
    if options.progress_json is not None:
        options.progress_json.write_text(
            json.dumps(
                {"progress": run.progress, "solr_writes": [w.__dict__ for w in run.solr_writes]}
            )
        )
    _say("streaming done; the DuckDB reference over the same lines")
    landed = [_landed(work / "landing", path) for path in generated.files]
    ref = reference(landed, aggregation)
    native = reference(landed, aggregation, native=True)
    return Report(
        options,
        generated,
        run,
        ref,
        solr_events,
        solr_cells,
        trigger_s,
        load_before,
        load_after,
        native,
    )


@contextlib.contextmanager
def spark_cluster(wanted: bool) -> Iterator[local_spark_cluster.SparkClusterEndpoints | None]:
    """A standalone cluster of our own in the run dir (free ports), stopped on exit; None
    when not `wanted` (local mode)."""
    if not wanted:
        yield None
        return
    master_port, web_port = process.free_ports(2)
    endpoints = local_spark_cluster.up(master_port, web_port)
    try:
        yield endpoints
    finally:
        local_spark_cluster.down()


def spark_session(
    conf: dict[str, str], cluster: local_spark_cluster.SparkClusterEndpoints | None
) -> Any:
    """local[2], or this process as the driver of `cluster`."""
    if cluster is None:
        return spark.local_session(NAME, conf=conf)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", process.LOOPBACK)
    builder = SparkSession.builder.appName(NAME)
    settings = {
        **spark.LOCAL_CONF,
        **spark.solr_trust_conf(),
        **local_spark_cluster.session_conf(cluster),
        # Executors start from the worker's environment: the same interpreter as ours.
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
        **conf,
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def _landed(landing_dir: Path, staged: Path) -> Path:
    moved = landing_dir / staged.name
    return moved if moved.exists() else staged


def _say(message: str) -> None:
    print(f"[bench] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
