"""Seeded draws: weighted and Zipf picks, geometric counts."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Iterator, Sequence


class Weighted:
    """Draws indexes by weight: bisect on the cumulative weights, one random() per draw."""

    __slots__ = ("_cumulative", "_last", "_total")

    def __init__(self, weights: Sequence[float]) -> None:
        running = 0.0
        cumulative = []
        for weight in weights:
            running += weight
            cumulative.append(running)
        self._cumulative = cumulative
        self._total = running
        self._last = len(cumulative) - 1

    def pick(self, rng: random.Random) -> int:
        index = bisect.bisect_right(self._cumulative, rng.random() * self._total)
        return min(index, self._last)  # random() * total may round up to total


def zipf(size: int, exponent: float) -> Weighted:
    return Weighted([1.0 / rank**exponent for rank in range(1, size + 1)])


def running_sum(values: Iterable[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def geometric(rng: random.Random, mean: float) -> int:
    """A count >= 0 with the given mean: how many more, when each is a coin toss."""
    if mean <= 0:
        return 0
    stop = 1.0 / (1.0 + mean)
    return int(math.log(1.0 - rng.random()) / math.log(1.0 - stop))


def weighted_index(rng: random.Random, weights: Sequence[float]) -> int:
    draw = rng.random() * sum(weights)
    for index, weight in enumerate(weights):
        draw -= weight
        if draw < 0:
            return index
    return len(weights) - 1
