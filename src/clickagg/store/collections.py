"""One Solr collection per time level, created from the project's configset, idempotently.

The Solr Operator stopped managing collections in 2021, so the operator and the jobs
both ensure them here. A job whose user may not create collections (the jobs role has
read and update only) waits for the operator to create them (`await_level_collections`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clickagg import errors
from clickagg.domain import model
from clickagg.store import client as solr

log = logging.getLogger("clickagg.store.collections")

CONFIGSET_DIR = Path(__file__).parent / "solr_configset"
CONFIGSET_NAME = "clickagg-aggregates"
#: How long a job whose Solr user may not create collections waits for the operator to: on
#: a burst the operator applies every Aggregation's children before it creates collections.
JOB_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class Ensured:
    collection: str
    created: bool


# The Solr base URLs this process has uploaded the configset to: a burst of 100 new
# Aggregations uploaded it 100 times, a third of the operator's Solr time.
_uploaded: set[str] = set()


def ensure_level_collections(
    client: solr.SolrClient,
    aggregation: model.Aggregation,
    before_creating: Callable[[], None] | None = None,
) -> list[Ensured]:
    """Create each level's collection if it is missing, uploading the configset before the
    first creation in this process; a creation that fails without an upload in this call
    (the configset may be gone: a new SolrCloud at the same address) uploads it and tries
    once more. `before_creating` runs once before anything is created, if anything is."""
    existing = set(client.list_collections())
    missing = [level for level in aggregation.levels if level.collection not in existing]
    if missing and before_creating is not None:
        before_creating()
    fresh = bool(missing) and client.base_url not in _uploaded
    if fresh:
        _upload(client)
    ensured = []
    for level in aggregation.levels:
        created = level in missing
        if created:
            try:
                _create(client, aggregation, level)
            except errors.SolrError:
                if fresh:
                    raise
                fresh = True
                _upload(client)
                _create(client, aggregation, level)
        ensured.append(Ensured(level.collection, created))
    return ensured


def _upload(client: solr.SolrClient) -> None:
    client.upload_configset(CONFIGSET_NAME, CONFIGSET_DIR)
    _uploaded.add(client.base_url)


def _create(client: solr.SolrClient, aggregation: model.Aggregation, level: model.Level) -> None:
    target = aggregation.spec.solr
    client.create_collection(
        level.collection, CONFIGSET_NAME, target.shards, target.replication_factor, listed=True
    )


def await_level_collections(
    client: solr.SolrClient,
    aggregation: model.Aggregation,
    timeout_s: float,
    *,
    poll_s: float = 2.0,
) -> list[Ensured]:
    """Ensure the collections; when Solr refuses to create them (403: this user lacks the
    permission), wait up to `timeout_s` for someone allowed (the operator) to create them.
    The refusal is raised again, naming the collections, if they do not appear in time."""
    try:
        return ensure_level_collections(client, aggregation)
    except errors.SolrAuthError as refused:
        if refused.status != 403:
            raise
        names = [level.collection for level in aggregation.levels]
        log.warning(
            "%s: waiting up to %.0fs for collections %s: %s",
            aggregation.name,
            timeout_s,
            ", ".join(names),
            refused,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            missing = sorted(set(names) - set(client.list_collections()))
            if not missing:
                log.info("%s: collections %s present", aggregation.name, ", ".join(names))
                return [Ensured(name, created=False) for name in names]
            if time.monotonic() >= deadline:
                raise errors.SolrAuthError(
                    f"{refused}; collections {', '.join(missing)} did not appear within "
                    f"{timeout_s:.0f}s (the operator creates them)",
                    user=refused.user,
                    status=refused.status,
                    permission=refused.permission,
                ) from None
            time.sleep(poll_s)


def delete_level_collections(client: solr.SolrClient, aggregation: model.Aggregation) -> None:
    for level in aggregation.levels:
        client.delete_collection(level.collection)
