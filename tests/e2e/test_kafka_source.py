"""The streaming job reading a real Kafka topic (KRaft broker from Maven Central jars)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import oracle
import streaming
from clickagg.adapters import landing, solr_collections, stream
from clickagg.adapters import solr as solr_adapter
from clickagg.domain import sessions, traffic

pytestmark = pytest.mark.e2e

START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - 4) * streaming.HOUR_MS


def run_to_end(spark: Any, aggregation: Any, paths: stream.JobPaths, solr_url: str) -> None:
    source = stream.source_of(aggregation)
    stream.ingest(spark, aggregation, paths, source, 1, available_now=True).awaitTermination()
    stream.aggregate(spark, aggregation, paths, solr_url, 1, available_now=True).awaitTermination()


def test_events_from_kafka_become_the_oracles_cells(
    spark: Any, solr: Any, solr_client: Any, kafka: Any, kafka_topic: Any, tmp_path: Path
) -> None:
    topic = kafka_topic(2)
    aggregation = streaming.aggregation_for(
        tmp_path / "unused", solr.base_url, "kafka-run",
        source={"type": "kafka", "kafka": {"bootstrapServers": kafka.bootstrap, "topic": topic}},
    )  # fmt: skip
    paths = stream.JobPaths(str(tmp_path / "data"))
    with solr_adapter.SolrClient(solr.base_url) as client:
        solr_collections.ensure_level_collections(client, aggregation)
    lines = streaming.traffic_lines(START_MS, hours=1, visitors=250, seed=5)
    landing.send_to_kafka(lines, kafka.bootstrap, topic)
    run_to_end(spark, aggregation, paths, solr.base_url)
    sentinel_ms = START_MS + 3 * streaming.HOUR_MS
    sentinel = traffic.Emitted(streaming.sentinel(sentinel_ms), sentinel_ms, traffic.VALID)
    landing.send_to_kafka([sentinel], kafka.bootstrap, topic)
    run_to_end(spark, aggregation, paths, solr.base_url)
    run_to_end(spark, aggregation, paths, solr.base_url)

    expected = oracle.compute(
        [item.line for item in lines],
        finest_granularity_s=900,
        session_timeout_s=1800,
        dimensions=streaming.oracle_dimensions(aggregation),
        cuboids=[c.dimensions for c in aggregation.cuboids],
        now_ms=int(time.time() * 1000),
    )
    actual = streaming.solr_cells(solr_client, aggregation, sentinel_ms - streaming.HOUR_MS)
    problems = streaming.differences(
        expected.cells, actual, sessions.FIELDS, sketch_tolerance=0.05
    )
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:15])
    assert len(actual) > 200
