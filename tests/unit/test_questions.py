"""KPI questions checked against an Aggregation: cuboid choice, level choice, times."""

from __future__ import annotations

import pytest
import yaml

import examples
from clickagg import errors
from clickagg.domain import buckets, query, questions, validation

pytestmark = pytest.mark.unit

SHOP = validation.validate(
    yaml.safe_load((examples.ROOT / "examples" / "shop-kpis.yaml").read_text())
)
NOW_MS = buckets.parse_iso("2026-11-30T10:07:00Z")
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ALL_LEVELS = {"15m", "1h", "1d"}


def level_for(start_ms: int, end_ms: int = NOW_MS, **options: object) -> query.LevelChoice:
    settings: dict[str, object] = {
        "asked": None,
        "with_documents": ALL_LEVELS,
        "max_buckets": questions.MAX_SERIES_BUCKETS,
    }
    settings.update(options)
    return questions.level_for(
        SHOP,
        buckets.Span(start_ms, end_ms),
        NOW_MS,
        **settings,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW_MS),
        ("now-15m", NOW_MS - 900_000),
        ("now-1mo", buckets.parse_iso("2026-10-30T10:07:00Z")),
        ("2026-11-30T09:00:00Z", buckets.parse_iso("2026-11-30T09:00:00Z")),
        ("2026-11-30T10:00:00+01:00", buckets.parse_iso("2026-11-30T09:00:00Z")),
        ("2026-11-30T09:00:00", buckets.parse_iso("2026-11-30T09:00:00Z")),  # no offset: UTC
    ],
)
def test_instants(text: str, expected: int) -> None:
    assert questions.instant(text, NOW_MS, "from") == expected


@pytest.mark.parametrize("text", ["yesterday", "now-15x", "now+1h", "30/11/2026"])
def test_a_malformed_instant_names_the_parameter(text: str) -> None:
    with pytest.raises(errors.QuestionError) as raised:
        questions.instant(text, NOW_MS, "to")
    assert raised.value.parameter == "to"
    assert text in str(raised.value)


def test_an_exact_cuboid_is_used_as_is() -> None:
    choice = questions.cuboid_for(SHOP, ["device_class", "offer"], "dimension")
    assert (choice.cuboid.name, choice.exact) == ("offer+device_class", True)
    assert questions.cuboid_for(SHOP, [], "filter").cuboid.name == "totals"


def test_a_contained_combination_takes_the_smallest_cuboid_holding_it() -> None:
    body = SHOP.spec.model_dump(by_alias=True, exclude_none=True)
    body["cuboids"] = [
        {"dimensions": d}
        for d in (
            [],
            ["channel", "campaign"],
            ["offer", "device_class"],
            ["channel", "device_class"],
            ["campaign", "visitor_type"],
        )
    ]
    narrow = validation.validate_spec("narrow", "default", body)
    # channel: 21 * 501 cells in channel+campaign, 21 * 7 in channel+device_class
    choice = questions.cuboid_for(narrow, ["channel"], "dimension")
    assert (choice.cuboid.name, choice.exact) == ("channel+device_class", False)
    assert "summed by faceting cuboid channel+device_class" in choice.reason


def test_a_combination_no_cuboid_holds_names_the_cuboid_that_would() -> None:
    with pytest.raises(errors.QuestionError) as raised:
        questions.cuboid_for(SHOP, ["offer", "country"], "dimension")
    assert raised.value.parameter == "dimension"
    assert "dimensions [country, offer] (or more) would answer it" in str(raised.value)


def test_the_finest_level_answers_a_short_range() -> None:
    choice = level_for(NOW_MS - 6 * HOUR_MS)
    assert choice.level.name == "15m"
    assert choice.span == buckets.Span(
        buckets.parse_iso("2026-11-30T04:00:00Z"), buckets.parse_iso("2026-11-30T10:15:00Z")
    )
    assert choice.reason.startswith("15m: 25 buckets")


def test_a_range_too_long_for_the_finest_level_takes_the_next() -> None:
    choice = level_for(NOW_MS - 25 * DAY_MS)
    assert choice.level.name == "1h"
    assert "15m needs 2401 buckets, more than 2000" in choice.reason


def test_a_range_older_than_the_finest_retention_takes_a_level_that_keeps_it() -> None:
    choice = level_for(NOW_MS - 40 * DAY_MS, NOW_MS - 39 * DAY_MS)
    assert choice.level.name == "1h"
    assert "15m keeps 30d" in choice.reason


def test_levels_without_documents_are_skipped_until_rollups_exist() -> None:
    choice = level_for(NOW_MS - 40 * DAY_MS, NOW_MS - 39 * DAY_MS, with_documents={"15m", "1d"})
    assert choice.level.name == "1d"
    assert choice.reason.startswith("1h has no documents yet; 15m keeps 30d")


def test_every_level_is_a_candidate_while_none_has_documents() -> None:
    assert level_for(NOW_MS - 6 * HOUR_MS, with_documents=set()).level.name == "15m"


def test_a_range_outside_every_retention_is_refused_on_from() -> None:
    with pytest.raises(errors.QuestionError, match="no level can answer") as raised:
        level_for(NOW_MS - 3 * 365 * DAY_MS)
    assert raised.value.parameter == "from"


def test_an_asked_level_must_keep_the_range_and_stay_under_the_bound() -> None:
    assert level_for(NOW_MS - HOUR_MS, asked="1h").reason.startswith("asked for; 1h: 2 buckets")
    with pytest.raises(errors.QuestionError, match="15m keeps 30d") as raised:
        level_for(NOW_MS - 31 * DAY_MS, asked="15m")
    assert raised.value.parameter == "level"
    with pytest.raises(errors.QuestionError, match="2401 buckets, more than 2000") as raised:
        level_for(NOW_MS - 25 * DAY_MS, asked="15m")
    assert raised.value.parameter == "level"
    with pytest.raises(errors.QuestionError, match="not a level") as raised:
        level_for(NOW_MS - HOUR_MS, asked="5m")
    assert raised.value.parameter == "level"


def test_the_previous_period_has_the_same_length() -> None:
    assert buckets.Span(10, 25).previous() == buckets.Span(-5, 10)
