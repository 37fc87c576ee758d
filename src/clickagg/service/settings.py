"""What one service process serves and how: from the command line and the environment.

The bearer token and Solr's read-only credentials come from the environment, which the chart
fills from Kubernetes Secrets; they never appear in arguments or logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clickagg.domain import model
from clickagg.store import credentials

TOKEN_ENV = "CLICKAGG_SERVICE_TOKEN"  # noqa: S105 (the variable's name, not a secret)
SOLR_USERNAME_ENV = credentials.USERNAME_ENV
SOLR_PASSWORD_ENV = credentials.PASSWORD_ENV


@dataclass(frozen=True)
class Settings:
    aggregations: tuple[model.Aggregation, ...]
    solr_url: str
    #: Required as `Authorization: Bearer <token>` on /api when set.
    token: str | None = None
    #: Origins allowed to call the API from a browser; empty turns CORS off.
    cors_origins: tuple[str, ...] = ()
    #: Read-only Solr credentials when Solr has basic auth (`store.credentials`).
    solr_auth: credentials.SolrCredentials | None = None
    #: Longest wait for one Solr request, and for a whole answer, before a 503.
    solr_timeout_s: float = 5.0
    answer_timeout_s: float = 10.0
    #: What a 503 tells clients to wait before they ask again.
    retry_after_s: int = 5
    #: How often the dashboard refreshes the current bucket.
    refresh_s: float = 10.0


def from_environment(
    aggregations: Sequence[model.Aggregation],
    solr_url: str,
    cors_origins: Sequence[str] = (),
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    return Settings(
        aggregations=tuple(aggregations),
        solr_url=solr_url,
        token=environ.get(TOKEN_ENV) or None,
        cors_origins=tuple(cors_origins),
        solr_auth=credentials.from_environment(environ),
    )
