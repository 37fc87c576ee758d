"""Leaders and movers for steering campaigns, offers and contents, with a trust flag.

A KPI's *base* is the count it rests on: the denominator of a ratio (impressions for the
click-through rate), or the count itself. A value whose base is below `MIN_BASE` in a period
it is judged on is flagged `small`: one click on two impressions is a 50 % click-through
rate that means nothing. Small values are listed after the trusted ones, never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clickagg.domain import kpis

#: The smallest base worth ranking by (the rule of thumb for a normal approximation).
MIN_BASE = 30

State = Mapping[str, float]


@dataclass(frozen=True)
class Ranked:
    """One dimension value in one period: its KPI and the state behind it."""

    value: str
    kpi: float | None
    base: float
    small: bool
    state: State


@dataclass(frozen=True)
class Move:
    """One dimension value's KPI now and in the previous period of the same length."""

    value: str
    now: Ranked
    before: Ranked
    change: float | None
    small: bool


def base_field(kpi_name: str) -> str:
    kpi = kpis.CATALOGUE[kpi_name]
    return kpi.denominator or kpi.numerator


def rank_one(value: str, state: State, kpi_name: str, min_base: float) -> Ranked:
    base = float(state.get(base_field(kpi_name), 0.0))
    return Ranked(value, kpis.CATALOGUE[kpi_name].compute(state), base, base < min_base, state)


def leaders(
    rows: Mapping[str, State],
    kpi_name: str,
    *,
    limit: int,
    min_base: float = MIN_BASE,
    descending: bool = True,
) -> list[Ranked]:
    """The values with the highest (or lowest) KPI, trusted ones first; values without a KPI
    (a ratio over nothing) are left out."""
    sign = -1.0 if descending else 1.0
    ranked = [rank_one(value, state, kpi_name, min_base) for value, state in rows.items()]
    present = [r for r in ranked if r.kpi is not None]
    present.sort(key=lambda r: (r.small, sign * (r.kpi or 0.0), r.value))
    return present[:limit]


def movers(
    now: Mapping[str, State],
    before: Mapping[str, State],
    kpi_name: str,
    *,
    limit: int,
    min_base: float = MIN_BASE,
) -> list[Move]:
    """The values whose KPI changed most (either way) against the previous period.

    A count absent from a period is 0 there; a ratio absent from either period has no
    change and is not a mover. Small in either period flags the move as small.
    """
    moves = []
    for value in now.keys() | before.keys():
        current = rank_one(value, now.get(value, {}), kpi_name, min_base)
        previous = rank_one(value, before.get(value, {}), kpi_name, min_base)
        if current.kpi is None or previous.kpi is None:
            continue
        change = current.kpi - previous.kpi
        if change == 0:
            continue
        moves.append(Move(value, current, previous, change, current.small or previous.small))
    moves.sort(key=lambda m: (m.small, -abs(m.change or 0.0), m.value))
    return moves[:limit]
