"""The FastAPI application: routers, bearer-token check, error answers, optional CORS.

Errors answer as `answers.Problem`: a wrong question is a 4xx naming the parameter
(404 for an unknown Aggregation, 422 otherwise); Solr unreachable or too slow is a 503 with
`Retry-After`, and so is Solr refusing the service's credentials (its body says so).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

import clickagg
from clickagg import errors
from clickagg.service import served, settings
from clickagg.service.routes import breakdown, catalogue, dashboard, series, steering
from clickagg.store import client as solr
from clickagg.store import protocol, solr_kpis

log = logging.getLogger(__name__)


def create_app(config: settings.Settings, store: protocol.KpiStore | None = None) -> FastAPI:
    """The service for `config`; the store is Solr at `config.solr_url` unless given."""
    client = None
    if store is None:
        client = solr.SolrClient(
            config.solr_url,
            timeout=(min(2.0, config.solr_timeout_s), config.solr_timeout_s),
            connect_retries=1,
            auth=config.solr_auth,
            connections=64,
        )
        store = solr_kpis.SolrKpiStore(client)
    context = served.Served(config, store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        names = ", ".join(a.name for a in config.aggregations)
        log.info(
            "serving %s from Solr at %s (token %s, CORS %s)",
            names,
            config.solr_url,
            "required" if config.token else "off",
            ", ".join(config.cors_origins) or "off",
        )
        yield
        context.close()
        if client is not None:
            client.close()

    app = FastAPI(
        title="clickagg KPI service",
        version=clickagg.__version__,
        lifespan=lifespan,
        description="Live KPIs of clickagg Aggregations, read from SolrCloud.",
    )
    app.state.served = context
    guarded = [Depends(_bearer(config.token))]
    for router in (catalogue.router, series.router, breakdown.router, steering.router):
        app.include_router(router, dependencies=guarded)
    app.include_router(catalogue.health_router)
    app.include_router(dashboard.router)
    _answer_errors(app, config)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET"],
            allow_headers=["Authorization"],
        )
    return app


def _bearer(token: str | None) -> Callable[[Request], Awaitable[None]]:
    """A dependency that requires `Authorization: Bearer <token>` when a token is set."""
    expected = f"Bearer {token}".encode() if token else None

    async def check(request: Request) -> None:
        if expected is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                401,
                "a bearer token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def _answer_errors(app: FastAPI, config: settings.Settings) -> None:
    retry = {"Retry-After": str(config.retry_after_s)}

    @app.exception_handler(errors.QuestionError)
    async def question(_: Request, exc: errors.QuestionError) -> JSONResponse:
        status = 404 if isinstance(exc, errors.UnknownAggregation) else 422
        return JSONResponse({"detail": str(exc), "parameter": exc.parameter}, status)

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        parameter = str(first["loc"][-1]) if first.get("loc") else None
        return JSONResponse({"detail": f"{parameter}: {first['msg']}", "parameter": parameter}, 422)

    @app.exception_handler(errors.SolrAuthError)
    async def solr_refused(request: Request, exc: errors.SolrAuthError) -> JSONResponse:
        # A configuration fault, not an outage: said apart, at error level. The message names
        # the user and never carries the password.
        log.error(
            "%s: answering 503, Solr refused the service's credentials: %s", request.url.path, exc
        )
        detail = f"Solr refused the service's credentials: {exc}"
        return JSONResponse({"detail": detail}, 503, headers=retry)

    @app.exception_handler(errors.SolrError)
    async def solr_down(request: Request, exc: errors.SolrError) -> JSONResponse:
        log.warning("%s: answering 503, Solr unavailable: %s", request.url.path, exc)
        return JSONResponse({"detail": f"Solr unavailable: {exc}"}, 503, headers=retry)
