"""The Aggregation status the operator writes; its schema goes into the CRD too."""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from clickagg.domain import spec

CONDITION_TYPES = ("Valid", "Ready", "StreamingRunning", "RollupsCurrent", "Degraded")


class Condition(spec.WireModel):
    """One condition, as Kubernetes conventions define it."""

    type: str = pydantic.Field(
        description="Valid, Ready, StreamingRunning, RollupsCurrent or Degraded."
    )
    status: Literal["True", "False", "Unknown"] = pydantic.Field(
        description="True, False or Unknown."
    )
    reason: str = pydantic.Field(default="", description="A CamelCase reason for the status.")
    message: str = pydantic.Field(default="", description="What happened, for a person.")
    last_transition_time: str | None = pydantic.Field(
        default=None, description="When the status last changed (RFC 3339)."
    )
    observed_generation: int | None = pydantic.Field(
        default=None, description="The spec generation the condition was computed for."
    )


class LevelStatus(spec.WireModel):
    """Progress of one time level."""

    name: str = pydantic.Field(description="The level's granularity, e.g. 15m.")
    collection: str = pydantic.Field(default="", description="Solr collection of the level.")
    last_rolled_up_bucket: str | None = pydantic.Field(
        default=None,
        description="Start of the newest complete bucket (RFC 3339): at the finest level "
        "the newest one the stream's watermark has passed, at a coarser level the newest "
        "one rolled up.",
    )
    retention_horizon: str | None = pydantic.Field(
        default=None, description="Buckets before this time have been deleted (RFC 3339)."
    )


class ChildStatus(spec.WireModel):
    """A Spark child the operator applied and announced (a ChildCreated or ChildUpdated event)."""

    kind: str = pydantic.Field(description="SparkApplication or ScheduledSparkApplication.")
    name: str = pydantic.Field(description="The child's name.")
    generation: int | None = pydantic.Field(
        default=None, description="The child's metadata.generation when it was announced."
    )


class AggregationStatus(spec.WireModel):
    """What the operator observed and did."""

    observed_generation: int | None = pydantic.Field(
        default=None, description="The spec generation the status describes."
    )
    conditions: list[Condition] = pydantic.Field(
        default_factory=list,
        description="Valid, Ready, StreamingRunning, RollupsCurrent, Degraded.",
    )
    levels: list[LevelStatus] = pydantic.Field(
        default_factory=list, description="Per level: collection, last rolled-up bucket, horizon."
    )
    level_names: str | None = pydantic.Field(
        default=None,
        description="The levels, finest first, e.g. 15m,1h,1d (one string: a printer column "
        "shows only the first match of a list).",
    )
    children: list[ChildStatus] = pydantic.Field(
        default_factory=list,
        description="The Spark children announced so far: a pass cut short (the operator "
        "killed) loses its events and this record with them, so the next pass announces what "
        "it finds unrecorded.",
    )
    lag: str | None = pydantic.Field(
        default=None,
        description="How old the newest applied event was when the stream's last micro-batch "
        "ended, e.g. 12s (0s: caught up); a stream that stops reporting for a minute adds "
        "the time since its last report.",
    )

    input_rows_per_second: float | None = pydantic.Field(
        default=None,
        description="Rows per second arriving at the stream's aggregate query, over its last "
        "micro-batches.",
    )
    processed_rows_per_second: float | None = pydantic.Field(
        default=None,
        description="Rows per second the aggregate query processed while its micro-batches ran.",
    )
    executors: int | None = pydantic.Field(
        default=None,
        description="Executors the stream runs with: spec.spark.executor.instances, or the "
        "count autoscaling chose (spec.spark.autoscale).",
    )
    advised_executors: int | None = pydantic.Field(
        default=None,
        description="Executors that would process the measured input with 25% to spare, "
        "from the measured rate per executor.",
    )

    def patch(self) -> dict[str, Any]:
        """The status as a JSON merge patch (Any: JSON values). Unknown values are left
        out, so the patch keeps what was there."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
