"""Rollups: which coarser buckets are complete, what each level has rolled up, and what a
finer bucket settled again makes redo.

Each coarser level is built from the next finer one (validation makes its buckets whole
numbers of finer ones). A level's *rollup watermark* is its last rolled-up bucket: every
bucket up to and including it has been written from complete input. The input of a level
is complete up to its *input end*: the finest level's settled end (domain.settle) for the
first coarser level, the end of the finer level's last rolled-up bucket for the others.

A coarser cell is the finer cells with the same cuboid and dimension values in its
buckets: count and sum fields summed, the HLL sketch merged (`combine_rules`), never
ratios; its id is `cells.doc_id` at the coarser level, so a rerun overwrites it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from clickagg.domain import buckets, cells, kpis, model


def parent(bucket_ms: int, coarser: model.Level) -> int:
    """The coarser bucket a finer bucket rolls up into."""
    return buckets.floor(bucket_ms, coarser.granularity)


def children(coarse_bucket_ms: int, coarser: model.Level) -> buckets.Span:
    """The span a coarser bucket covers: its finer buckets are `buckets.starts` of it."""
    return buckets.Span(coarse_bucket_ms, buckets.end(coarse_bucket_ms, coarser.granularity))


def parent_doc_id(coarser: model.Level, bucket_ms: int, cuboid: str, values: Sequence[str]) -> str:
    """The id of the coarser document a finer cell adds to."""
    return cells.doc_id(coarser.name, parent(bucket_ms, coarser), cuboid, values)


CombineRule = Literal["sum", "merge"]


def combine_rules(state_fields: Iterable[str]) -> tuple[tuple[str, CombineRule], ...]:
    """Per Solr field of a cell's state, how finer cells combine into a coarser one; the
    bot count of `__bots__` documents sums too."""
    rules: list[tuple[str, CombineRule]] = [
        (cells.solr_field(name), "merge" if kpis.STATE_FIELDS[name].kind == "sketch" else "sum")
        for name in state_fields
    ]
    return (*rules, (cells.BOT_EVENTS_FIELD, "sum"))


def complete_end(input_end_ms: int, coarser: model.Level) -> int:
    """The start of the oldest incomplete coarser bucket, given the input's end: every
    coarser bucket starting before it has all its finer buckets."""
    return buckets.floor(input_end_ms, coarser.granularity)


def rolled_up_end(last_bucket_ms: int | None, level: model.Level) -> int | None:
    """The end of a level's last rolled-up bucket (None: nothing rolled up yet): the input
    end of the next coarser level."""
    return None if last_bucket_ms is None else buckets.end(last_bucket_ms, level.granularity)


def input_end(
    levels: Sequence[model.Level],
    index: int,
    settled_end_ms: int | None,
    last_rolled_up: Mapping[str, int | None],
) -> int | None:
    """Where the input of `levels[index]` (a coarser level) is complete up to: the finest
    level's settled end, or the finer level's rolled-up end (None: nothing yet)."""
    if index < 1:
        raise ValueError("the finest level is streamed, not rolled up")
    if index == 1:
        return settled_end_ms
    finer = levels[index - 1]
    return rolled_up_end(last_rolled_up.get(finer.name), finer)


@dataclass(frozen=True)
class Step:
    """One rollup run of a level: the coarser buckets to build, and its watermark after."""

    level: str
    span: buckets.Span
    last_bucket_ms: int

    def __str__(self) -> str:
        return f"{self.level}: roll up {self.span}, then last rolled-up bucket " + (
            buckets.iso(self.last_bucket_ms)
        )


def next_step(
    coarser: model.Level,
    last_bucket_ms: int | None,
    input_end_ms: int | None,
    *,
    input_start_ms: int,
) -> Step | None:
    """The coarser buckets that are complete and not yet rolled up; None when there are
    none. `input_start_ms` is the oldest finer bucket, where a level with no watermark yet
    begins."""
    if input_end_ms is None:
        return None
    start = (
        buckets.end(last_bucket_ms, coarser.granularity)
        if last_bucket_ms is not None
        else parent(input_start_ms, coarser)
    )
    end = complete_end(input_end_ms, coarser)
    if end <= start:
        return None
    last = buckets.subtract(end, coarser.granularity)
    return Step(coarser.name, buckets.Span(start, end), last)


def redo(
    resettled: Iterable[int],
    levels: Sequence[model.Level],
    last_rolled_up: Mapping[str, int | None],
) -> dict[str, tuple[int, ...]]:
    """Per coarser level, the buckets already rolled up that finer buckets settled again
    (late data, a replay) make redo; the next coarser level redoes their parents in turn.
    Buckets not rolled up yet are left to the normal step."""
    redone: dict[str, tuple[int, ...]] = {}
    changed = set(resettled)
    for coarser in levels[1:]:
        last = last_rolled_up.get(coarser.name)
        parents = {parent(b, coarser) for b in changed}
        changed = {p for p in parents if last is not None and p <= last}
        redone[coarser.name] = tuple(sorted(changed))
    return redone


def behind_ms(
    coarser: model.Level,
    last_bucket_ms: int | None,
    input_end_ms: int | None,
    *,
    input_start_ms: int,
) -> int:
    """How much complete input a level has not rolled up yet (0: it is current)."""
    step = next_step(coarser, last_bucket_ms, input_end_ms, input_start_ms=input_start_ms)
    return 0 if step is None else step.span.end_ms - step.span.start_ms


@dataclass(frozen=True)
class Lag:
    """How far one coarser level trails its complete input."""

    level: model.Level
    behind_ms: int | None  # None: its input is complete somewhere, and nothing is rolled up
    input_end_ms: int | None

    @property
    def current(self) -> bool:
        """Within one schedule period (a bucket of the level: its job runs once per bucket)."""
        period_ms = int(self.level.granularity.approx_seconds * 1000)
        return self.behind_ms is not None and self.behind_ms <= period_ms

    def __str__(self) -> str:
        if self.behind_ms is None:
            return f"{self.level.name} has rolled up nothing yet"
        return f"{self.level.name} is {self.behind_ms // 60_000} min behind its input"


def lags(
    levels: Sequence[model.Level],
    settled_end_ms: int | None,
    last_rolled_up: Mapping[str, int | None],
) -> tuple[Lag, ...]:
    """Per coarser level, how much complete input it has not rolled up (0 when none)."""
    found = []
    for index, level in enumerate(levels[1:], start=1):
        end = input_end(levels, index, settled_end_ms, last_rolled_up)
        rolled = rolled_up_end(last_rolled_up.get(level.name), level)
        if end is None:
            behind: int | None = 0
        elif rolled is None:
            behind = None
        else:
            behind = max(complete_end(end, level) - rolled, 0)
        found.append(Lag(level, behind, end))
    return tuple(found)
