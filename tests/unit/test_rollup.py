"""Rollups: finer buckets into coarser ones, completeness, each level's watermark, and redo."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clickagg.domain import buckets, cells, kpis, model, rollup, validation
from examples import GOOD

pytestmark = pytest.mark.unit

SHOP = validation.validate(yaml.safe_load((Path(GOOD[0]).parent / "shop-kpis.yaml").read_text()))
FIFTEEN, HOUR, DAY = SHOP.levels
MIN = 60_000


def at(text: str) -> int:
    return buckets.parse_iso(text)


def test_the_levels_of_the_example() -> None:
    assert [level.name for level in SHOP.levels] == ["15m", "1h", "1d"]


def test_a_finer_bucket_rolls_up_into_the_coarser_bucket_holding_it() -> None:
    assert rollup.parent(at("2026-11-29T10:45:00Z"), HOUR) == at("2026-11-29T10:00:00Z")
    assert rollup.parent(at("2026-11-29T23:00:00Z"), DAY) == at("2026-11-29T00:00:00Z")
    hour = rollup.children(at("2026-11-29T10:00:00Z"), HOUR)
    assert [buckets.iso(b)[11:16] for b in buckets.starts(hour, FIFTEEN.granularity)] == [
        "10:00",
        "10:15",
        "10:30",
        "10:45",
    ]
    assert buckets.count(rollup.children(at("2026-11-29T00:00:00Z"), DAY), HOUR.granularity) == 24


def test_the_coarser_document_id_is_the_cells_id_at_the_parent_bucket() -> None:
    assert rollup.parent_doc_id(HOUR, at("2026-11-29T10:45:00Z"), "channel", ["email"]) == (
        cells.doc_id("1h", at("2026-11-29T10:00:00Z"), "channel", ["email"])
    )


@pytest.mark.parametrize(
    "values", [(), ("email",), ("a|b", "100%"), ("%7C", "%25|"), ("",), ("x", "")]
)
def test_a_document_id_reads_back_as_its_level_bucket_cuboid_and_values(
    values: tuple[str, ...],
) -> None:
    bucket = at("2026-11-29T10:45:00Z")
    cuboid = "+".join(f"d{i}" for i in range(len(values))) or model.TOTALS
    assert cells.parse_doc_id(cells.doc_id("15m", bucket, cuboid, values)) == (
        "15m",
        bucket,
        cuboid,
        values,
    )


def test_counts_and_sums_add_and_the_sketch_merges() -> None:
    rules = dict(rollup.combine_rules(kpis.STATE_FIELDS))
    assert rules["hll_visitors"] == "merge"
    assert rules["m_visits"] == rules["f_revenue"] == rules[cells.BOT_EVENTS_FIELD] == "sum"
    assert len(rules) == len(kpis.STATE_FIELDS) + 1


def test_a_coarser_bucket_is_complete_once_all_its_finer_buckets_are() -> None:
    assert rollup.complete_end(at("2026-11-29T10:45:00Z"), HOUR) == at("2026-11-29T10:00:00Z")
    assert rollup.complete_end(at("2026-11-29T11:00:00Z"), HOUR) == at("2026-11-29T11:00:00Z")


def test_the_first_step_starts_at_the_oldest_input_and_the_next_after_the_watermark() -> None:
    first = rollup.next_step(
        HOUR, None, at("2026-11-29T12:30:00Z"), input_start_ms=at("2026-11-29T09:15:00Z")
    )
    assert first is not None
    assert first.span == buckets.Span(at("2026-11-29T09:00:00Z"), at("2026-11-29T12:00:00Z"))
    assert first.last_bucket_ms == at("2026-11-29T11:00:00Z")
    assert str(first) == (
        "1h: roll up [2026-11-29T09:00:00.000Z, 2026-11-29T12:00:00.000Z), then last rolled-up "
        "bucket 2026-11-29T11:00:00.000Z"
    )
    after = rollup.next_step(
        HOUR, first.last_bucket_ms, at("2026-11-29T14:00:00Z"), input_start_ms=0
    )
    assert after is not None
    assert after.span == buckets.Span(at("2026-11-29T12:00:00Z"), at("2026-11-29T14:00:00Z"))
    assert (
        rollup.next_step(HOUR, after.last_bucket_ms, at("2026-11-29T14:59:00Z"), input_start_ms=0)
        is None
    )
    assert rollup.next_step(HOUR, None, None, input_start_ms=0) is None


def test_each_level_reads_up_to_the_finer_levels_rolled_up_end() -> None:
    last = {"1h": at("2026-11-29T22:00:00Z"), "1d": None}
    settled = at("2026-11-30T00:15:00Z")
    assert rollup.input_end(SHOP.levels, 1, settled, last) == settled
    assert rollup.input_end(SHOP.levels, 2, settled, last) == at("2026-11-29T23:00:00Z")
    assert rollup.input_end(SHOP.levels, 2, settled, {}) is None
    with pytest.raises(ValueError, match="streamed"):
        rollup.input_end(SHOP.levels, 0, settled, last)


def test_how_far_behind_a_level_is() -> None:
    assert (
        rollup.behind_ms(
            HOUR, at("2026-11-29T09:00:00Z"), at("2026-11-29T12:10:00Z"), input_start_ms=0
        )
        == 2 * 60 * MIN
    )
    assert (
        rollup.behind_ms(
            HOUR, at("2026-11-29T11:00:00Z"), at("2026-11-29T12:10:00Z"), input_start_ms=0
        )
        == 0
    )


def test_a_bucket_settled_again_redoes_its_rolled_up_ancestors() -> None:
    last: dict[str, int | None] = {"1h": at("2026-11-29T11:00:00Z"), "1d": None}
    resettled = [at("2026-11-29T10:15:00Z"), at("2026-11-29T10:30:00Z"), at("2026-11-29T12:00:00Z")]
    assert rollup.redo(resettled, SHOP.levels, last) == {
        "1h": (at("2026-11-29T10:00:00Z"),),  # 12:00 is not rolled up yet: the next step does it
        "1d": (),
    }
    last["1d"] = at("2026-11-29T00:00:00Z")
    assert rollup.redo(resettled, SHOP.levels, last)["1d"] == (at("2026-11-29T00:00:00Z"),)


def test_a_one_level_aggregation_rolls_up_nothing() -> None:
    only: tuple[model.Level, ...] = (FIFTEEN,)
    assert rollup.redo([at("2026-11-29T10:15:00Z")], only, {}) == {}


def test_a_level_is_current_within_one_of_its_buckets_of_its_input() -> None:
    settled = at("2026-11-29T10:20:00Z")
    last = {"1h": at("2026-11-29T09:00:00Z"), "1d": at("2026-11-28T00:00:00Z")}
    hour, day = rollup.lags(SHOP.levels, settled, last)
    assert (hour.behind_ms, hour.current) == (0, True)
    assert (day.behind_ms, day.current, day.input_end_ms) == (0, True, at("2026-11-29T10:00:00Z"))
    late = {"1h": at("2026-11-29T07:00:00Z"), "1d": at("2026-11-27T00:00:00Z")}
    hour, day = rollup.lags(SHOP.levels, settled, late)
    assert (hour.behind_ms, hour.current) == (2 * 60 * MIN, False)
    assert str(hour) == "1h is 120 min behind its input"
    assert (day.behind_ms, day.current) == (24 * 60 * MIN, True)


def test_a_level_that_rolled_up_nothing_is_not_current_once_it_has_input() -> None:
    hour, day = rollup.lags(SHOP.levels, at("2026-11-29T10:20:00Z"), {})
    assert (hour.behind_ms, hour.current, str(hour)) == (
        None,
        False,
        "1h has rolled up nothing yet",
    )
    assert (day.behind_ms, day.current) == (0, True)  # its input (1h) is complete nowhere yet
    nothing_settled = rollup.lags(SHOP.levels, None, {})
    assert all(lag.current for lag in nothing_settled)
