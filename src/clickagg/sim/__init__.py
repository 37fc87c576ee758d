"""A realistic, deterministic clickstream: visitors, visits, funnels, bots and broken lines.

Tests, benchmarks and demos need traffic that looks like a real shop's (skewed campaigns and
pages, a day and week rhythm, visitors who come back, abandoned carts, crawlers, senders that
get the contract wrong), and they need exactly the same traffic again for the same seed, so an
oracle can recompute what the pipeline must show. The simulation only builds the lines (bytes)
and says when each is sent and what it is; `landing` writes them to files or Kafka.

Development and demo tooling, not product logic: the jobs image leaves this package out.

Every non-bot event states its channel, device class, browser family and country itself, so an
oracle never has to repeat the derivation to agree with the pipeline; the urls, referrers and
user agents still say the same thing, so derivation would agree too.

Two random streams are used: one for the traffic and one for the faults, so switching faults
off leaves the same visits and event ids, only without the damage.
"""

from __future__ import annotations

from clickagg.sim.catalogue import BOTS, BROWSERS, SHOP, UNKNOWN_TYPE
from clickagg.sim.clock import iso
from clickagg.sim.kinds import (
    ACCEPTED_KINDS,
    DUPLICATE,
    FAR_FUTURE_MIN_MS,
    FAR_PAST_MIN_MS,
    INVALID_UTF8,
    LATE,
    MALFORMED_JSON,
    MISSING_FIELD,
    OUT_OF_ORDER,
    OVERSIZED,
    REJECTED_REASONS,
    TS_FAR_FUTURE,
    TS_FAR_PAST,
    VALID,
    WRONG_TYPE,
    Emitted,
)
from clickagg.sim.profile import Faults, TrafficProfile
from clickagg.sim.simulation import generate

__all__ = [
    "ACCEPTED_KINDS",
    "BOTS",
    "BROWSERS",
    "DUPLICATE",
    "FAR_FUTURE_MIN_MS",
    "FAR_PAST_MIN_MS",
    "INVALID_UTF8",
    "LATE",
    "MALFORMED_JSON",
    "MISSING_FIELD",
    "OUT_OF_ORDER",
    "OVERSIZED",
    "REJECTED_REASONS",
    "SHOP",
    "TS_FAR_FUTURE",
    "TS_FAR_PAST",
    "UNKNOWN_TYPE",
    "VALID",
    "WRONG_TYPE",
    "Emitted",
    "Faults",
    "TrafficProfile",
    "generate",
    "iso",
]
