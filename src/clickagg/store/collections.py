"""One Solr collection per time level, created from the project's configset, idempotently.

The Solr Operator stopped managing collections in 2021, so the operator and the jobs
both ensure them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clickagg.domain import model
from clickagg.store import client as solr

CONFIGSET_DIR = Path(__file__).parent / "solr_configset"
CONFIGSET_NAME = "clickagg-aggregates"


@dataclass(frozen=True)
class Ensured:
    collection: str
    created: bool


def ensure_level_collections(
    client: solr.SolrClient, aggregation: model.Aggregation
) -> list[Ensured]:
    """Create each level's collection if it is missing (uploading the configset first)."""
    existing = set(client.list_collections())
    missing = [level for level in aggregation.levels if level.collection not in existing]
    if missing:
        client.upload_configset(CONFIGSET_NAME, CONFIGSET_DIR)
    target = aggregation.spec.solr
    ensured = []
    for level in aggregation.levels:
        created = level in missing
        if created:
            client.create_collection(
                level.collection, CONFIGSET_NAME, target.shards, target.replication_factor
            )
        ensured.append(Ensured(level.collection, created))
    return ensured


def delete_level_collections(client: solr.SolrClient, aggregation: model.Aggregation) -> None:
    for level in aggregation.levels:
        client.delete_collection(level.collection)
