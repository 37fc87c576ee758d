"""What every router shares: the served Aggregations, the store, the clock, and a bound on
how long any answer may take.

Routers run their Solr reads on a dedicated thread pool through `answer`, which gives up
after `answer_timeout_s` so a hanging Solr yields a 503, never a hung client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from clickagg import errors
from clickagg.domain import buckets, model, progress, query, questions
from clickagg.service import answers, settings
from clickagg.store import protocol

T = TypeVar("T")
log = logging.getLogger(__name__)

#: How long the set of levels that hold documents is trusted (rollups appear rarely).
LEVELS_CACHE_S = 30.0
#: How long a progress report read is reused: the stream reports every trigger (10 s).
FRESHNESS_CACHE_S = 1.0


class Served:
    def __init__(
        self,
        config: settings.Settings,
        store: protocol.KpiStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = config
        self.store = store
        self.clock = clock
        self._by_name = {a.name: a for a in config.aggregations}
        self._pool = concurrent.futures.ThreadPoolExecutor(64, thread_name_prefix="solr-read")
        self._levels: dict[str, tuple[float, set[str]]] = {}
        self._reports: dict[str, tuple[float, progress.Report | None]] = {}
        self._cache_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def aggregation(self, name: str) -> model.Aggregation:
        found = self._by_name.get(name)
        if found is None:
            raise errors.UnknownAggregation(
                "aggregation", f"'{name}' is not served; served: {', '.join(self._by_name)}"
            )
        return found

    @property
    def aggregations(self) -> list[model.Aggregation]:
        return list(self._by_name.values())

    async def answer(self, work: Callable[[], T]) -> T:
        """Run blocking reads on the pool; SolrUnreachable after `answer_timeout_s` (the
        reads may still be running)."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, work)
        try:
            return await asyncio.wait_for(future, self.settings.answer_timeout_s)
        except TimeoutError:
            raise errors.SolrUnreachable(
                f"Solr at {self.settings.solr_url} did not answer within "
                f"{self.settings.answer_timeout_s:g}s"
            ) from None

    def choose_level(
        self,
        aggregation: model.Aggregation,
        span: buckets.Span,
        asked: str | None,
        max_buckets: int,
    ) -> query.LevelChoice:
        """The one place the service picks a level (`domain.query.choose_level`, among the
        levels that hold documents)."""
        return questions.level_for(
            aggregation,
            span,
            self.now_ms(),
            asked=asked,
            with_documents=self.levels_with_documents(aggregation),
            max_buckets=max_buckets,
        )

    def _report(self, aggregation: model.Aggregation) -> progress.Report | None:
        return self._cached(
            self._reports,
            aggregation,
            FRESHNESS_CACHE_S,
            lambda: self.store.progress(aggregation.finest),
        )

    def levels_with_documents(self, aggregation: model.Aggregation) -> set[str]:
        return self._cached(
            self._levels,
            aggregation,
            LEVELS_CACHE_S,
            lambda: self.store.levels_with_documents(aggregation.levels),
        )

    def _cached(
        self,
        cache: dict[str, tuple[float, T]],
        aggregation: model.Aggregation,
        seconds: float,
        read: Callable[[], T],
    ) -> T:
        """A store read reused for `seconds` per Aggregation."""
        now = time.monotonic()
        with self._cache_lock:
            cached = cache.get(aggregation.name)
        if cached and now - cached[0] < seconds:
            return cached[1]
        found = read()
        with self._cache_lock:
            cache[aggregation.name] = (now, found)
        return found

    def freshness(self, aggregation: model.Aggregation) -> answers.Freshness:
        report = self._report(aggregation)
        if report is None:
            return answers.Freshness(
                newest_complete_bucket=None, lag_seconds=None, reported_at=None, stalled=True
            )
        now_ms = self.now_ms()
        complete = progress.newest_complete_bucket(report, aggregation.finest)
        return answers.Freshness(
            newest_complete_bucket=buckets.iso(complete) if complete is not None else None,
            lag_seconds=progress.lag_ms(report, now_ms) / 1000,
            reported_at=buckets.iso(report.reported_ms),
            stalled=now_ms - report.reported_ms > progress.STALE_AFTER_MS,
        )
