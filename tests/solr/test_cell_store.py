"""Cell documents in the real SolrCloud: deltas accumulate into full state, once per batch."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import examples
from clickagg.domain import cells, model, validation
from clickagg.store import cell_reads, cell_writes, rollup_reads, routing
from clickagg.store import client as store_client

pytestmark = pytest.mark.solr

BUCKET_MS = 1_795_000_500_000 // 900_000 * 900_000


AGGREGATION = validation.validate(examples.one_level("ns", "cells", "cells"))


def level_in(collection: str) -> model.Level:
    return dataclasses.replace(AGGREGATION.finest, collection=collection)


def totals_delta(page_views: float) -> cells.CellDelta:
    return cells.CellDelta(
        cuboid=model.Cuboid(()),
        bucket_ms=BUCKET_MS,
        values=(),
        deltas={"events": page_views, "page_views": page_views},
        sketch=None,
    )


def stored_page_views(client: store_client.SolrClient, level: model.Level) -> float:
    client.commit(level.collection)  # write_deltas leaves it to the soft commit
    (cell,) = cell_reads.stored_cells(client, AGGREGATION, level, model.TOTALS)
    assert cell.bucket_ms == BUCKET_MS
    return cell.state["page_views"]


@pytest.mark.parametrize(
    "write", [cell_writes.write_deltas, cell_writes.write_deltas_routed], ids=["one-url", "routed"]
)
def test_one_cell_batches_add_up_and_a_repeated_batch_is_skipped(
    solr_client: store_client.SolrClient, collection: str, write: Any
) -> None:
    level = level_in(collection)
    for batch_id, views in enumerate((3.0, 4.0, 5.0)):
        write(solr_client, level, [totals_delta(views)], stream_id="s", batch_id=batch_id)
    assert stored_page_views(solr_client, level) == 12.0
    report = write(solr_client, level, [totals_delta(5.0)], stream_id="s", batch_id=2)
    assert report.skipped == 1
    assert stored_page_views(solr_client, level) == 12.0


def test_replace_range_puts_every_document_on_the_shard_its_routes_predicted(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    level = level_in(collection)
    cuboid = model.Cuboid(("channel",))
    written = [
        dataclasses.replace(totals_delta(1.0), cuboid=cuboid, values=(f"channel-{i}",))
        for i in range(200)
    ]
    cell_writes.replace_range(
        solr_client, level, written, {}, writer="t", start_ms=BUCKET_MS, end_ms=BUCKET_MS + 1
    )
    routes = routing.routes(solr_client, collection)
    assert len(routes.leaders) == 2
    ids = [cells.doc_id(level.name, BUCKET_MS, cuboid.name, c.values) for c in written]
    predicted = {
        leader.shard: sorted(share) for leader, share in routes.split(ids, str).items() if leader
    }
    held = {}
    for shard, (leader, *_) in rollup_reads.replicas(solr_client, collection).items():
        with solr_client.for_node(leader.base_url) as node:
            page = node.query(
                leader.core, {"q": "*:*", "fl": "id", "rows": 1000, "distrib": "false"}
            )
        held[shard] = sorted(str(d["id"]) for d in page["response"]["docs"])
    assert held == predicted


def test_replace_range_again_keeps_only_the_cells_it_produced_the_second_time(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    level = level_in(collection)
    cuboid = model.Cuboid(("channel",))

    def cells_of(channels: str, views: float) -> list[cells.CellDelta]:
        cell = dataclasses.replace(totals_delta(views), cuboid=cuboid)
        return [dataclasses.replace(cell, values=(c,)) for c in channels]

    for produced in (cells_of("abc", 1.0), cells_of("ab", 2.0)):
        cell_writes.replace_range(
            solr_client, level, produced, {}, writer="t", start_ms=BUCKET_MS, end_ms=BUCKET_MS + 1
        )
    stored = cell_reads.stored_cells(solr_client, AGGREGATION, level, cuboid.name)
    assert sorted((c.values, c.state["page_views"]) for c in stored) == [
        (("a",), 2.0),
        (("b",), 2.0),
    ]
