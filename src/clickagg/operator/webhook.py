"""The validating admission webhook: `kubectl apply` refuses a bad Aggregation at once.

It runs `validation.validate`, the one validation `clickagg validate` and every reconcile
pass run, and answers as the API server's own schema errors do (422 Invalid, one cause per
problem with its field path), so kubectl prints every problem on its own line. Advisories
and an unwatched namespace come back as admission warnings.

Served on kopf's event loop by aiohttp (kopf's own dependency) rather than through
`kopf.on.validate`: kopf's answer carries one message and a code, not the causes kubectl
prints per field, and its managed mode rewrites the whole webhook configuration, where
the chart owns it and the operator only keeps its caBundle current.

TLS comes either from cert-manager (files in a mounted Secret, re-read when they change)
or from the operator itself: a CA and a serving certificate kept in a Secret, renewed
before they expire, with the CA patched into the configuration's caBundle.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from clickagg import errors
from clickagg.domain import certificates, spec, validation
from clickagg.operator import children, kube

PATH = "/validate-aggregation"
PORT_ENV = "CLICKAGG_WEBHOOK_PORT"
ADDRESS_ENV = "CLICKAGG_WEBHOOK_ADDRESS"
HOSTS_ENV = "CLICKAGG_WEBHOOK_HOSTS"
CERTIFICATES_ENV = "CLICKAGG_WEBHOOK_CERTIFICATES"
CERT_DIR_ENV = "CLICKAGG_WEBHOOK_CERT_DIR"
CONFIGURATION_ENV = "CLICKAGG_WEBHOOK_CONFIGURATION"
WATCHED_ENV = "CLICKAGG_WATCHED_NAMESPACES"
# How often the certificates are checked: files re-read, renewal dates compared.
CHECK_INTERVAL_SECONDS = 60.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Where to listen, where the certificates come from, what to keep current."""

    port: int
    address: str
    hosts: tuple[str, ...]
    secret: tuple[str, str] | None  # (namespace, name): certificates the operator issues
    cert_dir: Path | None  # tls.crt and tls.key mounted from cert-manager's Secret
    configuration: str | None  # the ValidatingWebhookConfiguration whose caBundle we patch
    watched: tuple[str, ...]  # empty: every namespace

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings | None:
        """None when no port is set: the webhook is off."""
        port = environ.get(PORT_ENV)
        if not port:
            return None
        store = environ.get(CERTIFICATES_ENV) or ""
        cert_dir = environ.get(CERT_DIR_ENV) or ""
        if bool(store) == bool(cert_dir):
            raise errors.ClickaggError(f"set exactly one of {CERTIFICATES_ENV} and {CERT_DIR_ENV}")
        namespace, _, name = store.rpartition("/")
        if store and not (namespace and name):
            raise errors.ClickaggError(f"{CERTIFICATES_ENV} must read namespace/name: {store!r}")
        return cls(
            port=int(port),
            address=environ.get(ADDRESS_ENV) or "0.0.0.0",  # noqa: S104 (a pod's webhook)
            hosts=_words(environ.get(HOSTS_ENV)) or ("localhost",),
            secret=(namespace, name) if store else None,
            cert_dir=Path(cert_dir) if cert_dir else None,
            configuration=environ.get(CONFIGURATION_ENV) or None,
            watched=_words(environ.get(WATCHED_ENV)),
        )


def _words(text: str | None) -> tuple[str, ...]:
    return tuple(word.strip() for word in (text or "").split(",") if word.strip())


# --------------------------------------------------------------------------- the review


def review(request: Mapping[str, Any], watched: Sequence[str] = ()) -> dict[str, Any]:
    """The AdmissionReview answering an AdmissionReview request (no I/O)."""
    payload = request.get("request") or {}
    response: dict[str, Any] = {"uid": payload.get("uid", ""), "allowed": True}
    answer = {
        "apiVersion": request.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }
    new, old = payload.get("object"), payload.get("oldObject")
    if not isinstance(new, dict) or not _spec_changed(payload.get("operation"), new, old):
        return answer  # metadata only (finalizers, annotations): never block cleanup
    try:
        aggregation = validation.validate(new)
    except errors.SpecError as exc:
        response["allowed"] = False
        response["status"] = _invalid(new, exc.issues)
        return answer
    warnings = [str(issue) for issue in validation.advisories(aggregation)]
    if watched and aggregation.namespace not in watched:
        warnings.append(
            f"namespace {aggregation.namespace} is not watched by the clickagg operator "
            f"(it watches {', '.join(watched)}): nothing will run for this Aggregation until "
            "the namespace is added to the chart's operator.namespaces"
        )
    if warnings:
        response["warnings"] = warnings
    return answer


def _spec_changed(operation: Any, new: Mapping[str, Any], old: Any) -> bool:
    if operation == "CREATE" or not isinstance(old, dict):
        return True
    deleting = bool((new.get("metadata") or {}).get("deletionTimestamp"))
    return not deleting and new.get("spec") != old.get("spec")


def _invalid(obj: Mapping[str, Any], issues: Sequence[errors.SpecIssue]) -> dict[str, Any]:
    """A metav1.Status as the API server's schema errors are: kubectl lists the causes."""
    name = str((obj.get("metadata") or {}).get("name") or "")
    return {
        "status": "Failure",
        "code": 422,
        "reason": "Invalid",
        "message": f'{spec.KIND} "{name}" is invalid: ' + "; ".join(map(str, issues)),
        "details": {
            "group": spec.API_GROUP,
            "kind": spec.KIND,
            "name": name,
            "causes": [
                {"reason": "FieldValueInvalid", "field": issue.path, "message": issue.message}
                for issue in issues
            ],
        },
    }


def decision(request: Mapping[str, Any], answer: Mapping[str, Any]) -> str:
    """One log line for one admission decision, naming the object."""
    payload = request.get("request") or {}
    what = f"{payload.get('operation')} of {spec.KIND} {payload.get('namespace')}/" + str(
        payload.get("name") or ((payload.get("object") or {}).get("metadata") or {}).get("name")
    )
    response = answer["response"]
    if not response["allowed"]:
        causes = response["status"]["details"]["causes"]
        return f"refused {what}: " + "; ".join(f"{c['field']}: {c['message']}" for c in causes)
    warnings = response.get("warnings") or []
    return f"admitted {what}" + (f" with warnings: {'; '.join(warnings)}" if warnings else "")


# --------------------------------------------------------------------------- the server


@dataclass
class Webhook:
    """A running webhook server and the task that keeps its certificates current."""

    settings: Settings
    context: ssl.SSLContext
    runner: web.AppRunner
    certs: certificates.Certificates | None = None
    files_seen: tuple[float, ...] = ()
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.runner.cleanup()


async def start(settings: Settings) -> Webhook:
    """Load or issue the certificates and listen; the running webhook."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    app = web.Application()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    hook = Webhook(settings, context, runner)
    await asyncio.to_thread(_refresh, hook)

    async def handle(request: web.Request) -> web.Response:
        return await _serve(request, settings.watched)

    app.router.add_post(PATH, handle)
    await runner.setup()
    site = web.TCPSite(runner, settings.address, settings.port, ssl_context=context)
    await site.start()
    hook.tasks.append(asyncio.create_task(_keep_current(hook)))
    logger.info(
        "validating webhook listening on https://%s:%d%s for %s",
        settings.address,
        settings.port,
        PATH,
        ", ".join(settings.hosts),
    )
    return hook


async def _serve(request: web.Request, watched: Sequence[str]) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return web.Response(status=400, text="expected an AdmissionReview in JSON")
    if not isinstance(body, dict):
        return web.Response(status=400, text="expected an AdmissionReview object")
    answer = await asyncio.to_thread(review, body, watched)
    logger.info("%s", decision(body, answer))
    return web.json_response(answer)


async def _keep_current(hook: Webhook) -> None:
    while True:
        await asyncio.sleep(CHECK_INTERVAL_SECONDS)
        try:
            await asyncio.to_thread(_refresh, hook)
        except (errors.KubeError, OSError, ssl.SSLError, ValueError) as exc:
            # The current certificates still serve; the next check tries again.
            logger.error("could not renew the webhook certificates: %s", exc)


def _refresh(hook: Webhook) -> None:
    """Load the certificates when they are new or due; publish the CA when it changed."""
    if hook.settings.cert_dir is not None:
        _reload_mounted(hook, hook.settings.cert_dir)
    elif hook.certs is None or dt.datetime.now(dt.UTC) >= hook.certs.renew_at():
        _issue(hook)


def _reload_mounted(hook: Webhook, directory: Path) -> None:
    cert, key = directory / "tls.crt", directory / "tls.key"
    seen = (cert.stat().st_mtime, key.stat().st_mtime)
    if seen != hook.files_seen:
        hook.context.load_cert_chain(cert, key)
        hook.files_seen = seen
        logger.info("webhook serves the certificate in %s (cert-manager's Secret)", directory)


def _issue(hook: Webhook) -> None:
    assert hook.settings.secret is not None  # from_env: a secret or a cert_dir
    namespace, name = hook.settings.secret
    stored = certificates.Certificates.from_secret_data(kube.read_secret_data(namespace, name))
    certs = certificates.ensure(stored, hook.settings.hosts)
    if certs != stored:
        labels = {children.MANAGED_BY_LABEL: children.MANAGER}
        kube.write_secret_data(namespace, name, certs.secret_data(), labels)
        logger.info(
            "issued the webhook certificate for %s into Secret %s/%s",
            ", ".join(hook.settings.hosts),
            namespace,
            name,
        )
    with tempfile.TemporaryDirectory() as scratch:
        # ssl loads key pairs from files only; they live for this call, readable by us alone.
        cert, key = Path(scratch) / "tls.crt", Path(scratch) / "tls.key"
        cert.write_bytes(certs.cert)
        key.touch(mode=0o600)
        key.write_bytes(certs.key)
        hook.context.load_cert_chain(cert, key)
    hook.certs = certs
    if hook.settings.configuration:
        _publish_ca(hook.settings.configuration, certs)


def _publish_ca(configuration: str, certs: certificates.Certificates) -> None:
    bundle = certs.secret_data()["bundle.crt"]
    try:
        patched = kube.set_webhook_ca_bundle(configuration, bundle)
    except errors.KubeError as exc:
        if exc.status != kube.NOT_FOUND:
            raise
        logger.warning(
            "ValidatingWebhookConfiguration %s does not exist, so the API server never calls "
            "this webhook: install it with the chart (webhook.enabled)",
            configuration,
        )
        return
    if patched:
        logger.info("caBundle of ValidatingWebhookConfiguration %s updated", configuration)
