"""One reconciliation of an Aggregation: from its body to the status it should have.

validate → apply the Spark children → ensure the level collections in Solr → read the
stream's progress. The first half (`apply`) talks to the API server only and the second
(`finish`) to Solr, so main.py runs them on separate thread pools: a burst of Aggregations
gets its children at once while Solr creates their collections one by one (the stream job
ensures its collections itself before it starts, so it never runs without them). Each
step that fails stops the pass: an invalid spec creates nothing and is not retried (only a
new spec can fix it); an unreachable Solr or API server marks the Aggregation Degraded and
asks to be retried with exponential backoff. The result is an
`Outcome` (status to write, events to post, retry delay), so kopf stays in main.py and
every decision here can be read, logged and tested on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from clickagg import errors
from clickagg.domain import (
    buckets,
    capacity,
    level_progress,
    model,
    progress,
    rollup,
    settle,
    status,
    validation,
)
from clickagg.operator import children, conditions, diagnosis, kube
from clickagg.store import batch as stored_batch
from clickagg.store import client as solr
from clickagg.store import collections as solr_collections
from clickagg.store import credentials
from clickagg.store import progress as stored_progress

Log = logging.Logger | logging.LoggerAdapter[Any]

SERVICE_ACCOUNT_ENV = "CLICKAGG_SPARK_SERVICE_ACCOUNT"
DATA_ROOT_ENV = "CLICKAGG_DATA_ROOT"
DATA_CLAIM_ENV = "CLICKAGG_DEFAULT_DATA_CLAIM"
SOLR_URL_OVERRIDE_ENV = "CLICKAGG_SOLR_URL_OVERRIDE"
DEFAULT_SERVICE_ACCOUNT = "clickagg-spark"
DEFAULT_DATA_ROOT = "/data/clickagg"

# The stream's SparkApplication state, copied onto the Aggregation so that a state change
# wakes the Aggregation's own handlers (see main.stream_state_changed).
STREAM_STATE_ANNOTATION = "clickagg.io/stream-state"
RUNNING = "RUNNING"
# Any new value asks for a reconcile now (kopf sees an annotation change as an update).
REQUESTED_AT_ANNOTATION = "clickagg.io/reconcile-requested-at"
# The operator's finalizer (kopf removes it once the delete handler is done). A pass adds
# it itself, in the same thread and just before the first child: kopf would add it in a
# cycle of its own (a patch, then its watch event) before the first handler even starts.
FINALIZER = "clickagg.io/cleanup"
# Ready's reason between the children's apply and the collections' creation.
WAITING_FOR_COLLECTIONS = "WaitingForCollections"

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0
# Deleting with deletionPolicy Delete waits this many retries for Solr, then lets go:
# an Aggregation must stay deletable when its Solr is gone for good.
CLEANUP_RETRIES = 5
# The operator retries by itself; one quick reconnect is enough per attempt.
_SOLR_TIMEOUT = (3.0, 120.0)


@dataclass(frozen=True)
class Config:
    """Deployment settings, read from the environment on every pass (tests change them)."""

    service_account: str
    data_root: str
    solr_url_override: str | None
    data_claim: str | None = None  # mounted at data_root when spec.storage names no place

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        return cls(
            service_account=environ.get(SERVICE_ACCOUNT_ENV) or DEFAULT_SERVICE_ACCOUNT,
            data_root=environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT,
            solr_url_override=environ.get(SOLR_URL_OVERRIDE_ENV) or None,
            data_claim=environ.get(DATA_CLAIM_ENV, "").strip() or None,
        )


@dataclass(frozen=True)
class Notice:
    """A Kubernetes Event to post about the Aggregation."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """What a pass decided: the status to write, events to post, and when to try again."""

    status: status.AggregationStatus | None  # None: leave the status as it is
    notices: tuple[Notice, ...] = ()
    retry_after: float | None = None  # seconds; None: nothing to retry
    problem: str = ""


@dataclass(frozen=True)
class _Pass:
    """What every step of one pass needs to know."""

    name: str
    namespace: str
    generation: int | None
    previous: status.AggregationStatus
    stamp: str
    logger: Log

    def condition(
        self, kind: str, truth: conditions.Truth, reason: str, message: str
    ) -> status.Condition:
        return conditions.make(
            self.previous.conditions, kind, truth, reason, message, self.generation, self.stamp
        )


def backoff(retry: int) -> float:
    """Seconds before attempt `retry + 1`: 2, 4, 8, ... up to 5 minutes."""
    doubling = float(2 ** min(max(retry, 0), 16))
    return min(BACKOFF_BASE_SECONDS * doubling, BACKOFF_CAP_SECONDS)


def stream_state(application: Mapping[str, Any]) -> str:
    """status.applicationState.state of a SparkApplication; empty before its first submit."""
    app_status = application.get("status") or {}
    return str((app_status.get("applicationState") or {}).get("state") or "")


@dataclass(frozen=True)
class Applied:
    """The first half of a pass: the spec is valid and the children are applied."""

    run: _Pass
    aggregation: model.Aggregation
    valid: status.Condition
    state: str  # the stream SparkApplication's, as the API server stored it
    notices: tuple[Notice, ...]
    owner: children.Owner
    executors: int  # the stream's, as applied
    children: tuple[status.ChildStatus, ...]  # what the status records as announced


def reconcile(body: Mapping[str, Any], *, retry: int, logger: Log, config: Config) -> Outcome:
    """Bring the Spark children and Solr in line with the spec; the status that results."""
    first = apply(body, retry=retry, logger=logger, config=config)
    if isinstance(first, Outcome):
        return first
    return finish(first, retry=retry, config=config)


def apply(body: Mapping[str, Any], *, retry: int, logger: Log, config: Config) -> Applied | Outcome:
    """Validate, add the finalizer (before anything exists that it must clean up), then
    apply the children: API server calls only, so a burst of
    Aggregations gets its children without queueing behind Solr's Collections API (the
    stream job ensures its collections itself before it reads or writes any). An Outcome
    when the pass ends here (an invalid spec, an API server that refuses)."""
    metadata = body["metadata"]
    run = _Pass(
        name=str(metadata["name"]),
        namespace=str(metadata["namespace"]),
        generation=metadata.get("generation"),
        previous=conditions.parse(body.get("status")),
        stamp=conditions.now(),
        logger=logger,
    )
    try:
        aggregation = validation.validate_spec(run.name, run.namespace, body.get("spec") or {})
    except errors.SpecError as exc:
        return _invalid(run, exc)
    levels = ", ".join(f"{level.name} kept {level.retention_text}" for level in aggregation.levels)
    logger.info("spec generation %s is valid: levels %s", run.generation, levels)
    valid = run.condition(conditions.VALID, "True", "SpecValid", f"levels {levels}")
    owner = children.Owner(run.name, run.namespace, str(metadata["uid"]))
    executors = _stream_executors(run, aggregation)
    try:
        if not kube.add_aggregation_finalizer(metadata, FINALIZER):
            logger.info("gone before its children were applied: nothing done")
            return Outcome(status=None)
        applied = _apply_children(aggregation, owner, config, logger, run.previous, executors)
    except errors.KubeError as exc:
        return _degraded(run, aggregation, valid, diagnosis.of_api_error(exc), retry)
    state = stream_state(applied.stream)
    return Applied(
        run,
        aggregation,
        valid,
        state,
        tuple(applied.notices),
        owner,
        executors,
        tuple(applied.children),
    )


def waiting(first: Applied) -> status.AggregationStatus | None:
    """The status to show while Solr creates a new spec generation's missing collections
    (Ready False, WaitingForCollections); None when the status already describes this
    generation.
    It keeps the previous record of announced children: their events are posted with the
    pass's outcome."""
    run, aggregation = first.run, first.aggregation
    if run.previous.observed_generation == run.generation:
        return None
    names = ", ".join(level.collection for level in aggregation.levels)
    message = (
        f"children applied; ensuring Solr collections {names} "
        "(the stream job ensures them too before it starts)"
    )
    ready = run.condition(conditions.READY, "False", WAITING_FOR_COLLECTIONS, message)
    updates = [first.valid, ready, *_rollups_default(run, aggregation)]
    return _status(run, updates, _levels(run, aggregation))


def finish(
    first: Applied,
    *,
    retry: int,
    config: Config,
    before_creating: Callable[[], None] | None = None,
) -> Outcome:
    """Ensure the collections, read the stream's progress: the pass's status and events.
    `before_creating` runs once before a missing collection is created (see `waiting`)."""
    run, aggregation = first.run, first.aggregation
    try:
        notices, report, batch = _sync_solr(
            aggregation, config, run.logger, run.previous, before_creating
        )
    except errors.SolrError as exc:
        found = diagnosis.of_solr_error(aggregation, exc)
        return _degraded(run, aggregation, first.valid, found, retry, first.notices)
    try:
        tuned = _tune(first, report.rates if report else None, config)
    except errors.KubeError as exc:
        found = diagnosis.of_api_error(exc)
        done = (*first.notices, *notices)
        return _degraded(run, aggregation, first.valid, found, retry, done)
    notices = [*first.notices, *notices, *tuned.notices]
    return _settled(
        run, aggregation, first.valid, first.state, notices, report, batch, tuned, first.children
    )


def cleanup(body: Mapping[str, Any], *, retry: int, logger: Log, config: Config) -> Outcome:
    """Delete the children, and the collections when deletionPolicy is Delete."""
    metadata = body["metadata"]
    name, namespace = str(metadata["name"]), str(metadata["namespace"])
    for kind in children.KINDS:
        for child in kube.list_owned(kind, namespace, name):
            if _owned_by(child, str(metadata.get("uid"))):
                kube.delete(kind, namespace, child["metadata"]["name"])
                logger.info("deleted %s %s", kind.kind, child["metadata"]["name"])
    try:
        aggregation = validation.validate_spec(name, namespace, body.get("spec") or {})
    except errors.SpecError:
        logger.info("spec is invalid, so it names no collections to delete")
        return Outcome(status=None)
    if aggregation.spec.deletion_policy != "Delete":
        kept = ", ".join(level.collection for level in aggregation.levels)
        logger.info("deletionPolicy Retain: keeping collections %s", kept)
        return Outcome(status=None)
    try:
        with _solr_client(aggregation, config) as client:
            solr_collections.delete_level_collections(client, aggregation)
    except errors.SolrError as exc:
        if retry < CLEANUP_RETRIES:
            logger.warning("could not delete the collections yet (retry %d): %s", retry, exc)
            return Outcome(status=None, retry_after=backoff(retry), problem=str(exc))
        message = f"gave up deleting the collections after {retry} retries: {exc}"
        logger.error("%s", message)
        return Outcome(status=None, notices=(Notice("Warning", "CollectionsNotDeleted", message),))
    logger.info("deletionPolicy Delete: deleted the level collections")
    return Outcome(status=None)


# --------------------------------------------------------------------------- steps


def _invalid(run: _Pass, exc: errors.SpecError) -> Outcome:
    message = "; ".join(f"{issue.path}: {issue.message}" for issue in exc.issues)
    run.logger.warning("spec generation %s is invalid, nothing done: %s", run.generation, message)
    valid = run.condition(conditions.VALID, "False", "InvalidSpec", message)
    ready = run.condition(conditions.READY, "False", "InvalidSpec", "the spec is invalid")
    before = conditions.find(run.previous.conditions, conditions.VALID)
    # Warn once per distinct problem, not on every periodic re-sync.
    new_problem = before is None or before.status != "False" or before.message != message
    notices = (Notice("Warning", "InvalidSpec", message),) if new_problem else ()
    return Outcome(
        status=_status(run, [valid, ready, *_rollups_default(run, None)], run.previous.levels),
        notices=notices,
    )


def _degraded(
    run: _Pass,
    aggregation: model.Aggregation,
    valid: status.Condition,
    found: diagnosis.Diagnosis,
    retry: int,
    done: Sequence[Notice] = (),
) -> Outcome:
    """`done`: the notices of what the pass did before it failed (collections it created)."""
    delay = backoff(retry)
    reason, message = found.reason, found.message
    degraded = run.condition(conditions.DEGRADED, "True", reason, message)
    ready = run.condition(conditions.READY, "False", reason, message)
    before = conditions.find(run.previous.conditions, conditions.DEGRADED)
    changed = conditions.changed(before, degraded)
    notices = (*done, *((Notice("Warning", reason, message),) if changed else ()))
    # The Warning event is the notice, once per change; the log says it once too, and
    # a retry that finds the same problem is one quiet line (k8s_skip: no kopf event).
    quiet = {"k8s_skip": True}
    if changed:
        run.logger.warning(
            "degraded (%s): %s; retrying in %.0fs", reason, message, delay, extra=quiet
        )
    else:
        run.logger.info("still degraded (%s), retry %d in %.0fs", reason, retry, delay, extra=quiet)
    updates = [valid, ready, degraded, *_rollups_default(run, aggregation)]
    return Outcome(
        status=_status(run, updates, _levels(run, aggregation)),
        notices=notices,
        retry_after=delay,
        problem=message,
    )


def _settled(
    run: _Pass,
    aggregation: model.Aggregation,
    valid: status.Condition,
    state: str,
    notices: list[Notice],
    report: progress.Report | None,
    batch: Mapping[str, level_progress.LevelReport],
    tuned: Tuning,
    announced: Sequence[status.ChildStatus],
) -> Outcome:
    stream = children.stream_name(aggregation.name)
    running = state == RUNNING
    streaming = run.condition(
        conditions.STREAMING_RUNNING,
        "True" if running else "False",
        conditions.camel_reason(state),
        f"SparkApplication {stream} is {state or 'not submitted yet'}",
    )
    if running:
        ready = run.condition(conditions.READY, "True", "Ready", "collections, jobs and stream up")
    else:
        ready = run.condition(conditions.READY, "False", "StreamingNotRunning", streaming.message)
    before_degraded = conditions.find(run.previous.conditions, conditions.DEGRADED)
    degraded = run.condition(conditions.DEGRADED, "False", "Reconciled", "Solr and jobs reachable")
    if before_degraded is not None and before_degraded.status == "True":
        notices.append(Notice("Normal", "Recovered", f"was {before_degraded.reason}"))
    before_ready = conditions.find(run.previous.conditions, conditions.READY)
    if conditions.changed(before_ready, ready) and running:
        notices.append(Notice("Normal", "Ready", ready.message))
    now_ms = int(time.time() * 1000)
    lag = progress.short_duration(progress.lag_ms(report, now_ms)) if report else None
    run.logger.info(
        "stream %s, lag %s; Ready=%s (%s)",
        streaming.message,
        lag or "not reported yet",
        ready.status,
        ready.reason,
    )
    rollups = _rollups_current(run, aggregation, report, batch)
    updates = [valid, ready, streaming, degraded, rollups]
    levels = _levels(run, aggregation, report, batch)
    announced = tuned.announced(announced)
    status_now = _status(run, updates, levels, lag, announced).model_copy(
        update=tuned.status_fields()
    )
    return Outcome(status=status_now, notices=tuple(notices))


def _sync_solr(
    aggregation: model.Aggregation,
    config: Config,
    logger: Log,
    previous: status.AggregationStatus,
    before_creating: Callable[[], None] | None,
) -> tuple[list[Notice], progress.Report | None, dict[str, level_progress.LevelReport]]:
    """One Solr session per pass: ensure the level collections (the created ones become
    notices, and so do present ones the status does not record yet: a pass killed after
    creating them lost its events), read the stream's progress report from the finest one
    and each level's batch progress (rollup watermark, retention horizon) from its own.
    A collection this pass created holds no progress yet, so it is not read."""
    with _solr_client(aggregation, config) as client:
        ensured = solr_collections.ensure_level_collections(client, aggregation, before_creating)
        created = {e.collection for e in ensured if e.created}
        finest = aggregation.finest
        report = None if finest.collection in created else stored_progress.read(client, finest)
        batch = {
            lv.name: level_progress.LevelReport()
            if lv.collection in created
            else stored_batch.read_progress(client, lv)
            for lv in aggregation.levels
        }
    logger.info(
        "collections in Solr: %s",
        ", ".join(f"{e.collection} ({'created' if e.created else 'present'})" for e in ensured),
    )
    recorded = {level.collection for level in previous.levels}
    notices = [
        Notice("Normal", "CollectionCreated", f"created Solr collection {e.collection}")
        if e.created
        else Notice(
            "Normal",
            "CollectionFound",
            f"found Solr collection {e.collection}, "
            "not in the status yet (created by a pass that did not finish, or kept)",
        )
        for e in ensured
        if e.created or e.collection not in recorded
    ]
    return notices, report, batch


@dataclass(frozen=True)
class _Applied:
    stream: dict[str, Any]  # the stream SparkApplication as the API server stored it
    notices: list[Notice]
    children: list[status.ChildStatus]  # what the status records as announced


def _apply_children(
    aggregation: model.Aggregation,
    owner: children.Owner,
    config: Config,
    logger: Log,
    previous: status.AggregationStatus,
    executors: int,
) -> _Applied:
    """Apply every desired child, delete stale ones.

    A child's creation or update is announced once: when this pass makes it, or when the
    status does not record it at its generation (the pass that made it was killed before
    its events and status were written). A first pass (no status yet) skips the two lists
    that find stale children: no child of another spec can exist (half a burst's calls)."""
    wanted = children.desired(aggregation, owner, _job_settings(config), executors)
    first_time = previous.observed_generation is None
    existing = {
        (child["kind"], child["metadata"]["name"]): child
        for kind in ([] if first_time else children.KINDS)
        for child in kube.list_owned(kind, owner.namespace, owner.name)
        if _owned_by(child, owner.uid)
    }
    recorded = {(c.kind, c.name): c.generation for c in previous.children}
    notices: list[Notice] = []
    outcomes: list[str] = []
    applied: list[status.ChildStatus] = []
    stored_stream: dict[str, Any] = {}
    for manifest in wanted:
        key = (manifest["kind"], manifest["metadata"]["name"])
        stored, created = kube.apply(manifest)
        verdict = _verdict(existing.pop(key, None), stored, created)
        generation = stored["metadata"].get("generation")
        outcomes.append(f"{key[0]} {key[1]} {verdict}")
        if verdict != "unchanged":
            notices.append(Notice("Normal", f"Child{verdict.capitalize()}", outcomes[-1]))
        elif key not in recorded:
            notices.append(_unannounced(key, "created"))
        elif recorded[key] != generation:
            notices.append(_unannounced(key, "updated"))
        applied.append(status.ChildStatus(kind=key[0], name=key[1], generation=generation))
        if manifest["kind"] == children.SPARK_APPLICATION.kind:
            stored_stream = stored
    for (kind_name, name), _stale in existing.items():
        kind = next(k for k in children.KINDS if k.kind == kind_name)
        kube.delete(kind, owner.namespace, name)
        outcomes.append(f"{kind_name} {name} deleted (no longer in the spec)")
        notices.append(Notice("Normal", "ChildDeleted", outcomes[-1]))
    logger.info("children: %s", "; ".join(outcomes))
    return _Applied(stored_stream, notices, applied)


def _unannounced(key: tuple[str, str], verdict: str) -> Notice:
    """The event a killed pass did not post about the child it created or updated."""
    message = f"{key[0]} {key[1]} {verdict} (by a pass that did not finish)"
    return Notice("Normal", f"Child{verdict.capitalize()}", message)


@dataclass(frozen=True)
class Tuning:
    """The stream's measured rates, the executors it runs with and those advised."""

    executors: int
    rates: capacity.Rates | None = None
    advised: int | None = None
    notices: tuple[Notice, ...] = ()
    rescaled: status.ChildStatus | None = None  # the stream application, if autoscaled

    def announced(self, applied: Sequence[status.ChildStatus]) -> list[status.ChildStatus]:
        """The children record after this tuning: an autoscaled stream's new generation
        was announced (Autoscaled), so the next pass does not announce it again."""
        if self.rescaled is None:
            return list(applied)
        key = (self.rescaled.kind, self.rescaled.name)
        return [self.rescaled if (c.kind, c.name) == key else c for c in applied]

    def status_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"executors": self.executors}
        if self.rates is not None:
            fields["input_rows_per_second"] = round(self.rates.input_per_second, 1)
            fields["processed_rows_per_second"] = round(self.rates.processed_per_second, 1)
            fields["advised_executors"] = self.advised
        return fields


def _bounds(aggregation: model.Aggregation) -> capacity.Bounds:
    executor = aggregation.spec.spark.executor
    return capacity.Bounds(
        executor.min_instances or 1, executor.max_instances or executor.instances
    )


def _stream_executors(run: _Pass, aggregation: model.Aggregation) -> int:
    """spec.spark.executor.instances; with autoscale, the count it chose before (status)."""
    chosen, bounds = run.previous.executors, _bounds(aggregation)
    if aggregation.spec.spark.autoscale and chosen is not None:
        return min(max(chosen, bounds.minimum), bounds.maximum)
    return aggregation.spec.spark.executor.instances


def _tune(first: Applied, rates: capacity.Rates | None, config: Config) -> Tuning:
    """Advise from the measured rates; with spark.autoscale, apply the advice (bounded) to
    the stream's SparkApplication. A Warning once per new advice while the stream falls
    behind."""
    run, aggregation, current = first.run, first.aggregation, first.executors
    if rates is None:
        return Tuning(current)
    advised = capacity.executors_needed(rates)
    notices: list[Notice] = []
    measured = (
        f"input {capacity.per_second(rates.input_per_second)}, processing "
        f"{capacity.per_second(rates.processed_per_second)} with {rates.executors} executor(s)"
    )
    autoscale = aggregation.spec.spark.autoscale
    behind = capacity.falls_behind(rates)
    if behind and advised is not None and advised != run.previous.advised_executors:
        remedy = (
            "spec.spark.autoscale applies it within executor.minInstances..maxInstances"
            if autoscale
            else "raise spec.spark.executor.instances, or set spec.spark.autoscale: true"
        )
        message = (
            f"the stream falls behind ({measured}): {advised} executors would keep up; {remedy}"
        )
        run.logger.warning("%s", message, extra={"k8s_skip": True})  # the notice is the Event
        notices.append(Notice("Warning", "StreamFallsBehind", message))
    target = capacity.autoscaled(current, rates, _bounds(aggregation)) if autoscale else current
    if target != current:
        manifest = children.stream_application(
            aggregation, first.owner, _job_settings(config), target
        )
        stored, _created = kube.apply(manifest)
        message = f"stream executors {current} → {target} ({measured})"
        run.logger.info("autoscaled: %s", message)
        notices.append(Notice("Normal", "Autoscaled", message))
        rescaled = status.ChildStatus(
            kind=manifest["kind"],
            name=manifest["metadata"]["name"],
            generation=stored["metadata"].get("generation"),
        )
        return Tuning(target, rates, advised, tuple(notices), rescaled)
    return Tuning(target, rates, advised, tuple(notices))


# --------------------------------------------------------------------------- helpers


def _solr_client(aggregation: model.Aggregation, config: Config) -> solr.SolrClient:
    url = config.solr_url_override or children.cluster_solr_url(aggregation)
    # The operator's own user (the chart's operator.solrCredentialsSecret, in its
    # environment) administers collections; spec.solr.basicAuthSecret is the jobs' user
    # and serves the operator only when it has none of its own.
    found = credentials.from_environment() or solr_credentials(aggregation)
    ca_file = solr_ca_file(aggregation)
    return solr.SolrClient(
        url, timeout=_SOLR_TIMEOUT, connect_retries=1, auth=found, ca_file=ca_file
    )


def _secret_data(
    namespace: str, name: str, where: str, holds: str, error: type[errors.SolrError]
) -> Mapping[str, str]:
    """The Secret's base64 data; `error` (naming `where`) when it cannot be read or is gone."""
    try:
        data = kube.read_secret_data(namespace, name)
    except errors.KubeError as exc:
        raise error(
            f"cannot read {where}: {exc.answer or exc}; the chart's operator Role grants "
            "get on secrets"
        ) from None
    if data is None:
        raise error(f"{where} does not exist: create it with {holds}")
    return data


def solr_ca_file(aggregation: model.Aggregation) -> Path | None:
    """spec.solr.tls's CA bundle, read through the Kubernetes API into a private file named by
    its digest (so a changed CA gets a new file); None without spec.solr.tls (the client then
    takes the operator's own $CLICKAGG_SOLR_CA_FILE, or the system's CAs).

    Every problem is a SolrTlsError naming the Secret and key."""
    tls = aggregation.spec.solr.tls
    if tls is None:
        return None
    ref = tls.ca_secret
    where = f"Secret {ref.name} in namespace {aggregation.namespace} (spec.solr.tls.caSecret)"
    data = _secret_data(
        aggregation.namespace, ref.name, where, "Solr's CA (PEM)", errors.SolrTlsError
    )
    try:
        bundle = base64.b64decode(data[ref.key], validate=True)
    except KeyError:
        raise errors.SolrTlsError(f"{where} has no key '{ref.key}'") from None
    except binascii.Error:
        raise errors.SolrTlsError(f"{where}: key '{ref.key}' is not base64") from None
    directory = Path(tempfile.gettempdir()) / f"clickagg-solr-ca-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / f"{hashlib.sha256(bundle).hexdigest()[:32]}.crt"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(bundle)
        partial.replace(path)
    try:
        return credentials.checked_ca_file(path)
    except errors.SolrTlsError:
        raise errors.SolrTlsError(f"{where}: key '{ref.key}' holds no PEM certificate") from None


def solr_credentials(aggregation: model.Aggregation) -> credentials.SolrCredentials | None:
    """The credentials in spec.solr.basicAuthSecret, read through the Kubernetes API; None
    without one.

    Every problem is a SolrAuthError naming the Secret and key, never a value."""
    ref = aggregation.spec.solr.basic_auth_secret
    if ref is None:
        return None
    where = f"Secret {ref.name} in namespace {aggregation.namespace} (spec.solr.basicAuthSecret)"
    data = _secret_data(
        aggregation.namespace, ref.name, where, "the Solr credentials", errors.SolrAuthError
    )
    values = []
    for key in (ref.username_key, ref.password_key):
        try:
            values.append(base64.b64decode(data[key], validate=True).decode("utf-8"))
        except KeyError:
            raise errors.SolrAuthError(f"{where} has no key '{key}'") from None
        except (binascii.Error, UnicodeDecodeError):
            raise errors.SolrAuthError(f"{where}: key '{key}' is not UTF-8 text") from None
    user, password = values
    return credentials.SolrCredentials(user.strip(), password.rstrip("\r\n"))


def _job_settings(config: Config) -> children.JobSettings:
    return children.JobSettings(config.service_account, config.data_root, config.data_claim)


def _verdict(before: Mapping[str, Any] | None, stored: Mapping[str, Any], created: bool) -> str:
    if created:
        return "created"
    if before is None:  # not listed (a first pass), yet there: an interrupted pass made it
        return "unchanged"
    same = before["metadata"].get("resourceVersion") == stored["metadata"].get("resourceVersion")
    return "unchanged" if same else "updated"


def _owned_by(child: Mapping[str, Any], uid: str) -> bool:
    references = child.get("metadata", {}).get("ownerReferences") or []
    return any(reference.get("uid") == uid for reference in references)


def _levels(
    run: _Pass,
    aggregation: model.Aggregation,
    report: progress.Report | None = None,
    batch: Mapping[str, level_progress.LevelReport] | None = None,
) -> list[status.LevelStatus]:
    """One entry per level; without fresh reports the previous status is kept.

    The finest level's last complete bucket comes from the stream's watermark; the coarser
    levels' from their rollup jobs' `__level__` documents, as do the retention horizons."""
    previous = {level.name: level for level in run.previous.levels}
    complete = progress.newest_complete_bucket(report, aggregation.finest) if report else None
    found = []
    for level in aggregation.levels:
        before = previous.get(level.name)
        last_bucket = before.last_rolled_up_bucket if before else None
        horizon = before.retention_horizon if before else None
        reported = (batch or {}).get(level.name)
        if level is aggregation.finest and complete is not None:
            last_bucket = buckets.iso(complete)
        elif level is not aggregation.finest and reported and reported.last_bucket_ms is not None:
            last_bucket = buckets.iso(reported.last_bucket_ms)
        if reported is not None and reported.horizon_ms is not None:
            horizon = buckets.iso(reported.horizon_ms)
        found.append(
            status.LevelStatus(
                name=level.name,
                collection=level.collection,
                last_rolled_up_bucket=last_bucket,
                retention_horizon=horizon,
            )
        )
    return found


def _rollups_current(
    run: _Pass,
    aggregation: model.Aggregation,
    report: progress.Report | None,
    batch: Mapping[str, level_progress.LevelReport],
) -> status.Condition:
    """True when every coarser level is within one of its buckets (its schedule period) of
    its complete input; False naming each level behind and by how much."""
    if len(aggregation.levels) < 2:
        return run.condition(conditions.ROLLUPS_CURRENT, "True", "NoRollups", "one level only")
    watermark = report.watermark_ms if report else None
    settled = (
        settle.settled_end(watermark, aggregation.finest, aggregation.allowed_lateness)
        if watermark
        else None
    )
    rolled = {name: found.last_bucket_ms for name, found in batch.items()}
    reported = any(batch[lv.name].reported_ms for lv in aggregation.levels[1:] if lv.name in batch)
    if settled is None and not reported:
        return run.condition(
            conditions.ROLLUPS_CURRENT, "Unknown", "NotReported", "no rollup job has reported yet"
        )
    behind = [lag for lag in rollup.lags(aggregation.levels, settled, rolled) if not lag.current]
    if behind:
        message = "; ".join(str(lag) for lag in behind)
        run.logger.info("rollups behind: %s", message)
        return run.condition(conditions.ROLLUPS_CURRENT, "False", "RollupsBehind", message)
    levels = ", ".join(lv.name for lv in aggregation.levels[1:])
    return run.condition(
        conditions.ROLLUPS_CURRENT, "True", "RollupsCurrent", f"{levels} within one bucket"
    )


def _rollups_default(run: _Pass, aggregation: model.Aggregation | None) -> list[status.Condition]:
    """RollupsCurrent is the rollup jobs' to report; until one does, it is Unknown."""
    if conditions.find(run.previous.conditions, conditions.ROLLUPS_CURRENT) is not None:
        return []
    if aggregation is not None and not children.rollup_levels(aggregation):
        nothing = run.condition(conditions.ROLLUPS_CURRENT, "True", "NoRollups", "no rollup jobs")
        return [nothing]
    return [
        run.condition(
            conditions.ROLLUPS_CURRENT, "Unknown", "NotReported", "no rollup job has reported yet"
        )
    ]


def _status(
    run: _Pass,
    updates: Sequence[status.Condition],
    levels: Sequence[status.LevelStatus],
    lag: str | None = None,
    applied: Sequence[status.ChildStatus] | None = None,
) -> status.AggregationStatus:
    """`applied`: the children this pass announced; None keeps the previous record."""
    return status.AggregationStatus(
        observed_generation=run.generation,
        conditions=conditions.merge(run.previous.conditions, updates),
        levels=list(levels),
        level_names=",".join(level.name for level in levels) or None,
        children=list(run.previous.children if applied is None else applied),
        lag=lag,
    )
