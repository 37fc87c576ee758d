"""The streaming job's two queries.

`ingest`: source lines → parsed events and dead letters → the Parquet raw archive, each
row with its arrival (see `archive`); a batch Spark runs again overwrites its own
partitions. Nothing is dropped here: an event more than `lateness.allowedLateness` behind
the newest event time of the earlier micro-batches (the first batch: its own) becomes a
`too_late` dead letter; a late one within it is archived and settled later (`settle`).

`aggregate`: the archive → first arrival per event id → dedup within the watermark →
sessionize per visitor → cell deltas per cuboid → Solr (full-state documents, idempotent
per micro-batch). Reading the archive rather than the source means replay and streaming see
the very same rows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from clickagg import errors
from clickagg.domain import events as event_contract
from clickagg.domain import model, sessions, spec
from clickagg.pipeline import archive, cell_sums, dedup, ingest_log, jvm_parse, parse, sessionize
from clickagg.store import credentials, protocol

log = logging.getLogger(__name__)

# Fault injection for tests, in this one place: with CLICKAGG_FAULT_AFTER_WRITE_BATCH=N the
# aggregate query's foreachBatch SIGKILLs its own process group (the Python driver and its
# JVM) right after batch N's cells are in Solr and before Spark commits the batch, so the
# restarted job re-runs batch N and the (stream, batch) guard must skip its cells.
FAULT_AFTER_WRITE_ENV = "CLICKAGG_FAULT_AFTER_WRITE_BATCH"


#: Source options whose values are secrets: never in a repr, a log line or an error.
SECRET_OPTIONS = frozenset({"kafka.sasl.jaas.config"})


@dataclass(frozen=True)
class Source:
    """Where lines come from: a landing directory or a Kafka topic."""

    kind: str  # "files" or "kafka"
    options: Mapping[str, str] = field(repr=False)
    #: The Kafka SASL user and mechanism, to name in an authentication error (no password).
    sasl_user: str | None = None
    sasl_mechanism: str | None = None
    #: The CA bundle a Kafka over SSL or SASL_SSL is verified against (None: the JVM's).
    ca_file: str | None = None

    def __repr__(self) -> str:
        shown = {k: "***" if k in SECRET_OPTIONS else v for k, v in self.options.items()}
        return f"Source(kind={self.kind!r}, options={shown!r})"


def source_of(aggregation: model.Aggregation, environ: Mapping[str, str] = os.environ) -> Source:
    """The spec's source as Spark reader options. A SASL Kafka's user and password come
    from the environment (`store.credentials`), never from the spec or an argument."""
    spec_source = aggregation.spec.source
    if spec_source.kafka is not None:
        return _kafka_source(spec_source.kafka, environ)
    assert spec_source.files is not None
    return Source(
        "files",
        {
            "path": spec_source.files.path,
            "maxFilesPerTrigger": str(spec_source.files.max_files_per_trigger),
        },
    )


def _kafka_source(kafka: spec.KafkaSource, environ: Mapping[str, str]) -> Source:
    security = kafka.security
    options = {
        "kafka.bootstrap.servers": kafka.bootstrap_servers,
        "subscribe": kafka.topic,
        "startingOffsets": kafka.starting_offsets,
        "kafka.security.protocol": security.protocol,
        "failOnDataLoss": "false",
    }
    ca_file = credentials.kafka_ca_file_from_environment(environ)
    if ca_file is not None and security.protocol.endswith("SSL"):
        # Kafka's clients read a PEM trust store since 2.7; the executors read the same path.
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = str(ca_file)
    trusted = str(ca_file) if "kafka.ssl.truststore.location" in options else None
    if not security.protocol.startswith("SASL_"):
        return Source("kafka", options, ca_file=trusted)
    mechanism = security.sasl_mechanism or "SCRAM-SHA-512"
    found = credentials.kafka_from_environment(environ)
    if found is None:
        raise errors.KafkaAuthError(
            f"the Kafka source uses {security.protocol} with {mechanism} but no user is set: "
            f"set ${credentials.KAFKA_USERNAME_ENV} and ${credentials.KAFKA_PASSWORD_ENV} "
            f"(or ${credentials.KAFKA_PASSWORD_FILE_ENV})",
            mechanism=mechanism,
        )
    options["kafka.sasl.mechanism"] = mechanism
    options["kafka.sasl.jaas.config"] = found.jaas_config(mechanism)
    return Source("kafka", options, sasl_user=found.user, sasl_mechanism=mechanism, ca_file=trusted)


#: What the Kafka client says when the broker refuses a SASL login (SaslAuthenticationException).
_AUTH_FAILURE_MARKERS = ("SaslAuthenticationException", "Authentication failed")


#: What the Kafka client says when the broker's certificate fails verification.
_TLS_FAILURE_MARKERS = ("SSLHandshakeException", "PKIX path", "SslAuthenticationException")


def source_failure(
    source: Source, failure: BaseException
) -> errors.KafkaAuthError | errors.KafkaTlsError | None:
    """A query's failure as a KafkaTlsError naming the CA setting, when the broker's
    certificate failed verification, or a KafkaAuthError naming the user and mechanism,
    when the broker refused the login; None for any other failure. Never quotes the options."""
    if source.kind != "kafka":
        return None
    bootstrap = source.options.get("kafka.bootstrap.servers", "?")
    if any(m in str(failure) for m in _TLS_FAILURE_MARKERS):
        trusted = (
            f"the CA bundle {source.ca_file} (${credentials.KAFKA_CA_FILE_ENV})"
            if source.ca_file
            else f"the JVM's default CAs (${credentials.KAFKA_CA_FILE_ENV} is not set)"
        )
        return errors.KafkaTlsError(
            f"the TLS certificate of Kafka at {bootstrap} failed verification against "
            f"{trusted}: name the CA that signed the brokers' certificates in "
            f"{credentials.KAFKA_CA_SETTING}"
        )
    if not any(m in str(failure) for m in _AUTH_FAILURE_MARKERS):
        return None
    return errors.KafkaAuthError(
        f"Kafka at {bootstrap} refused the SASL authentication of user "
        f"'{source.sasl_user}' ({source.sasl_mechanism}): check the user and password in "
        "the Secret spec.source.kafka.security.credentialsSecret names",
        user=source.sasl_user,
        mechanism=source.sasl_mechanism,
    )


def read_lines(spark: SparkSession, source: Source) -> DataFrame:
    """The source as `parse.LINE_COLUMNS`: raw bytes (never decoded by Spark), the file or
    Kafka partition, and the start of the line's split (a file's) or its Kafka offset."""
    if source.kind == "kafka":
        kafka = spark.readStream.format("kafka").options(**source.options).load()
        return kafka.select(
            "value",
            F.concat_ws("/", "topic", F.col("partition").cast("string")).alias("arrival_source"),
            F.col("offset").alias("arrival_split"),
        )
    options = {k: v for k, v in source.options.items() if k != "path"}
    path = source.options["path"]
    if "://" not in path or path.startswith("file://"):
        # Spark refuses a missing directory; an empty landing directory is a normal start.
        Path(path.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    lines = spark.readStream.format("text").options(**options).load(path)
    return file_lines(lines)


def file_lines(lines: DataFrame) -> DataFrame:
    """A text source's lines as `parse.LINE_COLUMNS`."""
    return lines.select(
        F.col("value").cast("binary").alias("value"),
        F.col("_metadata.file_path").alias("arrival_source"),
        F.col("_metadata.file_block_start").alias("arrival_split"),
    )


def ingest(
    spark: SparkSession,
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    source: Source,
    trigger_seconds: float,
    *,
    available_now: bool = False,
    on_batch: Callable[[int, archive.IngestReport], None] | None = None,
) -> StreamingQuery:
    writer = (
        read_lines(spark, source)
        .writeStream.queryName(ingest_query_name(aggregation))
        .foreachBatch(ArchiveWriter(aggregation, paths, on_batch))
        .option("checkpointLocation", paths.checkpoint("ingest"))
    )
    query: StreamingQuery = _with_trigger(writer, trigger_seconds, available_now).start()
    return query


class ArchiveWriter:
    """foreachBatch: one batch of lines → archive rows, `too_late` measured from the newest
    event time of the earlier batches (the first batch: its own; the ingest log keeps the
    newest through each batch for the next)."""

    def __init__(
        self,
        aggregation: model.Aggregation,
        paths: archive.JobPaths,
        on_batch: Callable[[int, archive.IngestReport], None] | None,
    ) -> None:
        self.aggregation = aggregation
        self.paths = paths
        self.on_batch = on_batch

    def __call__(self, lines: DataFrame, batch_id: int) -> None:
        spark = lines.sparkSession
        settings = parse.ParseSettings(batch_id, int(time.time() * 1000))
        report = write_archive(
            lines,
            settings,
            event_contract.lateness_window(self.aggregation.allowed_lateness),
            self.paths,
            ingest_log.newest_before(spark, self.paths, batch_id),
        )
        ingest_log.record(spark, self.paths, batch_id, report.newest_event_ms)
        log.info(
            "%s ingest batch %d: %d lines, %d dead letters (%d too late), newest event %s",
            self.aggregation.name,
            batch_id,
            report.lines,
            report.dead_letters,
            report.too_late,
            report.newest_event_ms,
        )
        if self.on_batch is not None:
            self.on_batch(batch_id, report)


def write_archive(
    lines: DataFrame,
    settings: parse.ParseSettings,
    window: event_contract.TimeWindow,
    paths: archive.JobPaths,
    newest_before_ms: int | None,
) -> archive.IngestReport:
    """Parse `lines` (`parse.LINE_COLUMNS`) into archive rows and write them: the events
    before `window`'s past limit behind `newest_before_ms`, the newest event time of the
    earlier batches (None: they had none, and these lines' own newest stands in,
    `events.lateness_reference`), become `too_late` dead letters. The report's
    `newest_event_ms` is the newest through these lines. The parser is
    `spark.clickagg.parser`'s (`jvm_parse`)."""
    if jvm_parse.chosen(lines.sparkSession) == jvm_parse.JVM:
        report = jvm_parse.write_archive(lines, settings, window, paths, newest_before_ms)
        if report is not None:
            return report
        log.info(
            "ingest batch %d: more than %d lines (or %d bytes) need Python's judgement: the "
            "Python parser parses the batch",
            settings.arrival_batch,
            jvm_parse.DEFERRED_KEPT_LINES,
            jvm_parse.DEFERRED_KEPT_BYTES,
        )
    # The Python parser: one call per line; the parsed rows are cached and read three times
    # (counts, `too_late` counts, the write).
    schema = archive.spark_schema()
    parsed = lines.mapInArrow(lambda b: parse.parse_batches(b, settings), schema).persist()
    try:
        is_event = F.col("kind") == archive.EVENT
        counted = parsed.agg(
            F.count(F.lit(1)).alias("lines"),
            F.count(F.when(~is_event, 1)).alias("dead_letters"),
            F.max(F.when(is_event, F.col("ts_ms"))).alias("newest"),
        ).first()
        assert counted is not None
        # Through this batch: what the next batch measures from, and settle's late marker.
        newest = max(
            (t for t in (newest_before_ms, counted["newest"]) if t is not None), default=None
        )
        reference = event_contract.lateness_reference(newest_before_ms, counted["newest"])
        limit = event_contract.too_late_limit(window, reference)
        late = is_event & (F.col("ts_ms") < F.lit(limit)) if limit is not None else F.lit(False)
        flagged = parsed.agg(
            F.count(F.when(late, 1)).alias("too_late"),
            F.count(F.when(is_event & F.col("bot") & ~late, 1)).alias("bots"),
        ).first()
        assert flagged is not None
        marked = parsed.mapInArrow(
            lambda b: parse.mark_too_late(b, window, reference, newest), schema
        )
        archive.append(marked, paths)
    finally:
        parsed.unpersist()
    return archive.IngestReport(
        lines=int(counted["lines"]),
        dead_letters=int(counted["dead_letters"]) + int(flagged["too_late"]),
        too_late=int(flagged["too_late"]),
        bots=int(flagged["bots"]),
        newest_event_ms=newest,
    )


def aggregate(
    spark: SparkSession,
    aggregation: model.Aggregation,
    paths: archive.JobPaths,
    open_store: Callable[[], protocol.CellStore],
    trigger_seconds: float,
    *,
    available_now: bool = False,
    on_batch: Callable[[int, protocol.WriteReport], None] | None = None,
) -> StreamingQuery:
    facts = sessionized_facts(spark, aggregation, paths)
    writer = CellWriter(aggregation, open_store, on_batch)
    stream = (
        facts.writeStream.queryName(aggregate_query_name(aggregation))
        .foreachBatch(writer)
        .option("checkpointLocation", paths.checkpoint("aggregate"))
    )
    query: StreamingQuery = _with_trigger(stream, trigger_seconds, available_now).start()
    writer.stream_id = str(query.id)
    return query


def sessionized_facts(
    spark: SparkSession, aggregation: model.Aggregation, paths: archive.JobPaths
) -> DataFrame:
    """The archive as a stream → first arrivals → dedup within the watermark → the
    sessionizer's facts."""
    watermark = f"{int(aggregation.watermark.approx_seconds)} seconds"
    events = (
        dedup.first_arrivals(archive.archived_events(spark, paths, streaming=True), streaming=True)
        .withColumn("event_time", F.timestamp_millis("ts_ms"))
        .withWatermark("event_time", watermark)
        .dropDuplicatesWithinWatermark(["event_id"])
    )
    return sessionize.streaming_facts(events, sessions.Config.of(aggregation))


class CellWriter:
    """foreachBatch: one micro-batch of facts → per-cuboid deltas → Solr documents."""

    def __init__(
        self,
        aggregation: model.Aggregation,
        open_store: Callable[[], protocol.CellStore],
        on_batch: Callable[[int, protocol.WriteReport], None] | None,
    ) -> None:
        self.aggregation = aggregation
        self.open_store = open_store
        self.on_batch = on_batch
        self.stream_id = ""  # the query id: stable across restarts from one checkpoint

    def __call__(self, facts: DataFrame, batch_id: int) -> None:
        level = self.aggregation.finest
        started = time.monotonic()
        # One action reads the batch (cells and bots in one aggregation): nothing to cache.
        deltas, bots = cell_sums.cell_deltas(facts, self.aggregation)
        summed_seconds = time.monotonic() - started
        with contextlib.closing(self.open_store()) as store:
            report = store.write_deltas(level, deltas, stream_id=self.stream_id, batch_id=batch_id)
            if bots:
                store.write_bot_counts(level, bots, stream_id=self.stream_id, batch_id=batch_id)
        log.info(
            "%s batch %d: sessionized and summed in %.2fs; %d cells written, %d already "
            "there, %d bot buckets, in %.2fs",
            self.aggregation.name,
            batch_id,
            summed_seconds,
            report.written,
            report.skipped,
            len(bots),
            report.seconds,
        )
        if report.skipped:
            log.info(
                "%s batch %d: the (stream, batch) guard skipped %d cells this stream's batch "
                "%d or a later one already wrote",
                self.aggregation.name,
                batch_id,
                report.skipped,
                batch_id,
            )
        if self.on_batch is not None:
            self.on_batch(batch_id, report)
        _fault_after_write(batch_id)


def _fault_after_write(batch_id: int) -> None:
    """The fault-injection point FAULT_AFTER_WRITE_ENV names (unset: nothing happens)."""
    wanted = os.environ.get(FAULT_AFTER_WRITE_ENV, "")
    if wanted.strip() == str(batch_id):
        log.warning("fault injection: SIGKILL after batch %d's Solr write", batch_id)
        logging.shutdown()
        os.killpg(os.getpgrp(), signal.SIGKILL)


def ingest_query_name(aggregation: model.Aggregation) -> str:
    return f"{aggregation.name}-ingest"


def aggregate_query_name(aggregation: model.Aggregation) -> str:
    return f"{aggregation.name}-aggregate"


def _with_trigger(writer: Any, trigger_seconds: float, available_now: bool) -> Any:
    if available_now:
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=f"{trigger_seconds} seconds")


def stop_between_batches(query: StreamingQuery, timeout_seconds: float = 30) -> None:
    """Stop a query when no batch runs: stopping mid-batch makes Spark log stack traces."""
    deadline = time.monotonic() + timeout_seconds
    while query.isActive and query.status["isTriggerActive"] and time.monotonic() < deadline:
        time.sleep(0.2)
    query.stop()
