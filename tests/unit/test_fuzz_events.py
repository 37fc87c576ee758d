"""Hostile lines for the event parser: whatever a sender writes, every line becomes exactly one
event or one dead letter with a reason, and nothing else escapes (issue 11, section 5).

Hypothesis runs under the derandomized, database-free profile of tests/conftest.py, so a
failure here fails the same way on every machine.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import hostile
from clickagg import errors
from clickagg.domain import enrich, events
from clickagg.pipeline import archive, parse

pytestmark = pytest.mark.unit

# 2016-02-16T10:00:00Z, the morning of the talk.
NOW_MS = 1_455_616_800_000
#: A reason is one line a sender reads in the dead letters, not a copy of the event.
MAX_REASON_CHARS = 400
_DIGITS = 5000  # past Python's 4300-digit limit for int(str)

_JSON_VALUES = hostile.values(
    ["", " ", "__other__", "__missing__", "page_view", "2016-02-16T10:00:00Z"], max_leaves=12
)
_TS_VALUES = st.one_of(
    st.integers(min_value=NOW_MS - 40 * 86_400_000, max_value=NOW_MS + 2 * 86_400_000),
    st.floats(),
    st.integers(),
    st.from_regex(events.ISO_TS_PATTERN, fullmatch=True),
    _JSON_VALUES,
)
_FIELDS = ("event_id", "ts", "visitor_id", "type", *events.OPTIONAL_STRING_FIELDS, "revenue")


@st.composite
def near_valid_lines(draw: st.DrawFn) -> bytes:
    """A valid event with some fields dropped or replaced by hostile values, serialised in
    one of the ways a broken sender might (duplicate keys, raw surrogates, Latin-1)."""
    record: dict[str, Any] = {
        "event_id": "e-1",
        "ts": NOW_MS,
        "visitor_id": "v-1",
        "type": "page_view",
    }
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=5)):
        if draw(st.booleans()):
            record.pop(name, None)
        else:
            record[name] = draw(_TS_VALUES if name == "ts" else _JSON_VALUES)
    text = json.dumps(record, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()) and len(record) > 1:
        # A second copy of one key, as a concatenating sender writes it.
        key = draw(st.sampled_from(sorted(record)))
        copy = json.dumps({key: draw(_JSON_VALUES)})[1:-1]
        text = text[:-1] + ", " + copy + "}"
    encoding = draw(st.sampled_from(["utf-8", "surrogatepass", "latin-1"]))
    if encoding == "surrogatepass":
        return text.encode("utf-8", "surrogatepass")
    return text.encode(encoding, "replace")


def outcome(line: bytes) -> events.Event | str:
    """What the pipeline makes of one line: the enriched event, or the dead-letter reason.
    Any exception other than EventContractError escapes and fails the test."""
    try:
        return enrich.enrich(events.parse_event(line, now_ms=NOW_MS))
    except errors.EventContractError as exc:
        return str(exc)


def check_outcome(line: bytes) -> None:
    result = outcome(line)
    if isinstance(result, str):
        assert result.strip(), f"a dead letter without a reason for {line[:80]!r}"
        assert len(result) <= MAX_REASON_CHARS, result[:MAX_REASON_CHARS]
        result.encode("utf-8")  # the reason is stored as a Parquet string
        return
    assert result.ts_ms >= NOW_MS - events.DEFAULT_MAX_PAST_MS
    assert result.ts_ms <= NOW_MS + events.DEFAULT_MAX_FUTURE_MS
    for name in archive.STRINGS:
        value = getattr(result, name)
        assert value is None or isinstance(value, str)
        if value is not None:
            value.encode("utf-8")  # every string field is stored as a Parquet string
    assert result.revenue is None or (math.isfinite(result.revenue) and result.revenue >= 0)


HOSTILE_LINES = {
    "empty": b"",
    "blank": b" \t\r\n",
    "byte order mark": b'\xef\xbb\xbf{"event_id":"e"}',
    "oversized": b'{"event_id":"' + b"x" * events.MAX_LINE_BYTES + b'"}',
    "deep array": b"[" * 50_000,
    "deep object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "deep in a valid event": (
        b'{"event_id":"e","ts":1455616800000,"visitor_id":"v","type":"t","x":'
        + b"[" * 30_000
        + b"]" * 30_000
        + b"}"
    ),
    "huge integer": b"1" * _DIGITS,
    "huge integer ts": b'{"event_id":"e","ts":' + b"9" * _DIGITS + b',"visitor_id":"v","type":"t"}',
    "huge float ts": b'{"event_id":"e","ts":1e308,"visitor_id":"v","type":"t"}',
    "huge float revenue": (
        b'{"event_id":"e","ts":1455616800000,"visitor_id":"v","type":"t","revenue":1e400}'
    ),
    "NaN": b'{"event_id":"e","ts":NaN,"visitor_id":"v","type":"t"}',
    "Infinity revenue": (
        b'{"event_id":"e","ts":1455616800000,"visitor_id":"v","type":"t","revenue":-Infinity}'
    ),
    "escaped lone surrogate": b'{"event_id":"e\\ud800","ts":1455616800000,"visitor_id":"v",'
    b'"type":"t"}',
    "lone surrogate in the user agent": b'{"event_id":"e","ts":1455616800000,"visitor_id":"v",'
    b'"type":"t","user_agent":"\\udfff"}',
    "surrogate pair": b'{"event_id":"e\\ud83d\\ude00","ts":1455616800000,"visitor_id":"v",'
    b'"type":"t"}',
    "raw surrogate bytes": b'{"event_id":"\xed\xa0\x80","ts":1455616800000}',
    "duplicate keys": b'{"event_id":"a","event_id":"b","ts":1455616800000}',
    "duplicate surrogate keys": b'{"\\ud800":1,"\\ud800":2}',
    "duplicate long keys": b'{"' + b"k" * 30_000 + b'":1,"' + b"k" * 30_000 + b'":2}',
    "invalid UTF-8": b'{"event_id":"\xff\xfe"}',
    "NUL": b'{"event_id":"\x00"}',
    "ISO ts far in the past with an offset": (
        b'{"event_id":"e","ts":"0001-01-01T00:00:00+01:00","visitor_id":"v","type":"t"}'
    ),
    "ISO ts at the end of time": (
        b'{"event_id":"e","ts":"9999-12-31T23:59:59-23:59","visitor_id":"v","type":"t"}'
    ),
}


@pytest.mark.parametrize("line", HOSTILE_LINES.values(), ids=HOSTILE_LINES.keys())
def test_hostile_line_is_one_event_or_one_reason(line: bytes) -> None:
    check_outcome(line)


@given(st.binary(max_size=512))
def test_any_bytes_are_one_event_or_one_reason(line: bytes) -> None:
    check_outcome(line)


@given(near_valid_lines())
@example(b'{"event_id":"e","ts":1455616800000,"visitor_id":"v","type":"t","page":"\\udc80"}')
def test_any_broken_event_is_one_event_or_one_reason(line: bytes) -> None:
    check_outcome(line)


@given(st.lists(st.one_of(near_valid_lines(), st.binary(max_size=64)), max_size=8))
def test_every_line_of_a_batch_becomes_exactly_one_archive_row(lines: list[bytes]) -> None:
    batch = pa.RecordBatch.from_pydict(
        {"value": lines, "arrival_source": ["f"] * len(lines), "arrival_split": [0] * len(lines)},
        schema=pa.schema(
            [("value", pa.binary()), ("arrival_source", pa.string()), ("arrival_split", pa.int64())]
        ),
    )
    settings = parse.ParseSettings(arrival_batch=0, arrival_ms=0)
    rows = [row for out in parse.parse_batches(iter([batch]), settings) for row in out.to_pylist()]
    assert len(rows) == len(lines)
    for line, row in zip(lines, rows, strict=True):
        if row["kind"] == archive.DEAD_LETTER:
            assert row["reason"] and row["event_id"] is None
            assert row["raw"] == line[: parse.RAW_KEPT_BYTES]
        else:
            assert row["kind"] == archive.EVENT
            assert row["reason"] is None and row["event_id"]
