"""The stream's rates from its micro-batches, and the executors that would keep up."""

from __future__ import annotations

import pytest

from clickagg.domain import capacity

pytestmark = pytest.mark.unit

BOUNDS = capacity.Bounds(minimum=1, maximum=8)


def batches(rows: int, every_ms: int, took_ms: int, count: int = 5) -> list[capacity.Batch]:
    return [capacity.Batch(rows, index * every_ms, took_ms) for index in range(count)]


def test_rows_that_arrive_between_starts_are_the_input_and_execution_time_the_processing() -> None:
    # 1,000 rows every 2 s, each batch done in 0.5 s: keeps up with room to spare.
    measured = capacity.rates(batches(1_000, 2_000, 500), executors=2)
    assert measured == capacity.Rates(500.0, 2_000.0, 2)
    assert not capacity.falls_behind(measured)


def test_growing_batches_back_to_back_fall_behind() -> None:
    # Each batch takes all that arrived while the previous one ran, and takes longer than that.
    window = [
        capacity.Batch(1_000, 0, 2_000),
        capacity.Batch(1_500, 2_000, 3_000),
        capacity.Batch(2_250, 5_000, 4_500),
    ]
    measured = capacity.rates(window, executors=2)
    assert measured is not None
    assert measured.input_per_second == pytest.approx(750.0)
    assert measured.processed_per_second == pytest.approx(4_750 / 9.5)
    assert capacity.falls_behind(measured)
    # 250 rows/s per executor; 750 rows/s with 25 % to spare needs 4.
    assert capacity.executors_needed(measured) == 4


def test_only_the_last_window_of_batches_counts() -> None:
    old = batches(10, 1_000, 900, count=10)
    recent = [capacity.Batch(1_000, 10_000 + i * 1_000, 100) for i in range(capacity.WINDOW)]
    measured = capacity.rates([*old, *recent], executors=1)
    assert measured == capacity.Rates(1_000.0, 10_000.0, 1)


@pytest.mark.parametrize(
    "window",
    [[], [capacity.Batch(5, 0, 10)], [capacity.Batch(5, 0, 0), capacity.Batch(5, 0, 0)]],
)
def test_no_rates_before_two_timed_batches(window: list[capacity.Batch]) -> None:
    assert capacity.rates(window, executors=1) is None


def test_nothing_processed_gives_no_advice() -> None:
    assert capacity.executors_needed(capacity.Rates(100.0, 0.0, 2)) is None


@pytest.mark.parametrize(
    ("current", "measured", "expected"),
    [
        (2, capacity.Rates(750.0, 500.0, 2), 4),  # behind: up to the advice
        (2, capacity.Rates(5_000.0, 500.0, 2), 8),  # behind beyond the bound: the maximum
        (4, capacity.Rates(900.0, 1_000.0, 4), 4),  # keeps up: stays
        (6, capacity.Rates(100.0, 3_000.0, 6), 1),  # idle half: down to the advice
        (3, capacity.Rates(700.0, 1_000.0, 3), 3),  # 3 would do; 2 saves too little
        (1, capacity.Rates(0.0, 1_000.0, 1), 1),  # never below the minimum
    ],
)
def test_autoscaling_moves_within_bounds(
    current: int, measured: capacity.Rates, expected: int
) -> None:
    assert capacity.autoscaled(current, measured, BOUNDS) == expected


def test_a_minimum_above_the_advice_holds() -> None:
    bounds = capacity.Bounds(minimum=3, maximum=8)
    assert capacity.autoscaled(6, capacity.Rates(10.0, 3_000.0, 6), bounds) == 3


def test_the_job_reads_at_ingests_rate_and_processes_at_the_slower_querys() -> None:
    ingest = batches(1_000, 1_000, 250)  # 1,000 rows/s in, 4,000 rows/s through
    aggregate = batches(1_000, 1_000, 2_000)  # 500 rows/s through
    measured = capacity.job_rates(ingest, aggregate, executors=2)
    assert measured == capacity.Rates(1_000.0, 500.0, 2)
    assert capacity.job_rates(ingest, aggregate[:1], executors=2) is None
