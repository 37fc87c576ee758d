"""How fast does the KPI service answer, alone and under 50 concurrent clients? (issue 9 §4)

Goal: p99 ≤ 50 ms for time series and top-N. This script:

1. starts its own 2-node SolrCloud (temp CLICKAGG_RUN_DIR, free ports) and fills the three
   levels of `examples/shop-kpis.yaml` with 30 days of cells in the demo shop's shape:
   the 15m level with the cells below, and 1h and 1d summed from them here by the rollup
   job's rules (the job itself needs ~40 min for 30 days on 2 cores). Cells per 15m bucket:
   totals (with a sketch of 300 visitors), 8 channels, 10 campaigns, 20 offers, 20 contents,
   5 devices, 20 offers x 5 devices, 8 channels x 10 campaigns; counts are random (seeded);
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
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import run_facts
import yaml
from datasketches import hll_sketch

from clickagg.domain import buckets, cells, durations, kpis, model, questions, sketches, validation
from clickagg.local import process
from clickagg.local import solr as local_solr
from clickagg.store import cell_writes, collections, solr_kpis
from clickagg.store import client as solr

SECTION = "## KPI service latency"
Q_MS = 900_000
SHAPE = {"channel": 8, "campaign": 10, "offer": 20, "content": 20, "device_class": 5}
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
    aggregation = shop(solr_url)
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


def shop(solr_url: str) -> model.Aggregation:
    document = yaml.safe_load((run_facts.ROOT / "examples" / "shop-kpis.yaml").read_text())
    document["metadata"]["name"] = "bench-shop"
    document["spec"]["solr"] = {"url": solr_url, "shards": 2, "replicationFactor": 1}
    return validation.validate(document)


def manifest(aggregation: model.Aggregation) -> dict[str, Any]:
    return {
        "apiVersion": "clickagg.io/v1alpha1",
        "kind": "Aggregation",
        "metadata": {"name": aggregation.name},
        "spec": aggregation.spec.model_dump(by_alias=True, exclude_none=True),
    }


def cell_keys() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(cuboid dimensions, values) of every cell of one 15m bucket."""
    keys: list[tuple[tuple[str, ...], tuple[str, ...]]] = [((), ())]
    for name, count in SHAPE.items():
        keys += [((name,), (f"{name}-{i}",)) for i in range(count)]
    keys += [
        (("offer", "device_class"), (f"offer-{o}", f"device_class-{d}"))
        for o in range(SHAPE["offer"])
        for d in range(SHAPE["device_class"])
    ]
    keys += [
        (("channel", "campaign"), (f"channel-{c}", f"campaign-{k}"))
        for c in range(SHAPE["channel"])
        for k in range(SHAPE["campaign"])
    ]
    return keys


def fill(client: solr.SolrClient, aggregation: model.Aggregation, now_ms: int, days: int) -> int:
    """Cells of every level, written with the cell writer's replace path; documents."""
    rng = random.Random(42)
    finest, hour, day = aggregation.levels
    start = buckets.floor(now_ms - days * 86_400_000, durations.parse("1d"))
    keys = cell_keys()
    coarser: dict[str, dict[tuple[Any, ...], dict[str, float]]] = {"1h": {}, "1d": {}}
    visitor_ids: dict[str, dict[int, Any]] = {"1h": {}, "1d": {}}
    written = 0
    batch: list[cells.CellDelta] = []
    for bucket in range(start, buckets.floor(now_ms, finest.granularity) + Q_MS, Q_MS):
        visitors = [f"v{rng.randrange(200_000)}" for _ in range(300)]
        for dims, values in keys:
            state = traffic_state(rng)
            sketch = hll(visitors) if not dims else None
            batch.append(cells.CellDelta(model.Cuboid(dims), bucket, values, state, sketch))
            for level in (hour, day):
                coarse = buckets.floor(bucket, level.granularity)
                summed = coarser[level.name].setdefault((coarse, dims, values), defaultdict(float))
                for name, amount in state.items():
                    summed[name] += amount
                if not dims:
                    visitor_ids[level.name].setdefault(coarse, []).extend(visitors)
        if len(batch) >= 20_000:
            written += replace(client, finest, batch)
            batch = []
    written += replace(client, finest, batch)
    for level in (hour, day):
        rolled = [
            cells.CellDelta(
                model.Cuboid(dims),
                coarse,
                values,
                dict(state),
                hll(visitor_ids[level.name][coarse]) if not dims else None,
            )
            for (coarse, dims, values), state in coarser[level.name].items()
        ]
        written += replace(client, level, rolled)
    for level in aggregation.levels:
        client.commit(level.collection)
    return written


def replace(client: solr.SolrClient, level: model.Level, batch: list[cells.CellDelta]) -> int:
    """The batch's cells as the whole state of the buckets they are in."""
    if not batch:
        return 0
    first = min(cell.bucket_ms for cell in batch)
    last = max(cell.bucket_ms for cell in batch)
    return cell_writes.replace_range(
        client, level, batch, {}, writer="bench", start_ms=first, end_ms=last + 1
    )


def traffic_state(rng: random.Random) -> dict[str, float]:
    visits = rng.randrange(5, 60)
    closed = max(visits - rng.randrange(0, 5), 0)
    impressions = rng.randrange(50, 400)
    orders = rng.randrange(0, 4)
    return {
        "events": visits * 6,
        "page_views": visits * 4,
        "visits": visits,
        "new_visits": visits // 3,
        "closed_visits": closed,
        "bounces": closed // 3,
        "engaged_visits": closed // 2,
        "visit_duration_seconds_sum": closed * 95.0,
        "visit_page_views_sum": closed * 4,
        "impressions": impressions,
        "clicks": rng.randrange(0, impressions // 10 + 1),
        "orders": orders,
        "revenue": orders * 42.5,
        "visits_with_order": orders,
        "entries": visits,
        "exits": closed,
        "product_views": visits * 2,
        "add_to_carts": orders + 1,
        "visits_with_cart": orders + 1,
        "visits_with_cart_without_order": 1,
    }


def hll(visitors: list[str]) -> bytes:
    sketch = hll_sketch(sketches.LG_K)
    for visitor in visitors:
        sketch.update(visitor)
    return bytes(sketch.serialize_compact())


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
