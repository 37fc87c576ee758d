"""Writes aggregate cells to Solr: each document carries the cell's whole state.

A micro-batch brings additive deltas per cell. The writer reads the cell's current
document (real-time get), adds the delta, merges the sketch, and replaces the document.
The document remembers the last (stream, batch) applied, so a batch that Spark re-runs
after a crash skips the cells it already wrote: a restart neither loses nor double-counts.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from clickagg import errors
from clickagg.domain import cells, model, sessions, sketches
from clickagg.store import cell_reads, protocol, queries, routing
from clickagg.store import client as solr
from clickagg.store import sketches as stored_sketches

_GET_CHUNK = 500
_ADD_CHUNK = 2000
_RETRIES = 6
_NO_STATE = dict.fromkeys(sessions.FIELDS, 0.0)

log = logging.getLogger(__name__)
T = TypeVar("T")


def write_deltas(
    client: solr.SolrClient,
    level: model.Level,
    deltas: Sequence[cells.CellDelta],
    *,
    stream_id: str,
    batch_id: int,
    core: str | None = None,
) -> protocol.WriteReport:
    """Apply one batch's deltas to their documents, idempotently per (stream, batch); with
    `core`, the deltas all belong to that core's shard, and it alone is asked for them."""
    started = time.monotonic()
    ids = [_delta_id(level, d) for d in deltas]
    current = _with_retries(lambda: _get_all(client, level.collection, ids, core), level.collection)
    documents = []
    for doc_id, delta in zip(ids, deltas, strict=True):
        old = current.get(doc_id)
        if old is not None and _already_applied(old, stream_id, batch_id):
            continue
        documents.append(_merged(level, delta, old, stream_id, batch_id))
    _add_all(client, level.collection, documents)
    return protocol.WriteReport(
        len(documents), len(deltas) - len(documents), time.monotonic() - started
    )


def write_deltas_routed(
    client: solr.SolrClient,
    level: model.Level,
    deltas: Sequence[cells.CellDelta],
    *,
    stream_id: str,
    batch_id: int,
) -> protocol.WriteReport:
    """`write_deltas`, each shard's cells read from and written to its leader, all shards
    at once: the real-time get asks the leader's core alone, the update lands where it is
    indexed (`routing`)."""
    started = time.monotonic()
    table = routing.routes(client, level.collection)

    def share_of(
        node: solr.SolrClient, share: list[cells.CellDelta], leader: routing.Leader | None
    ) -> protocol.WriteReport:
        core = leader.core if leader is not None else None
        return write_deltas(node, level, share, stream_id=stream_id, batch_id=batch_id, core=core)

    reports = table.send(client, deltas, lambda d: _delta_id(level, d), share_of)
    return protocol.WriteReport(
        sum(r.written for r in reports), sum(r.skipped for r in reports), time.monotonic() - started
    )


def shares(
    client: solr.SolrClient, level: model.Level, deltas: Sequence[cells.CellDelta]
) -> dict[routing.Leader | None, list[cells.CellDelta]]:
    """The deltas grouped by the leader of their cell's shard (None: let Solr route them)."""
    return routing.routes(client, level.collection).split(deltas, lambda d: _delta_id(level, d))


def _delta_id(level: model.Level, delta: cells.CellDelta) -> str:
    return cells.doc_id(level.name, delta.bucket_ms, delta.cuboid.name, delta.values)


def _already_applied(document: Mapping[str, Any], stream_id: str, batch_id: int) -> bool:
    return bool(
        document.get(cells.STREAM_FIELD) == stream_id
        and int(document.get(cells.BATCH_FIELD, -1)) >= batch_id
    )


def _merged(
    level: model.Level,
    delta: cells.CellDelta,
    old: Mapping[str, Any] | None,
    stream_id: str,
    batch_id: int,
) -> dict[str, Any]:
    document = cells.base_document(level, delta.bucket_ms, delta.cuboid, delta.values)
    state = cells.add(cells.state_of(old or {}, sessions.FIELDS), delta.deltas)
    document.update(cells.state_fields(state))
    sketch = sketches.merge([stored_sketches.of(old), delta.sketch])
    if sketch is not None:
        document[cells.SKETCH_FIELD] = sketch
    document[cells.STREAM_FIELD] = stream_id
    document[cells.BATCH_FIELD] = batch_id
    document["updated_at"] = dt.datetime.now(dt.UTC)
    return document


def _get_all(
    client: solr.SolrClient, collection: str, ids: Sequence[str], core: str | None = None
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for start in range(0, len(ids), _GET_CHUNK):
        chunk = ids[start : start + _GET_CHUNK]
        got = client.get(core, chunk, distrib=False) if core else client.get(collection, chunk)
        for document in got:
            found[document["id"]] = document
    return found


def _with_retries(call: Callable[[], T], collection: str) -> T:
    """Retry Solr with exponential backoff (a node may be restarting or a leader moving)."""
    delay = 0.5
    for attempt in range(1, _RETRIES + 1):
        try:
            return call()
        except errors.SolrError as exc:
            if attempt == _RETRIES:
                raise
            log.warning(
                "solr %s: attempt %d failed (%s); retrying in %.1fs",
                collection,
                attempt,
                exc,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")


def write_bot_counts(
    client: solr.SolrClient,
    level: model.Level,
    counts: Mapping[int, int],
    *,
    stream_id: str,
    batch_id: int,
) -> None:
    """Bots are counted apart: one `__bots__` document per bucket, with the same guard."""
    ids = {bucket: cells.doc_id(level.name, bucket, cells.BOTS_CUBOID, ()) for bucket in counts}
    current = _with_retries(
        lambda: _get_all(client, level.collection, list(ids.values())), level.collection
    )
    documents = []
    for bucket, count in counts.items():
        old = current.get(ids[bucket], {})
        if old and _already_applied(old, stream_id, batch_id):
            continue
        total = int(old.get(cells.BOT_EVENTS_FIELD, 0)) + count
        documents.append(_bot_document(level, bucket, total, stream_id, batch_id))
    _add_all(client, level.collection, documents)


def replace_range(
    client: solr.SolrClient,
    level: model.Level,
    cells_state: Sequence[cells.CellDelta],
    bot_counts: Mapping[int, int],
    *,
    writer: str,
    start_ms: int,
    end_ms: int,
) -> int:
    """Replace the buckets in [start, end) with cells whose delta is their whole state
    (replay): nothing is read first, and documents in the range that were not rewritten
    are deleted, since they describe nothing any more. Each shard's documents go to its
    leader, all shards at once (`routing`). One commit makes them visible: a replay, settle
    or backfill is read next by the rollup, and reads never commit (the service's user may
    only read). Only if that commit shows documents of the range written before this call
    (a cell no longer produced) does a delete-by-query remove them, with a second commit:
    a first rollup of a range, or a rerun producing the same cells, deletes nothing."""
    now = dt.datetime.now(dt.UTC)
    # Solr keeps milliseconds: every document is stamped `started`, anything older is stale.
    started = now.replace(microsecond=now.microsecond // 1000 * 1000)
    stamp = solr.encode_instant(started)
    documents = [_whole_state(level, cell, writer, stamp) for cell in cells_state]
    documents += [_bot_document(level, b, n, writer, 0) for b, n in bot_counts.items()]
    table = routing.routes(client, level.collection)
    table.send(
        client, documents, _id, lambda node, share, _: _add_all(node, level.collection, share)
    )
    client.commit(level.collection)
    stale = queries.written_before(level, start_ms, end_ms, started)
    if cell_reads.count(client, level.collection, stale):
        log.info("%s: deleting cells of %s no longer produced", level.collection, writer)
        client.delete_by_query(level.collection, stale)
        client.commit(level.collection)
    return len(documents)


def _whole_state(
    level: model.Level, cell: cells.CellDelta, writer: str, stamp: str
) -> dict[str, Any]:
    """`_merged` of a cell with no old document, its values already in their wire form."""
    document = cells.base_document(level, cell.bucket_ms, cell.cuboid, cell.values)
    document.update(cells.state_fields({**_NO_STATE, **cell.deltas}))
    if cell.sketch:
        document[cells.SKETCH_FIELD] = solr.encode_binary(cell.sketch)
    document[cells.STREAM_FIELD] = writer
    document[cells.BATCH_FIELD] = 0
    document["updated_at"] = stamp
    return document


def _bot_document(
    level: model.Level, bucket_ms: int, bot_events: int, writer: str, batch_id: int
) -> dict[str, Any]:
    document = cells.base_document(level, bucket_ms, model.Cuboid(()), ())
    document.update(
        {
            "id": cells.doc_id(level.name, bucket_ms, cells.BOTS_CUBOID, ()),
            "cuboid": cells.BOTS_CUBOID,
            cells.BOT_EVENTS_FIELD: bot_events,
            cells.STREAM_FIELD: writer,
            cells.BATCH_FIELD: batch_id,
            "updated_at": dt.datetime.now(dt.UTC),
        }
    )
    return document


def _add_all(client: solr.SolrClient, collection: str, documents: list[dict[str, Any]]) -> None:
    for start in range(0, len(documents), _ADD_CHUNK):
        chunk = documents[start : start + _ADD_CHUNK]
        _with_retries(functools.partial(client.add, collection, chunk), collection)


def _id(document: Mapping[str, Any]) -> str:
    return str(document["id"])
