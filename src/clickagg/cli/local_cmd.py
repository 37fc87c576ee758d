"""`clickagg local ...`: build, start, inspect and stop the real local engines."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from clickagg import errors

if TYPE_CHECKING:
    from clickagg.local.spark_cluster import SparkClusterEndpoints

# Engine modules import heavy clients; they load only when a command needs them, so
# `clickagg validate` starts fast.

app = typer.Typer(
    help="The local stack: SolrCloud, Kubernetes API, Kafka, a Spark standalone cluster.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

SolrFlag = Annotated[bool, typer.Option("--solr", help="SolrCloud 9.10.1, 2 nodes + ZooKeeper.")]
KubeFlag = Annotated[bool, typer.Option("--k8s", help="kube-apiserver 1.36 + etcd 3.6.")]
KafkaFlag = Annotated[bool, typer.Option("--kafka", help="Kafka in KRaft mode.")]
SparkClusterFlag = Annotated[
    bool,
    typer.Option(
        "--spark-cluster",
        help="Spark standalone: a master on 127.0.0.1, workers on 127.0.0.2 and 127.0.0.3 "
        "(only when asked: it is not part of 'every engine').",
    ),
]
SolrHostsOption = Annotated[
    str | None,
    typer.Option(
        "--solr-hosts",
        help="Comma-separated loopback address per Solr node, e.g. 127.0.0.2,127.0.0.3 "
        "(the two-host layout); default 127.0.0.1 for both.",
    ),
]
SolrAuthFlag = Annotated[
    bool,
    typer.Option(
        "--solr-auth",
        help="SolrCloud with BasicAuth and rule-based authorization: users clickagg-operator, "
        "clickagg-jobs and clickagg-query with new passwords, kept owner-only in the run dir "
        "(never printed).",
    ),
]
SolrTlsFlag = Annotated[
    bool,
    typer.Option(
        "--solr-tls",
        help="SolrCloud serving https only, with a new CA and a certificate for the node hosts; "
        "clients verify with the CA file it prints ($CLICKAGG_SOLR_CA_FILE). Combines with "
        "--solr-auth.",
    ),
]
KafkaSaslFlag = Annotated[
    bool,
    typer.Option(
        "--kafka-sasl",
        help="Kafka with SASL/SCRAM-SHA-512 only (a new data directory): users clickagg-admin "
        "and clickagg-jobs with new passwords, kept owner-only in the run dir (never printed).",
    ),
]
KafkaTlsFlag = Annotated[
    bool,
    typer.Option(
        "--kafka-tls",
        help="With --kafka-sasl: the listener is SASL_SSL, with a new CA and a certificate for "
        "127.0.0.1; clients verify with the CA file it prints ($CLICKAGG_KAFKA_CA_FILE).",
    ),
]
WorkerCoresOption = Annotated[
    int | None,
    typer.Option("--worker-cores", help="Cores each Spark worker offers [default: 1].", min=1),
]
WorkerMemoryOption = Annotated[
    str | None,
    typer.Option("--worker-memory", help="Memory each Spark worker offers [default: 2g]."),
]


def _chosen(solr_on: bool, k8s_on: bool, kafka_on: bool) -> tuple[bool, bool, bool]:
    """No flag means every part."""
    if not (solr_on or k8s_on or kafka_on):
        return True, True, True
    return solr_on, k8s_on, kafka_on


@app.command()
def install(
    solr_on: SolrFlag = False, k8s_on: KubeFlag = False, kafka_on: KafkaFlag = False
) -> None:
    """Build or find every engine in the cache (Maven jars, Go-built binaries)."""
    solr_on, k8s_on, kafka_on = _chosen(solr_on, k8s_on, kafka_on)
    from clickagg.local import gotools, kafka, sessionizer, solr

    started = time.monotonic()
    try:
        if solr_on:
            solr.install()
            # The streaming job's own operator; like the Solr launcher, Maven-built.
            console.print(f"JVM sessionizer: {sessionizer.jar()}")
        if k8s_on:
            gotools.ensure_all()
        if kafka_on:
            kafka.install()
    except errors.LocalStackError as exc:
        err.print(f"[red]install failed:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"engines ready in {time.monotonic() - started:.1f}s")


@app.command()
def up(
    solr_on: SolrFlag = False,
    k8s_on: KubeFlag = False,
    kafka_on: KafkaFlag = False,
    spark_cluster_on: SparkClusterFlag = False,
    solr_hosts: SolrHostsOption = None,
    solr_auth: SolrAuthFlag = False,
    solr_tls: SolrTlsFlag = False,
    kafka_sasl: KafkaSaslFlag = False,
    kafka_tls: KafkaTlsFlag = False,
    worker_cores: WorkerCoresOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Start the chosen engines on loopback and print endpoints.

    No engine flag starts SolrCloud, the Kubernetes API and Kafka; --spark-cluster alone
    starts only the Spark cluster.
    """
    from clickagg.local import kafka, kube, solr, spark_cluster

    if spark_cluster_on and not (solr_on or k8s_on or kafka_on):
        solr_on = k8s_on = kafka_on = False
    else:
        solr_on, k8s_on, kafka_on = _chosen(solr_on, k8s_on, kafka_on)
    try:
        if solr_on:
            hosts = [host.strip() for host in solr_hosts.split(",")] if solr_hosts else None
            solr.up(hosts=hosts, auth=solr_auth, tls=solr_tls)
            if solr_auth:
                console.print(f"solr credentials (0600): {solr.credentials_file()}")
            if solr_tls:
                console.print(f"solr CA certificate: {solr.ca_file()}")
        if k8s_on:
            kube.up()
        if kafka_on:
            endpoints = kafka.up(sasl=kafka_sasl, tls=kafka_tls)
            if kafka_sasl:
                console.print(f"kafka credentials (0600): {kafka.security_dir()}")
            if endpoints.ca_file:
                console.print(f"kafka CA certificate: {endpoints.ca_file}")
        if spark_cluster_on:
            spark_cluster.up(
                worker_cores=worker_cores or spark_cluster.DEFAULT_WORKER_CORES,
                worker_memory=worker_memory or spark_cluster.DEFAULT_WORKER_MEMORY,
            )
    except errors.LocalStackError as exc:
        err.print(f"[red]local up failed:[/red] {exc}")
        raise typer.Exit(1) from None
    status()


@app.command()
def down() -> None:
    """Stop every local engine that runs."""
    from clickagg.local import kafka, kube, solr, spark_cluster

    engines = (
        ("solr", solr.down),
        ("kubernetes", kube.down),
        ("kafka", kafka.down),
        ("spark cluster", spark_cluster.down),
    )
    for name, stop in engines:
        console.print(f"{name}: {'stopped' if stop() else 'was not running'}")


@app.command()
def status() -> None:
    """Print each engine's endpoints and health."""
    from clickagg.local import kafka, kube, solr, spark_cluster

    solr_state = solr.status()
    console.print(f"solr:       {_describe(solr_state)}")
    kube_state = kube.status()
    console.print(f"kubernetes: {_describe(kube_state)}")
    kafka_state = kafka.status()
    console.print(f"kafka:      {_describe(kafka_state)}")
    cluster = spark_cluster.status()
    alive = spark_cluster.alive_worker_hosts(cluster) if cluster is not None else []
    console.print(f"spark:      {_describe_spark_cluster(cluster, alive)}")


def _describe_spark_cluster(state: SparkClusterEndpoints | None, alive: list[str]) -> str:
    if state is None:
        return "[yellow]down[/yellow]"
    workers = " ".join(
        f"{worker.host}({'ALIVE' if worker.host in alive else 'not registered'}, {worker.web_url})"
        for worker in state.workers
    )
    return (
        f"[green]up[/green] master_url={state.master_url} master_web_url={state.master_web_url} "
        f"workers={workers or 'none'} per_worker={state.worker_cores}core/{state.worker_memory}"
    )


def _describe(state: object | None) -> str:
    if state is None:
        return "[yellow]down[/yellow]"
    fields = getattr(state, "__dataclass_fields__", {})
    return "[green]up[/green] " + " ".join(f"{k}={getattr(state, k)}" for k in fields)
