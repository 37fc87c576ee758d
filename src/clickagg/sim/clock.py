"""Time: when visits start (daily and weekly rhythm), how each sender writes timestamps."""

from __future__ import annotations

import datetime as dt
import functools
import random

from clickagg.sim.draws import Weighted
from clickagg.sim.kinds import DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS
from clickagg.sim.profile import TrafficProfile


class Seasonality:
    """Draws visit start times over [start, end) following the daily and weekly curves."""

    def __init__(self, profile: TrafficProfile, start_ms: int, end_ms: int) -> None:
        offset_ms = profile.shop_utc_offset_minutes * MINUTE_MS
        slots: list[tuple[int, int]] = []
        weights: list[float] = []
        slot_start = start_ms
        while slot_start < end_ms:
            # Slots end on the shop's local hour, so each has one curve value.
            slot_end = min(
                end_ms, (slot_start + offset_ms) // HOUR_MS * HOUR_MS + HOUR_MS - offset_ms
            )
            local_hour_index = (slot_start + offset_ms) // HOUR_MS
            weekday = (local_hour_index // 24 + 3) % 7  # 1970-01-01 was a Thursday
            weight = (
                profile.daily_curve[local_hour_index % 24]
                * profile.weekly_curve[weekday]
                * (slot_end - slot_start)
            )
            slots.append((slot_start, slot_end - slot_start))
            weights.append(weight)
            slot_start = slot_end
        if not sum(weights):  # a span that falls only into zero-weight hours
            weights = [float(length) for _, length in slots]
        self._slots = slots
        self._pick = Weighted(weights)

    def draw(self, rng: random.Random) -> int:
        slot_start, length = self._slots[self._pick.pick(rng)]
        return slot_start + int(rng.random() * length)


class Clock:
    """Formats event times the way one visitor's tracker sends them."""

    __slots__ = ("_epoch", "_fraction_digits", "_offset_ms", "_suffix")

    def __init__(self, style: int, offset_minutes: int) -> None:
        self._epoch = style == EPOCH_STYLE
        if style in (UTC_STYLE, NANOS_STYLE):
            offset_minutes = 0
        self._offset_ms = offset_minutes * MINUTE_MS
        sign = "-" if offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(offset_minutes), 60)
        if style in (UTC_STYLE, NANOS_STYLE):
            self._suffix = "Z"
        elif style == COMPACT_STYLE:
            self._suffix = f"{sign}{hours:02d}{minutes:02d}"
        else:
            self._suffix = f"{sign}{hours:02d}:{minutes:02d}"
        self._fraction_digits = 9 if style == NANOS_STYLE else 3

    def ts(self, ts_ms: int) -> str | int:
        if self._epoch:
            return ts_ms
        return iso(ts_ms, self._offset_ms, self._suffix, self._fraction_digits)


# Tracker styles: how a visitor's tracker writes `ts`.
OFFSET_STYLE, UTC_STYLE, COMPACT_STYLE, NANOS_STYLE, EPOCH_STYLE = range(5)
ISO_STYLE_WEIGHTS = (0.82, 0.12, 0.04, 0.02)
_EPOCH_DATE = dt.date(1970, 1, 1)


def iso(ts_ms: int, offset_ms: int = 0, suffix: str = "Z", fraction_digits: int = 3) -> str:
    """`ts_ms` as ISO 8601 in local time at `offset_ms`, e.g. 2016-02-16T10:00:00.250+01:00.

    Hand-made rather than datetime.isoformat: it runs once per event. Digits beyond
    milliseconds are zeros.
    """
    day, in_day = divmod(ts_ms + offset_ms, DAY_MS)
    date = date_text(day)
    seconds, millis = divmod(in_day, SECOND_MS)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    fraction = f"{millis:03d}".ljust(fraction_digits, "0")
    return f"{date}T{hours:02d}:{minutes:02d}:{seconds:02d}.{fraction}{suffix}"


@functools.lru_cache(maxsize=4096)
def date_text(day: int) -> str:
    return (_EPOCH_DATE + dt.timedelta(days=day)).isoformat()
