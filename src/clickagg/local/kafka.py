"""A real Kafka broker on loopback: one KRaft node that is both broker and controller.

The streaming job reads clicks from Kafka, so its tests and `clickagg local up` need a
real broker, not a fake. Maven Central has no Kafka server distribution, but the
kafka_2.13 jar is that distribution's core: kafka_launcher/pom.xml names the jars, Maven
resolves them once into the cache, and the broker runs as its own main class
(`kafka.Kafka server.properties`) after `kafka.tools.StorageTool format`.

With `sasl=True` the client listener is SASL_PLAINTEXT with SCRAM-SHA-512 only: the users
(`local.kafka_security`) are formatted into the KRaft metadata before the first start, and
their passwords are kept owner-only under `<run dir>/kafka-security/`. With `tls=True` too it
is SASL_SSL: a fresh CA and a serving certificate for 127.0.0.1 each start (the project's
PKI, as the local Solr's: `solr_tls.create`) under `<run dir>/kafka-tls/`; clients verify
against `ca.crt` there (`KafkaEndpoints.ca_file`).
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka
from confluent_kafka import admin as kafka_admin
from confluent_kafka import cimpl

from clickagg import errors
from clickagg.local import cache, kafka_security, maven, passwords, process, solr_tls

KAFKA_VERSION = "4.4.0"
DEFAULT_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
NODE_ID = 1
TLS_CA_NAME = "clickagg-local-kafka-ca"

_NAME = "kafka"
_LAUNCHER = Path(__file__).resolve().with_name("kafka_launcher")
_SPARK_CONNECTOR = Path(__file__).resolve().with_name("spark_kafka")
_LOG4J = _LAUNCHER / "log4j2.xml"
# C1 only: on 2 cores the C2 compiler competes with startup, which halves to ~3 s without it,
# and a local broker never carries enough load to profit from C2.
_JVM_OPTS = ["-Xmx512m", "-Xms128m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"]


@dataclass(frozen=True)
class KafkaEndpoints:
    """How to reach the local broker: its bootstrap address, controller, and identity."""

    bootstrap: str
    controller: str
    cluster_id: str
    version: str
    #: The client listener's SASL mechanism ("": PLAINTEXT, no authentication).
    sasl_mechanism: str = ""
    #: The CA bundle a SASL_SSL listener's certificate is verified against ("": no TLS).
    ca_file: str = ""


# ---------------------------------------------------------------- install


def install() -> str:
    """The broker's Java classpath, resolved by Maven on first use and cached after that."""
    spark_connector_jars()
    return maven.build(_NAME, _LAUNCHER).classpath()


def spark_connector_jars() -> list[str]:
    """The jars of Spark's Kafka source, for `spark.jars` of a local SparkSession."""
    return [str(jar) for jar in maven.build("spark-kafka", _SPARK_CONNECTOR).jars]


def stripped_jar_name(path: str) -> str:
    """A Maven jar's file name without its version, as `dependency:copy-dependencies
    -Dmdep.stripVersion=true` names it in the jobs image (jobs/Dockerfile)."""
    artifact_dir = Path(path).parent.parent  # <repo>/<group path>/<artifact>/<version>/x.jar
    return f"{artifact_dir.name}.jar"


# ---------------------------------------------------------------- lifecycle


def up(
    port: int = DEFAULT_PORT,
    controller_port: int = DEFAULT_CONTROLLER_PORT,
    *,
    timeout: float = 120,
    sasl: bool = False,
    tls: bool = False,
) -> KafkaEndpoints:
    """Start the broker (or find it running) and return its endpoints.

    `sasl`: clients must log in with SASL/SCRAM-SHA-512 (`security_dir()` holds the users'
    passwords); only for a new data directory, which is formatted with the users. `tls`
    (with `sasl`): the listener is SASL_SSL, with a new CA each start (`ca_file()`).
    """
    if tls and not sasl:
        raise errors.LocalStackError("Kafka TLS comes with SASL here: ask for both (SASL_SSL)")
    running = status()
    if running is not None:
        return running
    process.ensure_ports_free({"kafka broker": port, "kafka controller": controller_port})
    classpath = install()
    java = process.require_tool("java", maven.JDK_HINT)
    run = cache.run_dir(_NAME)
    scram: list[str] = []
    if sasl and not (run / "data" / "meta.properties").exists():
        scram = kafka_security.create(security_dir())
    tls_dir = _fresh_tls() if tls else None
    config = write_server_properties(run, port, controller_port, sasl=sasl, tls_dir=tls_dir)
    cluster_id = _ensure_formatted(java, classpath, config, run / "data", scram)
    endpoints = KafkaEndpoints(
        bootstrap=f"127.0.0.1:{port}",
        controller=f"127.0.0.1:{controller_port}",
        cluster_id=cluster_id,
        version=KAFKA_VERSION,
        sasl_mechanism=kafka_security.MECHANISM if sasl else "",
        ca_file=str(solr_tls.ca_file(tls_dir)) if tls_dir else "",
    )
    client = client_config(endpoints)
    started = time.monotonic()
    _progress(f"starting Kafka {KAFKA_VERSION} on {endpoints.bootstrap}")
    process.start(
        _NAME,
        [java, *_JVM_OPTS, *_log_opts(), "-cp", classpath, "kafka.Kafka", str(config)],
        endpoints=vars(endpoints),
        ready=lambda: _is_ready(port, endpoints.bootstrap, client),
        timeout=timeout,
    )
    _progress(f"Kafka ready in {time.monotonic() - started:.1f}s")
    return endpoints


def down() -> bool:
    """Stop the broker. True if it was running."""
    return process.stop(_NAME)


def status() -> KafkaEndpoints | None:
    """The running broker's endpoints, or None when it is not running."""
    running = process.status(_NAME)
    if running is None:
        return None
    return KafkaEndpoints(**{key: str(value) for key, value in running.endpoints.items()})


def security_dir() -> Path:
    """Where a SASL broker's users and passwords are kept (owner-only)."""
    return cache.run_dir(_NAME) / "kafka-security"


def tls_dir() -> Path:
    """Where a SASL_SSL broker's CA, key store and its password are kept (owner-only)."""
    return cache.run_dir(_NAME) / "kafka-tls"


def _fresh_tls() -> Path:
    shutil.rmtree(tls_dir(), ignore_errors=True)
    return solr_tls.create(tls_dir(), [process.LOOPBACK], ca_name=TLS_CA_NAME)


def client_config(endpoints: KafkaEndpoints, role: str = kafka_security.ADMIN) -> dict[str, str]:
    """librdkafka settings that reach the broker: none for PLAINTEXT, a SCRAM login for SASL,
    over TLS verified against the broker's CA for SASL_SSL."""
    if not endpoints.sasl_mechanism:
        return {}
    ca_file = Path(endpoints.ca_file) if endpoints.ca_file else None
    return kafka_security.client_config(security_dir(), role, ca_file)


def _progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _log_opts() -> list[str]:
    return [f"-Dlog4j2.configurationFile={_LOG4J}"]


def write_server_properties(
    run: Path, port: int, controller_port: int, *, sasl: bool = False, tls_dir: Path | None = None
) -> Path:
    """Write server.properties for a one-node loopback cluster sized for tests (owner-only:
    with SASL it holds the broker's own SCRAM login, with TLS its key store's password)."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # A static quorum: the controller port may change between runs on the same data.
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(run / "data"),
        # One node: every internal topic has one replica and few partitions.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "num.partitions": "1",
        # Topics are created on purpose, so a typo fails instead of making a new topic.
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        # Small segments and short retention: test data is disposable.
        "log.segment.bytes": str(1024 * 1024),
        "log.retention.ms": str(60 * 60 * 1000),
        "log.retention.bytes": str(64 * 1024 * 1024),
        "log.retention.check.interval.ms": str(60 * 1000),
        "num.network.threads": "2",
        "num.io.threads": "2",
    }
    if sasl:
        settings.update(_sasl_settings(port, controller_port, tls_dir))
    path = run / "server.properties"
    passwords.write_private(path, "".join(f"{k}={v}\n" for k, v in settings.items()))
    return path


def _sasl_settings(port: int, controller_port: int, tls: Path | None) -> dict[str, str]:
    """The client (and inter-broker) listener with SCRAM-SHA-512 only: SASL_PLAINTEXT, or
    SASL_SSL with the key store in `tls` (the broker, as its own client, trusts the CA)."""
    user, password = kafka_security.credentials(security_dir(), kafka_security.ADMIN)
    mechanism = kafka_security.MECHANISM
    listener = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    settings = {
        "listeners": f"{listener}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"{listener}://127.0.0.1:{port}",
        "inter.broker.listener.name": listener,
        "listener.security.protocol.map": f"{listener}:{listener},CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": mechanism,
        "sasl.mechanism.inter.broker.protocol": mechanism,
        f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config": (
            kafka_security.jaas_config(user, password)
        ),
    }
    if tls:
        settings |= {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(tls / solr_tls.KEYSTORE_FILE),
            "ssl.keystore.password": solr_tls.keystore_password(tls),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(solr_tls.ca_file(tls)),
        }
    return settings


def _ensure_formatted(java: str, classpath: str, config: Path, data: Path, scram: list[str]) -> str:
    """The cluster id of the data directory, formatting it first when it is new (with the
    SCRAM users `scram` names: `--add-scram` values carry salted passwords only)."""
    meta = data / "meta.properties"
    if meta.exists():
        return _cluster_id(meta)
    cluster_id = new_cluster_id()
    argv = [
        java,
        *_JVM_OPTS,
        *_log_opts(),
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        cluster_id,
        "--config",
        str(config),
        *(part for value in scram for part in ("--add-scram", value)),
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise errors.LocalStackError(
            f"kafka storage format failed (exit {result.returncode}):\n"
            + _tail(result.stdout + result.stderr)
        )
    return cluster_id


def new_cluster_id() -> str:
    """A random cluster id in Kafka's form: a UUID as unpadded URL-safe base64."""
    while True:
        encoded = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # Kafka avoids ids that start with "-": they read as options on a command line.
        if not encoded.startswith("-"):
            return encoded


def _cluster_id(meta: Path) -> str:
    for line in meta.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id":
            return value.strip()
    raise errors.LocalStackError(f"{meta} has no cluster.id; delete {meta.parent} to reformat")


def _is_ready(port: int, bootstrap: str, client: Mapping[str, str]) -> bool:
    """True once the port accepts connections and the broker answers a metadata request."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    except OSError:
        return False
    try:
        metadata = _admin(bootstrap, client, quiet=True).list_topics(timeout=2)
    except confluent_kafka.KafkaException:
        return False
    return NODE_ID in metadata.brokers


# ---------------------------------------------------------------- topics


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    *,
    timeout: float = 30,
    client: Mapping[str, str] | None = None,
) -> None:
    """Create topic `name` with one replica per partition and wait until each has a leader.

    A topic that already exists with the same partition count is accepted, so this is
    safe to call again; one with another count is an error. `client`: extra librdkafka
    settings, such as a SASL login (`client_config`).
    """
    admin = _admin(bootstrap, client or {})
    futures = admin.create_topics(
        [cimpl.NewTopic(name, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        futures[name].result(timeout=timeout)
    except confluent_kafka.KafkaException as exc:
        if _error_code(exc) != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
            raise errors.EngineError(f"Kafka could not create topic {name!r}: {exc}") from exc
    except TimeoutError as exc:
        raise errors.EngineError(f"Kafka at {bootstrap} did not answer in {timeout:.0f}s") from exc
    _wait_for_leaders(admin, name, partitions, timeout)


def _wait_for_leaders(
    admin: kafka_admin.AdminClient, name: str, partitions: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            topic = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        except confluent_kafka.KafkaException as exc:
            raise errors.EngineError(f"Kafka could not describe topic {name!r}: {exc}") from exc
        if topic is not None and topic.error is None:
            if len(topic.partitions) != partitions:
                raise errors.EngineError(
                    f"Kafka topic {name!r} exists with {len(topic.partitions)} partitions, "
                    f"not {partitions}"
                )
            if all(p.leader >= 0 for p in topic.partitions.values()):
                return
        if time.monotonic() > deadline:
            raise errors.EngineError(f"Kafka topic {name!r} had no leaders after {timeout:.0f}s")
        time.sleep(0.1)


def _admin(
    bootstrap: str, client: Mapping[str, str], *, quiet: bool = False
) -> kafka_admin.AdminClient:
    config: dict[str, str | int | float | bool] = {**client, "bootstrap.servers": bootstrap}
    if quiet:
        # Readiness polls expect refused connections; librdkafka would log each one.
        config["log_level"] = 0
    return kafka_admin.AdminClient(config)


def _error_code(exc: confluent_kafka.KafkaException) -> int | None:
    error = exc.args[0] if exc.args else None
    return error.code() if isinstance(error, confluent_kafka.KafkaError) else None


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])
