"""The operator's pure parts: child manifests, rollup schedules, conditions and backoff.

The API server judges the same manifests in tests/k8s/test_operator.py; here every field
the operator decides is pinned down without any engine.
"""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import pytest
import yaml

from clickagg.domain import durations, model, status, validation
from clickagg.operator import children, conditions, reconcile
from examples import GOOD

pytestmark = pytest.mark.unit

OWNER = children.Owner(name="shop-kpis", namespace="default", uid="0f7e-uid")
SETTINGS = children.JobSettings(service_account="spark-runner", default_data_root="/data")


def reference_object() -> dict[str, Any]:
    return dict(yaml.safe_load((GOOD[0].parent / "shop-kpis.yaml").read_text()))


def aggregation_of(obj: dict[str, Any]) -> model.Aggregation:
    return validation.validate(obj)


@pytest.fixture
def shop() -> model.Aggregation:
    return aggregation_of(reference_object())


def with_solr_url(obj: dict[str, Any], url: str) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    changed["spec"]["solr"] = {"url": url}
    return changed


def application(manifest: children.AnyManifest) -> children.ApplicationSpec:
    """The stream's spec; its kind says which spec a child carries."""
    assert manifest["kind"] == children.SPARK_APPLICATION.kind
    return cast(children.ApplicationSpec, manifest["spec"])


def scheduled(manifest: children.AnyManifest) -> children.ScheduledApplicationSpec:
    """A rollup's spec; its kind says which spec a child carries."""
    assert manifest["kind"] == children.SCHEDULED_SPARK_APPLICATION.kind
    return cast(children.ScheduledApplicationSpec, manifest["spec"])


def test_children_are_the_stream_and_one_rollup_per_coarser_level(
    shop: model.Aggregation,
) -> None:
    manifests = children.desired(shop, OWNER, SETTINGS)
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == [
        ("SparkApplication", "shop-kpis-stream"),
        ("ScheduledSparkApplication", "shop-kpis-rollup-1h"),
        ("ScheduledSparkApplication", "shop-kpis-rollup-1d"),
    ]
    for manifest in manifests:
        assert manifest["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
        assert manifest["metadata"]["namespace"] == "default"
        assert manifest["metadata"]["labels"][children.AGGREGATION_LABEL] == "shop-kpis"
        assert manifest["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "clickagg.io/v1alpha1",
                "kind": "Aggregation",
                "name": "shop-kpis",
                "uid": "0f7e-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_stream_application_runs_the_stream_job_with_the_spec_resources(
    shop: model.Aggregation,
) -> None:
    app = children.stream_application(shop, OWNER, SETTINGS)["spec"]
    assert (app["type"], app["mode"]) == ("Python", "cluster")
    assert app["mainApplicationFile"] == "local:///opt/clickagg/jobs/stream.py"
    assert app["deps"] == {"jars": ["local:///opt/clickagg/jars/clickagg-sessionizer.jar"]}
    assert app["sparkVersion"] == "4.3.0"
    assert app["image"] == "clickagg/jobs:0.1.0"
    assert app["restartPolicy"] == {
        "type": "Always",
        "onFailureRetryInterval": children.STREAM_RETRY_SECONDS,
        "onSubmissionFailureRetryInterval": children.STREAM_SUBMISSION_RETRY_SECONDS,
    }
    driver, executor = app["driver"], app["executor"]
    assert (driver["cores"], driver["memory"]) == (1, "2g")
    assert (executor["instances"], executor["cores"], executor["memory"]) == (2, 1, "2g")
    assert driver["serviceAccount"] == executor["serviceAccount"] == "spark-runner"


def test_job_arguments_follow_the_job_contract(shop: model.Aggregation) -> None:
    arguments = children.stream_application(shop, OWNER, SETTINGS)["spec"]["arguments"]
    options = dict(zip(arguments[::2], arguments[1::2], strict=True))
    assert list(options) == ["--spec-json", "--solr-url", "--data-root"]
    assert options["--solr-url"] == "http://analytics-solrcloud-common.default:80/solr"
    assert options["--data-root"] == "/data/default/shop-kpis"
    # The job re-validates the object it is given and gets the same Aggregation back.
    assert validation.validate(json.loads(options["--spec-json"])) == shop


def test_pods_prefer_the_nodes_of_the_referenced_solrcloud(shop: model.Aggregation) -> None:
    app = children.stream_application(shop, OWNER, SETTINGS)["spec"]
    expected = {
        "podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {
                            "matchLabels": {"solr-cloud": "analytics", "technology": "solr-cloud"}
                        },
                        "namespaces": ["default"],
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }
    assert app["driver"]["affinity"] == expected
    assert app["executor"]["affinity"] == expected


def test_solrcloud_in_another_namespace_is_addressed_there() -> None:
    obj = reference_object()
    obj["spec"]["solr"]["solrCloudRef"]["namespace"] = "search"
    aggregation = aggregation_of(obj)
    assert children.cluster_solr_url(aggregation) == (
        "http://analytics-solrcloud-common.search:80/solr"
    )
    affinity = children.pod_affinity(aggregation)
    assert affinity is not None
    term = affinity["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["namespaces"] == ["search"]


def test_a_plain_solr_url_gets_no_affinity_and_is_passed_through() -> None:
    aggregation = aggregation_of(with_solr_url(reference_object(), "http://solr:8983/solr/"))
    app = children.stream_application(aggregation, OWNER, SETTINGS)["spec"]
    assert "affinity" not in app["driver"]
    assert "affinity" not in app["executor"]
    assert children.cluster_solr_url(aggregation) == "http://solr:8983/solr"


def test_data_root_is_per_aggregation_even_with_an_archive_uri() -> None:
    obj = reference_object()
    obj["spec"]["rawArchive"]["uri"] = "s3a://archive/shop"
    assert children.data_root(aggregation_of(obj), "/data/") == "/data/default/shop-kpis"


def test_rollups_are_scheduled_per_level_and_never_overlap(shop: model.Aggregation) -> None:
    rollups = children.desired(shop, OWNER, SETTINGS)[1:]
    assert [scheduled(r)["schedule"] for r in rollups] == ["5 * * * *", "15 0 * * *"]
    for rollup, level in zip(rollups, ("1h", "1d"), strict=True):
        spec = scheduled(rollup)
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["timeZone"] == "UTC"
        template = spec["template"]
        assert template["mainApplicationFile"] == "local:///opt/clickagg/jobs/rollup.py"
        # It settles the finest level first, through the JVM sessionizer.
        assert template["deps"] == {"jars": [children.SESSIONIZER_JAR]}
        assert template["restartPolicy"]["type"] == "OnFailure"
        arguments = template["arguments"]
        assert arguments[arguments.index("--level") + 1] == level
        assert rollup["metadata"]["labels"][children.LEVEL_LABEL] == level


def test_the_rollup_job_takes_the_arguments_the_operator_passes(shop: model.Aggregation) -> None:
    from pathlib import Path

    from clickagg.jobs import rollup as rollup_job

    for manifest, level in zip(
        children.desired(shop, OWNER, SETTINGS)[1:], ("1h", "1d"), strict=True
    ):
        template = scheduled(manifest)["template"]
        image_path = template["mainApplicationFile"].removeprefix("local:///opt/clickagg/")
        assert (Path(__file__).resolve().parents[2] / image_path).is_file()
        aggregation, options = rollup_job.parse(template["arguments"])
        assert aggregation == shop
        assert options.level == level and not options.follow
        assert options.solr_url == children.cluster_solr_url(shop)
        assert options.data_root == children.data_root(shop, SETTINGS.default_data_root)


@pytest.mark.parametrize(
    ("granularity", "schedule"),
    [
        ("5m", "2-59/5 * * * *"),
        ("15m", "2-59/15 * * * *"),
        ("1h", "5 * * * *"),
        ("6h", "5 */6 * * *"),
        ("90m", "5 * * * *"),  # cron cannot say every 90 minutes; hourly never skips one
        ("1d", "15 0 * * *"),
        ("1w", "30 0 * * 1"),
        ("1mo", "45 0 1 * *"),
        ("3mo", "45 0 1 */3 *"),
        ("1y", "45 0 1 1 *"),
    ],
)
def test_rollup_schedule_follows_the_granularity(granularity: str, schedule: str) -> None:
    assert children.rollup_schedule(durations.parse(granularity)) == schedule


@pytest.mark.parametrize(("retention", "rollups"), [("30d", ["15m"]), ("forever", [])])
def test_a_single_level_gets_a_retention_only_job_when_it_expires(
    retention: str, rollups: list[str]
) -> None:
    obj = reference_object()
    obj["spec"]["levels"] = [{"granularity": "15m", "retention": retention}]
    aggregation = aggregation_of(obj)
    assert [level.name for level in children.rollup_levels(aggregation)] == rollups


def test_manifests_are_deterministic(shop: model.Aggregation) -> None:
    again = aggregation_of(reference_object())
    assert children.desired(shop, OWNER, SETTINGS) == children.desired(again, OWNER, SETTINGS)
    assert children.spec_json(shop) == children.spec_json(again)


def test_spec_changes_reach_the_children() -> None:
    obj = reference_object()
    obj["spec"]["spark"]["executor"]["instances"] = 5
    obj["spec"]["levels"][1]["retention"] = "6mo"
    aggregation = aggregation_of(obj)
    stream, rollup_1h, _ = children.desired(aggregation, OWNER, SETTINGS)
    assert application(stream)["executor"]["instances"] == 5
    spec_json = json.loads(scheduled(rollup_1h)["template"]["arguments"][1])
    assert spec_json["spec"]["levels"][1]["retention"] == "6mo"


def test_autoscaled_executors_reach_the_stream_only() -> None:
    aggregation = aggregation_of(reference_object())
    stream, *rollups = children.desired(aggregation, OWNER, SETTINGS, stream_executors=7)
    assert application(stream)["executor"]["instances"] == 7
    instances = aggregation.spec.spark.executor.instances
    assert {scheduled(r)["template"]["executor"]["instances"] for r in rollups} == {instances}


# --------------------------------------------------------------------------- conditions


def condition(kind: str, truth: conditions.Truth, when: str) -> status.Condition:
    return status.Condition(type=kind, status=truth, reason="R", last_transition_time=when)


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    previous = [condition("Ready", "True", "2026-01-01T00:00:00Z")]
    same = conditions.make(previous, "Ready", "True", "Ready", "", 3, "2026-02-02T00:00:00Z")
    flipped = conditions.make(previous, "Ready", "False", "X", "", 3, "2026-02-02T00:00:00Z")
    assert same.last_transition_time == "2026-01-01T00:00:00Z"
    assert flipped.last_transition_time == "2026-02-02T00:00:00Z"
    assert same.observed_generation == 3


def test_merge_replaces_by_type_in_a_fixed_order() -> None:
    previous = [condition("Degraded", "True", "t0"), condition("Valid", "True", "t0")]
    merged = conditions.merge(previous, [condition("Degraded", "False", "t1")])
    assert [(c.type, c.status) for c in merged] == [("Valid", "True"), ("Degraded", "False")]


def test_unreadable_stored_status_starts_afresh() -> None:
    assert conditions.parse({"conditions": [{"type": "Valid", "status": "maybe"}]}) == (
        status.AggregationStatus()
    )
    kept = conditions.parse({"observedGeneration": 2, "kopf": {"progress": {}}})
    assert kept.observed_generation == 2


def test_every_status_field_written_is_read_back() -> None:
    # A field the parse drops is one the next pass forgets (announced children, the chosen
    # executor count): every field the status model declares must survive the round trip.
    written = status.AggregationStatus(
        observed_generation=3,
        lag="4s",
        children=[status.ChildStatus(kind="SparkApplication", name="shop-stream", generation=2)],
        input_rows_per_second=10.0,
        processed_rows_per_second=5.0,
        executors=2,
        advised_executors=3,
        level_names="15m",
    )
    assert set(written.patch()) == {
        field.alias or name for name, field in status.AggregationStatus.model_fields.items()
    }
    assert conditions.parse(written.patch()) == written


@pytest.mark.parametrize(
    ("state", "reason"),
    [("RUNNING", "Running"), ("PENDING_RERUN", "PendingRerun"), ("", "NotSubmitted")],
)
def test_spark_states_become_camel_case_reasons(state: str, reason: str) -> None:
    assert conditions.camel_reason(state) == reason


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [reconcile.backoff(r) for r in range(4)] == [2.0, 4.0, 8.0, 16.0]
    assert reconcile.backoff(50) == reconcile.BACKOFF_CAP_SECONDS


def test_config_reads_the_environment() -> None:
    config = reconcile.Config.from_env({"CLICKAGG_SOLR_URL_OVERRIDE": "http://127.0.0.1:1/solr"})
    assert config == reconcile.Config("clickagg-spark", "/data/clickagg", "http://127.0.0.1:1/solr")


def test_shuffle_partitions_are_sized_for_the_most_executors_the_stream_may_get() -> None:
    obj = reference_object()
    obj["spec"]["spark"]["executor"].update({"instances": 2, "cores": 3})
    fixed = aggregation_of(obj)
    obj["spec"]["spark"]["autoscale"] = True
    obj["spec"]["spark"]["executor"]["maxInstances"] = 5
    autoscaled = aggregation_of(obj)
    # Two per core; a stream's state keeps its first run's count, so autoscale's bound counts.
    for aggregation, partitions in ((fixed, "12"), (autoscaled, "30")):
        stream, *rollups = children.desired(aggregation, OWNER, SETTINGS, stream_executors=3)
        confs = [application(stream)["sparkConf"]]
        confs += [scheduled(r)["template"]["sparkConf"] for r in rollups]
        assert {c["spark.sql.shuffle.partitions"] for c in confs} == {partitions}
