"""The event contract: one raw line (bytes) in, one `Event` or one dead-letter reason out.

The pipeline calls `parse_event` on every line it reads; a line that breaks the contract raises
`EventContractError` whose message names the field and what was wrong, so the dead-letter queue
tells a sender what to fix. The JSON Schema in event_schema.json states the same contract for
senders; a unit test keeps the two in step. docs/events.md explains it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clickagg import errors
from clickagg.domain import dimensions, durations

#: Longer lines are rejected before decoding, so one bad sender cannot exhaust a worker.
MAX_LINE_BYTES = 64 * 1024
#: Longer integers are rejected while decoding: int() of thousands of digits is slow, and
#: Python refuses more than 4300 with a ValueError.
MAX_INTEGER_DIGITS = 100

_SECOND_MS = 1000
_DAY_MS = 86_400 * _SECOND_MS
DEFAULT_MAX_FUTURE_MS = _DAY_MS
#: The past limit of a window that no spec sets; a pipeline uses `lateness_window`.
DEFAULT_MAX_PAST_MS = 30 * _DAY_MS
#: The dead-letter reason of an event older than the window's past limit starts with this.
TOO_LATE = "too_late"
# Epoch milliseconds below this (March 1973) are almost surely epoch seconds sent by mistake.
_SECONDS_MISTAKE_BELOW_MS = 100_000_000_000

PAGE_VIEW = "page_view"
PRODUCT_VIEW = "product_view"
ADD_TO_CART = "add_to_cart"
ORDER = "order"
IMPRESSION = "impression"
CLICK = "click"
#: Types the KPIs know; any other type is accepted and counts only in `events`.
KNOWN_TYPES = frozenset({PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, ORDER, IMPRESSION, CLICK})

REQUIRED_FIELDS = ("event_id", "ts", "visitor_id", "type")
OPTIONAL_STRING_FIELDS = (
    "page",
    "url",
    "referrer",
    "campaign",
    "channel",
    "offer",
    "product_category",
    "device_class",
    "browser_family",
    "country",
    "user_agent",
    "order_id",
)
OPTIONAL_NUMBER_FIELDS = ("revenue",)
#: Optional fields whose value becomes a dimension value, so may not be a reserved one.
DIMENSION_VALUE_FIELDS = frozenset(
    d.field for d in dimensions.STANDARD.values() if d.field in OPTIONAL_STRING_FIELDS
)

#: RFC 3339 date-time: ISO 8601 with seconds and an offset. The schema carries the same text.
ISO_TS_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})$"
)
_ISO_TS = re.compile(ISO_TS_PATTERN)
_BEYOND_MICROS = re.compile(r"(\.[0-9]{6})[0-9]+")
_SHOWN_CHARS = 60
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)


@dataclass(frozen=True)
class Event:
    """One accepted event, `ts` normalised to epoch milliseconds UTC.

    Absent or blank optional strings are None. `bot` is never read from the line: enrichment
    sets it from `user_agent`.
    """

    event_id: str
    ts_ms: int
    visitor_id: str
    type: str
    page: str | None = None
    url: str | None = None
    referrer: str | None = None
    campaign: str | None = None
    channel: str | None = None
    offer: str | None = None
    product_category: str | None = None
    device_class: str | None = None
    browser_family: str | None = None
    country: str | None = None
    user_agent: str | None = None
    order_id: str | None = None
    revenue: float | None = None
    bot: bool = False

    @property
    def is_known_type(self) -> bool:
        return self.type in KNOWN_TYPES


@dataclass(frozen=True)
class TimeWindow:
    """How far from `now` an event time may be; None for `max_past_ms` accepts any past."""

    max_future_ms: int = DEFAULT_MAX_FUTURE_MS
    max_past_ms: int | None = DEFAULT_MAX_PAST_MS


DEFAULT_WINDOW = TimeWindow()


def lateness_window(allowed_lateness: durations.Duration) -> TimeWindow:
    """The window of an Aggregation: an event more than `lateness.allowedLateness` behind
    the newest event time of the stream's earlier micro-batches is `too_late`
    (`lateness_reference`, `too_late_limit`)."""
    return TimeWindow(max_past_ms=round(allowed_lateness.approx_seconds * _SECOND_MS))


def lateness_reference(newest_before_ms: int | None, newest_in_batch_ms: int | None) -> int | None:
    """The event time a micro-batch measures lateness from: the newest of the batches before
    it (`newest_before_ms`), never one of its own, so an event's fate does not depend on what
    else the source cut into its batch. Only the stream's first batch with events has none
    before it; it measures from its own newest, so a line from years ago is too late there
    too (None: no event yet)."""
    return newest_before_ms if newest_before_ms is not None else newest_in_batch_ms


def too_late_limit(window: TimeWindow, reference_ms: int | None) -> int | None:
    """The earliest event time accepted: `window`'s past limit behind `reference_ms`; an event
    before it is `too_late`. None (no reference, or no past limit): none is."""
    if reference_ms is None or window.max_past_ms is None:
        return None
    return reference_ms - window.max_past_ms


def parse_event(
    line: bytes,
    *,
    now_ms: int,
    window: TimeWindow = DEFAULT_WINDOW,
    newest_ms: int | None = None,
) -> Event:
    """Parse and check one line; raise EventContractError with the dead-letter reason.

    The future limit is measured from `now_ms` (the clock), the past limit from `newest_ms`
    (the newest event time the stream has seen) when given, else from `now_ms`; an event
    before the past limit gets a reason that starts with `too_late`.
    """
    record = _decode(line)
    # Keyword arguments are evaluated in order, so the first problem found is the reason given.
    return Event(
        event_id=_required_string(record, "event_id"),
        ts_ms=_timestamp(record, now_ms, window, newest_ms),
        visitor_id=_required_string(record, "visitor_id"),
        type=_required_string(record, "type"),
        page=_optional_string(record, "page"),
        url=_optional_string(record, "url"),
        referrer=_optional_string(record, "referrer"),
        campaign=_optional_string(record, "campaign"),
        channel=_optional_string(record, "channel"),
        offer=_optional_string(record, "offer"),
        product_category=_optional_string(record, "product_category"),
        device_class=_optional_string(record, "device_class"),
        browser_family=_optional_string(record, "browser_family"),
        country=_optional_string(record, "country"),
        user_agent=_optional_string(record, "user_agent"),
        order_id=_optional_string(record, "order_id"),
        revenue=_revenue(record),
    )


def _decode(line: bytes) -> Mapping[str, Any]:
    if len(line) > MAX_LINE_BYTES:
        raise errors.EventContractError(
            f"line is {len(line)} bytes, more than the limit of {MAX_LINE_BYTES} bytes"
        )
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.EventContractError(f"line is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise errors.EventContractError("line is empty")
    try:
        record = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        raise errors.EventContractError(
            f"malformed JSON at column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        # The decoder recurses per array or object; a line of '[' would exhaust the stack.
        raise errors.EventContractError("malformed JSON: nested too deeply") from None
    if not isinstance(record, dict):
        raise errors.EventContractError(f"expected a JSON object, got {_show(record)}")
    return record


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys; a line saying two things is rejected instead.
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise errors.EventContractError(f"field {_show(key)}: appears more than once")
        record[key] = value
    return record


def _reject_constant(name: str) -> None:
    raise errors.EventContractError(f"malformed JSON: {name} is not a JSON number")


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise errors.EventContractError(
            f"malformed JSON: an integer of {digits} digits, more than {MAX_INTEGER_DIGITS}"
        )
    return int(text)


def _is_unicode(value: str) -> bool:
    """False for a string with a lone surrogate (JSON allows the escape "\\ud800"): UTF-8,
    and so the archive's Parquet strings, cannot hold it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_unicode(name: str, value: str) -> errors.EventContractError:
    return errors.EventContractError(
        f"field '{name}': {_show(value)} is not valid Unicode (an unpaired surrogate escape)"
    )


def _required_string(record: Mapping[str, Any], name: str) -> str:
    if name not in record:
        raise errors.EventContractError(f"field '{name}': required but missing")
    value = record[name]
    if not isinstance(value, str) or not value.strip():
        raise errors.EventContractError(
            f"field '{name}': expected a non-empty string, got {_show(value)}"
        )
    if not _is_unicode(value):
        raise _not_unicode(name, value)
    return value


def _optional_string(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.EventContractError(f"field '{name}': expected a string, got {_show(value)}")
    if not value.strip():
        return None
    if not _is_unicode(value):
        raise _not_unicode(name, value)
    if name in DIMENSION_VALUE_FIELDS and value in dimensions.RESERVED_VALUES:
        raise errors.EventContractError(f"field '{name}': {value!r} is reserved for the pipeline")
    return value


def _revenue(record: Mapping[str, Any]) -> float | None:
    value = record.get("revenue")
    if value is None:
        return None
    # bool is an int in Python but true/false is no amount in JSON.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)  # 1e400 parses to infinity
        or value < 0
    ):
        raise errors.EventContractError(
            f"field 'revenue': expected a number >= 0, got {_show(value)}"
        )
    return float(value)


def _timestamp(
    record: Mapping[str, Any], now_ms: int, window: TimeWindow, newest_ms: int | None
) -> int:
    if "ts" not in record:
        raise errors.EventContractError("field 'ts': required but missing")
    value = record["ts"]
    if isinstance(value, int) and not isinstance(value, bool):
        ts_ms = value
    elif isinstance(value, float) and value.is_integer():
        # JSON has one number type: 1455616800000.0 is the integer the schema allows.
        ts_ms = int(value)
    elif isinstance(value, str):
        ts_ms = _iso_ms(value)
    else:
        raise _bad_ts(value)
    if ts_ms < 0:
        raise errors.EventContractError(f"field 'ts': {_show(value)} is before 1970")
    if ts_ms > now_ms + window.max_future_ms:
        raise errors.EventContractError(
            f"field 'ts': {_iso(ts_ms)} is more than {_span(window.max_future_ms)} "
            f"after now ({_iso(now_ms)})"
        )
    late = too_late_reason(ts_ms, window, now_ms=now_ms, newest_ms=newest_ms)
    if late is not None:
        hint = (
            " (epoch seconds instead of milliseconds?)"
            if (ts_ms < _SECONDS_MISTAKE_BELOW_MS and not isinstance(value, str))
            else ""
        )
        raise errors.EventContractError(late + hint)
    return ts_ms


def too_late_reason(
    ts_ms: int, window: TimeWindow, *, now_ms: int, newest_ms: int | None = None
) -> str | None:
    """The `too_late` reason of an event time before the window's past limit, else None.

    The limit is measured from `newest_ms` when given (the stream passes the newest event
    time of its earlier micro-batches, so a stream catching up on old traffic rejects nothing
    the clock would call old), else `now_ms`.
    """
    if window.max_past_ms is None:
        return None
    reference, named = (now_ms, "now") if newest_ms is None else (newest_ms, "the newest event")
    limit = too_late_limit(window, reference)
    if limit is None or ts_ms >= limit:
        return None
    return _iso(ts_ms).join(too_late_frame(window.max_past_ms, reference, named))


def too_late_frame(
    max_past_ms: int, reference_ms: int, named: str = "the newest event"
) -> tuple[str, str]:
    """The text before and after the event time (ISO 8601, seconds, UTC, `Z`) in a
    `too_late` reason measured from `reference_ms`."""
    return (
        f"{TOO_LATE}: field 'ts': ",
        f" is more than {_span(max_past_ms)} before {named} ({_iso(reference_ms)})",
    )


def _iso_ms(value: str) -> int:
    if not _ISO_TS.fullmatch(value):
        raise _bad_ts(value)
    try:
        # fromisoformat keeps 6 fraction digits at most; RFC 3339 allows more.
        parsed = dt.datetime.fromisoformat(_at_most_micros(value.upper()))
    except ValueError as exc:
        raise errors.EventContractError(f"field 'ts': {value!r} is no valid time: {exc}") from None
    # timedelta arithmetic is exact, float timestamps may be off by a millisecond.
    return (parsed - _EPOCH) // _ONE_MS


def _at_most_micros(value: str) -> str:
    return _BEYOND_MICROS.sub(r"\1", value)


def _bad_ts(value: object) -> errors.EventContractError:
    return errors.EventContractError(
        f"field 'ts': expected ISO 8601 with offset or epoch milliseconds, got {_show(value)}"
    )


def _iso(ts_ms: int) -> str:
    try:
        moment = dt.datetime.fromtimestamp(ts_ms / _SECOND_MS, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{_shortened(str(ts_ms))} ms"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _span(ms: int) -> str:
    for size, unit in ((_DAY_MS, "day"), (3_600_000, "hour"), (60_000, "minute")):
        if ms % size == 0:
            count = ms // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{ms} ms"


def _show(value: object) -> str:
    """A JSON value as a reason shows it: short, and typed when it is not a string."""
    if isinstance(value, str):
        return repr(_shortened(value))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {_shortened(str(value))}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shortened(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
