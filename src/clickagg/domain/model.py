"""A validated Aggregation: the spec with durations parsed and defaults resolved.

Everything downstream (plan, operator, jobs) works on this, never on raw spec text.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickagg.domain import durations, spec

TOTALS = "totals"


@dataclass(frozen=True)
class Level:
    """One time level; `name` is the granularity's short form, e.g. `15m`."""

    name: str
    granularity: durations.Duration
    retention: durations.Duration | None  # None: kept forever
    collection: str

    @property
    def retention_text(self) -> str:
        return "forever" if self.retention is None else str(self.retention)


@dataclass(frozen=True)
class Dimension:
    """A declared dimension: the event field it reads and whether the event or visit owns it."""

    name: str
    field: str
    scope: str  # "event" or "visit": visit-scoped values are the visit's first event's
    max_cardinality: int


@dataclass(frozen=True)
class Cuboid:
    """A dimension combination; its name joins the dimensions with '+', or is `totals`."""

    dimensions: tuple[str, ...]

    @property
    def name(self) -> str:
        return "+".join(self.dimensions) if self.dimensions else TOTALS


@dataclass(frozen=True)
class Aggregation:
    """A valid Aggregation, ready to plan."""

    name: str
    namespace: str
    spec: spec.AggregationSpec
    levels: tuple[Level, ...]
    dimensions: tuple[Dimension, ...]
    cuboids: tuple[Cuboid, ...]
    kpis: tuple[str, ...]
    session_timeout: durations.Duration
    watermark: durations.Duration
    allowed_lateness: durations.Duration
    trigger_interval: durations.Duration

    @property
    def finest(self) -> Level:
        return self.levels[0]

    def dimension(self, name: str) -> Dimension:
        return next(d for d in self.dimensions if d.name == name)
