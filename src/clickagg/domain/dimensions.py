"""The 10 standard dimensions a rollup cell can be keyed by, and the values that stand in for
"rare" and "absent".

A dimension is either event-scoped (each event carries its own value) or visit-scoped (every
event of a visit takes the value of the visit's first event, so a visit never splits across
channels or devices and visit counts add up). `MISSING` is the value of an event that has none;
`OTHER` is reserved for folding rare values (events may not use either).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Scope = Literal["event", "visit"]

#: Rare values fold into this one when a dimension's cardinality is capped.
OTHER = "__other__"
#: The value of an event that has no value for a dimension.
MISSING = "__none__"
#: Values the pipeline writes itself; an event's own value may not take them.
RESERVED_VALUES = frozenset({OTHER, MISSING})

#: visitor_type values.
NEW_VISITOR = "new"
RETURNING_VISITOR = "returning"


@dataclass(frozen=True)
class Dimension:
    """One dimension: where its value comes from and whether the event or its visit owns it.

    `field` is the event field read by default; None when the value is derived by the
    pipeline rather than read (visitor_type).
    """

    name: str
    field: str | None
    scope: Scope
    description: str


def _dimensions(*dimensions: Dimension) -> Mapping[str, Dimension]:
    return MappingProxyType({d.name: d for d in dimensions})


STANDARD: Mapping[str, Dimension] = _dimensions(
    Dimension(
        "channel",
        "channel",
        "visit",
        "Marketing channel; derived from utm parameters, click ids and referrer when absent.",
    ),
    Dimension(
        "campaign",
        "campaign",
        "visit",
        "Campaign; `utm_campaign` of the url when absent.",
    ),
    Dimension("offer", "offer", "event", "Offer shown, clicked or bought."),
    Dimension("content", "page", "event", "Page (content) the event happened on."),
    Dimension("landing_page", "page", "visit", "Page of the visit's first event."),
    Dimension(
        "product_category",
        "product_category",
        "event",
        "Category of the product concerned.",
    ),
    Dimension(
        "device_class",
        "device_class",
        "visit",
        "desktop, mobile, tablet, bot or other; derived from user_agent when absent.",
    ),
    Dimension(
        "browser_family",
        "browser_family",
        "visit",
        "Browser family (chrome, safari, firefox, ...); derived from user_agent when absent.",
    ),
    Dimension("country", "country", "visit", "Country of the visitor, as sent."),
    Dimension(
        "visitor_type",
        None,
        "visit",
        f"`{NEW_VISITOR}` when the visitor had no earlier visit, else `{RETURNING_VISITOR}`.",
    ),
)


def unknown(names: Iterable[str]) -> list[str]:
    """The names that are not standard dimensions, in the order given."""
    return [name for name in names if name not in STANDARD]


def value_or_missing(value: str | None) -> str:
    """The stored value of a dimension: MISSING for an absent or blank value."""
    if value is None or not value.strip():
        return MISSING
    return value
