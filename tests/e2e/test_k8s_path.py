"""The whole Kubernetes path, locally: Aggregation → operator → SparkApplication → KPIs.

examples/shop-kpis.yaml (own namespace, own collection prefix, one replica, landing in a
temp dir, deletionPolicy Delete) is applied with `kubectl apply` to the real local
kube-apiserver. The real operator (kopf's KopfRunner) creates the level collections in the
real SolrCloud (through CLICKAGG_SOLR_URL_OVERRIDE: the spec's solrCloudRef names an
in-cluster Service; BasicAuth and TLS on, the user and the CA from the Secrets
spec.solr.basicAuthSecret and spec.solr.tls.caSecret name) and the children;
`SparkOperatorRunner` plays the Spark Operator and runs the stream application with
spark-submit on local[2], its Secret references resolved; generated traffic written into the
landing dir must show up in the totals cuboid exactly as the DuckDB oracle counts it;
the runner's RUNNING turns the Aggregation Ready; a sentinel event a day and a half later
settles the traffic, and the runner runs both rollup ScheduledSparkApplications on demand
(1h, then 1d), which write 1h and 1d documents and turn RollupsCurrent True;
`kubectl get agg` prints its columns; deleting the Aggregation removes the children,
stops the job and drops the collections.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kopf import testing as kopf_testing
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

import oracle
import polling
import streaming
from clickagg.domain import buckets, model, spec, validation
from clickagg.local import kube as local_kube
from clickagg.local import solr as local_solr
from clickagg.local import solr_security
from clickagg.operator import children, reconcile
from clickagg.sim import landing
from clickagg.store import cell_reads
from clickagg.store import client as store_client
from fixtures import solr as fixtures_solr
from spark_operator_runner import COMPLETED, FAILED, RUNNING, SparkOperatorRunner, group_alive

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500), pytest.mark.usefixtures("peer_crds")]

NAME = "shop-kpis"
STREAM = children.stream_name(NAME)
ROLLUPS_IN_ORDER = [children.rollup_name(NAME, level) for level in ("1h", "1d")]
ROLLUPS = sorted(ROLLUPS_IN_ORDER)
AGGREGATION_API = (spec.API_GROUP, spec.API_VERSION)
OPERATOR = "clickagg.operator.main"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
VISITORS, HOURS, SEED = 300, 1, 11
#: The event-level fields of the totals cuboid: settled as soon as an event is counted.
EVENT_FIELDS = ("events", "page_views", "product_views", "add_to_carts", "orders", "clicks")
KPI_TIMEOUT_SECONDS = 360.0  # a shared 2-core machine under load
ROLLUP_TIMEOUT_SECONDS = 300.0
DAY_MS = 86_400_000
SOLR_CREDENTIALS = "solr-credentials"
SOLR_CA = "solr-ca"


def shop_kpis(namespace: str, landing_dir: Path, prefix: str) -> dict[str, Any]:
    obj = dict(yaml.safe_load((streaming.ROOT / "examples" / "shop-kpis.yaml").read_text()))
    obj["metadata"]["namespace"] = namespace
    obj["spec"]["source"]["files"]["path"] = str(landing_dir)
    obj["spec"]["solr"]["collectionPrefix"] = prefix
    obj["spec"]["solr"]["replicationFactor"] = 1  # two local nodes; fewer cores to open
    obj["spec"]["spark"]["triggerInterval"] = "2s"
    obj["spec"]["deletionPolicy"] = "Delete"  # the test leaves no collections behind
    return obj


def secure_solr_secrets(api: k8s_client.ApiClient, namespace: str) -> dict[str, Any]:
    """The Secrets a cluster admin creates for the secured Solr (the jobs' user, which may
    read and update but not create collections; the CA) and the spec.solr fields that
    reference them. The operator reads the CA through the API and administers collections as
    its own user (its environment, as the chart's operator.solrCredentialsSecret gives it);
    the jobs get theirs from their SparkApplication (the runner resolves the references, as
    a kubelet)."""
    user, password = local_solr.credentials(solr_security.JOBS, fixtures_solr.SECURE_INSTANCE)
    ca = local_solr.ca_file(fixtures_solr.SECURE_INSTANCE).read_text()
    core = k8s_client.CoreV1Api(api)
    for name, data in (
        (SOLR_CREDENTIALS, {"username": user, "password": password}),
        (SOLR_CA, {"ca.crt": ca}),
    ):
        metadata = k8s_client.V1ObjectMeta(name=name)
        core.create_namespaced_secret(
            namespace, k8s_client.V1Secret(metadata=metadata, string_data=data)
        )
    return {"basicAuthSecret": {"name": SOLR_CREDENTIALS}, "tls": {"caSecret": {"name": SOLR_CA}}}


def operator_environment(
    monkeypatch: pytest.MonkeyPatch, kubeconfig: Path, solr: local_solr.SolrEndpoints
) -> None:
    """What the chart gives the operator's process: the API server, and its own Solr user
    (operator.solrCredentialsSecret) with the CA; the runner drops the Solr variables from
    what the jobs inherit."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv(reconcile.SOLR_URL_OVERRIDE_ENV, solr.base_url)
    for variable, value in fixtures_solr.role_env(solr_security.OPERATOR).items():
        monkeypatch.setenv(variable, value)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == kind]
    return found[0] if found else {}


def expected_totals(
    lines: list[bytes], aggregation: Any, now_ms: int
) -> dict[int, dict[str, float]]:
    """The oracle's totals cuboid, bucket by bucket, event-level fields only."""
    result = oracle.compute(
        lines,
        finest_granularity_s=900,
        session_timeout_s=1800,
        dimensions=streaming.oracle_dimensions(aggregation),
        cuboids=[()],
        now_ms=now_ms,
    )
    return {
        bucket: {name: state[name] for name in EVENT_FIELDS}
        for (cuboid, bucket, _), state in result.cells.items()
        if cuboid == oracle.cuboid_name(())
    }


def solr_totals(
    client: store_client.SolrClient, aggregation: model.Aggregation
) -> dict[int, dict[str, float]]:
    client.commit(aggregation.finest.collection)  # the stream's last writes, at once
    totals = cell_reads.stored_cells(client, aggregation, aggregation.finest, model.TOTALS)
    return {cell.bucket_ms: {name: cell.state[name] for name in EVENT_FIELDS} for cell in totals}


def ready_object(obj: dict[str, Any]) -> dict[str, Any] | None:
    return obj if condition(obj, "Ready").get("status") == "True" else None


def table_of(api: k8s_client.ApiClient, namespace: str) -> dict[str, Any]:
    """What `kubectl get agg` asks for: the list as a server-side Table."""
    path = f"/apis/{spec.API_GROUP}/{spec.API_VERSION}/namespaces/{namespace}/{spec.PLURAL}"
    response = api.call_api("GET", api.configuration.host + path, header_params={"Accept": TABLE})
    body = response.read()  # type: ignore[no-untyped-call]
    assert response.status == 200, body
    return cast(dict[str, Any], json.loads(body))


def test_aggregation_to_kpis_through_the_operator_and_the_spark_runner(
    api: k8s_client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    solr: local_solr.SolrEndpoints,
    solr_client: store_client.SolrClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = k8s_client.CustomObjectsApi(api)
    prefix = f"k8s{uuid.uuid4().hex[:8]}"
    collections = [f"{prefix}-{level}" for level in ("15m", "1h", "1d")]
    landing_dir = tmp_path / "landing"
    landing_dir.mkdir()
    obj = shop_kpis(namespace, landing_dir, prefix)
    obj["spec"]["solr"] |= secure_solr_secrets(api, namespace)
    aggregation = validation.validate(obj)
    operator_environment(monkeypatch, kubeconfig, solr)
    monkeypatch.setenv(reconcile.DATA_ROOT_ENV, str(tmp_path / "cluster-data"))

    def owned() -> list[str]:
        names = []
        for kind in children.KINDS:
            listed = objects.list_namespaced_custom_object(
                kind.group,
                kind.version,
                namespace,
                kind.plural,
                label_selector=f"{children.AGGREGATION_LABEL}={NAME}",
            )
            names += [item["metadata"]["name"] for item in cast(dict[str, Any], listed)["items"]]
        return sorted(names)

    def aggregation_object() -> dict[str, Any]:
        found = objects.get_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, NAME)
        return cast(dict[str, Any], found)

    started = time.monotonic()
    operator_args = ["run", "--standalone", "--namespace", namespace, "-m", OPERATOR]
    runner = SparkOperatorRunner(kubeconfig, namespace, tmp_path / "spark", solr_url=solr.base_url)
    try:
        with kopf_testing.KopfRunner(operator_args, timeout=60) as operator, runner:
            # (1) `kubectl apply`, as a user would; (2) the operator makes the collections
            # and the children.
            applied = local_kube.kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(obj))
            assert applied.returncode == 0, applied.stderr
            polling.eventually(lambda: owned() == sorted([STREAM, *ROLLUPS]), "the three children")
            # Children first, collections second (a burst never waits on Solr for children).
            polling.eventually(
                lambda: set(collections) <= set(solr_client.list_collections()),
                "the level collections",
            )
            # The status is patched when the pass ends, a moment after the children exist.
            polling.eventually(
                lambda: condition(aggregation_object(), "Valid").get("status") == "True",
                "Valid=True",
            )

            # (3) the runner runs the stream; (4) its RUNNING makes the Aggregation Ready.
            job = runner.wait_for(STREAM, RUNNING, timeout=60)
            assert "--master" in job.argv and "local[2]" in job.argv
            assert str(tmp_path / "spark" / "data") in " ".join(job.argv)
            ready = polling.eventually(lambda: ready_object(aggregation_object()), "Ready=True")
            assert condition(ready, "StreamingRunning")["reason"] == "Running"

            # Generated traffic lands; the totals cuboid must count what the oracle counts.
            # It is three days old, so that a later event (the sentinel, a day and a half
            # later) settles a whole day of it (allowedLateness 1d) for the rollups.
            now_ms = int(time.time() * 1000)
            start_ms = (now_ms // DAY_MS - 3) * DAY_MS + 20 * streaming.HOUR_MS
            lines = streaming.traffic_lines(start_ms, hours=HOURS, visitors=VISITORS, seed=SEED)
            landing.write_files(lines, landing_dir, rolling=streaming.ROLLING)
            raw = [item.line for item in lines]
            expected = expected_totals(raw, aggregation, now_ms)
            assert sum(v["page_views"] for v in expected.values()) > 500
            landed = time.monotonic()
            last: dict[int, dict[str, float]] = {}

            def counted() -> bool:
                nonlocal last
                assert runner.jobs()[STREAM].returncode is None, runner.jobs()[STREAM].log
                last = solr_totals(solr_client, aggregation)
                return last == expected

            try:
                polling.eventually(counted, "Solr's totals equal the oracle's", KPI_TIMEOUT_SECONDS)
                kpi_seconds = time.monotonic() - landed
                sentinel = streaming.sentinel(
                    (now_ms // DAY_MS - 1) * DAY_MS + 6 * streaming.HOUR_MS
                )
                (landing_dir / "zz-sentinel.jsonl").write_bytes(sentinel + b"\n")
                expected = expected_totals([*raw, sentinel], aggregation, now_ms)
                polling.eventually(counted, "the sentinel is counted", KPI_TIMEOUT_SECONDS)
            except BaseException:
                log = runner.jobs()[STREAM].log.read_text(errors="replace")[-5000:]
                print(f"Solr {last}\noracle {expected}\njob log:\n{log}")
                raise

            # The rollup ScheduledSparkApplications, run now rather than on their schedule:
            # 1h from 15m, then 1d from 1h.
            rolled_started = time.monotonic()
            for rollup in ROLLUPS_IN_ORDER:
                run = runner.run_scheduled(rollup)

                def ended_run(run: str = run) -> bool:
                    return run in runner.jobs() and runner.jobs()[run].state in (COMPLETED, FAILED)

                polling.eventually(
                    ended_run,
                    f"{run} ended",
                    ROLLUP_TIMEOUT_SECONDS,
                )
                ended = runner.jobs()[run]
                assert ended.state == COMPLETED, ended.log.read_text(errors="replace")[-5000:]
                assert "--level" in ended.argv and "rollup.py" in " ".join(ended.argv)
            rollup_seconds = time.monotonic() - rolled_started
            rolled_documents = {
                level.name: cell_reads.count(solr_client, level.collection, "cuboid:totals")
                for level in aggregation.levels[1:]
            }
            assert all(rolled_documents.values()), rolled_documents

            # (5) `kubectl get agg`: the server-side table with the CRD's printer columns.
            # The job reports its progress into Solr after each batch; asking for a
            # reconcile (as a user would, instead of waiting for the periodic re-sync)
            # brings the lag and the finest level's last complete bucket in.
            def progress_in_status() -> dict[str, Any] | None:
                objects.patch_namespaced_custom_object(
                    *AGGREGATION_API,
                    namespace,
                    spec.PLURAL,
                    NAME,
                    {
                        "metadata": {
                            "annotations": {
                                reconcile.REQUESTED_AT_ANNOTATION: str(time.time_ns()),
                            }
                        }
                    },
                )
                time.sleep(1.0)
                found = aggregation_object().get("status", {})
                levels = found.get("levels", [])
                every_level = len(levels) == 3 and all("lastRolledUpBucket" in lv for lv in levels)
                return found if found.get("lag") and every_level else None

            reported = polling.eventually(progress_in_status, "lag and every level's last bucket")
            assert reported["levels"][0]["lastRolledUpBucket"] < buckets.iso(now_ms)
            day_bucket = buckets.iso((now_ms // DAY_MS - 3) * DAY_MS)
            assert reported["levels"][2]["lastRolledUpBucket"] >= day_bucket, reported["levels"]
            rollups_current = condition(aggregation_object(), "RollupsCurrent")
            assert rollups_current["status"] == "True", rollups_current
            table = table_of(api, namespace)
            columns = [column["name"] for column in table["columnDefinitions"]]
            assert {"Levels", "Ready", "Rollups", "Lag"} <= set(columns), columns
            (row,) = table["rows"]
            printed = dict(zip(columns, row["cells"], strict=True))
            assert re.fullmatch(r"(\d+[dhms]){1,2}", printed["Lag"]), printed
            assert printed["Name"] == NAME
            assert printed["Ready"] == "True"
            assert printed["Rollups"] == "True"
            # Only the first level today: see test_levels_column_lists_every_level.
            assert printed["Levels"] == "15m,1h,1d"
            levels_cell, lag_cell = printed["Levels"], printed["Lag"]
            listed = local_kube.kubectl(kubeconfig, "get", "agg", "-n", namespace).stdout
            header, line = listed.splitlines()
            assert header.split() == ["NAME", "LEVELS", "READY", "ROLLUPS", "LAG", "AGE"], listed
            assert line.split()[:4] == [NAME, "15m,1h,1d", "True", "True"], listed
            assert re.fullmatch(r"(\d+[dhms]){1,2}", line.split()[4]), listed

            # (6) delete: children gone, the job stopped, the collections dropped.
            objects.delete_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, NAME)

            def deleted() -> bool:
                try:
                    aggregation_object()
                except ApiException as exc:
                    return bool(exc.status == 404)
                return False

            polling.eventually(deleted, "the Aggregation is gone once its finalizer ran")
            assert owned() == []
            polling.eventually(lambda: STREAM not in runner.jobs(), "the runner dropped the job")
            polling.eventually(lambda: not group_alive(job.pid), "the job's processes ended", 30)
            assert not set(collections) & set(solr_client.list_collections())
    finally:
        for name in collections:  # only when the test failed before the finalizer ran
            if name in solr_client.list_collections():
                solr_client.delete_collection(name)
    assert operator.exit_code == 0, operator.output
    assert "Traceback" not in operator.output, operator.output
    assert runner.errors == []
    print(
        f"k8s path: {time.monotonic() - started:.1f}s in all, KPIs in Solr "
        f"{kpi_seconds:.1f}s after the {len(lines)} lines landed; rollups 1h and 1d "
        f"{rollup_seconds:.1f}s, documents {rolled_documents}; "
        f"Levels column {levels_cell!r}, Lag column {lag_cell!r}"
    )


def test_levels_column_lists_every_level(
    api: k8s_client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    solr: local_solr.SolrEndpoints,
    solr_client: store_client.SolrClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`kubectl get agg` shows every level (the operator runs: a fix may fill a status field)."""
    objects = k8s_client.CustomObjectsApi(api)
    prefix = f"k8s{uuid.uuid4().hex[:8]}"
    obj = shop_kpis(namespace, tmp_path / "landing", prefix)
    obj["spec"]["solr"] |= secure_solr_secrets(api, namespace)
    obj["spec"]["levels"] = obj["spec"]["levels"][:2]  # fewer collections to create
    operator_environment(monkeypatch, kubeconfig, solr)
    operator_args = ["run", "--standalone", "--namespace", namespace, "-m", OPERATOR]
    try:
        with kopf_testing.KopfRunner(operator_args, timeout=60):
            objects.create_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, obj)

            def valid() -> bool:
                found = objects.get_namespaced_custom_object(
                    *AGGREGATION_API, namespace, spec.PLURAL, NAME
                )
                return condition(cast(dict[str, Any], found), "Valid").get("status") == "True"

            polling.eventually(valid, "Valid=True")
            table = table_of(api, namespace)
            objects.delete_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, NAME)
            polling.eventually(
                lambda: table_of(api, namespace)["rows"] == [], "the Aggregation is gone"
            )
    finally:
        for level in ("15m", "1h"):
            if f"{prefix}-{level}" in solr_client.list_collections():
                solr_client.delete_collection(f"{prefix}-{level}")
    columns = [column["name"] for column in table["columnDefinitions"]]
    (row,) = table["rows"]
    assert dict(zip(columns, row["cells"], strict=True))["Levels"] == "15m,1h"
