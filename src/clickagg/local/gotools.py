"""Build the Go programs the Kubernetes tests need (kube-apiserver, etcd, helm, kubectl).

No distribution archive is fetched: everything comes through the Go module proxy and is
compiled once, then cached under cache.tool_dir(name, version)/bin, so later runs start
in seconds. Builds write to a temporary name and rename at the end, so an interrupted
build never leaves a broken binary behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clickagg import errors
from clickagg.local import cache, process

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.22.0"

#: The peer operators whose real CRDs the tests install (released versions the proxy serves).
SPARK_OPERATOR = ("github.com/kubeflow/spark-operator/v2", "v2.3.0")
SOLR_OPERATOR = ("github.com/apache/solr-operator", "v0.9.1")
_PEER_CRDS = {
    SPARK_OPERATOR: [
        "charts/spark-operator-chart/crds/sparkoperator.k8s.io_sparkapplications.yaml",
        "charts/spark-operator-chart/crds/sparkoperator.k8s.io_scheduledsparkapplications.yaml",
    ],
    SOLR_OPERATOR: ["config/crd/bases/solr.apache.org_solrclouds.yaml"],
}

KUBERNETES_MODULE = "k8s.io/kubernetes"
ETCD_SERVER_MODULE = "go.etcd.io/etcd/server/v3"
HELM_MODULE = "helm.sh/helm/v3"

_HEARTBEAT_SECONDS = 60
_GO_HINT = "install Go 1.26 or newer (https://go.dev/doc/install) and put `go` on PATH"
# A staging replace in k8s.io/kubernetes' go.mod, e.g. `k8s.io/api => ./staging/src/k8s.io/api`.
_STAGING_REPLACE = re.compile(r"^\s*(?:replace\s+)?(k8s\.io/[\w.-]+)\s*=>\s*\./staging/src/")


def ensure_kube_apiserver() -> Path:
    """The cached kube-apiserver binary, built on first use (~7 min cold on 2 idle cores)."""
    binary = _binary("kube-apiserver", KUBERNETES_VERSION, "kube-apiserver")
    if not binary.exists():
        _build_kubernetes_command(binary, "kube-apiserver")
    return binary


def ensure_etcd() -> Path:
    """The cached etcd binary, built on first use (~1 min)."""
    binary = _binary("etcd", ETCD_VERSION, "etcd")
    if not binary.exists():
        _build_etcd(binary)
    return binary


def ensure_helm() -> Path:
    """The cached helm binary, built on first use (~2 min)."""
    binary = _binary("helm", HELM_VERSION, "helm")
    if not binary.exists():
        _build_helm(binary)
    return binary


def ensure_kubectl() -> Path:
    """A kubectl at kube-apiserver's version: one on PATH if it matches, else the cached build
    (~2 min once kube-apiserver is built: they share the module and build caches)."""
    installed = shutil.which("kubectl")
    if installed and _kubectl_version(installed) == KUBERNETES_VERSION:
        return Path(installed)
    binary = _binary("kubectl", KUBERNETES_VERSION, "kubectl")
    if not binary.exists():
        _build_kubernetes_command(binary, "kubectl")
    return binary


def ensure_peer_crds() -> Path:
    """A directory with the Spark Operator's and Solr Operator's CRDs, unchanged, taken from
    their Go modules (Apache-2.0) through the module proxy and cached per version."""
    version = "-".join(v for _, v in _PEER_CRDS)
    target = cache.tool_dir("peer-crds", version)
    wanted = [target / Path(f).name for files in _PEER_CRDS.values() for f in files]
    if all(path.is_file() for path in wanted):
        return target
    _progress(f"fetching the peer CRDs ({version}) from the Go module proxy")
    with tempfile.TemporaryDirectory() as work:
        for (module, module_version), files in _PEER_CRDS.items():
            source = Path(_module_info(module, module_version, Path(work))["Dir"])
            for file in files:
                shutil.copyfile(source / file, target / Path(file).name)
    return target


def ensure_all() -> dict[str, Path]:
    """Every Go tool the stack needs, by name."""
    return {
        "etcd": ensure_etcd(),
        "helm": ensure_helm(),
        "kube-apiserver": ensure_kube_apiserver(),
        "kubectl": ensure_kubectl(),
    }


def _kubectl_version(program: str) -> str | None:
    """The client gitVersion a kubectl reports, or None when it cannot say."""
    try:
        result = subprocess.run(
            [program, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
        return str(json.loads(result.stdout)["clientVersion"]["gitVersion"])
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None


def _binary(name: str, version: str, program: str) -> Path:
    return cache.tool_dir(name, version) / "bin" / program


def _go() -> str:
    return process.require_tool("go", _GO_HINT)


def _progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _go_env() -> dict[str, str]:
    # -mod=mod lets the wrapper modules fill in their go.sum on the first build.
    flags = os.environ.get("GOFLAGS", "")
    return {**os.environ, "GOFLAGS": f"{flags} -mod=mod -buildvcs=false".strip()}


def _run_go(args: list[str], cwd: Path, *, heartbeat: str | None = None) -> str:
    """Run `go args...` in cwd and return its stdout; with `heartbeat`, say every minute
    that a long build is still going, so a 20-minute first run never looks hung."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [_go(), *args], cwd=cwd, env=_go_env(), stdout=out, stderr=err, text=True
        )
        while True:
            try:
                proc.wait(timeout=_HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if heartbeat:
                    _progress(f"{heartbeat}: still building ({time.monotonic() - started:.0f}s)")
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise errors.LocalStackError(
                f"`go {' '.join(args)}` failed in {cwd} (exit {proc.returncode}):\n"
                + err.read()[-4000:]
            )
        return out.read()


def _module_info(module: str, version: str, workdir: Path) -> dict[str, str]:
    """`go mod download -json` of one module: where its go.mod is and when it was tagged."""
    out = _run_go(["mod", "download", "-json", f"{module}@{version}"], cwd=workdir)
    return {key: str(value) for key, value in json.loads(out).items()}


def _module_go_mod(module: str, version: str, workdir: Path) -> str:
    """The text of a module's own go.mod, as served by the module proxy."""
    return Path(_module_info(module, version, workdir)["GoMod"]).read_text()


def _go_directive(go_mod: str) -> str:
    match = re.search(r"^go\s+(\S+)", go_mod, re.MULTILINE)
    return match.group(1) if match else "1.26.0"


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The k8s.io staging modules that k8s.io/kubernetes' go.mod replaces with local paths."""
    found = (_STAGING_REPLACE.match(line) for line in kubernetes_go_mod.splitlines())
    return sorted({match.group(1) for match in found if match})


def _staging_version(kubernetes_version: str) -> str:
    # Staging modules are tagged v0.<minor>.<patch> alongside kubernetes v1.<minor>.<patch>.
    return "v0." + kubernetes_version.removeprefix("v").split(".", 1)[1]


def _wrapper_dir(binary: Path) -> Path:
    """A scratch module next to the binary: go.mod must live somewhere, but not in the repo."""
    path = binary.parent.parent / "wrapper"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_wrapper(wrapper: Path, go_version: str, require: str, replaces: list[str]) -> None:
    lines = ["module clickagg.local/gotools-wrapper", "", f"go {go_version}", "", require, ""]
    lines += [f"replace {line}" for line in replaces]
    (wrapper / "go.mod").write_text("\n".join(lines) + "\n")
    (wrapper / "go.sum").touch()


def _build(binary: Path, package: str, ldflags: list[str], wrapper: Path, label: str) -> None:
    """`go build` package into binary via a temporary file, timing it."""
    binary.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_partials(binary)
    partial = binary.with_name(f".{binary.name}.partial-{os.getpid()}")
    started = time.monotonic()
    try:
        _run_go(
            [
                "build",
                "-trimpath",
                "-ldflags",
                " ".join(["-s", "-w", *ldflags]),
                "-o",
                str(partial),
                package,
            ],
            cwd=wrapper,
            heartbeat=label,
        )
        partial.chmod(0o755)
        partial.replace(binary)
    finally:
        partial.unlink(missing_ok=True)
    _progress(f"built {label} in {time.monotonic() - started:.0f}s -> {binary}")


def _remove_abandoned_partials(binary: Path) -> None:
    """Delete half-written binaries left by builds that were killed (their pid is gone)."""
    for partial in binary.parent.glob(f".{binary.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[1]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            partial.unlink(missing_ok=True)


def _build_kubernetes_command(binary: Path, command: str) -> None:
    """Build k8s.io/kubernetes/cmd/<command> through the wrapper module, with version flags."""
    _go()  # fail with the install hint before announcing a build
    _progress(f"building {command} {KUBERNETES_VERSION} (first run only, minutes)")
    wrapper = _wrapper_dir(binary)
    info = _module_info(KUBERNETES_MODULE, KUBERNETES_VERSION, wrapper)
    go_mod = Path(info["GoMod"]).read_text()
    staging = staging_modules(go_mod)
    if not staging:
        raise errors.LocalStackError(
            f"found no staging replaces in {KUBERNETES_MODULE}@{KUBERNETES_VERSION}'s go.mod"
        )
    staging_version = _staging_version(KUBERNETES_VERSION)
    _write_wrapper(
        wrapper,
        _go_directive(go_mod),
        f"require {KUBERNETES_MODULE} {KUBERNETES_VERSION}",
        [f"{module} => {module} {staging_version}" for module in staging],
    )
    major, minor = KUBERNETES_VERSION.removeprefix("v").split(".")[:2]
    # Without these the server reports v0.0.0-master and helm's kubeVersion checks fail.
    # Kubernetes' own build sets both packages: kubectl reports client-go's.
    ldflags = [
        f"-X {version_pkg}.{key}={value}"
        for version_pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in (
            ("gitVersion", KUBERNETES_VERSION),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
            # The release's tag time, so the binary is reproducible yet reports a real date.
            ("buildDate", info.get("Time", "1970-01-01T00:00:00Z")),
        )
    ]
    _build(
        binary,
        f"{KUBERNETES_MODULE}/cmd/{command}",
        ldflags,
        wrapper,
        f"{command} {KUBERNETES_VERSION}",
    )


def _build_etcd(binary: Path) -> None:
    _go()  # fail with the install hint before announcing a build
    _progress(f"building etcd {ETCD_VERSION} (first run only, ~1 min)")
    wrapper = _wrapper_dir(binary)
    go_mod = _module_go_mod(ETCD_SERVER_MODULE, ETCD_VERSION, wrapper)
    # etcd's go.mod replaces its sibling modules with ../ paths; a wrapper module is the
    # main module instead, so those replaces are ignored and the tagged siblings are used.
    _write_wrapper(
        wrapper, _go_directive(go_mod), f"require {ETCD_SERVER_MODULE} {ETCD_VERSION}", []
    )
    # The module proxy serves no commit id; the tag names the source just as precisely.
    ldflags = [f"-X go.etcd.io/etcd/api/v3/version.GitSHA={ETCD_VERSION}"]
    _build(binary, ETCD_SERVER_MODULE, ldflags, wrapper, f"etcd {ETCD_VERSION}")


def _build_helm(binary: Path) -> None:
    _go()  # fail with the install hint before announcing a build
    _progress(f"building helm {HELM_VERSION} (first run only, ~2 min)")
    wrapper = _wrapper_dir(binary)
    go_mod = _module_go_mod(HELM_MODULE, HELM_VERSION, wrapper)
    _write_wrapper(wrapper, _go_directive(go_mod), f"require {HELM_MODULE} {HELM_VERSION}", [])
    _build(
        binary, f"{HELM_MODULE}/cmd/helm", _helm_ldflags(go_mod), wrapper, f"helm {HELM_VERSION}"
    )


def _helm_ldflags(helm_go_mod: str) -> list[str]:
    """The version flags helm's Makefile sets, with the Kubernetes version from client-go."""
    ldflags = [
        f"-X {HELM_MODULE}/internal/version.version={HELM_VERSION}",
        f"-X {HELM_MODULE}/internal/version.metadata=",
        f"-X {HELM_MODULE}/internal/version.gitTreeState=clean",
    ]
    client_go = re.search(r"k8s\.io/client-go\s+v0\.(\d+)\.", helm_go_mod)
    if client_go:
        # helm assumes Kubernetes 1.<client-go minor> when no cluster says otherwise.
        minor = client_go.group(1)
        for pkg in ("pkg/lint/rules", "pkg/chartutil"):
            ldflags += [
                f"-X {HELM_MODULE}/{pkg}.k8sVersionMajor=1",
                f"-X {HELM_MODULE}/{pkg}.k8sVersionMinor={minor}",
            ]
    return ldflags


def main() -> None:
    """Build every tool; `python -m clickagg.local.gotools` warms the cache."""
    for name, path in ensure_all().items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
