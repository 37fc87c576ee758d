"""The streaming job reading a real Kafka topic (KRaft broker from Maven Central jars)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import streaming
from clickagg import sim
from clickagg.local import solr_security
from clickagg.pipeline import archive
from clickagg.sim import landing
from clickagg.store import collections as solr_collections
from fixtures import solr as fixtures_solr

pytestmark = pytest.mark.e2e

START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - 4) * streaming.HOUR_MS


def test_events_from_kafka_become_the_oracles_cells(
    spark: Any, solr: Any, solr_client: Any, kafka: Any, kafka_topic: Any, tmp_path: Path
) -> None:
    topic = kafka_topic(2)
    aggregation = streaming.aggregation_for(
        tmp_path / "unused",
        solr.base_url,
        "kafka-run",
        levels=streaming.FINEST_ONLY,
        source={"type": "kafka", "kafka": {"bootstrapServers": kafka.bootstrap, "topic": topic}},
    )
    paths = archive.JobPaths(str(tmp_path / "data"))
    # The operator's part: only its user may create collections.
    with fixtures_solr.client_as(solr.base_url, solr_security.OPERATOR) as client:
        solr_collections.ensure_level_collections(client, aggregation)
    lines = streaming.traffic_lines(START_MS, hours=1, visitors=250, seed=5)
    landing.send_to_kafka(lines, kafka.bootstrap, topic)
    streaming.run_to_end(spark, aggregation, paths, solr.base_url)

    def send(line: bytes) -> None:
        landing.send_to_kafka([sim.Emitted(line, 0, sim.VALID)], kafka.bootstrap, topic)

    sentinel_ms = START_MS + 3 * streaming.HOUR_MS
    streaming.close_every_visit(spark, aggregation, paths, solr.base_url, send, sentinel_ms)
    problems = streaming.oracle_problems(
        solr_client, aggregation, [i.line for i in lines], sentinel_ms - streaming.HOUR_MS
    )
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:15])
