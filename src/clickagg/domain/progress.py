"""The stream's progress as one Solr document, and the lag the operator reads from it.

The streaming job writes `__progress__` into the finest collection after every micro-batch
and while idle: how old the newest applied event was when its batch ended (0 when the
stream had nothing left to read), and its input and processing rates over the last batches
(`clickagg.domain.capacity`). The operator turns it into `status.lag`. A report that
has stopped coming is itself lag: its age is added once it is older than `STALE_AFTER_MS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clickagg.domain import buckets, capacity, cells, model

PROGRESS_ID = "__progress__"
LAG_FIELD = "lag_ms_l"
WATERMARK_FIELD = "watermark_ms_l"
NEWEST_EVENT_FIELD = "bucket"  # the newest applied event time (a docValues date field)
REPORTED_FIELD = "updated_at"
# Rows per second in thousandths (the configset's `*_l` longs), and the executors measuring.
INPUT_RATE_FIELD = "input_rate_milli_l"
PROCESSED_RATE_FIELD = "processed_rate_milli_l"
EXECUTORS_FIELD = "executors_l"
#: Spark reports an idle query every 10 s; a minute without a report means trouble.
STALE_AFTER_MS = 60_000


@dataclass(frozen=True)
class Report:
    """One progress report; event time and watermark are None until a batch had events."""

    lag_ms: int
    reported_ms: int
    watermark_ms: int | None = None
    newest_event_ms: int | None = None
    rates: capacity.Rates | None = None  # None until two batches have run


def document(level: model.Level, report: Report) -> dict[str, Any]:
    """The progress document of a report."""
    doc: dict[str, Any] = {
        "id": PROGRESS_ID,
        "level": level.name,
        "cuboid": cells.PROGRESS_CUBOID,
        LAG_FIELD: max(report.lag_ms, 0),
        REPORTED_FIELD: buckets.iso(report.reported_ms),
    }
    if report.newest_event_ms is not None:
        doc[NEWEST_EVENT_FIELD] = buckets.iso(report.newest_event_ms)
    if report.watermark_ms is not None:
        doc[WATERMARK_FIELD] = report.watermark_ms
    if report.rates is not None:
        doc[INPUT_RATE_FIELD] = round(report.rates.input_per_second * 1000)
        doc[PROCESSED_RATE_FIELD] = round(report.rates.processed_per_second * 1000)
        doc[EXECUTORS_FIELD] = report.rates.executors
    return doc


def report_of(doc: Mapping[str, Any]) -> Report | None:
    """The report a stored progress document holds; None when it holds none."""
    if LAG_FIELD not in doc or REPORTED_FIELD not in doc:
        return None
    watermark, newest = doc.get(WATERMARK_FIELD), doc.get(NEWEST_EVENT_FIELD)
    rates = None
    if all(field in doc for field in (INPUT_RATE_FIELD, PROCESSED_RATE_FIELD, EXECUTORS_FIELD)):
        rates = capacity.Rates(
            int(doc[INPUT_RATE_FIELD]) / 1000,
            int(doc[PROCESSED_RATE_FIELD]) / 1000,
            int(doc[EXECUTORS_FIELD]),
        )
    return Report(
        int(doc[LAG_FIELD]),
        buckets.parse_iso(str(doc[REPORTED_FIELD])),
        int(watermark) if watermark is not None else None,
        buckets.parse_iso(str(newest)) if newest is not None else None,
        rates,
    )


def lag_ms(report: Report, now_ms: int) -> int:
    """The reported lag, plus the report's age once the reports have stopped coming."""
    age = max(now_ms - report.reported_ms, 0)
    return report.lag_ms + (age if age > STALE_AFTER_MS else 0)


def newest_complete_bucket(report: Report, level: model.Level) -> int | None:
    """Start of the newest bucket the watermark has passed: no late event can enter it any
    more (visits that started in it may still settle when they close)."""
    if report.watermark_ms is None or report.watermark_ms <= 0:
        return None
    current = buckets.floor(report.watermark_ms, level.granularity)
    return buckets.subtract(current, level.granularity)


def short_duration(milliseconds: int) -> str:
    """`0s`, `12s`, `4m10s`, `2h3m`, `3d4h`: two units at most, for a printer column."""
    seconds = max(milliseconds, 0) // 1000
    counts: list[tuple[int, str]] = []
    for name, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        counts.append((count, name))
    largest = next((i for i, (count, _) in enumerate(counts) if count), None)
    if largest is None:
        return "0s"
    return "".join(f"{count}{name}" for count, name in counts[largest : largest + 2] if count)
