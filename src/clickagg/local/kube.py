"""A real Kubernetes control plane on loopback (etcd + kube-apiserver), envtest-style.

The operator, the Helm chart and the CRDs are tested against a real API server rather
than a fake: real schema validation, real RBAC, real server-side dry run. There is no
kubelet and no controller-manager, so nothing here waits for pods, rollouts or
namespace deletion.
"""

from __future__ import annotations

import base64
import copy
import datetime
import ipaddress
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
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import dynamic
from kubernetes.client.exceptions import ApiException

from clickagg import errors
from clickagg.local import cache, gotools, process

DEFAULT_ETCD_PORT = 2379
DEFAULT_APISERVER_PORT = 6443
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
# The first address of the service range is the `kubernetes` Service's ClusterIP.
KUBERNETES_SERVICE_IP = "10.0.0.1"
CLUSTER_NAME = "clickagg-local"
ADMIN_USER = "clickagg-admin"

_ETCD = "etcd"
_APISERVER = "kube-apiserver"
# Peer CRDs are megabytes of YAML: libyaml's safe loader parses them ~10x faster.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CERT_VALIDITY = datetime.timedelta(days=365)
# Regenerate certificates this long before they expire, so a running stack never expires.
_CERT_RENEW_MARGIN = datetime.timedelta(days=7)


@dataclass(frozen=True)
class KubeEndpoints:
    """How to reach the local API server: its URL, a kubeconfig, and the version it reports."""

    server: str
    kubeconfig: Path
    version: str


@dataclass(frozen=True)
class Pki:
    """Paths of the generated certificates and keys."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


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
    pki = ensure_pki()
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
    pki = _pki_paths()
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


def _apiserver_argv(binary: Path, etcd_url: str, port: int, pki: Pki) -> list[str]:
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


def _session(pki: Pki) -> requests.Session:
    session = requests.Session()
    # Ignore REQUESTS_CA_BUNDLE and proxies from the environment: they would override our CA.
    session.trust_env = False
    session.verify = str(pki.ca_cert)
    session.cert = (str(pki.admin_cert), str(pki.admin_key))
    return session


def _is_ready(server: str, pki: Pki) -> bool:
    try:
        with _session(pki) as session:
            response = session.get(f"{server}/readyz", timeout=2)
    except requests.RequestException:
        return False
    return response.status_code == 200 and response.text.strip() == "ok"


def _server_version(server: str, pki: Pki) -> str:
    try:
        with _session(pki) as session:
            response = session.get(f"{server}/version", timeout=5)
            response.raise_for_status()
    except requests.RequestException as exc:
        raise errors.KubeError(f"could not read {server}/version: {exc}") from exc
    return str(response.json()["gitVersion"])


# ---------------------------------------------------------------- certificates


def _pki_paths() -> Pki:
    pki = cache.run_dir("kube") / "pki"
    pki.mkdir(exist_ok=True)
    return Pki(
        ca_cert=pki / "ca.crt",
        ca_key=pki / "ca.key",
        serving_cert=pki / "apiserver.crt",
        serving_key=pki / "apiserver.key",
        admin_cert=pki / "admin.crt",
        admin_key=pki / "admin.key",
        sa_key=pki / "sa.key",
        sa_pub=pki / "sa.pub",
    )


def ensure_pki() -> Pki:
    """The CA, serving cert, admin client cert and service-account keys; reused if valid."""
    pki = _pki_paths()
    if _pki_complete(pki):
        return pki
    ca_key = _new_key()
    ca_cert = _ca_certificate(ca_key)
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.ca_cert, ca_cert)
    serving_key = _new_key()
    _write_key(pki.serving_key, serving_key)
    _write_cert(pki.serving_cert, _serving_certificate(serving_key, ca_cert, ca_key))
    admin_key = _new_key()
    _write_key(pki.admin_key, admin_key)
    _write_cert(pki.admin_cert, _admin_certificate(admin_key, ca_cert, ca_key))
    sa_key = _new_key()
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def _pki_complete(pki: Pki) -> bool:
    paths = [getattr(pki, field) for field in pki.__dataclass_fields__]
    if not all(path.exists() for path in paths):
        return False
    renew_after = datetime.datetime.now(datetime.UTC) + _CERT_RENEW_MARGIN
    for cert_path in (pki.ca_cert, pki.serving_cert, pki.admin_cert):
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc < renew_after:
            return False
    return True


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(path, pem)


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret readable only by its owner (helm and kubectl warn otherwise)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _CERT_VALIDITY)
    )


def _ca_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = _name("clickagg-local-ca")
    return (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _serving_certificate(
    key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    dns_names = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    ips = ["127.0.0.1", KUBERNETES_SERVICE_IP]
    san = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in dns_names]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    )
    return _leaf(
        key, ca_cert, ca_key, _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, san
    )


def _admin_certificate(
    key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    # O=system:masters is the group RBAC binds to cluster-admin.
    subject = _name(ADMIN_USER, "system:masters")
    return _leaf(key, ca_cert, ca_key, subject, ExtendedKeyUsageOID.CLIENT_AUTH, None)


def _leaf(
    key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName | None,
) -> x509.Certificate:
    builder = (
        _builder(subject, ca_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# ---------------------------------------------------------------- kubeconfig


def write_kubeconfig(server: str, pki: Pki) -> Path:
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
                "name": ADMIN_USER,
                "user": {
                    "client-certificate-data": b64(pki.admin_cert),
                    "client-key-data": b64(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": CLUSTER_NAME,
                "context": {"cluster": CLUSTER_NAME, "user": ADMIN_USER, "namespace": "default"},
            }
        ],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    }
    path = cache.run_dir("kube") / "kubeconfig"
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
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


def crd_files(directories: Sequence[Path]) -> list[Path]:
    """Every *.yaml file in the given directories that exist, sorted for stable order."""
    return sorted(p for d in directories if d.is_dir() for p in d.glob("*.yaml"))
