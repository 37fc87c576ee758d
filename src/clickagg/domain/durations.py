"""Durations as users write them: ISO 8601 (`PT15M`, `P4M`) or short (`15m`, `4mo`, `2y`).

Months and years are calendar units, so a duration keeps them apart from fixed seconds;
comparisons use an average month. In the short form `m` is minutes and `mo` is months,
the mix-up the seed's `1h:4m` invites, so messages spell every value out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECOND = 1
MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
AVERAGE_MONTH_SECONDS = 2_629_746  # 365.2425 days / 12

_SHORT = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|mo|y)\s*$")
_SHORT_UNITS = {"s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK}
_ISO = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
FOREVER_WORDS = frozenset({"forever", "never", "infinite"})
#: Longer durations are refused: plans and bucket arithmetic turn them into floats and epoch
#: milliseconds, and `forever` is how a retention says it has no end.
MAX_YEARS = 10_000
_MAX_SECONDS = MAX_YEARS * 12 * AVERAGE_MONTH_SECONDS
_MAX_DIGITS = 15  # any count with more digits is past MAX_YEARS even in seconds

#: Accepted spellings, as a JSON Schema pattern for the CRD.
PATTERN = r"^(\d+(s|m|h|d|w|mo|y)|P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?)$"

_NAMES = [
    (12, "year"),
    (1, "month"),
]
_FIXED_NAMES = [
    (WEEK, "week"),
    (DAY, "day"),
    (HOUR, "hour"),
    (MINUTE, "minute"),
    (SECOND, "second"),
]


@dataclass(frozen=True, order=True)
class Duration:
    """A calendar part (months) plus a fixed part (seconds); `text` is how the user wrote it."""

    months: int
    seconds: int
    text: str = ""

    @property
    def approx_seconds(self) -> float:
        """Length with months at their average length, for comparisons and estimates."""
        return self.months * AVERAGE_MONTH_SECONDS + self.seconds

    @property
    def is_calendar(self) -> bool:
        return self.months > 0

    @property
    def is_zero(self) -> bool:
        return self.months == 0 and self.seconds == 0

    def spelled_out(self) -> str:
        """`4 minutes`, `1 year 6 months`, `90 seconds` -> `1 minute 30 seconds`."""
        parts: list[str] = []
        months = self.months
        for size, name in _NAMES:
            count, months = divmod(months, size)
            if count:
                parts.append(f"{count} {name}{'s' if count != 1 else ''}")
        seconds = self.seconds
        for size, name in _FIXED_NAMES:
            count, seconds = divmod(seconds, size)
            if count:
                parts.append(f"{count} {name}{'s' if count != 1 else ''}")
        return " ".join(parts) or "0 seconds"

    def describe(self) -> str:
        """`4m (4 minutes)`: the user's spelling and what it means."""
        text = self.text or self.short()
        return f"{text} ({self.spelled_out()})"

    def short(self) -> str:
        """The canonical short form, e.g. `15m`, `4mo`, `2y`, `90s`."""
        if self.months and self.seconds:
            return f"P{self.months}M" + f"T{self.seconds}S"
        if self.months:
            return f"{self.months // 12}y" if self.months % 12 == 0 else f"{self.months}mo"
        for size, unit in ((WEEK, "w"), (DAY, "d"), (HOUR, "h"), (MINUTE, "m")):
            if self.seconds and self.seconds % size == 0:
                return f"{self.seconds // size}{unit}"
        return f"{self.seconds}s"

    def __str__(self) -> str:
        return self.text or self.short()


def parse(text: str) -> Duration:
    """Parse a short-form or ISO 8601 duration; ValueError says what is accepted."""
    raw = str(text).strip()
    short = _SHORT.match(raw)
    if short:
        count, unit = _count(short.group(1), raw), short.group(2)
        if unit == "mo":
            return _bounded(Duration(count, 0, raw))
        if unit == "y":
            return _bounded(Duration(12 * count, 0, raw))
        return _bounded(Duration(0, count * _SHORT_UNITS[unit], raw))
    iso = _ISO.match(raw.upper())
    if iso:
        parts = {k: _count(v, raw) if v else 0 for k, v in iso.groupdict().items()}
        months = 12 * parts["years"] + parts["months"]
        seconds = (
            parts["weeks"] * WEEK
            + parts["days"] * DAY
            + parts["hours"] * HOUR
            + parts["minutes"] * MINUTE
            + parts["seconds"]
        )
        return _bounded(Duration(months, seconds, raw))
    raise ValueError(
        f"'{raw}' is not a duration: use a short form like 15m, 1h, 30d, 4mo, 2y "
        "(m = minutes, mo = months) or ISO 8601 like PT15M, P30D, P4M"
    )


def _count(digits: str, raw: str) -> int:
    # int() of thousands of digits is slow, and Python refuses more than 4300.
    if len(digits) > _MAX_DIGITS:
        raise _too_long(raw)
    return int(digits)


def _bounded(duration: Duration) -> Duration:
    if duration.approx_seconds > _MAX_SECONDS:
        raise _too_long(duration.text)
    return duration


def _too_long(raw: str) -> ValueError:
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    return ValueError(
        f"'{shown}' is longer than {MAX_YEARS} years; a retention without end is `forever`"
    )


def parse_retention(text: str) -> Duration | None:
    """A retention: a duration, or `forever` (None) for data that is never deleted."""
    if str(text).strip().lower() in FOREVER_WORDS:
        return None
    return parse(text)
