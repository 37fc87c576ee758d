"""Status conditions as Kubernetes conventions want them, computed without any I/O.

A condition keeps its lastTransitionTime while its status stays the same, so `kubectl
get -o yaml` shows when something actually changed, not when the operator last looked.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import pydantic

from clickagg.domain import status

VALID = "Valid"
READY = "Ready"
STREAMING_RUNNING = "StreamingRunning"
ROLLUPS_CURRENT = "RollupsCurrent"
DEGRADED = "Degraded"

Truth = Literal["True", "False", "Unknown"]

# The status fields this version reads back: every one its model declares (by wire name).
_STATUS_KEYS = frozenset(
    field.alias or name for name, field in status.AggregationStatus.model_fields.items()
)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(raw: Mapping[str, Any] | None) -> status.AggregationStatus:
    """The status as stored; anything unreadable (e.g. written by another version) is dropped."""
    known = {key: value for key, value in (raw or {}).items() if key in _STATUS_KEYS}
    try:
        return status.AggregationStatus.model_validate(known)
    except pydantic.ValidationError:
        return status.AggregationStatus()


def find(conditions: Iterable[status.Condition], kind: str) -> status.Condition | None:
    return next((c for c in conditions if c.type == kind), None)


def is_true(conditions: Iterable[status.Condition], kind: str) -> bool:
    found = find(conditions, kind)
    return found is not None and found.status == "True"


def make(
    previous: Sequence[status.Condition],
    kind: str,
    truth: Truth,
    reason: str,
    message: str,
    generation: int | None,
    timestamp: str,
) -> status.Condition:
    """A condition that keeps the previous transition time if its status did not change."""
    before = find(previous, kind)
    unchanged = before is not None and before.status == truth and before.last_transition_time
    return status.Condition(
        type=kind,
        status=truth,
        reason=reason,
        message=message,
        last_transition_time=before.last_transition_time if unchanged and before else timestamp,
        observed_generation=generation,
    )


def merge(
    previous: Sequence[status.Condition], updates: Iterable[status.Condition]
) -> list[status.Condition]:
    """Previous conditions with `updates` replacing those of the same type, in a fixed order."""
    by_type = {c.type: c for c in previous}
    by_type.update({c.type: c for c in updates})
    order = {kind: index for index, kind in enumerate(status.CONDITION_TYPES)}
    return sorted(by_type.values(), key=lambda c: (order.get(c.type, len(order)), c.type))


def changed(before: status.Condition | None, after: status.Condition) -> bool:
    """True when a condition's status or reason differs from before (worth an event)."""
    return before is None or (before.status, before.reason) != (after.status, after.reason)


def camel_reason(state: str) -> str:
    """A Spark application state (`PENDING_RERUN`) as a condition reason (`PendingRerun`)."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", state) if w]
    return "".join(w.capitalize() for w in words) or "NotSubmitted"
