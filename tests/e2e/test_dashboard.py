"""The dashboard in real headless chromium, over a real Solr filled by the streaming job.

Two hours of shop traffic go through the pipeline (Spark, then Solr); the service serves
them; the page's charts must show exactly the points and values the API answers, and the
current bucket must refresh live. Screenshots are kept under build/test-artifacts.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError

import service_data
import streaming
from clickagg.domain import buckets, cells, model
from clickagg.local import solr as local_solr
from clickagg.local import solr_security
from clickagg.pipeline import archive, stream
from clickagg.pipeline import progress as progress_report
from clickagg.service import settings
from clickagg.sim import landing
from clickagg.store import cell_writes, collections
from clickagg.store import client as solr_adapter
from fixtures import solr as fixtures_solr
from polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

HOURS = 2
START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - HOURS) * streaming.HOUR_MS


@pytest.fixture(scope="module")
def shop(
    spark: Any,
    solr: local_solr.SolrEndpoints,
    solr_client: solr_adapter.SolrClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> model.Aggregation:
    """The reference spec's aggregation, filled by the streaming job with its progress."""
    work = tmp_path_factory.mktemp("dashboard")
    name = f"dash-{uuid.uuid4().hex[:6]}"
    aggregation = streaming.aggregation_for(work / "landing", solr.base_url, name)
    lines = streaming.traffic_lines(START_MS, hours=HOURS, visitors=300, seed=11)
    landing.write_files(lines, work / "landing", rolling=streaming.ROLLING)
    collections.ensure_level_collections(solr_client, aggregation)
    reporter = progress_report.ProgressReporter(
        aggregation, streaming.store_at(solr.base_url), stream.aggregate_query_name(aggregation)
    )
    spark.streams.addListener(reporter)
    try:
        streaming.run_to_end(
            spark, aggregation, archive.JobPaths(str(work / "data")), solr.base_url
        )
    finally:
        spark.streams.removeListener(reporter)
    return aggregation


@pytest.fixture(scope="module")
def service_url(solr: local_solr.SolrEndpoints, shop: model.Aggregation) -> Iterator[str]:
    # The service reads as the query user, found in "its" environment.
    query_env = fixtures_solr.role_env(solr_security.QUERY)
    found = settings.from_environment([shop], solr.base_url, environ=query_env)
    config = dataclasses.replace(found, refresh_s=1.0)
    assert config.solr_auth is not None and config.solr_auth.user == "clickagg-query"
    with service_data.serving(config) as running:
        yield running.url


@pytest.fixture
def page(chromium: Any, service_url: str) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1300})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    opened.goto(service_url)
    opened.wait_for_selector("body[data-state=ready]")
    yield opened
    context.close()
    assert not problems, problems


def api(service_url: str, aggregation: model.Aggregation, path: str, **params: Any) -> Any:
    response = requests.get(
        f"{service_url}/api/{aggregation.name}/{path}", params=params, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


def choose(page: Any, **choices: str) -> None:
    """Set selections and wait until the charts show them (a timed refresh may be running)."""
    for element, value in choices.items():
        if element == "filters":
            page.fill("#filters", value)
            page.dispatch_event("#filters", "change")
        else:
            page.select_option(f"#{element}", value)
    try:
        page.wait_for_function(
            """(wanted) => { const drawn = JSON.parse(document.body.dataset.drawn || "{}");
                             return Object.entries(wanted).every(([k, v]) => drawn[k] === v); }""",
            arg=choices,
        )
    except PlaywrightError:
        drawn_now = page.get_attribute("body", "data-drawn")
        pytest.fail(
            f"{choices} not drawn; drawn: {drawn_now}; error: {page.text_content('#error')}"
        )


def drawn(page: Any, chart: str) -> dict[str, Any]:
    """What a Plotly chart shows (its first trace) and the range it was drawn for."""
    shown: dict[str, Any] = page.evaluate(
        """(id) => { const chart = document.getElementById(id);
                     const trace = chart.data[0];
                     return {x: Array.from(trace.x), y: Array.from(trace.y),
                             start: chart.dataset.start, end: chart.dataset.end,
                             level: chart.dataset.level}; }""",
        chart,
    )
    return shown


def same_range(shown: dict[str, Any]) -> dict[str, str]:
    return {"from": shown["start"], "to": shown["end"], "level": shown["level"]}


def test_the_series_shows_every_point_the_api_answers(
    page: Any, service_url: str, shop: model.Aggregation, screenshots: Path
) -> None:
    choose(page, range="6h", kpi="visits")
    shown = drawn(page, "series")
    answer = api(service_url, shop, "series", kpi="visits", **same_range(shown))
    points = answer["points"]
    span_ms = buckets.parse_iso(shown["end"]) - buckets.parse_iso(shown["start"])
    assert len(shown["x"]) == len(points) == span_ms // service_data.QUARTER_MS
    assert [buckets.parse_iso(x) for x in shown["x"]] == [
        buckets.parse_iso(p["bucket"]) for p in points
    ]
    assert shown["y"] == [p["kpis"]["visits"] for p in points]
    assert sum(shown["y"]) > 100, "the streamed traffic is on the chart"
    page.screenshot(path=str(screenshots / "visits-6h.png"), full_page=True)

    choose(page, kpi="bounce_rate", dimension="campaign", filters="channel:email")
    shown = drawn(page, "series")
    answer = api(
        service_url,
        shop,
        "series",
        kpi="bounce_rate",
        filter="channel:email",
        **same_range(shown),
    )
    assert shown["y"] == [p["kpis"]["bounce_rate"] for p in answer["points"]]
    assert any(value is not None for value in shown["y"])
    bars = drawn(page, "breakdown")
    top = api(
        service_url,
        shop,
        "breakdown",
        kpi="bounce_rate",
        dimension="campaign",
        filter="channel:email",
        limit=10,
        **same_range(bars),
    )
    assert bars["x"] == [row["value"] for row in top["rows"]]
    assert bars["y"] == [row["kpi"] for row in top["rows"]]
    assert page.is_hidden("#error")
    page.screenshot(path=str(screenshots / "bounce-rate-email.png"), full_page=True)


def test_a_combination_no_cuboid_holds_says_so_and_keeps_the_series(
    page: Any, shop: model.Aggregation, screenshots: Path
) -> None:
    choose(page, kpi="visits", dimension="offer", filters="channel:email")
    assert "[channel, offer] (or more) would answer it" in page.text_content("#error")
    assert len(drawn(page, "series")["x"]) > 0
    assert drawn(page, "breakdown")["x"] == []
    page.screenshot(path=str(screenshots / "no-cuboid.png"), full_page=True)


def test_the_top_n_bars_and_steering_tables_match_the_api(
    page: Any, service_url: str, shop: model.Aggregation, screenshots: Path
) -> None:
    choose(page, range="1d", kpi="click_through_rate", dimension="offer", filters="")
    shown = drawn(page, "breakdown")
    answer = api(
        service_url,
        shop,
        "breakdown",
        kpi="click_through_rate",
        dimension="offer",
        limit=10,
        **same_range(shown),
    )
    assert 0 < len(shown["x"]) == len(answer["rows"])
    assert shown["x"] == [row["value"] for row in answer["rows"]]
    assert shown["y"] == [row["kpi"] for row in answer["rows"]]

    steering = api(
        service_url,
        shop,
        "steering",
        kpi="click_through_rate",
        dimension="offer",
        **{"from": "now-1d", "to": "now"},
    )
    leaders = page.eval_on_selector_all(
        "#leaders tr td:first-child", "cells => cells.map(c => c.textContent)"
    )
    assert leaders == [row["value"] for row in steering["leaders"]]
    movers = page.eval_on_selector_all("#movers tr", "rows => rows.length - 1")
    assert movers == len(steering["movers"])
    page.screenshot(path=str(screenshots / "top-offers-by-ctr.png"), full_page=True)


def test_freshness_is_shown_and_the_current_bucket_refreshes_live(
    page: Any,
    service_url: str,
    shop: model.Aggregation,
    solr_client: solr_adapter.SolrClient,
    screenshots: Path,
) -> None:
    choose(page, range="1h", kpi="events", filters="")
    freshness = api(service_url, shop, "freshness")
    assert freshness["newest_complete_bucket"] is not None
    assert freshness["newest_complete_bucket"] in page.text_content("#freshness")

    shown = drawn(page, "series")
    before, current = shown["y"][-1], buckets.parse_iso(shown["x"][-1])
    added = cells.CellDelta(model.Cuboid(()), current, (), {"events": 42.0}, None)
    cell_writes.write_deltas(solr_client, shop.finest, [added], stream_id="live", batch_id=0)
    solr_client.commit(shop.finest.collection)

    def refreshed() -> float | None:
        last = drawn(page, "series")
        return last["y"][-1] if last["y"][-1] == (before or 0) + 42 else None

    eventually(refreshed, "the current bucket's new events on the chart", timeout=30)
    page.screenshot(path=str(screenshots / "live-current-bucket.png"), full_page=True)
