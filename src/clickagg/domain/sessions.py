"""Sessionization: one visitor's counted events become additive fact deltas.

The streaming job calls `advance` once per visitor and micro-batch; replay calls it once
per visitor over a whole range. Visits are counted the moment their first event arrives;
fields that settle on close are added when the watermark passes the visit's end. Events
that arrive out of order (within the watermark) are merged in time order, and whatever
changed in what was already emitted is corrected by a delta, so the sum of all deltas is
always the state of docs/semantics.md — never an increment that a replay would double.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from clickagg.domain import buckets, dimensions, durations, events, kpis, model

#: The additive fields a fact carries (the sketch is built from visitor ids instead).
FIELDS: tuple[str, ...] = tuple(n for n, f in kpis.STATE_FIELDS.items() if f.kind != "sketch")
VISITOR_TYPE = "visitor_type"

TYPE_COUNTERS = {
    events.PAGE_VIEW: "page_views",
    events.PRODUCT_VIEW: "product_views",
    events.ADD_TO_CART: "add_to_carts",
    events.ORDER: "orders",
    events.IMPRESSION: "impressions",
    events.CLICK: "clicks",
}
ENGAGED_MS = 10_000
#: How long a visitor without open visits is remembered (for new versus returning).
VISITOR_MEMORY_MS = 400 * 24 * 3600 * 1000

Key = tuple[int, tuple[str, ...]]  # (bucket start ms, one value per declared dimension)
Deltas = dict[Key, dict[str, float]]


@dataclass(frozen=True)
class DimensionSource:
    """Where a declared dimension's value comes from, and whether the visit owns it."""

    name: str
    field: str
    scope: str  # "event" or "visit"


@dataclass(frozen=True)
class Config:
    granularity: durations.Duration
    timeout_ms: int
    dimensions: tuple[DimensionSource, ...]

    @classmethod
    def of(cls, aggregation: model.Aggregation) -> Config:
        """What sessionizing needs of an Aggregation: finest granularity, timeout, sources."""
        return cls(
            granularity=aggregation.finest.granularity,
            timeout_ms=int(aggregation.session_timeout.approx_seconds * 1000),
            dimensions=tuple(
                DimensionSource(d.name, d.field, d.scope) for d in aggregation.dimensions
            ),
        )


@dataclass(frozen=True, order=True)
class Counted:
    """A counted (valid, unique, non-bot) event, reduced to what sessionization needs."""

    ts_ms: int
    event_id: str
    type: str
    revenue: float
    values: tuple[str, ...]  # raw value per declared dimension (visitor_type: placeholder)


@dataclass
class VisitorState:
    """What is kept per visitor between micro-batches."""

    open_events: list[Counted] = field(default_factory=list)
    visits_before: int = 0  # closed visits, for new versus returning
    last_seen_ms: int = 0
    emitted: Deltas = field(default_factory=dict)  # what the open visits have contributed


@dataclass(frozen=True)
class Fact:
    bucket_ms: int
    values: tuple[str, ...]
    deltas: Mapping[str, float]


def values_of(record: Mapping[str, str | None], config: Config) -> tuple[str, ...]:
    """The raw dimension values of one event, in declaration order."""
    return tuple(
        "" if d.field == VISITOR_TYPE else dimensions.value_or_missing(record.get(d.field))
        for d in config.dimensions
    )


def advance(
    state: VisitorState,
    arrived: Iterable[Counted],
    watermark_ms: int,
    config: Config,
) -> tuple[list[Fact], int | None]:
    """Merge newly arrived events, close visits the watermark has passed, return deltas.

    Returns the facts to add and the event time at which to look again: when the first
    open visit closes, or, with no visit open, when the visitor is forgotten (None: forget
    now). `state` is updated in place.
    """
    known = {e.event_id for e in state.open_events}
    merged = sorted(state.open_events + [e for e in arrived if e.event_id not in known])
    visits = split_visits(merged, config.timeout_ms)
    closed = [v for v in visits if v[-1].ts_ms + config.timeout_ms < watermark_ms]
    still_open = visits[len(closed) :]
    contributions: Deltas = {}
    for index, visit in enumerate(visits):
        is_closed = index < len(closed)
        _contribute(contributions, visit, state.visits_before + index, is_closed, config)
    open_part: Deltas = {}
    for index, visit in enumerate(still_open):
        _contribute(open_part, visit, state.visits_before + len(closed) + index, False, config)
    facts = _difference(contributions, state.emitted)
    state.open_events = [e for visit in still_open for e in visit]
    state.visits_before += len(closed)
    state.emitted = open_part
    state.last_seen_ms = max([state.last_seen_ms] + [e.ts_ms for e in merged])
    if still_open:
        # The first open visit's close, not the last's: Spark calls back only then, and
        # settle takes the state to hold just the visits its watermark leaves open.
        return facts, still_open[0][-1].ts_ms + config.timeout_ms
    forget_at = state.last_seen_ms + VISITOR_MEMORY_MS
    return facts, (forget_at if forget_at >= watermark_ms else None)


def split_visits(ordered: Sequence[Counted], timeout_ms: int) -> list[list[Counted]]:
    """Events in time order, cut into visits where a gap is longer than the timeout."""
    visits: list[list[Counted]] = []
    for event in ordered:
        if visits and event.ts_ms - visits[-1][-1].ts_ms <= timeout_ms:
            visits[-1].append(event)
        else:
            visits.append([event])
    return visits


def _contribute(
    into: Deltas, visit: Sequence[Counted], visit_number: int, closed: bool, config: Config
) -> None:
    first = visit[0]
    visitor_type = dimensions.NEW_VISITOR if visit_number == 0 else dimensions.RETURNING_VISITOR
    attribution = tuple(
        visitor_type if d.field == VISITOR_TYPE else value
        for d, value in zip(config.dimensions, first.values, strict=True)
    )
    visit_key = (buckets.floor(first.ts_ms, config.granularity), attribution)
    has_order = any(e.type == events.ORDER for e in visit)
    _add(
        into,
        visit_key,
        visits=1,
        new_visits=int(visit_number == 0),
        visits_with_order=int(has_order),
    )
    page_views = [e for e in visit if e.type == events.PAGE_VIEW]
    for event in visit:
        key = _event_key(event, attribution, config)
        counter = TYPE_COUNTERS.get(event.type)
        _add(into, key, events=1, **({counter: 1} if counter else {}))
        if event.type == events.ORDER:
            _add(into, key, revenue=event.revenue)
    if page_views:
        _add(into, _event_key(page_views[0], attribution, config), entries=1)
    if not closed:
        return
    if page_views:
        _add(into, _event_key(page_views[-1], attribution, config), exits=1)
    duration_ms = visit[-1].ts_ms - first.ts_ms
    has_cart = any(e.type == events.ADD_TO_CART for e in visit)
    _add(
        into,
        visit_key,
        closed_visits=1,
        bounces=int(len(page_views) == 1),
        engaged_visits=int(duration_ms >= ENGAGED_MS or len(page_views) >= 2 or has_order),
        visit_duration_seconds_sum=duration_ms / 1000,
        visit_page_views_sum=len(page_views),
        visits_with_cart=int(has_cart),
        visits_with_cart_without_order=int(has_cart and not has_order),
    )


def _event_key(event: Counted, attribution: tuple[str, ...], config: Config) -> Key:
    values = tuple(
        own if d.scope == "event" and d.field != VISITOR_TYPE else visit_value
        for d, own, visit_value in zip(config.dimensions, event.values, attribution, strict=True)
    )
    return buckets.floor(event.ts_ms, config.granularity), values


def _add(into: Deltas, key: Key, **amounts: float) -> None:
    cell = into.setdefault(key, {})
    for name, amount in amounts.items():
        if amount:
            cell[name] = cell.get(name, 0) + amount


def _difference(now: Deltas, before: Deltas) -> list[Fact]:
    changed: dict[Key, dict[str, float]] = defaultdict(dict)
    for key in now.keys() | before.keys():
        new, old = now.get(key, {}), before.get(key, {})
        for name in new.keys() | old.keys():
            delta = new.get(name, 0) - old.get(name, 0)
            if delta:
                changed[key][name] = delta
    return [Fact(bucket, values, deltas) for (bucket, values), deltas in changed.items()]


def dump_state(state: VisitorState) -> str:
    """The state as compact JSON, for the streaming state store."""
    return json.dumps(
        [
            [[e.ts_ms, e.event_id, e.type, e.revenue, list(e.values)] for e in state.open_events],
            state.visits_before,
            [[bucket, list(values), cell] for (bucket, values), cell in state.emitted.items()],
            state.last_seen_ms,
        ],
        separators=(",", ":"),
    )


def load_state(text: str) -> VisitorState:
    open_events, visits_before, emitted, last_seen_ms = json.loads(text)
    return VisitorState(
        open_events=[
            Counted(ts, eid, kind, revenue, tuple(values))
            for ts, eid, kind, revenue, values in open_events
        ],
        visits_before=visits_before,
        emitted={(bucket, tuple(values)): cell for bucket, values, cell in emitted},
        last_seen_ms=last_seen_ms,
    )
