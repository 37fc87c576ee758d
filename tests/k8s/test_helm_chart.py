"""The Helm chart lints, renders both RBAC modes, and installs into a real API server.

Every rendered manifest is also sent to the API server as a server-side dry run, so the
real schemas (not a copy of them) decide whether the chart is valid for Kubernetes 1.36.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from clickagg.local import gotools
from clickagg.local import kube as local_kube
from clickagg.operator import reconcile
from clickagg.store import credentials
from fixtures import k8s as k8s_fixtures

pytestmark = pytest.mark.k8s

CHART = str(k8s_fixtures.CHART)
KUBE_VERSION = gotools.KUBERNETES_VERSION.removeprefix("v")
WATCHED = ["shop", "ads"]


def render(
    helm: k8s_fixtures.HelmRunner,
    *values: str,
    namespace: str = "clickagg",
    release: str = "clickagg",
) -> list[dict[str, Any]]:
    """`helm template` output as a list of objects."""
    result = helm(
        "template",
        release,
        CHART,
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *values,
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def operator_args(docs: list[dict[str, Any]]) -> list[str]:
    (deployment,) = by_kind(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return [*container["command"], *container["args"]]


def grants_aggregations(role: dict[str, Any]) -> bool:
    return any("aggregations" in rule.get("resources", []) for rule in role["rules"])


def test_helm_reports_the_pinned_version(helm: k8s_fixtures.HelmRunner) -> None:
    result = helm("version", "--template", "{{ .Version }}")
    assert result.stdout.strip() == gotools.HELM_VERSION


def test_chart_lints_cleanly(helm: k8s_fixtures.HelmRunner) -> None:
    helm("lint", "--strict", CHART, "--kube-version", KUBE_VERSION)
    helm(
        "lint",
        "--strict",
        CHART,
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "operator.namespaces={shop,ads}",
        "--set",
        "operator.logFormat=json",
    )


def test_all_namespaces_renders_a_cluster_role(helm: k8s_fixtures.HelmRunner) -> None:
    docs = render(helm)
    assert "--all-namespaces" in operator_args(docs)
    assert any(grants_aggregations(role) for role in by_kind(docs, "ClusterRole"))
    assert not any(grants_aggregations(role) for role in by_kind(docs, "Role"))
    spark_roles = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-spark")]
    assert [r["metadata"]["namespace"] for r in spark_roles] == ["clickagg"]


def test_a_namespace_list_renders_one_role_per_namespace(
    helm: k8s_fixtures.HelmRunner,
) -> None:
    docs = render(helm, "--set", "operator.namespaces={shop,ads}")
    args = operator_args(docs)
    assert "--all-namespaces" not in args
    assert {"--namespace=shop", "--namespace=ads"} <= set(args)
    assert not any(grants_aggregations(role) for role in by_kind(docs, "ClusterRole"))
    operator_roles = [r for r in by_kind(docs, "Role") if grants_aggregations(r)]
    assert sorted(r["metadata"]["namespace"] for r in operator_roles) == sorted(WATCHED)
    spark_accounts = by_kind(docs, "ServiceAccount")
    assert {"shop", "ads"} <= {sa["metadata"]["namespace"] for sa in spark_accounts}


def test_the_operator_runs_hardened_with_a_liveness_probe(
    helm: k8s_fixtures.HelmRunner,
) -> None:
    (deployment,) = by_kind(render(helm), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_default_data_claim_reaches_the_operator_only_when_set(
    helm: k8s_fixtures.HelmRunner,
) -> None:
    def operator_env(*values: str) -> dict[str, str]:
        (deployment,) = by_kind(render(helm, *values), "Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value", "") for e in container["env"]}

    assert reconcile.DATA_CLAIM_ENV not in operator_env()
    claimed = operator_env("--set", "sparkJobs.dataClaim=clickagg-data")
    assert claimed[reconcile.DATA_CLAIM_ENV] == "clickagg-data"


def test_the_operators_own_solr_user_comes_from_its_secret_only_when_named(
    helm: k8s_fixtures.HelmRunner,
) -> None:
    def operator_env(*values: str) -> dict[str, Any]:
        (deployment,) = by_kind(render(helm, *values), "Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert not any("password" in arg.lower() for arg in container["args"])
        return {e["name"]: e for e in container["env"]}

    assert credentials.USERNAME_ENV not in operator_env()
    named = operator_env("--set", "operator.solrCredentialsSecret.name=solr-admin")
    for variable, key in (
        (credentials.USERNAME_ENV, "username"),
        (credentials.PASSWORD_ENV, "password"),
    ):
        assert "value" not in named[variable]  # by reference only
        assert named[variable]["valueFrom"]["secretKeyRef"] == {"name": "solr-admin", "key": key}


def test_long_release_names_are_cut_to_63_characters(helm: k8s_fixtures.HelmRunner) -> None:
    # 53 characters is the longest release name helm accepts.
    for values in ([], ["--set", "operator.namespaces={shop}"]):
        docs = render(helm, *values, release="r" * 53)
        names = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
        assert all(len(name) <= 63 and "--" not in name for _, _, name in names), names
        # Cutting must never make two objects of one kind in one namespace collide.
        assert len(set(names)) == len(names), names


@pytest.mark.parametrize(
    "bad_value",
    [
        "operator.logFormat=xml",
        "operator.replicas=3",
        "image.pullPolicy=Sometimes",
        "operator.unknownKey=1",
        "service.port=80",
        "service.corsOrigins={*}",
        "service.solrUrl=solr:8983",
        "service.kubernetesService.type=Ingress",
        "sparkJobs.dataClaim=Not_A_Claim",
    ],
)
def test_the_values_schema_rejects_bad_values(
    helm: k8s_fixtures.HelmRunner, bad_value: str
) -> None:
    result = helm(
        "template", CHART, "--kube-version", KUBE_VERSION, "--set", bad_value, check=False
    )
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr


def server_side_dry_run(api: k8s_client.ApiClient, docs: list[dict[str, Any]]) -> None:
    """Send every object to the API server with dryRun=All; any rejection fails the test."""
    client = local_kube.dynamic_client(api)
    rejected = []
    for doc in docs:
        resource = client.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        namespace = doc["metadata"].get("namespace") if resource.namespaced else None
        try:
            resource.create(body=doc, namespace=namespace, dry_run="All")
        except ApiException as exc:
            rejected.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.status} {exc.body}")
    assert not rejected, "\n".join(rejected)


@pytest.mark.parametrize(
    "values",
    [[], ["--set", "operator.namespaces={shop,ads}", "--set", "operator.logFormat=json"]],
    ids=["all-namespaces", "namespace-list"],
)
def test_the_api_server_accepts_every_rendered_manifest(
    helm: k8s_fixtures.HelmRunner,
    kubeconfig: Path,
    api: k8s_client.ApiClient,
    values: list[str],
) -> None:
    for namespace in ["dry-run", *WATCHED]:
        local_kube.create_namespace(kubeconfig, namespace)
    server_side_dry_run(api, render(helm, *values, namespace="dry-run"))


def test_helm_install_dry_run_on_the_server_succeeds(
    helm: k8s_fixtures.HelmRunner, kubeconfig: Path
) -> None:
    local_kube.create_namespace(kubeconfig, "dry-install")
    result = helm("install", "dry", CHART, "--namespace", "dry-install", "--dry-run=server")
    assert "STATUS: pending-install" in result.stdout


def test_helm_install_creates_the_operator_objects(
    helm: k8s_fixtures.HelmRunner, kubeconfig: Path, api: k8s_client.ApiClient
) -> None:
    namespace = "clickagg-system"
    local_kube.create_namespace(kubeconfig, namespace)
    # No --wait: a bare API server has no kubelet, so pods never run.
    result = helm("install", "demo", CHART, "--namespace", namespace)
    assert "kubectl apply -f examples/shop-kpis.yaml" in result.stdout

    deployment = k8s_client.AppsV1Api(api).read_namespaced_deployment(
        "demo-clickagg-operator", namespace
    )
    pod = deployment.spec.template.spec if deployment.spec else None
    assert pod is not None and pod.service_account_name == "demo-clickagg-operator"
    core = k8s_client.CoreV1Api(api)
    core.read_namespaced_service_account("demo-clickagg-operator", namespace)
    core.read_namespaced_service_account("demo-clickagg-spark", namespace)
    rbac = k8s_client.RbacAuthorizationV1Api(api)
    rbac.read_cluster_role("demo-clickagg-operator")
    rbac.read_cluster_role_binding("demo-clickagg-operator")

    # Grants first (they wait for the authorizer to see the new bindings), then denials.
    allowed, denied = k8s_fixtures.eventually_allowed, k8s_fixtures.access_allowed
    operator = f"system:serviceaccount:{namespace}:demo-clickagg-operator"
    spark = f"system:serviceaccount:{namespace}:demo-clickagg-spark"
    assert allowed(
        api, operator, "patch", "aggregations", group="clickagg.io", subresource="status"
    )
    assert allowed(api, operator, "create", "sparkapplications", group="sparkoperator.k8s.io")
    assert allowed(api, operator, "get", "secrets")
    assert allowed(api, spark, "create", "pods", namespace=namespace)
    assert not denied(api, operator, "list", "secrets")
    assert not denied(api, operator, "create", "pods")
    assert not denied(api, spark, "get", "secrets", namespace=namespace)

    status = json.loads(helm("status", "demo", "--namespace", namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    helm("uninstall", "demo", "--namespace", namespace)


def test_the_example_named_in_notes_is_accepted_by_the_chart_crd(
    api: k8s_client.ApiClient,
) -> None:
    # NOTES.txt tells users to `kubectl apply -f examples/shop-kpis.yaml`; it must pass.
    if not k8s_fixtures.chart_crd_files():
        pytest.fail("charts/clickagg/crds/ is empty: run `make crd`")
    example = k8s_fixtures.REPO / "examples" / "shop-kpis.yaml"
    server_side_dry_run(api, [yaml.safe_load(example.read_text())])


def service_values(tmp_path: Path, **service: Any) -> list[str]:
    """`-f` a values file that enables the KPI service for the reference Aggregation."""
    example = yaml.safe_load((k8s_fixtures.REPO / "examples" / "shop-kpis.yaml").read_text())
    values = {"service": {
        "enabled": True, "solrUrl": "http://analytics-solrcloud-common/solr",
        "aggregations": {"shop-kpis": example}, **service,
    }}  # fmt: skip
    path = tmp_path / "service-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["-f", str(path)]


def service_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [
        d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-service")
    ]
    return deployment


def test_the_service_is_off_by_default(helm: k8s_fixtures.HelmRunner) -> None:
    docs = render(helm)
    assert not [d for d in docs if d["metadata"]["name"].endswith("-service")]


def test_the_service_runs_hardened_with_probes_and_its_aggregations(
    helm: k8s_fixtures.HelmRunner, tmp_path: Path
) -> None:
    docs = render(helm, *service_values(tmp_path, tokenSecret={"name": "kpi-token", "key": "t"}))
    deployment = service_deployment(docs)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["clickagg", "serve"]
    assert "--solr-url=http://analytics-solrcloud-common/solr" in container["args"]
    assert container["args"][-1] == "/etc/clickagg/aggregations/shop-kpis.yaml"
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    token = next(e for e in container["env"] if e["name"] == "CLICKAGG_SERVICE_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "kpi-token", "key": "t"}
    (config_map,) = by_kind(docs, "ConfigMap")
    served = yaml.safe_load(config_map["data"]["shop-kpis.yaml"])
    assert served["metadata"]["name"] == "shop-kpis"
    (service,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("-service")]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_service_needs_a_solr_url(helm: k8s_fixtures.HelmRunner, tmp_path: Path) -> None:
    result = helm(
        "template", CHART, "--kube-version", KUBE_VERSION, *service_values(tmp_path, solrUrl=""),
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "service.solrUrl is required when service.enabled is true" in result.stderr


def test_the_api_server_accepts_the_service_manifests(
    helm: k8s_fixtures.HelmRunner, kubeconfig: Path, api: k8s_client.ApiClient, tmp_path: Path
) -> None:
    local_kube.create_namespace(kubeconfig, "dry-run-service")
    docs = render(helm, *service_values(tmp_path), namespace="dry-run-service")
    server_side_dry_run(api, docs)
    helm("lint", "--strict", CHART, "--kube-version", KUBE_VERSION, *service_values(tmp_path))


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = by_kind(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value", "") for item in container["env"]}


def webhook_roles(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [role for role in by_kind(docs, kind) if role["metadata"]["name"].endswith("-webhook")]


def test_the_webhook_with_certificates_the_operator_issues(helm: k8s_fixtures.HelmRunner) -> None:
    docs = render(helm, "--set", "operator.namespaces={shop,ads}")
    (configuration,) = by_kind(docs, "ValidatingWebhookConfiguration")
    (hook,) = configuration["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["rules"][0]["resources"] == ["aggregations"]
    assert hook["clientConfig"]["service"] == {
        "name": "clickagg-webhook",
        "namespace": "clickagg",
        "path": "/validate-aggregation",
        "port": 443,
    }
    (service,) = by_kind(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"
    env = env_of(docs)
    assert env["CLICKAGG_WEBHOOK_CERTIFICATES"] == "clickagg/clickagg-webhook-tls"
    assert env["CLICKAGG_WEBHOOK_CONFIGURATION"] == configuration["metadata"]["name"]
    assert "clickagg-webhook.clickagg.svc" in env["CLICKAGG_WEBHOOK_HOSTS"].split(",")
    assert env["CLICKAGG_WATCHED_NAMESPACES"] == "shop,ads"
    # RBAC for exactly that: its own Secret and its own webhook configuration.
    (secrets_role,) = webhook_roles(docs, "Role")
    named = [rule for rule in secrets_role["rules"] if rule.get("resourceNames")]
    assert named == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["clickagg-webhook-tls"],
            "verbs": ["get", "update"],
        }
    ]
    (patcher,) = webhook_roles(docs, "ClusterRole")
    assert patcher["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [configuration["metadata"]["name"]],
            "verbs": ["get", "patch"],
        }
    ]


def test_the_webhook_with_cert_manager(helm: k8s_fixtures.HelmRunner) -> None:
    docs = render(helm, "--set", "webhook.certificates=cert-manager")
    (configuration,) = by_kind(docs, "ValidatingWebhookConfiguration")
    annotations = configuration["metadata"]["annotations"]
    assert annotations["cert-manager.io/inject-ca-from"] == "clickagg/clickagg-webhook-tls"
    (certificate,) = by_kind(docs, "Certificate")
    assert certificate["spec"]["secretName"] == "clickagg-webhook-tls"
    assert "clickagg-webhook.clickagg.svc" in certificate["spec"]["dnsNames"]
    assert [issuer["spec"] for issuer in by_kind(docs, "Issuer")] == [{"selfSigned": {}}]
    assert env_of(docs)["CLICKAGG_WEBHOOK_CERT_DIR"] == "/etc/clickagg/webhook-tls"
    assert webhook_roles(docs, "Role") == webhook_roles(docs, "ClusterRole") == []
    own_issuer = render(
        helm, "--set", "webhook.certificates=cert-manager",
        "--set", "webhook.certManagerIssuerRef.name=corporate-ca",
        "--set", "webhook.certManagerIssuerRef.kind=ClusterIssuer",
    )  # fmt: skip
    assert by_kind(own_issuer, "Issuer") == []
    (certificate,) = by_kind(own_issuer, "Certificate")
    assert certificate["spec"]["issuerRef"] == {"name": "corporate-ca", "kind": "ClusterIssuer"}


def test_the_webhook_can_be_left_out(helm: k8s_fixtures.HelmRunner) -> None:
    docs = render(helm, "--set", "webhook.enabled=false")
    assert by_kind(docs, "ValidatingWebhookConfiguration") == by_kind(docs, "Service") == []
    assert not any(key.startswith("CLICKAGG_WEBHOOK") for key in env_of(docs))
