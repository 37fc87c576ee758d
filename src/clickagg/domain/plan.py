"""The plan: which documents each level and cuboid writes, and how many.

Sizes are estimates from the dimensions' expected cardinalities (each plus one for a
missing value): a plan over `spec.limits.maxDocumentsPerDay` is refused before it writes.
They bound nothing at write time: traffic with more distinct values than declared writes
more documents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from clickagg.domain import buckets, model

_DAYS_PER_YEAR = 365.2425


@dataclass(frozen=True)
class Row:
    """One level × cuboid cell of the plan."""

    level: str
    cuboid: str
    combinations: int
    documents_per_day: float
    documents_kept: float | None  # None: kept forever, grows without bound


@dataclass(frozen=True)
class Plan:
    aggregation: str
    rows: tuple[Row, ...]

    @property
    def documents_per_day(self) -> float:
        return sum(row.documents_per_day for row in self.rows)

    @property
    def documents_kept(self) -> float | None:
        kept = [row.documents_kept for row in self.rows]
        return None if any(k is None for k in kept) else sum(k or 0 for k in kept)

    def level_totals(self) -> dict[str, tuple[float, float | None]]:
        """Per level: documents a day, and documents within its retention."""
        totals: dict[str, tuple[float, float | None]] = {}
        for row in self.rows:
            day, kept = totals.get(row.level, (0.0, 0.0))
            kept_total = (
                None if kept is None or row.documents_kept is None else (kept + row.documents_kept)
            )
            totals[row.level] = (day + row.documents_per_day, kept_total)
        return totals


def combinations(aggregation: model.Aggregation, cuboid: model.Cuboid) -> int:
    """Distinct dimension-value tuples a bucket of this cuboid can hold."""
    return math.prod(aggregation.dimension(n).max_cardinality + 1 for n in cuboid.dimensions)


def build(aggregation: model.Aggregation) -> Plan:
    rows = []
    for level in aggregation.levels:
        per_day_buckets = buckets.buckets_per_day(level.granularity)
        kept_buckets = _buckets_kept(level)
        for cuboid in aggregation.cuboids:
            combos = combinations(aggregation, cuboid)
            rows.append(
                Row(
                    level=level.name,
                    cuboid=cuboid.name,
                    combinations=combos,
                    documents_per_day=combos * per_day_buckets,
                    documents_kept=None if kept_buckets is None else combos * kept_buckets,
                )
            )
    return Plan(aggregation.name, tuple(rows))


def _buckets_kept(level: model.Level) -> float | None:
    if level.retention is None:
        return None
    return level.retention.approx_seconds / level.granularity.approx_seconds


def yearly_growth(plan: Plan) -> float:
    """Documents a year for levels kept forever (the part that grows without bound)."""
    return sum(r.documents_per_day for r in plan.rows if r.documents_kept is None) * (
        _DAYS_PER_YEAR
    )
