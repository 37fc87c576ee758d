"""Query parameters shared by the routers, and the pieces every answer carries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from clickagg.domain import buckets, model, questions, steering
from clickagg.service import answers, served

From = Annotated[
    str, Query(alias="from", description="Start: ISO 8601, `now` or `now-<duration>`.")
]
To = Annotated[
    str, Query(alias="to", description="End (exclusive): ISO 8601, `now` or `now-<duration>`.")
]
Filters = Annotated[
    list[str] | None,
    Query(alias="filter", description="`dimension:value`; repeat for more dimensions."),
]
Level = Annotated[
    str | None, Query(description="A level name (e.g. 15m); chosen by the range when empty.")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="How many values to return.")]
MinBase = Annotated[
    float,
    Query(ge=0, description="Smallest base (a ratio's denominator, or the count) to trust."),
]
DEFAULT_MIN_BASE = float(steering.MIN_BASE)


def served_of(request: Request) -> served.Served:
    context: served.Served = request.app.state.served
    return context


Context = Annotated[served.Served, Depends(served_of)]


def level_used(level: model.Level, span: buckets.Span, reason: str) -> answers.LevelUsed:
    return answers.LevelUsed(
        level=level.name,
        reason=reason,
        start=buckets.iso(span.start_ms),
        end=buckets.iso(span.end_ms),
    )


def cuboid_used(choice: questions.CuboidChoice) -> answers.CuboidUsed:
    return answers.CuboidUsed(cuboid=choice.cuboid.name, exact=choice.exact, reason=choice.reason)


def row(ranked: steering.Ranked) -> answers.Row:
    return answers.Row(
        value=ranked.value,
        kpi=ranked.kpi,
        base=ranked.base,
        small=ranked.small,
        state=dict(ranked.state),
    )
