"""How fast does the operator give an Aggregation its children, and how much memory does it
take? (issue 4 §6)

Targets: p95 ≤ 2 s from creating an Aggregation to all its children existing, and a peak
RSS of the operator process ≤ 150 MB. This script:

1. starts its own real stack in a temp CLICKAGG_RUN_DIR, on free ports: etcd +
   kube-apiserver with the Spark Operator's, the Solr Operator's and clickagg's CRDs, and a
   2-node SolrCloud with the configset;
2. baselines, with no operator:
   - the bare API server: the very manifests the operator would build for N Aggregations
     (2N children: a SparkApplication and a ScheduledSparkApplication each), server-side
     applied one after the other with the Python client;
   - Solr alone: N one-shard collections created with as many threads as the operator
     runs sync handlers in (`CLICKAGG_OPERATOR_WORKERS`, default 16);
3. runs the operator as `kopf run --standalone` in a subprocess (so its RSS and CPU can be
   read from /proc: VmRSS sampled every 0.2 s, VmHWM at the end) and
   - creates N small Aggregations at once (one level each: one real one-shard collection
     and two children each), then
   - M more paced at R per second (the latency of one Aggregation when nothing queues),
   measuring per Aggregation the time from its create call to the watch on
   SparkApplications and ScheduledSparkApplications having seen both its children;
4. prints a markdown report and appends it to docs/benchmarks.md under
   "## Operator latency and memory" (append only: the file has other sections).

Run: PYTHONPATH=src $VENV/bin/python benchmarks/operator_latency.py [-n 100] [--no-record]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import requests
import run_facts
import yaml
from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch

from clickagg.domain import spec, validation
from clickagg.local import kube as local_kube
from clickagg.local import process
from clickagg.local import solr as local_solr
from clickagg.operator import children, reconcile
from clickagg.operator import main as operator_main
from clickagg.store import client as solr
from clickagg.store import collections as solr_collections

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Operator latency and memory"
SHARED = Path(os.environ.get("CLICKAGG_SHARED") or ROOT.parent / "shared")
PEER_CRDS = SHARED / "crds" / "peers"
CHART_CRDS = ROOT / "charts" / "clickagg" / "crds"

TARGET_P95_S = 2.0
TARGET_RSS_MB = 150.0
# The operator's handler threads (main.DEFAULT_WORKERS unless the environment says otherwise).
KOPF_THREADS = int(os.environ.get(operator_main.WORKERS_ENV) or operator_main.DEFAULT_WORKERS)
RSS_SAMPLE_S = 0.2
WAIT_S = 600.0
AGGREGATION_API = (spec.API_GROUP, spec.API_VERSION)
AGGREGATION = children.Kind(spec.KIND, spec.PLURAL, spec.API_GROUP, spec.API_VERSION)
FINALIZER = operator_main.FINALIZER
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Options:
    count: int
    paced_count: int
    rate: float
    record: bool
    operator_log: Path | None


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=100, help="Aggregations at once")
    parser.add_argument("--paced-count", type=int, default=30, help="Aggregations paced")
    parser.add_argument("--rate", type=float, default=2.0, help="paced Aggregations per second")
    parser.add_argument("--no-record", action="store_true", help="do not append to the docs")
    parser.add_argument("--operator-log", type=Path, help="keep the operator's log here")
    args = parser.parse_args(argv)
    return Options(args.count, args.paced_count, args.rate, not args.no_record, args.operator_log)


# ---------------------------------------------------------------------- the Aggregations


def small_aggregation(namespace: str, name: str, prefix: str) -> dict[str, Any]:
    """examples/one-level.yaml: one one-shard collection and two children."""
    obj: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "one-level.yaml").read_text())
    obj["metadata"].update(name=name, namespace=namespace)
    obj["spec"]["source"]["files"]["path"] = f"/data/landing/{name}"
    obj["spec"]["solr"]["collectionPrefix"] = f"{prefix}-{name}"
    return obj


def expected_children(name: str) -> set[str]:
    return {children.stream_name(name), children.rollup_name(name, "15m")}


# ---------------------------------------------------------------------- measuring


class ChildWatch:
    """Watches both Spark kinds in a namespace, the first time each name was seen, and the
    Aggregations, the first time each had the operator's finalizer (`claimed`)."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str) -> None:
        self.seen: dict[str, float] = {}
        self.claimed: dict[str, float] = {}
        self._objects = k8s_client.CustomObjectsApi(api)
        self._namespace = namespace
        self._watches: list[k8s_watch.Watch] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ChildWatch:
        for kind in (*children.KINDS, AGGREGATION):
            listed = self._objects.list_namespaced_custom_object(
                kind.group, kind.version, self._namespace, kind.plural
            )
            version = cast(dict[str, Any], listed)["metadata"]["resourceVersion"]
            watch = k8s_watch.Watch()  # type: ignore[no-untyped-call]
            thread = threading.Thread(target=self._follow, args=(watch, kind, version), daemon=True)
            self._watches.append(watch)
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        for watch in self._watches:
            watch.stop()  # type: ignore[no-untyped-call]

    def _follow(self, watch: k8s_watch.Watch, kind: children.Kind, version: str) -> None:
        stream = watch.stream(  # type: ignore[no-untyped-call]
            self._objects.list_namespaced_custom_object,
            kind.group,
            kind.version,
            self._namespace,
            kind.plural,
            resource_version=version,
            timeout_seconds=int(WAIT_S),
        )
        # The connection breaks when the stack stops under a still-open watch: that ends it.
        with contextlib.suppress(Exception):
            for event in stream:
                metadata = event["object"]["metadata"]
                if kind is AGGREGATION:
                    if FINALIZER in (metadata.get("finalizers") or []):
                        with self._lock:
                            self.claimed.setdefault(metadata["name"], time.monotonic())
                elif event["type"] == "ADDED":
                    with self._lock:
                        self.seen.setdefault(metadata["name"], time.monotonic())

    def wait_all(self, names: Sequence[str], timeout: float = WAIT_S) -> None:
        wanted = set().union(*(expected_children(name) for name in names))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if wanted <= self.seen.keys():
                    return
            time.sleep(0.05)
        missing = sorted(wanted - self.seen.keys())
        raise TimeoutError(f"{len(missing)} children missing after {timeout:.0f}s: {missing[:5]}")

    def latencies(self, created: dict[str, float]) -> list[float]:
        """Per Aggregation: its create call → the later of its two children seen."""
        with self._lock:
            return sorted(self._done(name) - started for name, started in created.items())

    def split(self, created: dict[str, float]) -> tuple[list[float], list[float]]:
        """Per Aggregation: create call → finalizer seen, and finalizer → children seen
        (kopf used to add the finalizer in a cycle of its own before the first handler;
        a pass now adds it just before the children)."""
        with self._lock:
            claimed = {name: self.claimed.get(name) for name in created}
            before = [at - created[name] for name, at in claimed.items() if at is not None]
            after = [self._done(name) - at for name, at in claimed.items() if at is not None]
        return sorted(before), sorted(after)

    def _done(self, name: str) -> float:
        return max(self.seen[child] for child in expected_children(name))


@dataclass
class RssSampler:
    """Samples a process's VmRSS; VmHWM (the kernel's own peak) is read at the end."""

    pid: int
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_S):
            with contextlib.suppress(OSError):
                self.samples.append(status_kib(self.pid, "VmRSS") * 1024)

    def stop(self) -> None:
        self._stop.set()


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, timeout: float = 120.0) -> float:
    """Wait until the process has used < 0.1 CPU seconds over 2 s; the seconds waited."""
    started = time.monotonic()
    window: list[float] = [cpu_seconds(pid)]
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        window = [*window, cpu_seconds(pid)][-5:]
        if len(window) == 5 and window[-1] - window[0] < 0.1:
            break
    return time.monotonic() - started


def wait_collections(solr_url: str, namespace: str, count: int, timeout: float = WAIT_S) -> None:
    """Wait until the burst's collections exist: the operator creates them after all the
    children, so the paced phase must not start while Solr still works on them."""
    wanted = {f"{namespace}-agg-{index:03d}-15m" for index in range(count)}
    deadline = time.monotonic() + timeout
    with solr.SolrClient(solr_url) as client:
        while not wanted <= set(client.list_collections()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {namespace} collections not all created in {timeout} s")
            time.sleep(0.5)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, int(-(-share * len(values) // 1)))
    return values[rank - 1]


@dataclass(frozen=True)
class Figures:
    total_s: float
    p50_s: float
    p95_s: float
    max_s: float

    @classmethod
    def of(cls, total_s: float, latencies: Sequence[float]) -> Figures:
        ordered = sorted(latencies)
        return cls(total_s, statistics.median(ordered), percentile(ordered, 0.95), ordered[-1])

    def text(self) -> str:
        return (
            f"{self.p50_s:.2f} / **{self.p95_s:.2f}** / {self.max_s:.2f} s "
            f"(all done after {self.total_s:.1f} s)"
        )


# ---------------------------------------------------------------------- the stack


@dataclass(frozen=True)
class Stack:
    kubeconfig: Path
    solr_url: str


@contextlib.contextmanager
def local_stack(work: Path) -> Iterator[Stack]:
    os.environ["CLICKAGG_RUN_DIR"] = str(work / "run")
    ports: list[int] = []
    while len(ports) < 5:
        port = process.free_port()
        if port not in ports:
            ports.append(port)
    try:
        kube = local_kube.up(etcd_port=ports[0], apiserver_port=ports[1])
        crds = local_kube.crd_files([PEER_CRDS]) + local_kube.crd_files([CHART_CRDS])
        local_kube.apply_crds(kube.kubeconfig, crds)
        endpoints = local_solr.up(zk_port=ports[2], ports=ports[3:5])
        with solr.SolrClient(endpoints.base_url) as client:
            client.upload_configset(solr_collections.CONFIGSET_NAME, solr_collections.CONFIGSET_DIR)
        yield Stack(kube.kubeconfig, endpoints.base_url)
    finally:
        local_solr.down()
        local_kube.down()


@contextlib.contextmanager
def operator_process(stack: Stack, namespaces: Sequence[str], log: Path) -> Iterator[int]:
    """`kopf run` in its own process group; yields its pid once its liveness probe answers."""
    port = process.free_port()
    argv = [
        sys.executable,
        "-m",
        "kopf",
        "run",
        "--standalone",
        "-m",
        "clickagg.operator.main",
        "--liveness",
        f"http://127.0.0.1:{port}/healthz",
    ]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    env = {
        **os.environ,
        "KUBECONFIG": str(stack.kubeconfig),
        "PYTHONPATH": str(ROOT / "src"),
        reconcile.SOLR_URL_OVERRIDE_ENV: stack.solr_url,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kopf exited with {proc.returncode}; see {log}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"kopf not live after 60 s; see {log}")
            time.sleep(0.1)
        yield proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------------- phases


def baseline_api(api: k8s_client.ApiClient, namespace: str, count: int) -> Figures:
    """The operator's own manifests for `count` Aggregations, applied with no operator."""
    objects = k8s_client.CustomObjectsApi(api)
    settings = children.JobSettings(reconcile.DEFAULT_SERVICE_ACCOUNT, reconcile.DEFAULT_DATA_ROOT)
    manifests = []
    for index in range(count):
        name = f"base-{index:03d}"
        aggregation = validation.validate(small_aggregation(namespace, name, "base"))
        owner = children.Owner(name, namespace, f"00000000-0000-0000-0000-{index:012d}")
        manifests.append((name, children.desired(aggregation, owner, settings)))
    created: dict[str, float] = {}
    with ChildWatch(api, namespace) as watch:
        started = time.monotonic()
        for name, wanted in manifests:
            created[name] = time.monotonic()
            for manifest in wanted:
                kind = next(k for k in children.KINDS if k.kind == manifest["kind"])
                objects.patch_namespaced_custom_object(
                    kind.group,
                    kind.version,
                    namespace,
                    kind.plural,
                    manifest["metadata"]["name"],
                    cast(dict[str, Any], manifest),
                    field_manager=children.MANAGER,
                    force=True,
                    _content_type="application/apply-patch+yaml",
                )
        watch.wait_all(list(created))
        total = time.monotonic() - started
        return Figures.of(total, watch.latencies(created))


def baseline_solr(solr_url: str, count: int) -> Figures:
    """`count` one-shard collections, created by KOPF_THREADS threads, then deleted."""
    names = [f"bench-solr-{index:03d}" for index in range(count)]
    latencies: list[float] = []

    def create(name: str) -> None:
        with solr.SolrClient(solr_url) as client:
            began = time.monotonic()
            client.create_collection(name, solr_collections.CONFIGSET_NAME, 1, 1)
            latencies.append(time.monotonic() - began)

    def delete(name: str) -> None:
        with solr.SolrClient(solr_url) as client:
            client.delete_collection(name)

    started = time.monotonic()
    with ThreadPoolExecutor(KOPF_THREADS) as pool:
        list(pool.map(create, names))
    total = time.monotonic() - started
    with ThreadPoolExecutor(KOPF_THREADS) as pool:
        list(pool.map(delete, names))
    return Figures.of(total, latencies)


@dataclass(frozen=True)
class Split:
    """Where a phase's latency went: the create calls, then per Aggregation the time to the
    operator's finalizer on it and from there to its children."""

    creates_s: float  # the last create call returned after
    to_finalizer: Sequence[float]
    finalizer_to_children: Sequence[float]

    def text(self) -> str:
        def p50_p95(values: Sequence[float]) -> str:
            if not values:
                return "none seen"
            return f"{statistics.median(values):.2f} / {percentile(values, 0.95):.2f} s"

        return (
            f"create → finalizer {p50_p95(self.to_finalizer)}; finalizer → children "
            f"{p50_p95(self.finalizer_to_children)}; the {len(self.to_finalizer)} create calls "
            f"returned after {self.creates_s:.1f} s"
        )


def operator_phase(
    api: k8s_client.ApiClient, namespace: str, count: int, rate: float | None
) -> tuple[Figures, Split]:
    """Create `count` Aggregations (at once, or `rate` per second); latency to children."""
    objects = k8s_client.CustomObjectsApi(api)
    bodies = [small_aggregation(namespace, f"agg-{index:03d}", namespace) for index in range(count)]
    created: dict[str, float] = {}
    with ChildWatch(api, namespace) as watch:
        started = time.monotonic()
        for index, body in enumerate(bodies):
            if rate is not None:
                pause = started + index / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            created[body["metadata"]["name"]] = time.monotonic()
            objects.create_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, body)
        creates = time.monotonic() - started
        watch.wait_all(list(created))
        total = time.monotonic() - started
        time.sleep(0.5)  # the finalizer's watch event may come after the children's
        split = Split(creates, *watch.split(created))
        return Figures.of(total, watch.latencies(created)), split


# ---------------------------------------------------------------------- report


def mb(byte_count: float) -> str:
    return f"{byte_count / 1e6:,.0f} MB"


INTRO = f"""
{HEADING}

`benchmarks/operator_latency.py` measures the operator on its own real stack (etcd +
kube-apiserver 1.36 with the real Spark Operator and Solr Operator CRDs, a 2-node SolrCloud
9.10.1), with the operator as a `kopf run --standalone` subprocess (so its memory is its
own, read from /proc). Each Aggregation is small and valid, with one level: one real
one-shard collection and two children (the stream SparkApplication and the retention-only
ScheduledSparkApplication). Latency is per Aggregation, from its create call to a watch
having seen both its children. N are created at once (queueing included), then M paced
(one Aggregation's latency when nothing queues). Baselines from the same run: the bare API
server applying the operator's own manifests for N Aggregations with no operator, and Solr
alone creating N one-shard collections with as many threads as the operator's handler pool
has (`CLICKAGG_OPERATOR_WORKERS`, default 16).

Targets: p95 ≤ 2 s from create to all children; operator peak RSS ≤ 150 MB.

```sh
PYTHONPATH=src $(make -s print-venv)/bin/python benchmarks/operator_latency.py [-n 100]
```
"""


# ---------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    commit = run_facts.git_commit(("src",))
    facts = "; ".join(f"{key} {value}" for key, value in run_facts.machine().items())
    load_before = run_facts.load_average()
    with tempfile.TemporaryDirectory(prefix="clickagg-operator-bench-") as temp:
        work = Path(temp)
        with local_stack(work) as stack, local_kube.api_client(stack.kubeconfig) as api:
            for namespace in ("bench-baseline", "bench-burst", "bench-paced"):
                local_kube.create_namespace(stack.kubeconfig, namespace)
            print(f"==> baseline: bare API server, {options.count} Aggregations' children")
            bare = baseline_api(api, "bench-baseline", options.count)
            print(f"==> baseline: Solr alone, {options.count} collections")
            solr_only = baseline_solr(stack.solr_url, options.count)
            log = work / "operator.log"
            with operator_process(stack, ["bench-burst", "bench-paced"], log) as pid:
                sampler = RssSampler(pid)
                sampler.start()
                rss_start = status_kib(pid, "VmRSS") * 1024
                cpu_start = cpu_seconds(pid)
                print(f"==> operator (pid {pid}): {options.count} Aggregations at once")
                burst, burst_split = operator_phase(api, "bench-burst", options.count, None)
                burst_ended = time.monotonic()
                wait_collections(stack.solr_url, "bench-burst", options.count)
                wait_idle(pid)  # the burst's follow-up passes (final status, stream state)
                settled = time.monotonic() - burst_ended
                print(f"==> operator: {options.paced_count} paced at {options.rate}/s")
                paced, paced_split = operator_phase(
                    api, "bench-paced", options.paced_count, options.rate
                )
                time.sleep(2)
                sampler.stop()
                peak = status_kib(pid, "VmHWM") * 1024
                rss_end = status_kib(pid, "VmRSS") * 1024
                cpu = cpu_seconds(pid) - cpu_start
            tracebacks = log.read_text(errors="replace").count("Traceback")
            if options.operator_log is not None:
                options.operator_log.write_bytes(log.read_bytes())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ratio_total = burst.total_s / bare.total_s
    rows = [
        (f"operator, {options.count} at once: create → children, p50 / p95 / max", burst.text()),
        ("the burst, per Aggregation: p50 / p95", burst_split.text()),
        ("the paced, per Aggregation: p50 / p95", paced_split.text()),
        (
            "operator done with the burst (its collections created, then idle)",
            f"{settled:.1f} s later",
        ),
        (
            f"operator, then {options.paced_count} paced at {options.rate:g}/s: p50 / p95 / max",
            paced.text(),
        ),
        (
            f"baseline: bare API server, the same {2 * options.count} children applied directly "
            "(one client, sequential): per Aggregation p50 / p95 / max",
            bare.text(),
        ),
        (
            f"baseline: Solr alone, {options.count} one-shard collections, {KOPF_THREADS} "
            "threads: per collection p50 / p95 / max",
            solr_only.text(),
        ),
        (
            "**ratio operator / bare API server**, time until all children exist",
            f"**{ratio_total:.0f}×** ({burst.total_s:.1f} s / {bare.total_s:.2f} s)",
        ),
        (
            "operator RSS: after start / peak (VmHWM) / at the end",
            f"{mb(rss_start)} / **{mb(peak)}** / {mb(rss_end)} "
            f"({max(sampler.samples, default=0) / 2**20:.0f} MiB highest sample)",
        ),
        ("operator CPU seconds over both phases", f"{cpu:.1f} s"),
        ("Tracebacks in the operator's log", str(tracebacks)),
        ("load average (1/5/15 min) before → after", f"{load_before} → {run_facts.load_average()}"),
    ]
    table = "| figure | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    targets = (
        f"Targets: p95 ≤ {TARGET_P95_S:g} s "
        f"{run_facts.verdict(burst.p95_s <= TARGET_P95_S)} at once "
        f"({burst.p95_s:.2f} s), {run_facts.verdict(paced.p95_s <= TARGET_P95_S)} paced "
        f"({paced.p95_s:.2f} s); peak RSS ≤ {TARGET_RSS_MB:g} MB "
        f"{run_facts.verdict(peak / 1e6 <= TARGET_RSS_MB)} ({mb(peak)})."
    )
    section = (
        f"\n### {stamp}: operator latency, {options.count} Aggregations at once, "
        f"{options.paced_count} paced\n\nCommit {commit}. Machine: {facts}.\n\n"
        f"{table}\n{targets}\n"
    )
    print(section)
    if options.record:
        run_facts.append_section(DOCS, HEADING, INTRO, section)
        print(f"appended to {DOCS}")


if __name__ == "__main__":
    main()
