"""spec.solr.basicAuthSecret in the Spark children: by reference to the Secret, never a value."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from clickagg.domain import validation
from clickagg.operator import children
from examples import GOOD

pytestmark = pytest.mark.unit

OWNER = children.Owner(name="shop-kpis", namespace="default", uid="0f7e-uid")
SETTINGS = children.JobSettings(service_account="spark-runner", default_data_root="/data")


def shop(solr: dict[str, Any] | None = None) -> Any:
    obj = yaml.safe_load((GOOD[0].parent / "shop-kpis.yaml").read_text())
    if solr is not None:
        obj["spec"]["solr"].update(solr)
    return validation.validate(obj)


def from_secret(env: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def test_without_a_secret_the_pods_get_no_credentials() -> None:
    for manifest in children.desired(shop(), OWNER, SETTINGS):
        assert "env" not in json.dumps(manifest)


def test_driver_and_executors_of_every_child_read_the_secret_by_reference() -> None:
    secret = {"name": "solr-jobs", "usernameKey": "user", "passwordKey": "pass"}
    manifests = children.desired(shop({"basicAuthSecret": secret}), OWNER, SETTINGS)
    expected = [
        from_secret("CLICKAGG_SOLR_USERNAME", "solr-jobs", "user"),
        from_secret("CLICKAGG_SOLR_PASSWORD", "solr-jobs", "pass"),
    ]
    assert len(manifests) > 1
    for manifest in manifests:
        app: Any = manifest["spec"]
        app = app.get("template", app)
        assert app["driver"]["env"] == expected
        assert app["executor"]["env"] == expected
        assert not any("password" in argument.lower() for argument in app["arguments"][2:])
