"""The event contract: good lines parse, each kind of bad line gets its dead-letter reason, and
the JSON Schema senders read says the same as the parser.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
from typing import Any

import jsonschema
import pytest

from clickagg import errors
from clickagg.domain import durations, events

pytestmark = pytest.mark.unit

# 2016-02-16T10:00:00Z, the morning of the talk.
NOW_MS = 1_455_616_800_000
MINUTE_MS = 60_000


def line(**fields: Any) -> bytes:
    record: dict[str, Any] = {
        "event_id": "e-1",
        "ts": NOW_MS,
        "visitor_id": "v-1",
        "type": "page_view",
    }
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not _DROP}).encode()


_DROP = object()


def parse(raw: bytes, **kwargs: Any) -> events.Event:
    return events.parse_event(raw, now_ms=NOW_MS, **kwargs)


def reason(raw: bytes, **kwargs: Any) -> str:
    with pytest.raises(errors.EventContractError) as caught:
        parse(raw, **kwargs)
    return str(caught.value)


# --- good lines ---------------------------------------------------------------------------


def test_minimal_event_with_epoch_millis() -> None:
    event = parse(line())
    assert event == events.Event(event_id="e-1", ts_ms=NOW_MS, visitor_id="v-1", type="page_view")
    assert event.is_known_type
    assert not event.bot


def test_full_order_event_with_iso_ts_and_offset() -> None:
    event = parse(
        line(
            ts="2016-02-16T11:00:00.250+01:00",
            type="order",
            page="/checkout/done",
            url="https://shop.example/checkout/done?utm_campaign=spring",
            referrer="https://shop.example/cart",
            campaign="spring",
            channel="email",
            offer="o-7",
            product_category="kettles",
            device_class="desktop",
            browser_family="firefox",
            country="DE",
            user_agent="Mozilla/5.0",
            order_id="A-1",
            revenue=49.9,
        )
    )
    assert event.ts_ms == NOW_MS + 250
    assert event.revenue == 49.9
    assert event.order_id == "A-1"
    assert event.country == "DE"


@pytest.mark.parametrize(
    "ts",
    [
        "2016-02-16T10:00:00Z",
        "2016-02-16t10:00:00z",
        "2016-02-16T12:00:00+02:00",
        "2016-02-16T05:00:00-0500",
        "2016-02-16T10:00:00.000000000Z",
        NOW_MS,
        float(NOW_MS),  # JSON has one number type; an integral float is an integer
    ],
)
def test_every_ts_spelling_normalises_to_utc_millis(ts: Any) -> None:
    assert parse(line(ts=ts)).ts_ms == NOW_MS


def test_fraction_beyond_millis_is_truncated_exactly() -> None:
    assert parse(line(ts="2016-02-16T10:00:00.123999999Z")).ts_ms == NOW_MS + 123


def test_unknown_type_is_accepted_but_not_known() -> None:
    event = parse(line(type="scroll"))
    assert event.type == "scroll"
    assert not event.is_known_type


def test_unknown_fields_are_ignored() -> None:
    assert parse(line(color="blue", nested={"a": 1})).event_id == "e-1"


def test_blank_and_null_optional_strings_are_absent() -> None:
    event = parse(line(page="  ", campaign=None, referrer=""))
    assert (event.page, event.campaign, event.referrer) == (None, None, None)


def test_trailing_newline_is_fine() -> None:
    assert parse(line() + b"\n").event_id == "e-1"


def test_ts_at_the_window_edges_is_accepted() -> None:
    window = events.TimeWindow(max_future_ms=MINUTE_MS, max_past_ms=MINUTE_MS)
    assert parse(line(ts=NOW_MS + MINUTE_MS), window=window).ts_ms == NOW_MS + MINUTE_MS
    assert parse(line(ts=NOW_MS - MINUTE_MS), window=window).ts_ms == NOW_MS - MINUTE_MS


def test_no_past_limit_accepts_old_events() -> None:
    window = events.TimeWindow(max_past_ms=None)
    assert parse(line(ts="2001-01-01T00:00:00Z"), window=window).ts_ms == 978_307_200_000


# --- bad lines, one per class, with their dead-letter reason ------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xff\xfe{}", "line is not valid UTF-8 (byte 0)"),
        (b"", "line is empty"),
        (b"  \n", "line is empty"),
        (
            b'{"event_id": "e-1",',
            "malformed JSON at column 20: Expecting property name enclosed in double quotes",
        ),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b'"page_view"', "expected a JSON object, got 'page_view'"),
        (b'{"event_id": "a", "event_id": "b"}', "field 'event_id': appears more than once"),
        (b'{"ts": NaN}', "malformed JSON: NaN is not a JSON number"),
    ],
)
def test_unreadable_lines(raw: bytes, expected: str) -> None:
    assert reason(raw) == expected


# Found by the fuzz test (test_fuzz_events.py): each of these raised something other than
# EventContractError, or let through a string the archive cannot store.
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"[" * 10_000, "malformed JSON: nested too deeply"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "malformed JSON: nested too deeply"),
        (b"9" * 5_000, "malformed JSON: an integer of 5000 digits, more than 100"),
        (
            b'{"event_id": "e", "\\ud800": 1, "\\ud800": 2}',
            "field '\\ud800': appears more than once",
        ),
        (
            b'{"' + b"k" * 100 + b'": 1, "' + b"k" * 100 + b'": 2}',
            f"field '{'k' * 60}...': appears more than once",
        ),
    ],
)
def test_hostile_lines_get_a_reason(raw: bytes, expected: str) -> None:
    assert reason(raw) == expected


@pytest.mark.parametrize("field", ["event_id", "visitor_id", "type", "page", "user_agent"])
def test_unpaired_surrogate_is_rejected(field: str) -> None:
    raw = line(**{field: "a\ud800"})
    assert reason(raw) == (
        f"field '{field}': 'a\\ud800' is not valid Unicode (an unpaired surrogate escape)"
    )


def test_surrogate_pair_is_one_character() -> None:
    assert parse(line(page="\U0001f600")).page == "\U0001f600"


def test_a_huge_ts_is_shown_cut_off() -> None:
    assert reason(line(ts=int("9" * 90))) == (
        f"field 'ts': {'9' * 60}... ms is more than 1 day after now (2016-02-16T10:00:00Z)"
    )


def test_oversized_line() -> None:
    raw = line(page="x" * events.MAX_LINE_BYTES)
    assert reason(raw) == (
        f"line is {len(raw)} bytes, more than the limit of {events.MAX_LINE_BYTES} bytes"
    )


@pytest.mark.parametrize("field", events.REQUIRED_FIELDS)
def test_missing_required_field(field: str) -> None:
    assert reason(line(**{field: _DROP})) == f"field '{field}': required but missing"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"event_id": ""}, "field 'event_id': expected a non-empty string, got ''"),
        ({"visitor_id": 42}, "field 'visitor_id': expected a non-empty string, got the number 42"),
        ({"visitor_id": None}, "field 'visitor_id': expected a non-empty string, got null"),
        ({"type": ["page_view"]}, "field 'type': expected a non-empty string, got an array"),
        ({"page": 3}, "field 'page': expected a string, got the number 3"),
        ({"user_agent": {"ua": "x"}}, "field 'user_agent': expected a string, got an object"),
        ({"channel": "__other__"}, "field 'channel': '__other__' is reserved for the pipeline"),
        ({"revenue": -1}, "field 'revenue': expected a number >= 0, got the number -1"),
        ({"revenue": "9.99"}, "field 'revenue': expected a number >= 0, got '9.99'"),
        ({"revenue": True}, "field 'revenue': expected a number >= 0, got true"),
    ],
)
def test_wrong_types(fields: dict[str, Any], expected: str) -> None:
    assert reason(line(**fields)) == expected


def test_infinite_revenue_is_rejected() -> None:
    raw = line().replace(b"}", b', "revenue": 1e400}')
    assert reason(raw) == "field 'revenue': expected a number >= 0, got the number inf"


@pytest.mark.parametrize(
    "ts",
    [
        "yesterday",
        "2016-02-16T10:00:00",  # no offset: which 10 o'clock?
        "2016-02-16",
        "2016-02-16 10:00:00Z",
        "1455616800000",  # a number in a string
        1455616800000.5,
        True,
        None,
    ],
)
def test_ts_in_no_accepted_form(ts: Any) -> None:
    shown = {"yesterday": "'yesterday'", True: "true", None: "null"}.get(ts)
    message = reason(line(ts=ts))
    assert message.startswith(
        "field 'ts': expected ISO 8601 with offset or epoch milliseconds, got "
    )
    if shown is not None:
        assert message.endswith(f"got {shown}")


def test_ts_that_matches_the_form_but_is_no_time() -> None:
    assert reason(line(ts="2016-02-30T10:00:00Z")).startswith(
        "field 'ts': '2016-02-30T10:00:00Z' is no valid time: day is out of range"
    )


def test_negative_epoch() -> None:
    assert reason(line(ts=-1)) == "field 'ts': the number -1 is before 1970"


def test_ts_too_far_in_the_future() -> None:
    assert reason(line(ts="2016-02-18T10:00:00Z")) == (
        "field 'ts': 2016-02-18T10:00:00Z is more than 1 day after now (2016-02-16T10:00:00Z)"
    )


def test_ts_too_far_in_the_past() -> None:
    window = events.TimeWindow(max_past_ms=2 * 3_600_000)
    assert reason(line(ts="2016-02-16T07:00:00Z"), window=window) == (
        "too_late: field 'ts': 2016-02-16T07:00:00Z is more than 2 hours before now "
        "(2016-02-16T10:00:00Z)"
    )


def test_epoch_seconds_by_mistake_get_a_hint() -> None:
    assert reason(line(ts=NOW_MS // 1000)).endswith("(epoch seconds instead of milliseconds?)")


# --- the JSON Schema says the same ----------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    source = importlib.resources.files("clickagg.domain").joinpath("event_schema.json")
    loaded: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def test_schema_requires_what_the_parser_requires(schema: dict[str, Any]) -> None:
    assert schema["required"] == list(events.REQUIRED_FIELDS)


def test_schema_lists_every_field_the_parser_reads(schema: dict[str, Any]) -> None:
    parsed = (
        set(events.REQUIRED_FIELDS)
        | set(events.OPTIONAL_STRING_FIELDS)
        | set(events.OPTIONAL_NUMBER_FIELDS)
    )
    assert set(schema["properties"]) == parsed


def test_schema_types_match_the_parser(schema: dict[str, Any]) -> None:
    properties = schema["properties"]
    for name in ("event_id", "visitor_id", "type"):
        assert properties[name]["type"] == "string"
    for name in events.OPTIONAL_STRING_FIELDS:
        assert properties[name]["type"] == ["string", "null"], name
    assert properties["revenue"]["type"] == ["number", "null"]
    assert properties["revenue"]["minimum"] == 0
    ts_string, ts_integer = properties["ts"]["oneOf"]
    assert ts_string == {"type": "string", "pattern": events.ISO_TS_PATTERN}
    assert ts_integer == {"type": "integer", "minimum": 0}
    assert str(events.MAX_LINE_BYTES) in schema["description"]
    assert set(properties["type"]["examples"]) == events.KNOWN_TYPES


# Lines whose verdict the schema can express: no time window, duplicate keys or reserved values.
AGREEMENT_CASES: list[dict[str, Any]] = [
    {},
    {"ts": "2016-02-16T10:00:00Z"},
    {"ts": "2016-02-16T11:00:00.5+01:00"},
    {"ts": "2016-02-16T10:00:00"},
    {"ts": "yesterday"},
    {"ts": True},
    {"ts": -5},
    {"ts": 1.5},
    {"event_id": _DROP},
    {"visitor_id": _DROP},
    {"type": _DROP},
    {"ts": _DROP},
    {"event_id": ""},
    {"event_id": "   "},
    {"visitor_id": 7},
    {"type": None},
    {"page": 1},
    {"page": None},
    {"url": ["a"]},
    {"country": "DE", "extra": {"x": 1}},
    {"revenue": 0},
    {"revenue": 12.5},
    {"revenue": -0.01},
    {"revenue": "1"},
    {"revenue": None},
    {"type": "custom"},
]


@pytest.mark.parametrize("fields", AGREEMENT_CASES, ids=repr)
def test_schema_and_parser_agree_on_each_line(
    schema: dict[str, Any], fields: dict[str, Any]
) -> None:
    raw = line(**fields)
    schema_accepts = jsonschema.Draft202012Validator(schema).is_valid(json.loads(raw))
    window = events.TimeWindow(max_future_ms=10**15, max_past_ms=None)
    try:
        events.parse_event(raw, now_ms=NOW_MS, window=window)
        parser_accepts = True
    except errors.EventContractError:
        parser_accepts = False
    assert schema_accepts == parser_accepts


def test_event_fields_are_the_contract_fields_plus_bot() -> None:
    names = [f.name for f in dataclasses.fields(events.Event)]
    contract = ["ts_ms" if n == "ts" else n for n in events.REQUIRED_FIELDS]
    assert names == [
        *contract,
        *events.OPTIONAL_STRING_FIELDS,
        *events.OPTIONAL_NUMBER_FIELDS,
        "bot",
    ]


# --- the window follows the spec's allowed lateness ------------------------------------------


def test_the_lateness_window_is_the_allowed_lateness() -> None:
    window = events.lateness_window(durations.parse("1d"))
    assert window == events.TimeWindow(events.DEFAULT_MAX_FUTURE_MS, max_past_ms=86_400_000)
    assert parse(line(ts=NOW_MS - 86_400_000), window=window).ts_ms == NOW_MS - 86_400_000


def test_an_event_later_than_the_allowed_lateness_is_too_late() -> None:
    window = events.lateness_window(durations.parse("6h"))
    too_late = reason(line(ts="2016-02-16T03:59:59Z"), window=window)
    assert too_late == (
        "too_late: field 'ts': 2016-02-16T03:59:59Z is more than 6 hours before now "
        "(2016-02-16T10:00:00Z)"
    )
    assert too_late.startswith(events.TOO_LATE)


def test_a_month_of_lateness_counts_an_average_month() -> None:
    window = events.lateness_window(durations.parse("1mo"))
    assert window.max_past_ms == durations.AVERAGE_MONTH_SECONDS * 1000


def test_lateness_is_measured_from_the_newest_event_not_the_clock() -> None:
    window = events.lateness_window(durations.parse("1d"))
    newest = NOW_MS - 40 * 86_400_000  # a backlog 40 days behind the clock
    assert parse(line(ts=newest - 86_400_000), window=window, newest_ms=newest).ts_ms == (
        newest - 86_400_000
    )
    too_late = reason(line(ts=newest - 86_400_001), window=window, newest_ms=newest)
    assert too_late.startswith("too_late: field 'ts': ")
    assert too_late.endswith("is more than 1 day before the newest event (2016-01-07T10:00:00Z)")
    assert events.too_late_reason(newest, window, now_ms=NOW_MS, newest_ms=newest) is None


def test_a_batch_measures_lateness_from_the_batches_before_it() -> None:
    earlier, own = NOW_MS - 3 * 3_600_000, NOW_MS
    assert events.lateness_reference(earlier, own) == earlier
    # Only the first batch with events has nothing before it: its own newest stands in.
    assert events.lateness_reference(None, own) == own
    assert events.lateness_reference(None, None) is None


def test_the_too_late_limit_is_the_window_behind_the_reference() -> None:
    window = events.lateness_window(durations.parse("2h"))
    assert events.too_late_limit(window, NOW_MS) == NOW_MS - 2 * 3_600_000
    assert events.too_late_limit(window, None) is None
    assert events.too_late_limit(events.TimeWindow(max_past_ms=None), NOW_MS) is None
