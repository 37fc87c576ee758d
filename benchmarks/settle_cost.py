"""The settle step's cost per late event, against a replay of the same range.

Real engines: its own 2-node SolrCloud, a local[2] SparkSession, the stream's two queries.
Hours of generated shop traffic are streamed; then `--late` page views of known visitors,
with times in one hour two hours behind the newest event, arrive behind the watermark (the
stream drops them; some join, bridge or precede visits). Then, timed in the same run:

- **settle** with the late events: finds them, recomputes the buckets they changed;
- **settle again** with nothing new: the cost of looking;
- **replay** of every settled bucket (the baseline: what recomputing without settle costs).

The figures go to stdout; `docs/benchmarks.md` keeps recorded runs.

    PYTHONPATH=src python benchmarks/settle_cost.py [--hours 12] [--visitors 2000] [--late 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the streaming test helpers

import stream_throughput  # noqa: E402

import streaming  # noqa: E402
from clickagg.domain import sessions  # noqa: E402
from clickagg.pipeline import archive, replay, settle  # noqa: E402
from clickagg.pipeline import session as spark_session  # noqa: E402
from clickagg.sim import landing  # noqa: E402
from clickagg.store import solr_cells  # noqa: E402

HOUR_MS = streaming.HOUR_MS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12)
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--late", type=int, default=200)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="settle-cost-"))
    with stream_throughput.solr_cloud(work / "run") as solr:
        spark = spark_session.local_session("settle-cost")
        try:
            figures = measure(spark, solr.base_url, work, options)
        finally:
            spark.stop()
    print(json.dumps(figures, indent=2))


def measure(spark: Any, solr_url: str, work: Path, options: argparse.Namespace) -> dict[str, Any]:
    start = (int(time.time() * 1000) // HOUR_MS - int(options.hours) - 30) * HOUR_MS
    lateness = {"watermark": "10m", "allowedLateness": "1d"}
    aggregation = streaming.aggregation_for(
        work / "landing", solr_url, "settle-cost", lateness=lateness
    )
    paths = archive.JobPaths(str(work / "data"))
    with solr_cells.SolrCellStore(solr_url) as store:
        store.ensure_collections(aggregation)
    lines = streaming.traffic_lines(start, options.hours, options.visitors, seed=5)
    landing.write_files(lines, work / "landing", rolling=streaming.ROLLING)
    streaming.run_to_end(spark, aggregation, paths, solr_url)
    visitors = sorted({i.visitor_id for i in lines if i.visitor_id and not i.bot})
    rng = random.Random(5)
    late = []
    end = start + int(options.hours * HOUR_MS)
    for n in range(options.late):
        ts = end - 2 * HOUR_MS + rng.randrange(HOUR_MS)
        record = {
            "event_id": f"late-{n}",
            "ts": ts,
            "visitor_id": rng.choice(visitors),
            "type": "page_view",
            "page": "late",
        }
        late.append(json.dumps(record).encode())
    (work / "landing" / "zz-late.jsonl").write_bytes(b"".join(x + b"\n" for x in late))
    sentinel = end + 26 * HOUR_MS  # settles every bucket of the traffic
    (work / "landing" / "zzz.jsonl").write_bytes(streaming.sentinel(sentinel) + b"\n")
    for _ in range(2):
        streaming.run_to_end(spark, aggregation, paths, solr_url)
    with solr_cells.SolrCellStore(solr_url) as store:
        began = time.monotonic()
        first = settle.settle(spark, aggregation, paths, store)
        settle_s = time.monotonic() - began
        began = time.monotonic()
        settle.settle(spark, aggregation, paths, store)
        idle_s = time.monotonic() - began
        began = time.monotonic()
        replay.replay(
            spark,
            aggregation,
            paths,
            store,
            start,
            end,
            history_ms=sessions.VISITOR_MEMORY_MS,
        )
        replay_s = time.monotonic() - began
    return {
        "events": len(lines),
        "hours": options.hours,
        "late_events": first.late_events,
        "recomputed_spans": [str(s) for s in first.recomputed],
        "settle_s": round(settle_s, 1),
        "settle_ms_per_late_event": round(1000 * settle_s / max(first.late_events, 1), 1),
        "settle_with_nothing_late_s": round(idle_s, 1),
        "replay_of_the_range_s": round(replay_s, 1),
        "settle_over_replay": round(settle_s / replay_s, 2),
        "load_average": os.getloadavg()[0],
    }


if __name__ == "__main__":
    main()
