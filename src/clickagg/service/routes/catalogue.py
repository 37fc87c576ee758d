"""What is served (for the dashboard's choices), freshness, and health for the probes."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from clickagg import errors
from clickagg.domain import model
from clickagg.service import answers, served
from clickagg.service.routes import params

log = logging.getLogger(__name__)
router = APIRouter(tags=["catalogue"])
health_router = APIRouter(tags=["health"])


@router.get("/api/aggregations", response_model=answers.Catalogue)
async def catalogue(context: params.Context) -> answers.Catalogue:
    """Every served Aggregation: its dimensions, cuboids, KPIs and levels."""

    def read() -> answers.Catalogue:
        return answers.Catalogue(
            aggregations=[_info(context, a) for a in context.aggregations],
            refresh_seconds=context.settings.refresh_s,
        )

    return await context.answer(read)


@router.get("/api/{aggregation}/freshness", response_model=answers.Freshness)
async def freshness(context: params.Context, aggregation: str) -> answers.Freshness:
    """The newest complete bucket and the stream's lag."""
    served_aggregation = context.aggregation(aggregation)
    return await context.answer(lambda: context.freshness(served_aggregation))


@health_router.get(
    "/healthz", response_model=answers.Health, responses={503: {"model": answers.Health}}
)
async def health(context: params.Context) -> JSONResponse:
    """200 when Solr answers, 503 otherwise (`credentials refused` when Solr refuses the
    service's user): the readiness probe takes the pod out of the Service while it cannot
    answer."""
    state = "unreachable"
    try:
        if await context.answer(context.store.healthy):
            return JSONResponse({"solr": "ok"})
    except errors.SolrUnreachable:
        pass
    except errors.SolrAuthError as exc:
        log.error("/healthz: Solr refused the service's credentials: %s", exc)
        state = "credentials refused"
    retry = str(context.settings.retry_after_s)
    return JSONResponse({"solr": state}, status_code=503, headers={"Retry-After": retry})


@health_router.get("/livez", response_model=answers.Health)
async def live() -> answers.Health:
    """The process answers; Solr is not asked (restarting the pod would not bring it back)."""
    return answers.Health(solr="not checked")


def _info(context: served.Served, aggregation: model.Aggregation) -> answers.AggregationInfo:
    with_documents = context.levels_with_documents(aggregation)
    return answers.AggregationInfo(
        name=aggregation.name,
        dimensions=[d.name for d in aggregation.dimensions],
        cuboids=[list(c.dimensions) for c in aggregation.cuboids],
        kpis=list(aggregation.kpis),
        levels=[
            answers.LevelInfo(
                name=level.name,
                granularity=str(level.granularity),
                retention=level.retention_text,
                collection=level.collection,
                has_documents=level.name in with_documents,
            )
            for level in aggregation.levels
        ],
        freshness=context.freshness(aggregation),
    )
