"""The KPI catalogue: its size, its consistency, its ratios, and that docs/kpis.md matches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickagg.domain import dimensions, kpi_doc, kpis

pytestmark = pytest.mark.unit

KPI_DOC = Path(__file__).resolve().parents[2] / "docs" / "kpis.md"


def test_docs_kpis_md_is_rendered_from_the_catalogue() -> None:
    rendered = kpi_doc.render_kpi_doc()
    assert KPI_DOC.read_text(encoding="utf-8") == rendered, (
        "docs/kpis.md is stale: run "
        "`PYTHONPATH=src python -m clickagg.domain.kpi_doc > docs/kpis.md`"
    )


def test_there_are_26_kpis_in_four_groups() -> None:
    assert len(kpis.CATALOGUE) == 26
    assert {k.group for k in kpis.CATALOGUE.values()} == set(kpis.GROUPS)


def test_there_are_10_standard_dimensions() -> None:
    assert len(dimensions.STANDARD) == 10
    assert dimensions.STANDARD["content"].field == "page"
    assert dimensions.STANDARD["landing_page"].field == "page"
    assert dimensions.STANDARD["landing_page"].scope == "visit"
    assert dimensions.STANDARD["visitor_type"].field is None


def test_every_kpi_reads_only_stored_state_and_every_field_is_read() -> None:
    read = {field for k in kpis.CATALOGUE.values() for field in k.state}
    assert read <= set(kpis.STATE_FIELDS)
    assert read == set(kpis.STATE_FIELDS), "a stored field no KPI reads is waste"


def test_catalogue_names_match_their_keys() -> None:
    assert all(name == k.name for name, k in kpis.CATALOGUE.items())
    assert all(name == f.name for name, f in kpis.STATE_FIELDS.items())


def test_only_the_sketch_is_not_a_count_or_sum() -> None:
    sketches = [f.name for f in kpis.STATE_FIELDS.values() if f.kind == "sketch"]
    assert sketches == ["hll_visitors"]
    assert kpis.CATALOGUE["unique_visitors"].formula == "estimate(hll_visitors)"


def test_duration_and_bounce_divide_by_closed_visits() -> None:
    for name in ("avg_visit_duration", "bounce_rate", "engagement_rate", "pages_per_visit"):
        kpi = kpis.CATALOGUE[name]
        assert kpi.denominator == "closed_visits"
        assert kpi.settles_on_visit_close


def test_live_kpis_do_not_settle_on_close() -> None:
    for name in ("page_views", "visits", "conversion_rate", "click_through_rate"):
        assert not kpis.CATALOGUE[name].settles_on_visit_close


STATE = {
    "visits": 8,
    "closed_visits": 5,
    "bounces": 2,
    "visit_duration_seconds_sum": 600,
    "page_views": 40,
    "exits": 5,
    "visits_with_cart": 4,
    "visits_with_cart_without_order": 3,
    "orders": 2,
    "revenue": 150.0,
    "visits_with_order": 2,
    "impressions": 0,
    "clicks": 0,
    "hll_visitors": 6.02,
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bounce_rate", 2 / 5),
        ("avg_visit_duration", 120.0),
        ("exit_rate", 5 / 40),
        ("cart_abandonment_rate", 3 / 4),
        ("avg_order_value", 75.0),
        ("conversion_rate", 2 / 8),
        ("revenue_per_visit", 150.0 / 8),
        ("unique_visitors", 6.02),
        ("page_views", 40.0),
        ("click_through_rate", None),  # no impressions: no rate, not 0 %
        ("engagement_rate", 0.0),  # absent numerator counts as 0
        ("new_visit_share", 0.0),
    ],
)
def test_compute_on_hand_computed_state(name: str, expected: float | None) -> None:
    assert kpis.CATALOGUE[name].compute(STATE) == pytest.approx(expected)


def test_ratios_of_an_empty_cell_are_none_and_counts_zero() -> None:
    for kpi in kpis.CATALOGUE.values():
        assert kpi.compute({}) == (None if kpi.denominator else 0.0)


def test_required_state_is_the_union_in_catalogue_order() -> None:
    assert kpis.required_state(["bounce_rate", "bounces", "visits"]) == (
        "visits",
        "closed_visits",
        "bounces",
    )
    assert kpis.required_state([]) == ()


def test_required_state_rejects_unknown_kpis() -> None:
    with pytest.raises(ValueError, match="unknown KPI"):
        kpis.required_state(["visits", "bogus"])


def test_unknown_lists_names_not_in_the_catalogue() -> None:
    assert kpis.unknown(["visits", "bogus", "revenue", "nope"]) == ["bogus", "nope"]
    assert dimensions.unknown(["channel", "planet"]) == ["planet"]


def test_absent_dimension_values_become_missing() -> None:
    assert dimensions.value_or_missing(None) == dimensions.MISSING
    assert dimensions.value_or_missing("  ") == dimensions.MISSING
    assert dimensions.value_or_missing("email") == "email"
