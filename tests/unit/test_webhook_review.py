"""The webhook's answers and certificates, without a server: what kubectl will be told."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
import yaml

from clickagg.domain import certificates, plan, validation
from clickagg.operator import webhook
from examples import BAD, GOOD, bad_example

pytestmark = pytest.mark.unit


def admission(obj: dict[str, Any], operation: str = "CREATE", old: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "operation": operation,
            "namespace": "shop",
            "name": obj["metadata"]["name"],
            "object": obj,
            "oldObject": old,
        },
    }


def load(path: Any) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(path.read_text())
    obj["metadata"]["namespace"] = "shop"
    return obj


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_every_bad_example_is_refused_with_its_message_as_a_cause(path: Any) -> None:
    answer = webhook.review(admission(load(path)))
    response = answer["response"]
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["allowed"] is False
    status = response["status"]
    assert (status["code"], status["reason"]) == (422, "Invalid")
    causes = [f"{c['field']}: {c['message']}" for c in status["details"]["causes"]]
    assert any(cause.startswith(bad_example(path).expect_validate) for cause in causes), causes


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_every_example_is_admitted_untouched(path: Any) -> None:
    response = webhook.review(admission(load(path)), watched=["shop"])["response"]
    assert response == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


def test_metadata_changes_and_deletion_pass_even_an_invalid_spec() -> None:
    invalid = load(next(p for p in BAD if p.name == "unknown-kpi.yaml"))
    finalized = copy.deepcopy(invalid)
    finalized["metadata"]["finalizers"] = ["clickagg.io/cleanup"]
    assert webhook.review(admission(finalized, "UPDATE", invalid))["response"]["allowed"]
    deleting = copy.deepcopy(invalid)
    deleting["metadata"]["deletionTimestamp"] = "2026-11-30T14:00:00Z"
    deleting["spec"]["kpis"] = ["visits"]
    assert webhook.review(admission(deleting, "UPDATE", invalid))["response"]["allowed"]
    changed = copy.deepcopy(invalid)
    changed["spec"]["kpis"] = ["visits", "bounce_rte", "nope"]
    assert not webhook.review(admission(changed, "UPDATE", invalid))["response"]["allowed"]


def test_warnings_for_a_plan_near_its_bound_and_an_unwatched_namespace() -> None:
    obj = load(GOOD[-1])
    documents = plan.build(validation.validate(obj)).documents_per_day
    obj["spec"]["limits"] = {"maxDocumentsPerDay": int(documents / 0.85)}
    warnings = webhook.review(admission(obj), watched=["ads"])["response"]["warnings"]
    assert warnings[0].startswith("spec.limits.maxDocumentsPerDay: the plan writes about")
    assert "85% of the bound" in warnings[0]
    assert warnings[1].startswith("namespace shop is not watched by the clickagg operator")


def test_the_decision_is_one_line_naming_the_object() -> None:
    request = admission(load(next(p for p in BAD if p.name == "unknown-kpi.yaml")))
    line = webhook.decision(request, webhook.review(request))
    assert line == (
        "refused CREATE of Aggregation shop/typo-in-kpi: spec.kpis[1]: unknown KPI "
        "'bounce_rte'; did you mean 'bounce_rate'?; see docs/kpis.md"
    )


def test_settings_need_exactly_one_certificate_source() -> None:
    assert webhook.Settings.from_env({}) is None
    with pytest.raises(Exception, match="exactly one"):
        webhook.Settings.from_env({webhook.PORT_ENV: "9443"})
    settings = webhook.Settings.from_env(
        {webhook.PORT_ENV: "9443", webhook.CERTIFICATES_ENV: "ops/tls", webhook.HOSTS_ENV: "a, b"}
    )
    assert settings is not None
    assert (settings.secret, settings.hosts, settings.watched) == (("ops", "tls"), ("a", "b"), ())


NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
HOSTS = ["clickagg-webhook.ops.svc", "127.0.0.1"]


def test_certificates_are_reused_until_renewal_is_due() -> None:
    first = certificates.ensure(None, HOSTS, NOW)
    assert certificates.ensure(first, HOSTS, NOW + dt.timedelta(days=300)) == first
    renewed = certificates.ensure(first, HOSTS, NOW + dt.timedelta(days=340))
    assert renewed.cert != first.cert
    assert (renewed.ca_cert, renewed.ca_bundle) == (first.ca_cert, first.ca_bundle)
    moved = certificates.ensure(first, ["elsewhere.ops.svc"], NOW)
    assert moved.cert != first.cert and moved.ca_cert == first.ca_cert


def test_a_renewed_ca_is_trusted_next_to_the_old_one() -> None:
    first = certificates.ensure(None, HOSTS, NOW)
    later = NOW + certificates.CA_LIFETIME - dt.timedelta(days=100)
    renewed = certificates.ensure(first, HOSTS, later)
    assert renewed.ca_cert != first.ca_cert
    assert renewed.ca_bundle == renewed.ca_cert + first.ca_cert
    assert certificates.Certificates.from_secret_data(renewed.secret_data()) == renewed
