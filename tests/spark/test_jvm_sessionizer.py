"""The JVM sessionizer against its specification, domain/sessions.py: identical deltas.

1. The same randomly ordered batches of one visitor's events (disorder within the
   watermark, late and duplicate events, visits crossing buckets, midnight, a week and a
   month, gaps of exactly the timeout, blank and non-ASCII values) through both, batch by
   batch, with the state encoded and decoded in between as the state store does. Each
   granularity gets the same share, and the test checks that every case class occurred.
   By default 200 sequences (seconds); CLICKAGG_JVM_DIFF_SEQUENCES=1500 is the big run.
2. The same generated traffic through the streaming query on both paths, batch by batch.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import streaming
from clickagg.domain import durations, events, sessions
from clickagg.pipeline import archive, jvm_sessionizer, parse, stream

pytestmark = pytest.mark.spark

MIN = 60_000
HOUR = 60 * MIN
TIMEOUT_MS = 30 * MIN
WATERMARK_MS = 10 * MIN
#: 2026-03-01 (a month starts) and 2026-03-02 (a Monday: a week starts), 00:00 UTC.
MIDNIGHTS = (1_772_323_200_000, 1_772_409_600_000)
GRANULARITIES = ("15m", "1h", "1d", "1w", "1mo")
DIMENSIONS = (
    sessions.DimensionSource("channel", "channel", "visit"),
    sessions.DimensionSource("campaign", "campaign", "visit"),
    sessions.DimensionSource("content", "page", "event"),
    sessions.DimensionSource("landing_page", "page", "visit"),
    sessions.DimensionSource("offer", "offer", "event"),
    sessions.DimensionSource("visitor_type", "visitor_type", "visit"),
)
#: Blank, absent, non-breaking and other Unicode whitespace, accents, outside the BMP.
ODD = ("", "  ", None, "\u00a0", "\x85", "\u2007x", "é", "😀")
VALUES = ("a", "b", "/cart", *ODD, "z")
TYPES = (*sorted(events.KNOWN_TYPES), "custom")
REVENUES = (19.99, 0.1, 0.2, 1e-3, 100.0, 0.0, -5.0)
EVERY_CASE = {
    *(f"granularity {g}" for g in GRANULARITIES),
    "late",
    "disorder",
    "duplicate",
    "exact timeout gap",
    "across month start",
    "across week start",
    "revenue",
    *(f"value {v!r}" for v in ODD),
}
SEQUENCES = int(os.environ.get("CLICKAGG_JVM_DIFF_SEQUENCES", "200"))

Step = tuple[int | None, dict[tuple[int, tuple[str, ...]], tuple[float, ...]]]


def visitor_events(rng: random.Random) -> list[dict[str, Any]]:
    """One visitor's events: 1-4 visits around midnight, gaps at and around the timeout."""
    ts = rng.choice(MIDNIGHTS) - rng.randrange(0, 2 * HOUR)
    records: list[dict[str, Any]] = []
    for visit in range(rng.randint(1, 4)):
        if visit:
            ts += rng.choice((TIMEOUT_MS, TIMEOUT_MS + 1, TIMEOUT_MS + rng.randrange(2, 3 * HOUR)))
        for _ in range(rng.randint(1, 6)):
            kind = rng.choice(TYPES)
            records.append(
                {
                    "event_id": f"e{len(records)}-{rng.randrange(3)}",
                    "ts_ms": ts,
                    "type": kind,
                    "revenue": rng.choice(REVENUES)
                    if kind == events.ORDER or rng.random() < 0.1
                    else None,
                    **{
                        field: rng.choice(VALUES)
                        for field in ("channel", "campaign", "page", "offer")
                    },
                }
            )
            if rng.random() < 0.15:  # the same event delivered twice
                records.append(dict(rng.choice(records)))
            ts += rng.choice((0, 1, 9_999, 10_000, TIMEOUT_MS, rng.randrange(0, TIMEOUT_MS)))
    return records


def batches(rng: random.Random, records: list[dict[str, Any]]) -> list[tuple[int, list[Any]]]:
    """Arrival order (most within the watermark, some late), cut into batches, each with
    the watermark Spark would give it; then batches that close and forget the visits."""

    def delay() -> int:  # none, within the watermark, or late
        late = rng.randrange(WATERMARK_MS, 4 * WATERMARK_MS)
        return rng.choice((0, rng.randrange(WATERMARK_MS), late))

    arriving = sorted(records, key=lambda r: r["ts_ms"] + delay())
    steps: list[tuple[int, list[Any]]] = []
    newest = None
    while arriving:
        size = rng.randint(1, 5)
        watermark = 0 if newest is None else newest - WATERMARK_MS
        batch, arriving = arriving[:size], arriving[size:]
        steps.append((watermark, batch))
        newest = max([newest or 0, *(r["ts_ms"] for r in batch)])
    assert newest is not None
    for watermark in (
        newest + TIMEOUT_MS,
        newest + TIMEOUT_MS + 1,
        newest + sessions.VISITOR_MEMORY_MS + 1,
    ):
        steps.append((watermark, []))
    return steps


def config_for(granularity: str) -> sessions.Config:
    return sessions.Config(durations.parse(granularity), TIMEOUT_MS, DIMENSIONS)


def counted(record: dict[str, Any], config: sessions.Config) -> sessions.Counted:
    """As the Python sessionizer reads an event (pipeline/sessionize.py)."""
    revenue = record["revenue"]
    revenue = 0.0 if revenue is None or revenue != revenue else float(revenue)
    return sessions.Counted(
        record["ts_ms"],
        record["event_id"],
        record["type"],
        revenue,
        sessions.values_of(record, config),
    )


def python_steps(steps: list[tuple[int, list[Any]]], config: sessions.Config) -> list[Step]:
    state = sessions.VisitorState()
    out: list[Step] = []
    for watermark, batch in steps:
        facts, next_check = sessions.advance(
            state, [counted(r, config) for r in batch], watermark, config
        )
        state = sessions.load_state(sessions.dump_state(state))  # as the state store keeps it
        out.append(
            (
                next_check,
                {
                    (f.bucket_ms, f.values): tuple(
                        float(f.deltas.get(n, 0.0)) for n in sessions.FIELDS
                    )
                    for f in facts
                },
            )
        )
    return out


def jvm_steps(
    scenario: Callable[[str, str], str],
    steps: list[tuple[int, list[Any]]],
    config: sessions.Config,
) -> tuple[list[Step], list[int]]:
    """The same batches through io.clickagg.sessionizer.Scenario; also the state's bytes."""

    def hexed(value: str | None) -> str:
        return "-" if value is None else value.encode().hex()

    lines = []
    for watermark, batch in steps:
        lines.append(f"W\t{watermark}")
        for r in batch:
            revenue = 0.0 if r["revenue"] is None else float(r["revenue"])
            fields = [
                str(r["ts_ms"]),
                hexed(r["event_id"]),
                hexed(r["type"]),
                str(_bits(revenue)),
                *(hexed(r.get(d.field)) for d in config.dimensions),
            ]
            lines.append("\t".join(["E", *fields]))
    out: list[Step] = []
    sizes: list[int] = []
    for line in scenario(jvm_sessionizer.config_text(config), "\n".join(lines)).splitlines():
        parts = line.split("\t")
        if parts[0] == "S":
            out.append((None if parts[1] == "-" else int(parts[1]), {}))
            sizes.append(int(parts[2]))
            continue
        values = tuple(bytes.fromhex(v).decode() for v in parts[2].split(",")) if parts[2] else ()
        amounts = tuple(_float(int(b)) for b in parts[3].split(","))
        out[-1][1][(int(parts[1]), values)] = amounts
    return out, sizes


def _bits(value: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", value))[0])


def _float(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<q", bits))[0])


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


def cases(granularity: str, steps: list[tuple[int, list[Any]]]) -> set[str]:
    """The case classes one sequence exercises, so that a smaller run still proves each."""
    records = [r for _, batch in steps for r in batch]
    times = sorted({r["ts_ms"] for r in records})
    found = {f"granularity {granularity}"}
    found |= {"late" for w, batch in steps if any(r["ts_ms"] < w for r in batch)}
    arrived = [r["ts_ms"] for r in records]
    found |= {"disorder"} if arrived != sorted(arrived) else set()
    ids = [r["event_id"] for r in records]
    found |= {"duplicate"} if len(ids) > len(set(ids)) else set()
    found |= {"exact timeout gap" for x, y in itertools.pairwise(times) if y - x == TIMEOUT_MS}
    for name, midnight in (("month", MIDNIGHTS[0]), ("week", MIDNIGHTS[1])):
        found |= {f"across {name} start"} if times[0] < midnight <= times[-1] else set()
    found |= {f"value {v!r}" for r in records for v in (r["channel"], r["page"]) if v in ODD}
    found |= {"revenue" for r in records if r["revenue"] is not None}
    return found


def test_random_sequences_give_identical_deltas(spark: Any) -> None:
    scenario = spark._jvm.io.clickagg.sessionizer.Scenario.run
    rng = random.Random(20261130)
    closing = sessions.FIELDS.index("closed_visits")
    batches_compared = facts = closed = 0
    differences: list[str] = []
    sizes: list[int] = []
    covered: set[str] = set()
    for number in range(SEQUENCES):
        granularity = GRANULARITIES[number % len(GRANULARITIES)]
        config = config_for(granularity)
        steps = batches(rng, visitor_events(rng))
        covered |= cases(granularity, steps)
        want = python_steps(steps, config)
        got, step_sizes = jvm_steps(scenario, steps, config)
        sizes += step_sizes
        assert len(got) == len(want)
        for index, (wanted, gotten) in enumerate(zip(want, got, strict=True)):
            batches_compared += 1
            facts += len(wanted[1])
            closed += sum(1 for a in wanted[1].values() if a[closing])
            differences += [f"sequence {number} batch {index} {d}" for d in compare(wanted, gotten)]
    print(
        f"\n{SEQUENCES} sequences, {batches_compared} batches, {facts} facts ({closed} closing "
        f"a visit), {len(differences)} differences; state bytes max {max(sizes)}"
    )
    assert not differences, "\n".join(differences[:20])
    assert closed > SEQUENCES  # visits did close, and were compared
    missing = EVERY_CASE - covered
    assert not missing, f"not exercised: {sorted(missing)}"


def compare(want: Step, got: Step) -> list[str]:
    found = [f"next check {want[0]} vs {got[0]}"] if want[0] != got[0] else []
    for key in want[1].keys() | got[1].keys():
        a, b = want[1].get(key), got[1].get(key)
        if a is None or b is None or not _same(a, b):
            found.append(f"{key}: {a} vs {b}")
    return found


def test_the_streaming_query_gives_identical_deltas_on_both_paths(
    spark: Any, tmp_path: Path
) -> None:
    now_ms = int(time.time() * 1000)
    start_ms = now_ms // (24 * HOUR) * 24 * HOUR - HOUR  # across the last midnight
    aggregation = streaming.aggregation_for(tmp_path / "landing", "http://unused", "diff-run")
    paths = archive.JobPaths(str(tmp_path / "data"))
    lines = [item.line for item in streaming.traffic_lines(start_ms, 2, visitors=40, seed=5)]
    half = len(lines) // 2 + 1
    # Two archive files of traffic, in arrival order (the second meets the state the first
    # left), the second with a sentinel that moves the watermark past every visit; two runs
    # without new files: the watermark moves, then timers fire. Each run starts a query per
    # path, and both paths run side by side: query starts, not events, are the cost here,
    # so few visitors (the random sequences above cover the cases).
    steps = [lines[:half], [*lines[half:], streaming.sentinel(start_ms + 5 * HOUR)], [], []]
    collected: dict[str, list[dict[tuple[Any, ...], tuple[float, ...]]]] = {"python": [], "jvm": []}
    for step, step_lines in enumerate(steps):
        if step_lines:
            _archive(step_lines, paths, step)
        queries = [
            _started(spark, aggregation, paths, path, batches_seen)
            for path, batches_seen in collected.items()
        ]
        for query in queries:
            query.awaitTermination()
        assert len(collected["python"]) == len(collected["jvm"]), f"step {step}"
    assert collected["python"] == collected["jvm"]
    closing = sessions.FIELDS.index("closed_visits")
    facts = [a for batch in collected["jvm"] for a in batch.values()]
    print(f"\n{len(collected['jvm'])} batches, {len(facts)} facts, both paths equal")
    assert sum(a[closing] for a in facts) > 20


def _archive(lines: list[bytes], paths: archive.JobPaths, step: int) -> None:
    """The lines as the ingest query archives them (its parser), as one step's files,
    arriving as ingest batch `step` from one file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = f"step{step}"
    batch = pa.RecordBatch.from_pydict(
        {"value": lines, "arrival_source": [name] * len(lines), "arrival_split": [0] * len(lines)},
        schema=pa.schema(
            [("value", pa.binary()), ("arrival_source", pa.string()), ("arrival_split", pa.int64())]
        ),
    )
    settings = parse.ParseSettings(arrival_batch=step, arrival_ms=int(time.time() * 1000))
    parsed = pa.Table.from_batches(
        list(parse.parse_batches(iter([batch]), settings)), archive.SCHEMA
    )
    pq.write_to_dataset(
        parsed,
        paths.archive,
        partition_cols=list(archive.PARTITIONS),
        basename_template=f"{name}-{{i}}.parquet",
    )


def _started(
    spark: Any,
    aggregation: Any,
    paths: archive.JobPaths,
    path: str,
    into: list[dict[tuple[Any, ...], tuple[float, ...]]],
) -> Any:
    """One availableNow run of the aggregate query's sessionizing part on `path`, started;
    it appends the facts of each batch to `into`."""

    def collect(frame: Any, _: int) -> None:
        batch: dict[tuple[Any, ...], tuple[float, ...]] = {}
        for row in frame.collect():
            key = (row["visitor"], row["bucket_ms"], tuple(row["dims"]), row["bot"])
            amounts = tuple(row["amounts"])
            before = batch.get(key)
            batch[key] = (
                amounts
                if before is None
                else tuple(x + y for x, y in zip(before, amounts, strict=True))
            )  # bots: one row per event (Python) or per bucket (JVM)
        into.append(batch)

    spark.conf.set(jvm_sessionizer.CONF, path)  # read once, when the plan is built
    try:
        facts = stream.sessionized_facts(spark, aggregation, paths)
    finally:
        spark.conf.unset(jvm_sessionizer.CONF)
    return (
        facts.writeStream.foreachBatch(collect)
        .option("checkpointLocation", paths.checkpoint(f"diff-{path}"))
        .trigger(availableNow=True)
        .start()
    )
