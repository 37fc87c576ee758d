"""Replay: recompute the finest level for a time range from the raw archive, in batch.

It runs the streaming job's sessionizer and cell summing over the archived events, with
the watermark the stream has reached, so it gives exactly what streaming gave; documents
are replaced whole, so replaying a range twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from clickagg.adapters import cell_store, jvm_sessionizer, sessionize, solr, stream
from clickagg.domain import buckets, cells, model, sessions

log = logging.getLogger(__name__)
# A visit that starts in the range may run past its end; read this much further.
_VISIT_TAIL_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class ReplayReport:
    documents: int
    events: int
    removed_stale: bool


def replay(
    spark: SparkSession,
    aggregation: model.Aggregation,
    paths: stream.JobPaths,
    solr_url: str,
    start_ms: int,
    end_ms: int,
    *,
    history_ms: int,
) -> ReplayReport:
    """Recompute and replace the finest-level documents with buckets in [start, end)."""
    level = aggregation.finest
    started = dt.datetime.now(dt.UTC)
    start_ms = buckets.floor(start_ms, level.granularity)
    archived = stream.archived_events(spark, paths, streaming=False)
    newest = archived.agg(F.max("ts_ms")).first()[0]  # type: ignore[index]
    if newest is None:
        return ReplayReport(0, 0, False)
    watermark = int(newest) - int(aggregation.watermark.approx_seconds * 1000)
    window = archived.where(
        (F.col("ts_ms") >= start_ms - history_ms) & (F.col("ts_ms") < end_ms + _VISIT_TAIL_MS)
    ).dropDuplicates(["event_id"])
    config = sessionize.config_of(aggregation)
    if jvm_sessionizer.chosen(spark) == jvm_sessionizer.JVM:
        facts = jvm_sessionizer.facts_once(window, config, watermark)
    else:
        whole_history = WholeHistory(config, watermark)

        def sessionize_visitor(key: tuple[Any, ...], frame: pd.DataFrame) -> pd.DataFrame:
            # applyInPandas inspects the argument count, so it gets a plain function.
            return whole_history(key, frame)

        output = sessionize.packed_events(window, config).groupBy("visitor_id").applyInPandas(
            sessionize_visitor, sessionize.OUTPUT_SCHEMA
        )
        facts = sessionize.unpacked_facts(output)
    in_range = facts.where((F.col("bucket_ms") >= start_ms) & (F.col("bucket_ms") < end_ms))
    in_range.cache()
    state, bots = stream.cell_deltas(in_range, aggregation)
    events = window.where((F.col("ts_ms") >= start_ms) & (F.col("ts_ms") < end_ms)).count()
    writer = f"replay:{buckets.iso(start_ms)}/{buckets.iso(end_ms)}"
    with solr.SolrClient(solr_url) as client:
        written = cell_store.replace_cells(client, level, state, bots, writer=writer)
        _remove_stale(client, level, start_ms, end_ms, started)
    in_range.unpersist()
    log.info("%s: replayed %s: %d events, %d documents", aggregation.name, writer, events, written)
    return ReplayReport(written, events, True)


@dataclass(frozen=True)
class WholeHistory:
    """applyInPandas: one visitor's archived events, sessionized in one go."""

    config: sessions.Config
    watermark_ms: int

    def __call__(self, key: tuple[Any, ...], frame: pd.DataFrame) -> pd.DataFrame:
        sessionizer = sessionize.Sessionizer(self.config)
        state = _FixedWatermark(self.watermark_ms)
        frames: Iterator[pd.DataFrame] = iter([frame])
        produced = list(sessionizer(key, frames, state))
        if not produced:
            return pd.DataFrame(columns=list(sessionize.OUTPUT_COLUMNS))
        return pd.concat(produced, ignore_index=True)


class _FixedWatermark:
    """The GroupState surface the sessionizer uses, for a batch run: no stored state."""

    exists = False

    def __init__(self, watermark_ms: int) -> None:
        self.watermark_ms = watermark_ms

    def getCurrentWatermarkMs(self) -> int:  # noqa: N802 (Spark's GroupState name)
        return self.watermark_ms

    def remove(self) -> None:
        pass

    def update(self, _: tuple[str]) -> None:
        pass

    def setTimeoutTimestamp(self, _: int) -> None:  # noqa: N802 (Spark's GroupState name)
        pass


def _remove_stale(
    client: solr.SolrClient,
    level: model.Level,
    start_ms: int,
    end_ms: int,
    replay_started: dt.datetime,
) -> None:
    """Documents in the range that this replay did not rewrite describe nothing any more."""
    stamp = replay_started.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    query = (
        f"level:{level.name} AND bucket:[{buckets.iso(start_ms)} TO {buckets.iso(end_ms)}}} "
        f"AND updated_at:[* TO {stamp}}} AND NOT cuboid:{cells.PROGRESS_CUBOID}"
    )
    client.delete_by_query(level.collection, query)
