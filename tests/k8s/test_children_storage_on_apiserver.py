"""The Spark children of every storage choice and of a SASL Kafka source pass the real Spark
Operator CRDs' schema on a real API server, with strict field validation (an unknown or
misplaced field such as volumeMounts would be refused, not silently pruned)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client

from clickagg.domain import validation
from clickagg.operator import children
from examples import GOOD

pytestmark = pytest.mark.k8s

OWNER = children.Owner(name="shop-kpis", namespace="default", uid="0f7e-uid")
SETTINGS = children.JobSettings(service_account="spark-runner", default_data_root="/data")
SASL = {
    "protocol": "SASL_SSL",
    "saslMechanism": "SCRAM-SHA-512",
    "credentialsSecret": {"name": "kafka-jobs"},
    "caSecret": {"name": "kafka-ca"},
}
CHOICES: dict[str, dict[str, Any]] = {
    "claim": {"storage": {"persistentVolumeClaim": "clickagg-data"}},
    "s3a": {"storage": {"uri": "s3a://clicks/shop", "credentialsSecret": "store-keys"}},
    "gs": {"storage": {"uri": "gs://clicks/shop", "credentialsSecret": "store-keys"}},
    "abfs": {
        "storage": {
            "uri": "abfss://c@acct.dfs.core.windows.net/shop",
            "credentialsSecret": "store-keys",
        }
    },
    "kafka-sasl": {
        "source": {
            "type": "kafka",
            "kafka": {"bootstrapServers": "kafka:9092", "topic": "clicks", "security": SASL},
        }
    },
}


@pytest.mark.usefixtures("peer_crds")
@pytest.mark.parametrize("choice", list(CHOICES))
def test_every_child_passes_the_spark_operator_schema(
    api: k8s_client.ApiClient, choice: str
) -> None:
    obj = yaml.safe_load((GOOD[0].parent / "shop-kpis.yaml").read_text())
    obj["spec"].update(CHOICES[choice])
    aggregation = validation.validate(obj)
    objects = k8s_client.CustomObjectsApi(api)
    for manifest in children.desired(aggregation, OWNER, SETTINGS):
        body: dict[str, Any] = dict(manifest)
        body["metadata"] = {**manifest["metadata"], "ownerReferences": []}
        kind = next(k for k in children.KINDS if k.kind == manifest["kind"])
        objects.create_namespaced_custom_object(
            kind.group,
            kind.version,
            "default",
            kind.plural,
            body,
            dry_run="All",
            field_validation="Strict",
        )
