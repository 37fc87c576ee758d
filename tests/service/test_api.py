"""The KPI service's REST answers, against cells with known state in the real SolrCloud.

Two periods of an hour each: offer cells (through [offer, device_class], since no [offer]
cuboid exists) and totals, written by the cell writer; the stream's progress document says
how fresh they are.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

import service_data
from clickagg.domain import buckets, dimensions, model
from clickagg.local import process
from clickagg.local import solr as local_solr
from clickagg.service import settings
from clickagg.store import client as solr_adapter
from polling import eventually

pytestmark = pytest.mark.solr

Q = service_data.QUARTER_MS
Served = tuple[model.Aggregation, str, int]  # aggregation, service URL, first bucket


@pytest.fixture(scope="module")
def served(
    solr: local_solr.SolrEndpoints, solr_client: solr_adapter.SolrClient
) -> Iterator[Served]:
    aggregation = service_data.aggregation(solr.base_url)
    first = service_data.now_quarter() - 8 * Q
    cells = service_data.Cells(aggregation)
    for i in range(8):
        state = {"visits": 10 + i, "closed_visits": 10, "bounces": i, "page_views": 20}
        cells.add((), first + i * Q, (), state, service_data.visitors(i * 10, i * 10 + 29))
    previous, now = first, first + 4 * Q
    for bucket, offer, device, impressions, clicks in [
        (previous, "o1", "desktop", 100, 10),
        (previous, "o1", "mobile", 100, 10),
        (previous, "o2", "desktop", 200, 40),
        (previous, "o3", "desktop", 10, 5),
        (now, "o1", "desktop", 100, 10),
        (now, "o1", "mobile", 50, 20),
        (now, "o2", "desktop", 200, 20),
        (now, "o3", "desktop", 4, 4),
        (now, dimensions.MISSING, "desktop", 1000, 900),
    ]:
        who = {"desktop": (1, 40), "mobile": (21, 60)}[device] if offer == "o1" else (1, 1)
        cells.add(
            ("offer", "device_class"),
            bucket,
            (offer, device),
            {"impressions": impressions, "clicks": clicks},
            service_data.visitors(*who),
        )
    cells.add(("channel",), now, ("email",), {"visits": 7})
    cells.write(solr_client)
    service_data.report_progress(
        solr_client,
        aggregation.finest,
        watermark_ms=first + 8 * Q + 300_000,
        reported_ms=int(time.time() * 1000),
    )
    config = settings.Settings((aggregation,), solr.base_url)
    with service_data.serving(config) as running:
        yield aggregation, running.url, first


def ask(served: Served, path: str, **params: Any) -> Any:
    """The answer's JSON; the test fails with the answer's text unless it is a 200."""
    aggregation, url, _ = served
    response = requests.get(f"{url}/api/{aggregation.name}/{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def period(first: int, index: int) -> dict[str, str]:
    """The `index`-th hour of the data (0: previous, 1: now), as from/to."""
    start = first + index * 4 * Q
    return {"from": buckets.iso(start), "to": buckets.iso(start + 4 * Q)}


def by_value(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["value"]: row for row in rows}


def test_a_series_has_every_bucket_with_ratios_of_sums_and_merged_uniques(
    served: Served,
) -> None:
    first = served[2]
    answer = ask(
        served,
        "series",
        kpi=["visits", "bounce_rate", "unique_visitors"],
        **{"from": buckets.iso(first), "to": buckets.iso(first + 8 * Q)},
    )
    points = answer["points"]
    assert [p["bucket"] for p in points] == [buckets.iso(first + i * Q) for i in range(8)]
    assert [p["kpis"]["visits"] for p in points] == [10 + i for i in range(8)]
    assert [p["kpis"]["bounce_rate"] for p in points] == [i / 10 for i in range(8)]
    for point in points:
        assert point["kpis"]["unique_visitors"] == pytest.approx(30, rel=0.03)
    assert answer["level"]["level"] == "15m"
    assert answer["level"]["reason"].endswith("; 15m: 8 buckets")
    assert answer["cuboid"] == {
        "cuboid": "totals",
        "exact": True,
        "reason": "cuboid totals materialises totals",
    }


def test_every_answer_carries_the_freshness_of_the_stream(served: Served) -> None:
    first = served[2]
    freshness = ask(served, "series", kpi="visits", **period(first, 1))["freshness"]
    assert freshness["newest_complete_bucket"] == buckets.iso(first + 7 * Q)
    assert freshness["lag_seconds"] == pytest.approx(5.0)
    assert freshness["stalled"] is False
    assert ask(served, "freshness") == freshness


def test_a_combination_no_cuboid_materialises_is_summed_before_the_ratio(
    served: Served,
) -> None:
    answer = ask(
        served, "breakdown", dimension="offer", kpi="click_through_rate", **period(served[2], 1)
    )
    assert answer["cuboid"]["cuboid"] == "offer+device_class"
    assert answer["cuboid"]["exact"] is False
    assert "summed by faceting" in answer["cuboid"]["reason"]
    rows = answer["rows"]
    assert [r["value"] for r in rows] == ["o1", "o2", "o3"]  # o3 is small: ranked last
    o1 = rows[0]
    # (10 + 20) / (100 + 50), not the mean of 10 % and 40 %
    assert o1["kpi"] == pytest.approx(0.2)
    assert o1["state"] == {"clicks": 30.0, "impressions": 150.0}
    assert (o1["base"], o1["small"]) == (150.0, False)
    assert (rows[2]["kpi"], rows[2]["small"]) == (1.0, True)


def test_unique_visitors_of_a_value_merge_its_cells_sketches(served: Served) -> None:
    answer = ask(
        served, "breakdown", dimension="offer", kpi="unique_visitors", **period(served[2], 1)
    )
    # u1..u40 on desktop and u21..u60 on mobile are 60 visitors, not 80
    assert by_value(answer["rows"])["o1"]["kpi"] == pytest.approx(60, rel=0.03)


def test_a_filter_selects_the_cells_of_one_value(served: Served) -> None:
    answer = ask(
        served,
        "breakdown",
        dimension="device_class",
        kpi="click_through_rate",
        filter="offer:o1",
        **period(served[2], 1),
    )
    assert answer["cuboid"]["exact"] is True
    assert answer["filters"] == {"offer": "o1"}
    assert {r["value"]: r["kpi"] for r in answer["rows"]} == {"mobile": 0.4, "desktop": 0.1}


def test_missing_values_are_ranked_only_when_asked_for(served: Served) -> None:
    asked = {"dimension": "offer", "kpi": "clicks", **period(served[2], 1)}
    assert dimensions.MISSING not in by_value(ask(served, "breakdown", **asked)["rows"])
    rows = ask(served, "breakdown", include_missing="true", **asked)["rows"]
    assert rows[0]["value"] == dimensions.MISSING


def test_steering_names_leaders_and_movers_with_the_counts_behind_them(
    served: Served,
) -> None:
    first = served[2]
    answer = ask(
        served, "steering", dimension="offer", kpi="click_through_rate", **period(first, 1)
    )
    assert [r["value"] for r in answer["leaders"]] == ["o1", "o2", "o3"]
    assert answer["previous"]["start"] == buckets.iso(first)
    movers = answer["movers"]
    trusted = {m["value"]: m["change"] for m in movers if not m["small"]}
    assert trusted == {"o1": pytest.approx(0.1), "o2": pytest.approx(-0.1)}
    last = movers[-1]
    assert (last["value"], last["small"], last["change"]) == ("o3", True, 0.5)
    assert (last["now"]["base"], last["before"]["base"]) == (4.0, 10.0)
    assert "below min_base" in answer["trust_rule"]


@pytest.mark.parametrize(
    ("path", "params", "status", "parameter", "says"),
    [
        ("series", {"kpi": "visits"}, 404, "aggregation", "is not served"),
        ("series", {"kpi": "visitz"}, 422, "kpi", "is not a KPI"),
        ("breakdown", {"kpi": "visits", "dimension": "colour"}, 422, "dimension", "known:"),
        (
            "breakdown",
            {"kpi": "visits", "dimension": "offer", "filter": "country:de"},
            422,
            "dimension",
            "dimensions [country, offer] (or more) would answer it",
        ),
        ("series", {"kpi": "visits", "filter": "channel"}, 422, "filter", "dimension:value"),
        ("series", {"kpi": "visits", "from": "yesterday"}, 422, "from", "is not a time"),
        ("series", {"kpi": "visits", "from": "now-3y"}, 422, "from", "no level can answer"),
        (
            "series",
            {"kpi": "visits", "from": "now-25d", "level": "15m"},
            422,
            "level",
            "at most 2000",
        ),
        ("series", {"kpi": "visits", "level": "5m"}, 422, "level", "not a level"),
        ("series", {"kpi": "visits", "to": "now-2d"}, 422, "to", "is not after"),
        ("breakdown", {"kpi": "visits", "dimension": "offer", "limit": 0}, 422, "limit", ""),
        ("series", {}, 422, "kpi", "Field required"),
    ],
)
def test_a_bad_request_names_its_parameter(
    served: Served, path: str, params: dict[str, str], status: int, parameter: str, says: str
) -> None:
    aggregation, url, _ = served
    name = "nope" if parameter == "aggregation" else aggregation.name
    asked = {"from": "now-1h", "to": "now", **params}
    response = requests.get(f"{url}/api/{name}/{path}", params=asked, timeout=30)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["parameter"] == parameter
    assert says in body["detail"]


def test_health_checks_solr(served: Served) -> None:
    response = requests.get(f"{served[1]}/healthz", timeout=30)
    assert (response.status_code, response.json()) == (200, {"solr": "ok"})


def test_without_solr_the_answer_is_503_with_retry_after_in_bounded_time(
    served: Served,
) -> None:
    nowhere = f"http://127.0.0.1:{process.free_port()}/solr"
    aggregation = served[0]
    config = settings.Settings((aggregation,), nowhere, solr_timeout_s=2.0)
    with service_data.serving(config) as running:
        started = time.monotonic()
        response = requests.get(
            f"{running.url}/api/{aggregation.name}/series",
            params={"kpi": "visits", "from": "now-1h", "to": "now"},
            timeout=30,
        )
        assert time.monotonic() - started < config.answer_timeout_s
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "could not be reached" in response.json()["detail"]
        health = requests.get(f"{running.url}/healthz", timeout=30)
        assert (health.status_code, health.headers["Retry-After"]) == (503, "5")


def test_a_solr_that_hangs_gets_a_503_within_the_answer_bound(
    solr: local_solr.SolrEndpoints, served: Served
) -> None:
    aggregation = served[0]
    config = settings.Settings(
        (aggregation,), solr.base_url, solr_timeout_s=1.0, answer_timeout_s=3.0
    )
    running_solr = process.status(local_solr.PROCESS_NAME)
    assert running_solr is not None
    with service_data.serving(config) as running:
        # The whole SolrCloud JVM is frozen: connections are accepted, nothing answers.
        os.kill(running_solr.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            response = requests.get(
                f"{running.url}/api/{aggregation.name}/series",
                params={"kpi": "visits", "from": "now-1h", "to": "now"},
                timeout=30,
            )
            took = time.monotonic() - started
        finally:
            os.kill(running_solr.pid, signal.SIGCONT)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert took < config.answer_timeout_s + 1


def test_a_token_when_set_is_required_on_the_api_but_not_the_probes(
    solr: local_solr.SolrEndpoints, served: Served
) -> None:
    aggregation = served[0]
    secret = "s3cret-for-the-test"  # noqa: S105 (a test's own token)
    config = settings.from_environment(
        [aggregation], solr.base_url, environ={settings.TOKEN_ENV: secret}
    )
    with service_data.serving(config) as running:
        api = f"{running.url}/api/aggregations"
        refused = requests.get(api, timeout=30)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        wrong = requests.get(api, headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 401
        right = requests.get(api, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        assert right.status_code == 200
        assert requests.get(f"{running.url}/healthz", timeout=30).status_code == 200


def test_cors_is_off_unless_origins_are_named(
    solr: local_solr.SolrEndpoints, served: Served
) -> None:
    aggregation, url, _ = served
    origin = {"Origin": "http://shop.example"}
    plain = requests.get(f"{url}/api/aggregations", headers=origin, timeout=30)
    assert "access-control-allow-origin" not in plain.headers
    config = settings.Settings((aggregation,), solr.base_url, cors_origins=(origin["Origin"],))
    with service_data.serving(config) as running:
        allowed = requests.get(f"{running.url}/api/aggregations", headers=origin, timeout=30)
        assert allowed.headers["access-control-allow-origin"] == origin["Origin"]


def test_the_catalogue_lists_levels_with_documents(served: Served) -> None:
    aggregation, url, _ = served
    (info,) = requests.get(f"{url}/api/aggregations", timeout=30).json()["aggregations"]
    assert info["name"] == aggregation.name
    assert {lvl["name"]: lvl["has_documents"] for lvl in info["levels"]} == {
        "15m": True,
        "1h": False,
        "1d": False,
    }
    assert ["offer", "device_class"] in info["cuboids"]


def test_the_openapi_document_and_the_dashboard_are_served(served: Served) -> None:
    url = served[1]
    paths = requests.get(f"{url}/openapi.json", timeout=30).json()["paths"]
    assert {
        "/api/{aggregation}/series",
        "/api/{aggregation}/breakdown",
        "/api/{aggregation}/steering",
        "/healthz",
    } <= set(paths)
    page = requests.get(f"{url}/", timeout=30)
    assert '<script src="/static/plotly.min.js">' in page.text
    bundle = requests.get(f"{url}/static/plotly.min.js", timeout=30)
    assert bundle.status_code == 200 and len(bundle.content) > 1_000_000
    assert requests.get(f"{url}/static/../app.py", timeout=30).status_code == 404


def test_clickagg_serve_reads_its_token_from_the_environment(
    solr: local_solr.SolrEndpoints, served: Served, tmp_path: Path
) -> None:
    aggregation = served[0]
    spec = tmp_path / "served.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "clickagg.io/v1alpha1",
                "kind": "Aggregation",
                "metadata": {"name": aggregation.name},
                "spec": aggregation.spec.model_dump(by_alias=True, exclude_none=True),
            }
        )
    )
    port = process.free_port()
    secret = "from-a-secret"  # noqa: S105 (a test's own token)
    service = subprocess.Popen(
        [sys.executable, "-m", "clickagg", "serve", str(spec), "--port", str(port)],
        env={**os.environ, settings.TOKEN_ENV: secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return requests.get(f"{url}/healthz", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        eventually(healthy, "clickagg serve answers /healthz", timeout=60)
        catalogue = f"{url}/api/aggregations"
        assert requests.get(catalogue, timeout=30).status_code == 401
        answer = requests.get(catalogue, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        assert [a["name"] for a in answer.json()["aggregations"]] == [aggregation.name]
    finally:
        service.terminate()
        output, _ = service.communicate(timeout=30)
    assert secret not in output  # the token is never logged
