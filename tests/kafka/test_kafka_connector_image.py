"""The Kafka connector jars a Kafka source's SparkApplication declares are the ones the jobs
image bakes in: Maven's resolution of the same pom, names stripped of versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickagg.local import kafka as local_kafka
from clickagg.operator import children

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_declared_connector_jars_are_what_the_image_copies() -> None:
    resolved = sorted(local_kafka.stripped_jar_name(p) for p in local_kafka.spark_connector_jars())
    declared = sorted(jar.rsplit("/", 1)[1] for jar in children.KAFKA_CONNECTOR_JARS)
    assert declared == resolved
    dockerfile = (ROOT / "jobs" / "Dockerfile").read_text()
    assert "COPY src/clickagg/local/spark_kafka/pom.xml" in dockerfile
    assert "-Dmdep.stripVersion=true" in dockerfile
    assert "COPY --from=kafka-connector /build/kafka/ ./jars/kafka/" in dockerfile
    assert all(
        jar.startswith("local:///opt/clickagg/jars/kafka/") for jar in children.KAFKA_CONNECTOR_JARS
    )
