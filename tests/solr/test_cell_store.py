"""Cell documents in the real SolrCloud: deltas accumulate into full state, once per batch."""

from __future__ import annotations

import dataclasses

import pytest

import examples
from clickagg.adapters import cell_store
from clickagg.adapters import solr as solr_adapter
from clickagg.domain import cells, model, validation

pytestmark = pytest.mark.solr

BUCKET_MS = 1_795_000_500_000 // 900_000 * 900_000


def level_in(collection: str) -> model.Level:
    finest = validation.validate(examples.one_level("ns", "cells", "cells")).finest
    return dataclasses.replace(finest, collection=collection)


def totals_delta(page_views: float) -> cell_store.CellDelta:
    return cell_store.CellDelta(
        cuboid=model.Cuboid(()),
        bucket_ms=BUCKET_MS,
        values=(),
        deltas={"events": page_views, "page_views": page_views},
        sketch=None,
    )


def stored_page_views(client: solr_adapter.SolrClient, level: model.Level) -> float:
    doc_id = cells.doc_id(level.name, BUCKET_MS, model.TOTALS, ())
    (document,) = client.get(level.collection, [doc_id])
    return cells.state_of(document, ["page_views"])["page_views"]


def test_one_cell_batches_add_up_and_a_repeated_batch_is_skipped(
    solr_client: solr_adapter.SolrClient, collection: str
) -> None:
    level = level_in(collection)
    for batch_id, views in enumerate((3.0, 4.0, 5.0)):
        cell_store.write_deltas(
            solr_client, level, [totals_delta(views)], stream_id="s", batch_id=batch_id
        )
    assert stored_page_views(solr_client, level) == 12.0
    report = cell_store.write_deltas(
        solr_client, level, [totals_delta(5.0)], stream_id="s", batch_id=2
    )
    assert report.skipped == 1
    assert stored_page_views(solr_client, level) == 12.0
