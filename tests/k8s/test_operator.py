"""The operator, run for real by kopf against the real API server and the real SolrCloud.

Each test gets its own namespace and its own operator (kopf's KopfRunner, in a thread of
this process), so the environment the operator reads per pass (the Solr URL override) can
be changed while it runs. The API server validates every child against the Spark
Operator's real CRDs. There is no kubelet and no garbage collector: nothing waits for pods,
and children disappear only because the operator's finalizer deletes them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import yaml
from kopf import testing as kopf_testing
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

import examples
import polling
from clickagg.domain import spec, validation
from clickagg.local import process
from clickagg.local import solr as local_solr
from clickagg.operator import children, conditions, kube, reconcile
from clickagg.store import client as store_client
from examples import BAD, GOOD

pytestmark = [pytest.mark.k8s, pytest.mark.usefixtures("peer_crds")]

T = TypeVar("T")

# One collection prefix for the whole module: the tests share the level collections
# (creating them is the slow part), and the module deletes them when it is done.
PREFIX = f"op{uuid.uuid4().hex[:8]}"
COLLECTIONS = [f"{PREFIX}-15m", f"{PREFIX}-1h", f"{PREFIX}-1d"]
NAME = "shop-kpis"
STREAM = children.stream_name(NAME)
ROLLUPS = [children.rollup_name(NAME, "1h"), children.rollup_name(NAME, "1d")]
WAIT_SECONDS = 30.0
AGGREGATION_API = (spec.API_GROUP, spec.API_VERSION)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared_collections(solr_client: store_client.SolrClient) -> Iterator[list[str]]:
    yield COLLECTIONS
    for name in COLLECTIONS:
        solr_client.delete_collection(name)


@pytest.fixture
def objects(api: k8s_client.ApiClient) -> k8s_client.CustomObjectsApi:
    return k8s_client.CustomObjectsApi(api)


@pytest.fixture(autouse=True)
def operator_env(
    kubeconfig: Path,
    solr: local_solr.SolrEndpoints,
    shared_collections: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kopf and the operator's client log in with the test kubeconfig; Solr is the real one."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv(reconcile.SOLR_URL_OVERRIDE_ENV, solr.base_url)


@contextmanager
def running_operator(namespace: str) -> Iterator[kopf_testing.KopfRunner]:
    args = ["run", "--standalone", "--namespace", namespace, "-m", "clickagg.operator.main"]
    with kopf_testing.KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exit_code == 0, runner.output
    assert "Traceback" not in runner.output, runner.output


# --------------------------------------------------------------------------- helpers


def eventually(check: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS) -> T:
    return polling.eventually(check, what, timeout)


def shop_kpis(namespace: str) -> dict[str, Any]:
    """examples/shop-kpis.yaml in the test's namespace, on the module's collections.

    One replica per shard: the local SolrCloud has two nodes and creating fewer cores is
    what keeps this file fast.
    """
    obj = dict(yaml.safe_load((GOOD[0].parent / "shop-kpis.yaml").read_text()))
    obj["metadata"]["namespace"] = namespace
    obj["spec"]["solr"]["collectionPrefix"] = PREFIX
    obj["spec"]["solr"]["replicationFactor"] = 1
    return obj


def create(objects: k8s_client.CustomObjectsApi, obj: dict[str, Any]) -> dict[str, Any]:
    created = objects.create_namespaced_custom_object(
        *AGGREGATION_API, obj["metadata"]["namespace"], spec.PLURAL, obj
    )
    return cast(dict[str, Any], created)


def get(objects: k8s_client.CustomObjectsApi, namespace: str, name: str = NAME) -> dict[str, Any]:
    found = objects.get_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, name)
    return cast(dict[str, Any], found)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == kind]
    return found[0] if found else {}


def wait_condition(
    objects: k8s_client.CustomObjectsApi,
    namespace: str,
    kind: str,
    truth: str,
    name: str = NAME,
    timeout: float = WAIT_SECONDS,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(objects, namespace, name)
        return obj if condition(obj, kind).get("status") == truth else None

    return eventually(check, f"{namespace}/{name} condition {kind}={truth}", timeout)


def wait_generation(
    objects: k8s_client.CustomObjectsApi, namespace: str, generation: int
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(objects, namespace)
        observed = (obj.get("status") or {}).get("observedGeneration")
        return obj if observed == generation else None

    return eventually(check, f"status observes generation {generation}")


def owned(
    objects: k8s_client.CustomObjectsApi, namespace: str, kind: children.Kind, name: str = NAME
) -> list[dict[str, Any]]:
    found = objects.list_namespaced_custom_object(
        kind.group,
        kind.version,
        namespace,
        kind.plural,
        label_selector=f"{children.AGGREGATION_LABEL}={name}",
    )
    items: list[dict[str, Any]] = cast(dict[str, Any], found)["items"]
    return sorted(items, key=lambda item: item["metadata"]["name"])


def child_names(
    objects: k8s_client.CustomObjectsApi, namespace: str, name: str = NAME
) -> list[str]:
    return [
        item["metadata"]["name"]
        for kind in children.KINDS
        for item in owned(objects, namespace, kind, name)
    ]


def wait_children(objects: k8s_client.CustomObjectsApi, namespace: str) -> None:
    expected = [STREAM, *sorted(ROLLUPS)]
    eventually(lambda: child_names(objects, namespace) == expected, f"children {expected}")


def stream_app(objects: k8s_client.CustomObjectsApi, namespace: str) -> dict[str, Any]:
    (app,) = owned(objects, namespace, children.SPARK_APPLICATION)
    return app


def set_stream_state(objects: k8s_client.CustomObjectsApi, namespace: str, state: str) -> None:
    """Write the state the way the Spark Operator does: through the status subresource."""
    kind = children.SPARK_APPLICATION
    body = {
        "status": {
            "applicationState": {"state": state},
            "driverInfo": {"podName": f"{STREAM}-driver"},  # the schema requires it
        }
    }
    objects.patch_namespaced_custom_object_status(
        kind.group, kind.version, namespace, kind.plural, STREAM, body
    )


def events(api: k8s_client.ApiClient, namespace: str, name: str = NAME) -> list[tuple[str, str]]:
    found = k8s_client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return [(str(event.type), str(event.reason)) for event in found.items]


def spec_json_of(application_spec: dict[str, Any]) -> dict[str, Any]:
    arguments = application_spec["arguments"]
    return dict(yaml.safe_load(arguments[arguments.index("--spec-json") + 1]))


# --------------------------------------------------------------------------- tests


def test_built_manifests_pass_the_spark_operator_schemas(
    objects: k8s_client.CustomObjectsApi, namespace: str
) -> None:
    aggregation = validation.validate(shop_kpis(namespace))
    owner = children.Owner(NAME, namespace, str(uuid.uuid4()))
    settings = children.JobSettings("clickagg-spark", "/data/clickagg")
    for manifest in children.desired(aggregation, owner, settings):
        kind = next(k for k in children.KINDS if k.kind == manifest["kind"])
        stored = cast(
            dict[str, Any],
            objects.create_namespaced_custom_object(
                kind.group,
                kind.version,
                namespace,
                kind.plural,
                cast(dict[str, Any], manifest),
                dry_run="All",
            ),
        )
        # Nothing the builder wrote was pruned by the schema.
        assert stored["spec"] == manifest["spec"]


def test_create_makes_collections_children_and_status(
    objects: k8s_client.CustomObjectsApi,
    namespace: str,
    solr_client: store_client.SolrClient,
) -> None:
    with running_operator(namespace):
        uid = create(objects, shop_kpis(namespace))["metadata"]["uid"]
        wait_children(objects, namespace)
        obj = wait_condition(objects, namespace, "Valid", "True")
        obj = wait_condition(objects, namespace, "Degraded", "False")

    assert set(COLLECTIONS) <= set(solr_client.list_collections())
    app = stream_app(objects, namespace)
    assert app["metadata"]["ownerReferences"][0]["uid"] == uid
    assert app["metadata"]["ownerReferences"][0]["kind"] == "Aggregation"
    affinity = app["spec"]["driver"]["affinity"]["podAffinity"]
    (term,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["weight"] == 100
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == {
        "solr-cloud": "analytics",
        "technology": "solr-cloud",
    }
    assert app["spec"]["executor"]["affinity"]["podAffinity"] == affinity
    rollups = owned(objects, namespace, children.SCHEDULED_SPARK_APPLICATION)
    assert {r["spec"]["schedule"] for r in rollups} == {"5 * * * *", "15 0 * * *"}
    assert all(r["metadata"]["ownerReferences"][0]["uid"] == uid for r in rollups)

    status = obj["status"]
    assert status["observedGeneration"] == 1
    assert [level["collection"] for level in status["levels"]] == COLLECTIONS
    assert condition(obj, "StreamingRunning")["status"] == "False"
    assert condition(obj, "StreamingRunning")["reason"] == "NotSubmitted"
    assert condition(obj, "Ready")["status"] == "False"
    assert condition(obj, "RollupsCurrent")["status"] == "Unknown"
    assert "lag" not in status
    assert "clickagg.io/cleanup" in obj["metadata"]["finalizers"]


def test_invalid_spec_is_reported_and_creates_nothing(
    api: k8s_client.ApiClient, objects: k8s_client.CustomObjectsApi, namespace: str
) -> None:
    path = next(p for p in BAD if p.name == "retention-in-minutes.yaml")
    bad = dict(yaml.safe_load(path.read_text()))
    bad["metadata"]["namespace"] = namespace
    name = bad["metadata"]["name"]
    with running_operator(namespace):
        create(objects, bad)  # the API server's schema accepts it; validation does not
        obj = wait_condition(objects, namespace, "Valid", "False", name=name)
        eventually(
            lambda: ("Warning", "InvalidSpec") in events(api, namespace, name),
            "a Warning event InvalidSpec",
        )
        time.sleep(1)  # give a wrongly created child the time to show up
        assert [
            item for kind in children.KINDS for item in owned(objects, namespace, kind, name)
        ] == []
    valid = condition(obj, "Valid")
    assert valid["reason"] == "InvalidSpec"
    assert "spec.levels[1].retention" in valid["message"]
    assert "did you mean 4mo?" in valid["message"]
    assert condition(obj, "Ready")["status"] == "False"
    # Nothing to clean up: no finalizer (a pass adds it just before the first child).
    assert reconcile.FINALIZER not in (obj["metadata"].get("finalizers") or [])


def test_spec_change_updates_the_children(
    objects: k8s_client.CustomObjectsApi, namespace: str
) -> None:
    with running_operator(namespace):
        create(objects, shop_kpis(namespace))
        wait_children(objects, namespace)
        before = stream_app(objects, namespace)
        change = {
            "spec": {
                "spark": {"executor": {"instances": 3, "cores": 1, "memory": "2g"}},
                "levels": [
                    {"granularity": "15m", "retention": "30d"},
                    {"granularity": "1h", "retention": "6mo"},
                    {"granularity": "1d", "retention": "2y"},
                ],
            }
        }
        objects.patch_namespaced_custom_object(
            *AGGREGATION_API, namespace, spec.PLURAL, NAME, change
        )
        eventually(
            lambda: stream_app(objects, namespace)["spec"]["executor"]["instances"] == 3,
            "the stream application has 3 executors",
        )
        obj = wait_generation(objects, namespace, 2)
    after = stream_app(objects, namespace)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # updated, not replaced
    rollup_1h = next(
        r
        for r in owned(objects, namespace, children.SCHEDULED_SPARK_APPLICATION)
        if r["metadata"]["name"] == children.rollup_name(NAME, "1h")
    )
    levels = spec_json_of(rollup_1h["spec"]["template"])["spec"]["levels"]
    assert levels[1]["retention"] == "6mo"
    assert spec_json_of(after["spec"])["spec"]["levels"][1]["retention"] == "6mo"
    assert condition(obj, "Valid")["status"] == "True"


def test_stream_state_drives_streaming_running_and_ready(
    api: k8s_client.ApiClient, objects: k8s_client.CustomObjectsApi, namespace: str
) -> None:
    with running_operator(namespace):
        create(objects, shop_kpis(namespace))
        wait_children(objects, namespace)
        wait_condition(objects, namespace, "Degraded", "False")
        set_stream_state(objects, namespace, "RUNNING")
        obj = wait_condition(objects, namespace, "Ready", "True")
        assert condition(obj, "StreamingRunning")["status"] == "True"
        eventually(lambda: ("Normal", "Ready") in events(api, namespace), "a Normal event Ready")

        set_stream_state(objects, namespace, "PENDING_RERUN")
        obj = wait_condition(objects, namespace, "Ready", "False")
    streaming = condition(obj, "StreamingRunning")
    assert (streaming["status"], streaming["reason"]) == ("False", "PendingRerun")
    assert condition(obj, "Ready")["reason"] == "StreamingNotRunning"


def test_unreachable_solr_degrades_and_recovers(
    api: k8s_client.ApiClient,
    objects: k8s_client.CustomObjectsApi,
    namespace: str,
    solr: local_solr.SolrEndpoints,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = f"http://127.0.0.1:{process.free_port()}/solr"
    monkeypatch.setenv(reconcile.SOLR_URL_OVERRIDE_ENV, closed)
    # The referenced SolrCloud exists: only its Solr does not answer.
    solr_cloud = {
        "apiVersion": "solr.apache.org/v1beta1",
        "kind": "SolrCloud",
        "metadata": {"name": "analytics"},
        "spec": {},
    }
    objects.create_namespaced_custom_object(
        "solr.apache.org", "v1beta1", namespace, "solrclouds", solr_cloud
    )
    with running_operator(namespace):
        create(objects, shop_kpis(namespace))
        obj = wait_condition(objects, namespace, "Degraded", "True")
        degraded = condition(obj, "Degraded")
        assert degraded["reason"] == "SolrUnreachable"
        assert closed.removesuffix("/solr") in degraded["message"]
        assert condition(obj, "Ready")["status"] == "False"
        # The children come first; the stream job ensures its collections before it starts.
        wait_children(objects, namespace)
        eventually(
            lambda: ("Warning", "SolrUnreachable") in events(api, namespace),
            "a Warning event SolrUnreachable",
        )

        # The operator reads the override on every pass: the next retry finds Solr.
        monkeypatch.setenv(reconcile.SOLR_URL_OVERRIDE_ENV, solr.base_url)
        obj = wait_condition(objects, namespace, "Degraded", "False")
        wait_children(objects, namespace)
        eventually(
            lambda: ("Normal", "Recovered") in events(api, namespace), "a Normal event Recovered"
        )
    assert condition(obj, "Degraded")["reason"] == "Reconciled"


def test_children_come_before_the_collections_and_the_status_says_so(
    objects: k8s_client.CustomObjectsApi,
    namespace: str,
    solr_client: store_client.SolrClient,
) -> None:
    """The two halves of one pass, as main.py runs them on their two pools."""
    prefix = f"wait{uuid.uuid4().hex[:8]}"
    collection = f"{prefix}-15m"
    body = create(objects, examples.one_level(namespace, "waits", prefix))
    config = reconcile.Config.from_env()
    logger = logging.getLogger("test-operator")

    first = reconcile.apply(body, retry=0, logger=logger, config=config)

    assert isinstance(first, reconcile.Applied)
    assert len(child_names(objects, namespace, "waits")) == 2
    # The pass itself added the finalizer before the children (kopf no longer does first).
    assert reconcile.FINALIZER in get(objects, namespace, "waits")["metadata"]["finalizers"]
    assert collection not in solr_client.list_collections()
    waiting = reconcile.waiting(first)
    assert waiting is not None
    assert kube.patch_aggregation_status(namespace, "waits", waiting.patch())
    ready = condition(get(objects, namespace, "waits"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WaitingForCollections")
    assert collection in ready["message"]
    try:
        outcome = reconcile.finish(first, retry=0, config=config)
        assert collection in solr_client.list_collections()
        assert outcome.status is not None
        ready_after = conditions.find(outcome.status.conditions, conditions.READY)
        assert ready_after is not None and ready_after.reason == "StreamingNotRunning"
        reasons = [notice.reason for notice in outcome.notices]
        assert reasons == ["ChildCreated", "ChildCreated", "CollectionCreated"]
    finally:
        solr_client.delete_collection(collection)


def test_restart_keeps_children_and_status(
    objects: k8s_client.CustomObjectsApi, namespace: str
) -> None:
    with running_operator(namespace):
        create(objects, shop_kpis(namespace))
        wait_children(objects, namespace)
        set_stream_state(objects, namespace, "RUNNING")
        before = wait_condition(objects, namespace, "Ready", "True")
    uids = {
        item["metadata"]["name"]: item["metadata"]["uid"]
        for kind in children.KINDS
        for item in owned(objects, namespace, kind)
    }
    # A change while no operator runs is picked up by the next one.
    change = {"spec": {"spark": {"executor": {"instances": 4, "cores": 1, "memory": "2g"}}}}
    objects.patch_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, NAME, change)

    with running_operator(namespace):
        eventually(
            lambda: stream_app(objects, namespace)["spec"]["executor"]["instances"] == 4,
            "the restarted operator applies the change",
        )
        after = wait_generation(objects, namespace, 2)
    assert {
        item["metadata"]["name"]: item["metadata"]["uid"]
        for kind in children.KINDS
        for item in owned(objects, namespace, kind)
    } == uids  # the same objects: none duplicated, none recreated
    for kind in ("Valid", "Ready", "StreamingRunning"):
        assert condition(after, kind)["status"] == "True"
        assert (
            condition(after, kind)["lastTransitionTime"]
            == (condition(before, kind)["lastTransitionTime"])
        )


def test_delete_removes_children_and_retains_collections(
    objects: k8s_client.CustomObjectsApi,
    namespace: str,
    solr_client: store_client.SolrClient,
) -> None:
    with running_operator(namespace):
        create(objects, shop_kpis(namespace))
        wait_children(objects, namespace)
        objects.delete_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, NAME)

        def gone() -> bool:
            try:
                get(objects, namespace)
            except ApiException as exc:
                return bool(exc.status == 404)
            return False

        eventually(gone, "the Aggregation is deleted once its finalizer ran")
    assert child_names(objects, namespace) == []
    assert set(COLLECTIONS) <= set(solr_client.list_collections())  # deletionPolicy Retain


def test_delete_policy_delete_drops_the_collections(
    objects: k8s_client.CustomObjectsApi,
    namespace: str,
    solr_client: store_client.SolrClient,
) -> None:
    obj = shop_kpis(namespace)
    prefix = f"{PREFIX}d"
    obj["spec"]["solr"]["collectionPrefix"] = prefix
    # One level, so one collection to create: it also gets the retention-only job.
    obj["spec"]["levels"] = [{"granularity": "15m", "retention": "30d"}]
    obj["spec"]["deletionPolicy"] = "Delete"
    expected = [STREAM, children.rollup_name(NAME, "15m")]
    with running_operator(namespace):
        create(objects, obj)
        eventually(lambda: child_names(objects, namespace) == expected, f"children {expected}")
        # The children come first; the collection follows in the same pass.
        eventually(
            lambda: f"{prefix}-15m" in solr_client.list_collections(), "the collection exists"
        )
        objects.delete_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, NAME)
        eventually(
            lambda: f"{prefix}-15m" not in solr_client.list_collections(),
            "the collection is dropped",
        )
        eventually(lambda: child_names(objects, namespace) == [], "the children are deleted")
