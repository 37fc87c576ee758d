"""Hostile JSON-like values for the fuzz tests of the event parser and the spec validator."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from clickagg.domain import events

#: Past this many digits int() is slow; past 4300 Python refuses (json.dumps too).
BIG_INT = 10**400


def values(samples: Sequence[str], max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """Nulls, booleans, huge integers, NaN and infinities, text with lone surrogates (JSON
    writes them as \\ud800 escapes), the given sample strings, and lists and objects of
    them."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-BIG_INT, max_value=BIG_INT),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(alphabet=st.characters(codec=None), max_size=40),
        st.sampled_from(list(samples)),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
        max_leaves=max_leaves,
    )


# 2016-02-16T10:00:00Z, the morning of the talk.
NOW_MS = 1_455_616_800_000
_DIGITS = 5000  # past Python's 4300-digit limit for int(str)

_JSON_VALUES = values(
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


#: Lines that once broke a parser, or could: deep nesting, huge numbers, surrogates.
LINES = {
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
