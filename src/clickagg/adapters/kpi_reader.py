"""Read KPIs back from Solr: totals over a time range and top dimension values.

Only additive state is stored, so every answer sums state over buckets first and then
applies the KPI formulas of the catalogue (a ratio of sums, never a sum of ratios).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clickagg.adapters import cell_store, solr
from clickagg.domain import buckets, cells, dimensions, kpis, model, sessions

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
