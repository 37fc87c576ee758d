"""The streaming job against a SASL/SCRAM-SHA-512 Kafka over TLS (SASL_SSL): credentials and
the CA from the environment.

The right user (its password in a file, as a mounted Secret gives it) streams the topic into
the oracle's cells, verifying the broker against the CA `$CLICKAGG_KAFKA_CA_FILE` names; a
wrong password ends the query within a bounded time with an error that names authentication
and the user, and the password shows in no error and no log line; a wrong CA ends it with an
error that names the CA bundle and the spec's caSecret.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest
from pyspark.errors import StreamingQueryException

import streaming
from clickagg import errors, sim
from clickagg.local import kafka_security, solr_tls
from clickagg.pipeline import archive, stream
from clickagg.sim import landing
from clickagg.store import client as store_client
from clickagg.store import collections as solr_collections
from clickagg.store import credentials
from fixtures import kafka as kafka_fixtures

pytestmark = pytest.mark.e2e

START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - 4) * streaming.HOUR_MS
#: Kafka clients retry a refused login; the query must still end within this.
FAILS_WITHIN_S = 120
WRONG = "not-the-password-3f9c"


def sasl_source(bootstrap: str, topic: str) -> dict[str, Any]:
    return {
        "type": "kafka",
        "kafka": {
            "bootstrapServers": bootstrap,
            "topic": topic,
            "security": {
                "protocol": "SASL_SSL",
                "saslMechanism": "SCRAM-SHA-512",
                "credentialsSecret": {"name": "kafka-jobs"},
                "caSecret": {"name": "kafka-ca"},
            },
        },
    }


def failed_ingest(
    spark: Any, tmp_path: Path, bootstrap: str, topic: str
) -> tuple[stream.Source, Any, StreamingQueryException, float]:
    """Ingest `topic` with the environment's login and CA, expecting the query to fail:
    (source, query, its failure, seconds it took)."""
    aggregation = streaming.aggregation_for(
        tmp_path / "unused",
        "http://127.0.0.1:9/solr",
        "kafka-fail",
        source=sasl_source(bootstrap, topic),
    )
    source = stream.source_of(aggregation)
    paths = archive.JobPaths(str(tmp_path / "data"))
    started = time.monotonic()
    query = stream.ingest(spark, aggregation, paths, source, 1, available_now=True)
    with pytest.raises(StreamingQueryException) as raised:
        # Returns False (no exception) if it still runs: a refused login must end it.
        query.awaitTermination(FAILS_WITHIN_S)
    return source, query, raised.value, time.monotonic() - started


def test_the_jobs_user_streams_a_sasl_topic_into_the_oracles_cells(
    spark: Any,
    solr: Any,
    solr_client: Any,
    sasl_kafka: kafka_fixtures.SaslKafka,
    sasl_kafka_topic: kafka_fixtures.TopicFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, _ = kafka_security.credentials(sasl_kafka.security_dir, kafka_security.JOBS)
    password_file = kafka_security.password_file(sasl_kafka.security_dir, kafka_security.JOBS)
    monkeypatch.setenv(credentials.KAFKA_USERNAME_ENV, user)
    monkeypatch.setenv(credentials.KAFKA_PASSWORD_FILE_ENV, str(password_file))
    monkeypatch.setenv(credentials.KAFKA_CA_FILE_ENV, str(sasl_kafka.ca_file))
    bootstrap, topic = sasl_kafka.endpoints.bootstrap, sasl_kafka_topic(2)
    aggregation = streaming.aggregation_for(
        tmp_path / "unused",
        solr.base_url,
        "kafka-sasl",
        levels=streaming.FINEST_ONLY,
        source=sasl_source(bootstrap, topic),
    )
    paths = archive.JobPaths(str(tmp_path / "data"))
    with store_client.SolrClient(solr.base_url) as client:
        solr_collections.ensure_level_collections(client, aggregation)
    lines = streaming.traffic_lines(START_MS, hours=1, visitors=250, seed=7)
    landing.send_to_kafka(lines, bootstrap, topic, client=sasl_kafka.client())
    streaming.run_to_end(spark, aggregation, paths, solr.base_url)

    def send(line: bytes) -> None:
        emitted = [sim.Emitted(line, 0, sim.VALID)]
        landing.send_to_kafka(emitted, bootstrap, topic, client=sasl_kafka.client())

    sentinel_ms = START_MS + 3 * streaming.HOUR_MS
    streaming.close_every_visit(spark, aggregation, paths, solr.base_url, send, sentinel_ms)
    problems = streaming.oracle_problems(
        solr_client, aggregation, [i.line for i in lines], sentinel_ms - streaming.HOUR_MS
    )
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:15])


def test_a_wrong_password_ends_the_stream_with_an_error_naming_the_user(
    spark: Any,
    sasl_kafka: kafka_fixtures.SaslKafka,
    sasl_kafka_topic: kafka_fixtures.TopicFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    user, _ = kafka_security.credentials(sasl_kafka.security_dir, kafka_security.JOBS)
    monkeypatch.setenv(credentials.KAFKA_USERNAME_ENV, user)
    monkeypatch.setenv(credentials.KAFKA_PASSWORD_ENV, WRONG)
    monkeypatch.setenv(credentials.KAFKA_CA_FILE_ENV, str(sasl_kafka.ca_file))
    bootstrap, topic = sasl_kafka.endpoints.bootstrap, sasl_kafka_topic(1)
    landing.send_to_kafka(
        [sim.Emitted(streaming.sentinel(START_MS), 0, sim.VALID)],
        bootstrap,
        topic,
        client=sasl_kafka.client(),
    )
    source, query, failure, took = failed_ingest(spark, tmp_path, bootstrap, topic)
    assert WRONG not in repr(source)
    assert took < FAILS_WITHIN_S
    explained = stream.source_failure(source, failure)
    assert isinstance(explained, errors.KafkaAuthError), str(failure)[:2000]
    message = str(explained)
    assert f"user '{user}'" in message
    assert "authentication" in message
    assert explained.user == user and explained.mechanism == "SCRAM-SHA-512"
    captured = capfd.readouterr()
    for text in (message, str(failure), captured.out, captured.err):
        assert WRONG not in text
    assert not query.isActive


def test_a_wrong_ca_ends_the_stream_with_an_error_naming_the_ca_setting(
    spark: Any,
    sasl_kafka: kafka_fixtures.SaslKafka,
    sasl_kafka_topic: kafka_fixtures.TopicFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another CA than the one that signed the broker's certificate.
    other = solr_tls.create(tmp_path / "other-ca", ["127.0.0.1"], ca_name="not-the-kafka-ca")
    wrong_ca = solr_tls.ca_file(other)
    user, _ = kafka_security.credentials(sasl_kafka.security_dir, kafka_security.JOBS)
    password_file = kafka_security.password_file(sasl_kafka.security_dir, kafka_security.JOBS)
    monkeypatch.setenv(credentials.KAFKA_USERNAME_ENV, user)
    monkeypatch.setenv(credentials.KAFKA_PASSWORD_FILE_ENV, str(password_file))
    monkeypatch.setenv(credentials.KAFKA_CA_FILE_ENV, str(wrong_ca))
    bootstrap, topic = sasl_kafka.endpoints.bootstrap, sasl_kafka_topic(1)
    source, query, failure, took = failed_ingest(spark, tmp_path, bootstrap, topic)
    assert took < FAILS_WITHIN_S
    explained = stream.source_failure(source, failure)
    assert isinstance(explained, errors.KafkaTlsError), str(failure)[:2000]
    message = str(explained)
    assert str(wrong_ca) in message
    assert credentials.KAFKA_CA_FILE_ENV in message
    assert "spec.source.kafka.security.caSecret" in message
    assert not query.isActive


def test_generate_produces_to_a_sasl_topic_as_the_jobs_user(
    sasl_kafka: kafka_fixtures.SaslKafka, sasl_kafka_topic: kafka_fixtures.TopicFactory
) -> None:
    """`clickagg generate --kafka` logs in with the jobs' variables; the password is in a file
    and shows nowhere in its output; a wrong one ends it at once with the user named."""
    user, password = kafka_security.credentials(sasl_kafka.security_dir, kafka_security.JOBS)
    password_file = kafka_security.password_file(sasl_kafka.security_dir, kafka_security.JOBS)
    bootstrap, topic = sasl_kafka.endpoints.bootstrap, sasl_kafka_topic(2)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(streaming.ROOT) / "src"),
        credentials.KAFKA_USERNAME_ENV: user,
        credentials.KAFKA_PASSWORD_FILE_ENV: str(password_file),
        credentials.KAFKA_CA_FILE_ENV: str(sasl_kafka.ca_file),
    }
    command = [sys.executable, "-m", "clickagg", "generate", "--kafka", bootstrap, "--topic"]
    command += [topic, "--duration", "10m", "--visitors", "20", "--faults-off"]

    def generate(security: str, **changed: str) -> tuple[int, str]:
        done = subprocess.run(
            [*command, "--kafka-security", security],
            env={**env, **changed},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.returncode, " ".join((done.stdout + done.stderr).split())

    code, said = generate("SASL_SSL")
    assert code == 0, said[-2000:]
    sent = int(said.split("sent ", 1)[1].split(" lines", 1)[0].replace(",", ""))
    assert sent > 0 and password not in said
    assert _messages_in(topic, sasl_kafka) == sent
    code, said = generate("SASL_PLAIN")
    assert code == 2 and "--kafka-security 'SASL_PLAIN'" in said
    started = time.monotonic()
    wrong = {credentials.KAFKA_PASSWORD_FILE_ENV: "", credentials.KAFKA_PASSWORD_ENV: WRONG}
    code, said = generate("SASL_SSL", **wrong)
    assert code == 1 and f"refused the authentication of user '{user}'" in said
    assert time.monotonic() - started < 30 and WRONG not in said


def _messages_in(topic: str, sasl_kafka: kafka_fixtures.SaslKafka) -> int:
    consumer = confluent_kafka.Consumer(
        {
            **sasl_kafka.client(),
            "bootstrap.servers": sasl_kafka.endpoints.bootstrap,
            "group.id": "count",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), timeout=30)[1]
            for p in partitions
        )
    finally:
        consumer.close()
