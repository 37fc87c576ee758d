"""The operator SIGKILLed mid-reconcile, then restarted: nothing duplicated, nothing lost.

The operator runs as its own process (`python -m kopf run ... -m clickagg.operator.main`, as
in the chart's Deployment) against the real API server and SolrCloud. COUNT small
Aggregations are created at once; as soon as the first child exists, while the others are
still being reconciled, the operator's process group gets SIGKILL (no cleanup, no finalizer
or status writes). A new operator then settles everything: each Aggregation has exactly its
collection and its two children, owned by it, with a correct status, and no event says the
same thing twice. A killed pass loses its events (the operator posts them when the pass
returns) and its status; the restarted pass finds the work done ("present", "unchanged") but
not recorded in the status (levels[].collection, children), and announces it then: every
collection and every child gets its creation event at least once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client as k8s_client

import examples
import polling
from clickagg.domain import spec
from clickagg.local import solr as local_solr
from clickagg.operator import children, reconcile
from clickagg.store import client as store_client

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(600), pytest.mark.usefixtures("peer_crds")]

COUNT = 12
ANNOUNCEMENTS = {"CollectionCreated", "CollectionFound", "ChildCreated"}
AGGREGATION_API = (spec.API_GROUP, spec.API_VERSION)


def start_operator(
    namespace: str, kubeconfig: Path, solr_url: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        reconcile.SOLR_URL_OVERRIDE_ENV: solr_url,
    }
    argv = [
        sys.executable, "-m", "kopf", "run", "--standalone",
        "--namespace", namespace, "-m", "clickagg.operator.main",
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill(operator: subprocess.Popen[bytes]) -> None:
    if operator.poll() is None:
        os.killpg(operator.pid, signal.SIGKILL)
    operator.wait()


def owned_children(objects: k8s_client.CustomObjectsApi, namespace: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for kind in children.KINDS:
        listed = objects.list_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural
        )
        found += cast(dict[str, Any], listed)["items"]
    return found


def aggregations(objects: k8s_client.CustomObjectsApi, namespace: str) -> list[dict[str, Any]]:
    listed = objects.list_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL)
    return cast(list[dict[str, Any]], cast(dict[str, Any], listed)["items"])


def conditions_of(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        c["type"]: (c["status"], c["reason"])
        for c in (obj.get("status") or {}).get("conditions", [])
    }


def settled(obj: dict[str, Any]) -> bool:
    """Valid, reconciled (not Degraded) and waiting for a Spark Operator that never comes."""
    found = conditions_of(obj)
    return (
        found.get("Valid", ("", ""))[0] == "True"
        and found.get("Degraded", ("", ""))[0] == "False"
        and found.get("Ready", ("", ""))[0] == "False"
    )


def test_operator_killed_mid_reconcile_settles_without_duplicates_or_losses(
    api: k8s_client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    solr: local_solr.SolrEndpoints,
    solr_client: store_client.SolrClient,
    tmp_path: Path,
) -> None:
    objects = k8s_client.CustomObjectsApi(api)
    core = k8s_client.CoreV1Api(api)
    prefix = f"cr{uuid.uuid4().hex[:8]}"
    names = [f"agg-{index:02d}" for index in range(COUNT)]
    collections = {f"{prefix}-{index:02d}-15m" for index in range(COUNT)}
    log = tmp_path / "operator.log"
    operator = start_operator(namespace, kubeconfig, solr.base_url, log)
    try:
        for index, name in enumerate(names):
            objects.create_namespaced_custom_object(
                *AGGREGATION_API,
                namespace,
                spec.PLURAL,
                examples.one_level(namespace, name, f"{prefix}-{index:02d}"),
            )
        polling.eventually(
            lambda: owned_children(objects, namespace), "the first child", 120, interval=0.05
        )
        kill(operator)
        assert operator.returncode == -signal.SIGKILL
        at_kill = [a for a in aggregations(objects, namespace) if settled(a)]
        children_at_kill = len(owned_children(objects, namespace))
        print(f"\nat the kill: {len(at_kill)}/{COUNT} settled, {children_at_kill} children")
        # Killed mid-reconcile: some Aggregations were not done yet.
        assert len(at_kill) < COUNT, "every Aggregation settled before the kill"

        operator = start_operator(namespace, kubeconfig, solr.base_url, log)
        polling.eventually(
            lambda: (
                all(settled(a) for a in aggregations(objects, namespace))
                and len(owned_children(objects, namespace)) >= 2 * COUNT
            ),
            "every Aggregation settled after the restart",
            180,
        )

        stored = {a["metadata"]["name"]: a for a in aggregations(objects, namespace)}
        assert sorted(stored) == names
        owned = owned_children(objects, namespace)
        kinds = Counter(item["kind"] for item in owned)
        assert kinds == {"SparkApplication": COUNT, "ScheduledSparkApplication": COUNT}
        for name, obj in stored.items():
            mine = sorted(
                item["metadata"]["name"]
                for item in owned
                if [r["uid"] for r in item["metadata"]["ownerReferences"]]
                == [obj["metadata"]["uid"]]
            )
            assert mine == [children.rollup_name(name, "15m"), children.stream_name(name)]
            assert conditions_of(obj)["Ready"] == ("False", "StreamingNotRunning"), obj["status"]
        present = {c for c in solr_client.list_collections() if c.startswith(prefix)}
        assert present == collections

        # A killed pass's events are lost; the restarted pass announces what the status does
        # not record. No event says the same thing twice.
        events = core.list_namespaced_event(namespace).items
        said = Counter(
            (str(e.involved_object.name), str(e.reason), str(e.message))
            for e in events
            if e.involved_object.kind == spec.KIND and e.reason in ANNOUNCEMENTS
        )
        repeated = {key: n for key in said if (n := times_said(events, key)) > 1}
        assert not repeated, repeated
        announced = {(name, message.split(" (")[0]) for name, _, message in said}
        for index, name in enumerate(names):
            collection = f"{prefix}-{index:02d}-15m"
            assert {
                (name, f"created Solr collection {collection}"),
                (name, f"found Solr collection {collection}, not in the status yet"),
            } & announced, f"no event announces {collection}"
            for child in (
                f"ScheduledSparkApplication {children.rollup_name(name, '15m')} created",
                f"SparkApplication {children.stream_name(name)} created",
            ):
                assert (name, child) in announced, f"no event announces {child}"
            recorded = [(c["kind"], c["name"]) for c in stored[name]["status"]["children"]]
            assert sorted(recorded) == [
                ("ScheduledSparkApplication", children.rollup_name(name, "15m")),
                ("SparkApplication", children.stream_name(name)),
            ]
        reasons = Counter(reason for _, reason, _ in said)
        late = sum(n for (_, _, message), n in said.items() if "did not finish" in message)
        print(f"creation events: {dict(reasons)}, {late} of them posted by a restarted pass")
    finally:
        kill(operator)
        for name in names:
            objects.delete_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, name)
        cleanup = start_operator(namespace, kubeconfig, solr.base_url, log)
        try:
            polling.eventually(
                lambda: not aggregations(objects, namespace), "the finalizers ran", 120
            )
        finally:
            kill(cleanup)
            for name in collections & set(solr_client.list_collections()):
                solr_client.delete_collection(name)
    output = log.read_text()
    assert "Traceback" not in output, output[-5000:]


def times_said(events: list[Any], key: tuple[str, str, str]) -> int:
    """The API server's own count of one event (kopf posts a new Event object each time)."""
    return sum(e.count or 1 for e in events if (e.involved_object.name, e.reason, e.message) == key)
