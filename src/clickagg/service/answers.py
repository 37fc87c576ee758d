"""The shapes of the service's answers, as pydantic models: they make its OpenAPI document.

Times are ISO 8601 UTC. `state` holds the additive state a KPI was computed from, so every
ratio can be checked against its counts; `unique_visitors` reads the merged sketch.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Freshness(BaseModel):
    """How current the answer can be: a stalled pipeline is not a quiet shop."""

    newest_complete_bucket: str | None = Field(
        description="Start of the newest finest bucket no event can enter any more."
    )
    lag_seconds: float | None = Field(
        description="How far the stream is behind the events (None: never reported)."
    )
    reported_at: str | None = Field(description="When the stream last reported progress.")
    stalled: bool = Field(description="True when the stream stopped reporting.")


class LevelUsed(BaseModel):
    level: str
    reason: str
    start: str = Field(description="First bucket read (inclusive).")
    end: str = Field(description="End of the last bucket read (exclusive).")


class CuboidUsed(BaseModel):
    cuboid: str
    exact: bool = Field(description="False: summed over the cuboid's other dimensions.")
    reason: str


class Point(BaseModel):
    bucket: str
    kpis: dict[str, float | None]
    state: dict[str, float]


class SeriesAnswer(BaseModel):
    aggregation: str
    kpis: list[str]
    filters: dict[str, str]
    level: LevelUsed
    cuboid: CuboidUsed
    points: list[Point]
    freshness: Freshness


class Row(BaseModel):
    value: str
    kpi: float | None
    base: float = Field(description="The count the KPI rests on (a ratio's denominator).")
    small: bool = Field(description="True when `base` is below `min_base`: too small to trust.")
    state: dict[str, float]


class BreakdownAnswer(BaseModel):
    aggregation: str
    dimension: str
    kpi: str
    filters: dict[str, str]
    min_base: float
    level: LevelUsed
    cuboid: CuboidUsed
    rows: list[Row]
    freshness: Freshness


class Mover(BaseModel):
    value: str
    change: float | None
    small: bool = Field(description="True when the base is below min_base in either period.")
    now: Row
    before: Row


class SteeringAnswer(BaseModel):
    aggregation: str
    dimension: str
    kpi: str
    min_base: float
    trust_rule: str
    level: LevelUsed
    previous: LevelUsed
    cuboid: CuboidUsed
    leaders: list[Row]
    movers: list[Mover]
    freshness: Freshness


class LevelInfo(BaseModel):
    name: str
    granularity: str
    retention: str
    collection: str
    has_documents: bool


class AggregationInfo(BaseModel):
    name: str
    dimensions: list[str]
    cuboids: list[list[str]]
    kpis: list[str]
    levels: list[LevelInfo]
    freshness: Freshness


class Catalogue(BaseModel):
    aggregations: list[AggregationInfo]
    refresh_seconds: float


class Problem(BaseModel):
    """Every error answer: what is wrong and, for a bad request, which parameter."""

    detail: str
    parameter: str | None = None


class Health(BaseModel):
    solr: str
