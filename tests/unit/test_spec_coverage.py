"""Every field of the Aggregation spec has an effect a named test shows, or is listed as a known
gap with its issue (issue 11, section 3: a field that does nothing is worse than no field).

Add a field to the spec and this test fails until the table names the test that exercises it.
"""

from __future__ import annotations

import ast
import typing
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

from clickagg.domain import spec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
_ORACLE = "tests/e2e/test_stream_oracle.py::test_every_cell_equals_the_oracle"
_KAFKA = "tests/e2e/test_kafka_source.py::test_events_from_kafka_become_the_oracles_cells"
_CHILDREN = "tests/unit/test_children.py::"
_KAFKA_SASL = (
    "tests/kafka/test_kafka_sasl.py::test_the_jobs_user_streams_a_sasl_topic_into_the_oracles_cells"
)
_KAFKA_BY_REFERENCE = (
    "tests/unit/test_children_storage.py::"
    "test_kafka_sasl_credentials_reach_the_stream_by_reference_only"
)
_SOLR_TLS = (
    "tests/unit/test_children_solr_tls.py::"
    "test_driver_and_executors_mount_the_ca_secret_and_name_it"
)
_STORAGE = "tests/unit/test_children_storage.py::"
_KAFKA_CA = _STORAGE + "test_the_kafka_ca_secret_is_mounted_into_the_stream_only"
_SOLR_AUTH = (
    "tests/k8s/test_operator_solr_auth.py::"
    "test_the_operator_uses_the_secret_and_the_children_only_reference_it"
)
_VALIDATION = "tests/unit/test_spec_validation.py::"
_TUNING = (
    "tests/e2e/test_stream_capacity.py::"
    "test_a_stream_driven_past_its_capacity_is_advised_and_autoscaled"
)

#: Field path -> the test that shows its effect.
EXERCISED_BY = {
    "spec.source.kafka.security.protocol": _KAFKA_SASL,
    "spec.source.kafka.security.saslMechanism": _KAFKA_SASL,
    "spec.source.kafka.security.credentialsSecret.name": _KAFKA_SASL,
    "spec.source.kafka.security.credentialsSecret.usernameKey": _KAFKA_BY_REFERENCE,
    "spec.source.kafka.security.credentialsSecret.passwordKey": _KAFKA_BY_REFERENCE,
    "spec.source.kafka.security.caSecret.name": _KAFKA_CA,
    "spec.source.kafka.security.caSecret.key": _KAFKA_CA,
    "spec.solr.tls.caSecret.name": _SOLR_TLS,
    "spec.solr.tls.caSecret.key": _SOLR_TLS,
    "spec.storage.persistentVolumeClaim": _STORAGE
    + "test_a_claim_is_mounted_at_the_data_root_in_driver_and_executors",
    "spec.storage.uri": _STORAGE
    + "test_an_object_store_is_the_data_root_with_its_connector_and_secret",
    "spec.storage.credentialsSecret": _STORAGE
    + "test_an_object_store_is_the_data_root_with_its_connector_and_secret",
    "spec.solr.basicAuthSecret.name": _SOLR_AUTH,
    "spec.solr.basicAuthSecret.usernameKey": _SOLR_AUTH,
    "spec.solr.basicAuthSecret.passwordKey": _SOLR_AUTH,
    "spec.source.type": _KAFKA,
    "spec.source.files.path": _ORACLE,
    "spec.source.kafka.bootstrapServers": _KAFKA,
    "spec.source.kafka.topic": _KAFKA,
    "spec.solr.solrCloudRef.name": _CHILDREN
    + "test_pods_prefer_the_nodes_of_the_referenced_solrcloud",
    "spec.solr.solrCloudRef.namespace": _CHILDREN
    + "test_solrcloud_in_another_namespace_is_addressed_there",
    "spec.solr.url": _CHILDREN + "test_a_plain_solr_url_gets_no_affinity_and_is_passed_through",
    "spec.solr.collectionPrefix": "tests/k8s/test_operator.py::"
    "test_create_makes_collections_children_and_status",
    "spec.solr.shards": "tests/k8s/test_operator.py::"
    "test_create_makes_collections_children_and_status",
    "spec.solr.replicationFactor": "tests/k8s/test_operator.py::"
    "test_create_makes_collections_children_and_status",
    "spec.dimensions.name": _ORACLE,
    "spec.dimensions.field": _ORACLE,
    "spec.dimensions.maxCardinality": _VALIDATION + "test_plan_counts_levels_times_cuboids",
    "spec.cuboids.dimensions": _ORACLE,
    "spec.kpis": _VALIDATION + "test_defaults_are_totals_plus_each_dimension_and_every_kpi",
    "spec.levels.granularity": "tests/e2e/test_rollup_oracle.py::"
    "test_every_coarser_document_equals_the_oracle",
    "spec.levels.retention": "tests/unit/test_retention.py::"
    "test_levels_rolled_up_in_time_lose_everything_past_retention",
    "spec.sessionTimeout": _ORACLE,
    "spec.lateness.watermark": _ORACLE,
    "spec.lateness.allowedLateness": "tests/unit/test_events.py::"
    "test_the_lateness_window_is_the_allowed_lateness",
    "spec.rawArchive.uri": _CHILDREN + "test_data_root_is_per_aggregation_even_with_an_archive_uri",
    "spec.rawArchive.retention": "tests/unit/test_retention.py::"
    "test_the_archive_keeps_what_is_not_settled_and_rolled_up",
    "spec.spark.image": _CHILDREN
    + "test_stream_application_runs_the_stream_job_with_the_spec_resources",
    "spec.spark.sparkVersion": _CHILDREN
    + "test_stream_application_runs_the_stream_job_with_the_spec_resources",
    "spec.spark.driver.cores": _CHILDREN
    + "test_stream_application_runs_the_stream_job_with_the_spec_resources",
    "spec.spark.driver.memory": _CHILDREN
    + "test_stream_application_runs_the_stream_job_with_the_spec_resources",
    "spec.spark.executor.cores": _CHILDREN
    + "test_stream_application_runs_the_stream_job_with_the_spec_resources",
    "spec.spark.executor.memory": _CHILDREN
    + "test_stream_application_runs_the_stream_job_with_the_spec_resources",
    "spec.spark.executor.instances": _CHILDREN + "test_spec_changes_reach_the_children",
    "spec.spark.autoscale": _TUNING,
    "spec.spark.executor.minInstances": _TUNING,
    "spec.spark.executor.maxInstances": _TUNING,
    "spec.spark.triggerInterval": _VALIDATION
    + "test_trigger_must_be_shorter_than_the_finest_bucket",
    "spec.limits.maxDocumentsPerDay": _VALIDATION
    + "test_a_bound_beyond_any_float_gives_no_advisory",
    "spec.deletionPolicy": "tests/k8s/test_operator.py::"
    "test_delete_policy_delete_drops_the_collections",
}

#: Fields accepted but without effect yet, with the issue that gives them one. Keep them here
#: (not removed) while someone implements them; move each to EXERCISED_BY with its test.
KNOWN_UNIMPLEMENTED: dict[str, str] = {}

#: Fields with an effect that no test checks yet (a gap, shown rather than hidden).
NOT_YET_TESTED = {
    "spec.source.files.maxFilesPerTrigger": "issue 11 §3: set by tests/streaming.py, not asserted",
    "spec.source.kafka.startingOffsets": "issue 11 §3",
}


def leaf_fields(model: type[pydantic.BaseModel], prefix: str = "spec") -> Iterator[str]:
    """The wire path of every field that holds a value rather than a nested object."""
    for name, field in model.model_fields.items():
        path = f"{prefix}.{field.alias or name}"
        nested = [
            arg
            for arg in (field.annotation, *typing.get_args(field.annotation))
            for arg in (arg, *typing.get_args(arg))
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel)
        ]
        if nested:
            yield from leaf_fields(nested[0], path)
        else:
            yield path


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


FIELDS = sorted(set(leaf_fields(spec.AggregationSpec)))


@pytest.mark.parametrize("field", FIELDS)
def test_every_field_is_exercised_or_a_known_gap(field: str) -> None:
    listed = [
        table for table in (EXERCISED_BY, KNOWN_UNIMPLEMENTED, NOT_YET_TESTED) if field in table
    ]
    assert len(listed) == 1, f"{field}: name the test that shows its effect in EXERCISED_BY"


def test_every_entry_names_a_field() -> None:
    listed = {*EXERCISED_BY, *KNOWN_UNIMPLEMENTED, *NOT_YET_TESTED}
    assert listed <= set(FIELDS), f"no such fields: {sorted(listed - set(FIELDS))}"


@pytest.mark.parametrize("test", sorted(set(EXERCISED_BY.values())))
def test_every_named_test_exists(test: str) -> None:
    file, _, name = test.partition("::")
    assert (ROOT / file).exists(), f"{file} does not exist"
    assert name in defined_tests(ROOT / file), f"{file} has no test {name}"
