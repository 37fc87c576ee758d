"""`clickagg serve`: the KPI service and dashboard for one or more Aggregations."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from clickagg.cli import jobs_cmd

SOLR_URL_ENV = "CLICKAGG_SOLR_URL"


def serve(
    specs: Annotated[list[Path], typer.Argument(help="Aggregation YAML files.", exists=True)],
    solr_url: Annotated[
        str | None,
        typer.Option(
            help=f"Solr base URL; ${SOLR_URL_ENV}, the specs' solr.url, or the "
            "local SolrCloud's when empty."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="An origin allowed to call the API (CORS).")
    ] = None,
    refresh_seconds: Annotated[
        float, typer.Option(help="How often the dashboard refreshes.")
    ] = 10.0,
    solr_timeout: Annotated[float, typer.Option(help="Seconds one Solr read may take.")] = 5.0,
) -> None:
    """Serve KPIs over REST (OpenAPI at /docs) and the dashboard at /.

    The bearer token comes from $CLICKAGG_SERVICE_TOKEN, Solr credentials from
    $CLICKAGG_SOLR_USERNAME and $CLICKAGG_SOLR_PASSWORD.
    """
    from clickagg.domain import specfile
    from clickagg.service import server, settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    aggregations = [specfile.load(path) for path in specs]
    declared = {a.spec.solr.url for a in aggregations} - {None}
    chosen = solr_url or os.environ.get(SOLR_URL_ENV)
    if not chosen and len(declared) == 1:
        chosen = declared.pop()
    config = dataclasses.replace(
        settings.from_environment(
            aggregations, jobs_cmd.local_solr_url(chosen, role="query"), cors_origin or []
        ),
        refresh_s=refresh_seconds,
        solr_timeout_s=solr_timeout,
    )
    typer.echo(f"serving on http://{host}:{port}/ (API docs at /docs)")
    server.serve_forever(config, host, port)
