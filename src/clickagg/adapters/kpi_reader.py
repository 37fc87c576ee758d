"""Read KPIs back from Solr: totals over a time range and top dimension values, and the
state the query service asks for (`SolrKpiStore`: per bucket, per dimension value, progress).

Only additive state is stored, so every answer sums state over buckets first and then
applies the KPI formulas of the catalogue (a ratio of sums, never a sum of ratios).
Unique visitors come from merging the cells' HLL sketches, never from adding estimates.
Every Solr query the service makes is written here (to move into `store` with the rest).
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from clickagg.adapters import cell_store, solr
from clickagg.domain import buckets, cells, dimensions, kpis, model, progress, questions, sessions

Kpis = dict[str, float | None]


@dataclass(frozen=True)
class Row:
    """One dimension value with its KPIs."""

    value: str
    kpis: Kpis


def _range_filter(level: model.Level, cuboid: str, start_ms: int, end_ms: int) -> list[str]:
    return [
        f"level:{level.name}",
        f'cuboid:"{cuboid}"',
        f"bucket:[{buckets.iso(start_ms)} TO {buckets.iso(end_ms)}}}",
    ]


def _facet_sums(fields: Sequence[str]) -> dict[str, str]:
    return {name: f"sum({cells.solr_field(name)})" for name in fields}


def _kpis(state: Mapping[str, float], names: Sequence[str]) -> Kpis:
    return {name: kpis.CATALOGUE[name].compute(state) for name in names}


def totals(
    client: solr.SolrClient, level: model.Level, start_ms: int, end_ms: int,
    names: Sequence[str] = tuple(kpis.CATALOGUE),
) -> Kpis:  # fmt: skip
    """Every KPI of the totals cuboid over [start, end); unique visitors merge sketches."""
    filters = _range_filter(level, model.TOTALS, start_ms, end_ms)
    facets = client.json_facet(
        level.collection, "*:*", _facet_sums(sessions.FIELDS), filters=filters
    )
    state = {name: float(facets.get(name) or 0) for name in sessions.FIELDS}
    found = client.query(level.collection, {
        "q": "*:*", "fq": filters, "fl": cells.SKETCH_FIELD, "rows": 100_000,
    })  # fmt: skip
    sketches = [
        base64.b64decode(d[cells.SKETCH_FIELD])
        for d in found["response"]["docs"]
        if d.get(cells.SKETCH_FIELD)
    ]
    state["hll_visitors"] = cell_store.estimate(cell_store.merge_sketches(sketches))
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
    filters = _range_filter(level, dimension, start_ms, end_ms)
    if not include_missing:
        filters.append(f'-{cells.dimension_field(dimension)}:"{dimensions.MISSING}"')
    facets = client.json_facet(level.collection, "*:*", facet, filters=filters)
    rows = []
    for bucket in facets.get("values", {}).get("buckets", []):
        state = {name: float(bucket.get(name) or 0) for name in fields}
        rows.append(Row(str(bucket["val"]), _kpis(state, names)))
    return rows


# --- the query service's reads ------------------------------------------------------------

State = dict[str, float]
_PAGE_ROWS = 5000
_CELLS_ONLY = f"-cuboid:({cells.BOTS_CUBOID} OR {cells.PROGRESS_CUBOID})"


class SolrKpiStore:
    """The service's `KpiStore` on SolrCloud: summed state by JSON facets, merged sketches.

    `fields` are state fields of kpis.STATE_FIELDS; `hll_visitors` comes back as the merged
    sketch's estimate. Cells of a larger cuboid than the filters need are summed over its
    other dimensions, missing values included.
    """

    def __init__(self, client: solr.SolrClient) -> None:
        self.client = client

    def healthy(self) -> bool:
        return self.client.ping()

    def series(
        self,
        level: model.Level,
        cuboid: model.Cuboid,
        filters: Sequence[questions.Filter],
        span: questions.TimeRange,
        fields: Sequence[str],
    ) -> dict[int, State]:
        """State per bucket start (epoch ms); buckets without cells are absent."""
        per_bucket = self._summed(level, cuboid, filters, span, fields, "bucket")
        return {buckets.parse_iso(key): state for key, state in per_bucket.items()}

    def breakdown(
        self,
        level: model.Level,
        cuboid: model.Cuboid,
        dimension: str,
        filters: Sequence[questions.Filter],
        span: questions.TimeRange,
        fields: Sequence[str],
    ) -> dict[str, State]:
        """State per value of `dimension` over the range (`__none__` included)."""
        return self._summed(level, cuboid, filters, span, fields, cells.dimension_field(dimension))

    def progress(self, level: model.Level) -> progress.Report | None:
        stored = self.client.get(level.collection, [progress.PROGRESS_ID])
        return progress.report_of(stored[0]) if stored else None

    def levels_with_documents(self, levels: Sequence[model.Level]) -> set[str]:
        """Names of the levels whose collection exists and holds at least one cell."""
        existing = set(self.client.list_collections())
        found = set()
        for level in levels:
            if level.collection not in existing:
                continue
            page = self.client.query(level.collection, {"q": "*:*", "fq": _CELLS_ONLY, "rows": 0})
            if page["response"]["numFound"]:
                found.add(level.name)
        return found

    def _summed(
        self,
        level: model.Level,
        cuboid: model.Cuboid,
        filters: Sequence[questions.Filter],
        span: questions.TimeRange,
        fields: Sequence[str],
        key_field: str,
    ) -> dict[str, State]:
        query = _cell_filter(level, cuboid, filters, span)
        additive = [f for f in fields if f in sessions.FIELDS]
        facet = {
            "keys": {
                "type": "terms", "field": key_field, "limit": -1, "sort": "index asc",
                "missing": False, "facet": _facet_sums(additive),
            }
        }  # fmt: skip
        found = self.client.json_facet(level.collection, "*:*", facet, filters=query)
        summed: dict[str, State] = {}
        for bucket in found.get("keys", {}).get("buckets", []):
            summed[str(bucket["val"])] = {name: float(bucket.get(name) or 0) for name in additive}
        if cells.SKETCH_FIELD in fields:
            merged = _merged_sketches(self.client, level.collection, query, key_field)
            for key, state in summed.items():
                state[cells.SKETCH_FIELD] = cell_store.estimate(merged.get(key))
        return summed


def _cell_filter(
    level: model.Level,
    cuboid: model.Cuboid,
    filters: Sequence[questions.Filter],
    span: questions.TimeRange,
) -> list[str]:
    query = _range_filter(level, cuboid.name, span.start_ms, span.end_ms)
    query += [f"{cells.dimension_field(f.dimension)}:{_quoted(f.value)}" for f in filters]
    return query


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _merged_sketches(
    client: solr.SolrClient, collection: str, query: Sequence[str], key_field: str
) -> dict[str, bytes | None]:
    """One merged sketch per key, from every matching cell (paged by cursor)."""
    grouped: dict[str, list[bytes]] = defaultdict(list)
    for document in _documents(client, collection, query, f"id,{key_field},{cells.SKETCH_FIELD}"):
        sketch = cell_store.stored_sketch(document)
        if sketch:
            grouped[str(document[key_field])].append(sketch)
    return {key: cell_store.merge_sketches(found) for key, found in grouped.items()}


def _documents(
    client: solr.SolrClient, collection: str, query: Sequence[str], fields: str
) -> Iterator[solr.Doc]:
    cursor = "*"
    while True:
        page = client.query(collection, {
            "q": "*:*", "fq": list(query), "fl": fields, "rows": _PAGE_ROWS, "sort": "id asc",
            "cursorMark": cursor,
        })  # fmt: skip
        yield from page["response"]["docs"]
        if page["nextCursorMark"] == cursor:
            return
        cursor = page["nextCursorMark"]


def cell_rows(
    client: solr.SolrClient, collection: str, dimension_names: Sequence[str]
) -> Iterator[dict[str, object]]:
    """Every cell of a level's collection as a flat row: level, bucket, cuboid, one column
    per dimension (None outside the cell's cuboid), every additive state field, and
    `unique_visitors`, the estimate of the cell's own sketch (for ad-hoc SQL)."""
    fields = ",".join(
        ["id", "level", "bucket", "bucket_end", "cuboid", cells.SKETCH_FIELD,
         *(cells.dimension_field(n) for n in dimension_names),
         *(cells.solr_field(f) for f in sessions.FIELDS)]
    )  # fmt: skip
    for document in _documents(client, collection, [_CELLS_ONLY], fields):
        row: dict[str, object] = {
            "level": document.get("level"), "bucket": document.get("bucket"),
            "bucket_end": document.get("bucket_end"), "cuboid": document.get("cuboid"),
        }  # fmt: skip
        row.update({n: document.get(cells.dimension_field(n)) for n in dimension_names})
        row.update(cells.state_of(document, sessions.FIELDS))
        row["unique_visitors"] = cell_store.estimate(cell_store.stored_sketch(document))
        yield row
