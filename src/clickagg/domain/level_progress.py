"""Each level's batch progress as one Solr document in the level's own collection.

The rollup job writes `__level__` after a level's documents are committed: the last
rolled-up bucket (the level's rollup watermark), the input end it was computed against,
since when the finer level's writes are already rolled up (`checked_ms`, see
`changed_since`), and the retention horizon applied. The operator reads it into
`status.levels[]` and `RollupsCurrent`; a restarted rollup resumes from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clickagg.domain import buckets, cells, model

LEVEL_ID = "__level__"
LAST_BUCKET_FIELD = "last_bucket_ms_l"
INPUT_END_FIELD = "input_end_ms_l"
CHECKED_FIELD = "checked_ms_l"
HORIZON_FIELD = "horizon_ms_l"
REPORTED_FIELD = "updated_at"
#: A finer document written up to this long before a rollup began reading may not have
#: been visible to it (soft commits) or may carry a clock behind the job's; it is rolled up
#: again. Rolling up a bucket twice costs time, never correctness.
CHANGE_MARGIN_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class LevelReport:
    """What the batch layer has done to one level."""

    last_bucket_ms: int | None = None  # the newest rolled-up bucket; None: none yet
    input_end_ms: int | None = None  # the input was complete up to here at the last run
    checked_ms: int | None = None  # finer writes before this are rolled up
    horizon_ms: int | None = None  # buckets before this were deleted by retention
    reported_ms: int = 0

    def changed_since(self) -> int | None:
        """Finer documents written from here on may hold buckets to roll up again."""
        return None if self.checked_ms is None else self.checked_ms - CHANGE_MARGIN_MS


def document(level: model.Level, report: LevelReport) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": LEVEL_ID,
        "level": level.name,
        "cuboid": cells.PROGRESS_CUBOID,
        REPORTED_FIELD: buckets.iso(report.reported_ms),
    }
    for name, value in (
        (LAST_BUCKET_FIELD, report.last_bucket_ms),
        (INPUT_END_FIELD, report.input_end_ms),
        (CHECKED_FIELD, report.checked_ms),
        (HORIZON_FIELD, report.horizon_ms),
    ):
        if value is not None:
            doc[name] = value
    return doc


def report_of(doc: Mapping[str, Any]) -> LevelReport:
    def number(name: str) -> int | None:
        value = doc.get(name)
        return None if value is None else int(value)

    reported = doc.get(REPORTED_FIELD)
    return LevelReport(
        last_bucket_ms=number(LAST_BUCKET_FIELD),
        input_end_ms=number(INPUT_END_FIELD),
        checked_ms=number(CHECKED_FIELD),
        horizon_ms=number(HORIZON_FIELD),
        reported_ms=buckets.parse_iso(str(reported)) if reported else 0,
    )
