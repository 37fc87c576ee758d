"""Deliver generated clickstream lines where the pipeline reads them: a landing directory of
JSON-lines files, or a Kafka topic, as fast as possible or paced like live traffic.

Spark's file source lists the directory and reads each file it has not seen once; a file it
lists while the file is still being written is read half and never again. So every file is
written under a hidden name (`.name.tmp`; Spark skips names starting with a dot) and renamed
when complete. A rename within one file system is atomic: a file appears whole or not at all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import confluent_kafka

from clickagg import errors
from clickagg.sim import kinds
from clickagg.store import credentials


@dataclass(frozen=True)
class Rolling:
    """When a landing file is complete: after `lines_per_file` lines, or once a line arrives
    `arrival_ms_per_file` or more after the file's first line (None: no time limit).
    """

    lines_per_file: int = 10_000
    arrival_ms_per_file: int | None = 60_000

    def __post_init__(self) -> None:
        if self.lines_per_file < 1:
            raise ValueError("lines_per_file must be at least 1")
        if self.arrival_ms_per_file is not None and self.arrival_ms_per_file < 1:
            raise ValueError("arrival_ms_per_file must be at least 1 or None")


@dataclass(frozen=True)
class Delivered:
    """What a writer delivered: lines and bytes (newlines not counted), and the files."""

    lines: int
    bytes: int
    files: tuple[Path, ...] = ()


class Pacer:
    """Holds lines back so they leave like live traffic.

    With `speed`, a line leaves when an accelerated clock reaches its arrival time: the clock
    starts at the first line's arrival time and runs `speed` times faster than real time. With
    `rate`, at most `rate` lines leave per second. With both, both hold. `clock` and `sleep`
    are time.monotonic and time.sleep unless a caller brings its own.
    """

    # Shorter waits are skipped: sleeping has ~0.1 ms overhead, and the next wait catches up
    # because every due time is measured from the start, not from the previous line.
    _MIN_SLEEP_S = 0.001

    def __init__(
        self,
        *,
        speed: float | None = None,
        rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be greater than 0")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be greater than 0")
        self._speed = speed
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._started_at: float | None = None
        self._first_arrival_ms = 0
        self._released = 0

    def wait(self, arrival_ms: int) -> None:
        """Return when the line arriving at `arrival_ms` may leave."""
        now = self._clock()
        if self._started_at is None:
            self._started_at, self._first_arrival_ms = now, arrival_ms
        due = self._started_at
        if self._speed is not None:
            due = max(
                due, self._started_at + (arrival_ms - self._first_arrival_ms) / 1000 / self._speed
            )
        if self._rate is not None:
            due = max(due, self._started_at + self._released / self._rate)
        self._released += 1
        if due - now >= self._MIN_SLEEP_S:
            self._sleep(due - now)


# ---------------------------------------------------------------- landing directory


def write_files(
    lines: Iterable[kinds.Emitted],
    directory: Path,
    *,
    rolling: Rolling = Rolling(),  # frozen, so one shared default is safe
    prefix: str = "clicks",
    pacer: Pacer | None = None,
    fsync: bool = True,
) -> Delivered:
    """Write the lines as JSON-lines files named `<prefix>-<first arrival ms>-<n>.jsonl`.

    Each file is complete when it appears. An existing file is never overwritten: the
    EngineError asks for another prefix. When the caller stops early (Ctrl-C in paced mode),
    the lines already written are still published; after a write error the file is dropped.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    total_lines = total_bytes = 0
    current: _OpenFile | None = None
    try:
        for item in lines:
            if current is not None and current.is_full(item.arrival_ms, rolling):
                # Publish before waiting for the next line, so a paced file is not held back.
                files.append(current.publish(fsync))
                current = None
            if pacer is not None:
                pacer.wait(item.arrival_ms)
            if current is None:
                name = f"{prefix}-{item.arrival_ms}-{len(files) + 1:06d}.jsonl"
                current = _OpenFile.create(directory, name)
            current.write(item)
            total_lines += 1
            total_bytes += len(item.line)
    except OSError:
        if current is not None:
            current.discard()
        raise
    finally:
        if current is not None and current.is_open:
            files.append(current.publish(fsync))
    return Delivered(lines=total_lines, bytes=total_bytes, files=tuple(files))


class _OpenFile:
    """A landing file being written under its hidden temporary name."""

    def __init__(self, final: Path, temporary: Path, handle: BinaryIO) -> None:
        self._final = final
        self._temporary = temporary
        self._handle = handle
        self._lines = 0
        self._first_arrival_ms = 0
        self.is_open = True

    @classmethod
    def create(cls, directory: Path, name: str) -> _OpenFile:
        final = directory / name
        if final.exists():
            raise errors.EngineError(
                f"{final} exists already; use another prefix or an empty directory"
            )
        temporary = directory / f".{name}.tmp"
        return cls(final, temporary, temporary.open("wb"))

    def is_full(self, arrival_ms: int, rolling: Rolling) -> bool:
        if self._lines >= rolling.lines_per_file:
            return True
        span = rolling.arrival_ms_per_file
        return span is not None and arrival_ms - self._first_arrival_ms >= span

    def write(self, item: kinds.Emitted) -> None:
        if not self._lines:
            self._first_arrival_ms = item.arrival_ms
        self._handle.write(item.line)
        self._handle.write(b"\n")
        self._lines += 1

    def publish(self, fsync: bool) -> Path:
        """Close the file and give it its final name."""
        self.is_open = False
        try:
            self._handle.flush()
            if fsync:
                # The data must be on disk before the name is, or a crash could publish a
                # file with holes.
                os.fsync(self._handle.fileno())
        finally:
            self._handle.close()
        if self._final.exists():
            self._temporary.unlink()
            raise errors.EngineError(f"{self._final} appeared while it was being written")
        self._temporary.rename(self._final)
        return self._final

    def discard(self) -> None:
        self.is_open = False
        self._handle.close()
        self._temporary.unlink(missing_ok=True)


# ---------------------------------------------------------------- Kafka


def send_to_kafka(
    lines: Iterable[kinds.Emitted],
    bootstrap: str,
    topic: str,
    *,
    pacer: Pacer | None = None,
    flush_timeout_s: float = 60.0,
    client: Mapping[str, str] | None = None,
) -> Delivered:
    """Produce each line as one message to `topic`, keyed by visitor_id (None when the line
    has none), so a visitor's events stay in one partition and in order. `client`: extra
    librdkafka settings, such as a SASL login.

    Raises EngineError when a message could not be delivered.
    """
    refusals: list[confluent_kafka.KafkaError] = []
    producer = confluent_kafka.Producer(
        {
            **(client or {}),
            "error_cb": lambda error: refusals.append(error) if _refused(error) else None,
            "bootstrap.servers": bootstrap,
            # Retries must not resend what the broker already has: that would be a duplicate
            # the generator did not ask for.
            "enable.idempotence": True,
            "linger.ms": 20,
            "client.id": "clickagg-generate",
        }
    )
    _require_topic(producer, bootstrap, topic, flush_timeout_s, refusals, client or {})
    failures: list[str] = []

    def delivered(error: confluent_kafka.KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    total_lines = total_bytes = 0
    for item in lines:
        if failures:
            break
        if pacer is not None:
            pacer.wait(item.arrival_ms)
        key = item.visitor_id.encode("utf-8") if item.visitor_id is not None else None
        while True:
            try:
                producer.produce(topic, value=item.line, key=key, on_delivery=delivered)
                break
            except BufferError:
                # The local queue is full: let librdkafka send, then try again.
                producer.poll(0.1)
        producer.poll(0)
        total_lines += 1
        total_bytes += len(item.line)
    undelivered = producer.flush(flush_timeout_s)
    if failures or undelivered:
        producer.purge()  # what is left would only be retried until the process exits
    if failures:
        raise errors.EngineError(
            f"Kafka at {bootstrap} did not take {len(failures)} message(s) for topic "
            f"{topic!r}: {failures[0]}"
        )
    if undelivered:
        raise errors.EngineError(
            f"{undelivered} message(s) for Kafka topic {topic!r} were still undelivered after "
            f"{flush_timeout_s:.0f}s"
        )
    return Delivered(lines=total_lines, bytes=total_bytes)


def _require_topic(
    producer: confluent_kafka.Producer,
    bootstrap: str,
    topic: str,
    timeout_s: float,
    refusals: list[confluent_kafka.KafkaError],
    client: Mapping[str, str],
) -> None:
    """Fail fast on a missing topic or a refused login or certificate: librdkafka would retry
    each message for minutes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            metadata = producer.list_topics(topic=topic, timeout=1.0)
            break
        except confluent_kafka.KafkaException as exc:
            producer.poll(0)  # error_cb runs only inside poll
            if refusals:
                raise _refusal(refusals[0], bootstrap, client) from None
            if time.monotonic() > deadline:
                raise errors.EngineError(f"Kafka at {bootstrap} did not answer: {exc}") from exc
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        reason = found.error.str() if found is not None and found.error else "not found"
        raise errors.EngineError(
            f"Kafka topic {topic!r} is not available at {bootstrap} ({reason}); "
            "create it first (clickagg generate --partitions N creates it)"
        )


def _refused(error: confluent_kafka.KafkaError) -> bool:
    return error.code() in (
        confluent_kafka.KafkaError._AUTHENTICATION,
        confluent_kafka.KafkaError._SSL,
    )


def _refusal(
    error: confluent_kafka.KafkaError, bootstrap: str, client: Mapping[str, str]
) -> errors.KafkaAuthError | errors.KafkaTlsError:
    """The broker's refusal as the error the jobs raise for the same cause."""
    if error.code() == confluent_kafka.KafkaError._SSL:
        unset = f"the system's CAs (${credentials.KAFKA_CA_FILE_ENV} unset)"
        trusted = client.get("ssl.ca.location", unset)
        return errors.KafkaTlsError(
            f"the TLS handshake with Kafka at {bootstrap} failed (verified against {trusted}): "
            f"{error.str()}"
        )
    user, mechanism = client.get("sasl.username"), client.get("sasl.mechanism")
    return errors.KafkaAuthError(
        f"Kafka at {bootstrap} refused the authentication of user '{user}' with {mechanism}: "
        f"{error.str()}",
        user=user,
        mechanism=mechanism,
    )
