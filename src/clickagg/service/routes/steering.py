"""Steering: the current leaders of offers, contents or campaigns, and the movers whose KPI
changed most against the previous period of the same length."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from clickagg.domain import buckets, dimensions, kpis, questions, steering
from clickagg.service import answers
from clickagg.service.routes import params

router = APIRouter(tags=["steering"])

TRUST_RULE = (
    "a value is small (too small to trust) when the count its KPI rests on (a ratio's "
    "denominator, or the count itself) is below min_base in a period it is judged on; "
    "small values are listed after the trusted ones"
)


@router.get("/api/{aggregation}/steering", response_model=answers.SteeringAnswer)
async def steering_answer(
    context: params.Context,
    aggregation: str,
    dimension: Annotated[str, Query(description="Usually offer, content or campaign.")],
    kpi: Annotated[str, Query(description="The KPI to lead and move by.")],
    start: params.From,
    end: params.To,
    level: params.Level = None,
    limit: params.Limit = 5,
    min_base: params.MinBase = params.DEFAULT_MIN_BASE,
) -> answers.SteeringAnswer:
    """Both periods are read at one level: the one chosen for the two of them together."""
    served_aggregation = context.aggregation(aggregation)
    name = questions.kpi(served_aggregation, kpi)
    ranked_by = questions.dimension(served_aggregation, dimension)
    cuboid = questions.cuboid_for(served_aggregation, [ranked_by], "dimension")
    asked = questions.time_range(start, end, context.now_ms())
    fields = kpis.required_state([name])

    def read() -> answers.SteeringAnswer:
        both = buckets.Span(asked.previous().start_ms, asked.end_ms)
        choice = context.choose_level(
            served_aggregation, both, level, questions.MAX_BREAKDOWN_BUCKETS
        )
        now = asked.aligned(choice.level.granularity)
        before = now.previous()

        def read_period(span: buckets.Span) -> dict[str, dict[str, float]]:
            found = context.store.breakdown(
                choice.level, cuboid.cuboid, ranked_by, (), span, fields
            )
            found.pop(dimensions.MISSING, None)
            return found

        current, previous = read_period(now), read_period(before)
        moves = steering.movers(current, previous, name, limit=limit, min_base=min_base)
        return answers.SteeringAnswer(
            aggregation=served_aggregation.name,
            dimension=ranked_by,
            kpi=name,
            min_base=min_base,
            trust_rule=TRUST_RULE,
            level=params.level_used(choice.level, now, choice.reason),
            previous=params.level_used(choice.level, before, "the previous period"),
            cuboid=params.cuboid_used(cuboid),
            leaders=[
                params.row(r)
                for r in steering.leaders(current, name, limit=limit, min_base=min_base)
            ],
            movers=[_mover(m) for m in moves],
            freshness=context.freshness(served_aggregation),
        )

    return await context.answer(read)


def _mover(move: steering.Move) -> answers.Mover:
    return answers.Mover(
        value=move.value,
        change=move.change,
        small=move.small,
        now=params.row(move.now),
        before=params.row(move.before),
    )
