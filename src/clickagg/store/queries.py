"""The Lucene queries over cell documents, each written once.

Every reader and writer in `store` filters cells through these, so the field names and
the bucket range syntax live in one place.
"""

from __future__ import annotations

import datetime as dt

from clickagg.domain import buckets, cells, dimensions, model

EVERYTHING = "*:*"


def bucket_range(start_ms: int, end_ms: int) -> str:
    """Buckets in [start, end)."""
    return f"bucket:[{buckets.iso(start_ms)} TO {buckets.iso(end_ms)}}}"


def cuboid_is(cuboid: str) -> str:
    return f'cuboid:"{cuboid}"'


def cells_of(level: model.Level, cuboid: str, start_ms: int, end_ms: int) -> list[str]:
    """Filters for the cells of one cuboid of a level with buckets in [start, end)."""
    return [f"level:{level.name}", cuboid_is(cuboid), bucket_range(start_ms, end_ms)]


def without_missing(dimension: str) -> str:
    """Leaves out cells whose value of `dimension` is missing (`__none__`)."""
    return f'-{cells.dimension_field(dimension)}:"{dimensions.MISSING}"'


def value_is(dimension: str, value: str) -> str:
    """Cells whose value of `dimension` is exactly `value` (quoted, so any text is safe)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{cells.dimension_field(dimension)}:"{escaped}"'


def value_prefix(dimension: str, prefix: str) -> str:
    """Cells whose value of `dimension` starts with `prefix`."""
    return f"{{!prefix f={cells.dimension_field(dimension)}}}{prefix}"


def aggregate_cells() -> str:
    """Every cell document: no bots document, no progress report."""
    return f"*:* -{cuboid_is(cells.BOTS_CUBOID)} -{cuboid_is(cells.PROGRESS_CUBOID)}"


def written_before(level: model.Level, start_ms: int, end_ms: int, before: dt.datetime) -> str:
    """Cells of the level in [start, end) last written before `before` (not the progress)."""
    stamp = before.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        f"level:{level.name} AND {bucket_range(start_ms, end_ms)} "
        f"AND updated_at:[* TO {stamp}}} AND NOT cuboid:{cells.PROGRESS_CUBOID}"
    )


def level_documents(level: model.Level) -> str:
    """Every cell and bot count of the level, never a progress report."""
    return f"level:{level.name} AND NOT {cuboid_is(cells.PROGRESS_CUBOID)}"


def level_cells(level: model.Level, start_ms: int, end_ms: int) -> str:
    """Every cell and bot count of the level with a bucket in [start, end)."""
    return f"{level_documents(level)} AND {bucket_range(start_ms, end_ms)}"


def written_since(level: model.Level, start_ms: int, end_ms: int, since_ms: int) -> str:
    """Documents of the level in [start, end) written at or after `since_ms`."""
    return f"{level_cells(level, start_ms, end_ms)} AND updated_at:[{buckets.iso(since_ms)} TO *]"


def buckets_before(level: model.Level, before_ms: int) -> str:
    """Every document of the level whose bucket starts before `before_ms` (retention)."""
    return f"{level_documents(level)} AND bucket:[* TO {buckets.iso(before_ms)}}}"
