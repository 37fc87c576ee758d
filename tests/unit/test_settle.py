"""Settling: when a finest bucket is final, which buckets late events leave wrong, and how much
history a recompute reads to count as the stream would have without lateness."""

from __future__ import annotations

import collections
import dataclasses
import json
import random
from collections.abc import Sequence

import pytest

from clickagg import errors
from clickagg.domain import buckets, durations, events, model, sessions, settle

pytestmark = pytest.mark.unit

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = buckets.parse_iso("2026-11-29T10:00:00Z")
FIFTEEN = model.Level("15m", durations.parse("15m"), durations.parse("30d"), "shop-15m")
LATENESS = durations.parse("1d")
CONFIG = sessions.Config(
    granularity=FIFTEEN.granularity,
    timeout_ms=30 * MIN,
    dimensions=(
        sessions.DimensionSource("channel", "channel", "visit"),
        sessions.DimensionSource("content", "page", "event"),
        sessions.DimensionSource("visitor_type", "visitor_type", "visit"),
    ),
)

Cells = dict[tuple[int, tuple[str, ...], str], float]  # (bucket, values, field): amount


def event(
    minute: float, kind: str = "page_view", *, page: str = "/", eid: str = ""
) -> sessions.Counted:
    ts = T0 + int(minute * MIN)
    return sessions.Counted(ts, eid or f"e{ts}{kind}{page}", kind, 0.0, ("email", page, ""))


def cells(visitor_events: Sequence[sessions.Counted], watermark_ms: int) -> Cells:
    """What the sessionizer counts from these events in one go: the stream without lateness."""
    facts, _ = sessions.advance(sessions.VisitorState(), visitor_events, watermark_ms, CONFIG)
    summed: collections.defaultdict[tuple[int, tuple[str, ...], str], float]
    summed = collections.defaultdict(float)
    for fact in facts:
        for name, amount in fact.deltas.items():
            summed[(fact.bucket_ms, fact.values, name)] += amount
    return {key: round(amount, 6) for key, amount in summed.items() if abs(amount) > 1e-9}


def in_buckets(all_cells: Cells, keep: set[int] | frozenset[int]) -> Cells:
    return {key: amount for key, amount in all_cells.items() if key[0] in keep}


def outside(all_cells: Cells, skip: set[int] | frozenset[int]) -> Cells:
    return {key: amount for key, amount in all_cells.items() if key[0] not in skip}


# --- when a bucket is settled ------------------------------------------------------------------


def test_a_bucket_settles_once_the_watermark_passed_its_end_plus_the_lateness() -> None:
    bucket = T0
    end = bucket + 15 * MIN
    assert not settle.is_settled(bucket, FIFTEEN, end + DAY - 1, LATENESS)
    assert settle.is_settled(bucket, FIFTEEN, end + DAY, LATENESS)
    assert settle.settled_end(end + DAY, FIFTEEN, LATENESS) == end
    assert settle.settled_end(end + DAY + 14 * MIN, FIFTEEN, LATENESS) == end


def test_a_month_of_lateness_is_a_calendar_month() -> None:
    watermark = buckets.parse_iso("2026-03-31T12:00:00Z")
    settled = settle.settled_end(watermark, FIFTEEN, durations.parse("1mo"))
    assert buckets.iso(settled) == "2026-02-28T12:00:00.000Z"


@pytest.mark.parametrize("seed", range(20))
def test_no_event_the_contract_accepts_can_enter_a_settled_bucket(seed: int) -> None:
    # The watermark trails the newest event time of the ingest batches the stream has read;
    # every later batch measures lateness from at least that time.
    rng = random.Random(seed)
    delay = rng.choice([0, 10 * MIN, 2 * HOUR])
    newest_before = T0 + rng.randrange(0, 10 * DAY)
    watermark = newest_before - delay
    window = events.lateness_window(LATENESS)
    settled = settle.settled_end(watermark, FIFTEEN, LATENESS)
    limit = events.too_late_limit(window, newest_before)
    assert limit is not None and limit >= settled
    for ts in (settled - 1, settled - rng.randrange(1, 3 * DAY)):
        line = json.dumps({"event_id": "e", "ts": ts, "visitor_id": "v", "type": "x"}).encode()
        with pytest.raises(errors.EventContractError, match=r"^too_late: "):
            events.parse_event(line, now_ms=newest_before, window=window, newest_ms=newest_before)


# --- which buckets late events leave wrong -----------------------------------------------------


def test_late_buckets_are_those_of_events_the_stream_missed() -> None:
    arrivals = [
        settle.LateArrival(T0 + 20 * MIN, T0 + HOUR),  # behind the watermark: missed
        settle.LateArrival(T0 + HOUR, T0 + HOUR),  # on the watermark: counted as missed
        settle.LateArrival(T0 + 2 * HOUR, T0 + HOUR),  # ahead of it: the stream counted it
        settle.LateArrival(T0 + 25 * MIN, T0 + HOUR),
    ]
    assert settle.late_buckets(arrivals, FIFTEEN) == (T0 + 15 * MIN, T0 + HOUR)


def test_a_late_event_bridging_two_visits_affects_both() -> None:
    # The repro: page views at 10:00 and 11:00, a late product view at 10:30.
    first, third = event(0, page="first"), event(60, page="third")
    bridge = event(30, "product_view")
    affected = settle.affected_buckets([first, third, bridge], {bridge.event_id}, CONFIG)
    assert affected == {T0, T0 + 30 * MIN, T0 + HOUR}


def test_a_late_first_visit_makes_the_next_one_returning() -> None:
    late = event(-5 * 60)
    later = [event(0), event(10)]
    affected = settle.affected_buckets([late, *later], {late.event_id}, CONFIG)
    assert affected == {T0 - 5 * HOUR, T0}


def test_a_late_event_in_a_later_visit_leaves_earlier_visits_alone() -> None:
    visits = [event(0), event(5), event(120), event(125)]
    late = event(130)
    affected = settle.affected_buckets([*visits, late], {late.event_id}, CONFIG)
    assert affected == {T0 + 120 * MIN}


def test_nothing_late_affects_nothing() -> None:
    assert settle.affected_buckets([event(0), event(90)], set(), CONFIG) == frozenset()


@pytest.mark.parametrize("seed", range(60))
def test_cells_outside_the_affected_buckets_are_what_the_stream_counted(seed: int) -> None:
    rng = random.Random(seed)
    minutes = sorted(rng.uniform(0, 600) for _ in range(rng.randrange(1, 14)))
    kinds = ("page_view", "product_view", "add_to_cart", "order")
    visitor = [event(m, rng.choice(kinds), page=rng.choice("abc")) for m in minutes]
    late = {e.event_id for e in visitor if rng.random() < 0.3}
    watermark = T0 + rng.choice([300, 700]) * MIN
    affected = settle.affected_buckets(visitor, late, CONFIG)
    stream = cells([e for e in visitor if e.event_id not in late], watermark)
    truth = cells(visitor, watermark)
    assert outside(stream, affected) == outside(truth, affected)
    for e in visitor:
        if e.event_id in late:
            assert buckets.floor(e.ts_ms, CONFIG.granularity) in affected


def test_a_settle_pass_recomputes_newly_settled_buckets_against_the_stream() -> None:
    # An earlier pass settled the 10:00 visit; a later one settles 12:00 and up.
    earlier_late = event(-5 * 60)  # made the 10:00 visit returning, already recomputed
    now_late = event(125)
    visitor = [earlier_late, event(0), event(120), now_late, event(5 * 60)]
    redo = settle.visitor_recompute(
        visitor,
        late_before={earlier_late.event_id},
        late_now={now_late.event_id},
        previously_settled_end_ms=T0 + 2 * HOUR,
        settled_end_ms=T0 + 4 * HOUR,
        config=CONFIG,
    )
    # 12:00 is newly settled and holds the stream's count without either late event; 10:00
    # was fixed before and the new late event does not touch it; 15:00 is not settled yet.
    assert redo == {T0 + 2 * HOUR}


def test_a_newly_late_event_can_reopen_a_bucket_settled_before() -> None:
    start = event(0)
    bridge = event(29)
    visitor = [start, bridge, event(58)]
    redo = settle.visitor_recompute(
        visitor,
        late_before=set(),
        late_now={bridge.event_id},
        previously_settled_end_ms=T0 + 15 * MIN,
        settled_end_ms=T0 + 30 * MIN,
        config=CONFIG,
    )
    assert redo == {T0, T0 + 15 * MIN}


def test_recompute_ranges_join_buckets_close_together() -> None:
    starts = [T0, T0 + 15 * MIN, T0 + 45 * MIN, T0 + 3 * DAY]
    assert settle.recompute_ranges(starts, FIFTEEN, max_gap_ms=HOUR) == (
        buckets.Span(T0, T0 + HOUR),
        buckets.Span(T0 + 3 * DAY, T0 + 3 * DAY + 15 * MIN),
    )
    assert settle.recompute_ranges([], FIFTEEN) == ()


# --- how much a recompute reads ----------------------------------------------------------------


def test_the_first_read_covers_a_day_of_visit_and_the_visitor_memory_before() -> None:
    target = buckets.Span(T0, T0 + HOUR)
    read = settle.read_range(target, CONFIG)
    assert read.visits_from_ms == T0 - DAY
    assert read.start_ms == T0 - DAY - sessions.VISITOR_MEMORY_MS
    assert read.end_ms == T0 + HOUR + DAY
    assert "400 days of visitor history" in read.reason
    assert "1 day across either edge" in read.reason


def test_a_visit_read_whole_needs_no_more() -> None:
    read = settle.read_range(buckets.Span(T0, T0 + HOUR), CONFIG)
    assert settle.shortfall(read, [event(-20), event(0), event(70)], CONFIG) is None
    assert settle.shortfall(read, [event(-3000)], CONFIG) is None  # touches nothing


def test_a_visit_starting_before_the_read_widens_it_to_its_start() -> None:
    read = settle.read_range(buckets.Span(T0, T0 + HOUR), CONFIG, visit_reach_ms=HOUR)
    chain = [event(m) for m in range(-150, 1, 25)]  # one visit from 07:30 into the target
    wider = settle.shortfall(read, chain, CONFIG, visit_reach_ms=HOUR)
    assert wider is not None
    assert wider.visits_from_ms == T0 - 150 * MIN
    assert wider.start_ms == wider.visits_from_ms - sessions.VISITOR_MEMORY_MS
    assert "a visit starts 2026-11-29T07:30:00.000Z" in wider.reason
    assert settle.shortfall(wider, chain, CONFIG, visit_reach_ms=HOUR) is None


def test_a_visit_running_past_the_read_widens_its_end() -> None:
    read = settle.read_range(buckets.Span(T0, T0 + HOUR), CONFIG, visit_reach_ms=HOUR)
    chain = [event(m) for m in range(30, 300, 25)]
    wider = settle.shortfall(read, chain, CONFIG, visit_reach_ms=HOUR)
    assert wider is not None
    assert "a visit is still going 2026-11-29T11:45:00.000Z" in wider.reason
    rounds = 1
    while (again := settle.shortfall(wider, chain, CONFIG, visit_reach_ms=HOUR)) is not None:
        wider, rounds = wider.union(again), rounds + 1
    assert wider.end_ms > T0 + 280 * MIN + 30 * MIN  # past the last event plus the timeout
    assert rounds == 3  # each round reads a timeout and a reach past the last event it saw


def history_only(e: sessions.Counted) -> sessions.Counted:
    """An event as the read's history part holds it: visitor, id and time only."""
    return dataclasses.replace(e, type="", values=("__none__", "__none__", ""))


def recompute(
    visitor: Sequence[sessions.Counted], target: buckets.Span, watermark: int, reach: int
) -> Cells:
    """What a recompute writes for the target, reading as settle says."""
    read = settle.read_range(target, CONFIG, visit_reach_ms=reach)
    while (wider := settle.shortfall(read, visitor, CONFIG, visit_reach_ms=reach)) is not None:
        read = read.union(wider)
    seen = [
        e if e.ts_ms >= read.visits_from_ms else history_only(e)
        for e in visitor
        if read.start_ms <= e.ts_ms < read.end_ms
    ]
    return in_buckets(cells(seen, watermark), set(buckets.starts(target, CONFIG.granularity)))


@pytest.mark.parametrize("seed", range(60))
def test_a_recompute_counts_the_target_as_the_stream_does_without_lateness(seed: int) -> None:
    rng = random.Random(seed)
    minute, visitor = rng.uniform(-900, -100), []
    kinds = ("page_view", "product_view", "add_to_cart", "order")
    while minute < 900:
        visitor.append(event(minute, rng.choice(kinds), page=rng.choice("abc")))
        minute += rng.choice([rng.uniform(0, 29), rng.uniform(0, 29), rng.uniform(31, 400)])
    target = buckets.Span(T0, T0 + rng.choice([15, 60, 180]) * MIN)
    watermark = T0 + rng.choice([200, 2000]) * MIN
    want = in_buckets(cells(visitor, watermark), set(buckets.starts(target, FIFTEEN.granularity)))
    assert recompute(visitor, target, watermark, reach=rng.choice([30, 60, 120]) * MIN) == want


def test_the_visitor_memory_decides_returning() -> None:
    target = buckets.Span(T0, T0 + 15 * MIN)
    long_ago = event(-(sessions.VISITOR_MEMORY_MS // MIN) + 24 * 60)
    visit = [event(0)]
    got = recompute([long_ago, *visit], target, T0 + DAY, reach=DAY)
    assert {values[2] for _, values, _ in got} == {"returning"}


def test_a_copy_the_stream_counted_instead_of_the_first_changes_both_visits() -> None:
    # The first copy (at 0) was late; the stream counted a later copy (at 60) instead.
    first = event(0, eid="d1")
    copy = dataclasses.replace(event(60), event_id="d1")
    other = event(65)
    changed = settle.changed_buckets([copy, other], [first, other], CONFIG)
    assert changed == {T0, T0 + HOUR}
