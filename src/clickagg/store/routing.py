"""Which shard leader a document goes to, computed the way SolrCloud's compositeId router does.

A collection with the `compositeId` router gives each shard a range of 32-bit hashes; a
document without `!` in its id belongs to the shard whose range holds the MurmurHash3
(x86, 32 bit, seed 0) of its id's UTF-8 bytes. A writer that sends each shard's documents
to that shard's leader saves the hop a receiving node would make to forward them, and lets
the shards index in parallel. Routing is only an optimisation: an id with `!` (a composite
id, hashed in parts) or a collection with another router goes to any node, which forwards.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from clickagg import errors
from clickagg.store import client as solr

_C1, _C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)
_COMPOSITE = "!"
log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def murmur3_32(data: Sequence[bytes], seed: int = 0) -> npt.NDArray[np.int32]:
    """MurmurHash3 x86_32 of each of `data`, as the signed 32-bit ints Solr's `Hash` returns,
    computed for all at once (numpy, which pandas brings): a word column at a time."""
    n = len(data)
    lengths = np.fromiter(map(len, data), dtype=np.int64, count=n)
    width = max(4, -(-int(lengths.max(initial=0)) // 4) * 4)
    padded = b"".join(d.ljust(width, b"\0") for d in data)
    words = np.frombuffer(padded, dtype="<u4").reshape(n, width // 4)
    blocks = lengths // 4
    h = np.full(n, seed, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for j in range(width // 4):
            k = _rotl(words[:, j] * _C1, 15) * _C2
            mixed = _rotl(h ^ k, 13) * np.uint32(5) + np.uint32(0xE6546B64)
            h = np.where(blocks > j, mixed, h)
        # The tail's bytes, zero-padded, are the next little-endian word.
        tail = words[np.arange(n), np.minimum(blocks, width // 4 - 1)]
        k = _rotl(tail * _C1, 15) * _C2
        h = np.where(lengths % 4 > 0, h ^ k, h)
        h ^= lengths.astype(np.uint32)
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
    return h.view(np.int32)


def _rotl(x: npt.NDArray[np.uint32], r: int) -> npt.NDArray[np.uint32]:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


@dataclass(frozen=True)
class Leader:
    """A shard's hash range (signed, both ends included) and its leader: its node and core."""

    shard: str
    low: int
    high: int
    base_url: str
    core: str


@dataclass(frozen=True)
class Routes:
    """A collection's shard leaders by hash range; empty when it is not routed by
    compositeId (then every document goes through the client's own node)."""

    collection: str
    leaders: tuple[Leader, ...]

    def split(self, items: Sequence[T], id_of: Callable[[T], str]) -> dict[Leader | None, list[T]]:
        """`items` grouped by the leader of the shard their id belongs to (None: let Solr
        route them)."""
        if not self.leaders:
            return {None: list(items)} if items else {}
        ids = [id_of(item) for item in items]
        hashes = murmur3_32([i.encode() for i in ids]).tolist()
        grouped: dict[Leader | None, list[T]] = defaultdict(list)
        for item, document_id, hashed in zip(items, ids, hashes, strict=True):
            leader = None
            if _COMPOSITE not in document_id:
                leader = next((r for r in self.leaders if r.low <= hashed <= r.high), None)
            grouped[leader].append(item)
        return dict(grouped)

    def send(
        self,
        client: solr.SolrClient,
        items: Sequence[T],
        id_of: Callable[[T], str],
        call: Callable[[solr.SolrClient, list[T], Leader | None], R],
    ) -> list[R]:
        """`call` once per shard's share of `items`, all shards at once: a leader's share
        with a client for the leader's node (same credentials) and the leader, the unrouted
        share with `client` and None. A share the leader's node failed is sent again through
        `client` (any node forwards it; `call` must be idempotent)."""

        def one(leader: Leader | None, share: list[T]) -> R:
            if leader is None:
                return call(client, share, None)
            try:
                with client.for_node(leader.base_url) as node:
                    return call(node, share, leader)
            except errors.SolrError as exc:
                log.warning(
                    "%s: leader of %s at %s failed (%s); through %s instead",
                    self.collection, leader.shard, leader.base_url, exc, client.base_url,
                )  # fmt: skip
                return call(client, share, None)

        grouped = self.split(items, id_of)
        if len(grouped) <= 1:
            return [one(leader, share) for leader, share in grouped.items()]
        with ThreadPoolExecutor(len(grouped)) as pool:
            return list(pool.map(lambda group: one(*group), grouped.items()))


def routes(client: solr.SolrClient, collection: str) -> Routes:
    """The collection's shard leaders and ranges from the cluster state, as of now."""
    state = client.cluster_status()["collections"][collection]
    if state.get("router", {}).get("name") != "compositeId":
        return Routes(collection, ())
    leaders = []
    for shard, found in sorted(state["shards"].items()):
        if found.get("state") == "inactive":  # a parent shard after a split
            continue
        leader = _leader(found.get("replicas", {}))
        if leader is None or found.get("state") != "active" or not found.get("range"):
            return Routes(collection, ())  # a shard without a leader, or one being built
        low, high = (_signed(int(end, 16)) for end in str(found["range"]).split("-"))
        leaders.append(Leader(shard, low, high, str(leader["base_url"]), str(leader["core"])))
    return Routes(collection, tuple(leaders))


def _leader(replicas: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next(
        (r for r in replicas.values() if r.get("leader") == "true" and r.get("state") == "active"),
        None,
    )


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value
