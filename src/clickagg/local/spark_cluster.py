"""A Spark standalone cluster on loopback: one master and one worker per node host.

Local mode runs driver and tasks in one JVM, which hides serialisation, driver-only
assumptions and locality. This cluster runs the Master and two Workers as separate processes
from the PySpark distribution in the venv (`bin/spark-class`), the master on 127.0.0.1 and the
workers on `process.NODE_HOSTS` (127.0.0.2 and 127.0.0.3), so executors have the same distinct
hosts as the Solr nodes started with those addresses: a task that prefers 127.0.0.3 can run
NODE_LOCAL there. Each process is recorded like every other local engine (`process.start`),
so `clickagg local status/down` and the pytest fixtures find and stop it.

A driver joins with `session_conf(endpoints)`: one executor per worker, holding all its cores
and memory, and no task before every executor has registered; executors import clickagg
from this checkout.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from clickagg import errors
from clickagg.local import cache, maven, process

MASTER_NAME = "spark-master"
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding clickagg/
DEFAULT_MASTER_PORT = 7077
DEFAULT_MASTER_WEB_PORT = 8080
# Sized for a 2-core box that Solr shares: one core and 2 GB per worker, so each worker runs
# one executor and the two executors together leave Solr and the driver room.
DEFAULT_WORKER_CORES = 1
DEFAULT_WORKER_MEMORY = "2g"
# Heap of the Master and Worker daemons themselves (not executors): they only keep state.
DAEMON_MEMORY = "256m"
# As for Solr: the serial GC and C1 only start faster and compete less on 2 cores.
DAEMON_JAVA_OPTIONS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 20.0
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class Worker:
    """One worker: the loopback address it and its executors bind, and its web UI."""

    host: str
    web_url: str


@dataclass(frozen=True)
class SparkClusterEndpoints:
    """Where the standalone cluster answers, and what each worker offers."""

    master_url: str
    master_web_url: str
    workers: tuple[Worker, ...]
    worker_cores: int
    worker_memory: str

    @property
    def worker_hosts(self) -> tuple[str, ...]:
        return tuple(worker.host for worker in self.workers)

    def to_json(self) -> dict[str, Any]:
        return {
            "master_url": self.master_url,
            "master_web_url": self.master_web_url,
            "workers": [vars(worker) for worker in self.workers],
            "worker_cores": self.worker_cores,
            "worker_memory": self.worker_memory,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SparkClusterEndpoints:
        return cls(
            master_url=str(data["master_url"]),
            master_web_url=str(data["master_web_url"]),
            workers=tuple(Worker(str(w["host"]), str(w["web_url"])) for w in data["workers"]),
            worker_cores=int(data["worker_cores"]),
            worker_memory=str(data["worker_memory"]),
        )


def session_conf(endpoints: SparkClusterEndpoints) -> dict[str, str]:
    """Spark settings for a driver on this machine that runs its tasks on the cluster.

    One executor per worker with all of the worker's cores and memory; the scheduler waits
    until every executor has registered, so the first stage already sees both hosts (a task
    whose preferred host has no executor yet would run at once, ANY instead of NODE_LOCAL).
    """
    cores = endpoints.worker_cores * len(endpoints.workers)
    return {
        "spark.master": endpoints.master_url,
        "spark.driver.host": process.LOOPBACK,
        "spark.driver.bindAddress": process.LOOPBACK,
        "spark.cores.max": str(cores),
        "spark.executor.cores": str(endpoints.worker_cores),
        "spark.executor.memory": endpoints.worker_memory,
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "60s",
        # Executors start from the worker's environment, not the driver's: they import
        # clickagg from this checkout (an image installs it instead).
        "spark.executorEnv.PYTHONPATH": str(SOURCE_ROOT),
    }


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package (bin/, jars/)."""
    spec = importlib.util.find_spec("pyspark")
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise errors.ToolchainMissing("pyspark is not installed: run `make venv`")
    home = Path(next(iter(locations)))
    if not (home / "bin" / "spark-class").exists() or not (home / "jars").is_dir():
        raise errors.ToolchainMissing(f"{home} has no bin/spark-class or jars/: reinstall pyspark")
    return home


def up(
    master_port: int = DEFAULT_MASTER_PORT,
    master_web_port: int = DEFAULT_MASTER_WEB_PORT,
    *,
    worker_hosts: Sequence[str] = process.NODE_HOSTS,
    worker_web_ports: Sequence[int] | None = None,
    worker_cores: int = DEFAULT_WORKER_CORES,
    worker_memory: str = DEFAULT_WORKER_MEMORY,
) -> SparkClusterEndpoints:
    """Start the master and one worker per host, or return the cluster already running.

    `worker_web_ports` defaults to free ports; the workers' RPC ports are picked by Spark.
    """
    running = status()
    if running is not None:
        return running
    _check_sizes(worker_hosts, worker_cores, worker_memory)
    # Workers outlive a master that died; they would register with the new one as extras.
    for name in _worker_names_running():
        _progress(f"stopping {name}, left from a master that is gone")
        process.stop(name, grace=STOP_GRACE_S)
    web_ports = list(
        worker_web_ports
        or process.free_ports(len(worker_hosts), besides=[master_port, master_web_port])
    )
    _check_ports(master_port, master_web_port, worker_hosts, web_ports)
    home = spark_home()
    process.require_tool("java", maven.JDK_HINT)
    endpoints = SparkClusterEndpoints(
        master_url=f"spark://{process.LOOPBACK}:{master_port}",
        master_web_url=f"http://{process.LOOPBACK}:{master_web_port}",
        workers=tuple(
            Worker(host, f"http://{host}:{port}")
            for host, port in zip(worker_hosts, web_ports, strict=True)
        ),
        worker_cores=worker_cores,
        worker_memory=worker_memory,
    )
    started = time.monotonic()
    _progress(f"starting the master at {endpoints.master_url}")
    process.start(
        MASTER_NAME,
        [str(home / "bin" / "spark-class"), MASTER_CLASS,
         "--host", process.LOOPBACK, "--port", str(master_port),
         "--webui-port", str(master_web_port)],
        endpoints=endpoints.to_json(),
        ready=lambda: _master_state(endpoints) is not None,
        timeout=START_TIMEOUT_S,
        env={
            **_daemon_env(home, MASTER_NAME, process.LOOPBACK),
            # Its REST submission server would take the fixed port 6066; nothing submits there.
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
        },
    )  # fmt: skip
    # The workers start side by side: each waits mostly for its own JVM, and on a busy box
    # that halves the cluster's start-up.
    with futures.ThreadPoolExecutor(len(endpoints.workers)) as pool:
        starts = [
            pool.submit(_start_worker, home, endpoints, index, worker, port)
            for index, (worker, port) in enumerate(zip(endpoints.workers, web_ports, strict=True))
        ]
        failures = [start.exception() for start in starts]
    failure = next((failure for failure in failures if failure is not None), None)
    if failure is not None:
        down()
        raise failure
    _progress(
        f"cluster ready in {time.monotonic() - started:.1f}s: workers on "
        f"{', '.join(endpoints.worker_hosts)} ({worker_cores} core, {worker_memory} each)"
    )
    return endpoints


def down() -> bool:
    """Stop the workers, then the master; True if any of them ran."""
    stopped = [process.stop(name, grace=STOP_GRACE_S) for name in _worker_names_running()]
    stopped.append(process.stop(MASTER_NAME, grace=STOP_GRACE_S))
    if any(stopped):
        _progress("cluster stopped")
    return any(stopped)


def status() -> SparkClusterEndpoints | None:
    """The running cluster's endpoints (with only the workers that run), or None."""
    master = process.status(MASTER_NAME)
    if master is None:
        return None
    endpoints = SparkClusterEndpoints.from_json(master.endpoints)
    running = set(_worker_names_running())
    workers = tuple(w for i, w in enumerate(endpoints.workers) if _worker_name(i) in running)
    return SparkClusterEndpoints(
        endpoints.master_url, endpoints.master_web_url, workers,
        endpoints.worker_cores, endpoints.worker_memory,
    )  # fmt: skip


def process_names() -> list[str]:
    """The recorded names of the master and of the workers that run (for `process.status`)."""
    return [MASTER_NAME, *_worker_names_running()]


def alive_worker_hosts(endpoints: SparkClusterEndpoints) -> list[str]:
    """The hosts of the workers the master counts as ALIVE (empty if it does not answer)."""
    state = _master_state(endpoints)
    if state is None:
        return []
    return sorted(str(w["host"]) for w in state.get("workers", []) if w.get("state") == "ALIVE")


def _start_worker(
    home: Path, endpoints: SparkClusterEndpoints, index: int, worker: Worker, web_port: int
) -> None:
    name = _worker_name(index)
    run = cache.run_dir(name)
    # Each start gets an empty work dir: it keeps per-application executor logs.
    work = run / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    _progress(f"starting worker {index + 1} on {worker.host}")
    process.start(
        name,
        [str(home / "bin" / "spark-class"), WORKER_CLASS,
         "--host", worker.host, "--webui-port", str(web_port),
         "--cores", str(endpoints.worker_cores), "--memory", endpoints.worker_memory,
         "--work-dir", str(work), endpoints.master_url],
        endpoints={**vars(worker), "master_url": endpoints.master_url},
        ready=lambda: worker.host in alive_worker_hosts(endpoints),
        timeout=START_TIMEOUT_S,
        env=_daemon_env(home, name, worker.host),
    )  # fmt: skip


def _daemon_env(home: Path, name: str, host: str) -> dict[str, str]:
    run = cache.run_dir(name)
    local_dirs = run / "local"
    local_dirs.mkdir(exist_ok=True)
    conf_dir = run / "conf"
    conf_dir.mkdir(exist_ok=True)
    return {
        "SPARK_HOME": str(home),
        # Executors a worker launches inherit this: they bind and advertise the worker's host.
        "SPARK_LOCAL_IP": host,
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_DAEMON_JAVA_OPTS": DAEMON_JAVA_OPTIONS,
        # Shuffle and block files under the run dir, not in /tmp; no stray spark-env.sh.
        "SPARK_LOCAL_DIRS": str(local_dirs),
        "SPARK_CONF_DIR": str(conf_dir),
    }


def _master_state(endpoints: SparkClusterEndpoints) -> dict[str, Any] | None:
    """The master's JSON state once it is ALIVE, or None."""
    try:
        response = requests.get(f"{endpoints.master_web_url}/json/", timeout=2)
        state = response.json() if response.ok else None
    except (requests.RequestException, ValueError):
        return None
    if not isinstance(state, dict) or state.get("status") != "ALIVE":
        return None
    return state


def _worker_name(index: int) -> str:
    return f"spark-worker-{index + 1}"


def _worker_names_running() -> list[str]:
    """Names of the worker processes with a live state file, whatever their count."""
    base = cache.run_dir(MASTER_NAME).parent
    names = sorted(path.name for path in base.glob("spark-worker-*") if path.is_dir())
    return [name for name in names if process.status(name) is not None]


def _check_sizes(hosts: Sequence[str], cores: int, memory: str) -> None:
    if not hosts:
        raise errors.LocalStackError("a Spark cluster needs at least one worker host")
    if len(set(hosts)) != len(hosts):
        raise errors.LocalStackError(f"Spark worker hosts must differ: {list(hosts)}")
    for host in hosts:
        if not host.startswith("127."):
            raise errors.LocalStackError(f"Spark worker host {host!r} is not a loopback address")
    if cores < 1:
        raise errors.LocalStackError(f"Spark worker cores must be at least 1, not {cores}")
    if not (memory[:-1].isdigit() and memory[-1:].lower() in ("m", "g")):
        raise errors.LocalStackError(
            f"Spark worker memory {memory!r} is not a size like 512m or 2g"
        )


def _check_ports(
    master_port: int, web_port: int, hosts: Sequence[str], web_ports: Sequence[int]
) -> None:
    if len(web_ports) != len(hosts):
        raise errors.LocalStackError(
            f"{len(web_ports)} worker web ports for {len(hosts)} workers: {list(web_ports)}"
        )
    if master_port == web_port:
        raise errors.LocalStackError(f"Spark master and web UI ports must differ: {master_port}")
    process.ensure_ports_free({"Spark master": master_port, "Spark master web UI": web_port})
    for number, (host, port) in enumerate(zip(hosts, web_ports, strict=True), 1):
        process.ensure_ports_free({f"Spark worker {number} web UI": port}, host)


def _progress(message: str) -> None:
    print(f"[spark] {message}", file=sys.stderr, flush=True)
