"""The stream's progress document and the lag the operator derives from it."""

from __future__ import annotations

import pytest

import examples
from clickagg.domain import buckets, capacity, cells, progress, validation

pytestmark = pytest.mark.unit

NOW_MS = buckets.parse_iso("2026-11-26T10:00:00Z")


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [
        (0, "0s"),
        (999, "0s"),
        (12_000, "12s"),
        (250_000, "4m10s"),
        (3_600_000, "1h"),
        (3_780_000, "1h3m"),
        (3_600_000 + 59_000, "1h"),  # two units at most: seconds drop after hours
        (3 * 86_400_000 + 4 * 3_600_000 + 5_000, "3d4h"),
        (-5_000, "0s"),
    ],
)
def test_short_duration(milliseconds: int, text: str) -> None:
    assert progress.short_duration(milliseconds) == text


def test_a_fresh_report_is_the_lag() -> None:
    report = progress.Report(lag_ms=8_000, reported_ms=NOW_MS - 5_000)
    assert progress.lag_ms(report, NOW_MS) == 8_000


def test_a_report_that_stopped_coming_adds_its_age() -> None:
    age = progress.STALE_AFTER_MS + 30_000
    report = progress.Report(lag_ms=2_000, reported_ms=NOW_MS - age)
    assert progress.lag_ms(report, NOW_MS) == 2_000 + age


def test_the_document_round_trips_through_its_report() -> None:
    aggregation = validation.validate(examples.one_level("ns", "shop", "shop"))
    newest = NOW_MS - 7_000
    doc = progress.document(
        aggregation.finest, progress.Report(lag_ms=-3, reported_ms=NOW_MS, newest_event_ms=newest)
    )
    assert doc["id"] == progress.PROGRESS_ID
    assert doc["cuboid"] == cells.PROGRESS_CUBOID
    assert doc["bucket"] == "2026-11-26T09:59:53.000Z"
    assert progress.report_of(doc) == progress.Report(0, NOW_MS, newest_event_ms=newest)
    doc[progress.WATERMARK_FIELD] = NOW_MS - 60_000
    assert progress.report_of(doc) == progress.Report(0, NOW_MS, NOW_MS - 60_000, newest)
    assert progress.report_of({"id": progress.PROGRESS_ID}) is None


def test_solr_date_forms_parse() -> None:
    assert buckets.parse_iso("2026-11-26T10:00:00Z") == NOW_MS
    assert buckets.parse_iso("2026-11-26T10:00:00.250Z") == NOW_MS + 250
    assert buckets.parse_iso("2026-11-26T11:00:00+01:00") == NOW_MS
    assert buckets.parse_iso("2026-11-26T10:00:00") == NOW_MS


@pytest.mark.parametrize(
    ("watermark", "complete"),
    [
        ("2026-11-26T10:07:00Z", "2026-11-26T09:45:00.000Z"),
        ("2026-11-26T10:15:00Z", "2026-11-26T10:00:00.000Z"),
        (None, None),
    ],
)
def test_the_newest_complete_bucket_is_the_one_the_watermark_passed(
    watermark: str | None, complete: str | None
) -> None:
    finest = validation.validate(examples.one_level("ns", "shop", "shop")).finest
    watermark_ms = buckets.parse_iso(watermark) if watermark else None
    report = progress.Report(lag_ms=0, reported_ms=NOW_MS, watermark_ms=watermark_ms)
    found = progress.newest_complete_bucket(report, finest)
    assert (buckets.iso(found) if found is not None else None) == complete


def test_a_level_progress_document_round_trips() -> None:
    from clickagg.domain import level_progress

    report = level_progress.LevelReport(
        last_bucket_ms=3_600_000, input_end_ms=7_200_000, checked_ms=900_000, reported_ms=5_000
    )
    finest = validation.validate(examples.one_level("ns", "shop", "shop")).finest
    document = level_progress.document(finest, report)
    assert document["id"] == level_progress.LEVEL_ID and "horizon_ms_l" not in document
    assert level_progress.report_of(document) == report
    assert report.changed_since() == 900_000 - level_progress.CHANGE_MARGIN_MS
    assert level_progress.LevelReport().changed_since() is None


def test_the_rates_round_trip_through_the_document() -> None:
    aggregation = validation.validate(examples.one_level("ns", "shop", "shop"))
    rates = capacity.Rates(input_per_second=1234.5678, processed_per_second=99.5, executors=3)
    doc = progress.document(aggregation.finest, progress.Report(0, NOW_MS, rates=rates))
    found = progress.report_of(doc)
    assert found is not None and found.rates == capacity.Rates(1234.568, 99.5, 3)
