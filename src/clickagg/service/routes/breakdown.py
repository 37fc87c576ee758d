"""Breakdowns and top-N: the values of one dimension ranked by a KPI over a range."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from clickagg.domain import dimensions, kpis, questions, steering
from clickagg.service import answers
from clickagg.service.routes import params

router = APIRouter(tags=["breakdowns"])


@router.get("/api/{aggregation}/breakdown", response_model=answers.BreakdownAnswer)
async def breakdown(
    context: params.Context,
    aggregation: str,
    dimension: Annotated[str, Query(description="The dimension to rank the values of.")],
    kpi: Annotated[str, Query(description="The KPI to rank by.")],
    start: params.From,
    end: params.To,
    filter_texts: params.Filters = None,
    level: params.Level = None,
    limit: params.Limit = 10,
    order: Annotated[Literal["desc", "asc"], Query(description="Highest or lowest first.")] = (
        "desc"
    ),
    min_base: params.MinBase = params.DEFAULT_MIN_BASE,
    include_missing: Annotated[
        bool, Query(description=f"Also rank `{dimensions.MISSING}` (events without a value).")
    ] = False,
) -> answers.BreakdownAnswer:
    """Values whose base is below `min_base` are flagged `small` and ranked after the rest.

    A combination of dimension and filters that no cuboid materialises is answered by
    faceting the smallest cuboid that holds it (the answer says so); one that no cuboid
    holds is a 422 naming the cuboid that would answer it.
    """
    served_aggregation = context.aggregation(aggregation)
    name = questions.kpi(served_aggregation, kpi)
    ranked_by = questions.dimension(served_aggregation, dimension)
    filters = questions.filters(served_aggregation, filter_texts or [])
    cuboid = questions.cuboid_for(
        served_aggregation, [ranked_by, *(f.dimension for f in filters)], "dimension"
    )
    asked = questions.time_range(start, end, context.now_ms())
    fields = kpis.required_state([name])

    def read() -> answers.BreakdownAnswer:
        choice = context.choose_level(
            served_aggregation, asked, level, questions.MAX_BREAKDOWN_BUCKETS
        )
        found = context.store.breakdown(
            choice.level, cuboid.cuboid, ranked_by, filters, choice.span, fields
        )
        if not include_missing:
            found.pop(dimensions.MISSING, None)
        ranked = steering.leaders(
            found, name, limit=limit, min_base=min_base, descending=order == "desc"
        )
        return answers.BreakdownAnswer(
            aggregation=served_aggregation.name,
            dimension=ranked_by,
            kpi=name,
            filters={f.dimension: f.value for f in filters},
            min_base=min_base,
            level=params.level_used(choice.level, choice.span, choice.reason),
            cuboid=params.cuboid_used(cuboid),
            rows=[params.row(r) for r in ranked],
            freshness=context.freshness(served_aggregation),
        )

    return await context.answer(read)
