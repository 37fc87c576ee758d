"""Settling the finest level: when a bucket is final, which buckets late events leave wrong,
and how much of the archive a recompute reads to count them as the stream would.

The stream drops an event whose time is behind its watermark (Spark's late rows); the
ingest has archived it. Once the watermark has passed a bucket's end plus the allowed
lateness, no event can enter the bucket any more (a later one is a `too_late` dead letter),
so the bucket is *settled*: the settle step recomputes it from the archive if, and only if,
an event the stream missed changed one of its cells. docs/semantics.md explains the rules.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from clickagg.domain import buckets, durations, model, sessions

#: How far a recompute first reads around its range for visits that span its edges; a
#: visitor whose visit reaches further asks for a wider read (`shortfall`).
DEFAULT_VISIT_REACH_MS = 24 * 3600 * 1000


def settled_end(watermark_ms: int, level: model.Level, allowed_lateness: durations.Duration) -> int:
    """The start of the oldest unsettled bucket: every bucket starting before it is settled."""
    return buckets.floor(buckets.subtract(watermark_ms, allowed_lateness), level.granularity)


def is_settled(
    bucket_ms: int,
    level: model.Level,
    watermark_ms: int,
    allowed_lateness: durations.Duration,
) -> bool:
    """True once the watermark has passed the bucket's end plus the allowed lateness."""
    return bucket_ms < settled_end(watermark_ms, level, allowed_lateness)


@dataclass(frozen=True)
class LateArrival:
    """An archived event's time and the stream's watermark when the event arrived."""

    ts_ms: int
    arrival_watermark_ms: int

    @property
    def missed_by_stream(self) -> bool:
        # A time on the watermark counts as missed: a needless recompute costs time, a
        # missed one costs correctness.
        return self.ts_ms <= self.arrival_watermark_ms


def late_buckets(arrivals: Iterable[LateArrival], level: model.Level) -> tuple[int, ...]:
    """The buckets of the events the stream missed, oldest first. Each of them needs a
    recompute; `affected_buckets` adds those the missed events' visits reach."""
    return tuple(
        sorted({buckets.floor(a.ts_ms, level.granularity) for a in arrivals if a.missed_by_stream})
    )


def affected_buckets(
    events: Sequence[sessions.Counted],
    uncounted: Collection[str],
    config: sessions.Config,
) -> frozenset[int]:
    """The buckets whose cells can differ between one visitor's events without the
    `uncounted` event ids and with them: the buckets of every visit that is not the same in
    both (same events, and first visit or not). A visit's start bucket is its first event's."""
    return changed_buckets([e for e in events if e.event_id not in uncounted], events, config)


def changed_buckets(
    counted: Sequence[sessions.Counted],
    events: Sequence[sessions.Counted],
    config: sessions.Config,
) -> frozenset[int]:
    """The buckets whose cells can differ between one visitor's `counted` events (what a
    writer counted: the stream missed late events, and counted a later copy of an event whose
    first copy it missed) and their true `events`: the buckets of every visit not in both."""
    before = _visit_keys(sorted(counted), config.timeout_ms)
    after = _visit_keys(sorted(events), config.timeout_ms)
    changed = [v for key, v in before.items() if key not in after]
    changed += [v for key, v in after.items() if key not in before]
    return frozenset(buckets.floor(e.ts_ms, config.granularity) for visit in changed for e in visit)


def _visit_keys(
    ordered: Sequence[sessions.Counted], timeout_ms: int
) -> dict[tuple[bool, tuple[str, ...]], list[sessions.Counted]]:
    # A visit's cells depend on its events and on whether it is the visitor's first (new).
    visits = sessions.split_visits(ordered, timeout_ms)
    return {
        (index == 0, tuple(e.event_id for e in visit)): visit for index, visit in enumerate(visits)
    }


def visitor_recompute(
    events: Sequence[sessions.Counted],
    *,
    late_before: Collection[str],
    late_now: Collection[str],
    previously_settled_end_ms: int,
    settled_end_ms: int,
    config: sessions.Config,
) -> frozenset[int]:
    """The settled buckets one visitor's late events leave wrong, for one settle pass.

    `late_before` are the visitor's events the stream missed that earlier passes handled,
    `late_now` those that arrived since. Newly settled buckets hold what the stream counted,
    which missed every late event; buckets settled before hold what earlier passes
    recomputed, which missed only `late_now`. Unsettled buckets wait for a later pass.
    """
    stream_view = affected_buckets(events, {*late_before, *late_now}, config)
    settled_view = affected_buckets(events, late_now, config)
    return frozenset(
        {b for b in stream_view if previously_settled_end_ms <= b < settled_end_ms}
        | {b for b in settled_view if b < previously_settled_end_ms}
    )


def recompute_ranges(
    bucket_starts: Iterable[int],
    level: model.Level,
    *,
    max_gap_ms: int = DEFAULT_VISIT_REACH_MS,
) -> tuple[buckets.Span, ...]:
    """Buckets to recompute as ranges, joining two when the gap between them is at most
    `max_gap_ms`: each range reads months of visitor history, a few more buckets are cheap."""
    spans: list[buckets.Span] = []
    for start in sorted(set(bucket_starts)):
        end = buckets.end(start, level.granularity)
        if spans and start - spans[-1].end_ms <= max_gap_ms:
            spans[-1] = buckets.Span(spans[-1].start_ms, end)
        else:
            spans.append(buckets.Span(start, end))
    return tuple(spans)


@dataclass(frozen=True)
class ReadRange:
    """What a recompute of `target` reads from the archive.

    Whole events from `visits_from_ms` to `end_ms`; before that, back to `start_ms`, only
    each event's visitor, id and time matter (they decide visit boundaries and new versus
    returning, and count in no bucket of the target).
    """

    target: buckets.Span
    start_ms: int
    visits_from_ms: int
    end_ms: int
    reason: str

    def union(self, other: ReadRange) -> ReadRange:
        if other == self:
            return self
        return ReadRange(
            self.target,
            min(self.start_ms, other.start_ms),
            min(self.visits_from_ms, other.visits_from_ms),
            max(self.end_ms, other.end_ms),
            "; ".join(dict.fromkeys((self.reason, other.reason))),
        )


def read_range(
    target: buckets.Span,
    config: sessions.Config,
    *,
    visit_reach_ms: int = DEFAULT_VISIT_REACH_MS,
) -> ReadRange:
    """The first read for recomputing `target`; `shortfall` says when a visitor needs more."""
    reach = max(visit_reach_ms, config.timeout_ms)
    visits_from = target.start_ms - reach
    return ReadRange(
        target,
        visits_from - sessions.VISITOR_MEMORY_MS,
        visits_from,
        target.end_ms + reach,
        f"visits reaching up to {_spelled(reach)} across either edge of {target}, and "
        f"{_spelled(sessions.VISITOR_MEMORY_MS)} of visitor history before them (the stream "
        "remembers a visitor that long: new or returning)",
    )


def _spelled(ms: int) -> str:
    day_ms = durations.DAY * 1000
    if ms % day_ms == 0:
        return f"{ms // day_ms} day{'s' if ms != day_ms else ''}"
    return durations.Duration(0, ms // 1000).spelled_out()


def shortfall(
    read: ReadRange,
    events: Sequence[sessions.Counted],
    config: sessions.Config,
    *,
    visit_reach_ms: int = DEFAULT_VISIT_REACH_MS,
) -> ReadRange | None:
    """None when one visitor's events, as `read` found them, prove every visit that touches
    the target; otherwise the wider read that would.

    A visit is proven when its first event lies at or after `visits_from_ms` (the read then
    saw the timeout before it, and the visitor memory before that) and its last event plus
    the timeout lies before `end_ms` (nothing after it can still join).
    """
    timeout = config.timeout_ms
    inside = [e for e in sorted(events) if read.start_ms <= e.ts_ms < read.end_ms]
    touching = [
        visit
        for visit in sessions.split_visits(inside, timeout)
        if any(read.target.start_ms <= e.ts_ms < read.target.end_ms for e in visit)
    ]
    if not touching:
        return None
    first = min(visit[0].ts_ms for visit in touching)
    last = max(visit[-1].ts_ms for visit in touching)
    reach = max(visit_reach_ms, timeout)
    visits_from = read.visits_from_ms
    reasons = []
    if first < read.visits_from_ms:
        # A first event the read saw the timeout before is a true visit start; otherwise the
        # visit may begin earlier still, so read a reach further.
        proven_start = first - timeout >= read.start_ms
        visits_from = first if proven_start else first - reach
        reasons.append(f"a visit starts {buckets.iso(first)}, before the read's visits")
    end = read.end_ms
    if last + timeout >= read.end_ms:
        end = last + timeout + reach
        reasons.append(f"a visit is still going {buckets.iso(last)}, at the read's end")
    if not reasons:
        return None
    return ReadRange(
        read.target,
        visits_from - sessions.VISITOR_MEMORY_MS,
        visits_from,
        end,
        " and ".join(reasons),
    )


@dataclass(frozen=True)
class Mark:
    """What the settle passes of a level have done so far, kept in the store.

    `settled_end_ms`: every bucket before it is settled. `arrived_through_ms`: the newest
    arrival (`archive` arrival_ms) the last pass read; a late event that arrived after it is
    news to the next pass. `passes`: how many passes have run; each pass that recomputed
    buckets records their spans under its number (`ResettledSpan`), so a rollup can re-roll
    what changed since the pass it last saw.
    """

    settled_end_ms: int
    arrived_through_ms: int
    watermark_ms: int
    passes: int
    settled_at_ms: int


@dataclass(frozen=True)
class ResettledSpan:
    """Buckets in [start, end) that settle pass `pass_number` recomputed at `settled_at_ms`."""

    pass_number: int
    span: buckets.Span
    settled_at_ms: int
