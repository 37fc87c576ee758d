"""Read cells back from Solr: KPI totals over a time range, top dimension values, and the
stored cells themselves.

Only additive state is stored, so every KPI answer sums state over buckets first and then
applies the KPI formulas of the catalogue (a ratio of sums, never a sum of ratios).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clickagg.domain import buckets, cells, kpis, model, sessions, sketches
from clickagg.store import client as solr
from clickagg.store import queries
from clickagg.store import sketches as stored_sketches

Kpis = dict[str, float | None]
_PAGE_ROWS = 5000
_SKETCH_ROWS = 100_000


@dataclass(frozen=True)
class Row:
    """One dimension value with its KPIs."""

    value: str
    kpis: Kpis


@dataclass(frozen=True)
class StoredCell:
    """One cell as stored: what identifies it, its additive state, and its sketch."""

    cuboid: str
    bucket_ms: int
    values: tuple[str, ...]
    state: cells.State
    sketch: bytes | None


def _facet_sums(fields: Sequence[str]) -> dict[str, str]:
    return {name: f"sum({cells.solr_field(name)})" for name in fields}


def _kpis(state: Mapping[str, float], names: Sequence[str]) -> Kpis:
    return {name: kpis.CATALOGUE[name].compute(state) for name in names}


def totals(
    client: solr.SolrClient,
    level: model.Level,
    start_ms: int,
    end_ms: int,
    names: Sequence[str] = tuple(kpis.CATALOGUE),
) -> Kpis:
    """Every KPI of the totals cuboid over [start, end); unique visitors merge sketches."""
    filters = queries.cells_of(level, model.TOTALS, start_ms, end_ms)
    facets = client.json_facet(
        level.collection, queries.EVERYTHING, _facet_sums(sessions.FIELDS), filters=filters
    )
    state = {name: float(facets.get(name) or 0) for name in sessions.FIELDS}
    found = client.query(
        level.collection,
        {"q": queries.EVERYTHING, "fq": filters, "fl": cells.SKETCH_FIELD, "rows": _SKETCH_ROWS},
    )
    stored = [stored_sketches.of(d) for d in found["response"]["docs"]]
    state["hll_visitors"] = sketches.estimate(sketches.merge(stored))
    return _kpis(state, names)


def top(
    client: solr.SolrClient,
    level: model.Level,
    dimension: str,
    start_ms: int,
    end_ms: int,
    *,
    by: str,
    names: Sequence[str],
    limit: int = 10,
    include_missing: bool = False,
) -> list[Row]:
    """The `limit` values of a single-dimension cuboid with the highest state field `by`.

    Events without a value (`__none__`) are left out unless `include_missing` is set.
    """
    needed = kpis.required_state(names)
    fields = [f for f in needed if f in sessions.FIELDS]
    facet = {
        "values": {
            "type": "terms",
            "field": cells.dimension_field(dimension),
            "limit": limit,
            "sort": f"{by} desc",
            "facet": _facet_sums(sorted({*fields, by})),
        }
    }
    filters = queries.cells_of(level, dimension, start_ms, end_ms)
    if not include_missing:
        filters.append(queries.without_missing(dimension))
    facets = client.json_facet(level.collection, queries.EVERYTHING, facet, filters=filters)
    rows = []
    for bucket in facets.get("values", {}).get("buckets", []):
        state = {name: float(bucket.get(name) or 0) for name in fields}
        rows.append(Row(str(bucket["val"]), _kpis(state, names)))
    return rows


def stored_cells(
    client: solr.SolrClient,
    aggregation: model.Aggregation,
    level: model.Level,
    cuboid: str | None = None,
) -> Iterator[StoredCell]:
    """Every aggregate cell of the level (no bots, no progress), or of one cuboid, after a
    commit."""
    client.commit(level.collection)
    by_name = {c.name: c for c in aggregation.cuboids}
    q = queries.aggregate_cells() if cuboid is None else queries.cuboid_is(cuboid)
    for document in documents(client, level.collection, q):
        stored = by_name[document["cuboid"]]
        yield StoredCell(
            cuboid=stored.name,
            bucket_ms=buckets.parse_iso(document["bucket"]),
            values=tuple(document[cells.dimension_field(n)] for n in stored.dimensions),
            state=cells.state_of(document, sessions.FIELDS),
            sketch=stored_sketches.of(document),
        )


def bot_counts(client: solr.SolrClient, level: model.Level) -> dict[int, int]:
    """Bot events per bucket, after a commit."""
    client.commit(level.collection)
    return {
        buckets.parse_iso(d["bucket"]): int(d[cells.BOT_EVENTS_FIELD])
        for d in documents(client, level.collection, queries.cuboid_is(cells.BOTS_CUBOID))
    }


def count(client: solr.SolrClient, collection: str, q: str = queries.EVERYTHING) -> int:
    """How many documents match (every document by default)."""
    return int(client.query(collection, {"q": q, "rows": 0})["response"]["numFound"])


def values_with_prefix(
    client: solr.SolrClient, level: model.Level, dimension: str, prefix: str, limit: int
) -> list[str]:
    """Values of a single-dimension cuboid starting with `prefix` that are searchable now."""
    found = client.query(
        level.collection,
        {
            "q": queries.value_prefix(dimension, prefix),
            "fq": queries.cuboid_is(dimension),
            "fl": cells.dimension_field(dimension),
            "rows": limit,
        },
    )
    return [str(d[cells.dimension_field(dimension)]) for d in found["response"]["docs"]]


def documents(
    client: solr.SolrClient, collection: str, q: str = queries.EVERYTHING
) -> Iterator[dict[str, Any]]:
    """Every matching document, paged with a cursor (stable under concurrent writes)."""
    cursor = "*"
    while True:
        page = client.query(
            collection,
            {"q": q, "fl": "*", "rows": _PAGE_ROWS, "sort": "id asc", "cursorMark": cursor},
        )
        yield from page["response"]["docs"]
        if page["nextCursorMark"] == cursor:
            return
        cursor = page["nextCursorMark"]
