"""Read cells back from Solr: KPI totals over a time range, top dimension values, the
stored cells themselves, and the query service's summed state per bucket or value.

Only additive state is stored, so every KPI answer sums state over buckets first and then
applies the KPI formulas of the catalogue (a ratio of sums, never a sum of ratios).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clickagg.domain import buckets, cells, kpis, model, questions, sessions, sketches
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
    """Every aggregate cell of the level (no bots, no progress), or of one cuboid, as far as
    Solr's searcher sees them (writers commit; the stream's writes show within a second)."""
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
    """Bot events per bucket."""
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
    client: solr.SolrClient,
    collection: str,
    q: str = queries.EVERYTHING,
    *,
    filters: Sequence[str] = (),
    fields: str = "*",
) -> Iterator[dict[str, Any]]:
    """Every matching document, paged with a cursor (stable under concurrent writes)."""
    cursor = "*"
    while True:
        page = client.query(
            collection,
            {
                "q": q,
                "fq": list(filters),
                "fl": fields,
                "rows": _PAGE_ROWS,
                "sort": "id asc",
                "cursorMark": cursor,
            },
        )
        yield from page["response"]["docs"]
        if page["nextCursorMark"] == cursor:
            return
        cursor = page["nextCursorMark"]


# --- the query service's reads: summed state per bucket or per value ----------------------


def summed(
    client: solr.SolrClient,
    level: model.Level,
    cuboid: model.Cuboid,
    filters: Sequence[questions.Filter],
    span: buckets.Span,
    fields: Sequence[str],
    key_field: str,
) -> dict[str, cells.State]:
    """State of the cuboid's cells in the span summed per value of `key_field` (a bucket or a
    dimension field), by one JSON facet. Cells of a larger cuboid than the filters need are
    summed over its other dimensions. The sketch field, if asked for, comes back as the
    estimate of the merged sketches."""
    query = [
        *queries.cells_of(level, cuboid.name, span.start_ms, span.end_ms),
        *(queries.value_is(f.dimension, f.value) for f in filters),
    ]
    additive = [f for f in fields if f in sessions.FIELDS]
    facet = {
        "keys": {
            "type": "terms",
            "field": key_field,
            "limit": -1,
            "sort": "index asc",
            "missing": False,
            "facet": _facet_sums(additive),
        }
    }
    found = client.json_facet(level.collection, queries.EVERYTHING, facet, filters=query)
    by_key: dict[str, cells.State] = {}
    for bucket in found.get("keys", {}).get("buckets", []):
        by_key[str(bucket["val"])] = {name: float(bucket.get(name) or 0) for name in additive}
    if cells.SKETCH_FIELD in fields:
        merged = _merged_sketches(client, level.collection, query, key_field)
        for key, state in by_key.items():
            state[cells.SKETCH_FIELD] = sketches.estimate(merged.get(key))
    return by_key


def _merged_sketches(
    client: solr.SolrClient, collection: str, query: Sequence[str], key_field: str
) -> dict[str, bytes | None]:
    """One merged sketch per key, from every matching cell."""
    grouped: dict[str, list[bytes | None]] = defaultdict(list)
    fields = f"id,{key_field},{cells.SKETCH_FIELD}"
    for document in documents(client, collection, filters=query, fields=fields):
        grouped[str(document[key_field])].append(stored_sketches.of(document))
    return {key: sketches.merge(found) for key, found in grouped.items()}


def levels_with_documents(client: solr.SolrClient, levels: Sequence[model.Level]) -> set[str]:
    """Names of the levels whose collection exists and holds at least one aggregate cell."""
    existing = set(client.list_collections())
    return {
        level.name
        for level in levels
        if level.collection in existing
        and count(client, level.collection, queries.aggregate_cells())
    }


def cell_rows(
    client: solr.SolrClient, collection: str, dimension_names: Sequence[str]
) -> Iterator[dict[str, object]]:
    """Every cell of a level's collection as a flat row: level, bucket, cuboid, one column
    per dimension (None outside the cell's cuboid), every additive state field, and
    `unique_visitors`, the estimate of the cell's own sketch (for ad-hoc SQL)."""
    fields = [
        "id", "level", "bucket", "bucket_end", "cuboid", cells.SKETCH_FIELD,
        *(cells.dimension_field(n) for n in dimension_names),
        *(cells.solr_field(f) for f in sessions.FIELDS),
    ]  # fmt: skip
    for document in documents(
        client, collection, queries.aggregate_cells(), fields=",".join(fields)
    ):
        row: dict[str, object] = {
            name: document.get(name) for name in ("level", "bucket", "bucket_end", "cuboid")
        }
        row.update({n: document.get(cells.dimension_field(n)) for n in dimension_names})
        row.update(cells.state_of(document, sessions.FIELDS))
        row["unique_visitors"] = sketches.estimate(stored_sketches.of(document))
        yield row
