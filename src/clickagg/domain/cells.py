"""Aggregate cells: their state algebra, and their documents' ids and field names.

A cell is one (level, bucket, cuboid, dimension values). Its state is additive: a batch adds
its deltas (`add`), cells taken together are the sum of their states (`merge`), and a
coarser level's cell is the merge of the finer cells whose buckets fall into its bucket
(`coarser_bucket`). Its id is derived from exactly these four, so any writer (stream,
replay, rollup) that recomputes a cell overwrites the same document instead of adding
another.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from clickagg.domain import buckets, kpis, model

BOTS_CUBOID = "__bots__"
PROGRESS_CUBOID = "__progress__"  # the stream's progress report (see domain.progress)
BOT_EVENTS_FIELD = "m_bot_events"
SKETCH_FIELD = "hll_visitors"
STREAM_FIELD = "stream_s"  # which writer last applied deltas (a streaming query id)
BATCH_FIELD = "batch_l"  # the last micro-batch of that writer applied to the cell

_ESCAPES = str.maketrans({"%": "%25", "|": "%7C"})

State = dict[str, float]
# The bucket's text, shared by the hundreds of cells a writer writes per bucket.
_iso = functools.lru_cache(maxsize=4096)(buckets.iso)


@dataclass(frozen=True)
class CellDelta:
    """What one micro-batch adds to one cell (or, for a replay, the cell's whole state)."""

    cuboid: model.Cuboid
    bucket_ms: int
    values: tuple[str, ...]
    deltas: Mapping[str, float]
    sketch: bytes | None  # an HLL sketch of the cell's visitors (see domain.sketches)


def add(state: Mapping[str, float], deltas: Mapping[str, float]) -> State:
    """The state after the deltas: field by field, an absent field counting as 0."""
    total = dict(state)
    for name, amount in deltas.items():
        total[name] = total.get(name, 0.0) + amount
    return total


def merge(states: Iterable[Mapping[str, float]]) -> State:
    """The state of several cells taken together (a coarser bucket, a wider range)."""
    total: State = {}
    for state in states:
        total = add(total, state)
    return total


def coarser_bucket(bucket_ms: int, coarser: model.Level) -> int:
    """The bucket of the coarser level that a finer bucket rolls up into."""
    return buckets.floor(bucket_ms, coarser.granularity)


def stored_value(state_field: str, value: float) -> float | int:
    """A state value as stored: counts are whole numbers, sums stay as they are."""
    return round(value) if kpis.STATE_FIELDS[state_field].kind == "count" else value


def doc_id(level: str, bucket_ms: int, cuboid: str, values: Sequence[str]) -> str:
    """`15m|2026-11-26T10:15:00.000Z|channel+campaign|email|black-friday`."""
    parts = [level, _iso(bucket_ms), cuboid, *(v.translate(_ESCAPES) for v in values)]
    return "|".join(parts)


def parse_doc_id(document_id: str) -> tuple[str, int, str, tuple[str, ...]]:
    """`doc_id` read back: level, bucket start, cuboid, dimension values."""
    level, bucket, cuboid, *values = document_id.split("|")
    # Only '%' and '|' were escaped, each as %XX, so unquoting is the exact inverse.
    return level, buckets.parse_iso(bucket), cuboid, tuple(unquote(v) for v in values)


@functools.cache  # a handful of names, asked once per field of every document written
def solr_field(state_field: str) -> str:
    """The Solr field of a state field: m_ counts, f_ sums, the sketch as is."""
    kind = kpis.STATE_FIELDS[state_field].kind
    if kind == "sketch":
        return state_field
    return ("m_" if kind == "count" else "f_") + state_field


def dimension_field(dimension: str) -> str:
    return f"d_{dimension}"


def base_document(
    level: model.Level, bucket_ms: int, cuboid: model.Cuboid, values: Sequence[str]
) -> dict[str, Any]:
    """The identifying part of a cell's document (everything but its state)."""
    document: dict[str, Any] = {
        "id": doc_id(level.name, bucket_ms, cuboid.name, values),
        "level": level.name,
        "bucket": _iso(bucket_ms),
        "bucket_end": _iso(buckets.end(bucket_ms, level.granularity)),
        "cuboid": cuboid.name,
    }
    for name, value in zip(cuboid.dimensions, values, strict=True):
        document[dimension_field(name)] = value
    return document


def state_of(document: Mapping[str, Any], fields: Sequence[str]) -> State:
    """The additive state a document holds (absent fields are 0)."""
    return {name: float(document.get(solr_field(name), 0) or 0) for name in fields}


def state_fields(state: Mapping[str, float]) -> dict[str, float | int]:
    """A state as the fields of its document (`state_of` reads them back)."""
    return {solr_field(name): stored_value(name, value) for name, value in state.items()}
