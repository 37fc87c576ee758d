"""How long rolling up takes: days of the demo shop at 15m, rolled up to 1h and 1d, by each
of the rollup job's combines, against DuckDB.

1. starts its own 2-node SolrCloud (free ports, its own run directory);
2. fills `--days` days of the finest level of examples/shop-kpis.yaml:
   `--fill cells` (default) writes `cell_fill`'s cells in the demo shop's shape directly,
   each with a sketch of its visitors, as the streaming job writes them (minutes for 30
   days); `--fill stream` generates shop traffic (`sim.generate`, `--visitors` per day) and
   streams it, then settles (hours for 30 days);
3. per combine in `--combines` (default: pushdown, then spark), empties 1h and 1d, runs the
   rollup job's levels (`jobs.rollup.roll_up_coarser`) over the same finer documents and
   times each level and, per level, the combine apart from the writes (the pushdown
   combine also by phase: sums in Solr, sketches read and merged);
4. as the reference in the same run, reads the finer documents from Solr (cursor paging)
   and computes the 1h and 1d additive state in DuckDB (no sketches: DuckDB cannot merge
   them), and checks each combine's documents equal it;
5. applies retention to the oldest day of 15m and of 1h (delete-by-query) and times it,
   and, for comparison, what a time-routed alias would do per day instead: create a
   collection for the new day and delete the oldest one.

With `--cluster` the two Solr nodes run on 127.0.0.2 and 127.0.0.3 and the rollup's driver
(on 127.0.0.1) runs its tasks on a Spark standalone cluster with a worker on each of those
hosts: the pushdown merges each shard's sketches in a Spark task on the shard's host. Each
combine also reports the bytes of Solr's responses: to the driver, and for the shard reads
split into same-host and cross-host; and the shard-read tasks' locality from the event log.

Run: PYTHONPATH=src PYSPARK_PYTHON=$VENV/bin/python $VENV/bin/python benchmarks/rollup.py
     [--days 30] [--fill cells|stream] [--combines pushdown,spark] [--cluster]
Event times must lie within the event contract's 30 days, so the traffic ends yesterday.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import cell_fill  # noqa: E402
import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import run_facts  # noqa: E402
import stream_throughput  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

import streaming  # noqa: E402
from clickagg.domain import buckets, cells, model, rollup, sessions  # noqa: E402
from clickagg.jobs import rollup as rollup_job  # noqa: E402
from clickagg.local import process  # noqa: E402
from clickagg.local import spark_cluster as local_spark_cluster  # noqa: E402
from clickagg.pipeline import archive, locality, rollup_pushdown, shard_tasks  # noqa: E402
from clickagg.pipeline import rollup as spark_rollup  # noqa: E402
from clickagg.pipeline import session as spark_session  # noqa: E402
from clickagg.sim import landing  # noqa: E402
from clickagg.store import batch, cell_reads, collections, queries, solr_cells  # noqa: E402

DAY_MS = 86_400_000
ADDITIVE = [cells.solr_field(name) for name in sessions.FIELDS]
Written = dict[tuple[str, int, str], list[float]]


def values_key(document: dict[str, Any]) -> str:
    return "|".join(str(document[k]) for k in sorted(k for k in document if k.startswith("d_")))


def reference(documents: list[dict[str, Any]], coarser: model.Level) -> tuple[Written, float]:
    """The coarser level's additive state per (cuboid, bucket, values), computed in DuckDB."""
    started = time.monotonic()
    table = pa.table(
        {
            "cuboid": [d["cuboid"] for d in documents],
            "parent": [rollup.parent(buckets.parse_iso(d["bucket"]), coarser) for d in documents],
            "vals": [values_key(d) for d in documents],
            **{f: [float(d.get(f) or 0) for d in documents] for f in ADDITIVE},
        }
    )
    con = duckdb.connect(":memory:")
    con.register("finer", table)
    sums = ", ".join(f'sum("{f}")' for f in ADDITIVE)
    rows = con.execute(
        f"SELECT cuboid, parent, vals, {sums} FROM finer GROUP BY cuboid, parent, vals"  # noqa: S608 (our field names)
    ).fetchall()
    con.close()
    found = {(r[0], int(r[1]), r[2]): list(r[3:]) for r in rows}
    return found, time.monotonic() - started


class Timed:
    """A combine that also keeps how long its calls took, per coarser level, and the bytes
    of the Solr responses the driver's client read meanwhile (the pushdown's facets, or
    every finer document for the Spark combine)."""

    def __init__(self, inner: spark_rollup.Combine, client: Any) -> None:
        self.inner = inner
        self.client = client
        self.seconds: dict[str, float] = defaultdict(float)
        self.driver_bytes: dict[str, int] = defaultdict(int)

    def __call__(
        self, finer: model.Level, coarser: model.Level, span: buckets.Span
    ) -> spark_rollup.Combined:
        started = time.monotonic()
        before = self.client.received_bytes
        combined = self.inner(finer, coarser, span)
        self.seconds[coarser.name] += time.monotonic() - started
        self.driver_bytes[coarser.name] += self.client.received_bytes - before
        return combined


def fill_cells(
    client: Any, aggregation: model.Aggregation, start_ms: int, days: int
) -> tuple[int, str]:
    """The finest level filled with cells directly; where the input is settled up to."""
    filled = cell_fill.buckets_of(start_ms, start_ms + days * DAY_MS, sketch_every_cell=True)
    started = time.monotonic()
    documents = cell_fill.fill_level(client, aggregation.finest, filled)
    return start_ms + days * DAY_MS, (
        f"{documents:,} cells of the demo shop's shape written into 15m directly in "
        f"{time.monotonic() - started:.0f} s (each with a sketch of its visitors)"
    )


def fill_stream(
    spark: Any, aggregation: model.Aggregation, work: Path, base_url: str, args: Any, start: int
) -> tuple[int | None, str]:
    """The finest level streamed from generated traffic, then settled."""
    lines = streaming.traffic_lines(
        start, hours=24 * args.days, visitors=args.visitors * args.days, seed=args.seed
    )
    landing.write_files(lines, work / "landing", rolling=landing.Rolling(20_000, None))
    paths = archive.JobPaths(str(work / "data"))
    started = time.monotonic()
    streaming.run_to_end(spark, aggregation, paths, base_url)
    sentinel_ms = start + (args.days + 1) * DAY_MS + 3_600_000
    deliver = streaming.deliver_to(work / "landing")
    streaming.close_every_visit(spark, aggregation, paths, base_url, deliver, sentinel_ms)
    streaming.report_watermark(base_url, aggregation, sentinel_ms)
    with solr_cells.SolrCellStore(base_url) as store:
        settled = rollup_job.settle_finest_level(spark, aggregation, store, paths)
    return settled, (
        f"{len(lines):,} lines, {args.visitors:,} visitors a day, streamed into 15m and "
        f"settled in {time.monotonic() - started:.0f} s"
    )


def forget_rollups(client: Any, aggregation: model.Aggregation) -> None:
    for level in aggregation.levels[1:]:
        client.delete_by_query(level.collection, "*:*")
        client.commit(level.collection)


def written(client: Any, level: model.Level) -> Written:
    return {
        (str(d["cuboid"]), buckets.parse_iso(d["bucket"]), values_key(d)): [
            float(d.get(f) or 0) for f in ADDITIVE
        ]
        for d in cell_reads.documents(client, level.collection, queries.level_documents(level))
    }


def equal(expected: Written, got: Written) -> bool:
    return all(
        key in got and all(abs(a - b) < 1e-6 for a, b in zip(v, got[key], strict=True))
        for key, v in expected.items()
        if key[0] != cells.BOTS_CUBOID
    )


def roll_up_with(
    spark: Any,
    aggregation: model.Aggregation,
    base_url: str,
    name: rollup_job.CombineName,
    settled: int | None,
) -> tuple[tuple[spark_rollup.LevelRun, ...], Timed, Any, dict[str, Written]]:
    """Every coarser level rolled up from scratch by one combine, and what it wrote."""
    with solr_cells.SolrCellStore(base_url) as store:
        forget_rollups(store.client, aggregation)
        inner = rollup_job.combine_for(name, spark, aggregation, store)
        timed = Timed(inner, store.client)
        runs = rollup_job.roll_up_coarser(spark, aggregation, store, (1, 2), settled, timed)
        out = {level.name: written(store.client, level) for level in aggregation.levels[1:]}
    return runs, timed, inner, out


def moved(timed: Timed, inner: Any, coarser: model.Level, driver_host: str) -> str:
    """The bytes Solr's responses carried in one level's combine, by where they went: to
    the driver (on another host than both Solr nodes), and the shard reads' same-host and
    cross-host bytes."""
    driver = timed.driver_bytes[coarser.name]
    text = f"{driver / 1e6:,.1f} MB to the driver on {driver_host}"
    if isinstance(inner, rollup_pushdown.PushdownCombine):
        reads = inner.reads_by_level[coarser.name]
        same = sum(r.response_bytes for r in reads if r.same_host)
        cross = sum(r.response_bytes for r in reads if not r.same_host)
        text += (
            f" (sums), shard reads {same / 1e6:,.1f} MB same-host + {cross / 1e6:,.1f} MB "
            f"cross-host in {len(reads)} reads"
        )
    else:
        text += " (every finer document, then shipped to Spark's tasks)"
    return text


def cluster_session(work: Path) -> tuple[Any, Path]:
    """A driver on the standalone cluster (master and a worker on each Solr host), writing
    its event log to a directory of `work`."""
    endpoints = local_spark_cluster.up(*process.free_ports(2))
    events = work / "events"
    events.mkdir()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", process.LOOPBACK)
    settings = {
        **spark_session.CLUSTER_CONF,
        **local_spark_cluster.session_conf(endpoints),
        "spark.ui.enabled": "false",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": str(events),
        "spark.eventLog.rolling.enabled": "false",
        "spark.eventLog.compress": "false",
        "spark.locality.wait": "30s",
    }
    builder = SparkSession.builder.appName("rollup-bench")
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate(), events


def shard_task_localities(events: Path) -> dict[str, int]:
    """How many of the shard-read tasks ran at each locality level, from the event log."""
    stages: set[int] = set()
    found: dict[str, int] = defaultdict(int)
    for log in events.iterdir():
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["Event"] == "SparkListenerJobStart" and str(
                event.get("Properties", {}).get("spark.job.description")
            ).startswith(shard_tasks.JOB_DESCRIPTION):
                stages.update(event["Stage IDs"])
            elif event["Event"] == "SparkListenerTaskEnd" and event["Stage ID"] in stages:
                found[event["Task Info"]["Locality"]] += 1
    return dict(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--fill", choices=("cells", "stream"), default="cells")
    parser.add_argument("--combines", default="pushdown,spark")
    parser.add_argument("--visitors", type=int, default=5000, help="visitors a day (stream)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="Solr nodes on 127.0.0.2 and .3, and a Spark standalone cluster with a worker on each",
    )
    args = parser.parse_args()
    combines = args.combines.split(",")
    start_ms = (int(time.time() * 1000) // DAY_MS - args.days - 2) * DAY_MS
    load_before = run_facts.load_average()
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rollup-bench-") as temp:
        work = Path(temp)
        hosts = process.NODE_HOSTS if args.cluster else None
        with stream_throughput.solr_cloud(work / "run", hosts) as endpoints:
            base_url = endpoints.base_url
            aggregation = (
                streaming.aggregation_for(work / "landing", base_url, "rollup-bench")
                if args.fill == "stream"
                else cell_fill.shop(base_url, "rollup-bench")
            )
            events = None
            if args.cluster:
                spark, events = cluster_session(work)
            else:
                spark = spark_session.local_session("rollup-bench")
            spark.sparkContext.setLogLevel("ERROR")
            driver_host = locality.own_host()
            out.append(
                f"Solr nodes on {', '.join(hosts or ['127.0.0.1'] * 2)}; Spark master "
                f"{spark.sparkContext.master}"
            )
            with solr_cells.SolrCellStore(base_url) as store:
                store.ensure_collections(aggregation)
                settled: int | None
                if args.fill == "cells":
                    settled, filled = fill_cells(store.client, aggregation, start_ms, args.days)
                else:
                    settled, filled = fill_stream(
                        spark, aggregation, work, base_url, args, start_ms
                    )
            out.append(f"{args.days} days; {filled}")
            results = {
                name: roll_up_with(spark, aggregation, base_url, name, settled) for name in combines
            }
            with solr_cells.SolrCellStore(base_url) as store:
                client = store.client
                levels = list(zip(aggregation.levels[:-1], aggregation.levels[1:], strict=True))
                for index, (finer, coarser) in enumerate(levels):
                    read_started = time.monotonic()
                    documents = list(
                        batch.documents_in(client, finer, start_ms, start_ms + args.days * DAY_MS)
                    )
                    read_s = time.monotonic() - read_started
                    expected, duck_s = reference(documents, coarser)
                    duck = read_s + duck_s
                    out.append(
                        f"{coarser.name} from {finer.name}: DuckDB reference {read_s:.1f} s "
                        f"reading {len(documents):,} documents (cursor paging) + {duck_s:.2f} s "
                        f"aggregating = {duck:.1f} s"
                    )
                    for name, (runs, timed, inner, wrote) in results.items():
                        run = runs[index]
                        combine_s = timed.seconds[coarser.name]
                        phases = ""
                        if isinstance(inner, rollup_pushdown.PushdownCombine):
                            phases = "; " + ", ".join(
                                f"{phase} {seconds:.1f} s"
                                for phase, seconds in inner.seconds[coarser.name].items()
                            )
                        out.append(
                            f"  {name}: {run.finer_documents:,} documents into "
                            f"{run.documents:,} in {run.seconds:.1f} s "
                            f"({run.finer_documents / run.seconds:,.0f} documents/s, "
                            f"{run.seconds / args.days:.2f} s per day of data); combine "
                            f"{combine_s:.1f} s, writes and progress "
                            f"{run.seconds - combine_s:.1f} s{phases}; "
                            f"rollup/DuckDB {run.seconds / duck:.2f}; "
                            f"equal to DuckDB: {equal(expected, wrote[coarser.name])}; "
                            f"bytes: {moved(timed, inner, coarser, driver_host)}"
                        )
                    if len(results) == 2:
                        (a, ra), (b, rb) = results.items()
                        ratio = ra[0][index].seconds / rb[0][index].seconds
                        out.append(f"  {a}/{b}: {ratio:.3f} ({1 / ratio:.2f}x)")
                for level in aggregation.levels[:2]:
                    now_ms = start_ms + DAY_MS + int(level.retention.approx_seconds * 1000)  # type: ignore[union-attr]
                    plan = rollup_job.retention_plan(
                        aggregation, store, now_ms=now_ms, settled=settled
                    )
                    forgetting = next(f for f in plan.levels if f.name == level.name)
                    cut = forgetting.delete_before_ms
                    started = time.monotonic()
                    deleted = store.delete_buckets_before(level, cut) if cut else 0
                    seconds = time.monotonic() - started
                    out.append(
                        f"retention {level.name}: deleted {deleted:,} documents before "
                        f"{buckets.iso(cut or 0)} in "
                        f"{seconds:.2f}s ({deleted / max(seconds, 1e-9):,.0f} documents/s, "
                        "delete-by-query on bucket with a commit)"
                    )
                # What a time-routed alias does instead, per interval: create the next
                # collection, delete the oldest (autoDeleteAge), on the same SolrCloud.
                target = aggregation.spec.solr
                started = time.monotonic()
                client.create_collection(
                    "routed-day",
                    collections.CONFIGSET_NAME,
                    target.shards,
                    target.replication_factor,
                )
                created_s = time.monotonic() - started
                started = time.monotonic()
                client.delete_collection("routed-day")
                out.append(
                    f"a time-routed alias instead: creating a day's collection "
                    f"{created_s:.2f}s, deleting it {time.monotonic() - started:.2f}s"
                )
            spark.stop()
            if events is not None:
                out.append(f"shard-read tasks by locality: {shard_task_localities(events)}")
                local_spark_cluster.down()
    out.append(f"load average before → after: {load_before} → {run_facts.load_average()}")
    print("\n".join(f"- {line}" for line in out))


if __name__ == "__main__":
    main()
