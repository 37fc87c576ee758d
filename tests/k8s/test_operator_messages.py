"""Conditions a user can cause, provoked for real: each reads as what is missing and what to
do, in the Degraded condition, in one Warning event per change and one log line.

A Spark Operator that is not installed (its CRD deleted for the test), a SolrCloud that does
not exist, RBAC that does not grant a child (the operator signs in as a user bound to the
chart's own Roles, less the Spark writes). A namespace the operator does not watch is
answered at apply time, by the webhook (tests/k8s/test_webhook.py).
"""

from __future__ import annotations

import json
import logging
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf import testing as kopf_testing
from kubernetes import client as k8s_client

import polling
from clickagg.local import kube as local_kube
from clickagg.local import process
from clickagg.local import solr as local_solr
from clickagg.operator import children, reconcile
from clickagg.store import client as store_client
from examples import one_level
from fixtures import k8s as k8s_fixtures

pytestmark = pytest.mark.k8s

PREFIX = f"msg{uuid.uuid4().hex[:8]}"
NAME = "one-level"
SPARK_CRD = "sparkapplications.sparkoperator.k8s.io"
RESTRICTED_USER = "clickagg-restricted-operator"


@pytest.fixture(scope="module")
def collection(solr_client: store_client.SolrClient) -> Iterator[str]:
    yield f"{PREFIX}-15m"
    solr_client.delete_collection(f"{PREFIX}-15m")


@contextmanager
def operator(namespace: str, kubeconfig: Path, solr_url: str) -> Iterator[None]:
    args = ["run", "--standalone", "--namespace", namespace, "-m", "clickagg.operator.main"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kubeconfig))
        patch.setenv(reconcile.SOLR_URL_OVERRIDE_ENV, solr_url)
        with kopf_testing.KopfRunner(args, timeout=60) as runner:
            yield
    assert runner.exit_code == 0, runner.output
    assert "Traceback" not in runner.output, runner.output


def apply(kubectl: k8s_fixtures.KubectlRunner, obj: dict[str, Any]) -> None:
    result = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))
    assert result.returncode == 0, result.stderr


def degraded(kubectl: k8s_fixtures.KubectlRunner, namespace: str, reason: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        result = kubectl("get", "agg", NAME, "-n", namespace, "-o", "json")
        conditions = (json.loads(result.stdout).get("status") or {}).get("conditions") or []
        found = next((c for c in conditions if c["type"] == "Degraded"), None)
        return found if found and (found["status"], found["reason"]) == ("True", reason) else None

    return polling.eventually(check, f"Degraded={reason} on {namespace}/{NAME}", 60)


def retried(caplog: pytest.LogCaptureFixture, reason: str, times: int) -> None:
    """Wait until the operator has retried `times` times into the same problem."""
    line = f"still degraded ({reason}), retry {times} "
    polling.eventually(
        lambda: any(r.getMessage().startswith(line) for r in caplog.records),
        f"retry {times} logged",
        60,
    )


def assert_said_once(
    api: k8s_client.ApiClient, caplog: pytest.LogCaptureFixture, namespace: str, reason: str
) -> str:
    """One Warning event and one WARNING line for the problem, none of kopf's retry errors."""
    events = k8s_client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={NAME}"
    )
    warnings = [(e.reason, e.message) for e in events.items if e.type == "Warning"]
    assert [r for r, _ in warnings] == [reason], warnings
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [line for line in lines if line.startswith("degraded (")] == [
        f"degraded ({reason}): {warnings[0][1]}; retrying in 2s"
    ]
    assert not [line for line in lines if "failed temporarily" in line or "\n" in line]
    return str(warnings[0][1])


def test_a_missing_spark_operator_is_named_with_what_to_install(
    kubectl: k8s_fixtures.KubectlRunner,
    kubeconfig: Path,
    api: k8s_client.ApiClient,
    namespace: str,
    solr: local_solr.SolrEndpoints,
    collection: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer_file = next(
        p for p in k8s_fixtures.peer_crd_files() if p.name.endswith("_sparkapplications.yaml")
    )
    check(kubectl("delete", "crd", SPARK_CRD))
    try:
        with caplog.at_level(logging.INFO), operator(namespace, kubeconfig, solr.base_url):
            apply(kubectl, one_level(namespace, NAME, PREFIX))
            condition = degraded(kubectl, namespace, "SparkOperatorMissing")
            retried(caplog, "SparkOperatorMissing", 2)
        said = assert_said_once(api, caplog, namespace, "SparkOperatorMissing")
    finally:
        local_kube.apply_crds(kubeconfig, [peer_file])
    assert (
        condition["message"]
        == said
        == (
            "the SparkApplication CRD (sparkoperator.k8s.io/v1beta2) is not installed: install "
            "the Kubeflow Spark Operator (its Helm chart installs the CRDs); the operator "
            "retries by itself"
        )
    )


def test_a_missing_solrcloud_is_named_and_its_creation_noticed(
    kubectl: k8s_fixtures.KubectlRunner,
    kubeconfig: Path,
    api: k8s_client.ApiClient,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = f"http://127.0.0.1:{process.free_port()}/solr"
    with caplog.at_level(logging.INFO), operator(namespace, kubeconfig, closed):
        apply(kubectl, one_level(namespace, NAME, PREFIX))
        condition = degraded(kubectl, namespace, "SolrCloudNotFound")
        retried(caplog, "SolrCloudNotFound", 2)
        said = assert_said_once(api, caplog, namespace, "SolrCloudNotFound")
        solr_cloud = {
            "apiVersion": "solr.apache.org/v1beta1",
            "kind": "SolrCloud",
            "metadata": {"name": "analytics", "namespace": namespace},
            "spec": {},
        }
        apply(kubectl, solr_cloud)
        # The SolrCloud exists now; what is left is a Solr that does not answer.
        after = degraded(kubectl, namespace, "SolrUnreachable")
    assert (
        condition["message"]
        == said
        == (
            f"SolrCloud analytics does not exist in namespace {namespace} "
            "(spec.solr.solrCloudRef): create it with the Solr Operator, or correct the reference"
        )
    )
    assert closed.removesuffix("/solr") in after["message"]


def test_rbac_that_forbids_a_child_names_the_verb_the_kind_and_the_fix(
    kubectl: k8s_fixtures.KubectlRunner,
    helm: k8s_fixtures.HelmRunner,
    kubeconfig: Path,
    api: k8s_client.ApiClient,
    namespace: str,
    solr: local_solr.SolrEndpoints,
    collection: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bind_chart_rbac_without_spark_writes(helm, kubectl, namespace)
    allowed = k8s_fixtures.eventually_allowed
    assert allowed(
        api, RESTRICTED_USER, "list", "aggregations", group="clickagg.io", namespace=namespace
    )
    restricted = local_kube.user_kubeconfig(kubeconfig, RESTRICTED_USER)
    with caplog.at_level(logging.INFO), operator(namespace, restricted, solr.base_url):
        apply(kubectl, one_level(namespace, NAME, PREFIX))
        condition = degraded(kubectl, namespace, "Forbidden")
        retried(caplog, "Forbidden", 2)
    said = assert_said_once(api, caplog, namespace, "Forbidden")
    assert condition["message"] == said
    stream = children.stream_name(NAME)
    assert said.startswith(
        f"RBAC forbids the operator to patch sparkapplications.sparkoperator.k8s.io in "
        f'namespace {namespace} (sparkapplications.sparkoperator.k8s.io "{stream}" is '
        f'forbidden: User "{RESTRICTED_USER}" cannot patch resource'
    )
    assert said.endswith(
        "add the namespace to the chart's operator.namespaces, or grant the operator's "
        "ServiceAccount the chart's operator Role there"
    )


# --------------------------------------------------------------------------- helpers


def check(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


def bind_chart_rbac_without_spark_writes(
    helm: k8s_fixtures.HelmRunner, kubectl: k8s_fixtures.KubectlRunner, namespace: str
) -> None:
    """The chart's operator RBAC for `namespace`, bound to a user, with Spark read-only."""
    rendered = helm(
        "template", f"rbac-{namespace}", str(k8s_fixtures.CHART),
        "--namespace", namespace,
        "--set", f"operator.namespaces={{{namespace}}}",
        "--set", "webhook.enabled=false",
        "--show-only", "templates/operator/rbac.yaml",
    ).stdout  # fmt: skip
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    user = {"kind": "User", "name": RESTRICTED_USER, "apiGroup": "rbac.authorization.k8s.io"}
    for doc in docs:
        for rule in doc.get("rules", []):
            if "sparkoperator.k8s.io" in rule["apiGroups"]:
                rule["verbs"] = ["get", "list", "watch"]
        if "subjects" in doc:
            doc["subjects"] = [user]
    check(kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs)))
