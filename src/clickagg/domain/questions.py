"""A KPI question checked against an Aggregation: which cuboid and level answer it.

The query service turns request parameters into these values; anything wrong raises
`errors.QuestionError` naming the parameter, so the answer is a 4xx that says what to fix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from clickagg import errors
from clickagg.domain import buckets, durations, kpis, model, plan

#: A time series never has more points than this; a longer range takes a coarser level.
MAX_SERIES_BUCKETS = 2000
#: A breakdown sums at most this many buckets of its level (30 days of 1-minute buckets).
MAX_BREAKDOWN_BUCKETS = 43_200


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in epoch milliseconds, UTC."""

    start_ms: int
    end_ms: int

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms

    def previous(self) -> TimeRange:
        """The period of the same length just before this one."""
        return TimeRange(self.start_ms - self.span_ms, self.start_ms)


@dataclass(frozen=True)
class Filter:
    """Only cells whose `dimension` has `value`."""

    dimension: str
    value: str


@dataclass(frozen=True)
class CuboidChoice:
    cuboid: model.Cuboid
    exact: bool  # False: summed over the cuboid's other dimensions by faceting
    reason: str


@dataclass(frozen=True)
class LevelChoice:
    level: model.Level
    range: TimeRange  # the asked range widened to whole buckets of the level
    reason: str


def instant(text: str, now_ms: int, parameter: str) -> int:
    """`now`, `now-15m` (any duration of durations.parse), or an ISO 8601 instant (UTC when
    it has no offset), as epoch ms."""
    raw = text.strip()
    if raw == "now":
        return now_ms
    if raw.startswith("now-"):
        try:
            span = durations.parse(raw.removeprefix("now-"))
        except ValueError as exc:
            raise errors.QuestionError(parameter, f"'{raw}': {exc}") from None
        return buckets.subtract(now_ms, span)
    try:
        stamp = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise errors.QuestionError(
            parameter,
            f"'{raw}' is not a time: use an ISO 8601 instant like 2026-11-30T10:00:00Z, "
            "`now` or `now-15m`",
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return round(stamp.timestamp() * 1000)


def time_range(start: str, end: str, now_ms: int) -> TimeRange:
    asked = TimeRange(instant(start, now_ms, "from"), instant(end, now_ms, "to"))
    if asked.span_ms <= 0:
        raise errors.QuestionError("to", f"'{end}' is not after from='{start}'")
    return asked


def kpi(aggregation: model.Aggregation, name: str, parameter: str = "kpi") -> str:
    if name not in aggregation.kpis:
        known = ", ".join(aggregation.kpis)
        what = "is not declared by" if name in kpis.CATALOGUE else "is not a KPI of"
        raise errors.QuestionError(
            parameter, f"'{name}' {what} Aggregation {aggregation.name}; known: {known}"
        )
    return name


def dimension(aggregation: model.Aggregation, name: str, parameter: str = "dimension") -> str:
    declared = [d.name for d in aggregation.dimensions]
    if name not in declared:
        raise errors.QuestionError(
            parameter,
            f"'{name}' is not a dimension of Aggregation {aggregation.name}; "
            f"known: {', '.join(declared)}",
        )
    return name


def filters(aggregation: model.Aggregation, texts: Sequence[str]) -> tuple[Filter, ...]:
    """`dimension:value` texts; a dimension may be filtered once."""
    parsed: list[Filter] = []
    for text in texts:
        name, colon, value = text.partition(":")
        if not colon or not value:
            raise errors.QuestionError("filter", f"'{text}' is not of the form dimension:value")
        if any(f.dimension == name for f in parsed):
            raise errors.QuestionError("filter", f"dimension '{name}' is filtered twice")
        parsed.append(Filter(dimension(aggregation, name, "filter"), value))
    return tuple(parsed)


def cuboid_for(
    aggregation: model.Aggregation, dimensions: Iterable[str], parameter: str
) -> CuboidChoice:
    """The smallest declared cuboid holding every one of `dimensions` (fewest possible cells).

    Additive state of a larger cuboid sums to the smaller combination exactly, since every
    event and visit is in exactly one cell of each cuboid; so a combination no cuboid
    materialises is answered by faceting a larger one.
    """
    wanted = set(dimensions)
    shown = " + ".join(sorted(wanted)) or model.TOTALS
    holding = [c for c in aggregation.cuboids if wanted <= set(c.dimensions)]
    if not holding:
        declared = ", ".join(f"[{', '.join(c.dimensions)}]" for c in aggregation.cuboids)
        raise errors.QuestionError(
            parameter,
            f"no cuboid of Aggregation {aggregation.name} holds {shown}: a cuboid with "
            f"dimensions [{', '.join(sorted(wanted))}] (or more) would answer it; "
            f"declared: {declared}",
        )
    smallest = min(holding, key=lambda c: (plan.combinations(aggregation, c), c.name))
    if len(smallest.dimensions) == len(wanted):
        return CuboidChoice(smallest, True, f"cuboid {smallest.name} materialises {shown}")
    return CuboidChoice(
        smallest,
        False,
        f"no cuboid materialises {shown}; summed by faceting cuboid {smallest.name}, "
        "the smallest that holds it",
    )


def bucket_count(level: model.Level, wanted: TimeRange, bound: int) -> int:
    """Buckets of `level` that [start, end) touches, counted up to bound + 1."""
    if not level.granularity.is_calendar:
        size = level.granularity.seconds * 1000
        first = buckets.floor(wanted.start_ms, level.granularity)
        return -(-(wanted.end_ms - first) // size)
    count, start = 0, buckets.floor(wanted.start_ms, level.granularity)
    while start < wanted.end_ms and count <= bound:
        count, start = count + 1, buckets.end(start, level.granularity)
    return count


def aligned(level: model.Level, wanted: TimeRange) -> TimeRange:
    """The range widened to whole buckets of the level."""
    last = buckets.floor(wanted.end_ms - 1, level.granularity)
    return TimeRange(
        buckets.floor(wanted.start_ms, level.granularity), buckets.end(last, level.granularity)
    )


def covers(level: model.Level, start_ms: int, now_ms: int) -> bool:
    """True when the level still keeps the bucket holding `start_ms`."""
    if level.retention is None:
        return True
    horizon = buckets.floor(buckets.subtract(now_ms, level.retention), level.granularity)
    return buckets.floor(start_ms, level.granularity) >= horizon


def choose_level(
    aggregation: model.Aggregation,
    wanted: TimeRange,
    now_ms: int,
    *,
    asked: str | None,
    with_documents: Collection[str],
    max_buckets: int,
) -> LevelChoice:
    """The finest level that keeps the whole range, has documents, and stays within
    `max_buckets`; or the level asked for, if it can answer.

    Interim: the rollup issue's `domain.query` level choice replaces this function (same
    rule); levels without documents are skipped because rollups may not exist yet.
    """
    if asked is not None:
        return _asked_level(aggregation, wanted, now_ms, asked, max_buckets)
    notes: list[str] = []
    in_retention = [lvl for lvl in aggregation.levels if covers(lvl, wanted.start_ms, now_ms)]
    if not in_retention:
        kept = ", ".join(f"{lvl.name} keeps {lvl.retention_text}" for lvl in aggregation.levels)
        raise errors.QuestionError("from", f"the range starts outside every retention ({kept})")
    for level in aggregation.levels:
        if level not in in_retention:
            notes.append(f"{level.name} keeps only {level.retention_text}")
    candidates = [lvl for lvl in in_retention if lvl.name in with_documents] or in_retention
    for level in in_retention:
        if level not in candidates:
            notes.append(f"{level.name} has no documents yet")
    for level in candidates:
        count = bucket_count(level, wanted, max_buckets)
        if count <= max_buckets:
            reason = (
                f"{level.name}: the finest level that keeps the range, with {count} "
                f"bucket(s) of at most {max_buckets}"
            )
            return LevelChoice(level, aligned(level, wanted), "; ".join([reason, *notes]))
        notes.append(f"{level.name} would need {count}+ buckets")
    raise errors.QuestionError(
        "from", f"the range is too long: {'; '.join(notes)} (at most {max_buckets})"
    )


def _asked_level(
    aggregation: model.Aggregation, wanted: TimeRange, now_ms: int, asked: str, max_buckets: int
) -> LevelChoice:
    level = next((lvl for lvl in aggregation.levels if lvl.name == asked), None)
    if level is None:
        known = ", ".join(lvl.name for lvl in aggregation.levels)
        raise errors.QuestionError("level", f"'{asked}' is not a level; known: {known}")
    if not covers(level, wanted.start_ms, now_ms):
        raise errors.QuestionError(
            "from",
            f"level {level.name} keeps only {level.retention_text}; the range starts before that",
        )
    count = bucket_count(level, wanted, max_buckets)
    if count > max_buckets:
        raise errors.QuestionError(
            "level",
            f"{level.name} would need {count}+ buckets for this range "
            f"(at most {max_buckets}); ask a coarser level or a shorter range",
        )
    return LevelChoice(level, aligned(level, wanted), f"{level.name}: asked for")
