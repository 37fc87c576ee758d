"""The operator's own calls to the Kubernetes API: apply, list, delete children; poke owners.

kopf watches and patches the Aggregation itself; everything else (the Spark Operator's
objects) goes through this module, so the rest of the operator stays plain logic.
Children are written by server-side apply under one field manager: applying the same
manifest twice changes nothing, and fields other managers own are left alone. An error the
API server answers with leaves this module as `errors.KubeError`, carrying its status.
Objects read back are `dict[str, Any]`: the API server's JSON, whatever version wrote it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, cast

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client import exceptions as k8s_exceptions

from clickagg import errors
from clickagg.domain import spec
from clickagg.operator import children

_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
# Every API call gives up after this long instead of blocking a handler thread for ever.
REQUEST_TIMEOUT_SECONDS = 30

NOT_FOUND = 404


def _custom_objects() -> k8s_client.CustomObjectsApi:
    return k8s_client.CustomObjectsApi(_api_client(os.environ.get("KUBECONFIG", "")))


@functools.cache
def _api_client(kubeconfig: str) -> k8s_client.ApiClient:
    """In a pod, the mounted ServiceAccount; elsewhere the kubeconfig (as kopf logs in)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return k8s_client.ApiClient(configuration)
    client: k8s_client.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig or None
    )
    return client


@contextlib.contextmanager
def _answered(what: str) -> Iterator[None]:
    """Turn the client's ApiException into errors.KubeError, naming what was asked."""
    try:
        yield
    except k8s_exceptions.ApiException as exc:
        raise errors.KubeError(f"{what}: {describe(exc)}", exc.status) from exc


def apply(manifest: children.Manifest) -> dict[str, Any]:
    """Create or update a namespaced custom object by server-side apply; the stored object."""
    group, version = manifest["apiVersion"].split("/")
    kind = _kind_of(manifest["kind"])
    metadata = manifest["metadata"]
    with _answered(f"apply {kind.kind} {metadata['name']}"):
        response: Any = _custom_objects().patch_namespaced_custom_object(
            group,
            version,
            metadata["namespace"],
            kind.plural,
            metadata["name"],
            dict(manifest),
            field_manager=children.MANAGER,
            force=True,
            _content_type=_APPLY,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
            # The generated client drops the body of a 201 (an apply that created the object).
            _preload_content=False,
        )
    return cast(dict[str, Any], json.loads(response.data))


def list_owned(kind: children.Kind, namespace: str, aggregation: str) -> list[dict[str, Any]]:
    """The objects of `kind` labelled as children of the Aggregation."""
    with _answered(f"list {kind.plural} of {aggregation}"):
        found = _custom_objects().list_namespaced_custom_object(
            kind.group,
            kind.version,
            namespace,
            kind.plural,
            label_selector=f"{children.AGGREGATION_LABEL}={aggregation}",
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )
    return list(cast(dict[str, Any], found).get("items", []))


def delete(kind: children.Kind, namespace: str, name: str) -> bool:
    """Delete one object; False when it was already gone."""
    try:
        with _answered(f"delete {kind.kind} {name}"):
            _custom_objects().delete_namespaced_custom_object(
                kind.group,
                kind.version,
                namespace,
                kind.plural,
                name,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
    except errors.KubeError as exc:
        if exc.status == NOT_FOUND:
            return False
        raise
    return True


def annotate_aggregation(namespace: str, name: str, annotations: Mapping[str, str]) -> bool:
    """Merge annotations into an Aggregation; False when it does not exist (any more).

    An unchanged value is a no-op for the API server: no new resourceVersion, no event.
    """
    body = {"metadata": {"annotations": dict(annotations)}}
    try:
        with _answered(f"annotate {spec.KIND} {name}"):
            _custom_objects().patch_namespaced_custom_object(
                spec.API_GROUP,
                spec.API_VERSION,
                namespace,
                spec.PLURAL,
                name,
                body,
                field_manager=children.MANAGER,
                _content_type=_MERGE,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
    except errors.KubeError as exc:
        if exc.status == NOT_FOUND:
            return False
        raise
    return True


def describe(exc: k8s_exceptions.ApiException) -> str:
    """A one-line account of an API error for a condition message."""
    return f"Kubernetes API answered {exc.status} {exc.reason}: {str(exc.body or '')[:300]}"


def _kind_of(kind: str) -> children.Kind:
    return next(k for k in children.KINDS if k.kind == kind)
