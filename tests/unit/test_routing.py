"""The compositeId router's hash, as SolrCloud computes it (placement itself: tests/solr)."""

from __future__ import annotations

import pytest

from clickagg.store import routing

pytestmark = pytest.mark.unit


def test_murmur3_matches_the_reference_vectors_for_every_tail_length() -> None:
    # MurmurHash3_x86_32, seed 0 (smhasher's reference), as signed 32-bit ints.
    expected = {
        b"": 0,
        b"a": 0x3C2569B2,
        b"ab": 0x9BBFD75F,
        b"abc": 0xB3DD93FA,
        b"abcd": 0x43ED676A,
        b"hello": 0x248BFA47,
        b"The quick brown fox jumps over the lazy dog": 0x2E4FF723,
    }
    hashed = routing.murmur3_32(list(expected)).tolist()
    assert hashed == [v - (1 << 32) if v & 0x80000000 else v for v in expected.values()]


def test_composite_ids_and_unrouted_collections_are_left_to_solr() -> None:
    low = routing.Leader("shard1", -(1 << 31), -1, "http://127.0.0.2:1/solr", "c_shard1")
    high = routing.Leader("shard2", 0, (1 << 31) - 1, "http://127.0.0.3:1/solr", "c_shard2")
    ids = ["15m|2026-11-26T10:15:00.000Z|channel|email", "tenant!cell", "1h|x"]
    grouped = routing.Routes("c", (low, high)).split(ids, str)
    assert grouped[None] == ["tenant!cell"]
    assert sorted(i for share in grouped.values() for i in share) == sorted(ids)
    assert routing.Routes("c", ()).split(ids, str) == {None: ids}
