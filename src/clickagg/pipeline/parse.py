"""Parsing raw lines into archive rows (run inside Spark workers, through mapInArrow).

Every input line becomes exactly one archive row: a valid event (kind `event`, bots
included and flagged) or a dead letter (kind `dead_letter`, with its reason and raw
bytes). See `archive` for the row layout.

Two passes, because each row also records the newest event time through its batch, known
only once the batch is parsed: `parse_batches` checks everything else and keeps each line's
bytes, `mark_too_late` turns events behind the `too_late` limit (measured from earlier
batches, `events.lateness_reference`) into dead letters, sets that newest time and drops the
bytes of the events it keeps.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from clickagg import errors
from clickagg.domain import buckets, enrich, events
from clickagg.pipeline import archive

RAW_KEPT_BYTES = 4096  # a dead letter keeps this much of its line; the reason says the rest
_STRINGS = archive.STRINGS
#: The columns `parse_batches` reads: the line, where it came from, and its split's start.
LINE_COLUMNS = ("value", "arrival_source", "arrival_split")
#: The columns `parse_numbered` reads: the line, where it came from, and its offset.
NUMBERED_COLUMNS = ("value", "arrival_source", "arrival_offset")


@dataclass(frozen=True)
class ParseSettings:
    """What the parser needs on the workers (picklable, no connections)."""

    arrival_batch: int
    arrival_ms: int
    #: the future limit (from the clock); the past limit is `mark_too_late`'s
    max_future_ms: int = events.DEFAULT_MAX_FUTURE_MS


def parse_batches(
    batches: Iterator[pa.RecordBatch], settings: ParseSettings
) -> Iterator[pa.RecordBatch]:
    """Arrow batches of `LINE_COLUMNS` in, archive rows out (for mapInArrow).

    Lines of one split arrive in file order, so counting them per split gives each line an
    offset that increases through the file."""
    seen: dict[tuple[str, int], int] = {}
    for batch in batches:
        offsets = []
        for source, split in zip(
            batch.column("arrival_source").to_pylist(),
            batch.column("arrival_split").to_pylist(),
            strict=True,
        ):
            index = seen.get((source, split), 0)
            seen[(source, split)] = index + 1
            offsets.append(split + index)
        yield _parsed(batch, offsets, settings)


def parse_numbered(
    batches: Iterator[pa.RecordBatch], settings: ParseSettings
) -> Iterator[pa.RecordBatch]:
    """Like `parse_batches`, for lines whose offsets are known: `NUMBERED_COLUMNS` in."""
    for batch in batches:
        yield _parsed(batch, batch.column("arrival_offset").to_pylist(), settings)


def _parsed(batch: pa.RecordBatch, offsets: list[int], settings: ParseSettings) -> pa.RecordBatch:
    window = events.TimeWindow(max_future_ms=settings.max_future_ms, max_past_ms=None)
    now_ms = int(time.time() * 1000)
    columns: dict[str, list[Any]] = {field.name: [] for field in archive.SCHEMA}
    for line, source, offset in zip(
        batch.column("value").to_pylist(),
        batch.column("arrival_source").to_pylist(),
        offsets,
        strict=True,
    ):
        columns["arrival_source"].append(source)
        columns["arrival_offset"].append(offset)
        columns["arrival_ms"].append(settings.arrival_ms)
        columns["arrival_newest_ms"].append(None)
        columns["arrival_batch"].append(settings.arrival_batch)
        _append(columns, line or b"", now_ms, window, settings)
    return pa.RecordBatch.from_pydict(columns, schema=archive.SCHEMA)


def mark_too_late(
    batches: Iterator[pa.RecordBatch],
    window: events.TimeWindow,
    reference_ms: int | None,
    arrival_newest_ms: int | None,
) -> Iterator[pa.RecordBatch]:
    """Archive rows in, the same rows out with `arrival_newest_ms` set (the newest event time
    through their batch), events before the window's past limit behind `reference_ms` (the
    batch's `events.lateness_reference`; None: none) turned into `too_late` dead letters, and
    the raw bytes of the events kept dropped (for mapInArrow)."""

    def reason(ts_ms: int) -> str | None:
        if reference_ms is None:
            return None
        return events.too_late_reason(ts_ms, window, now_ms=reference_ms, newest_ms=reference_ms)

    return _reject(batches, arrival_newest_ms, reason)


def mark_outside(batches: Iterator[pa.RecordBatch], span: buckets.Span) -> Iterator[pa.RecordBatch]:
    """Like `mark_too_late`, for a backfill: events outside the stated `span` are rejected."""

    def reason(ts_ms: int) -> str | None:
        if span.start_ms <= ts_ms < span.end_ms:
            return None
        return f"field 'ts': {buckets.iso(ts_ms)} is outside the backfill window {span}"

    return _reject(batches, None, reason)


def _reject(
    batches: Iterator[pa.RecordBatch],
    newest_ms: int | None,
    reason_of: Callable[[int], str | None],
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        columns = batch.to_pydict()
        for i, kind in enumerate(columns["kind"]):
            columns["arrival_newest_ms"][i] = newest_ms
            if kind != archive.EVENT:
                continue
            reason = reason_of(columns["ts_ms"][i])
            if reason is None:
                columns["raw"][i] = None
                continue
            for name in (*_STRINGS, "revenue", "ts_ms", "bot"):
                columns[name][i] = None
            columns["reason"][i] = reason
            columns["kind"][i] = archive.DEAD_LETTER
            columns["date"][i], columns["hour"][i] = _date_and_hour(columns["arrival_ms"][i])
        yield pa.RecordBatch.from_pydict(columns, schema=archive.SCHEMA)


def _append(
    columns: dict[str, list[Any]],
    line: bytes,
    now_ms: int,
    window: events.TimeWindow,
    settings: ParseSettings,
) -> None:
    try:
        event = enrich.enrich(events.parse_event(line, now_ms=now_ms, window=window))
    except errors.EventContractError as exc:
        for name in _STRINGS:
            columns[name].append(None)
        columns["revenue"].append(None)
        columns["ts_ms"].append(None)
        columns["bot"].append(None)
        columns["reason"].append(str(exc))
        columns["raw"].append(line[:RAW_KEPT_BYTES])
        _partition(columns, archive.DEAD_LETTER, settings.arrival_ms)
        return
    for name in _STRINGS:
        columns[name].append(getattr(event, name))
    columns["revenue"].append(event.revenue)
    columns["ts_ms"].append(event.ts_ms)
    columns["bot"].append(event.bot)
    columns["reason"].append(None)
    columns["raw"].append(line[:RAW_KEPT_BYTES])  # until `mark_too_late` keeps the event
    _partition(columns, archive.EVENT, event.ts_ms)


def _partition(columns: dict[str, list[Any]], kind: str, at_ms: int) -> None:
    """Events by their time, dead letters by their arrival."""
    date, hour = _date_and_hour(at_ms)
    columns["kind"].append(kind)
    columns["date"].append(date)
    columns["hour"].append(hour)


def _date_and_hour(at_ms: int) -> tuple[str, int]:
    stamp = dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%d"), stamp.hour
