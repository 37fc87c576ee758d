"""The local Kafka broker round-trips real messages and refuses a taken port clearly."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest

import fixtures
from clickagg import errors
from clickagg.local import kafka as local_kafka
from clickagg.local import process
from fixtures import kafka as kafka_fixtures

pytestmark = pytest.mark.e2e

MESSAGES = 1000


def _produce_json(bootstrap: str, topic: str, count: int) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        user = f"u{i % 37}"
        event = {"event_id": f"e{i}", "user_id": user, "ts": 1_700_000_000_000 + i}
        producer.produce(topic, key=user, value=json.dumps(event))
        producer.poll(0)
    assert producer.flush(30) == 0, "messages left undelivered"


Received = list[tuple[int, dict[str, Any]]]


def _consume(bootstrap: str, topic: str, count: int, timeout: float = 60) -> Received:
    """Read `count` messages from the start of `topic`: (partition, decoded JSON) each."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: Received = []
    deadline = time.monotonic() + timeout
    try:
        consumer.subscribe([topic])
        while len(received) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            partition, value = message.partition(), message.value()
            assert partition is not None and value is not None
            received.append((partition, json.loads(value)))
    finally:
        consumer.close()
    return received


def test_round_trips_1000_json_messages_through_two_partitions(
    kafka: local_kafka.KafkaEndpoints, kafka_topic: kafka_fixtures.TopicFactory
) -> None:
    topic = kafka_topic(2)
    _produce_json(kafka.bootstrap, topic, MESSAGES)

    received = _consume(kafka.bootstrap, topic, MESSAGES)

    assert sorted(event["event_id"] for _, event in received) == sorted(
        f"e{i}" for i in range(MESSAGES)
    )
    assert {partition for partition, _ in received} == {0, 1}


def test_up_again_finds_the_running_broker(
    kafka: local_kafka.KafkaEndpoints, kafka_run_dir: Path
) -> None:
    with fixtures.use_run_dir(kafka_run_dir):
        assert local_kafka.status() == kafka
        assert local_kafka.up() == kafka


def test_create_topic_again_is_accepted_but_another_partition_count_is_not(
    kafka: local_kafka.KafkaEndpoints, kafka_topic: kafka_fixtures.TopicFactory
) -> None:
    topic = kafka_topic(2)
    local_kafka.create_topic(kafka.bootstrap, topic, 2)
    with pytest.raises(errors.EngineError, match="2 partitions, not 3"):
        local_kafka.create_topic(kafka.bootstrap, topic, 3)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held open by a listening socket for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("which", ["broker", "controller"])
def test_a_taken_port_gives_port_in_use_naming_it(
    which: str, taken_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty run dir, so up() cannot find the session's broker and return it instead.
    monkeypatch.setenv("CLICKAGG_RUN_DIR", str(tmp_path))
    free = process.free_port()
    ports = (
        {"broker": taken_port, "controller": free}
        if which == "broker"
        else {"broker": free, "controller": taken_port}
    )

    with pytest.raises(errors.PortInUse, match=f"kafka {which} port {taken_port}"):
        local_kafka.up(port=ports["broker"], controller_port=ports["controller"])
    assert local_kafka.status() is None
