"""`kubectl apply`, as a user runs it, against the real API server with the webhook registered.

The webhook configuration is the chart's own (`helm template`, pointed at an operator on
loopback through webhook.externalURL); the operator runs under kopf in this process,
issues its certificate into a Secret and patches the configuration's caBundle, and the
API server calls it over TLS on 127.0.0.1. kubectl is built at the API server's version.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kopf import testing as kopf_testing
from kubernetes import client as k8s_client

import polling
from clickagg.domain import certificates, plan, validation
from clickagg.local import gotools, process
from clickagg.local import kube as local_kube
from clickagg.operator import webhook
from examples import BAD, GOOD, bad_example
from fixtures import k8s as k8s_fixtures

pytestmark = pytest.mark.k8s

RELEASE = "webhook-test"
CONFIGURATION = f"{RELEASE}-clickagg-aggregations"
SYSTEM_NAMESPACE = "clickagg-system"
CERTIFICATES = "webhook-test-tls"
WATCHED = "webhook-watched"
UNWATCHED = "webhook-elsewhere"


class WebhookOperator:
    """The operator with its webhook on a loopback port; stopped and started by tests."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.runner: kopf_testing.KopfRunner | None = None

    def start(self, kubectl: k8s_fixtures.KubectlRunner) -> None:
        args = ["run", "--standalone", "--namespace", WATCHED, "-m", "clickagg.operator.main"]
        self.runner = kopf_testing.KopfRunner(args, timeout=60)
        self.runner.__enter__()
        probe = bad("unknown-kpi.yaml", WATCHED)
        probe["metadata"]["name"] = "webhook-probe"  # never stored: the name stays free
        polling.eventually(
            lambda: apply_object(kubectl, probe, "--dry-run=server").returncode != 0,
            "the API server calls the webhook, which refuses a bad Aggregation",
            timeout=60,
        )

    def stop(self) -> None:
        runner, self.runner = self.runner, None
        if runner is None:
            return
        runner.__exit__(None, None, None)
        assert runner.exit_code == 0, runner.output
        assert "Traceback" not in runner.output, runner.output


@pytest.fixture(scope="module")
def configuration(
    helm: k8s_fixtures.HelmRunner, kubectl: k8s_fixtures.KubectlRunner, kubeconfig: Path
) -> Iterator[int]:
    """The chart's webhook configuration, pointed at a free loopback port (yielded)."""
    for namespace in (SYSTEM_NAMESPACE, WATCHED, UNWATCHED):
        local_kube.create_namespace(kubeconfig, namespace)
    port = process.free_port()
    rendered = helm(
        "template", RELEASE, str(k8s_fixtures.CHART),
        "--namespace", SYSTEM_NAMESPACE,
        "--show-only", "templates/webhook/configuration.yaml",
        "--set", f"webhook.externalURL=https://127.0.0.1:{port}",
    ).stdout  # fmt: skip
    check(kubectl("apply", "-f", "-", stdin=rendered))
    yield port
    check(kubectl("delete", "validatingwebhookconfiguration", CONFIGURATION))


@pytest.fixture(scope="module")
def operator(
    configuration: int, kubectl: k8s_fixtures.KubectlRunner, kubeconfig: Path
) -> Iterator[WebhookOperator]:
    env = {
        "KUBECONFIG": str(kubeconfig),
        webhook.PORT_ENV: str(configuration),
        webhook.ADDRESS_ENV: "127.0.0.1",
        webhook.HOSTS_ENV: "127.0.0.1",
        webhook.CERTIFICATES_ENV: f"{SYSTEM_NAMESPACE}/{CERTIFICATES}",
        webhook.CONFIGURATION_ENV: CONFIGURATION,
        webhook.WATCHED_ENV: WATCHED,
    }
    hook = WebhookOperator(configuration)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        hook.start(kubectl)
        yield hook
        hook.stop()


# --------------------------------------------------------------------------- helpers


def check(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}: {result.stderr}"
    return result


def apply(
    kubectl: k8s_fixtures.KubectlRunner, path: Path, namespace: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", "-n", namespace, "-f", str(path), *flags)


def apply_object(
    kubectl: k8s_fixtures.KubectlRunner, obj: dict[str, Any], *flags: str
) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", "-f", "-", *flags, stdin=yaml.safe_dump(obj))


def example(name: str, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((k8s_fixtures.REPO / "examples" / name).read_text())
    obj["metadata"]["namespace"] = namespace
    return obj


def bad(name: str, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(next(p for p in BAD if p.name == name).read_text())
    obj["metadata"]["namespace"] = namespace
    return obj


# --------------------------------------------------------------------------- tests


def test_kubectl_is_at_the_api_servers_version(kubectl: k8s_fixtures.KubectlRunner) -> None:
    versions = json.loads(check(kubectl("version", "-o", "json")).stdout)
    assert versions["clientVersion"]["gitVersion"] == gotools.KUBERNETES_VERSION
    assert versions["serverVersion"]["gitVersion"] == gotools.KUBERNETES_VERSION


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_kubectl_apply_refuses_every_bad_example(
    operator: WebhookOperator, kubectl: k8s_fixtures.KubectlRunner, path: Path
) -> None:
    expected = bad_example(path)
    result = apply(kubectl, path, WATCHED)
    assert result.returncode != 0, result.stdout
    if expected.expect_apiserver is not None:
        # The schema refuses it before any webhook is called, naming the field.
        assert expected.expect_apiserver in result.stderr
        return
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    # kubectl's own layout: one problem inline, several as a list (see the test below).
    assert f'The Aggregation "{name}" is invalid: {expected.expect_validate}' in result.stderr


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_kubectl_apply_accepts_every_example(
    operator: WebhookOperator, kubectl: k8s_fixtures.KubectlRunner, path: Path
) -> None:
    result = check(apply_object(kubectl, example(path.name, WATCHED), "--dry-run=server"))
    assert "created (server dry run)" in result.stdout
    assert "Warning" not in result.stderr


def test_every_problem_comes_back_on_its_own_line(
    operator: WebhookOperator,
    kubectl: k8s_fixtures.KubectlRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    obj = bad("retention-in-minutes.yaml", WATCHED)
    obj["spec"]["kpis"] = ["visits", "bounce_rte"]
    with caplog.at_level(logging.INFO, logger=webhook.__name__):
        result = apply_object(kubectl, obj)
    assert result.returncode != 0
    problems = [line for line in result.stderr.splitlines() if line.startswith("* ")]
    assert problems == [
        "* spec.levels[1].retention: retention 4m (4 minutes) is shorter than granularity 1h; "
        "did you mean 4mo?",
        "* spec.kpis[1]: unknown KPI 'bounce_rte'; did you mean 'bounce_rate'?; see docs/kpis.md",
    ]
    # One log line for the decision, naming the object.
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert refusals == [
        f"refused CREATE of Aggregation {WATCHED}/{obj['metadata']['name']}: "
        + "; ".join(line.removeprefix("* ") for line in problems)
    ]


def test_a_plan_near_its_bound_is_admitted_with_a_warning(
    operator: WebhookOperator, kubectl: k8s_fixtures.KubectlRunner
) -> None:
    obj = example("shop-kpis.yaml", WATCHED)
    documents = plan.build(validation.validate(obj)).documents_per_day
    obj["spec"]["limits"] = {"maxDocumentsPerDay": int(documents / 0.9)}
    result = check(apply_object(kubectl, obj, "--dry-run=server"))
    assert re.search(
        r"Warning: spec\.limits\.maxDocumentsPerDay: the plan writes about [\d,]+ documents a "
        r"day, 90% of the bound",
        result.stderr,
    ), result.stderr


def test_an_unwatched_namespace_is_admitted_with_a_warning_and_listed_by_kubectl(
    operator: WebhookOperator,
    kubectl: k8s_fixtures.KubectlRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=webhook.__name__):
        result = check(apply_object(kubectl, example(GOOD[-1].name, UNWATCHED)))
    warning = (
        f"namespace {UNWATCHED} is not watched by the clickagg operator (it watches {WATCHED}): "
        "nothing will run for this Aggregation until the namespace is added to the chart's "
        "operator.namespaces"
    )
    assert f"Warning: {warning}" in result.stderr
    name = yaml.safe_load(GOOD[-1].read_text())["metadata"]["name"]
    assert f"admitted CREATE of Aggregation {UNWATCHED}/{name} with warnings: {warning}" in [
        record.getMessage() for record in caplog.records
    ]
    listing = check(kubectl("get", "agg", "-n", UNWATCHED)).stdout.splitlines()
    assert listing[0].split() == ["NAME", "LEVELS", "READY", "ROLLUPS", "LAG", "AGE"]
    assert listing[1].split()[0] == yaml.safe_load(GOOD[-1].read_text())["metadata"]["name"]


def test_kubectl_explain_prints_the_field_docs(kubectl: k8s_fixtures.KubectlRunner) -> None:
    text = " ".join(check(kubectl("explain", "aggregation.spec.levels")).stdout.split())
    assert "KIND: Aggregation" in text
    assert "granularity <string> -required-" in text
    assert "Bucket size, e.g. 15m, 1h, 1d, 1w, 1mo" in text
    assert "retention <string> -required-" in text


def test_a_spec_change_is_checked_but_metadata_changes_are_not(
    operator: WebhookOperator, kubectl: k8s_fixtures.KubectlRunner
) -> None:
    name = yaml.safe_load(GOOD[0].read_text())["metadata"]["name"]
    check(apply_object(kubectl, example(GOOD[0].name, UNWATCHED)))
    patch = json.dumps({"spec": {"kpis": ["visits", "bounce_rte"]}})
    refused = kubectl("patch", "agg", name, "-n", UNWATCHED, "--type=merge", "-p", patch)
    assert refused.returncode != 0
    assert "is invalid: spec.kpis[1]: unknown KPI 'bounce_rte'" in refused.stderr
    check(kubectl("annotate", "agg", name, "-n", UNWATCHED, "example.com/owner=shop"))


def test_with_the_operator_down_applies_go_through_and_the_status_catches_them(
    operator: WebhookOperator,
    kubectl: k8s_fixtures.KubectlRunner,
    api: k8s_client.ApiClient,
) -> None:
    obj = bad("retention-in-minutes.yaml", WATCHED)
    name = obj["metadata"]["name"]
    operator.stop()
    try:
        check(apply_object(kubectl, obj))  # failurePolicy Ignore
    finally:
        operator.start(kubectl)

    def valid_condition() -> dict[str, Any] | None:
        found = json.loads(check(kubectl("get", "agg", name, "-n", WATCHED, "-o", "json")).stdout)
        conditions = (found.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Valid"), None)

    valid = polling.eventually(valid_condition, "the operator sets the Valid condition", 30)
    assert valid["status"] == "False"
    assert "spec.levels[1].retention: retention 4m" in valid["message"]
    # The operator's own finalizer and annotations are metadata: admitted despite the spec.
    check(kubectl("delete", "agg", name, "-n", WATCHED, "--timeout=30s"))


def test_the_operator_keeps_its_certificate_and_publishes_its_ca(
    operator: WebhookOperator, api: k8s_client.ApiClient
) -> None:
    secret = k8s_client.CoreV1Api(api).read_namespaced_secret(CERTIFICATES, SYSTEM_NAMESPACE)
    stored = certificates.Certificates.from_secret_data(cast(dict[str, str], secret.data))
    assert stored is not None
    assert certificates.ensure(stored, ["127.0.0.1"]) == stored  # a restart reuses it
    admission = k8s_client.AdmissionregistrationV1Api(api)
    hooks = admission.read_validating_webhook_configuration(CONFIGURATION).webhooks
    assert hooks is not None
    (hook,) = hooks
    assert hook.client_config.ca_bundle == stored.secret_data()["bundle.crt"]
    assert hook.failure_policy == "Ignore"
