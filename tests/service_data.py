"""A small Aggregation for the service tests, and cells with known state written into the
real SolrCloud by the project's own cell writer (`store.cell_writes.write_deltas`).

Its cuboids leave out [offer] on purpose: offer questions are answered by faceting
[offer, device_class], and [offer, country] by nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from datasketches import hll_sketch

from clickagg.domain import buckets, cells, durations, model, sketches, validation
from clickagg.local import process
from clickagg.service import server, settings
from clickagg.store import cell_writes, collections
from clickagg.store import client as solr
from clickagg.store import progress as stored_progress

ROOT = Path(__file__).resolve().parents[1]
QUARTER_MS = 900_000
CUBOIDS = [
    [],
    ["channel"],
    ["device_class"],
    ["content"],
    ["offer", "device_class"],
    ["channel", "campaign"],
]


def aggregation(solr_url: str, name: str | None = None) -> model.Aggregation:
    document = yaml.safe_load((ROOT / "examples" / "shop-kpis.yaml").read_text())
    document["metadata"]["name"] = name or f"svc-{uuid.uuid4().hex[:8]}"
    document["spec"]["solr"] = {"url": solr_url, "shards": 2, "replicationFactor": 1}
    document["spec"]["cuboids"] = [{"dimensions": dims} for dims in CUBOIDS]
    return validation.validate(document)


def sketch(visitors: Iterable[str]) -> bytes:
    """An HLL sketch of visitor ids, as Spark's hll_sketch_agg writes it."""
    built = hll_sketch(sketches.LG_K)
    for visitor in visitors:
        built.update(visitor)
    return bytes(built.serialize_compact())


def visitors(first: int, last: int) -> list[str]:
    return [f"u{n}" for n in range(first, last + 1)]


@dataclass
class Cells:
    """Cells to write: (cuboid dims, bucket, values) → state, plus optional visitors."""

    aggregation: model.Aggregation
    deltas: list[cells.CellDelta] = field(default_factory=list)

    def add(
        self,
        dims: tuple[str, ...],
        bucket_ms: int,
        values: tuple[str, ...],
        state: Mapping[str, float],
        who: Iterable[str] = (),
    ) -> None:
        names = list(who)
        self.deltas.append(
            cells.CellDelta(
                model.Cuboid(dims),
                bucket_ms,
                values,
                dict(state),
                sketch(names) if names else None,
            )
        )

    def write(self, client: solr.SolrClient) -> None:
        level = self.aggregation.finest
        collections.ensure_level_collections(client, self.aggregation)
        cell_writes.write_deltas(client, level, self.deltas, stream_id="service-test", batch_id=0)
        client.commit(level.collection)


def report_progress(
    client: solr.SolrClient, level: model.Level, *, watermark_ms: int, reported_ms: int
) -> None:
    """The stream's progress document, as the streaming job writes it."""
    stored_progress.write(
        client,
        level,
        lag_ms=5_000,
        reported_ms=reported_ms,
        newest_event_ms=watermark_ms,
        watermark_ms=watermark_ms,
    )
    client.commit(level.collection)


def now_quarter() -> int:
    return buckets.floor(int(time.time() * 1000), durations.parse("15m"))


@contextmanager
def serving(config: settings.Settings) -> Iterator[server.Server]:
    """The service on a free loopback port, stopped afterwards."""
    with server.Server(config, "127.0.0.1", process.free_port()) as running:
        yield running
