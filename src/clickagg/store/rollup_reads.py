"""A rollup's reads pushed down into Solr: only results travel.

`summed` asks one JSON facet request for the additive state of every coarser cell of a
span: per cuboid, a range facet on `bucket` with the coarser granularity as its gap, terms
facets nested per dimension inside it, `sum()` per state field at the leaves. Each shard
sums its own documents; the coordinator adds the shards' sums. Solr sums in doubles, so
counts stay exact below 2^53.

Solr cannot merge the stored HLL sketches, so `sketches` reads them (id and sketch only)
from one replica's core at a time (`distrib=false`), so a reader can ask shards
concurrently, and ask each on the host where the reader runs (`replicas` says which
replicas a shard has, on which hosts).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clickagg import errors
from clickagg.domain import buckets, cells, durations, model
from clickagg.store import client as solr
from clickagg.store import queries
from clickagg.store import sketches as stored_sketches

_SKETCH_ROWS = 10_000
_VALUES = "values"


@dataclass(frozen=True)
class Summed:
    """A span's coarser cells (summed state, no sketch yet), bot events per coarser bucket,
    and the documents read."""

    cells: list[cells.CellDelta]
    bot_events: dict[int, float]
    documents: int


def summed(
    client: solr.SolrClient,
    finer: model.Level,
    coarser: model.Level,
    span: buckets.Span,
    cuboids: Sequence[model.Cuboid],
    fields: Sequence[str],
) -> Summed:
    """The finer level's documents in `span` summed per coarser cell of `cuboids` (the
    state `fields`) and per coarser bucket for bots, as Solr's searcher sees them (writers
    commit)."""
    sums = {name: f"sum({cells.solr_field(name)})" for name in fields}
    facet: dict[str, Any] = {
        f"c{i}": _per_bucket(coarser, span, cuboid.name, _nested(cuboid.dimensions, sums))
        for i, cuboid in enumerate(cuboids)
    }
    bot_sum = {cells.BOT_EVENTS_FIELD: f"sum({cells.BOT_EVENTS_FIELD})"}
    facet["bots"] = _per_bucket(coarser, span, cells.BOTS_CUBOID, bot_sum)
    found = client.json_facet(
        finer.collection, queries.level_cells(finer, span.start_ms, span.end_ms), facet
    )
    summed_cells = [
        cells.CellDelta(cuboid, bucket_ms, values, leaf, sketch=None)
        for i, cuboid in enumerate(cuboids)
        for bucket_ms, values, leaf in _leaves(found.get(f"c{i}", {}), fields)
    ]
    bots = {
        bucket_ms: leaf[cells.BOT_EVENTS_FIELD]
        for bucket_ms, _, leaf in _leaves(found.get("bots", {}), [cells.BOT_EVENTS_FIELD])
    }
    return Summed(summed_cells, bots, int(found.get("count", 0)))


def _per_bucket(
    coarser: model.Level, span: buckets.Span, cuboid: str, inner: Mapping[str, Any]
) -> dict[str, Any]:
    """A range facet over one cuboid's documents, one range per coarser bucket of the span
    (the span starts on a coarser bucket, so the ranges are the coarser buckets)."""
    return {
        "type": "range",
        "field": "bucket",
        "start": buckets.iso(span.start_ms),
        "end": buckets.iso(span.end_ms),
        "gap": _gap(coarser.granularity),
        "hardend": True,
        "domain": {"filter": queries.cuboid_is(cuboid)},
        "facet": dict(inner),
    }


def _gap(granularity: durations.Duration) -> str:
    """The granularity as Solr date math (calendar months, then fixed seconds)."""
    months = f"+{granularity.months}MONTHS" if granularity.months else ""
    seconds = f"+{granularity.seconds}SECONDS" if granularity.seconds else ""
    return months + seconds


def _nested(dimensions: Sequence[str], leaf: Mapping[str, Any]) -> dict[str, Any]:
    """Terms facets, one per dimension, each inside the one before, `leaf` innermost."""
    facet = dict(leaf)
    for dimension in reversed(dimensions):
        facet = {
            _VALUES: {
                "type": "terms",
                "field": cells.dimension_field(dimension),
                "limit": -1,  # every value: no refinement, every shard sends all it has
                "sort": "index asc",
                "facet": facet,
            }
        }
    return facet


def _leaves(
    range_facet: Mapping[str, Any], fields: Sequence[str]
) -> Iterator[tuple[int, tuple[str, ...], dict[str, float]]]:
    """(coarser bucket, values, sums) of every non-empty leaf of a `_per_bucket` facet."""
    for bucket in range_facet.get("buckets", []):
        if bucket.get("count", 0):
            bucket_ms = buckets.parse_iso(str(bucket["val"]))
            for values, leaf in _walk(bucket, ()):
                yield bucket_ms, values, {f: float(leaf.get(f) or 0) for f in fields}


def _walk(
    node: Mapping[str, Any], values: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    if _VALUES not in node:
        yield values, node
        return
    for child in node[_VALUES].get("buckets", []):
        yield from _walk(child, (*values, str(child["val"])))


@dataclass(frozen=True)
class Replica:
    """One active replica of a shard: its core on the node at `base_url`."""

    shard: str
    core: str
    base_url: str
    leader: bool

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.base_url).hostname or ""


@dataclass(frozen=True)
class ShardRead:
    """What reading one shard's sketches moved: from which replica's host to which reader's
    host, how many documents, and the bytes of Solr's responses as they came over the wire."""

    shard: str
    replica_host: str
    reader_host: str
    documents: int
    response_bytes: int

    @property
    def same_host(self) -> bool:
        return self.replica_host == self.reader_host


def replicas(client: solr.SolrClient, collection: str) -> dict[str, tuple[Replica, ...]]:
    """The active replicas of each of the collection's shards, the leader first."""
    status = client.cluster_status()
    shards = status["collections"][collection]["shards"]
    found: dict[str, tuple[Replica, ...]] = {}
    for shard, state in sorted(shards.items()):
        active = [
            Replica(shard, str(r["core"]), str(r["base_url"]), r.get("leader") == "true")
            for r in state["replicas"].values()
            if r.get("state") == "active"
        ]
        if not active:
            raise errors.SolrError(f"{collection}: shard {shard} has no active replica")
        found[shard] = tuple(sorted(active, key=lambda r: (not r.leader, r.base_url)))
    return found


def read_shard(
    client: solr.SolrClient,
    level: model.Level,
    span: buckets.Span,
    replica: Replica,
    reader_host: str,
) -> tuple[list[tuple[str, bytes]], ShardRead]:
    """(document id, sketch) of the level's cells in `span` held by `replica`'s shard, read
    from its core alone (`distrib=false`: no coordinator hop, every byte comes from the
    replica's node) with `client`'s credentials, and what the read moved to `reader_host`."""
    with client.for_node(replica.base_url) as node:
        found = list(_sketches(node, level, span, replica.core))
        read = ShardRead(replica.shard, replica.host, reader_host, len(found), node.received_bytes)
    return found, read


def _sketches(
    client: solr.SolrClient, level: model.Level, span: buckets.Span, core: str
) -> Iterator[tuple[str, bytes]]:
    q = queries.level_cells(level, span.start_ms, span.end_ms)
    cursor = "*"
    while True:
        page = client.query(
            core,
            {
                "q": q,
                "fq": f"-{queries.cuboid_is(cells.BOTS_CUBOID)}",
                "fl": f"id,{cells.SKETCH_FIELD}",
                "rows": _SKETCH_ROWS,
                "sort": "id asc",
                "cursorMark": cursor,
                "distrib": "false",
            },
        )
        for document in page["response"]["docs"]:
            sketch = stored_sketches.of(document)
            if sketch:
                yield str(document["id"]), sketch
        if page["nextCursorMark"] == cursor:
            return
        cursor = page["nextCursorMark"]
