"""Retention per level ("aggressive forgetting") and for the raw archive, never before rollup.

A level's retention deletes every bucket that lies wholly before `now - retention`; its
*horizon* is the start of the oldest bucket kept. What retention would delete is held back
while something still needs it: a finest bucket until it is settled, any level's bucket
until every coarser level has rolled it up. The raw archive follows `rawArchive.retention`
with the same holds. `plan` says per level what goes and what is held back and why, in
lines `clickagg retention SPEC --dry-run` prints as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clickagg.domain import buckets, durations, model, rollup, sessions, settle

ARCHIVE = "raw archive"


@dataclass(frozen=True)
class Hold:
    """Buckets from `from_ms` on (None: all of them) are kept, for `reason`."""

    from_ms: int | None
    reason: str


@dataclass(frozen=True)
class Forgetting:
    """What retention does to one level or the archive at one moment."""

    name: str
    retention: str
    horizon_ms: int | None  # buckets starting before it are past retention; None: forever
    holds: tuple[Hold, ...]  # only those that keep something retention would delete
    notes: tuple[str, ...] = ()

    @property
    def delete_before_ms(self) -> int | None:
        """Buckets starting before this go now; None: nothing goes."""
        if self.horizon_ms is None or any(h.from_ms is None for h in self.holds):
            return None
        return min([self.horizon_ms, *(h.from_ms for h in self.holds if h.from_ms is not None)])

    def lines(self) -> list[str]:
        head = f"{self.name}: retention {self.retention}"
        if self.horizon_ms is None:
            out = [f"{head}: deletes nothing"]
        else:
            before = self.delete_before_ms
            goes = "deletes nothing" if before is None else f"deletes before {buckets.iso(before)}"
            out = [f"{head}, horizon {buckets.iso(self.horizon_ms)}: {goes}"]
        for hold in self.holds:
            since = "everything" if hold.from_ms is None else f"from {buckets.iso(hold.from_ms)}"
            out.append(f"  holds back {since}: {hold.reason}")
        out.extend(f"  note: {note}" for note in self.notes)
        return out


@dataclass(frozen=True)
class Plan:
    """Retention for every level, finest first, and for the archive."""

    now_ms: int
    levels: tuple[Forgetting, ...]
    archive: Forgetting

    def lines(self) -> list[str]:
        out = [f"retention at {buckets.iso(self.now_ms)}"]
        for forgetting in (*self.levels, self.archive):
            out.extend(forgetting.lines())
        return out


def horizon(
    retention: durations.Duration | None, granularity: durations.Duration, now_ms: int
) -> int | None:
    """The start of the oldest bucket retention keeps at `now_ms` (None: forever)."""
    if retention is None:
        return None
    return buckets.floor(buckets.subtract(now_ms, retention), granularity)


def plan(
    aggregation: model.Aggregation,
    now_ms: int,
    *,
    settled_end_ms: int | None,
    last_rolled_up: Mapping[str, int | None],
) -> Plan:
    """What retention deletes and holds back at `now_ms`, given the finest level's settled
    end (domain.settle; None: nothing settled) and each coarser level's last rolled-up
    bucket (absent or None: nothing rolled up)."""
    levels = aggregation.levels
    rolled = _rollup_holds(levels, last_rolled_up)
    settling = _settle_hold(settled_end_ms)
    forgettings = []
    for index, level in enumerate(levels):
        holds = [*([settling] if index == 0 else []), *rolled[index + 1 :]]
        level_horizon = horizon(level.retention, level.granularity, now_ms)
        binding = _binding(holds, level_horizon)
        forgettings.append(Forgetting(level.name, level.retention_text, level_horizon, binding))
    archive = _archive(aggregation, now_ms, [settling, *rolled[1:]])
    return Plan(now_ms, tuple(forgettings), archive)


def _archive(aggregation: model.Aggregation, now_ms: int, holds: Sequence[Hold]) -> Forgetting:
    text = aggregation.spec.raw_archive.retention
    retention = durations.parse_retention(text)
    archive_horizon = horizon(retention, aggregation.finest.granularity, now_ms)
    notes = []
    history_ms = sessions.VISITOR_MEMORY_MS + settle.DEFAULT_VISIT_REACH_MS
    if retention is not None and retention.approx_seconds * 1000 < history_ms:
        notes.append(
            f"settling reads {history_ms // 86_400_000} days of visitor history; with less "
            "kept, a recomputed visit of a visitor last seen before the horizon counts as new"
        )
    return Forgetting(
        ARCHIVE, text, archive_horizon, _binding(holds, archive_horizon), tuple(notes)
    )


def _settle_hold(settled_end_ms: int | None) -> Hold:
    if settled_end_ms is None:
        return Hold(None, "nothing is settled yet")
    return Hold(settled_end_ms, f"not settled yet (settled up to {buckets.iso(settled_end_ms)})")


def _rollup_holds(
    levels: Sequence[model.Level], last_rolled_up: Mapping[str, int | None]
) -> list[Hold]:
    """Per level (index 0: a placeholder for the finest), what its rollup has not reached."""
    holds = [Hold(None, "")]
    for level in levels[1:]:
        end = rollup.rolled_up_end(last_rolled_up.get(level.name), level)
        if end is None:
            holds.append(Hold(None, f"level {level.name} has rolled up nothing yet"))
        else:
            holds.append(
                Hold(end, f"not rolled up into {level.name} yet (rolled up to {buckets.iso(end)})")
            )
    return holds


def _binding(holds: Sequence[Hold], horizon_ms: int | None) -> tuple[Hold, ...]:
    if horizon_ms is None:
        return ()
    return tuple(h for h in holds if h.from_ms is None or h.from_ms < horizon_ms)
