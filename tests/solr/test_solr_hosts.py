"""The test SolrCloud's nodes have distinct hosts, 127.0.0.2 and 127.0.0.3, as on two machines."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests

from clickagg.local import process
from clickagg.local import solr as local_solr

pytestmark = pytest.mark.solr


def cluster_status(base_url: str, collection: str | None = None) -> dict[str, Any]:
    params = {"action": "CLUSTERSTATUS", "wt": "json"}
    if collection is not None:
        params["collection"] = collection
    response = requests.get(f"{base_url}/admin/collections", params=params, timeout=30)
    response.raise_for_status()
    status: dict[str, Any] = response.json()["cluster"]
    return status


def accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except ConnectionRefusedError:
        return False


def host_of(node_name: str) -> str:
    """127.0.0.2 of the node name 127.0.0.2:41234_solr."""
    return node_name.partition(":")[0]


def test_live_nodes_are_on_both_addresses(solr: local_solr.SolrEndpoints) -> None:
    assert solr.node_hosts == process.NODE_HOSTS
    live = cluster_status(solr.base_url)["live_nodes"]
    assert sorted(live) == sorted(solr.node_name(i) for i in range(len(solr.node_urls)))
    assert sorted(host_of(node) for node in live) == sorted(process.NODE_HOSTS)


def test_each_node_answers_on_its_own_address_only(solr: local_solr.SolrEndpoints) -> None:
    for url in solr.node_urls:
        system = requests.get(f"{url}/admin/info/system", params={"wt": "json"}, timeout=30)
        assert system.ok, url
    # Nothing listens on 127.0.0.1 at a node's port: the node really binds its own address.
    # Connecting, not binding, asks that: a client socket may hold the port on 127.0.0.1.
    port = int(solr.node_urls[1].rsplit(":", 1)[1].split("/")[0])
    assert not accepts_connections(process.LOOPBACK, port)
    assert accepts_connections(solr.node_hosts[1], port)


def test_a_collection_spreads_its_replicas_over_both_hosts(
    solr: local_solr.SolrEndpoints, collection: str
) -> None:
    shards = cluster_status(solr.base_url, collection)["collections"][collection]["shards"]
    replicas = [replica for shard in shards.values() for replica in shard["replicas"].values()]
    assert sorted(host_of(replica["node_name"]) for replica in replicas) == sorted(
        process.NODE_HOSTS
    )
    assert {replica["base_url"] for replica in replicas} == set(solr.node_urls)
