"""Cells in the demo shop's shape, written straight into a level (no streaming): what the
service and rollup benchmarks fill 30 days with in minutes instead of hours.

Cells per 15m bucket: totals (with a sketch of 300 visitors), 8 channels, 10 campaigns,
20 offers, 20 contents, 5 devices, 20 offers x 5 devices, 8 channels x 10 campaigns;
counts are random (seeded). With `sketch_every_cell`, every cell also holds a sketch of
its visits' visitors, as the streaming job writes them (drawn from a pool of sketches, so
filling stays fast).

The scripts run as `python benchmarks/<name>.py`, so this module is importable by name.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import run_facts
import yaml
from datasketches import hll_sketch

from clickagg.domain import cells, model, sketches, validation
from clickagg.store import cell_writes
from clickagg.store import client as solr

Q_MS = 900_000
SHAPE = {"channel": 8, "campaign": 10, "offer": 20, "content": 20, "device_class": 5}
_BATCH_CELLS = 20_000
_SKETCH_POOL = 2_000

CellKey = tuple[tuple[str, ...], tuple[str, ...]]  # cuboid dimensions, values


def shop(solr_url: str, name: str = "bench-shop") -> model.Aggregation:
    """examples/shop-kpis.yaml on this SolrCloud (2 shards, 1 replica)."""
    document = yaml.safe_load((run_facts.ROOT / "examples" / "shop-kpis.yaml").read_text())
    document["metadata"]["name"] = name
    document["spec"]["solr"] = {"url": solr_url, "shards": 2, "replicationFactor": 1}
    return validation.validate(document)


def cell_keys() -> list[CellKey]:
    """(cuboid dimensions, values) of every cell of one 15m bucket."""
    keys: list[CellKey] = [((), ())]
    for name, count in SHAPE.items():
        keys += [((name,), (f"{name}-{i}",)) for i in range(count)]
    keys += [
        (("offer", "device_class"), (f"offer-{o}", f"device_class-{d}"))
        for o in range(SHAPE["offer"])
        for d in range(SHAPE["device_class"])
    ]
    keys += [
        (("channel", "campaign"), (f"channel-{c}", f"campaign-{k}"))
        for c in range(SHAPE["channel"])
        for k in range(SHAPE["campaign"])
    ]
    return keys


@dataclass(frozen=True)
class Bucket:
    """One 15m bucket's cells and the visitors of its totals cell."""

    bucket_ms: int
    visitors: list[str]
    cells: list[cells.CellDelta]


def buckets_of(
    start_ms: int, end_ms: int, *, sketch_every_cell: bool = False, seed: int = 42
) -> Iterator[Bucket]:
    """The cells of every 15m bucket in [start, end), bucket by bucket."""
    rng = random.Random(seed)
    keys = cell_keys()
    pool = sketch_pool(rng) if sketch_every_cell else []
    for bucket_ms in range(start_ms, end_ms, Q_MS):
        visitors = [f"v{rng.randrange(200_000)}" for _ in range(300)]
        found = []
        for dims, values in keys:
            state = traffic_state(rng)
            sketch = hll(visitors) if not dims else (rng.choice(pool) if pool else None)
            found.append(cells.CellDelta(model.Cuboid(dims), bucket_ms, values, state, sketch))
        yield Bucket(bucket_ms, visitors, found)


def fill_level(client: solr.SolrClient, level: model.Level, filled: Iterator[Bucket]) -> int:
    """Write the buckets' cells as the whole state of their buckets, then commit; documents."""
    written = 0
    batch: list[cells.CellDelta] = []
    for bucket in filled:
        batch += bucket.cells
        if len(batch) >= _BATCH_CELLS:
            written += replace(client, level, batch)
            batch = []
    written += replace(client, level, batch)
    client.commit(level.collection)
    return written


def replace(client: solr.SolrClient, level: model.Level, batch: list[cells.CellDelta]) -> int:
    """The batch's cells as the whole state of the buckets they are in."""
    if not batch:
        return 0
    first = min(cell.bucket_ms for cell in batch)
    last = max(cell.bucket_ms for cell in batch)
    return cell_writes.replace_range(
        client, level, batch, {}, writer="bench", start_ms=first, end_ms=last + 1
    )


def traffic_state(rng: random.Random) -> dict[str, float]:
    visits = rng.randrange(5, 60)
    closed = max(visits - rng.randrange(0, 5), 0)
    impressions = rng.randrange(50, 400)
    orders = rng.randrange(0, 4)
    return {
        "events": visits * 6,
        "page_views": visits * 4,
        "visits": visits,
        "new_visits": visits // 3,
        "closed_visits": closed,
        "bounces": closed // 3,
        "engaged_visits": closed // 2,
        "visit_duration_seconds_sum": closed * 95.0,
        "visit_page_views_sum": closed * 4,
        "impressions": impressions,
        "clicks": rng.randrange(0, impressions // 10 + 1),
        "orders": orders,
        "revenue": orders * 42.5,
        "visits_with_order": orders,
        "entries": visits,
        "exits": closed,
        "product_views": visits * 2,
        "add_to_carts": orders + 1,
        "visits_with_cart": orders + 1,
        "visits_with_cart_without_order": 1,
    }


def sketch_pool(rng: random.Random) -> list[bytes]:
    """Sketches of 5 to 60 visitors each, as a 15m cell of one dimension value holds."""
    return [
        hll([f"v{rng.randrange(200_000)}" for _ in range(rng.randrange(5, 60))])
        for _ in range(_SKETCH_POOL)
    ]


def hll(visitors: list[str]) -> bytes:
    sketch = hll_sketch(sketches.LG_K)
    for visitor in visitors:
        sketch.update(visitor)
    return bytes(sketch.serialize_compact())
