"""Retention per level and for the raw archive: what goes, and what is held back and why."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from clickagg.domain import buckets, durations, retention, validation
from examples import GOOD

pytestmark = pytest.mark.unit

SHOP_OBJECT: dict[str, Any] = yaml.safe_load((Path(GOOD[0]).parent / "shop-kpis.yaml").read_text())
SHOP = validation.validate(SHOP_OBJECT)
NOW = buckets.parse_iso("2026-11-30T13:20:00Z")


def at(text: str) -> int:
    return buckets.parse_iso(text)


def with_archive_retention(text: str) -> Any:
    changed = copy.deepcopy(SHOP_OBJECT)
    changed["spec"]["rawArchive"] = {"retention": text}
    return validation.validate(changed)


CURRENT = {"1h": at("2026-11-30T11:00:00Z"), "1d": at("2026-11-29T00:00:00Z")}
SETTLED = at("2026-11-29T13:00:00Z")


def test_the_horizon_is_the_oldest_bucket_kept() -> None:
    quarter = durations.parse("15m")
    assert retention.horizon(durations.parse("30d"), quarter, NOW) == at("2026-10-31T13:15:00Z")
    assert retention.horizon(durations.parse("4mo"), durations.parse("1h"), NOW) == (
        at("2026-07-30T13:00:00Z")
    )
    assert retention.horizon(None, quarter, NOW) is None


def test_levels_rolled_up_in_time_lose_everything_past_retention() -> None:
    plan = retention.plan(SHOP, NOW, settled_end_ms=SETTLED, last_rolled_up=CURRENT)
    fifteen, hour, day = plan.levels
    assert fifteen.delete_before_ms == fifteen.horizon_ms == at("2026-10-31T13:15:00Z")
    assert hour.delete_before_ms == at("2026-07-30T13:00:00Z")
    assert day.delete_before_ms == at("2024-11-30T00:00:00Z")
    assert (fifteen.holds, hour.holds, day.holds) == ((), (), ())
    assert plan.archive.horizon_ms is None
    assert plan.archive.delete_before_ms is None


def test_a_level_keeps_what_a_coarser_level_has_not_rolled_up() -> None:
    stuck = {"1h": CURRENT["1h"], "1d": at("2026-10-01T00:00:00Z")}
    plan = retention.plan(SHOP, NOW, settled_end_ms=SETTLED, last_rolled_up=stuck)
    fifteen, hour, _ = plan.levels
    # 1d has rolled up to 2026-10-02: 15m and 1h keep everything from there.
    assert fifteen.delete_before_ms == at("2026-10-02T00:00:00Z")
    assert [h.reason for h in fifteen.holds] == [
        "not rolled up into 1d yet (rolled up to 2026-10-02T00:00:00.000Z)"
    ]
    assert hour.delete_before_ms == hour.horizon_ms  # 1d holds nothing past 1h's 4 months


def test_a_level_that_has_rolled_up_nothing_holds_everything_finer() -> None:
    plan = retention.plan(SHOP, NOW, settled_end_ms=SETTLED, last_rolled_up={"1h": CURRENT["1h"]})
    fifteen, hour, day = plan.levels
    assert fifteen.delete_before_ms is None
    assert hour.delete_before_ms is None
    assert day.delete_before_ms == day.horizon_ms
    assert hour.lines() == [
        "1h: retention 4mo, horizon 2026-07-30T13:00:00.000Z: deletes nothing",
        "  holds back everything: level 1d has rolled up nothing yet",
    ]


def test_the_archive_keeps_what_is_not_settled_and_rolled_up() -> None:
    aggregation = with_archive_retention("1d")
    plan = retention.plan(aggregation, NOW, settled_end_ms=SETTLED, last_rolled_up=CURRENT)
    archive = plan.archive
    assert archive.horizon_ms == at("2026-11-29T13:15:00Z")
    # Settled up to 13:00 of the 29th; 1h and 1d have rolled up past the horizon.
    assert archive.delete_before_ms == at("2026-11-29T13:00:00Z")
    assert [h.reason for h in archive.holds] == [
        "not settled yet (settled up to 2026-11-29T13:00:00.000Z)"
    ]
    assert archive.notes == (
        "settling reads 401 days of visitor history; with less kept, a recomputed visit of a "
        "visitor last seen before the horizon counts as new",
    )


def test_the_archive_waits_for_the_first_settle() -> None:
    plan = retention.plan(
        with_archive_retention("30d"), NOW, settled_end_ms=None, last_rolled_up=CURRENT
    )
    assert plan.archive.delete_before_ms is None
    assert plan.archive.holds[0].reason == "nothing is settled yet"


def test_a_long_kept_archive_has_no_note() -> None:
    plan = retention.plan(
        with_archive_retention("2y"), NOW, settled_end_ms=SETTLED, last_rolled_up=CURRENT
    )
    assert plan.archive.notes == ()


def test_the_dry_run_prints_every_level_and_the_archive() -> None:
    stuck = {"1h": CURRENT["1h"], "1d": at("2026-10-01T00:00:00Z")}
    plan = retention.plan(SHOP, NOW, settled_end_ms=SETTLED, last_rolled_up=stuck)
    assert plan.lines() == [
        "retention at 2026-11-30T13:20:00.000Z",
        "15m: retention 30d, horizon 2026-10-31T13:15:00.000Z: deletes before "
        "2026-10-02T00:00:00.000Z",
        "  holds back from 2026-10-02T00:00:00.000Z: not rolled up into 1d yet (rolled up to "
        "2026-10-02T00:00:00.000Z)",
        "1h: retention 4mo, horizon 2026-07-30T13:00:00.000Z: deletes before "
        "2026-07-30T13:00:00.000Z",
        "1d: retention 2y, horizon 2024-11-30T00:00:00.000Z: deletes before "
        "2024-11-30T00:00:00.000Z",
        "raw archive: retention forever: deletes nothing",
    ]
