"""The operator's own calls to the Kubernetes API: apply, list, delete children; poke owners.

kopf watches and patches the Aggregation itself; everything else (the Spark Operator's
objects) goes through this module, so the rest of the operator stays plain logic.
Children are written by server-side apply under one field manager: applying the same
manifest twice changes nothing, and fields other managers own are left alone. An error the
API server answers with leaves this module as `errors.KubeError`, carrying its status, the
server's message and what was asked (`errors.KindNotServed` when the kind's CRD is not
installed), so the operator can tell a user what to fix (operator/diagnosis.py).
Objects read back are `dict[str, Any]`: the API server's JSON, whatever version wrote it.
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

from clickagg import errors
from clickagg.domain import spec
from clickagg.operator import children

_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
_JSON_PATCH = "application/json-patch+json"
# Every API call gives up after this long instead of blocking a handler thread for ever.
REQUEST_TIMEOUT_SECONDS = 30
# Kept connections to the API server: at least the operator's threads that call it at once
# (main.py: API, Solr and kopf pools). The client's default (5 per core, 10 here) made a
# burst discard a connection after most requests and open a new TLS one for the next.
CONNECTIONS = 32

CREATED = 201
NOT_FOUND = 404
CONFLICT = 409
UNPROCESSABLE = 422  # a JSON patch whose test failed
# Tries to add the finalizer to an Aggregation that other writers keep changing.
FINALIZER_ATTEMPTS = 3


def _custom_objects() -> k8s_client.CustomObjectsApi:
    return k8s_client.CustomObjectsApi(_api_client(os.environ.get("KUBECONFIG", "")))


@functools.cache
def _api_client(kubeconfig: str) -> k8s_client.ApiClient:
    """In a pod, the mounted ServiceAccount; elsewhere the kubeconfig (as kopf logs in)."""
    configuration = k8s_client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig or None, client_configuration=configuration
        )
    configuration.connection_pool_maxsize = CONNECTIONS
    return k8s_client.ApiClient(configuration)


@contextlib.contextmanager
def _answered(
    what: str, verb: str = "", kind: children.Kind | None = None, namespace: str = ""
) -> Iterator[None]:
    """Turn the client's ApiException into errors.KubeError, naming what was asked: `what`
    for the message, and the verb, kind and namespace when it was about a kind of object."""
    try:
        yield
    except k8s_exceptions.ApiException as exc:
        # A kind nobody serves is a plain-text 404 page; a missing object a JSON Status.
        not_served = exc.status == NOT_FOUND and "page not found" in str(exc.body or "")
        error = errors.KindNotServed if not_served else errors.KubeError
        raise error(
            f"{what}: {_describe(exc)}",
            exc.status,
            answer=_server_message(exc),
            verb=verb,
            resource=kind.resource if kind else "",
            namespace=namespace,
        ) from exc


def apply(manifest: children.AnyManifest) -> tuple[dict[str, Any], bool]:
    """Create or update a namespaced custom object by server-side apply; the stored object,
    and whether this apply created it (the API server answered 201)."""
    group, version = manifest["apiVersion"].split("/")
    kind = _kind_of(manifest["kind"])
    metadata = manifest["metadata"]
    with _answered(f"apply {kind.kind} {metadata['name']}", "patch", kind, metadata["namespace"]):
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
    return cast(dict[str, Any], json.loads(response.data)), response.status == CREATED


def list_owned(kind: children.Kind, namespace: str, aggregation: str) -> list[dict[str, Any]]:
    """The objects of `kind` labelled as children of the Aggregation."""
    with _answered(f"list {kind.plural} of {aggregation}", "list", kind, namespace):
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
    return _found(
        "delete", kind, namespace, name, _custom_objects().delete_namespaced_custom_object
    )


def exists(kind: children.Kind, namespace: str, name: str) -> bool:
    """Whether one object exists; KindNotServed when its CRD is not installed."""
    return _found("get", kind, namespace, name, _custom_objects().get_namespaced_custom_object)


def _found(
    verb: str, kind: children.Kind, namespace: str, name: str, method: Callable[..., object]
) -> bool:
    """Call a custom-objects `method` on one object; False when there is no such object
    (not: no such kind)."""
    try:
        with _answered(f"{verb} {kind.kind} {name}", verb, kind, namespace):
            method(
                kind.group,
                kind.version,
                namespace,
                kind.plural,
                name,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
    except errors.KubeError as exc:
        if no_such_object(exc):
            return False
        raise
    return True


def no_such_object(exc: errors.KubeError) -> bool:
    """A 404 about the object, not about its kind (KindNotServed)."""
    return exc.status == NOT_FOUND and not isinstance(exc, errors.KindNotServed)


def annotate_aggregation(namespace: str, name: str, annotations: Mapping[str, str]) -> bool:
    """Merge annotations into an Aggregation; False when it does not exist (any more).

    An unchanged value is a no-op for the API server: no new resourceVersion, no event.
    """
    body = {"metadata": {"annotations": dict(annotations)}}
    return _merge_aggregation(f"annotate {spec.KIND} {name}", namespace, name, body, status=False)


def patch_aggregation_status(namespace: str, name: str, patch: Mapping[str, Any]) -> bool:
    """Merge `patch` into an Aggregation's status mid-pass (kopf writes it only when a pass
    ends); False when the Aggregation does not exist (any more)."""
    what = f"patch the status of {spec.KIND} {name}"
    return _merge_aggregation(what, namespace, name, {"status": dict(patch)}, status=True)


def add_aggregation_finalizer(metadata: Mapping[str, Any], finalizer: str) -> bool:
    """Add `finalizer` to the Aggregation `metadata` describes, unless it has it already;
    False when that Aggregation is gone (deleted, or another one now has its name).

    A JSON patch pinned to the object's uid and resourceVersion, like kopf's own, so it
    never drops another controller's finalizer; a newer version is read once and tried
    again."""
    name, namespace = str(metadata["name"]), str(metadata["namespace"])
    api = _custom_objects()
    for _attempt in range(FINALIZER_ATTEMPTS):
        present = list(metadata.get("finalizers") or [])
        if finalizer in present:
            return True
        pinned = [
            {"op": "test", "path": f"/metadata/{field}", "value": metadata[field]}
            for field in ("uid", "resourceVersion")
        ]
        add = (
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer}
            if present
            else {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]}
        )
        try:
            with _answered(f"add the finalizer to {spec.KIND} {name}", "patch"):
                api.patch_namespaced_custom_object(
                    spec.API_GROUP,
                    spec.API_VERSION,
                    namespace,
                    spec.PLURAL,
                    name,
                    [*pinned, add],
                    _content_type=_JSON_PATCH,
                    _request_timeout=REQUEST_TIMEOUT_SECONDS,
                )
            return True
        except errors.KubeError as exc:
            if no_such_object(exc):
                return False
            if exc.status != UNPROCESSABLE:  # a failed test: a newer version, or another uid
                raise
        with _answered(f"read {spec.KIND} {name}", "get"):
            fresh: Any = api.get_namespaced_custom_object(
                spec.API_GROUP,
                spec.API_VERSION,
                namespace,
                spec.PLURAL,
                name,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        if fresh["metadata"].get("uid") != metadata["uid"]:
            return False
        metadata = fresh["metadata"]
    raise errors.KubeError(
        f"add the finalizer to {spec.KIND} {name}: changed {FINALIZER_ATTEMPTS} times meanwhile",
        CONFLICT,
        verb="patch",
        namespace=namespace,
    )


def _merge_aggregation(
    what: str, namespace: str, name: str, body: Mapping[str, Any], *, status: bool
) -> bool:
    """A JSON merge patch of an Aggregation (its status subresource with `status`)."""
    api = _custom_objects()
    call = (
        api.patch_namespaced_custom_object_status if status else api.patch_namespaced_custom_object
    )
    try:
        with _answered(what):
            call(
                spec.API_GROUP,
                spec.API_VERSION,
                namespace,
                spec.PLURAL,
                name,
                dict(body),
                field_manager=children.MANAGER,
                _content_type=_MERGE,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
    except errors.KubeError as exc:
        if no_such_object(exc):
            return False
        raise
    return True


def _describe(exc: k8s_exceptions.ApiException) -> str:
    """A one-line account of an API error for a condition message."""
    body = " ".join(str(exc.body or "").split())  # one line: bodies end in a newline
    return f"Kubernetes API answered {exc.status} {exc.reason}: {body[:300]}"


def _server_message(exc: k8s_exceptions.ApiException) -> str:
    """The message of the API server's JSON Status, else its HTTP status and reason."""
    try:
        return str(json.loads(str(exc.body))["message"])
    except (ValueError, KeyError, TypeError):
        return f"{exc.status} {exc.reason}"


def _kind_of(kind: str) -> children.Kind:
    return next(k for k in children.KINDS if k.kind == kind)


def read_secret_data(namespace: str, name: str) -> dict[str, str] | None:
    """The base64 `data` of a Secret; None when it does not exist."""
    try:
        with _answered(f"read Secret {name}"):
            secret = _core().read_namespaced_secret(
                name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
    except errors.KubeError as exc:
        if exc.status == NOT_FOUND:
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
        with _answered(f"create Secret {name}"):
            _core().create_namespaced_secret(
                namespace, body, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
    except errors.KubeError as exc:
        if exc.status != CONFLICT:
            raise
        with _answered(f"replace Secret {name}"):
            _core().replace_namespaced_secret(
                name, namespace, body, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )


def set_webhook_ca_bundle(configuration: str, ca_bundle: str) -> int:
    """Put the base64 caBundle into every webhook of a ValidatingWebhookConfiguration;
    how many needed it (0: already current)."""
    admission = k8s_client.AdmissionregistrationV1Api(_api_client(os.environ.get("KUBECONFIG", "")))
    with _answered(f"read ValidatingWebhookConfiguration {configuration}"):
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
        with _answered(f"patch the caBundle of {configuration}"):
            admission.patch_validating_webhook_configuration(
                configuration,
                [test, *operations],
                _content_type=_JSON_PATCH,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
    return len(operations)


def _core() -> k8s_client.CoreV1Api:
    return k8s_client.CoreV1Api(_api_client(os.environ.get("KUBECONFIG", "")))
