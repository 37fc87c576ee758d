"""Durations in both spellings, and bucket arithmetic on fixed and calendar granularities."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickagg.domain import buckets, durations

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "months", "seconds"),
    [
        ("15m", 0, 900),
        ("1h", 0, 3600),
        ("30d", 0, 30 * 86400),
        ("1w", 0, 7 * 86400),
        ("4mo", 4, 0),
        ("2y", 24, 0),
        ("PT15M", 0, 900),
        ("P30D", 0, 30 * 86400),
        ("P4M", 4, 0),
        ("P1Y2M", 14, 0),
        ("P1DT12H", 0, 36 * 3600),
        ("pt1h", 0, 3600),
    ],
)
def test_parse_accepts_short_and_iso_forms(text: str, months: int, seconds: int) -> None:
    parsed = durations.parse(text)
    assert (parsed.months, parsed.seconds) == (months, seconds)


@pytest.mark.parametrize("text", ["", "15", "15 minutes", "P", "PT", "1.5h", "-1h", "4M"])
def test_parse_rejects_other_text_and_says_what_works(text: str) -> None:
    with pytest.raises(ValueError, match="m = minutes, mo = months"):
        durations.parse(text)


@pytest.mark.parametrize(
    "text", ["10001y", "120013mo", "P10001Y", "9" * 5000 + "s", "PT" + "9" * 20 + "S"]
)
def test_parse_refuses_more_than_ten_thousand_years(text: str) -> None:
    # Found by the fuzz test (test_fuzz_spec.py): plans overflowed floats, int() refused digits.
    with pytest.raises(ValueError, match="is longer than 10000 years"):
        durations.parse(text)


def test_parse_accepts_ten_thousand_years() -> None:
    assert durations.parse("10000y").months == 120_000


def test_m_is_minutes_and_mo_is_months_spelled_out() -> None:
    assert durations.parse("4m").describe() == "4m (4 minutes)"
    assert durations.parse("4mo").describe() == "4mo (4 months)"
    assert durations.parse("P1Y6M").spelled_out() == "1 year 6 months"


def test_retention_forever_is_none() -> None:
    assert durations.parse_retention("forever") is None
    assert durations.parse_retention("2y") == durations.Duration(24, 0, "2y")


def test_canonical_short_form() -> None:
    assert [durations.parse(t).short() for t in ("PT15M", "PT60M", "P1D", "P12M", "P7D")] == [
        "15m",
        "1h",
        "1d",
        "1y",
        "1w",
    ]


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("granularity", "ts", "start", "end"),
    [
        (
            "15m",
            "2026-11-26T10:14:59.999+00:00",
            "2026-11-26T10:00:00+00:00",
            "2026-11-26T10:15:00+00:00",
        ),
        (
            "1h",
            "2026-11-26T10:59:00+01:00",
            "2026-11-26T09:00:00+00:00",
            "2026-11-26T10:00:00+00:00",
        ),
        (
            "1d",
            "2026-11-26T23:59:59+00:00",
            "2026-11-26T00:00:00+00:00",
            "2026-11-27T00:00:00+00:00",
        ),
        (
            "1w",
            "2026-11-26T12:00:00+00:00",
            "2026-11-23T00:00:00+00:00",
            "2026-11-30T00:00:00+00:00",
        ),
        (
            "1mo",
            "2026-02-28T12:00:00+00:00",
            "2026-02-01T00:00:00+00:00",
            "2026-03-01T00:00:00+00:00",
        ),
        (
            "3mo",
            "2026-11-26T12:00:00+00:00",
            "2026-10-01T00:00:00+00:00",
            "2027-01-01T00:00:00+00:00",
        ),
        (
            "1y",
            "2026-11-26T12:00:00+00:00",
            "2026-01-01T00:00:00+00:00",
            "2027-01-01T00:00:00+00:00",
        ),
        (
            "15m",
            "1969-12-31T23:50:00+00:00",
            "1969-12-31T23:45:00+00:00",
            "1970-01-01T00:00:00+00:00",
        ),
    ],
)
def test_bucket_floor_and_end(granularity: str, ts: str, start: str, end: str) -> None:
    size = durations.parse(granularity)
    floored = buckets.floor(_ms(ts), size)
    assert floored == _ms(start)
    assert buckets.end(floored, size) == _ms(end)


def test_subtract_counts_calendar_months() -> None:
    assert buckets.subtract(_ms("2026-05-31T00:00:00+00:00"), durations.parse("3mo")) == _ms(
        "2026-02-28T00:00:00+00:00"
    )
    assert buckets.iso(_ms("2026-11-26T10:15:00+00:00")) == "2026-11-26T10:15:00.000Z"


# Year 1 to 9999: every instant Solr's dates and Python's datetime share.
_INSTANTS = st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999)


@given(_INSTANTS)
def test_iso_is_exact_to_the_millisecond_and_parse_iso_reads_it_back(ts_ms: int) -> None:
    text = buckets.iso(ts_ms)
    stamp = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ts_ms)
    assert text == f"{stamp.year:04d}-{stamp:%m-%dT%H:%M:%S}.{ts_ms % 1000:03d}Z"
    assert buckets.parse_iso(text) == ts_ms
    assert buckets.parse_iso(text.replace("Z", "+00:00")) == ts_ms
    assert buckets.parse_iso(text.removesuffix("Z")) == ts_ms  # no offset: UTC


# --- spans of buckets --------------------------------------------------------------------------

_T = buckets.parse_iso("2026-11-29T10:07:00Z")


def test_ceil_is_the_next_boundary_or_the_time_itself() -> None:
    quarter = durations.parse("15m")
    assert buckets.iso(buckets.ceil(_T, quarter)) == "2026-11-29T10:15:00.000Z"
    assert buckets.ceil(buckets.floor(_T, quarter), quarter) == buckets.floor(_T, quarter)
    month = durations.parse("1mo")
    assert buckets.iso(buckets.ceil(_T, month)) == "2026-12-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("granularity", "end", "count", "aligned"),
    [
        ("15m", "2026-11-29T11:00:00Z", 4, "[2026-11-29T10:00:00.000Z, 2026-11-29T11:00:00.000Z)"),
        ("1h", "2026-11-29T10:08:00Z", 1, "[2026-11-29T10:00:00.000Z, 2026-11-29T11:00:00.000Z)"),
        ("1d", "2026-12-02T00:00:00Z", 3, "[2026-11-29T00:00:00.000Z, 2026-12-02T00:00:00.000Z)"),
        ("1mo", "2027-02-15T00:00:00Z", 4, "[2026-11-01T00:00:00.000Z, 2027-03-01T00:00:00.000Z)"),
    ],
)
def test_a_span_counts_the_buckets_it_overlaps(
    granularity: str, end: str, count: int, aligned: str
) -> None:
    span = buckets.Span(_T, buckets.parse_iso(end))
    size = durations.parse(granularity)
    assert buckets.count(span, size) == count
    assert len(list(buckets.starts(span, size))) == count
    assert str(span.aligned(size)) == aligned


def test_an_empty_span_has_no_bucket() -> None:
    assert buckets.count(buckets.Span(_T, _T), durations.parse("15m")) == 0
