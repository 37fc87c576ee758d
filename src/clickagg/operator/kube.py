"""The operator's own calls to the Kubernetes API: apply, list, delete children; poke owners.

kopf watches and patches the Aggregation itself; everything else (the Spark Operator's
objects) goes through this module, so the rest of the operator stays plain logic.
Children are written by server-side apply under one field manager: applying the same
manifest twice changes nothing, and fields other managers own are left alone.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client import exceptions as k8s_exceptions

from clickagg.domain import spec
from clickagg.operator import children

_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
_JSON_PATCH = "application/json-patch+json"
# Every API call gives up after this long instead of blocking a handler thread for ever.
REQUEST_TIMEOUT_SECONDS = 30

ApiException = k8s_exceptions.ApiException


class CallFailed(ApiException):
    """An API call about a kind of object that failed, with what it tried (for diagnosis)."""

    def __init__(self, exc: ApiException, verb: str, kind: children.Kind, namespace: str) -> None:
        super().__init__(status=exc.status, reason=exc.reason)
        self.body, self.headers = exc.body, exc.headers
        self.verb, self.kind, self.namespace = verb, kind, namespace


@contextlib.contextmanager
def _calling(verb: str, kind: children.Kind, namespace: str) -> Iterator[None]:
    try:
        yield
    except ApiException as exc:
        raise CallFailed(exc, verb, kind, namespace) from exc


def kind_not_served(exc: ApiException) -> bool:
    """True when the API server does not serve the kind at all (its CRD is not installed):
    a plain-text 404, where a missing object gets a JSON Status."""
    return exc.status == 404 and "page not found" in str(exc.body or "")


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


def apply(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Create or update a namespaced custom object by server-side apply; the stored object."""
    group, version = str(manifest["apiVersion"]).split("/")
    kind = _kind_of(str(manifest["kind"]))
    metadata = manifest["metadata"]
    with _calling("patch", kind, metadata["namespace"]):  # server-side apply
        response: Any = _custom_objects().patch_namespaced_custom_object(
            group, version, metadata["namespace"], kind.plural, metadata["name"], dict(manifest),
            field_manager=children.MANAGER, force=True, _content_type=_APPLY,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
            # The generated client drops the body of a 201 (an apply that created the object).
            _preload_content=False,
        )  # fmt: skip
    return cast(dict[str, Any], json.loads(response.data))


def list_owned(kind: children.Kind, namespace: str, aggregation: str) -> list[dict[str, Any]]:
    """The objects of `kind` labelled as children of the Aggregation."""
    with _calling("list", kind, namespace):
        found = _custom_objects().list_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural,
            label_selector=f"{children.AGGREGATION_LABEL}={aggregation}",
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )  # fmt: skip
    return list(cast(dict[str, Any], found).get("items", []))


def delete(kind: children.Kind, namespace: str, name: str) -> bool:
    """Delete one object; False when it was already gone."""
    return not _absent(
        "delete", kind, namespace,
        lambda: _custom_objects().delete_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural, name,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        ),
    )  # fmt: skip


def exists(kind: children.Kind, namespace: str, name: str) -> bool:
    """Whether one object exists; CallFailed when the kind is not served, or forbidden."""
    return not _absent(
        "get", kind, namespace,
        lambda: _custom_objects().get_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural, name,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        ),
    )  # fmt: skip


def _absent(verb: str, kind: children.Kind, namespace: str, call: Callable[[], Any]) -> bool:
    """Make the call; True when it found no such object (not: no such kind)."""
    with _calling(verb, kind, namespace):
        try:
            call()
        except ApiException as exc:
            if exc.status == 404 and not kind_not_served(exc):
                return True
            raise
    return False


def annotate_aggregation(namespace: str, name: str, annotations: Mapping[str, str]) -> bool:
    """Merge annotations into an Aggregation; False when it does not exist (any more).

    An unchanged value is a no-op for the API server: no new resourceVersion, no event.
    """
    body = {"metadata": {"annotations": dict(annotations)}}
    try:
        _custom_objects().patch_namespaced_custom_object(
            spec.API_GROUP, spec.API_VERSION, namespace, spec.PLURAL, name, body,
            field_manager=children.MANAGER, _content_type=_MERGE,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )  # fmt: skip
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def describe(exc: ApiException) -> str:
    """A one-line account of an API error for a condition message."""
    body = " ".join(str(exc.body or "").split())  # one line: bodies end in a newline
    return f"Kubernetes API answered {exc.status} {exc.reason}: {body[:300]}"


def _kind_of(kind: str) -> children.Kind:
    return next(k for k in children.KINDS if k.kind == kind)


def read_secret_data(namespace: str, name: str) -> dict[str, str] | None:
    """The base64 `data` of a Secret; None when it does not exist."""
    try:
        secret = _core().read_namespaced_secret(
            name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {key: str(value) for key, value in (secret.data or {}).items()}


def write_secret_data(
    namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str]
) -> None:
    """Create the Secret, or replace its data when it exists."""
    body = k8s_client.V1Secret(
        api_version="v1",
        kind="Secret",
        type="Opaque",
        metadata=k8s_client.V1ObjectMeta(name=name, namespace=namespace, labels=dict(labels)),
        data=dict(data),
    )
    try:
        _core().create_namespaced_secret(namespace, body, _request_timeout=REQUEST_TIMEOUT_SECONDS)
    except ApiException as exc:
        if exc.status != 409:
            raise
        _core().replace_namespaced_secret(
            name, namespace, body, _request_timeout=REQUEST_TIMEOUT_SECONDS
        )


def set_webhook_ca_bundle(configuration: str, ca_bundle: str) -> int:
    """Put the base64 caBundle into every webhook of a ValidatingWebhookConfiguration;
    how many needed it (0: already current)."""
    admission = k8s_client.AdmissionregistrationV1Api(_api_client(os.environ.get("KUBECONFIG", "")))
    current = admission.read_validating_webhook_configuration(
        configuration, _request_timeout=REQUEST_TIMEOUT_SECONDS
    )
    operations = [
        {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": ca_bundle}
        for index, webhook in enumerate(current.webhooks or [])
        if webhook.client_config.ca_bundle != ca_bundle
    ]
    if operations:
        # Pinned to the version read: a concurrent edit fails the patch instead of
        # landing on another webhook at the same index.
        version = current.metadata.resource_version if current.metadata else None
        test = {"op": "test", "path": "/metadata/resourceVersion", "value": version}
        admission.patch_validating_webhook_configuration(
            configuration, [test, *operations],
            _content_type=_JSON_PATCH, _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )  # fmt: skip
    return len(operations)


def _core() -> k8s_client.CoreV1Api:
    return k8s_client.CoreV1Api(_api_client(os.environ.get("KUBECONFIG", "")))
