"""The examples against the real API server and the generated CRD (strict field validation).

Every good example is accepted. A bad example whose header names `expect-apiserver` is
rejected by the CRD's schema with that field in the message; the others are well-formed
for the schema and only `clickagg validate` (and the operator) reject them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from clickagg.domain import spec
from clickagg.local import kube as local_kube
from examples import BAD, GOOD, bad_example

pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def custom_objects(kubeconfig: Path) -> Iterator[k8s_client.CustomObjectsApi]:
    with local_kube.api_client(kubeconfig) as api:
        yield k8s_client.CustomObjectsApi(api)


def dry_run_create(objects: k8s_client.CustomObjectsApi, path: Path) -> None:
    body: dict[str, Any] = yaml.safe_load(path.read_text())
    body["metadata"]["namespace"] = "default"
    objects.create_namespaced_custom_object(
        spec.API_GROUP,
        spec.API_VERSION,
        "default",
        spec.PLURAL,
        body,
        dry_run="All",
        field_validation="Strict",
    )


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_every_example_is_accepted(custom_objects: k8s_client.CustomObjectsApi, path: Path) -> None:
    dry_run_create(custom_objects, path)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_examples_meet_the_schema_where_their_header_says(
    custom_objects: k8s_client.CustomObjectsApi, path: Path
) -> None:
    expected = bad_example(path).expect_apiserver
    if expected is None:
        dry_run_create(custom_objects, path)  # only the semantic checks catch this one
        return
    with pytest.raises(ApiException) as caught:
        dry_run_create(custom_objects, path)
    assert caught.value.status in (400, 422)
    assert expected in str(caught.value.body)
