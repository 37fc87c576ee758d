"""Leaders and movers rank by the KPI of summed state and flag what is too small to trust."""

from __future__ import annotations

import pytest

from clickagg.domain import steering

pytestmark = pytest.mark.unit

NOW = {
    "big": {"clicks": 60, "impressions": 300},  # 20 %
    "mid": {"clicks": 30, "impressions": 300},  # 10 %
    "tiny": {"clicks": 2, "impressions": 4},  # 50 %, on 4 impressions
    "dark": {"clicks": 0, "impressions": 0},  # no rate at all
}
BEFORE = {
    "big": {"clicks": 30, "impressions": 300},  # 10 %
    "mid": {"clicks": 90, "impressions": 300},  # 30 %
    "tiny": {"clicks": 1, "impressions": 40},
}


def test_leaders_rank_trusted_values_first_and_leave_out_undefined_ratios() -> None:
    ranked = steering.leaders(NOW, "click_through_rate", limit=10)
    assert [(r.value, r.small) for r in ranked] == [
        ("big", False),
        ("mid", False),
        ("tiny", True),
    ]
    assert ranked[0].kpi == pytest.approx(0.2)
    assert ranked[0].base == 300


def test_leaders_can_rank_lowest_first_and_be_cut() -> None:
    ranked = steering.leaders(NOW, "click_through_rate", limit=1, descending=False)
    assert [r.value for r in ranked] == ["mid"]


def test_a_count_kpi_rests_on_itself() -> None:
    ranked = steering.leaders(NOW, "clicks", limit=10, min_base=10)
    assert [(r.value, r.small) for r in ranked] == [
        ("big", False),
        ("mid", False),
        ("tiny", True),
        ("dark", True),
    ]


def test_movers_rank_by_the_size_of_the_change_and_flag_small_periods() -> None:
    moves = steering.movers(NOW, BEFORE, "click_through_rate", limit=10)
    assert [(m.value, m.small) for m in moves] == [
        ("mid", False),
        ("big", False),
        ("tiny", True),
    ]
    assert moves[0].change == pytest.approx(-0.2)
    assert (moves[2].now.base, moves[2].before.base) == (4, 40)


def test_a_count_absent_before_moves_from_zero() -> None:
    moves = steering.movers({"new": {"clicks": 50}}, {}, "clicks", limit=5)
    assert [(m.value, m.change, m.before.kpi) for m in moves] == [("new", 50.0, 0.0)]
