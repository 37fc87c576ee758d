"""The local control plane is a real Kubernetes API server: version, RBAC, CRD validation.

Everything the operator tests rely on is checked here first, so a broken control plane
fails with a clear message instead of as a puzzling operator bug.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from clickagg.domain import crd
from clickagg.local import gotools
from clickagg.local import kube as local_kube
from fixtures import k8s as k8s_fixtures

pytestmark = pytest.mark.k8s

SPARK_GROUP = "sparkoperator.k8s.io"


def spark_application(name: str, **spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "Python",
        "mode": "cluster",
        "sparkVersion": "4.0.0",
        "mainApplicationFile": "local:///opt/clickagg/jobs/rollup.py",
        "driver": {"cores": 1, "memory": "512m", "serviceAccount": "clickagg-spark"},
        "executor": {"instances": 1, "cores": 1, "memory": "512m"},
        "restartPolicy": {"type": "Always"},
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": f"{SPARK_GROUP}/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def create_spark_application(api: k8s_client.ApiClient, body: dict[str, Any]) -> None:
    k8s_client.CustomObjectsApi(api).create_namespaced_custom_object(
        SPARK_GROUP, "v1beta2", "default", "sparkapplications", body, dry_run="All"
    )


def test_server_reports_the_pinned_version(api: k8s_client.ApiClient) -> None:
    info = k8s_client.VersionApi(api).get_code()
    assert info.git_version == gotools.KUBERNETES_VERSION
    assert (info.major, info.minor) == ("1", "36")


def test_status_finds_the_running_control_plane(
    kube: local_kube.KubeEndpoints, kube_run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLICKAGG_RUN_DIR", str(kube_run_dir))
    found = local_kube.status()
    assert found == kube
    # up() on a running stack returns it instead of starting another.
    assert local_kube.up() == kube


def test_rbac_denies_a_user_without_bindings(api: k8s_client.ApiClient) -> None:
    assert not k8s_fixtures.access_allowed(
        api, "clickagg-test-nobody", "list", "pods", namespace="default"
    )


def test_rbac_is_enforced_on_real_requests(kubeconfig: Path) -> None:
    # The admin (system:masters) may impersonate; the impersonated user has no bindings.
    with local_kube.api_client(kubeconfig) as nobody:
        nobody.set_default_header("Impersonate-User", "clickagg-test-nobody")
        with pytest.raises(ApiException) as denied:
            k8s_client.CoreV1Api(nobody).list_namespaced_config_map("default")
    assert denied.value.status == 403


def test_rbac_grants_what_a_role_binding_allows(api: k8s_client.ApiClient) -> None:
    rbac = k8s_client.RbacAuthorizationV1Api(api)
    name = "configmap-reader"
    role = k8s_client.V1Role(
        metadata=k8s_client.V1ObjectMeta(name=name),
        rules=[
            k8s_client.V1PolicyRule(
                api_groups=[""], resources=["configmaps"], verbs=["get", "list"]
            )
        ],
    )
    binding = k8s_client.V1RoleBinding(
        metadata=k8s_client.V1ObjectMeta(name=name),
        role_ref=k8s_client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="Role", name=name
        ),
        subjects=[
            k8s_client.RbacV1Subject(
                api_group="rbac.authorization.k8s.io", kind="User", name="clickagg-test-reader"
            )
        ],
    )
    rbac.create_namespaced_role("default", role)
    rbac.create_namespaced_role_binding("default", binding)
    try:
        assert k8s_fixtures.eventually_allowed(
            api, "clickagg-test-reader", "list", "configmaps", namespace="default"
        )
        assert not k8s_fixtures.access_allowed(
            api, "clickagg-test-reader", "delete", "configmaps", namespace="default"
        )
    finally:
        rbac.delete_namespaced_role_binding(name, "default")
        rbac.delete_namespaced_role(name, "default")


def test_peer_crds_are_established(api: k8s_client.ApiClient, peer_crds: list[Path]) -> None:
    crds = local_kube.crd_documents(peer_crds)
    names = [crd["metadata"]["name"] for crd in crds]
    assert f"sparkapplications.{SPARK_GROUP}" in names
    extensions = k8s_client.ApiextensionsV1Api(api)
    for name in names:
        status = extensions.read_custom_resource_definition_status(name).status
        assert status is not None and status.conditions, name
        established = {c.type: c.status for c in status.conditions}.get("Established")
        assert established == "True", name


@pytest.mark.usefixtures("peer_crds")
def test_a_valid_spark_application_is_accepted(api: k8s_client.ApiClient) -> None:
    create_spark_application(api, spark_application("valid-app"))


@pytest.mark.usefixtures("peer_crds")
def test_a_spark_application_with_an_unknown_type_is_rejected(
    api: k8s_client.ApiClient,
) -> None:
    with pytest.raises(ApiException) as rejected:
        create_spark_application(api, spark_application("bad-type", type="Cobol"))
    assert rejected.value.status == 422
    assert "spec.type" in str(rejected.value.body)
    assert "Cobol" in str(rejected.value.body)


@pytest.mark.usefixtures("peer_crds")
def test_a_spark_application_missing_a_required_field_is_rejected(
    api: k8s_client.ApiClient,
) -> None:
    body = spark_application("no-main-file")
    del body["spec"]["mainApplicationFile"]
    with pytest.raises(ApiException) as rejected:
        create_spark_application(api, body)
    assert rejected.value.status == 422
    assert "spec.mainApplicationFile" in str(rejected.value.body)


def test_apply_crds_replaces_an_existing_crd(kubeconfig: Path) -> None:
    # Applying a file again must update in place, not fail with AlreadyExists.
    (chart_crd,) = k8s_fixtures.chart_crd_files()
    assert local_kube.apply_crds(kubeconfig, [chart_crd]) == [crd.CRD_NAME]
