"""Can the stream keep up? Its rates from Spark's progress, and the executors that would.

Rows of micro-batch i arrived while batch i-1 ran (or waited for its trigger), so over a
window of batches the input rate is the rows of all but the first over the time between the
first and the last batch's start, and the processing rate is all their rows over the time
their execution took. A stream whose processing rate is below its input rate falls behind
(the Structured Streaming guide's reading of inputRowsPerSecond and processedRowsPerSecond).
Without a per-trigger cap (maxFilesPerTrigger, maxOffsetsPerTrigger) a batch takes all that
arrived, so the input rate is the arrival rate; a capped stream measures at most its cap.

The job runs two queries in a row: ingest reads the source, aggregate reads what ingest
archived. The job's input rate is ingest's (rows arriving at the source); its processing
rate is the slower of the two, since either one falling behind holds the stream back.

The advice assumes the processing rate grows with the executors (a stateful query's shuffle
partitions spread over them): per executor it is the processing rate over the executors
that measured it. Pure functions, no I/O: the job measures, the operator advises.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Batches the rates are measured over: one slow batch is noise, five are a trend.
WINDOW = 5
#: Advise for this much more than today's input: a stream that only just keeps up builds lag
#: on every burst.
HEADROOM = 1.25
#: Scale down only when this fraction of the executors would do (each change restarts the
#: stream, so small savings are not worth one).
SCALE_DOWN_AT = 0.5
#: Shuffle partitions per executor core: two keep each core busy while a task waits, where
#: Spark's default of 200 runs 200 state stores per stateful operator and batch.
PARTITIONS_PER_CORE = 2


@dataclass(frozen=True)
class Batch:
    """One micro-batch as Spark reported it."""

    rows: int
    started_ms: int
    duration_ms: int


@dataclass(frozen=True)
class Rates:
    """Rows per second in and through the stream, measured with `executors` executors."""

    input_per_second: float
    processed_per_second: float
    executors: int


@dataclass(frozen=True)
class Bounds:
    """The executor counts autoscaling may choose between (spec.spark.executor)."""

    minimum: int
    maximum: int


def rates(batches: Sequence[Batch], executors: int) -> Rates | None:
    """The rates over the last `WINDOW` batches; None until two batches have been seen or
    while none of them ran for a measurable time."""
    window = list(batches)[-WINDOW:]
    if len(window) < 2:
        return None
    span_ms = window[-1].started_ms - window[0].started_ms
    busy_ms = sum(batch.duration_ms for batch in window)
    if span_ms <= 0 or busy_ms <= 0:
        return None
    arrived = sum(batch.rows for batch in window[1:])
    processed = sum(batch.rows for batch in window)
    return Rates(arrived * 1000 / span_ms, processed * 1000 / busy_ms, max(executors, 1))


def job_rates(ingest: Sequence[Batch], aggregate: Sequence[Batch], executors: int) -> Rates | None:
    """The job's rates: input at the source (ingest), processing of the slower query."""
    read, applied = rates(ingest, executors), rates(aggregate, executors)
    if read is None or applied is None:
        return None
    slower = min(read.processed_per_second, applied.processed_per_second)
    return Rates(read.input_per_second, slower, read.executors)


def falls_behind(measured: Rates) -> bool:
    """True when rows arrive faster than the stream processes them."""
    return measured.input_per_second > measured.processed_per_second


def executors_needed(measured: Rates) -> int | None:
    """Executors whose summed per-executor rate covers the input with `HEADROOM`; None when
    nothing was processed (no per-executor rate to scale)."""
    if measured.processed_per_second <= 0:
        return None
    per_executor = measured.processed_per_second / measured.executors
    return max(math.ceil(measured.input_per_second * HEADROOM / per_executor), 1)


def autoscaled(current: int, measured: Rates, bounds: Bounds) -> int:
    """The executor count to run: up to the advice when the stream falls behind, down to it
    when half the executors or fewer would do, else `current`; always within `bounds`."""
    needed = executors_needed(measured)
    target = current
    if needed is not None and falls_behind(measured):
        target = max(current, needed)
    elif needed is not None and needed <= current * SCALE_DOWN_AT:
        target = needed
    return min(max(target, bounds.minimum), bounds.maximum)


def shuffle_partitions(cores_per_executor: int, most_executors: int) -> int:
    """spark.sql.shuffle.partitions for a job that may run on up to `most_executors`. A
    stream's state keeps the partition count of its first run for life, so it is sized for
    the most executors autoscaling may give it, not for today's."""
    return PARTITIONS_PER_CORE * cores_per_executor * most_executors


def per_second(value: float) -> str:
    """`1,234/s`, for messages."""
    return f"{value:,.0f}/s"
