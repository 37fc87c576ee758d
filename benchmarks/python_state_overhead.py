"""What does one Python call per key and micro-batch cost in Spark's stateful operators?

The streaming job sessionizes per visitor in Python, so each micro-batch makes one Python
call per active visitor. This script measures that floor with functions that do almost
nothing (count the rows, keep a short JSON state, set an event-time timer), on the same
rate-source stream, one query after the other in one local[2] session:

- `applyInPandasWithState` (what the job uses);
- `transformWithState`, the row-based Python API of Spark 4.1+ (state through a socket);
- the baseline: a JVM-only stateful aggregation (`groupBy(key).count()`, update mode) over
  the same keys, the cost with no Python at all.

It prints milliseconds per key and batch (addBatch time / keys updated) for each, and the
ratio to the JVM baseline. Run:

    PYTHONPATH=src $(make -s print-venv)/bin/python benchmarks/python_state_overhead.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.state import GroupStateTimeout
from pyspark.sql.streaming.stateful_processor import StatefulProcessor, StatefulProcessorHandle

from clickagg.pipeline import session as spark
from clickagg.pipeline import stream

OUTPUT = "key string, facts string"
TIMER_MS = 60_000


class CountingProcessor(StatefulProcessor):
    """transformWithState: the same near-nothing work as `count_with_state`."""

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.state = handle.getValueState("state", "value string")

    def handleInputRows(  # noqa: N802 (Spark's API)
        self,
        key: Any,
        rows: Iterator[Row],
        timerValues: Any,  # noqa: N803
    ) -> Iterator[Row]:
        count = sum(1 for _ in rows)
        before = self.state.get()
        self.state.update((json.dumps([count, before[0] if before else ""])[:50],))
        for timer in self.handle.listTimers():
            self.handle.deleteTimer(timer)
        self.handle.registerTimer(timerValues.getCurrentWatermarkInMs() + TIMER_MS)
        yield Row(key=key[0], facts="x" * 20)

    def close(self) -> None:
        pass


def count_with_state(
    key: Any, frames: Iterator[pd.DataFrame], state: Any
) -> Iterator[pd.DataFrame]:
    """applyInPandasWithState: count the rows, keep a short state, set a timer."""
    count = sum(len(frame) for frame in frames)
    before = state.get[0] if state.exists else ""
    state.update((json.dumps([count, before])[:50],))
    state.setTimeoutTimestamp(state.getCurrentWatermarkMs() + TIMER_MS)
    yield pd.DataFrame({"key": [key[0]], "facts": ["x" * 20]})


def keyed_stream(session: SparkSession, keys: int, rows_per_second: int) -> DataFrame:
    rate = (
        session.readStream.format("rate")
        .option("rowsPerSecond", rows_per_second)
        .option("numPartitions", 2)
        .load()
    )
    return rate.select(
        (F.col("value") % keys).cast("string").alias("key"),
        F.to_json(F.struct("value")).alias("event"),
        F.col("timestamp").alias("event_time"),
    ).withWatermark("event_time", "10 seconds")


def measure(
    name: str, output: DataFrame, mode: str, seconds: float, trigger: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="state-overhead-") as checkpoint:
        query = (
            output.writeStream.format("noop")
            .outputMode(mode)
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime=f"{trigger} seconds")
            .start()
        )
        time.sleep(seconds)
        progress = query.recentProgress  # finished batches only
        stream.stop_between_batches(query)
    measured = [p for p in progress[2:] if p.numInputRows]  # skip the warm-up batches
    rows = sum(p.numInputRows for p in measured)
    keys = sum(p.stateOperators[0].numRowsUpdated for p in measured)
    busy_s = sum(p.durationMs.get("addBatch", 0) for p in measured) / 1000
    return {
        "name": name,
        "batches": len(measured),
        "rows": rows,
        "keys": keys,
        "busy_s": busy_s,
        "ms_per_key": busy_s * 1000 / keys if keys else float("nan"),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000, help="distinct keys (visitors)")
    parser.add_argument("--rate", type=int, default=20_000, help="rows per second")
    parser.add_argument("--seconds", type=float, default=40.0, help="run time per operator")
    parser.add_argument("--trigger", type=float, default=3.0, help="trigger interval (s)")
    args = parser.parse_args(argv)
    session = spark.local_session("state-overhead", conf={"spark.sql.shuffle.partitions": "2"})
    grouped = keyed_stream(session, args.keys, args.rate).groupBy("key")
    results = [
        measure(
            "JVM groupBy(key).count() (baseline)",
            grouped.count(),
            "update",
            args.seconds,
            args.trigger,
        ),
        measure(
            "applyInPandasWithState",
            grouped.applyInPandasWithState(
                count_with_state,
                OUTPUT,
                "state string",
                "append",
                GroupStateTimeout.EventTimeTimeout,
            ),
            "append",
            args.seconds,
            args.trigger,
        ),
        measure(
            "transformWithState (rows)",
            grouped.transformWithState(
                CountingProcessor(),
                OUTPUT,
                "Append",
                "EventTime",
            ),
            "append",
            args.seconds,
            args.trigger,
        ),
    ]
    session.stop()
    baseline = results[0]["ms_per_key"]
    print(f"\n{args.keys:,} keys, {args.rate:,} rows/s, trigger {args.trigger:g} s, local[2]\n")
    print("| operator | batches | rows | keys updated | addBatch s | ms per key | × baseline |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['name']} | {r['batches']} | {r['rows']:,} | {r['keys']:,} | "
            f"{r['busy_s']:.1f} | {r['ms_per_key']:.3f} | {r['ms_per_key'] / baseline:.1f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
