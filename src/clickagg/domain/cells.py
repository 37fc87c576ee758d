"""Aggregate cells as Solr documents: deterministic ids and field names.

A cell is one (level, bucket, cuboid, dimension values). Its id is derived from exactly
these, so any writer (stream, replay, rollup) that recomputes a cell overwrites the same
document instead of adding another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clickagg.domain import buckets, kpis, model

BOTS_CUBOID = "__bots__"
PROGRESS_CUBOID = "__progress__"  # the stream's progress report (see domain.progress)
BOT_EVENTS_FIELD = "m_bot_events"
SKETCH_FIELD = "hll_visitors"
STREAM_FIELD = "stream_s"  # which writer last applied deltas (a streaming query id)
BATCH_FIELD = "batch_l"  # the last micro-batch of that writer applied to the cell

_ESCAPES = str.maketrans({"%": "%25", "|": "%7C"})


def doc_id(level: str, bucket_ms: int, cuboid: str, values: Sequence[str]) -> str:
    """`15m|2026-11-26T10:15:00.000Z|channel+campaign|email|black-friday`."""
    parts = [level, buckets.iso(bucket_ms), cuboid, *(v.translate(_ESCAPES) for v in values)]
    return "|".join(parts)


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
        "bucket": buckets.iso(bucket_ms),
        "bucket_end": buckets.iso(buckets.end(bucket_ms, level.granularity)),
        "cuboid": cuboid.name,
    }
    for name, value in zip(cuboid.dimensions, values, strict=True):
        document[dimension_field(name)] = value
    return document


def state_of(document: Mapping[str, Any], fields: Sequence[str]) -> dict[str, float]:
    """The additive state a document holds (absent fields are 0)."""
    return {name: float(document.get(solr_field(name), 0) or 0) for name in fields}
