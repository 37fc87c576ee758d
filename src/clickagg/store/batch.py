"""What the batch layer reads and writes in Solr: a level's documents by bucket range,
which buckets were written since a moment, the per-level progress document, and
retention's delete-by-query on `bucket`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from clickagg.domain import buckets, level_progress, model
from clickagg.store import cell_reads, queries
from clickagg.store import client as solr

log = logging.getLogger(__name__)
_BUCKET_FACET_LIMIT = -1  # every bucket: a range holds at most a few thousand


def documents_in(
    client: solr.SolrClient, level: model.Level, start_ms: int, end_ms: int
) -> Iterator[dict[str, Any]]:
    """Every cell and bot count of the level with a bucket in [start, end), all fields."""
    return cell_reads.documents(
        client, level.collection, queries.level_cells(level, start_ms, end_ms)
    )


def changed_buckets(
    client: solr.SolrClient, level: model.Level, since_ms: int, start_ms: int, end_ms: int
) -> list[int]:
    """The buckets in [start, end) with a document written at or after `since_ms`."""
    facets = client.json_facet(
        level.collection,
        queries.written_since(level, start_ms, end_ms, since_ms),
        {"buckets": {"type": "terms", "field": "bucket", "limit": _BUCKET_FACET_LIMIT}},
    )
    found = facets.get("buckets", {}).get("buckets", [])
    return sorted(buckets.parse_iso(str(b["val"])) for b in found)


def oldest_bucket(client: solr.SolrClient, level: model.Level) -> int | None:
    """The start of the level's oldest bucket that holds a document (None: it is empty)."""
    facets = client.json_facet(
        level.collection, queries.level_documents(level), {"oldest": "min(bucket)"}
    )
    oldest = facets.get("oldest")
    return None if oldest is None else buckets.parse_iso(str(oldest))


def read_progress(client: solr.SolrClient, level: model.Level) -> level_progress.LevelReport:
    """The level's progress document (real-time get); an empty report before the first."""
    stored = client.get(level.collection, [level_progress.LEVEL_ID])
    return level_progress.report_of(stored[0]) if stored else level_progress.LevelReport()


def write_progress(
    client: solr.SolrClient, level: model.Level, report: level_progress.LevelReport
) -> None:
    """Replace the level's progress document. Not committed: it is only read by real-time
    get (`read_progress`), which sees it at once."""
    client.add(level.collection, [level_progress.document(level, report)])


def delete_before(client: solr.SolrClient, level: model.Level, before_ms: int) -> int:
    """Delete every document of the level with a bucket before `before_ms`; how many went."""
    q = queries.buckets_before(level, before_ms)
    client.commit(level.collection)
    doomed = cell_reads.count(client, level.collection, q)
    if doomed:
        client.delete_by_query(level.collection, q)
        client.commit(level.collection)
    log.info("%s: deleted %d documents before %s", level.collection, doomed, buckets.iso(before_ms))
    return doomed
