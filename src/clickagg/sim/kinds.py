"""What the generator emits: the kinds of line, their dead-letter reasons, `Emitted`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from clickagg.domain import events

VALID = "valid"
DUPLICATE = "duplicate"
LATE = "late"
OUT_OF_ORDER = "out_of_order"
MALFORMED_JSON = "malformed_json"
WRONG_TYPE = "wrong_type"
MISSING_FIELD = "missing_field"
INVALID_UTF8 = "invalid_utf8"
OVERSIZED = "oversized"
TS_FAR_PAST = "ts_far_past"
TS_FAR_FUTURE = "ts_far_future"

#: Kinds of line the contract accepts (a duplicate is accepted, then dropped by event_id).
ACCEPTED_KINDS = frozenset({VALID, DUPLICATE, LATE, OUT_OF_ORDER})
#: Kinds the contract rejects, each with a text its dead-letter reason always contains.
#: TS_FAR_FUTURE assumes a future limit in days.
REJECTED_REASONS: Mapping[str, str] = MappingProxyType(
    {
        MALFORMED_JSON: "malformed JSON",
        WRONG_TYPE: "': expected a ",
        MISSING_FIELD: "required but missing",
        INVALID_UTF8: "not valid UTF-8",
        OVERSIZED: f"more than the limit of {events.MAX_LINE_BYTES} bytes",
        TS_FAR_PAST: events.TOO_LATE,
        TS_FAR_FUTURE: "after now",
    }
)

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
#: Far-past and far-future times lie at least this far from the real event time, so any
#: pipeline clock within a year of the traffic rejects them.
FAR_PAST_MIN_MS = 400 * DAY_MS
FAR_FUTURE_MIN_MS = 365 * DAY_MS


@dataclass(frozen=True, slots=True)
class Emitted:
    """One line as it is sent.

    `line` is the exact bytes (one JSON object, no newline). `arrival_ms` is when it is sent:
    the event time, plus the delay of a late, out-of-order or resent line. `visitor_id` is the
    one a JSON parser finds in the line (None when it finds none), the natural Kafka key.
    `bot` is True for lines of a crawler's visit.
    """

    line: bytes
    arrival_ms: int
    kind: str
    visitor_id: str | None = None
    bot: bool = False
