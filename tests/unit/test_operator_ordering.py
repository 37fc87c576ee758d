"""The order main.py gives a burst's work: children first, then Solr halves, re-syncs last."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from clickagg.operator import main

pytestmark = pytest.mark.unit
T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a thread of its own: earlier tests in the session (Playwright's sync
    API) may leave an event loop running on this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, scenario).result()


def test_a_solr_half_waits_until_no_pass_applies_children() -> None:
    async def scenario() -> list[str]:
        applying, seen = main.Applying(), []

        async def pass_applying() -> None:
            async with applying.one(resync=False):
                await asyncio.sleep(0.05)
                seen.append("children applied")

        async def solr_half() -> None:
            await asyncio.sleep(0)  # starts while the other pass applies
            await applying.quiet(5.0)
            seen.append("solr half")

        await asyncio.gather(pass_applying(), solr_half())
        assert applying.count == 0
        return seen

    assert run(scenario()) == ["children applied", "solr half"]


def test_a_solr_half_waits_no_longer_than_its_bound() -> None:
    async def scenario() -> float:
        applying = main.Applying()
        async with applying.one(resync=False):
            loop = asyncio.get_running_loop()
            began = loop.time()
            await applying.quiet(0.05)
            return loop.time() - began

    assert 0.04 <= run(scenario()) < 1.0


def test_resyncs_take_at_most_their_slots_and_are_not_counted_as_applying() -> None:
    async def scenario() -> tuple[int, int]:
        applying, running, most = main.Applying(), 0, 0

        async def resync() -> None:
            nonlocal running, most
            async with applying.one(resync=True):
                assert applying.count == 0
                running += 1
                most = max(most, running)
                await asyncio.sleep(0.01)
                running -= 1

        await asyncio.gather(*(resync() for _ in range(10)))
        return most, applying.count

    assert run(scenario()) == (main.RESYNC_SLOTS, 0)
