"""Parsing raw lines into archive rows (run inside Spark workers, through mapInArrow).

Every input line becomes exactly one archive row: a valid event (kind `event`, bots
included and flagged) or a dead letter (kind `dead_letter`, with its reason and raw
bytes). See `archive` for the row layout.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from clickagg import errors
from clickagg.domain import enrich, events
from clickagg.pipeline import archive

RAW_KEPT_BYTES = 4096  # a dead letter keeps this much of its line; the reason says the rest
_STRINGS = archive.STRINGS


@dataclass(frozen=True)
class ParseSettings:
    """What the parser needs on the workers (picklable, no connections)."""

    window: events.TimeWindow = events.DEFAULT_WINDOW


def parse_batches(
    batches: Iterator[pa.RecordBatch], settings: ParseSettings
) -> Iterator[pa.RecordBatch]:
    """Arrow batches with a binary `value` column in, archive rows out (for mapInArrow)."""
    for batch in batches:
        now_ms = int(time.time() * 1000)
        columns: dict[str, list[Any]] = {field.name: [] for field in archive.SCHEMA}
        for line in batch.column("value").to_pylist():
            _append(columns, line or b"", now_ms, settings)
        yield pa.RecordBatch.from_pydict(columns, schema=archive.SCHEMA)


def _append(
    columns: dict[str, list[Any]], line: bytes, now_ms: int, settings: ParseSettings
) -> None:
    try:
        event = enrich.enrich(events.parse_event(line, now_ms=now_ms, window=settings.window))
    except errors.EventContractError as exc:
        for name in _STRINGS:
            columns[name].append(None)
        columns["revenue"].append(None)
        columns["ts_ms"].append(None)
        columns["bot"].append(None)
        columns["reason"].append(str(exc))
        columns["raw"].append(line[:RAW_KEPT_BYTES])
        _partition(columns, archive.DEAD_LETTER, now_ms, now_ms)
        return
    for name in _STRINGS:
        columns[name].append(getattr(event, name))
    columns["revenue"].append(event.revenue)
    columns["ts_ms"].append(event.ts_ms)
    columns["bot"].append(event.bot)
    columns["reason"].append(None)
    columns["raw"].append(None)
    _partition(columns, archive.EVENT, event.ts_ms, now_ms)


def _partition(columns: dict[str, list[Any]], kind: str, at_ms: int, now_ms: int) -> None:
    stamp = dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC)
    columns["ingested_ms"].append(now_ms)
    columns["kind"].append(kind)
    columns["date"].append(stamp.strftime("%Y-%m-%d"))
    columns["hour"].append(stamp.hour)
