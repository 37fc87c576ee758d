"""spec.solr.tls in the Spark children: the CA Secret mounted read-only, its path in the env."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from clickagg import errors
from clickagg.domain import validation
from clickagg.operator import children
from clickagg.store import credentials
from examples import GOOD

pytestmark = pytest.mark.unit

OWNER = children.Owner(name="shop-kpis", namespace="default", uid="0f7e-uid")
SETTINGS = children.JobSettings(service_account="spark-runner", default_data_root="/data")
CA_PATH = "/etc/clickagg/solr-ca/ca.crt"


def shop(solr: dict[str, Any] | None = None) -> Any:
    obj = yaml.safe_load((GOOD[0].parent / "shop-kpis.yaml").read_text())
    if solr is not None:
        obj["spec"]["solr"].update(solr)
    return validation.validate(obj)


def applications(aggregation: Any) -> list[Any]:
    found = []
    for manifest in children.desired(aggregation, OWNER, SETTINGS):
        app: Any = manifest["spec"]
        found.append(app.get("template", app))
    assert len(found) > 1
    return found


def test_without_tls_the_pods_get_no_volume_and_no_ca() -> None:
    for app in applications(shop()):
        text = json.dumps(app)
        assert "volume" not in text.lower()
        assert credentials.CA_FILE_ENV not in text


def test_driver_and_executors_mount_the_ca_secret_and_name_it() -> None:
    tls = {"caSecret": {"name": "solr-ca", "key": "root.pem"}}
    for app in applications(shop({"tls": tls})):
        assert app["volumes"] == [
            {
                "name": "solr-ca",
                "secret": {
                    "secretName": "solr-ca",
                    "items": [{"key": "root.pem", "path": "ca.crt"}],
                },
            }
        ]
        for pod in (app["driver"], app["executor"]):
            assert pod["volumeMounts"] == [
                {"name": "solr-ca", "mountPath": "/etc/clickagg/solr-ca", "readOnly": True}
            ]
            assert pod["env"] == [{"name": credentials.CA_FILE_ENV, "value": CA_PATH}]


def test_tls_and_basic_auth_together() -> None:
    solr = {
        "basicAuthSecret": {"name": "solr-jobs"},
        "tls": {"caSecret": {"name": "solr-ca"}},
    }
    for app in applications(shop(solr)):
        names = [variable["name"] for variable in app["executor"]["env"]]
        assert names == [
            credentials.USERNAME_ENV,
            credentials.PASSWORD_ENV,
            credentials.CA_FILE_ENV,
        ]
        assert app["volumes"][0]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]


def test_a_ca_secret_needs_a_name() -> None:
    with pytest.raises(errors.SpecError, match="name"):
        shop({"tls": {"caSecret": {"key": "ca.crt"}}})
