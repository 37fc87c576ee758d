"""The KPI service against a SolrCloud with BasicAuth, reading as the read-only query user.

Its own 2-node secured cluster (fixtures.solr.auth_solr, started for this module): the
operator's user creates the collections, the jobs' user writes the cells and the stream's
progress, and the service reads as the query user, whose role has Solr's read permissions
only (`local.solr_security`). Series, top-N, steering and health answer; the same user is
refused a write, a commit included, so no read may commit. A service whose login Solr refuses
answers 503 saying so, naming the user and never the password.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

import service_data
from clickagg import errors
from clickagg.domain import buckets, model
from clickagg.local import solr as local_solr
from clickagg.local import solr_security
from clickagg.service import settings
from clickagg.store import batch, cell_reads, collections, credentials
from clickagg.store import client as store_client
from fixtures import solr as fixtures_solr

pytestmark = pytest.mark.solr

Q = service_data.QUARTER_MS
BUCKETS = 4
Secured = tuple[model.Aggregation, local_solr.SolrEndpoints, int]  # aggregation, Solr, first


def as_role(role: str) -> credentials.SolrCredentials:
    return credentials.SolrCredentials(*local_solr.credentials(role, fixtures_solr.AUTH_INSTANCE))


def client_as(solr: local_solr.SolrEndpoints, role: str) -> store_client.SolrClient:
    return store_client.SolrClient(solr.base_url, auth=as_role(role).pair())


@pytest.fixture(scope="module")
def secured(auth_solr: local_solr.SolrEndpoints) -> Secured:
    aggregation = service_data.aggregation(auth_solr.base_url)
    with client_as(auth_solr, solr_security.OPERATOR) as operator:
        collections.ensure_level_collections(operator, aggregation)
    first = service_data.now_quarter() - BUCKETS * Q
    cells = service_data.Cells(aggregation)
    for i in range(BUCKETS):
        bucket = first + i * Q
        cells.add((), bucket, (), {"visits": 10 + i}, service_data.visitors(0, 9))
        for offer, clicks in (("o1", 10), ("o2", 20)):
            state = {"impressions": 100, "clicks": clicks}
            cells.add(("offer", "device_class"), bucket, (offer, "desktop"), state)
    with client_as(auth_solr, solr_security.JOBS) as jobs:
        cells.write(jobs)
        service_data.report_progress(
            jobs,
            aggregation.finest,
            watermark_ms=first + BUCKETS * Q,
            reported_ms=int(time.time() * 1000),
        )
    return aggregation, auth_solr, first


@pytest.fixture(scope="module")
def read_only_url(secured: Secured) -> Iterator[str]:
    aggregation, solr, _ = secured
    config = settings.Settings(
        (aggregation,), solr.base_url, solr_auth=as_role(solr_security.QUERY)
    )
    with service_data.serving(config) as running:
        yield running.url


def ask(url: str, path: str, **params: Any) -> Any:
    response = requests.get(f"{url}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_service_answers_as_the_read_only_user(secured: Secured, read_only_url: str) -> None:
    aggregation, _, first = secured
    api = f"/api/{aggregation.name}"
    span = {"from": buckets.iso(first), "to": buckets.iso(first + BUCKETS * Q)}
    assert ask(read_only_url, "/healthz") == {"solr": "ok"}
    series = ask(read_only_url, f"{api}/series", kpi="visits", level="15m", **span)
    assert [p["kpis"]["visits"] for p in series["points"]] == [10.0, 11.0, 12.0, 13.0]
    top = ask(read_only_url, f"{api}/breakdown", dimension="offer", kpi="clicks", **span)
    assert [(r["value"], r["kpi"]) for r in top["rows"]] == [("o2", 80.0), ("o1", 40.0)]
    steering = ask(
        read_only_url, f"{api}/steering", dimension="offer", kpi="click_through_rate", **span
    )
    assert [r["value"] for r in steering["leaders"]] == ["o2", "o1"]
    catalogue = ask(read_only_url, "/api/aggregations")
    (info,) = catalogue["aggregations"]
    assert info["freshness"]["stalled"] is False


def test_the_read_only_user_reads_cells_but_may_not_write_or_commit(secured: Secured) -> None:
    aggregation, solr, first = secured
    level = aggregation.finest
    with client_as(solr, solr_security.QUERY) as query:
        # The batch layer's read helpers no longer commit first: a reader can use them.
        totals = list(cell_reads.stored_cells(query, aggregation, level, model.TOTALS))
        assert len(totals) == BUCKETS
        assert len(list(batch.documents_in(query, level, first, first + BUCKETS * Q))) > BUCKETS
        writes: list[Callable[[], object]] = [
            lambda: query.add(level.collection, [{"id": "written-by-the-query-user"}]),
            lambda: query.commit(level.collection),
        ]
        for write in writes:
            with pytest.raises(errors.SolrAuthError) as refused:
                write()
            assert (refused.value.status, refused.value.permission) == (403, "update")


def test_a_refused_login_answers_503_saying_so_without_the_password(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    aggregation, solr, _ = secured
    wrong = "not-the-query-password"
    refused = credentials.SolrCredentials("clickagg-query", wrong)
    config = settings.Settings((aggregation,), solr.base_url, solr_auth=refused)
    caplog.set_level(logging.INFO)
    with service_data.serving(config) as running:
        response = requests.get(
            f"{running.url}/api/{aggregation.name}/series",
            params={"kpi": "visits", "from": "now-1h", "to": "now"},
            timeout=30,
        )
        health = requests.get(f"{running.url}/healthz", timeout=30)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    detail = response.json()["detail"]
    assert detail.startswith("Solr refused the service's credentials")
    assert "'clickagg-query'" in detail and "wrong user name or password" in detail
    assert (health.status_code, health.json()) == (503, {"solr": "credentials refused"})
    said = [r for r in caplog.records if "refused the service's credentials" in r.getMessage()]
    assert said and all(r.levelno == logging.ERROR for r in said)
    passwords = [wrong, *(as_role(role).password for role in solr_security.ROLES)]
    for password in passwords:
        assert password not in detail
        assert password not in caplog.text
