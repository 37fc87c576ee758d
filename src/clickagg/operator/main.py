"""The module `kopf run -m clickagg.operator.main` loads: settings and handlers, nothing more.

Run it with one replica and `--standalone`: there is no peering, so two operators would
both act on every Aggregation. The Helm chart's Deployment uses the Recreate strategy for
the same reason.

Handlers, all thin wrappers around `reconcile`:
- create / update / resume of an Aggregation, and a timer every 60 s once the object has
  been idle for 10 s: kopf never re-lists on its own (kopf#698), so the timer is the
  periodic re-sync that repairs drift (a child deleted by hand, a collection dropped).
  While any other pass waits for or runs its API-server half, a re-sync tick skips and
  Solr halves wait (Applying): a burst's children come before its collections and before
  the re-syncs of the Aggregations done a moment ago.
  A pass's API-server half runs on a small pool of its own and its Solr half on the
  `CLICKAGG_OPERATOR_WORKERS` pool, so children never queue behind collection creations;
  before a new spec generation's collections are created its status says
  WaitingForCollections.
- delete: kopf's finalizer deletes the children explicitly (a cluster without a garbage
  collector would keep them) and the collections when deletionPolicy is Delete.
  The delete handler and the timer match only an Aggregation that has the finalizer, and
  a pass adds it just before its first child (reconcile.apply): otherwise kopf adds it in
  a cycle of its own (a patch, then the watch event that brings it back) before the
  create handler starts: a watch round trip per new Aggregation. So an Aggregation that
  never had a valid spec has no finalizer and no re-sync timer: nothing to clean up or
  repair.
- an event handler on the stream SparkApplications: when the Spark Operator changes their
  state, it copies the state into an annotation of the owning Aggregation, which wakes the
  Aggregation's update handler; the status is then written by kopf alone, in order.
- startup / cleanup: the validating admission webhook (webhook.py), when configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import kopf

from clickagg import errors
from clickagg.domain import spec
from clickagg.operator import children, kube, reconcile, webhook

LOG_FORMAT_ENV = "CLICKAGG_LOG_FORMAT"
WORKERS_ENV = "CLICKAGG_OPERATOR_WORKERS"
# Threads for the Solr half of a pass (and kopf's own sync handlers): they mostly wait on
# Solr's Collections API, which creates collections one by one anyway.
DEFAULT_WORKERS = 16
# Threads for the API-server half of a pass (validate, apply the children): never blocked
# by Solr, so a burst of Aggregations gets its children at once.
KUBE_WORKERS = 8
# kopf's own pool: only the delete handler and the stream-state handler run there now.
KOPF_WORKERS = 4
# A pass's Solr half waits at most this long for the other passes' children (Applying).
SOLR_DEFERRAL_SECONDS = 10.0
RESYNC_SLOTS = 2  # of the KUBE_WORKERS threads
RESYNC_INTERVAL_SECONDS = 60.0
RESYNC_IDLE_SECONDS = 10.0
TIMER_EXIT_POLL_SECONDS = 2.0
# Unexpected errors (bugs, API hiccups not caught as such) are retried this often.
HANDLER_BACKOFF_SECONDS = 10.0
# kopf's progress and diff-base annotations under our own prefix, status left to us.
STORAGE_PREFIX = "operator.clickagg.io"
FINALIZER = reconcile.FINALIZER

AGGREGATIONS = (spec.API_GROUP, spec.API_VERSION, spec.PLURAL)
SPARK_APPLICATIONS = (
    children.SPARK_APPLICATION.group,
    children.SPARK_APPLICATION.version,
    children.SPARK_APPLICATION.plural,
)
STREAM_LABELS = {
    children.MANAGED_BY_LABEL: children.MANAGER,
    children.COMPONENT_LABEL: children.STREAM,
}


@dataclass(frozen=True)
class Pools:
    """The two halves of a pass run on their own threads (see reconcile.apply/finish)."""

    kube: ThreadPoolExecutor
    solr: ThreadPoolExecutor


class Applying:
    """The passes (not re-syncs) queued for or in their API-server half, counted on the
    event loop. While any is, the Solr halves wait and re-sync ticks skip: on 2 cores Solr
    creating collections takes the CPU the API server needs for the burst's children.
    Re-syncs take at most RESYNC_SLOTS of the API-server threads, so the re-syncs of a
    burst done a moment ago never queue a new Aggregation behind them."""

    def __init__(self) -> None:
        self.count = 0
        # Both bound to the loop that first waits on them.
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._resync_slots = asyncio.Semaphore(RESYNC_SLOTS)

    @contextlib.asynccontextmanager
    async def one(self, *, resync: bool) -> AsyncIterator[None]:
        if resync:
            async with self._resync_slots:
                yield
            return
        self.count += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self.count -= 1
            if not self.count:
                self._quiet.set()

    async def quiet(self, timeout: float) -> None:
        """Return once no pass is applying children, or after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), timeout)


_pools: list[Pools] = []  # one pair per process: never shut down, since kopf's timers may
# still start a pass after the cleanup handlers ran, and tests start kopf many times


def pools(solr_workers: int) -> Pools:
    if not _pools:
        kube_pool = ThreadPoolExecutor(KUBE_WORKERS, thread_name_prefix="kube")
        _pools.append(Pools(kube_pool, ThreadPoolExecutor(solr_workers, thread_name_prefix="solr")))
    return _pools[0]


class QuietRetries(logging.Filter):
    """kopf logs every TemporaryError as an ERROR and posts it as an event, once per retry;
    the pass that raised it has already said why, once per change (reconcile._degraded)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed temporarily" not in record.getMessage()


@kopf.on.startup()
def configure(
    settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    # A watch can hang without an error (kopf#585, #957, #1276); bounded requests and
    # connects make kopf reconnect instead. server < client so the server ends it cleanly.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    settings.peering.standalone = True
    # A deleted Aggregation keeps kopf's finalizer until its re-sync timer has stopped; a
    # timer caught mid-pass was checked again only after kopf's default 60 s, so deleting
    # 100 at once took a minute more whenever one re-sync was running.
    settings.background.cancellation_polling = TIMER_EXIT_POLL_SECONDS
    workers = int(os.environ.get(WORKERS_ENV) or DEFAULT_WORKERS)
    settings.execution.max_workers = KOPF_WORKERS
    memo["pools"] = pools(workers)
    memo["applying"] = Applying()
    settings.posting.enabled = True
    # Warnings only: mirroring every INFO line made ~6 Events per pass (and per re-sync),
    # most of a burst's API requests; the decisions worth an Event are posted as such.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = children.MANAGER
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STORAGE_PREFIX, key="last-handled-configuration"
    )
    objects_logger = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietRetries) for f in objects_logger.filters):
        objects_logger.addFilter(QuietRetries())
    if os.environ.get(LOG_FORMAT_ENV, "").lower() == "json":
        verbose = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
        kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON)
    logger.info(
        "clickagg operator configured (standalone, finalizer %s, %d Solr / %d API threads)",
        FINALIZER,
        workers,
        KUBE_WORKERS,
    )


@kopf.on.startup()
async def start_webhook(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    settings = webhook.Settings.from_env()
    if settings is None:
        return
    try:
        memo["webhook"] = await webhook.start(settings)
    except (errors.KubeError, OSError) as exc:
        # The operator still reconciles; the Valid condition reports what the webhook misses.
        logger.error("validating webhook not served, applies go unchecked: %s", exc)


@kopf.on.cleanup()
async def stop_webhook(memo: kopf.Memo, **_: Any) -> None:
    running = memo.get("webhook")
    if running is not None:
        await running.stop()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # In a pod the ServiceAccount, elsewhere $KUBECONFIG as it is at login time (the
    # kubernetes package's own loader fixes the kubeconfig path when it is imported).
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.resume(*AGGREGATIONS, backoff=HANDLER_BACKOFF_SECONDS)
@kopf.on.create(*AGGREGATIONS, backoff=HANDLER_BACKOFF_SECONDS)
@kopf.on.update(*AGGREGATIONS, backoff=HANDLER_BACKOFF_SECONDS)
async def reconcile_aggregation(
    body: kopf.Body,
    patch: kopf.Patch,
    retry: int,
    logger: kopf.Logger,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    await _run(body, patch, retry, logger, memo)


def _claimed(meta: kopf.Meta, **_: Any) -> bool:
    """Whether a pass has added the finalizer (kopf would otherwise add it itself, first)."""
    return FINALIZER in (meta.get("finalizers") or [])


@kopf.timer(
    *AGGREGATIONS,
    when=_claimed,
    interval=RESYNC_INTERVAL_SECONDS,
    idle=RESYNC_IDLE_SECONDS,
    backoff=HANDLER_BACKOFF_SECONDS,
)
async def resync_aggregation(
    body: kopf.Body,
    patch: kopf.Patch,
    logger: kopf.Logger,
    memo: kopf.Memo,
    retry: int = 0,
    **_: Any,
) -> None:
    # kopf passes `retry` to timers too, though its TimerFn protocol does not declare it.
    applying: Applying = memo["applying"]
    if applying.count and not retry:
        logger.debug("re-sync skipped: %d passes are applying children", applying.count)
        return
    await _run(body, patch, retry, logger, memo, resync=True)


@kopf.on.delete(*AGGREGATIONS, when=_claimed, backoff=HANDLER_BACKOFF_SECONDS)
def delete_aggregation(body: kopf.Body, retry: int, logger: kopf.Logger, **_: Any) -> None:
    config = reconcile.Config.from_env()
    outcome = reconcile.cleanup(body, retry=retry, logger=logger, config=config)
    _post(body, outcome)
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(outcome.problem, delay=outcome.retry_after)


@kopf.on.event(*SPARK_APPLICATIONS, labels=STREAM_LABELS)
def stream_state_changed(body: kopf.Body, type: str | None, logger: kopf.Logger, **_: Any) -> None:
    if type == "DELETED":
        return  # the owner's re-sync recreates it, or the owner is being deleted
    owner = body.metadata.labels.get(children.AGGREGATION_LABEL)
    namespace = body.metadata.namespace
    if not owner or not namespace:
        return
    state = reconcile.stream_state(body)
    if not state:
        return  # not submitted yet: the pass that applied it has already said so
    annotation = {reconcile.STREAM_STATE_ANNOTATION: state}
    if kube.annotate_aggregation(namespace, owner, annotation):
        logger.debug("stream state %s noted on Aggregation %s", state, owner)


async def _run(
    body: kopf.Body,
    patch: kopf.Patch,
    retry: int,
    logger: kopf.Logger,
    memo: kopf.Memo,
    *,
    resync: bool = False,
) -> None:
    threads: Pools = memo["pools"]
    applying: Applying = memo["applying"]
    config = reconcile.Config.from_env()
    loop = asyncio.get_running_loop()
    async with applying.one(resync=resync):
        first = await loop.run_in_executor(
            threads.kube,
            functools.partial(reconcile.apply, body, retry=retry, logger=logger, config=config),
        )
    if isinstance(first, reconcile.Outcome):
        outcome = first
    else:
        await applying.quiet(SOLR_DEFERRAL_SECONDS)
        outcome = await loop.run_in_executor(threads.solr, _finish, first, retry, config)
    # Written even when retrying: kopf applies the patch before it schedules the retry.
    if outcome.status is not None:
        for key, value in outcome.status.patch().items():
            patch.status[key] = value
    _post(body, outcome)
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(outcome.problem, delay=outcome.retry_after)


def _finish(first: reconcile.Applied, retry: int, config: reconcile.Config) -> reconcile.Outcome:
    """The Solr half; before it creates a missing collection, the status says that it waits
    for them (on the Solr pool, so the extra patch never holds up another Aggregation's
    children; a spec change whose collections exist gets no such patch)."""

    def say_waiting() -> None:
        waiting = reconcile.waiting(first)
        if waiting is not None:
            kube.patch_aggregation_status(first.run.namespace, first.run.name, waiting.patch())

    return reconcile.finish(first, retry=retry, config=config, before_creating=say_waiting)


def _post(body: kopf.Body, outcome: reconcile.Outcome) -> None:
    for notice in outcome.notices:
        kopf.event(body, type=notice.type, reason=notice.reason, message=notice.message)
