"""The rollup's per-shard sketch merge as Spark tasks that run on the shards' hosts.

One task per shard, preferring the hosts of the shard's active replicas
(`locality.rdd_preferring`). The task reads the replica on its own host (`distrib=false`, so
the sketches never cross the network), merges them per coarser cell, and sends only the
merged sketches and what the read moved back to the driver. A task that ran elsewhere (no
executor on a replica's host, or the locality wait ran out) reads the shard's leader.
Executors reach Solr with the credentials of their own environment, as the driver does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pyspark.sql import SparkSession

from clickagg.domain import buckets, model
from clickagg.pipeline import locality, rollup_pushdown
from clickagg.store import client as solr
from clickagg.store import rollup_reads

log = logging.getLogger(__name__)
#: Spark's job description of every shard-read job (the cluster test finds them by it).
JOB_DESCRIPTION = "rollup shard reads"


class SparkTasks:
    """`rollup_pushdown.ShardMerge` as one Spark task per shard, on a replica's host."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def __call__(
        self,
        finer: model.Level,
        coarser: model.Level,
        span: buckets.Span,
        replicas: rollup_pushdown.Replicas,
        cuboids: frozenset[str],
    ) -> list[rollup_pushdown.ShardMerged]:
        context = self.spark.sparkContext
        items = [(found, [r.host for r in found]) for found in replicas.values()]
        context.setJobDescription(f"{JOB_DESCRIPTION}: {coarser.name} from {finer.name} {span}")
        try:
            rdd = locality.rdd_preferring(context, items)
            merged: list[rollup_pushdown.ShardMerged] = rdd.mapPartitions(
                lambda shards: _merge_here(shards, finer, coarser, span, cuboids)
            ).collect()
        finally:
            context.setJobDescription(None)  # type: ignore[arg-type]
        for shard in merged:
            read = shard.read
            log.info(
                "%s: shard %s read on %s from %s (%d documents, %d bytes)",
                finer.collection, read.shard, read.reader_host, read.replica_host,
                read.documents, read.response_bytes,
            )  # fmt: skip
        return merged


def _merge_here(
    shards: Iterator[tuple[rollup_reads.Replica, ...]],
    finer: model.Level,
    coarser: model.Level,
    span: buckets.Span,
    cuboids: frozenset[str],
) -> Iterator[rollup_pushdown.ShardMerged]:
    """On the executor: each shard read from the replica on this host (else its leader)."""
    host = locality.own_host()
    for found in shards:
        replica = next((r for r in found if r.host == host), found[0])
        with solr.SolrClient(replica.base_url) as client:
            documents, read = rollup_reads.read_shard(client, finer, span, replica, host)
        yield rollup_pushdown.merged_shard(documents, read, coarser, cuboids)
