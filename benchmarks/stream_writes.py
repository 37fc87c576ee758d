"""Documents per second of the streaming job's Solr cell writes, through one node's URL
against routed to each cell's shard leader, in one run on the two-host layout (issue 8 §2).

1. starts its own 2-node SolrCloud on 127.0.0.2 and 127.0.0.3 (free ports, its own run
   directory) and, per way, a collection of the demo shop's finest level (2 shards,
   `--replication-factor` replicas each);
2. builds `--batches` micro-batches in the demo shop's shape (`cell_fill`: 244 cells per
   15m bucket, each with a sketch of its visitors), `--buckets` consecutive buckets each;
3. writes every batch twice per way (a first write finds no documents, the second finds
   them and merges: the real-time get, add, merge and replace of `cell_writes`), the ways
   taking turns batch by batch, in an order that alternates, so the machine's noise falls on
   all of them:
   - `one-url`: `write_deltas` through the first node's URL from the driver (today's path);
   - `routed`: `write_deltas_routed` from the driver: each shard's cells read from and
     written to its leader (`distrib=false` real-time get on its core), shards in parallel;
   - `executors` (with `--executors`): a Spark standalone cluster with a worker on each
     host; per batch, one task per shard on its leader's host (`locality.rdd_preferring`)
     writes that shard's cells to its leader. The driver ships each task its cells (a
     real job would have them in the task already: this way pays that shipping);
4. checks that every way's collection holds the same documents' state, and prints the
   documents per second of each way and its ratio to `one-url`.

Run: PYTHONPATH=src PYSPARK_PYTHON=$VENV/bin/python $VENV/bin/python \
         benchmarks/stream_writes.py [--batches 20] [--buckets 8] [--executors]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import cell_fill  # noqa: E402
import rollup as rollup_bench  # noqa: E402
import run_facts  # noqa: E402
import stream_throughput  # noqa: E402

from clickagg.domain import cells, model, sessions  # noqa: E402
from clickagg.local import process  # noqa: E402
from clickagg.local import spark_cluster as local_spark_cluster  # noqa: E402
from clickagg.pipeline import locality  # noqa: E402
from clickagg.store import cell_reads, cell_writes, collections, queries, routing  # noqa: E402
from clickagg.store import client as solr  # noqa: E402

DAY_MS = 86_400_000
Write = Callable[[model.Level, list[cells.CellDelta], int], int]


def on_driver(client: solr.SolrClient, write_deltas: Any) -> Write:
    """A `cell_writes` writer called from the driver with `client`."""

    def write(level: model.Level, deltas: list[cells.CellDelta], batch_id: int) -> int:
        report = write_deltas(client, level, deltas, stream_id="bench", batch_id=batch_id)
        return int(report.written)

    return write


def from_executors(client: solr.SolrClient, spark: Any) -> Write:
    """One Spark task per shard on its leader's host, writing the shard's cells there."""

    fallback_url = client.base_url  # the tasks get the URL, not the client

    def write(level: model.Level, deltas: list[cells.CellDelta], batch_id: int) -> int:
        shares = cell_writes.shares(client, level, deltas)
        items = [
            ((leader, share), [_host(leader.base_url)] if leader else [])
            for leader, share in shares.items()
        ]

        def on_executor(
            parts: Iterator[tuple[routing.Leader | None, list[cells.CellDelta]]],
        ) -> Iterator[int]:
            for leader, share in parts:
                url = leader.base_url if leader else fallback_url
                with solr.SolrClient(url) as node:
                    yield cell_writes.write_deltas(
                        node, level, share, stream_id="bench", batch_id=batch_id,
                        core=leader.core if leader else None,
                    ).written  # fmt: skip

        return sum(
            locality.rdd_preferring(spark.sparkContext, items).mapPartitions(on_executor).collect()
        )

    return write


def _host(base_url: str) -> str:
    return base_url.split("//", 1)[1].split(":", 1)[0]


def batches(start_ms: int, count: int, per_batch: int) -> list[list[cells.CellDelta]]:
    filled = cell_fill.buckets_of(start_ms, start_ms + DAY_MS * 30, sketch_every_cell=True)
    found = []
    for _ in range(count):
        chunk = list(itertools.islice(filled, per_batch))
        found.append([cell for bucket in chunk for cell in bucket.cells])
    return found


def state_of(client: solr.SolrClient, level: model.Level) -> dict[str, list[float]]:
    client.commit(level.collection)
    return {
        str(d["id"]): [float(d.get(cells.solr_field(f)) or 0) for f in sessions.FIELDS]
        for d in cell_reads.documents(client, level.collection, queries.level_documents(level))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--buckets", type=int, default=8, help="15m buckets per batch")
    parser.add_argument("--replication-factor", type=int, default=1)
    parser.add_argument("--executors", action="store_true")
    args = parser.parse_args()
    load_before = run_facts.load_average()
    start_ms = (int(time.time() * 1000) // DAY_MS - 3) * DAY_MS
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="stream-writes-") as temp:
        work = Path(temp)
        with stream_throughput.solr_cloud(work / "run", process.NODE_HOSTS) as endpoints:
            client = solr.SolrClient(endpoints.base_url)
            client.upload_configset(collections.CONFIGSET_NAME, collections.CONFIGSET_DIR)
            finest = cell_fill.shop(endpoints.base_url, "stream-writes").finest
            ways: dict[str, Write] = {
                "one-url": on_driver(client, cell_writes.write_deltas),
                "routed": on_driver(client, cell_writes.write_deltas_routed),
            }
            spark = None
            if args.executors:
                spark, _ = rollup_bench.cluster_session(work)
                spark.sparkContext.setLogLevel("ERROR")
                ways["executors"] = from_executors(client, spark)
            levels = {}
            for name in ways:
                collection = f"writes_{name.replace('-', '_')}"
                client.create_collection(
                    collection, collections.CONFIGSET_NAME, 2, args.replication_factor
                )
                levels[name] = dataclasses.replace(finest, collection=collection)
            work_batches = batches(start_ms, args.batches, args.buckets)
            seconds: dict[str, float] = defaultdict(float)
            documents: dict[str, int] = defaultdict(int)
            names = list(ways)
            for number, batch in enumerate(work_batches):
                order = names if number % 2 == 0 else names[::-1]
                for twice in (0, 1):
                    for name in order:
                        started = time.monotonic()
                        documents[name] += ways[name](levels[name], batch, 2 * number + twice)
                        seconds[name] += time.monotonic() - started
            reference = state_of(client, levels["one-url"])
            cells_written = sum(len(b) for b in work_batches) * 2
            out.append(
                f"{args.batches} batches of {args.buckets} 15m buckets "
                f"({len(work_batches[0]):,} cells each), each written twice: "
                f"{cells_written:,} cell writes per way; Solr nodes on "
                f"{', '.join(process.NODE_HOSTS)}, 2 shards x {args.replication_factor} replicas"
            )
            for name in names:
                rate = documents[name] / seconds[name]
                base = documents["one-url"] / seconds["one-url"]
                same = state_of(client, levels[name]) == reference
                out.append(
                    f"{name}: {documents[name]:,} documents in {seconds[name]:.1f} s: "
                    f"{rate:,.0f} documents/s ({rate / base:.2f}x one-url); "
                    f"same documents as one-url: {same}"
                )
            if spark is not None:
                spark.stop()
                local_spark_cluster.down()
            client.close()
    out.append(f"load average before → after: {load_before} → {run_facts.load_average()}")
    print("\n".join(f"- {line}" for line in out))


if __name__ == "__main__":
    main()
