"""Level choice for the query service: the finest level that still holds a range and
answers it in few enough buckets.

A level holds a range when the range starts at or after the level's retention horizon
(domain.retention): from there on, nothing of the level has been deleted. A coarser level
answers for whole buckets, so the choice says which span it actually reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clickagg.domain import buckets, model, retention


@dataclass(frozen=True)
class LevelChoice:
    level: model.Level
    span: buckets.Span  # whole buckets of the level that cover the range asked for
    bucket_count: int
    reason: str


@dataclass(frozen=True)
class NoLevel:
    """No level can answer; `reason` says why, for the caller to show as is."""

    reason: str


def choose_level(
    levels: Sequence[model.Level],
    wanted: buckets.Span,
    *,
    now_ms: int,
    max_buckets: int,
) -> LevelChoice | NoLevel:
    """The finest level whose retention covers `wanted` and whose bucket count stays at most
    `max_buckets`, with the reason; NoLevel when none does."""
    if wanted.end_ms <= wanted.start_ms:
        return NoLevel(f"the range {wanted} is empty")
    if max_buckets < 1:
        return NoLevel(f"the bucket bound {max_buckets} admits no bucket")
    skipped: list[str] = []
    for level in levels:
        horizon = retention.horizon(level.retention, level.granularity, now_ms)
        if horizon is not None and wanted.start_ms < horizon:
            skipped.append(
                f"{level.name} keeps {level.retention_text}, back to {buckets.iso(horizon)}"
            )
            continue
        count = buckets.count(wanted, level.granularity)
        if count > max_buckets:
            skipped.append(f"{level.name} needs {count} buckets, more than {max_buckets}")
            continue
        span = wanted.aligned(level.granularity)
        widened = "" if span == wanted else f", widened to whole buckets {span}"
        why = "; ".join(skipped) + "; " if skipped else ""
        return LevelChoice(
            level,
            span,
            count,
            f"{why}{level.name}: {count} bucket{'s' if count != 1 else ''}{widened}",
        )
    return NoLevel(f"no level can answer {wanted}: " + "; ".join(skipped))
