"""What does the validating webhook add to an apply? (issue 12 §4)

Goal: p99 added ≤ 50 ms. This script:

1. starts its own etcd + kube-apiserver (temp CLICKAGG_RUN_DIR, free ports) with the CRDs;
2. registers the chart's webhook configuration (`helm template`, pointed at the operator on
   loopback), narrowed by an objectSelector to objects labelled for it, and runs the
   operator as `kopf run` in a subprocess, serving the webhook with its own certificate;
3. sends server-side dry-run creates of an `examples/shop-kpis.yaml`-sized Aggregation,
   valid and invalid (the seed's `retention: 4m`), each with and without the label, in
   shuffled order within each round: the four series share the same moments, so the
   baseline (the same apply, no webhook) sees the same noise;
4. prints a markdown report and appends it to docs/benchmarks.md under "## Admission latency".

Run: PYTHONPATH=src $VENV/bin/python benchmarks/admission_latency.py [-n 300] [--no-record]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import operator_latency
import run_facts
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from clickagg.domain import spec
from clickagg.local import kube as local_kube
from clickagg.local import process
from clickagg.operator import webhook

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Admission latency"
CHART = ROOT / "charts" / "clickagg"
REFERENCE = ROOT / "examples" / "shop-kpis.yaml"
TARGET_ADDED_P99_MS = 50.0
NAMESPACE = "bench"
OPS_NAMESPACE = "bench-ops"
LABEL = "bench.clickagg.io/webhook"
WARM_UP = 20


def specs() -> dict[str, dict[str, Any]]:
    valid: dict[str, Any] = yaml.safe_load(REFERENCE.read_text())
    valid["metadata"]["namespace"] = NAMESPACE
    invalid = copy.deepcopy(valid)
    invalid["metadata"]["name"] = "seed-retention"
    invalid["spec"]["levels"][1]["retention"] = "4m"  # the seed's typo: minutes, not months
    series = {}
    for kind, body in (("valid", valid), ("invalid", invalid)):
        for hooked in (False, True):
            obj = copy.deepcopy(body)
            obj["metadata"]["labels"] = {LABEL: "on" if hooked else "off"}
            series[f"{kind}, {'webhook' if hooked else 'no webhook'}"] = obj
    return series


def dry_run_create(objects: k8s_client.CustomObjectsApi, obj: dict[str, Any]) -> bool:
    """One admission; True when admitted."""
    try:
        objects.create_namespaced_custom_object(
            spec.API_GROUP, spec.API_VERSION, NAMESPACE, spec.PLURAL, obj, dry_run="All"
        )
    except ApiException as exc:
        if exc.status != 422:
            raise
        return False
    return True


def register_webhook(kubeconfig: Path, port: int) -> str:
    rendered = local_kube.helm(
        kubeconfig, "template", "bench", str(CHART), "--namespace", OPS_NAMESPACE,
        "--show-only", "templates/webhook/configuration.yaml",
        "--set", f"webhook.externalURL=https://127.0.0.1:{port}",
    ).stdout  # fmt: skip
    configuration = yaml.safe_load(rendered)
    for hook in configuration["webhooks"]:
        hook["objectSelector"] = {"matchLabels": {LABEL: "on"}}
    result = local_kube.kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(configuration))
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return str(configuration["metadata"]["name"])


def measure(
    objects: k8s_client.CustomObjectsApi, series: dict[str, dict[str, Any]], rounds: int
) -> dict[str, list[float]]:
    for obj in series.values():
        for _ in range(WARM_UP):
            dry_run_create(objects, obj)
    latencies: dict[str, list[float]] = {name: [] for name in series}
    order = list(series)
    shuffle = random.Random(12)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for name in order:
            started = time.perf_counter()
            admitted = dry_run_create(objects, series[name])
            latencies[name].append((time.perf_counter() - started) * 1000)
            expected = not (name.startswith("invalid") and "no webhook" not in name)
            if admitted != expected:
                raise RuntimeError(f"{name}: admitted={admitted}, expected {expected}")
    return latencies


def p(values: Sequence[float], share: float) -> float:
    return operator_latency.percentile(sorted(values), share)


def report(latencies: dict[str, list[float]], rounds: int, header: str) -> tuple[str, bool]:
    rows = ["| series | p50 ms | p99 ms | max ms |", "|---|---|---|---|"]
    for name, values in latencies.items():
        rows.append(
            f"| {name} | {statistics.median(values):.1f} | {p(values, 0.99):.1f} | "
            f"{max(values):.1f} |"
        )
    added = []
    met = True
    for kind in ("valid", "invalid"):
        hooked, bare = latencies[f"{kind}, webhook"], latencies[f"{kind}, no webhook"]
        p50 = statistics.median(hooked) - statistics.median(bare)
        p99 = p(hooked, 0.99) - p(bare, 0.99)
        met = met and p99 <= TARGET_ADDED_P99_MS
        added.append(
            f"- {kind}: added p50 **{p50:+.1f} ms**, p99 **{p99:+.1f} ms** "
            f"(webhook / no webhook: ×{statistics.median(hooked) / statistics.median(bare):.2f} "
            f"at p50, ×{p(hooked, 0.99) / p(bare, 0.99):.2f} at p99)"
        )
    verdict = run_facts.verdict(met)
    text = "\n".join(
        [
            header,
            "",
            *rows,
            "",
            *added,
            "",
            f"Goal p99 added ≤ {TARGET_ADDED_P99_MS:.0f} ms: "
            f"{verdict} ({rounds} admissions per series).",
            "",
        ]
    )
    return text, met


INTRO = f"""
{HEADING}

`benchmarks/admission_latency.py` measures what the validating webhook adds to an apply,
through the real API server (etcd + kube-apiserver 1.36 on loopback): server-side dry-run
creates of an `examples/shop-kpis.yaml`-sized Aggregation, valid and invalid (the seed's
`retention: 4m`), from the Python client, with and without the webhook in one run. The
chart's webhook configuration is registered with an objectSelector, so the baseline is the
same apply of an unlabelled object at the same moments (the four series are shuffled within
every round). The operator runs as `kopf run` in a subprocess, serving the webhook over TLS
with the certificate it issued itself.

Goal: p99 added ≤ 50 ms.

```sh
PYTHONPATH=src $(make -s print-venv)/bin/python benchmarks/admission_latency.py [-n 300]
```
"""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", "--rounds", type=int, default=300, help="admissions per series")
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    commit = run_facts.git_commit(("src", "charts"))
    facts = "; ".join(f"{key} {value}" for key, value in run_facts.machine().items())
    load_before = run_facts.load_average()
    with tempfile.TemporaryDirectory(prefix="clickagg-admission-bench-") as temp:
        work = Path(temp)
        os.environ["CLICKAGG_RUN_DIR"] = str(work / "run")
        kube = local_kube.up(etcd_port=process.free_port(), apiserver_port=process.free_port())
        try:
            crds = local_kube.crd_files([CHART / "crds"])
            local_kube.apply_crds(kube.kubeconfig, crds)
            for namespace in (NAMESPACE, OPS_NAMESPACE):
                local_kube.create_namespace(kube.kubeconfig, namespace)
            port = process.free_port()
            configuration = register_webhook(kube.kubeconfig, port)
            os.environ.update(
                {
                    webhook.PORT_ENV: str(port),
                    webhook.ADDRESS_ENV: "127.0.0.1",
                    webhook.HOSTS_ENV: "127.0.0.1",
                    webhook.CERTIFICATES_ENV: f"{OPS_NAMESPACE}/bench-webhook-tls",
                    webhook.CONFIGURATION_ENV: configuration,
                }
            )
            stack = operator_latency.Stack(kube.kubeconfig, "http://127.0.0.1:1/solr")
            log = work / "operator.log"
            with (
                operator_latency.operator_process(stack, [OPS_NAMESPACE], log),
                local_kube.api_client(kube.kubeconfig) as api,
            ):
                objects = k8s_client.CustomObjectsApi(api)
                series = specs()
                invalid_hooked = series["invalid, webhook"]
                deadline = time.monotonic() + 60
                while dry_run_create(objects, invalid_hooked):  # until the caBundle is in
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the webhook never refused; see {log}")
                    time.sleep(0.2)
                print(f"==> {options.rounds} rounds of 4 dry-run creates")
                latencies = measure(objects, series, options.rounds)
        finally:
            local_kube.down()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"\n### Run of {stamp}, commit {commit}\n\n{facts}; load average before "
        f"{load_before}, after {run_facts.load_average()}."
    )
    text, _ = report(latencies, options.rounds, header)
    print(text)
    if not options.no_record:
        run_facts.append_section(DOCS, HEADING, INTRO, text)


if __name__ == "__main__":
    main()
