"""Sessionization: live visit counts, settled fields on close, and exact corrections."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from clickagg.domain import durations, sessions

pytestmark = pytest.mark.unit

MIN = 60_000
T0 = 1_764_151_200_000  # 2025-11-26T10:00:00Z, a 15m bucket start
CONFIG = sessions.Config(
    granularity=durations.parse("15m"),
    timeout_ms=30 * MIN,
    dimensions=(
        sessions.DimensionSource("channel", "channel", "visit"),
        sessions.DimensionSource("content", "page", "event"),
        sessions.DimensionSource("visitor_type", "visitor_type", "visit"),
    ),
)


def event(
    minute: float,
    kind: str = "page_view",
    *,
    channel: str = "email",
    page: str = "/",
    revenue: float = 0.0,
    eid: str | None = None,
) -> sessions.Counted:
    ts = T0 + int(minute * MIN)
    return sessions.Counted(ts, eid or f"e{ts}{kind}{page}", kind, revenue, (channel, page, ""))


def total(facts: list[sessions.Fact]) -> dict[tuple[int, tuple[str, ...]], dict[str, float]]:
    cells: dict[tuple[int, tuple[str, ...]], dict[str, float]] = defaultdict(dict)
    for fact in facts:
        cell = cells[(fact.bucket_ms, fact.values)]
        for name, amount in fact.deltas.items():
            cell[name] = cell.get(name, 0) + amount
    # Rounded: out-of-order merges may sum floats in another order.
    return {
        k: {n: round(a, 6) for n, a in v.items() if abs(a) > 1e-9}
        for k, v in cells.items()
        if any(abs(a) > 1e-9 for a in v.values())
    }


def test_a_visit_counts_live_and_settles_on_close() -> None:
    state = sessions.VisitorState()
    facts, close_at = sessions.advance(state, [event(1)], watermark_ms=0, config=CONFIG)
    assert total(facts) == {
        (T0, ("email", "/", "new")): {
            "visits": 1,
            "new_visits": 1,
            "events": 1,
            "page_views": 1,
            "entries": 1,
        },
    }
    assert close_at == T0 + 31 * MIN
    facts, close_at = sessions.advance(state, [], watermark_ms=T0 + 32 * MIN, config=CONFIG)
    assert total(facts) == {
        (T0, ("email", "/", "new")): {
            "closed_visits": 1,
            "bounces": 1,
            "exits": 1,
            "visit_page_views_sum": 1,
        },
    }
    assert close_at == T0 + MIN + sessions.VISITOR_MEMORY_MS  # remembered, then forgotten
    assert state.open_events == [] and state.visits_before == 1


def test_visit_scoped_values_come_from_the_first_event() -> None:
    state = sessions.VisitorState()
    facts, _ = sessions.advance(
        state, [event(1, page="/a"), event(20, channel="social", page="/b")], 0, CONFIG
    )
    keys = set(total(facts))
    assert (T0 + 15 * MIN, ("email", "/b", "new")) in keys  # channel of the first event


def test_second_visit_after_the_timeout_is_returning() -> None:
    state = sessions.VisitorState()
    sessions.advance(state, [event(0)], 0, CONFIG)
    facts, _ = sessions.advance(state, [event(45)], T0 + 40 * MIN, CONFIG)
    cells = total(facts)
    assert cells[(T0 + 45 * MIN, ("email", "/", "returning"))]["visits"] == 1
    assert cells[(T0, ("email", "/", "new"))]["closed_visits"] == 1


def test_a_late_earlier_event_moves_the_visit_start_exactly() -> None:
    state = sessions.VisitorState()
    first, _ = sessions.advance(state, [event(20, channel="ads")], 0, CONFIG)
    late, _ = sessions.advance(state, [event(10, channel="email")], 0, CONFIG)
    cells = total(first + late)
    assert cells[(T0, ("email", "/", "new"))]["visits"] == 1
    assert (T0 + 15 * MIN, ("ads", "/", "new")) not in cells  # retracted


def _one_shot(evs: list[sessions.Counted]) -> dict[tuple[int, tuple[str, ...]], dict[str, float]]:
    state = sessions.VisitorState()
    facts, _ = sessions.advance(state, evs, 0, CONFIG)
    closing, _ = sessions.advance(state, [], 2**62, CONFIG)
    return total(facts + closing)


@pytest.mark.parametrize("seed", range(30))
def test_any_arrival_order_within_the_watermark_gives_the_one_shot_result(seed: int) -> None:
    rng = random.Random(seed)
    minute, evs = 0.0, []
    for i in range(rng.randint(1, 25)):
        minute += rng.choice([0.1, 0.5, 3, 12, 29, 31, 45])
        kind = rng.choice(["page_view", "page_view", "product_view", "add_to_cart", "order"])
        evs.append(
            event(
                minute,
                kind,
                channel=rng.choice("ab"),
                page=rng.choice("xyz"),
                revenue=rng.choice([0.0, 9.5]),
                eid=f"e{i}",
            )
        )
    watermark_delay = 10 * MIN
    arrival = sorted(evs, key=lambda e: e.ts_ms + rng.randint(0, watermark_delay - 1))
    state, facts, newest = sessions.VisitorState(), [], 0
    for start in range(0, len(arrival), 3):
        batch = arrival[start : start + 3]
        newest = max([newest] + [e.ts_ms for e in batch])
        # Spark drops rows behind the watermark; the arrival delay keeps them all in.
        got, _ = sessions.advance(state, batch, newest - watermark_delay, CONFIG)
        facts += got
    got, _ = sessions.advance(state, [], 2**62, CONFIG)
    assert total(facts + got) == _one_shot(evs)


def test_state_round_trips_through_json() -> None:
    state = sessions.VisitorState()
    sessions.advance(state, [event(1), event(2, "order", revenue=5.0)], 0, CONFIG)
    restored = sessions.load_state(sessions.dump_state(state))
    assert restored == state


def test_the_next_look_is_when_the_first_open_visit_closes() -> None:
    state = sessions.VisitorState()
    _, look_at = sessions.advance(state, [event(0), event(60)], 0, CONFIG)
    assert look_at == T0 + 30 * MIN
    facts, look_at = sessions.advance(state, [], T0 + 31 * MIN, CONFIG)
    assert total(facts)[(T0, ("email", "/", "new"))]["closed_visits"] == 1
    assert look_at == T0 + 90 * MIN


@pytest.mark.parametrize("seed", range(30))
def test_the_state_holds_exactly_the_visits_the_watermark_leaves_open(seed: int) -> None:
    # Spark calls a visitor back only with new events or once the watermark passes the time
    # `advance` returned. Settle recomputes at the stream's watermark and adds nothing for
    # the visits still open there: the stream's state must hold those and no others.
    rng = random.Random(seed)
    evs = [
        event(minute, eid=f"e{i}")
        for i, minute in enumerate(sorted(rng.uniform(0, 600) for _ in range(rng.randint(1, 15))))
    ]
    watermark_delay = 10 * MIN
    state, look_at, arrived = sessions.VisitorState(), None, []
    for newest in range(T0, T0 + 700 * MIN, rng.choice([7, 40, 130]) * MIN):
        batch = [e for e in evs if e.ts_ms <= newest and e not in arrived]
        watermark = newest - watermark_delay
        if batch or (look_at is not None and watermark > look_at):
            _, look_at = sessions.advance(state, batch, watermark, CONFIG)
        arrived += batch
        open_there = [
            e
            for visit in sessions.split_visits(sorted(arrived), CONFIG.timeout_ms)
            if visit[-1].ts_ms + CONFIG.timeout_ms >= watermark
            for e in visit
        ]
        assert state.open_events == open_there
