"""`clickagg local ...`: build, start, inspect and stop the real local engines."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from clickagg import errors

# Engine modules import heavy clients; they load only when a command needs them, so
# `clickagg validate` starts fast.

app = typer.Typer(help="The local stack: SolrCloud, Kubernetes API, Kafka.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

SolrFlag = Annotated[bool, typer.Option("--solr", help="SolrCloud 9.10.1, 2 nodes + ZooKeeper.")]
KubeFlag = Annotated[bool, typer.Option("--k8s", help="kube-apiserver 1.36 + etcd 3.6.")]
KafkaFlag = Annotated[bool, typer.Option("--kafka", help="Kafka in KRaft mode.")]


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
def up(solr_on: SolrFlag = False, k8s_on: KubeFlag = False, kafka_on: KafkaFlag = False) -> None:
    """Start the chosen engines on loopback (all when no flag is given) and print endpoints."""
    from clickagg.local import kafka, kube, solr

    solr_on, k8s_on, kafka_on = _chosen(solr_on, k8s_on, kafka_on)
    try:
        if solr_on:
            solr.up()
        if k8s_on:
            kube.up()
        if kafka_on:
            kafka.up()
    except errors.LocalStackError as exc:
        err.print(f"[red]local up failed:[/red] {exc}")
        raise typer.Exit(1) from None
    status()


@app.command()
def down() -> None:
    """Stop every local engine that runs."""
    from clickagg.local import kafka, kube, solr

    for name, stop in (("solr", solr.down), ("kubernetes", kube.down), ("kafka", kafka.down)):
        console.print(f"{name}: {'stopped' if stop() else 'was not running'}")


@app.command()
def status() -> None:
    """Print each engine's endpoints and health."""
    from clickagg.local import kafka, kube, solr

    solr_state = solr.status()
    console.print(f"solr:       {_describe(solr_state)}")
    kube_state = kube.status()
    console.print(f"kubernetes: {_describe(kube_state)}")
    kafka_state = kafka.status()
    console.print(f"kafka:      {_describe(kafka_state)}")


def _describe(state: object | None) -> str:
    if state is None:
        return "[yellow]down[/yellow]"
    fields = getattr(state, "__dataclass_fields__", {})
    return "[green]up[/green] " + " ".join(f"{k}={getattr(state, k)}" for k in fields)
