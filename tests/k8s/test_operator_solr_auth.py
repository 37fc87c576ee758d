"""spec.solr.basicAuthSecret for real: the operator reads the Secret through the API server for
its own Solr calls against a SolrCloud with authentication, and the Spark children take the
credentials from that Secret by reference, never by value.

A pass is run directly (`reconcile.reconcile` on the Aggregation the API server stored), as
kopf would run it; the outcome (status and events), the SparkApplications the API server
keeps and the logs are searched for the password, plain and base64.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client

from clickagg.local import solr as local_solr
from clickagg.local import solr_security
from clickagg.operator import children, reconcile
from clickagg.store import client as store_client
from examples import one_level
from fixtures import k8s as k8s_fixtures
from fixtures import solr as fixtures_solr

pytestmark = pytest.mark.k8s

NAME = "one-level"
SECRET = "solr-credentials"  # noqa: S105 (a Secret's name)
CONFIG = reconcile.Config(service_account="spark", data_root="/data", solr_url_override=None)


def stored_aggregation(
    kubectl: k8s_fixtures.KubectlRunner, namespace: str, solr_url: str, prefix: str
) -> dict[str, Any]:
    obj = one_level(namespace, NAME, prefix)
    obj["spec"]["solr"] = {
        "url": solr_url,
        "collectionPrefix": prefix,
        "shards": 1,
        "replicationFactor": 1,
        "basicAuthSecret": {"name": SECRET},
    }
    applied = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))
    assert applied.returncode == 0, applied.stderr
    got = kubectl("get", "agg", NAME, "-n", namespace, "-o", "json")
    body: dict[str, Any] = json.loads(got.stdout)
    return body


def put_secret(api: k8s_client.ApiClient, namespace: str, user: str, password: str) -> None:
    body = k8s_client.V1Secret(
        metadata=k8s_client.V1ObjectMeta(name=SECRET),
        string_data={"username": user, "password": password},
    )
    k8s_client.CoreV1Api(api).create_namespaced_secret(namespace, body)


def from_secret(env: str, key: str) -> dict[str, Any]:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}}


def secret_forms(password: str) -> list[str]:
    return [password, base64.b64encode(password.encode()).decode()]


@dataclass(frozen=True)
class Cluster:
    """The auth SolrCloud's URL and the test control plane, with KUBECONFIG set for the pass."""

    solr_url: str
    kubectl: k8s_fixtures.KubectlRunner
    api: k8s_client.ApiClient
    namespace: str


@pytest.fixture
def cluster(
    auth_solr: local_solr.SolrEndpoints,
    peer_crds: list[Path],
    kubeconfig: Path,
    kubectl: k8s_fixtures.KubectlRunner,
    api: k8s_client.ApiClient,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Cluster:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return Cluster(auth_solr.base_url, kubectl, api, namespace)


# The children come first; the Solr half of the pass then degrades.
CHILDREN_CREATED = ["ChildCreated", "ChildCreated"]


def run_pass(body: dict[str, Any]) -> reconcile.Outcome:
    return reconcile.reconcile(
        body, retry=0, logger=logging.getLogger("test-operator"), config=CONFIG
    )


def test_the_operator_uses_the_secret_and_the_children_only_reference_it(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    kubectl, namespace = cluster.kubectl, cluster.namespace
    user, password = local_solr.credentials(solr_security.OPERATOR, fixtures_solr.AUTH_INSTANCE)
    put_secret(cluster.api, namespace, user, password)
    prefix = f"auth{uuid.uuid4().hex[:8]}"
    body = stored_aggregation(kubectl, namespace, cluster.solr_url, prefix)

    outcome = run_pass(body)

    # The collection exists: the operator's admin calls passed Solr's authentication.
    with store_client.SolrClient(cluster.solr_url, auth=(user, password)) as admin:
        assert f"{prefix}-15m" in admin.list_collections(), outcome.problem
        admin.delete_collection(f"{prefix}-15m")
    applications = json.loads(
        kubectl("get", "sparkapplications", "-n", namespace, "-o", "json").stdout
    )["items"]
    stream = next(a for a in applications if a["metadata"]["name"] == children.stream_name(NAME))
    expected = [
        from_secret("CLICKAGG_SOLR_USERNAME", "username"),
        from_secret("CLICKAGG_SOLR_PASSWORD", "password"),
    ]
    assert stream["spec"]["driver"]["env"] == expected
    assert stream["spec"]["executor"]["env"] == expected
    rollups = json.loads(
        kubectl("get", "scheduledsparkapplications", "-n", namespace, "-o", "json").stdout
    )["items"]
    assert rollups, "the one level's retention job"
    assert rollups[0]["spec"]["template"]["driver"]["env"] == expected
    searched = {
        "SparkApplications": json.dumps(applications),
        "ScheduledSparkApplications": json.dumps(rollups),
        "the outcome (status, events)": repr(outcome),
        "log records": caplog.text,
    }
    for where, text in searched.items():
        for form in secret_forms(password):
            assert form not in text, f"the password appears in {where}"


def test_a_read_only_user_in_the_secret_degrades_naming_the_permission(cluster: Cluster) -> None:
    user, password = local_solr.credentials(solr_security.QUERY, fixtures_solr.AUTH_INSTANCE)
    put_secret(cluster.api, cluster.namespace, user, password)
    prefix = f"ro{uuid.uuid4().hex[:8]}"
    body = stored_aggregation(cluster.kubectl, cluster.namespace, cluster.solr_url, prefix)

    outcome = run_pass(body)

    assert outcome.retry_after is not None
    assert "refused user 'clickagg-query' (HTTP 403" in outcome.problem
    assert "lacks the permission 'config-edit'" in outcome.problem
    assert [notice.reason for notice in outcome.notices] == [*CHILDREN_CREATED, "SolrForbidden"]
    for form in secret_forms(password):
        assert form not in repr(outcome)


def test_a_missing_secret_degrades_naming_it(cluster: Cluster) -> None:
    prefix = f"ms{uuid.uuid4().hex[:8]}"
    body = stored_aggregation(cluster.kubectl, cluster.namespace, cluster.solr_url, prefix)

    outcome = run_pass(body)

    assert f"Secret {SECRET} in namespace {cluster.namespace}" in outcome.problem
    assert "does not exist" in outcome.problem
    assert [notice.reason for notice in outcome.notices] == [*CHILDREN_CREATED, "SolrAuthFailed"]
