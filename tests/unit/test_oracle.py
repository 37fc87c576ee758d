"""The test oracle against small event sets whose cells are computed by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest

import oracle

pytestmark = pytest.mark.unit

MIN = 60_000
T0 = 1_455_616_800_000  # 2016-02-16T10:00:00Z, a 15-minute bucket start
B1 = T0 + 15 * MIN
B2 = T0 + 30 * MIN
NOW = T0 + 120 * MIN
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

DIMENSIONS = {
    "channel": ("channel", "visit"),
    "campaign": ("campaign", "visit"),
    "offer": ("offer", "event"),
    "content": ("page", "event"),
    "landing_page": ("page", "visit"),
    "country": ("country", "visit"),
    "visitor_type": ("visitor_type", "visit"),
}
CUBOIDS = [
    (),
    ("channel",),
    ("content",),
    ("landing_page",),
    ("offer",),
    ("visitor_type",),
    ("channel", "content"),
]


def line(event_id: str, ts: Any, visitor: str, type_: str = "page_view", **fields: Any) -> bytes:
    record = {"event_id": event_id, "ts": ts, "visitor_id": visitor, "type": type_, **fields}
    return json.dumps(record).encode()


def run(lines: list[bytes], **kwargs: Any) -> oracle.OracleResult:
    options: dict[str, Any] = {
        "finest_granularity_s": 900,
        "session_timeout_s": 1800,
        "dimensions": DIMENSIONS,
        "cuboids": CUBOIDS,
        "now_ms": NOW,
    }
    options.update(kwargs)
    return oracle.compute(lines, **options)


def cell(**nonzero: float) -> dict[str, float]:
    """A whole cell: the given fields, every other field 0."""
    unknown = set(nonzero) - set(oracle.CELL_FIELDS)
    assert not unknown, unknown
    return {name: float(nonzero.get(name, 0)) for name in oracle.CELL_FIELDS}


def cells_of(result: oracle.OracleResult, cuboid: str) -> dict[tuple[int, tuple[str, ...]], Any]:
    return {
        (bucket, values): state
        for (name, bucket, values), state in result.cells.items()
        if name == cuboid
    }


def test_a_bounce_visit() -> None:
    result = run([line("e1", T0 + MIN, "a", page="/home", channel="email")])
    bounce = cell(
        events=1,
        page_views=1,
        entries=1,
        exits=1,
        visits=1,
        new_visits=1,
        closed_visits=1,
        bounces=1,
        visit_page_views_sum=1,
        unique_visitors=1,
    )
    assert cells_of(result, "totals") == {(T0, ()): bounce}
    assert cells_of(result, "channel") == {(T0, ("email",)): bounce}
    assert cells_of(result, "channel+content") == {(T0, ("email", "/home")): bounce}
    assert cells_of(result, "offer") == {(T0, ("__none__",)): bounce}
    assert (result.valid_events, result.duplicates, result.dead_letters) == (1, 0, 0)
    assert result.bot_events == {}


def test_a_three_page_visit_with_an_order() -> None:
    result = run(
        [
            line("b1", T0, "b", page="/a"),
            line("b2", T0 + 20_000, "b", page="/b"),
            line("b3", T0 + 40_000, "b", page="/c"),
            line("b4", T0 + 50_000, "b", "add_to_cart", page="/c"),
            line("b5", T0 + 70_000, "b", "order", page="/c", revenue=25.5, order_id="o-1"),
        ]
    )
    visit = {
        "visits": 1,
        "new_visits": 1,
        "visits_with_order": 1,
        "closed_visits": 1,
        "engaged_visits": 1,
        "visit_duration_seconds_sum": 70.0,
        "visit_page_views_sum": 3,
        "visits_with_cart": 1,
    }
    assert cells_of(result, "totals") == {
        (T0, ()): cell(
            events=5,
            page_views=3,
            add_to_carts=1,
            orders=1,
            revenue=25.5,
            entries=1,
            exits=1,
            unique_visitors=1,
            **visit,
        )
    }
    assert cells_of(result, "content") == {
        (T0, ("/a",)): cell(events=1, page_views=1, entries=1, unique_visitors=1, **visit),
        (T0, ("/b",)): cell(events=1, page_views=1, unique_visitors=1),
        (T0, ("/c",)): cell(
            events=3,
            page_views=1,
            add_to_carts=1,
            orders=1,
            revenue=25.5,
            exits=1,
            unique_visitors=1,
        ),
    }
    # landing_page is visit-scoped: every event of the visit lands on /a
    assert list(cells_of(result, "landing_page")) == [(T0, ("/a",))]


def test_a_cart_without_order_and_an_order_without_revenue() -> None:
    result = run(
        [
            line("c1", T0, "c", page="/p"),
            line("c2", T0 + 5_000, "c", "add_to_cart", page="/p"),
            # a second visitor: an order without revenue counts with 0, and revenue on a page view
            # is ignored
            line("d1", T0, "d", page="/q", revenue=10),
            line("d2", T0 + 1_000, "d", "order", page="/q"),
        ]
    )
    assert cells_of(result, "totals") == {
        (T0, ()): cell(
            events=4,
            page_views=2,
            add_to_carts=1,
            orders=1,
            revenue=0,
            entries=2,
            exits=2,
            visits=2,
            new_visits=2,
            visits_with_order=1,
            closed_visits=2,
            bounces=2,
            engaged_visits=1,
            visit_duration_seconds_sum=6.0,
            visit_page_views_sum=2,
            visits_with_cart=1,
            visits_with_cart_without_order=1,
            unique_visitors=2,
        )
    }


def test_a_gap_of_31_minutes_starts_a_returning_visit_and_30_minutes_does_not() -> None:
    result = run(
        [
            line("r1", T0, "r", page="/x"),
            line("r2", T0 + 31 * MIN, "r", page="/y"),
            line("s1", T0, "s", page="/x"),
            line("s2", T0 + 30 * MIN, "s", page="/y"),
        ]
    )
    assert cells_of(result, "visitor_type") == {
        (T0, ("new",)): cell(
            events=2,
            page_views=2,
            entries=2,
            exits=1,
            visits=2,
            new_visits=2,
            closed_visits=2,
            bounces=1,
            engaged_visits=1,
            visit_duration_seconds_sum=1800.0,
            visit_page_views_sum=3,
            unique_visitors=2,
        ),
        (B2, ("new",)): cell(events=1, page_views=1, exits=1, unique_visitors=1),
        (B2, ("returning",)): cell(
            events=1,
            page_views=1,
            entries=1,
            exits=1,
            visits=1,
            closed_visits=1,
            bounces=1,
            visit_page_views_sum=1,
            unique_visitors=1,
        ),
    }


def test_a_visit_spanning_two_buckets() -> None:
    result = run(
        [
            line("x1", T0 + 14 * MIN, "x", page="/x", channel="social"),
            line("x2", T0 + 16 * MIN, "x", page="/y", channel="email"),
        ]
    )
    # event-level fields by event bucket, visit-level at the start, the exit at the last page
    assert cells_of(result, "totals") == {
        (T0, ()): cell(
            events=1,
            page_views=1,
            entries=1,
            visits=1,
            new_visits=1,
            closed_visits=1,
            engaged_visits=1,
            visit_duration_seconds_sum=120.0,
            visit_page_views_sum=2,
            unique_visitors=1,
        ),
        (B1, ()): cell(events=1, page_views=1, exits=1, unique_visitors=1),
    }
    # the later event keeps the visit's channel and landing page
    assert set(cells_of(result, "channel")) == {(T0, ("social",)), (B1, ("social",))}
    assert set(cells_of(result, "landing_page")) == {(T0, ("/x",)), (B1, ("/x",))}
    assert set(cells_of(result, "channel+content")) == {
        (T0, ("social", "/x")),
        (B1, ("social", "/y")),
    }


def test_visit_scoped_and_event_scoped_dimensions() -> None:
    result = run(
        [
            line("f1", T0, "f", page="/landing", channel="email", country="DE"),
            line(
                "f2",
                T0 + 5 * MIN,
                "f",
                "impression",
                page="/other",
                channel="social",
                offer="o1",
                country="FR",
            ),
            line("f3", T0 + 6 * MIN, "f", "click", page="/other", channel="social", offer="o1"),
            # no channel on the first event: the visit is __none__ throughout
            line("g1", T0, "g", page="/landing"),
            line("g2", T0 + MIN, "g", page="/landing", channel="social"),
        ]
    )
    f_visit = {
        "visits": 1,
        "new_visits": 1,
        "closed_visits": 1,
        "bounces": 1,
        "engaged_visits": 1,
        "visit_duration_seconds_sum": 360.0,
        "visit_page_views_sum": 1,
    }
    g_visit = {
        "visits": 1,
        "new_visits": 1,
        "closed_visits": 1,
        "engaged_visits": 1,
        "visit_duration_seconds_sum": 60.0,
        "visit_page_views_sum": 2,
    }
    assert cells_of(result, "channel") == {
        (T0, ("email",)): cell(
            events=3,
            page_views=1,
            impressions=1,
            clicks=1,
            entries=1,
            exits=1,
            unique_visitors=1,
            **f_visit,
        ),
        (T0, ("__none__",)): cell(
            events=2,
            page_views=2,
            entries=1,
            exits=1,
            unique_visitors=1,
            **g_visit,
        ),
    }
    assert cells_of(result, "content") == {
        (T0, ("/landing",)): cell(
            events=3,
            page_views=3,
            entries=2,
            exits=2,
            visits=2,
            new_visits=2,
            closed_visits=2,
            bounces=1,
            engaged_visits=2,
            visit_duration_seconds_sum=420.0,
            visit_page_views_sum=3,
            unique_visitors=2,
        ),
        (T0, ("/other",)): cell(events=2, impressions=1, clicks=1, unique_visitors=1),
    }
    assert cells_of(result, "offer") == {
        (T0, ("__none__",)): cell(
            events=3,
            page_views=3,
            entries=2,
            exits=2,
            visits=2,
            new_visits=2,
            closed_visits=2,
            bounces=1,
            engaged_visits=2,
            visit_duration_seconds_sum=420.0,
            visit_page_views_sum=3,
            unique_visitors=2,
        ),
        (T0, ("o1",)): cell(events=2, impressions=1, clicks=1, unique_visitors=1),
    }
    assert set(cells_of(result, "channel+content")) == {
        (T0, ("email", "/landing")),
        (T0, ("email", "/other")),
        (T0, ("__none__", "/landing")),
    }
    assert set(cells_of(result, "landing_page")) == {(T0, ("/landing",))}


def test_bots_duplicates_and_dead_letters() -> None:
    human = line("h1", T0, "h", page="/p", user_agent=CHROME)
    result = run(
        [
            human,
            human,  # resent: dropped
            line("bot1", T0 + MIN, "crawler", page="/p", user_agent=GOOGLEBOT),
            line("bot2", B1, "crawler", page="/p", user_agent=GOOGLEBOT),
            line("bot2", B1, "crawler", page="/p", user_agent=GOOGLEBOT),
            b"{not json",
            b'{"event_id": "m1", "ts": 1455616800000, "visitor_id": "h", "type": "page_view"',
        ]
    )
    assert result.bot_events == {T0: 1, B1: 1}
    assert (result.valid_events, result.duplicates, result.dead_letters) == (3, 2, 2)
    assert cells_of(result, "totals") == {
        (T0, ()): cell(
            events=1,
            page_views=1,
            entries=1,
            exits=1,
            visits=1,
            new_visits=1,
            closed_visits=1,
            bounces=1,
            visit_page_views_sum=1,
            unique_visitors=1,
        )
    }


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\xff\xfe{}",
        b"[1, 2]",
        b'{"event_id": "z", "event_id": "z", "ts": 1455616800000, "visitor_id": "v", '
        b'"type": "page_view"}',
        line("z", T0, "v", revenue=float("nan")),
        line("z", T0, "v", "order", revenue=-1),
        line("z", T0, "v", "order", revenue=True),
        line("", T0, "v"),
        line("  ", T0, "v"),
        line("z", T0, ""),
        line("z", T0, "v", ""),
        line("z", T0, 42),  # type: ignore[arg-type]
        json.dumps({"event_id": "z", "visitor_id": "v", "type": "page_view"}).encode(),
        line("z", "2016-02-16T10:00:00", "v"),
        line("z", "2016-02-16 10:00:00Z", "v"),
        line("z", "2016-02-30T10:00:00Z", "v"),
        line("z", "2016-02-16T10:00Z", "v"),
        line("z", "yesterday", "v"),
        line("z", T0 / 1000, "v"),  # epoch seconds: 1970
        line("z", 1_455_616_800_000.5, "v"),
        line("z", NOW + 86_400_001, "v"),
        line("z", NOW - 30 * 86_400_000 - 1, "v"),
        line("z", T0, "v", page=7),
        line("z", T0, "v", channel="__other__"),
        line("z", T0, "v", page="__none__"),
        line("z", T0, "v", url="x" * 70_000),
    ],
)
def test_a_bad_line_is_a_dead_letter(bad: bytes) -> None:
    result = run([bad])
    assert (result.dead_letters, result.valid_events, result.cells) == (1, 0, {})


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        (T0, T0),
        (float(T0), T0),
        ("2016-02-16T10:00:00Z", T0),
        ("2016-02-16t10:00:00z", T0),
        ("2016-02-16T11:00:00.123456789+01:00", T0 + 123),
        ("2016-02-16T11:00:00.9+0100", T0 + 900),
        ("2016-02-16T09:44:59.999-00:15", T0 - 1),
        (NOW + 86_400_000, NOW + 86_400_000),
        (NOW - 30 * 86_400_000, NOW - 30 * 86_400_000),
    ],
)
def test_timestamps(ts: Any, expected_ms: int) -> None:
    result = run([line("t", ts, "v", page="/p")], finest_granularity_s=1, cuboids=[()])
    assert result.dead_letters == 0
    assert list(result.cells) == [("totals", expected_ms - expected_ms % 1000, ())]


def test_blank_optional_strings_are_no_value_and_unknown_fields_are_ignored() -> None:
    result = run([line("n", T0, "v", page=" ", channel=None, campaign="", extra={"a": 1})])
    assert result.dead_letters == 0
    assert set(cells_of(result, "channel+content")) == {(T0, ("__none__", "__none__"))}


def test_open_visits_settle_nothing_until_the_watermark_passes() -> None:
    events = [line("o1", T0, "o", page="/a"), line("o2", T0 + MIN, "o", page="/b")]
    started = {
        "events": 2,
        "page_views": 2,
        "entries": 1,
        "visits": 1,
        "new_visits": 1,
        "unique_visitors": 1,
    }
    closed = {
        "exits": 1,
        "closed_visits": 1,
        "engaged_visits": 1,
        "visit_duration_seconds_sum": 60.0,
        "visit_page_views_sum": 2,
    }
    open_result = run(events, close_all_visits=False)
    assert cells_of(open_result, "totals") == {(T0, ()): cell(**started)}
    last_plus_timeout = T0 + MIN + 30 * MIN
    at = run(events, close_all_visits=False, watermark_ms=last_plus_timeout)
    assert cells_of(at, "totals") == {(T0, ()): cell(**started)}
    past = run(events, close_all_visits=False, watermark_ms=last_plus_timeout + 1)
    assert cells_of(past, "totals") == {(T0, ()): cell(**started, **closed)}


HOUR = 60 * MIN


def test_too_late_measures_from_the_newest_event_of_earlier_deliveries() -> None:
    late = {"allowed_lateness_ms": HOUR, "now_ms": T0 + 4 * HOUR}
    together = [line("old", T0, "a"), line("new", T0 + 3 * HOUR, "b")]
    # After a delivery at T0, a delivery spanning 3 hours keeps its T0 event.
    after_t0 = run([line("seen", T0, "c"), *together], deliveries=[0, 1, 1], **late)
    assert (after_t0.valid_events, after_t0.dead_letters) == (3, 0)
    # After one at T0 + 3h, the T0 event is too late.
    after_3h = run([line("seen", T0 + 3 * HOUR, "c"), *together], deliveries=[0, 1, 1], **late)
    assert (after_3h.valid_events, after_3h.dead_letters) == (2, 1)
    assert set(cells_of(after_3h, "totals")) == {(T0 + 3 * HOUR, ())}
    # Exactly the allowed lateness behind is not too late; one millisecond more is.
    edge = [line("seen", T0 + HOUR, "c"), line("at", T0, "a"), line("past", T0 - 1, "b")]
    at_edge = run(edge, deliveries=[0, 1, 1], **late)
    assert (at_edge.valid_events, at_edge.dead_letters) == (2, 1)


def test_the_first_delivery_with_an_event_measures_from_its_own_newest() -> None:
    late = {"allowed_lateness_ms": HOUR, "now_ms": T0 + 4 * HOUR}
    lines = [b"{not json", line("old", T0, "a"), line("new", T0 + 3 * HOUR, "b")]
    first = run(lines, deliveries=[0, 1, 1], **late)
    assert (first.valid_events, first.dead_letters) == (1, 2)
    # A delivery without valid events moves no limit.
    lines = [line("first", T0 + 3 * HOUR, "a"), b"{not json", line("late", T0, "b")]
    result = run(lines, deliveries=[0, 1, 2], **late)
    assert (result.valid_events, result.dead_letters) == (1, 2)


def test_bucket_and_dimension_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown dimension"):
        run([], cuboids=[("nope",)])
    with pytest.raises(ValueError, match="unknown source field"):
        run([], dimensions={"x": ("no_such_field", "event")}, cuboids=[("x",)])
