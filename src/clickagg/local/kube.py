"""A real Kubernetes control plane on loopback (etcd + kube-apiserver), envtest-style.

The operator, the Helm chart and the CRDs are tested against a real API server rather
than a fake: real schema validation, real RBAC, real server-side dry run. There is no
kubelet and no controller-manager, so nothing here waits for pods, rollouts or
namespace deletion.
"""

from __future__ import annotations

import base64
import copy
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import dynamic
from kubernetes.client.exceptions import ApiException

from clickagg import errors
from clickagg.local import cache, gotools, process
from clickagg.local import pki as kube_pki

DEFAULT_ETCD_PORT = 2379
DEFAULT_APISERVER_PORT = 6443
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
CLUSTER_NAME = "clickagg-local"

_ETCD = "etcd"
_APISERVER = "kube-apiserver"
# Peer CRDs are megabytes of YAML: libyaml's safe loader parses them ~10x faster.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class KubeEndpoints:
    """How to reach the local API server: its URL, a kubeconfig, and the version it reports."""

    server: str
    kubeconfig: Path
    version: str


# ---------------------------------------------------------------- lifecycle


def up(
    *,
    etcd_port: int = DEFAULT_ETCD_PORT,
    apiserver_port: int = DEFAULT_APISERVER_PORT,
    timeout: float = 120,
) -> KubeEndpoints:
    """Start etcd and kube-apiserver (or find them running) and return the endpoints."""
    running = status()
    if running is not None:
        return running
    # Check every port before starting anything, so a taken port leaves nothing running.
    ports = {"kube-apiserver": apiserver_port}
    if process.status(_ETCD) is None:
        ports["etcd client"] = etcd_port
    process.ensure_ports_free(ports)
    apiserver_binary = gotools.ensure_kube_apiserver()  # may build; nothing runs meanwhile
    etcd_was_running = process.status(_ETCD) is not None
    etcd_url = _ensure_etcd(etcd_port, timeout)
    pki = kube_pki.ensure()
    server = f"https://127.0.0.1:{apiserver_port}"
    kubeconfig = write_kubeconfig(server, pki)
    started = time.monotonic()
    _progress(f"starting kube-apiserver {gotools.KUBERNETES_VERSION} on {server}")
    try:
        process.start(
            _APISERVER,
            _apiserver_argv(apiserver_binary, etcd_url, apiserver_port, pki),
            endpoints={"server": server, "kubeconfig": str(kubeconfig), "etcd": etcd_url},
            ready=lambda: _is_ready(server, pki),
            timeout=timeout,
        )
    except errors.LocalStackError:
        if not etcd_was_running:
            process.stop(_ETCD)  # leave nothing half-started behind
        raise
    version = _server_version(server, pki)
    _progress(f"kube-apiserver {version} ready in {time.monotonic() - started:.1f}s")
    return KubeEndpoints(server, kubeconfig, version)


def down() -> bool:
    """Stop kube-apiserver, then etcd. True if anything was running."""
    stopped_apiserver = process.stop(_APISERVER)
    stopped_etcd = process.stop(_ETCD)
    return stopped_apiserver or stopped_etcd


def status() -> KubeEndpoints | None:
    """The running control plane's endpoints, or None when the API server is not running."""
    apiserver = process.status(_APISERVER)
    if apiserver is None or process.status(_ETCD) is None:
        return None
    server = str(apiserver.endpoints["server"])
    pki = kube_pki.paths()
    try:
        version = _server_version(server, pki)
    except errors.KubeError:
        version = "unreachable"
    return KubeEndpoints(server, Path(apiserver.endpoints["kubeconfig"]), version)


def _progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _ensure_etcd(port: int, timeout: float) -> str:
    """The client URL of a running etcd, starting one when needed."""
    running = process.status(_ETCD)
    if running is not None:
        return str(running.endpoints["client_url"])
    binary = gotools.ensure_etcd()
    client_url = f"http://127.0.0.1:{port}"
    peer_url = f"http://127.0.0.1:{process.free_port()}"
    data_dir = cache.run_dir(_ETCD) / "data"
    argv = [
        str(binary),
        "--name=clickagg",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=clickagg={peer_url}",
        # Test data is disposable: skipping fsync makes etcd several times faster.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]
    started = time.monotonic()
    _progress(f"starting etcd {gotools.ETCD_VERSION} on {client_url}")
    process.start(
        _ETCD,
        argv,
        endpoints={"client_url": client_url},
        ready=lambda: _etcd_healthy(client_url),
        timeout=timeout,
    )
    _progress(f"etcd ready in {time.monotonic() - started:.1f}s")
    return client_url


def _etcd_healthy(client_url: str) -> bool:
    try:
        response = requests.get(f"{client_url}/health", timeout=2)
    except requests.RequestException:
        return False
    return response.ok and response.json().get("health") == "true"


def _apiserver_argv(binary: Path, etcd_url: str, port: int, pki: kube_pki.Pki) -> list[str]:
    cert_dir = cache.run_dir(_APISERVER) / "certs"
    cert_dir.mkdir(exist_ok=True)
    return [
        str(binary),
        f"--etcd-servers={etcd_url}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--secure-port={port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--authorization-mode=RBAC",
        # No controller-manager mints tokens, so pods must not require them.
        "--disable-admission-plugins=ServiceAccount",
        f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--allow-privileged=true",
        # Nothing serves the `kubernetes` Service on loopback; don't keep reconciling it.
        "--endpoint-reconciler-type=none",
        "--v=1",
    ]


# ---------------------------------------------------------------- HTTP probes


def _session(pki: kube_pki.Pki) -> requests.Session:
    session = requests.Session()
    # Ignore REQUESTS_CA_BUNDLE and proxies from the environment: they would override our CA.
    session.trust_env = False
    session.verify = str(pki.ca_cert)
    session.cert = (str(pki.admin_cert), str(pki.admin_key))
    return session


def _is_ready(server: str, pki: kube_pki.Pki) -> bool:
    try:
        with _session(pki) as session:
            response = session.get(f"{server}/readyz", timeout=2)
    except requests.RequestException:
        return False
    return response.status_code == 200 and response.text.strip() == "ok"


def _server_version(server: str, pki: kube_pki.Pki) -> str:
    try:
        with _session(pki) as session:
            response = session.get(f"{server}/version", timeout=5)
            response.raise_for_status()
    except requests.RequestException as exc:
        raise errors.KubeError(f"could not read {server}/version: {exc}") from exc
    return str(response.json()["gitVersion"])


# ---------------------------------------------------------------- kubeconfig


def write_kubeconfig(server: str, pki: kube_pki.Pki) -> Path:
    """A kubeconfig with embedded credentials that kubectl, helm, kopf and the client read."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": kube_pki.ADMIN_USER,
                "user": {
                    "client-certificate-data": b64(pki.admin_cert),
                    "client-key-data": b64(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": CLUSTER_NAME,
                "context": {
                    "cluster": CLUSTER_NAME,
                    "user": kube_pki.ADMIN_USER,
                    "namespace": "default",
                },
            }
        ],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    }
    path = cache.run_dir("kube") / "kubeconfig"
    kube_pki.write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
    return path


def user_kubeconfig(kubeconfig: Path, user: str, groups: Sequence[str] = ()) -> Path:
    """A copy of `kubeconfig` that signs in as another user, certified by the local CA."""
    config = yaml.safe_load(kubeconfig.read_text())
    cert, key = kube_pki.client_certificate(kubeconfig.parent / "pki", user, groups)
    config["users"] = [
        {
            "name": user,
            "user": {
                "client-certificate-data": base64.b64encode(cert).decode(),
                "client-key-data": base64.b64encode(key).decode(),
            },
        }
    ]
    config["contexts"][0]["context"]["user"] = user
    path = kubeconfig.with_name(f"{user}.kubeconfig")
    kube_pki.write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
    return path


def api_client(kubeconfig: Path) -> k8s_client.ApiClient:
    """A Python client bound to this kubeconfig (no global configuration is touched)."""
    client: k8s_client.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    return client


def dynamic_client(client: k8s_client.ApiClient) -> Any:
    """A dynamic client: plain dicts in and out, so any kind (and any CRD) can be sent as-is.

    The generated typed APIs re-validate bodies against their own models; CRDs and
    arbitrary manifests must reach the API server unchanged. Discovery is cached per stack.
    """
    cache_file = cache.run_dir("kube") / "discovery.json"
    return dynamic.DynamicClient(client, cache_file=str(cache_file))  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------- CRDs and namespaces


def apply_crds(kubeconfig: Path, paths: Iterable[Path], timeout: float = 60) -> list[str]:
    """Create or replace the CRDs in `paths` and wait until each is Established."""
    with api_client(kubeconfig) as client:
        crds = dynamic_client(client).resources.get(
            api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
        )
        docs = crd_documents(paths)
        names = [_create_or_replace_crd(crds, doc) for doc in docs]
        for name in names:
            _wait_established(crds, name, timeout)
        custom_objects = k8s_client.CustomObjectsApi(client)
        for doc in docs:
            _wait_servable(custom_objects, doc, timeout)
    return names


def crd_documents(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in the given YAML files."""
    docs: list[dict[str, Any]] = []
    for path in paths:
        for doc in yaml.load_all(path.read_text(), Loader=_YAML_LOADER):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                docs.append(doc)
    return docs


def _create_or_replace_crd(crds: Any, doc: dict[str, Any]) -> str:
    name = str(doc["metadata"]["name"])
    try:
        crds.create(body=doc)
    except ApiException as exc:
        if exc.status != 409:
            raise _kube_error(f"could not create CRD {name}", exc) from exc
        _replace_crd(crds, name, doc)
    return name


def _replace_crd(crds: Any, name: str, doc: dict[str, Any]) -> None:
    body = copy.deepcopy(doc)
    # Replace is optimistic: it must carry the resourceVersion it replaces.
    body["metadata"]["resourceVersion"] = crds.get(name=name).metadata.resourceVersion
    try:
        crds.replace(body=body)
    except ApiException as exc:
        raise _kube_error(f"could not replace CRD {name}", exc) from exc


def _wait_established(crds: Any, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = crds.get(name=name).to_dict().get("status") or {}
        conditions = status.get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise errors.KubeError(f"CRD {name} was not Established after {timeout:.0f}s")


def _wait_servable(
    custom_objects: k8s_client.CustomObjectsApi, doc: dict[str, Any], timeout: float
) -> None:
    """Wait until the new resource can be listed.

    Established comes before the watch cache is ready: for a moment a LIST answers
    429 "storage is (re)initializing", which kopf and the tests would trip over.
    """
    spec = doc["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("served", True))
    deadline = time.monotonic() + timeout
    while True:
        try:
            custom_objects.list_cluster_custom_object(
                spec["group"], version, spec["names"]["plural"], limit=1
            )
            return
        except ApiException as exc:
            if exc.status not in (404, 429, 503) or time.monotonic() > deadline:
                raise _kube_error(f"CRD {doc['metadata']['name']} is not servable", exc) from exc
        time.sleep(0.2)


def _kube_error(what: str, exc: ApiException) -> errors.KubeError:
    return errors.KubeError(f"{what}: {exc.status} {exc.reason}: {exc.body}")


def create_namespace(kubeconfig: Path, name: str) -> None:
    """Create a namespace; an existing one is fine."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    with api_client(kubeconfig) as client:
        namespaces = dynamic_client(client).resources.get(api_version="v1", kind="Namespace")
        try:
            namespaces.create(body=body)
        except ApiException as exc:
            if exc.status != 409:
                raise _kube_error(f"could not create namespace {name}", exc) from exc


# ---------------------------------------------------------------- helm


def helm(
    kubeconfig: Path, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the cached helm against this kubeconfig, keeping helm's state out of $HOME."""
    helm_home = cache.run_dir("helm")
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "HELM_CACHE_HOME": str(helm_home / "cache"),
        "HELM_CONFIG_HOME": str(helm_home / "config"),
        "HELM_DATA_HOME": str(helm_home / "data"),
    }
    result = subprocess.run(
        [str(gotools.ensure_helm()), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise errors.KubeError(
            f"helm {' '.join(args)} failed (exit {result.returncode}):\n{result.stderr}"
        )
    return result


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run kubectl (at the API server's version) against this kubeconfig; the caller reads
    the exit code, since a refused apply is often what is being checked."""
    return subprocess.run(
        [str(gotools.ensure_kubectl()), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def crd_files(directories: Sequence[Path]) -> list[Path]:
    """Every *.yaml file in the given directories that exist, sorted for stable order."""
    return sorted(p for d in directories if d.is_dir() for p in d.glob("*.yaml"))
