"""Hostile lines for the event parser: whatever a sender writes, every line becomes exactly one
event or one dead letter with a reason, and nothing else escapes (issue 11, section 5).

Hypothesis runs under the derandomized, database-free profile of tests/conftest.py, so a
failure here fails the same way on every machine.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import hostile
from clickagg import errors
from clickagg.domain import enrich, events
from clickagg.pipeline import archive, parse

pytestmark = pytest.mark.unit

NOW_MS = hostile.NOW_MS
#: A reason is one line a sender reads in the dead letters, not a copy of the event.
MAX_REASON_CHARS = 400
near_valid_lines = hostile.near_valid_lines
HOSTILE_LINES = hostile.LINES


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
