"""Level choice for the query service: the finest level that holds the range in few buckets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clickagg.domain import buckets, query, validation
from examples import GOOD

pytestmark = pytest.mark.unit

SHOP = validation.validate(yaml.safe_load((Path(GOOD[0]).parent / "shop-kpis.yaml").read_text()))
NOW = buckets.parse_iso("2026-11-30T13:20:00Z")


def span(start: str, end: str) -> buckets.Span:
    return buckets.Span(buckets.parse_iso(start), buckets.parse_iso(end))


def choose(wanted: buckets.Span, max_buckets: int = 1000) -> query.LevelChoice | query.NoLevel:
    return query.choose_level(SHOP.levels, wanted, now_ms=NOW, max_buckets=max_buckets)


def test_a_recent_day_is_read_at_the_finest_level() -> None:
    choice = choose(span("2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z"))
    assert isinstance(choice, query.LevelChoice)
    assert (choice.level.name, choice.bucket_count) == ("15m", 96)
    assert choice.reason == "15m: 96 buckets"


def test_too_many_buckets_move_to_a_coarser_level() -> None:
    choice = choose(span("2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z"), max_buckets=1000)
    assert isinstance(choice, query.LevelChoice)
    assert (choice.level.name, choice.bucket_count) == ("1h", 696)
    assert choice.reason == "15m needs 2784 buckets, more than 1000; 1h: 696 buckets"


def test_a_range_older_than_a_levels_retention_skips_it() -> None:
    choice = choose(span("2026-09-01T00:00:00Z", "2026-09-02T00:00:00Z"))
    assert isinstance(choice, query.LevelChoice)
    assert choice.level.name == "1h"
    assert choice.reason.startswith("15m keeps 30d, back to 2026-10-31T13:15:00.000Z; ")


def test_a_coarser_level_says_it_widens_the_range() -> None:
    choice = choose(span("2025-06-01T10:30:00Z", "2025-06-03T10:30:00Z"))
    assert isinstance(choice, query.LevelChoice)
    assert choice.level.name == "1d"
    assert choice.span == span("2025-06-01T00:00:00Z", "2025-06-04T00:00:00Z")
    assert choice.reason.endswith(
        "1d: 3 buckets, widened to whole buckets "
        "[2025-06-01T00:00:00.000Z, 2025-06-04T00:00:00.000Z)"
    )


def test_no_level_holds_a_range_past_every_retention() -> None:
    choice = choose(span("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"))
    assert choice == query.NoLevel(
        "no level can answer [2020-01-01T00:00:00.000Z, 2020-01-02T00:00:00.000Z): "
        "15m keeps 30d, back to 2026-10-31T13:15:00.000Z; "
        "1h keeps 4mo, back to 2026-07-30T13:00:00.000Z; "
        "1d keeps 2y, back to 2024-11-30T00:00:00.000Z"
    )


def test_no_level_answers_in_few_enough_buckets() -> None:
    choice = choose(span("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"), max_buckets=100)
    assert isinstance(choice, query.NoLevel)
    assert choice.reason.endswith("1d needs 365 buckets, more than 100")


@pytest.mark.parametrize(
    ("wanted", "bound", "reason"),
    [
        (span("2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z"), 10, "is empty"),
        (span("2026-11-30T00:00:00Z", "2026-11-30T01:00:00Z"), 0, "admits no bucket"),
    ],
)
def test_bad_requests_get_a_reason(wanted: buckets.Span, bound: int, reason: str) -> None:
    choice = choose(wanted, max_buckets=bound)
    assert isinstance(choice, query.NoLevel)
    assert reason in choice.reason
