"""A KPI question checked against an Aggregation: which cuboid and level answer it.

The query service turns request parameters into these values; anything wrong raises
`errors.QuestionError` naming the parameter, so the answer is a 4xx that says what to fix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from clickagg import errors
from clickagg.domain import buckets, durations, kpis, model, plan, query

#: A time series never has more points than this; a longer range takes a coarser level.
MAX_SERIES_BUCKETS = 2000
#: A breakdown sums at most this many buckets of its level (30 days of 1-minute buckets).
MAX_BREAKDOWN_BUCKETS = 43_200


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


def time_range(start: str, end: str, now_ms: int) -> buckets.Span:
    asked = buckets.Span(instant(start, now_ms, "from"), instant(end, now_ms, "to"))
    if asked.end_ms <= asked.start_ms:
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


def level_for(
    aggregation: model.Aggregation,
    wanted: buckets.Span,
    now_ms: int,
    *,
    asked: str | None,
    with_documents: Collection[str],
    max_buckets: int,
) -> query.LevelChoice:
    """The level `query.choose_level` picks for the range, among the levels that hold
    documents (rollups may not exist yet; all levels when none does), or the level asked
    for; a QuestionError on `level` (asked) or `from` when none can answer."""
    if asked is not None:
        levels = [_level_named(aggregation, asked)]
        skipped, parameter = ["asked for"], "level"
    else:
        levels = [lvl for lvl in aggregation.levels if lvl.name in with_documents]
        skipped = [f"{lvl.name} has no documents yet" for lvl in aggregation.levels
                   if levels and lvl not in levels]  # fmt: skip
        levels, parameter = levels or list(aggregation.levels), "from"
    choice = query.choose_level(levels, wanted, now_ms=now_ms, max_buckets=max_buckets)
    if isinstance(choice, query.NoLevel):
        raise errors.QuestionError(parameter, f"{choice.reason} (at most {max_buckets} buckets)")
    return dataclasses.replace(choice, reason="; ".join([*skipped, choice.reason]))


def _level_named(aggregation: model.Aggregation, name: str) -> model.Level:
    level = next((lvl for lvl in aggregation.levels if lvl.name == name), None)
    if level is None:
        known = ", ".join(lvl.name for lvl in aggregation.levels)
        raise errors.QuestionError("level", f"'{name}' is not a level; known: {known}")
    return level
