"""spec.storage and the Kafka source in the rendered Spark children: volumes, connectors,
settings and credentials by reference, for every choice."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from clickagg import errors
from clickagg.domain import validation
from clickagg.operator import children
from examples import GOOD

pytestmark = pytest.mark.unit

OWNER = children.Owner(name="shop-kpis", namespace="shop", uid="0f7e-uid")
SETTINGS = children.JobSettings(service_account="spark-runner", default_data_root="/data")
KAFKA = {"bootstrapServers": "kafka:9092", "topic": "clicks"}


def shop(**spec: Any) -> Any:
    obj = yaml.safe_load((GOOD[0].parent / "shop-kpis.yaml").read_text())
    obj["metadata"]["namespace"] = "shop"
    obj["spec"].update(spec)
    return validation.validate(obj)


def apps(aggregation: Any) -> list[dict[str, Any]]:
    """Every child's SparkApplication spec (a rollup's template), stream first."""
    found = []
    for manifest in children.desired(aggregation, OWNER, SETTINGS):
        app: Any = manifest["spec"]
        found.append(app.get("template", app))
    assert len(found) > 1
    return found


def data_root_of(app: dict[str, Any]) -> str:
    arguments = app["arguments"]
    return str(arguments[arguments.index("--data-root") + 1])


def from_secret(env: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def test_default_storage_is_inside_the_pods_as_before() -> None:
    for app in apps(shop()):
        assert "volumes" not in app
        assert "volumeMounts" not in app["driver"] and "volumeMounts" not in app["executor"]
        assert app["sparkConf"] == {
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "4",  # 2 executors of 1 core
        }
        assert app["deps"] == {"jars": [children.SESSIONIZER_JAR]}
        assert data_root_of(app) == "/data/shop/shop-kpis"


def test_a_claim_is_mounted_at_the_data_root_in_driver_and_executors() -> None:
    for app in apps(shop(storage={"persistentVolumeClaim": "clickagg-data"})):
        assert app["volumes"] == [
            {"name": "clickagg-data", "persistentVolumeClaim": {"claimName": "clickagg-data"}}
        ]
        mount = [{"name": "clickagg-data", "mountPath": "/data"}]
        assert app["driver"]["volumeMounts"] == mount
        assert app["executor"]["volumeMounts"] == mount
        assert data_root_of(app) == "/data/shop/shop-kpis"  # below the mount
        assert "packages" not in app["deps"]


def test_the_operators_default_claim_serves_an_aggregation_that_names_no_storage() -> None:
    claimed = children.JobSettings("spark-runner", "/data", default_claim="team-data")
    volume = {"name": "clickagg-data", "persistentVolumeClaim": {"claimName": "team-data"}}
    for manifest in children.desired(shop(), OWNER, claimed):
        app: Any = manifest["spec"]
        app = app.get("template", app)
        assert app["volumes"] == [volume]
        assert app["driver"]["volumeMounts"] == [{"name": "clickagg-data", "mountPath": "/data"}]
    # The spec's own choice wins: its claim, or its object store (no claim at all).
    own = shop(storage={"persistentVolumeClaim": "mine"})
    assert children.data_claim(own, claimed) == "mine"
    assert children.data_claim(shop(storage={"uri": "s3a://clicks/shop"}), claimed) is None
    assert children.data_claim(shop(), SETTINGS) is None


@pytest.mark.parametrize(
    ("uri", "package", "conf", "env"),
    [
        (
            "s3a://clicks/shop",
            "org.apache.hadoop:hadoop-aws:3.5.0",
            {
                "spark.hadoop.fs.s3a.aws.credentials.provider": (
                    "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
                )
            },
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        ),
        (
            "gs://clicks/shop",
            "com.google.cloud.bigdataoss:gcs-connector:hadoop3-2.2.26",
            {
                "spark.hadoop.fs.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
                "spark.hadoop.fs.gs.auth.service.account.private.key": "${env.GCS_PRIVATE_KEY}",
            },
            ["GCS_CLIENT_EMAIL", "GCS_PRIVATE_KEY_ID", "GCS_PRIVATE_KEY"],
        ),
        (
            "abfss://events@shopdata.dfs.core.windows.net/shop",
            "org.apache.hadoop:hadoop-azure:3.5.0",
            {
                "spark.hadoop.fs.azure.account.key.shopdata.dfs.core.windows.net": (
                    "${env.AZURE_STORAGE_KEY}"
                )
            },
            ["AZURE_STORAGE_KEY"],
        ),
    ],
)
def test_an_object_store_is_the_data_root_with_its_connector_and_secret(
    uri: str, package: str, conf: dict[str, str], env: list[str]
) -> None:
    aggregation = shop(storage={"uri": uri + "/", "credentialsSecret": "store-keys"})
    for app in apps(aggregation):
        assert data_root_of(app) == uri
        assert app["deps"]["packages"] == [package]
        assert app["sparkConf"]["spark.jars.ivy"] == children.IVY_DIR
        assert conf.items() <= app["sparkConf"].items()
        expected = [from_secret(name, "store-keys", name) for name in env]
        assert app["driver"]["env"] == expected
        assert app["executor"]["env"] == expected
        assert "volumes" not in app


def test_an_object_store_without_a_secret_uses_the_pods_identity() -> None:
    for app in apps(shop(storage={"uri": "s3a://clicks/shop"})):
        assert app["deps"]["packages"] == ["org.apache.hadoop:hadoop-aws:3.5.0"]
        assert "spark.hadoop.fs.s3a.aws.credentials.provider" not in app["sparkConf"]
        assert "env" not in app["driver"]


def test_a_kafka_source_gives_only_the_stream_the_connector_baked_into_the_image() -> None:
    stream, *rollups = apps(shop(source={"type": "kafka", "kafka": KAFKA}))
    assert stream["deps"]["jars"] == [children.SESSIONIZER_JAR, *children.KAFKA_CONNECTOR_JARS]
    assert all(
        jar.startswith("local:///opt/clickagg/jars/kafka/") for jar in stream["deps"]["jars"][1:]
    )
    for rollup in rollups:
        assert rollup["deps"]["jars"] == [children.SESSIONIZER_JAR]
    assert "env" not in stream["driver"]


def test_kafka_sasl_credentials_reach_the_stream_by_reference_only() -> None:
    security = {
        "protocol": "SASL_SSL",
        "saslMechanism": "SCRAM-SHA-512",
        "credentialsSecret": {"name": "kafka-jobs", "usernameKey": "u", "passwordKey": "p"},
    }
    stream, *rollups = apps(
        shop(source={"type": "kafka", "kafka": {**KAFKA, "security": security}})
    )
    expected = [
        from_secret("CLICKAGG_KAFKA_USERNAME", "kafka-jobs", "u"),
        from_secret("CLICKAGG_KAFKA_PASSWORD", "kafka-jobs", "p"),
    ]
    assert stream["driver"]["env"] == expected
    assert stream["executor"]["env"] == expected
    for rollup in rollups:
        assert "env" not in rollup["driver"]
    assert "jaas" not in json.dumps(stream).lower()


def test_the_kafka_ca_secret_is_mounted_into_the_stream_only() -> None:
    security = {
        "protocol": "SASL_SSL",
        "saslMechanism": "SCRAM-SHA-512",
        "credentialsSecret": {"name": "kafka-jobs"},
        "caSecret": {"name": "kafka-ca", "key": "root.pem"},
    }
    stream, *rollups = apps(
        shop(source={"type": "kafka", "kafka": {**KAFKA, "security": security}})
    )
    items = [{"key": "root.pem", "path": "ca.crt"}]
    assert stream["volumes"] == [
        {"name": "kafka-ca", "secret": {"secretName": "kafka-ca", "items": items}}
    ]
    mount = [{"name": "kafka-ca", "mountPath": children.KAFKA_CA_DIR, "readOnly": True}]
    named = {"name": "CLICKAGG_KAFKA_CA_FILE", "value": f"{children.KAFKA_CA_DIR}/ca.crt"}
    for pod in (stream["driver"], stream["executor"]):
        assert pod["volumeMounts"] == mount
        assert named in pod["env"]
    for rollup in rollups:
        assert "volumes" not in rollup


@pytest.mark.parametrize(
    ("storage", "path", "message"),
    [
        (
            {"persistentVolumeClaim": "c", "uri": "s3a://b/p"},
            "spec.storage",
            "at most one of persistentVolumeClaim and uri",
        ),
        ({"credentialsSecret": "s"}, "spec.storage.credentialsSecret", "set spec.storage.uri"),
        ({"uri": "hdfs://nn/p"}, "spec.storage.uri", "should match pattern"),
    ],
)
def test_storage_choices_are_validated(storage: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(errors.SpecError) as raised:
        shop(storage=storage)
    issues = {issue.path: issue.message for issue in raised.value.issues}
    assert message in issues[path]
