"""How fast does the KPI service answer, alone and under 50 concurrent clients? (issue 9 §4)

Goal: p99 ≤ 50 ms for time series and top-N. This script:

1. starts its own 2-node SolrCloud (temp CLICKAGG_RUN_DIR, free ports) and fills the three
   levels of `examples/shop-kpis.yaml` with 30 days of cells in the demo shop's shape:
   the 15m level with `cell_fill`'s cells, and 1h and 1d summed from them here by the
   rollup job's rules;
2. runs `clickagg serve` as its own process on loopback;
3. per endpoint, one client: N requests in a row, p50 and p99 of the wall time; baseline:
   the same store read (`SolrKpiStore`, what the endpoint asks Solr) in this process, so
   the ratio is the service's own cost over Solr's;
4. load: 50 client threads in this (second) process for a bounded time, the endpoints in
   turn: throughput, error rate, p50 and p99;
5. prints a markdown report and appends it to docs/benchmarks.md under
   "## KPI service latency" (append only).

Run: PYTHONPATH=src $VENV/bin/python benchmarks/service_latency.py [--days 30] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cell_fill
import requests
import run_facts
import yaml

from clickagg.domain import buckets, cells, durations, kpis, model, questions
from clickagg.local import process
from clickagg.local import solr as local_solr
from clickagg.store import client as solr
from clickagg.store import collections, solr_kpis

SECTION = "## KPI service latency"
GOAL_MS = 50.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200, help="per endpoint, one client")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--no-record", action="store_true")
    options = parser.parse_args()
    load_before = run_facts.load_average()
    with tempfile.TemporaryDirectory(prefix="clickagg-bench-") as run_dir:
        os.environ["CLICKAGG_RUN_DIR"] = run_dir
        zk, *nodes = (process.free_port() for _ in range(3))
        endpoints = local_solr.up(zk_port=zk, ports=list(nodes))
        try:
            report = measure(endpoints.base_url, Path(run_dir), options)
        finally:
            local_solr.down()
    report = report.replace("{load}", f"{load_before} → {run_facts.load_average()}")
    print(report)
    if not options.no_record:
        record(report)


def measure(solr_url: str, run_dir: Path, options: argparse.Namespace) -> str:
    aggregation = cell_fill.shop(solr_url)
    now_ms = int(time.time() * 1000)
    with solr.SolrClient(solr_url) as client:
        collections.ensure_level_collections(client, aggregation)
        started = time.monotonic()
        documents = fill(client, aggregation, now_ms, options.days)
        fill_s = time.monotonic() - started
        spec = run_dir / "shop.yaml"
        spec.write_text(yaml.safe_dump(manifest(aggregation)))
        port = process.free_port()
        service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clickagg",
                "serve",
                str(spec),
                "--solr-url",
                solr_url,
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url)
            rows = per_endpoint(url, client, aggregation, options.requests)
            load = under_load(url, aggregation, options.clients, options.load_seconds)
        finally:
            service.terminate()
            service.wait(timeout=30)
    return render(aggregation, options, documents, fill_s, rows, load)


def manifest(aggregation: model.Aggregation) -> dict[str, Any]:
    return {
        "apiVersion": "clickagg.io/v1alpha1",
        "kind": "Aggregation",
        "metadata": {"name": aggregation.name},
        "spec": aggregation.spec.model_dump(by_alias=True, exclude_none=True),
    }


def fill(client: solr.SolrClient, aggregation: model.Aggregation, now_ms: int, days: int) -> int:
    """Cells of every level: 15m from `cell_fill`, 1h and 1d summed from them here by the
    rollup job's rules; documents written."""
    finest, hour, day = aggregation.levels
    start = buckets.floor(now_ms - days * 86_400_000, durations.parse("1d"))
    end = buckets.floor(now_ms, finest.granularity) + cell_fill.Q_MS
    coarser: dict[str, dict[tuple[Any, ...], dict[str, float]]] = {"1h": {}, "1d": {}}
    visitor_ids: dict[str, dict[int, Any]] = {"1h": {}, "1d": {}}

    def summed_on_the_way() -> Iterator[cell_fill.Bucket]:
        for bucket in cell_fill.buckets_of(start, end):
            for cell in bucket.cells:
                for level in (hour, day):
                    coarse = buckets.floor(bucket.bucket_ms, level.granularity)
                    key = (coarse, cell.cuboid.dimensions, cell.values)
                    summed = coarser[level.name].setdefault(key, defaultdict(float))
                    for name, amount in cell.deltas.items():
                        summed[name] += amount
                    if not cell.cuboid.dimensions:
                        visitor_ids[level.name].setdefault(coarse, []).extend(bucket.visitors)
            yield bucket

    written = cell_fill.fill_level(client, finest, summed_on_the_way())
    for level in (hour, day):
        rolled = [
            cells.CellDelta(
                model.Cuboid(dims),
                coarse,
                values,
                dict(state),
                cell_fill.hll(visitor_ids[level.name][coarse]) if not dims else None,
            )
            for (coarse, dims, values), state in coarser[level.name].items()
        ]
        written += cell_fill.replace(client, level, rolled)
        client.commit(level.collection)
    return written


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("the service did not come up")


Endpoint = tuple[str, str, dict[str, Any]]  # label, path, params


def endpoints(aggregation: model.Aggregation) -> list[Endpoint]:
    name = aggregation.name
    return [
        (
            "series, 1 day (15m), 2 KPIs",
            f"/api/{name}/series",
            {"kpi": ["visits", "conversion_rate"], "from": "now-1d", "to": "now"},
        ),
        (
            "series, 1 day, unique visitors (sketches)",
            f"/api/{name}/series",
            {"kpi": "unique_visitors", "from": "now-1d", "to": "now"},
        ),
        (
            "series, 30 days (1h), filter channel",
            f"/api/{name}/series",
            {
                "kpi": "click_through_rate",
                "from": "now-30d",
                "to": "now",
                "filter": "channel:channel-1",
            },
        ),
        (
            "top-10 offers by CTR, last 15 min",
            f"/api/{name}/breakdown",
            {"dimension": "offer", "kpi": "click_through_rate", "from": "now-15m", "to": "now"},
        ),
        (
            "top-10 offers by CTR, last 7 days",
            f"/api/{name}/breakdown",
            {"dimension": "offer", "kpi": "click_through_rate", "from": "now-7d", "to": "now"},
        ),
        (
            "steering offers by CTR, last hour",
            f"/api/{name}/steering",
            {"dimension": "offer", "kpi": "click_through_rate", "from": "now-1h", "to": "now"},
        ),
        ("health (asks Solr)", "/healthz", {}),
    ]


def store_read(
    store: solr_kpis.SolrKpiStore,
    aggregation: model.Aggregation,
    path: str,
    params: dict[str, Any],
) -> Callable[[], object]:
    """The read an endpoint asks of Solr, called directly: the baseline."""
    if path == "/healthz":
        return store.healthy
    now_ms = int(time.time() * 1000)
    asked = questions.time_range(params["from"], params["to"], now_ms)
    names = [params["kpi"]] if isinstance(params["kpi"], str) else params["kpi"]
    fields = kpis.required_state(names)
    filters = questions.filters(aggregation, [params["filter"]] if "filter" in params else [])
    levels = {lvl.name for lvl in aggregation.levels}
    choice = questions.level_for(
        aggregation,
        asked,
        now_ms,
        asked=None,
        with_documents=levels,
        max_buckets=questions.MAX_SERIES_BUCKETS
        if "series" in path
        else questions.MAX_BREAKDOWN_BUCKETS,
    )
    if path.endswith("/series"):
        cuboid = questions.cuboid_for(aggregation, [f.dimension for f in filters], "filter")
        return lambda: store.series(choice.level, cuboid.cuboid, filters, choice.span, fields)
    cuboid = questions.cuboid_for(aggregation, [params["dimension"]], "dimension")
    if path.endswith("/breakdown"):
        return lambda: store.breakdown(
            choice.level, cuboid.cuboid, params["dimension"], filters, choice.span, fields
        )
    previous = choice.span.previous()
    return lambda: (
        store.breakdown(choice.level, cuboid.cuboid, params["dimension"], (), choice.span, fields),
        store.breakdown(choice.level, cuboid.cuboid, params["dimension"], (), previous, fields),
        store.progress(aggregation.finest),
    )


def timed(call: Callable[[], object], count: int) -> list[float]:
    call()  # warm: connections, caches
    took = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    return took


def per_endpoint(
    url: str, client: solr.SolrClient, aggregation: model.Aggregation, count: int
) -> list[tuple[str, list[float], list[float]]]:
    store = solr_kpis.SolrKpiStore(client)
    session = requests.Session()
    rows = []
    for label, path, params in endpoints(aggregation):

        def call(path: str = path, params: dict[str, Any] = params) -> object:
            response = session.get(f"{url}{path}", params=params, timeout=30)
            response.raise_for_status()
            return response.content

        rows.append(
            (label, timed(call, count), timed(store_read(store, aggregation, path, params), count))
        )
    return rows


def under_load(
    url: str, aggregation: model.Aggregation, clients: int, seconds: float
) -> dict[str, Any]:
    targets = endpoints(aggregation)[:-1]
    took: list[float] = []
    failures: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        session = requests.Session()
        turn = index
        while time.monotonic() < stop_at:
            _, path, params = targets[turn % len(targets)]
            turn += 1
            started = time.perf_counter()
            try:
                status = session.get(f"{url}{path}", params=params, timeout=30).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__  # type: ignore[assignment]
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                took.append(elapsed)
                if status != 200:
                    failures[str(status)] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.monotonic() - started
    return {"requests": len(took), "wall": wall, "took": took, "failures": dict(failures)}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def render(
    aggregation: model.Aggregation,
    options: argparse.Namespace,
    documents: int,
    fill_s: float,
    rows: list[tuple[str, list[float], list[float]]],
    load: dict[str, Any],
) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts = run_facts.machine()
    commit = run_facts.git_commit(["src/clickagg/service", "src/clickagg/store"])
    lines = [
        f"### {stamp}: KPI service, {options.days} days of cells, {options.clients} clients",
        "",
        f"Commit {commit}. Machine: cpu {facts['cpu']}; memory {facts['memory']}; "
        f"python {facts['python']}; java {facts['java']}. Load average (1/5/15 min) "
        "before → after: {load}.",
        "",
        f"{documents:,} cells in 15m, 1h and 1d (written in {fill_s:.0f} s). The service runs "
        "as its own process; the client is this script. Baseline: the same Solr reads through "
        f"`SolrKpiStore` in this process. {options.requests} requests per endpoint, one after "
        "the other.",
        "",
        "| endpoint | p50 | p99 | baseline p50 / p99 (Solr reads alone) | ratio p50 |",
        "|---|---|---|---|---|",
    ]
    met = True
    for label, service, baseline in rows:
        p50, p99 = statistics.median(service), pct(service, 0.99)
        b50, b99 = statistics.median(baseline), pct(baseline, 0.99)
        if label.startswith(("series", "top-10")):
            met = met and p99 <= GOAL_MS
        lines.append(
            f"| {label} | {p50:.1f} ms | **{p99:.1f} ms** | {b50:.1f} / {b99:.1f} ms | "
            f"{p50 / b50:.1f}× |"
        )
    took, wall = load["took"], load["wall"]
    errors_total = sum(load["failures"].values())
    lines += [
        "",
        f"Load: {options.clients} concurrent clients for {options.load_seconds:.0f} s, the six "
        f"API endpoints in turn: {load['requests']:,} requests, "
        f"**{load['requests'] / wall:.0f} requests/s**, p50 {statistics.median(took):.0f} ms, "
        f"p99 {pct(took, 0.99):.0f} ms, errors {errors_total} "
        f"({100 * errors_total / max(load['requests'], 1):.2f} %)"
        + (f": {load['failures']}" if errors_total else "")
        + ".",
        "",
        f"Goal p99 ≤ {GOAL_MS:.0f} ms for time series and top-N, one client: "
        f"{run_facts.verdict(met)}.",
    ]
    return "\n".join(lines) + "\n"


def record(report: str) -> None:
    path = run_facts.ROOT / "docs" / "benchmarks.md"
    text = path.read_text()
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\nScript: `benchmarks/service_latency.py`.\n"
    path.write_text(text.rstrip("\n") + "\n\n" + report)


if __name__ == "__main__":
    main()
