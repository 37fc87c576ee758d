"""The real 2-node SolrCloud with clickagg's configset: writes, overwrites and every read path."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

import pytest
import requests

import examples
from clickagg import errors
from clickagg.domain import validation
from clickagg.local import solr as local_solr
from clickagg.store import client as store_client
from clickagg.store import collections as solr_collections

pytestmark = pytest.mark.solr

BUCKET = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
SKETCH = bytes(range(256)) + b"\x00\xff"  # every byte value, as an HLL sketch may hold


def aggregate(doc_id: str, country: str, clicks: int, revenue: float) -> dict[str, object]:
    return {
        "id": doc_id,
        "level": "15m",
        "cuboid": "country",
        "bucket": BUCKET,
        "bucket_end": BUCKET + dt.timedelta(minutes=15),
        "updated_at": dt.datetime.now(dt.UTC),
        "d_country": country,
        "m_clicks": clicks,
        "f_revenue": revenue,
        "hll_users": SKETCH,
    }


def test_cluster_has_two_live_nodes(
    solr: local_solr.SolrEndpoints, solr_client: store_client.SolrClient
) -> None:
    live = sorted(solr_client.cluster_status()["live_nodes"])
    expected = sorted(
        url.removeprefix("http://").replace("/solr", "_solr") for url in solr.node_urls
    )
    assert live == expected
    assert solr_client.ping()


def test_aggregate_reads_back_from_both_nodes(
    solr: local_solr.SolrEndpoints, solr_client: store_client.SolrClient, collection: str
) -> None:
    solr_client.add(collection, [aggregate("a1", "de", 7, 12.5)])
    solr_client.commit(collection)
    for node_url in solr.node_urls:
        with store_client.SolrClient(node_url) as node:
            docs = node.query(collection, {"q": "id:a1", "fl": "*"})["response"]["docs"]
        assert len(docs) == 1, node_url
        doc = docs[0]
        assert base64.b64decode(doc["hll_users"]) == SKETCH
        assert (doc["d_country"], doc["m_clicks"], doc["f_revenue"]) == ("de", 7, 12.5)
        assert (doc["level"], doc["cuboid"]) == ("15m", "country")
        assert doc["bucket"] == "2025-03-01T12:00:00Z"
        assert doc["bucket_end"] == "2025-03-01T12:15:00Z"


def test_writing_the_same_id_replaces_the_document(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    solr_client.add(collection, [aggregate("same", "de", 1, 1.0)])
    solr_client.add(collection, [aggregate("same", "fr", 2, 2.5)])
    solr_client.commit(collection)
    response = solr_client.query(collection, {"q": "*:*", "fl": "id,d_country,m_clicks,f_revenue"})
    assert response["response"]["numFound"] == 1
    assert response["response"]["docs"] == [
        {"id": "same", "d_country": "fr", "m_clicks": 2, "f_revenue": 2.5}
    ]


def test_json_facet_sums_clicks_per_country(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    rows = [("de", 3), ("de", 4), ("fr", 10), ("us", 1), ("us", 1), ("us", 1)]
    docs = [aggregate(f"f{i}", country, clicks, 0.5) for i, (country, clicks) in enumerate(rows)]
    solr_client.add(collection, docs)
    solr_client.commit(collection)
    facets = solr_client.json_facet(
        collection,
        "*:*",
        {
            "countries": {
                "type": "terms",
                "field": "d_country",
                "sort": "index asc",
                "facet": {"clicks": "sum(m_clicks)"},
            }
        },
        filters=["level:15m"],
    )
    buckets = {b["val"]: (b["count"], b["clicks"]) for b in facets["countries"]["buckets"]}
    assert buckets == {"de": (2, 7), "fr": (1, 10), "us": (3, 3)}


def test_export_streams_every_document_sorted(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    docs = [aggregate(f"e{i:03d}", "de", (i * 37) % 101, 0.0) for i in range(101)]
    solr_client.add(collection, docs)
    solr_client.commit(collection)
    exported = list(solr_client.export(collection, "*:*", ["id", "m_clicks"], "m_clicks desc"))
    assert [d["m_clicks"] for d in exported] == list(range(100, -1, -1))
    assert {d["id"] for d in exported} == {d["id"] for d in docs}


def test_rollup_stream_sums_per_country(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    rows = [("de", 3, 1.5), ("fr", 10, 2.0), ("de", 4, 0.5), ("us", 1, 0.25)]
    docs = [aggregate(f"r{i}", *row) for i, row in enumerate(rows)]
    solr_client.add(collection, docs)
    solr_client.commit(collection)
    expr = (
        f'rollup(search({collection}, q="*:*", fl="d_country,m_clicks,f_revenue",'
        ' sort="d_country asc", qt="/export"),'
        " over=d_country, sum(m_clicks), sum(f_revenue), count(*))"
    )
    tuples = list(solr_client.stream(collection, expr))
    got = [(t["d_country"], t["sum(m_clicks)"], t["sum(f_revenue)"], t["count(*)"]) for t in tuples]
    assert got == [("de", 7, 2.0, 2), ("fr", 10, 2.0, 1), ("us", 1, 0.25, 1)]


def test_a_failing_stream_raises_with_solrs_message(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    # Valid as an expression, so it fails inside the shards and arrives as an EXCEPTION tuple.
    expr = (
        f'search({collection}, q="*:*", fl="id,no_such_field", sort="no_such_field asc",'
        ' qt="/export")'
    )
    with pytest.raises(errors.SolrError, match=rf"{collection}.*no_such_field"):
        list(solr_client.stream(collection, expr))


def test_an_unknown_collection_is_named_in_the_error(solr_client: store_client.SolrClient) -> None:
    with pytest.raises(errors.SolrError, match="no_such_collection"):
        solr_client.query("no_such_collection", {"q": "*:*"})
    with pytest.raises(errors.SolrError, match="no_such_collection"):
        solr_client.add("no_such_collection", [{"id": "x"}])


def test_an_unknown_field_is_rejected_not_guessed(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    with pytest.raises(errors.SolrError, match=rf"{collection}.*unknown field 'surprise'"):
        solr_client.add(collection, [{"id": "x", "surprise": 1}])


def test_collection_create_and_delete_are_idempotent(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    solr_client.create_collection(collection, solr_collections.CONFIGSET_NAME, 2, 1)
    assert collection in solr_client.list_collections()
    solr_client.delete_collection(collection)
    solr_client.delete_collection(collection)
    assert collection not in solr_client.list_collections()


def test_a_configset_gone_since_this_process_uploaded_it_is_uploaded_again(
    solr_client: store_client.SolrClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configset is uploaded once per process and Solr; a creation that then finds it
    gone (a new SolrCloud at the same address) uploads it and creates again."""
    name = f"gone{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(solr_collections, "CONFIGSET_NAME", name)  # not in this Solr
    monkeypatch.setattr(solr_collections, "_uploaded", {solr_client.base_url})
    aggregation = validation.validate(examples.one_level("default", "gone", name))
    try:
        ensured = solr_collections.ensure_level_collections(solr_client, aggregation)
        assert ensured == [solr_collections.Ensured(f"{name}-15m", created=True)]
        assert f"{name}-15m" in solr_client.list_collections()
    finally:
        solr_client.delete_collection(f"{name}-15m")
        params = {"action": "DELETE", "name": name}
        requests.get(f"{solr_client.base_url}/admin/configs", params=params, timeout=30)


def test_real_time_get_of_one_id_finds_it_uncommitted(
    solr_client: store_client.SolrClient, collection: str
) -> None:
    # Solr answers one id with {"doc": ...}, not a document list: both forms must read.
    solr_client.add(collection, [aggregate("solo", "de", 3, 1.5)])
    (found,) = solr_client.get(collection, ["solo"])
    assert (found["id"], found["m_clicks"]) == ("solo", 3)
    assert solr_client.get(collection, ["absent"]) == []
    assert {d["id"] for d in solr_client.get(collection, ["solo", "absent"])} == {"solo"}
