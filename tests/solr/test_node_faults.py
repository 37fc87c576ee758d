"""One Solr node stops mid-run and comes back: the other keeps serving, the returner catches up."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from clickagg import errors
from clickagg.local import solr as local_solr
from clickagg.store import cell_reads
from clickagg.store import client as store_client
from clickagg.store import collections as solr_collections

pytestmark = pytest.mark.solr

STOPPED = 1
SURVIVOR = 0
WAIT_S = 120.0


@pytest.fixture
def replicated_collection(solr_client: store_client.SolrClient) -> Iterator[str]:
    """One shard with a replica on each node."""
    name = f"faults_{uuid.uuid4().hex[:10]}"
    solr_client.create_collection(name, solr_collections.CONFIGSET_NAME, 1, 2)
    yield name
    solr_client.delete_collection(name)


def ensure_running(index: int) -> None:
    """Start node `index` if it is down, so later tests keep a 2-node cluster."""
    if local_solr.node_states()[index] != "running":
        local_solr.start_node(index)


def doc(doc_id: str, clicks: int) -> dict[str, object]:
    return {
        "id": doc_id,
        "level": "15m",
        "cuboid": "country",
        "d_country": "de",
        "m_clicks": clicks,
    }


def replicas(client: store_client.SolrClient, collection: str) -> list[dict[str, Any]]:
    shards = client.cluster_status()["collections"][collection]["shards"]
    return [dict(replica) for shard in shards.values() for replica in shard["replicas"].values()]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> float:
    """Poll `condition` until it holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.25)
    return time.monotonic() - started


def ids_on_core(node_url: str, core: str) -> set[str]:
    """The ids one core holds itself (distrib=false: no other replica is asked)."""
    with store_client.SolrClient(node_url) as node:
        body = node.query(core, {"q": "*:*", "fl": "id", "rows": 1000, "distrib": "false"})
    return {str(d["id"]) for d in body["response"]["docs"]}


def test_a_stopped_node_rejoins_and_serves_what_was_written_meanwhile(
    solr: local_solr.SolrEndpoints, replicated_collection: str
) -> None:
    collection = replicated_collection
    survivor_url, stopped_url = solr.node_url(SURVIVOR), solr.node_url(STOPPED)
    stopped_name = solr.node_name(STOPPED)
    everything = {f"before-{i}" for i in range(20)} | {f"during-{i}" for i in range(30)}
    with store_client.SolrClient(survivor_url) as survivor:
        placed = {r["node_name"] for r in replicas(survivor, collection)}
        assert placed == {solr.node_name(SURVIVOR), stopped_name}

        survivor.add(collection, [doc(f"before-{i}", i) for i in range(20)])
        survivor.commit(collection)

        local_solr.stop_node(STOPPED)
        try:
            assert local_solr.node_states() == {SURVIVOR: "running", STOPPED: "stopped"}
            assert stopped_name not in survivor.cluster_status()["live_nodes"]
            # If the stopped node led the shard, the survivor's replica takes over.
            wait_until(
                lambda: any(
                    r.get("leader") == "true" and r["node_name"] == solr.node_name(SURVIVOR)
                    for r in replicas(survivor, collection)
                ),
                "the survivor leads the shard",
            )

            survivor.add(collection, [doc(f"during-{i}", i) for i in range(30)])
            survivor.commit(collection)
            assert cell_reads.count(survivor, collection) == len(everything)
            assert {d["id"] for d in survivor.get(collection, ["before-3", "during-7"])} == {
                "before-3",
                "during-7",
            }

            local_solr.start_node(STOPPED)
        finally:
            ensure_running(STOPPED)
        assert stopped_name in survivor.cluster_status()["live_nodes"]
        wait_until(
            lambda: [r["state"] for r in replicas(survivor, collection)] == ["active"] * 2,
            "both replicas are active again",
        )
        core = next(
            r["core"] for r in replicas(survivor, collection) if r["node_name"] == stopped_name
        )

    # Recovery ends with a commit that opens a searcher; it may trail the state by a moment.
    wait_until(
        lambda: ids_on_core(stopped_url, core) == everything,
        "the returned node's own core holds every document",
        timeout=30,
    )
    with store_client.SolrClient(stopped_url) as returned:
        assert cell_reads.count(returned, collection) == len(everything)


def test_control_errors_raise_local_stack_error(solr: local_solr.SolrEndpoints) -> None:
    assert local_solr.node_states() == {0: "running", 1: "running"}
    with pytest.raises(errors.LocalStackError, match="node 0 is already running"):
        local_solr.start_node(0)
    with pytest.raises(errors.LocalStackError, match="no node 2"):
        local_solr.stop_node(2)
    assert solr.control_port is not None
    with pytest.raises(errors.LocalStackError, match="no Solr node 2"):
        solr.node_url(2)
