"""How long rolling up takes: days of the demo shop's traffic at 15m, rolled up to 1h and 1d.

1. starts its own 2-node SolrCloud (free ports, its own run directory);
2. generates `--days` days of shop traffic (`sim.generate`, what `clickagg generate` runs,
   `--visitors` per day) and streams it into the finest level of examples/shop-kpis.yaml
   (as the streaming tests adapt it), with a sentinel a day and an hour later so every
   bucket is settled;
3. runs the rollup job (`jobs.rollup.roll_up_levels`) and times each level;
4. as the reference in the same run, reads the same finer documents from Solr and computes
   the 1h and 1d additive state in DuckDB (no sketches: DuckDB cannot merge them), and
   checks it equals what the rollup wrote;
5. applies retention to the oldest day of 15m and of 1h (delete-by-query) and times it,
   and, for comparison, what a time-routed alias would do per day instead: create a
   collection for the new day and delete the oldest one.

Run: PYTHONPATH=src PYSPARK_PYTHON=$VENV/bin/python $VENV/bin/python benchmarks/rollup.py
Event times must lie within the event contract's 30 days, so the traffic ends yesterday.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import stream_throughput  # noqa: E402

import streaming  # noqa: E402
from clickagg.domain import buckets, cells, model, rollup, sessions  # noqa: E402
from clickagg.jobs import rollup as rollup_job  # noqa: E402
from clickagg.pipeline import archive  # noqa: E402
from clickagg.pipeline import session as spark_session  # noqa: E402
from clickagg.sim import landing  # noqa: E402
from clickagg.store import batch, cell_reads, collections, queries, solr_cells  # noqa: E402

DAY_MS = 86_400_000
ADDITIVE = [cells.solr_field(name) for name in sessions.FIELDS]


def values_key(document: dict[str, Any]) -> str:
    return "|".join(str(document[k]) for k in sorted(k for k in document if k.startswith("d_")))


def reference(
    documents: list[dict[str, Any]], coarser: model.Level
) -> tuple[dict[tuple[str, int, str], list[float]], float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--visitors", type=int, default=5000, help="visitors per day")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    start_ms = (int(time.time() * 1000) // DAY_MS - args.days - 2) * DAY_MS
    with tempfile.TemporaryDirectory(prefix="rollup-bench-") as temp:
        work = Path(temp)
        with stream_throughput.solr_cloud(work / "run") as endpoints:
            aggregation = streaming.aggregation_for(
                work / "landing", endpoints.base_url, "rollup-bench"
            )
            lines = streaming.traffic_lines(
                start_ms, hours=24 * args.days, visitors=args.visitors * args.days, seed=args.seed
            )
            landing.write_files(lines, work / "landing", rolling=landing.Rolling(20_000, None))
            spark = spark_session.local_session("rollup-bench")
            spark.sparkContext.setLogLevel("ERROR")
            paths = archive.JobPaths(str(work / "data"))
            with solr_cells.SolrCellStore(endpoints.base_url) as store:
                store.ensure_collections(aggregation)
            streamed = time.monotonic()
            streaming.run_to_end(spark, aggregation, paths, endpoints.base_url)
            sentinel_ms = start_ms + (args.days + 1) * DAY_MS + 3_600_000
            streaming.close_every_visit(
                spark,
                aggregation,
                paths,
                endpoints.base_url,
                streaming.deliver_to(work / "landing"),
                sentinel_ms,
            )
            stream_s = time.monotonic() - streamed
            streaming.report_watermark(endpoints.base_url, aggregation, sentinel_ms)
            with solr_cells.SolrCellStore(endpoints.base_url) as store:
                rolled = rollup_job.roll_up_levels(
                    spark, aggregation, store, now_ms=start_ms, data_root=paths.root
                )
                client = store.client
                out = [
                    f"{len(lines):,} lines, {args.days} days, {args.visitors:,} visitors a day; "
                    f"streamed into 15m in {stream_s:.0f}s"
                ]
                for run, finer, coarser in zip(
                    rolled.levels, aggregation.levels[:-1], aggregation.levels[1:], strict=True
                ):
                    read_started = time.monotonic()
                    documents = list(
                        batch.documents_in(client, finer, start_ms, sentinel_ms - DAY_MS)
                    )
                    read_s = time.monotonic() - read_started
                    expected, duck_s = reference(documents, coarser)
                    written = {
                        (str(d["cuboid"]), buckets.parse_iso(d["bucket"]), values_key(d)): [
                            float(d.get(f) or 0) for f in ADDITIVE
                        ]
                        for d in cell_reads.documents(
                            client, coarser.collection, queries.level_documents(coarser)
                        )
                    }
                    same = all(
                        key in written
                        and all(abs(a - b) < 1e-6 for a, b in zip(v, written[key], strict=True))
                        for key, v in expected.items()
                        if key[0] != cells.BOTS_CUBOID
                    )
                    out.append(
                        f"{coarser.name} from {finer.name}: {run.finer_documents:,} documents "
                        f"into {run.documents:,} in {run.seconds:.1f}s "
                        f"({run.finer_documents / run.seconds:,.0f} documents/s, "
                        f"{run.seconds / args.days:.1f}s per day of data); DuckDB reference "
                        f"{read_s:.1f}s reading + {duck_s:.2f}s aggregating = "
                        f"{(read_s + duck_s):.1f}s, rollup/reference "
                        f"{run.seconds / (read_s + duck_s):.2f}; equal: {same}"
                    )
                for level in aggregation.levels[:2]:
                    now_ms = start_ms + DAY_MS + int(level.retention.approx_seconds * 1000)  # type: ignore[union-attr]
                    plan = rollup_job.retention_plan(aggregation, store, now_ms=now_ms)
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
    print("\n".join(f"- {line}" for line in out))


if __name__ == "__main__":
    main()
