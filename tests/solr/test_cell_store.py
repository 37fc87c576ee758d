"""Cell documents in the real SolrCloud: deltas accumulate into full state, once per batch."""

from __future__ import annotations

import dataclasses

import pytest

import examples
from clickagg.domain import cells, model, validation
from clickagg.store import cell_reads, cell_writes
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


def test_one_cell_batches_add_up_and_a_repeated_batch_is_skipped(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    level = level_in(collection)
    for batch_id, views in enumerate((3.0, 4.0, 5.0)):
        cell_writes.write_deltas(
            solr_client, level, [totals_delta(views)], stream_id="s", batch_id=batch_id
        )
    assert stored_page_views(solr_client, level) == 12.0
    report = cell_writes.write_deltas(
        solr_client, level, [totals_delta(5.0)], stream_id="s", batch_id=2
    )
    assert report.skipped == 1
    assert stored_page_views(solr_client, level) == 12.0
