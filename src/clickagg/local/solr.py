"""Build and run clickagg's local SolrCloud: an embedded ZooKeeper and two Solr nodes.

Maven Central has no Solr 9 server distribution, so the cluster is a one-class Java launcher
over solr-test-framework (kept in solr_launcher/). `install()` compiles it once into the cache,
keyed by a hash of its sources; `up()` runs it as a detached process that `status()` finds and
`down()` stops, from this process or any other (the CLI and the pytest fixtures share it).

Each node listens on its own loopback address (`hosts`, 127.0.0.1 for all by default): with
`process.NODE_HOSTS` (127.0.0.2 and 127.0.0.3) the shards of a collection have two real,
distinct hosts in the cluster state, as on two machines. ZooKeeper stays on 127.0.0.1.

For fault tests the launcher also listens on a loopback control port: `stop_node(i)` stops
node i (`SolrEndpoints.node_urls[i]`) while ZooKeeper and the other node keep running, and
`start_node(i)` brings it back on the same port with its cores.

For crash tests, `start_joined_node` runs one more node in its own JVM, joined to the
running cluster's ZooKeeper, so `kill_joined_node` can SIGKILL it while ZooKeeper and the
other nodes keep running; starting it again on the same port brings its cores back.

`up(auth=True)` starts the cluster with BasicAuth and rule-based authorization
(`solr_security`): fresh passwords per role, kept 0600 in the run dir, read with
`credentials(role)`. `up(tls=True)` serves https only, with a fresh CA and a serving
certificate for the node hosts (`solr_tls`), kept 0600 in the run dir; clients verify with
`ca_file()` (`tls_env()` names it in the environment). The two combine. `instance` names a
second cluster with its own run dir (tests start an authenticated one next to the session's
plain one).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickagg import errors
from clickagg.local import cache, maven, process, solr_security, solr_tls
from clickagg.store import credentials as store_credentials

SOLR_VERSION = "9.10.1"
PROCESS_NAME = "solr"
LAUNCHER_SOURCES = Path(__file__).parent / "solr_launcher"
LAUNCHER_MAIN = "io.clickagg.local.SolrCloudLauncher"
READY_PATTERN = r"CLICKAGG-SOLR-READY"
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 30.0
# ZooKeeper's chroot in MiniSolrCloudCluster; clients need it in their zkHost string.
ZK_CHROOT = "/solr"
# A shared 2-core box: a small heap, the serial GC, and C1 only (about 1 s faster to start,
# less CPU spent compiling). $CLICKAGG_SOLR_JAVA_OPTS replaces them.
DEFAULT_JVM_OPTIONS = ("-Xmx1g", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
# The launcher waits up to 120 s for a node to (re)join live_nodes; these cover that and more.
NODE_STOP_TIMEOUT_S = 90.0
NODE_START_TIMEOUT_S = 180.0
JDK_HINT = maven.JDK_HINT


@dataclass(frozen=True)
class SolrEndpoints:
    """Where the local SolrCloud answers.

    `zk_host` includes the chroot, as Solr clients expect it (127.0.0.1:9983/solr).
    `node_urls[i]` is node i of `stop_node(i)` / `start_node(i)`; `control_port` is the
    launcher's loopback control port (None for a cluster started without one); `auth` is
    True when every request needs credentials (`credentials(role)`); `tls` when the nodes
    serve https only (verify with `ca_file()`).
    """

    zk_host: str
    node_urls: tuple[str, ...]
    control_port: int | None = None
    auth: bool = False
    tls: bool = False

    @property
    def base_url(self) -> str:
        """The first node's URL; any node serves every collection."""
        return self.node_urls[0]

    def node_url(self, index: int) -> str:
        """Node `index`'s base URL (http://host:port/solr, https with TLS)."""
        return self.node_urls[self._checked(index)]

    def node_name(self, index: int) -> str:
        """Node `index`'s name in live_nodes and replica `node_name`s (host:port_solr)."""
        url = urllib.parse.urlsplit(self.node_url(index))
        return f"{url.netloc}_{url.path.lstrip('/').replace('/', '%2F')}"

    def _checked(self, index: int) -> int:
        if not 0 <= index < len(self.node_urls):
            raise errors.LocalStackError(
                f"no Solr node {index}: nodes are 0..{len(self.node_urls) - 1}"
            )
        return index

    @property
    def node_hosts(self) -> tuple[str, ...]:
        """Each node's address, in node order."""
        return tuple(str(urllib.parse.urlsplit(url).hostname) for url in self.node_urls)

    @classmethod
    def for_ports(
        cls,
        zk_port: int,
        ports: Sequence[int],
        control_port: int | None = None,
        hosts: Sequence[str] | None = None,
        auth: bool = False,
        tls: bool = False,
    ) -> SolrEndpoints:
        node_hosts = _node_hosts(hosts, len(ports))
        scheme = "https" if tls else "http"
        urls = tuple(
            f"{scheme}://{host}:{port}/solr" for host, port in zip(node_hosts, ports, strict=True)
        )
        return cls(
            zk_host=f"{process.LOOPBACK}:{zk_port}{ZK_CHROOT}",
            node_urls=urls,
            control_port=control_port,
            auth=auth,
            tls=tls,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "zk_host": self.zk_host,
            "node_urls": list(self.node_urls),
            "base_url": self.base_url,
            "control_port": self.control_port,
            "auth": self.auth,
            "tls": self.tls,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SolrEndpoints:
        # State written before the control channel existed has no control_port.
        control_port = data.get("control_port")
        return cls(
            zk_host=str(data["zk_host"]),
            node_urls=tuple(data["node_urls"]),
            control_port=None if control_port is None else int(control_port),
            auth=bool(data.get("auth", False)),
            tls=bool(data.get("tls", False)),
        )


def install() -> maven.Build:
    """Compile the launcher into the cache (first run only: Maven resolves ~100 MB of jars)."""
    java_tools()
    return maven.build(f"solr-launcher-{SOLR_VERSION}", LAUNCHER_SOURCES, compile_sources=True)


def up(
    zk_port: int = 9983,
    ports: Sequence[int] = (8983, 8984),
    control_port: int = 0,
    hosts: Sequence[str] | None = None,
    *,
    auth: bool = False,
    tls: bool = False,
    instance: str = PROCESS_NAME,
    spare_hosts: Sequence[str] = (),
) -> SolrEndpoints:
    """Start the cluster, or return the one already running (whatever its ports and hosts).

    `hosts[i]` is node i's loopback address (default 127.0.0.1 for every node);
    `control_port` 0 picks a free loopback port for the node control channel. With `auth`,
    every request needs a user's credentials (new passwords each start; `credentials`).
    With `tls`, the nodes serve https only, with a new CA each start (`ca_file`); its serving
    certificate also names `spare_hosts`, for a node joined later (`start_joined_node`).
    A running cluster started without `auth` or `tls` is not changed by asking for it: stop
    it first.
    """
    running = status(instance)
    if running is not None:
        if auth and not running.auth:
            raise errors.LocalStackError(
                "the local SolrCloud already runs without authentication: stop it "
                "(`clickagg local down`) and start it again with --solr-auth"
            )
        if tls and not running.tls:
            raise errors.LocalStackError(
                "the local SolrCloud already runs without TLS: stop it "
                "(`clickagg local down`) and start it again with --solr-tls"
            )
        return running
    node_hosts = _node_hosts(hosts, len(ports))
    if control_port == 0:
        (control_port,) = process.free_ports(1, besides=[zk_port, *ports])
    _check_ports(zk_port, ports, control_port, node_hosts)
    build = install()
    java, _ = java_tools()
    endpoints = SolrEndpoints.for_ports(zk_port, ports, control_port, node_hosts, auth, tls)
    data_dir = _fresh_data_dir(instance)
    security = _fresh_security(instance, auth)
    tls_dir = _fresh_tls(instance, tls, [*node_hosts, *spare_hosts])
    argv = [
        java, *_jvm_options(), "-cp", build.classpath(), LAUNCHER_MAIN,
        "--zk-port", str(zk_port),
        "--ports", ",".join(str(port) for port in ports),
        "--hosts", ",".join(node_hosts),
        "--dir", str(data_dir),
        "--control-port", str(control_port),
        *(["--security-json", str(security)] if security else []),
        *(["--tls-dir", str(tls_dir)] if tls_dir else []),
    ]  # fmt: skip
    nodes = [f"{host}:{port}" for host, port in zip(node_hosts, ports, strict=True)]
    features = " and ".join(name for name, on in (("BasicAuth", auth), ("TLS", tls)) if on)
    with_features = f" with {features}" if features else ""
    _progress(f"starting SolrCloud{with_features}: ZooKeeper on {zk_port}, nodes on {nodes}")
    started = time.monotonic()
    process.start(
        instance,
        argv,
        endpoints=endpoints.to_json(),
        ready=READY_PATTERN,
        timeout=START_TIMEOUT_S,
    )
    _progress(f"SolrCloud ready in {time.monotonic() - started:.1f}s at {endpoints.base_url}")
    if security:
        _progress(f"Solr users and passwords (owner-only): {security.parent}")
    if tls_dir:
        _progress(f"Solr CA certificate (${store_credentials.CA_FILE_ENV}): {ca_file(instance)}")
    return endpoints


def down(instance: str = PROCESS_NAME) -> bool:
    """Stop the cluster; True if one was running. Its data, passwords and keys go with it."""
    stopped = process.stop(instance, grace=STOP_GRACE_S)
    shutil.rmtree(_auth_dir(instance), ignore_errors=True)
    shutil.rmtree(_tls_dir(instance), ignore_errors=True)
    if stopped:
        _progress("SolrCloud stopped")
    return stopped


def status(instance: str = PROCESS_NAME) -> SolrEndpoints | None:
    """The running cluster's endpoints, or None."""
    running = process.status(instance)
    if running is None:
        return None
    return SolrEndpoints.from_json(running.endpoints)


def credentials(role: str, instance: str = PROCESS_NAME) -> tuple[str, str]:
    """(user, password) of `role` (operator, jobs, query) on a cluster started with auth."""
    return solr_security.credentials(_auth_dir(instance), role)


def credentials_env(role: str, instance: str = PROCESS_NAME) -> dict[str, str]:
    """Environment that makes a Solr client use `role`'s credentials: the user and the path
    of its password file (`store.credentials`), never the password itself."""
    user, _ = credentials(role, instance)
    return {
        store_credentials.USERNAME_ENV: user,
        store_credentials.PASSWORD_FILE_ENV: str(
            solr_security.password_file(_auth_dir(instance), role)
        ),
    }


def ca_file(instance: str = PROCESS_NAME) -> Path:
    """The CA certificate (PEM) of a cluster started with TLS, what its clients verify with."""
    path = solr_tls.ca_file(_tls_dir(instance))
    if not path.is_file():
        raise errors.LocalStackError(
            f"no Solr CA certificate in {path.parent}: start the SolrCloud with TLS "
            "(`clickagg local up --solr --solr-tls`)"
        )
    return path


def tls_env(instance: str = PROCESS_NAME) -> dict[str, str]:
    """Environment that makes a Solr client trust a TLS cluster's CA (`store.credentials`)."""
    return {store_credentials.CA_FILE_ENV: str(ca_file(instance))}


def tls_dir(instance: str = PROCESS_NAME) -> Path:
    """Where a cluster started with TLS keeps its CA, key store and trust store (0600)."""
    return _tls_dir(instance)


def credentials_file(instance: str = PROCESS_NAME) -> Path:
    """Where a cluster started with auth keeps its users and passwords (0600)."""
    return _auth_dir(instance) / solr_security.CREDENTIALS_FILE


def stop_node(index: int, instance: str = PROCESS_NAME) -> None:
    """Stop Solr node `index` (`node_urls[index]`); returns once it left ZooKeeper's live_nodes.

    ZooKeeper and the other node keep running; the node's cores stay on disk for `start_node`.
    """
    started = time.monotonic()
    answer = _control(f"stop {index}", NODE_STOP_TIMEOUT_S, instance)
    _progress(f"node {index} stopped in {time.monotonic() - started:.1f}s ({answer})")


def start_node(index: int, instance: str = PROCESS_NAME) -> None:
    """Start stopped node `index` again on its port; returns once it is live in ZooKeeper.

    Its replicas come back too, but may still be recovering: wait for them to be active.
    """
    started = time.monotonic()
    answer = _control(f"start {index}", NODE_START_TIMEOUT_S, instance)
    _progress(f"node {index} started in {time.monotonic() - started:.1f}s ({answer})")


def start_joined_node(
    zk_host: str, host: str, port: int, instance: str, *, tls_dir: Path | None = None
) -> str:
    """Start one Solr node in its own JVM on host:port, joined to the ZooKeeper at `zk_host`
    (with its chroot, `SolrEndpoints.zk_host`); its URL once it is live. A cluster with TLS
    needs its `tls_dir(...)` here (started with `host` among its `spare_hosts`); one with
    auth needs nothing more: the node reads security.json from ZooKeeper.

    Its solr home stays in `instance`'s run dir until `stop_joined_node`: starting it again
    after `kill_joined_node` brings its cores back, as a restarted Solr pod would.
    """
    build = install()
    java, _ = java_tools()
    process.ensure_ports_free({"Solr node": port}, host)
    url = f"{'https' if tls_dir else 'http'}://{host}:{port}/solr"
    argv = [
        java, *_jvm_options(), "-cp", build.classpath(), LAUNCHER_MAIN,
        "--zk-host", zk_host,
        "--ports", str(port),
        "--hosts", host,
        "--dir", str(cache.run_dir(instance) / "data"),
        *(["--tls-dir", str(tls_dir)] if tls_dir else []),
    ]  # fmt: skip
    started = time.monotonic()
    process.start(
        instance,
        argv,
        endpoints={"node_url": url, "zk_host": zk_host},
        ready=READY_PATTERN,
        timeout=NODE_START_TIMEOUT_S,
    )
    _progress(f"joined node {url} live in {time.monotonic() - started:.1f}s")
    return url


def kill_joined_node(instance: str) -> None:
    """SIGKILL the joined node's JVM: no clean close of its cores or its ZooKeeper session."""
    if not process.kill(instance):
        raise errors.LocalStackError(f"no joined Solr node {instance!r} is running")
    _progress(f"joined node {instance} killed (SIGKILL)")


def stop_joined_node(instance: str) -> None:
    """Stop the joined node cleanly (if it runs) and forget its solr home."""
    process.stop(instance, grace=STOP_GRACE_S)
    shutil.rmtree(cache.run_dir(instance) / "data", ignore_errors=True)


def node_states(instance: str = PROCESS_NAME) -> dict[int, str]:
    """Each node's state as the launcher sees it: {0: "running", 1: "stopped"}."""
    answer = _control("status", 10.0, instance)
    states: dict[int, str] = {}
    for field in answer.split():
        index, _, state = field.partition("=")
        states[int(index)] = state
    return states


def _control(command: str, timeout: float, instance: str) -> str:
    """Send one command to the launcher's control port; its `ok` answer without the `ok`."""
    endpoints = status(instance)
    if endpoints is None:
        raise errors.LocalStackError("the local SolrCloud is not running")
    if endpoints.control_port is None:
        raise errors.LocalStackError(
            "the running SolrCloud has no control port (started by an older clickagg): "
            "restart it with `clickagg local down` and `clickagg local up --solr`"
        )
    address = (process.LOOPBACK, endpoints.control_port)
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(f"{command}\n".encode())
            with sock.makefile("r", encoding="utf-8", newline="\n") as reader:
                answer = reader.readline().strip()
    except OSError as exc:  # includes TimeoutError
        raise errors.LocalStackError(
            f"Solr control '{command}' on {address[0]}:{address[1]} failed: {exc!r}"
        ) from exc
    verdict, _, detail = answer.partition(" ")
    if verdict == "ok":
        return detail
    if verdict == "error":
        raise errors.LocalStackError(f"Solr control '{command}' failed: {detail}")
    raise errors.LocalStackError(f"Solr control '{command}': unexpected answer {answer!r}")


def java_tools() -> tuple[str, str]:
    """The paths of java and javac, or ToolchainMissing."""
    return process.require_tool("java", JDK_HINT), process.require_tool("javac", JDK_HINT)


def _node_hosts(hosts: Sequence[str] | None, count: int) -> tuple[str, ...]:
    """One loopback address per node: `hosts` checked, or 127.0.0.1 for every node."""
    if hosts is None:
        return (process.LOOPBACK,) * count
    if len(hosts) != count:
        raise errors.LocalStackError(
            f"Solr hosts name {len(hosts)} addresses for {count} nodes: {list(hosts)}"
        )
    for host in hosts:
        if not host.startswith("127."):
            raise errors.LocalStackError(f"Solr host {host!r} is not a loopback address (127.x)")
    return tuple(hosts)


def _check_ports(
    zk_port: int, ports: Sequence[int], control_port: int, hosts: Sequence[str]
) -> None:
    wanted = [zk_port, *ports, control_port]
    if len(set(wanted)) != len(wanted):
        raise errors.LocalStackError(f"ZooKeeper, Solr and control ports must all differ: {wanted}")
    by_host: dict[str, dict[str, int]] = {
        process.LOOPBACK: {"ZooKeeper": zk_port, "Solr control": control_port}
    }
    for number, (host, port) in enumerate(zip(hosts, ports, strict=True), 1):
        by_host.setdefault(host, {})[f"Solr node {number}"] = port
    for host, named in by_host.items():
        process.ensure_ports_free(named, host)


def _fresh_data_dir(instance: str) -> Path:
    # The launcher starts an empty cluster; yesterday's cores would not match a new ZooKeeper.
    data_dir = cache.run_dir(instance) / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    return data_dir


def _auth_dir(instance: str) -> Path:
    return cache.run_dir(instance) / "auth"


def _tls_dir(instance: str) -> Path:
    return cache.run_dir(instance) / "tls"


def _fresh_tls(instance: str, tls: bool, hosts: Sequence[str]) -> Path | None:
    """A new CA, certificate and stores for a cluster with `tls`; None (none kept) without."""
    shutil.rmtree(_tls_dir(instance), ignore_errors=True)
    return solr_tls.create(_tls_dir(instance), hosts) if tls else None


def _fresh_security(instance: str, auth: bool) -> Path | None:
    """New passwords and security.json for a cluster with `auth`; None (and none kept) without."""
    shutil.rmtree(_auth_dir(instance), ignore_errors=True)
    return solr_security.create(_auth_dir(instance)) if auth else None


def _jvm_options() -> list[str]:
    custom = os.environ.get("CLICKAGG_SOLR_JAVA_OPTS")
    return shlex.split(custom) if custom else list(DEFAULT_JVM_OPTIONS)


def _progress(message: str) -> None:
    print(f"[solr] {message}", file=sys.stderr, flush=True)
