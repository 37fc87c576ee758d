"""The 26 KPIs and the additive state they are computed from, as one catalogue.

Only additive state is stored in a rollup cell: counts, sums and a HyperLogLog sketch. Such
state can be summed (or, for the sketch, merged) from 15-minute cells into hours and days, and a
cell can be recomputed and overwritten without double counting. Ratios are never stored; they
are computed from the state when a cell is read, so a rolled-up ratio is always the ratio of
the rolled-up sums, never an average of ratios.

Two moments feed the state. Event-level state is counted as events arrive. Visit-level state
that depends on how a visit ends (bounce, duration, exits, abandoned carts) is only known when
the visit closes; such fields "settle on visit close", and every ratio over them divides by
`closed_visits`, not `visits`, so an open visit never counts as a zero-second bounce.

docs/kpis.md is rendered from this module by `clickagg.domain.kpi_doc`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

StateKind = Literal["count", "sum", "sketch"]
StateLevel = Literal["event", "visit"]
KpiGroup = Literal["traffic", "engagement", "commerce", "steering"]
KpiUnit = Literal["count", "ratio", "seconds", "currency", "pages"]

GROUPS: tuple[KpiGroup, ...] = ("traffic", "engagement", "commerce", "steering")


@dataclass(frozen=True)
class StateField:
    """One stored additive field of a rollup cell.

    `level` says what it is attributed to: an event (its time bucket and its own dimension
    values) or a visit (the bucket and dimension values of the visit's first event).
    """

    name: str
    kind: StateKind
    level: StateLevel
    settles_on_visit_close: bool
    description: str


def _fields(*fields: StateField) -> Mapping[str, StateField]:
    return MappingProxyType({f.name: f for f in fields})


STATE_FIELDS: Mapping[str, StateField] = _fields(
    StateField("events", "count", "event", False, "Accepted events of any type."),
    StateField("page_views", "count", "event", False, "Events of type `page_view`."),
    StateField("product_views", "count", "event", False, "Events of type `product_view`."),
    StateField("add_to_carts", "count", "event", False, "Events of type `add_to_cart`."),
    StateField("orders", "count", "event", False, "Events of type `order`."),
    StateField("revenue", "sum", "event", False, "Sum of `revenue` over `order` events."),
    StateField("impressions", "count", "event", False, "Events of type `impression`."),
    StateField("clicks", "count", "event", False, "Events of type `click`."),
    StateField(
        "entries",
        "count",
        "event",
        False,
        "Page views that are the first page view of their visit.",
    ),
    StateField(
        "exits",
        "count",
        "event",
        True,
        "Page views that turned out to be the last page view of their visit.",
    ),
    StateField(
        "hll_visitors",
        "sketch",
        "event",
        False,
        "HyperLogLog sketch of `visitor_id`; read as its distinct-count estimate.",
    ),
    StateField("visits", "count", "visit", False, "Visits started."),
    StateField(
        "new_visits",
        "count",
        "visit",
        False,
        "Visits started by a visitor with no earlier visit.",
    ),
    StateField(
        "visits_with_order",
        "count",
        "visit",
        False,
        "Visits with at least one order, counted at the visit's first order.",
    ),
    StateField("closed_visits", "count", "visit", True, "Visits that have closed."),
    StateField(
        "bounces",
        "count",
        "visit",
        True,
        "Closed visits with exactly one page view.",
    ),
    StateField(
        "engaged_visits",
        "count",
        "visit",
        True,
        "Closed visits that lasted at least 10 s, or had at least 2 page views, or an order.",
    ),
    StateField(
        "visit_duration_seconds_sum",
        "sum",
        "visit",
        True,
        "Sum over closed visits of last event time minus first event time, in seconds.",
    ),
    StateField(
        "visit_page_views_sum",
        "sum",
        "visit",
        True,
        "Sum over closed visits of their page views.",
    ),
    StateField(
        "visits_with_cart",
        "count",
        "visit",
        True,
        "Closed visits with at least one `add_to_cart`.",
    ),
    StateField(
        "visits_with_cart_without_order",
        "count",
        "visit",
        True,
        "Closed visits with at least one `add_to_cart` and no `order`.",
    ),
)


@dataclass(frozen=True)
class Kpi:
    """One KPI: a stored field read as is, or a ratio of two stored fields.

    A ratio is None when its denominator is 0: "no visits" is not "0 % bounce rate".
    """

    name: str
    group: KpiGroup
    unit: KpiUnit
    description: str
    numerator: str
    denominator: str | None = None

    @property
    def state(self) -> tuple[str, ...]:
        """The stored fields this KPI reads."""
        if self.denominator is None:
            return (self.numerator,)
        return (self.numerator, self.denominator)

    @property
    def formula(self) -> str:
        if self.denominator is not None:
            return f"{self.numerator} / {self.denominator}"
        if STATE_FIELDS[self.numerator].kind == "sketch":
            return f"estimate({self.numerator})"
        return self.numerator

    @property
    def settles_on_visit_close(self) -> bool:
        """True when the value only becomes final once the visits it covers have closed."""
        return any(STATE_FIELDS[name].settles_on_visit_close for name in self.state)

    def compute(self, state: Mapping[str, float | int]) -> float | None:
        """The KPI from a cell's state; a field absent from `state` is 0 (nothing counted).

        A sketch field must already hold its estimate: the domain knows no sketch library.
        """
        numerator = float(state.get(self.numerator, 0))
        if self.denominator is None:
            return numerator
        denominator = float(state.get(self.denominator, 0))
        if denominator == 0:
            return None
        return numerator / denominator


def _catalogue(*kpis: Kpi) -> Mapping[str, Kpi]:
    return MappingProxyType({k.name: k for k in kpis})


CATALOGUE: Mapping[str, Kpi] = _catalogue(
    # traffic
    Kpi("page_views", "traffic", "count", "Page views.", "page_views"),
    Kpi("events", "traffic", "count", "Accepted events of any type, known or not.", "events"),
    Kpi("visits", "traffic", "count", "Visits started.", "visits"),
    Kpi(
        "unique_visitors",
        "traffic",
        "count",
        "Distinct visitors, a HyperLogLog estimate; sketches merge across cells.",
        "hll_visitors",
    ),
    Kpi(
        "new_visits",
        "traffic",
        "count",
        "Visits by a visitor with no earlier visit.",
        "new_visits",
    ),
    Kpi(
        "new_visit_share",
        "traffic",
        "ratio",
        "Share of visits that are new visits.",
        "new_visits",
        "visits",
    ),
    # engagement
    Kpi(
        "pages_per_visit",
        "engagement",
        "pages",
        "Page views per closed visit.",
        "visit_page_views_sum",
        "closed_visits",
    ),
    Kpi(
        "avg_visit_duration",
        "engagement",
        "seconds",
        "Mean duration of closed visits (first to last event).",
        "visit_duration_seconds_sum",
        "closed_visits",
    ),
    Kpi(
        "bounces",
        "engagement",
        "count",
        "Closed visits with exactly one page view.",
        "bounces",
    ),
    Kpi(
        "bounce_rate",
        "engagement",
        "ratio",
        "Share of closed visits that bounced.",
        "bounces",
        "closed_visits",
    ),
    Kpi(
        "engaged_visits",
        "engagement",
        "count",
        "Closed visits of at least 10 s, or 2 page views, or with an order.",
        "engaged_visits",
    ),
    Kpi(
        "engagement_rate",
        "engagement",
        "ratio",
        "Share of closed visits that were engaged.",
        "engaged_visits",
        "closed_visits",
    ),
    Kpi(
        "entries",
        "engagement",
        "count",
        "Visits entering on this page (first page view of a visit).",
        "entries",
    ),
    Kpi(
        "exits",
        "engagement",
        "count",
        "Visits leaving from this page (last page view of a closed visit).",
        "exits",
    ),
    Kpi(
        "exit_rate",
        "engagement",
        "ratio",
        "Share of page views that were the visit's last.",
        "exits",
        "page_views",
    ),
    # commerce
    Kpi("product_views", "commerce", "count", "Product detail views.", "product_views"),
    Kpi("add_to_carts", "commerce", "count", "Add-to-cart events.", "add_to_carts"),
    Kpi(
        "cart_abandonment_rate",
        "commerce",
        "ratio",
        "Share of closed visits with a cart that ended without an order.",
        "visits_with_cart_without_order",
        "visits_with_cart",
    ),
    Kpi("orders", "commerce", "count", "Orders.", "orders"),
    Kpi("revenue", "commerce", "currency", "Revenue of orders.", "revenue"),
    Kpi(
        "avg_order_value",
        "commerce",
        "currency",
        "Mean revenue per order.",
        "revenue",
        "orders",
    ),
    Kpi(
        "conversion_rate",
        "commerce",
        "ratio",
        "Share of visits with at least one order.",
        "visits_with_order",
        "visits",
    ),
    # steering: how campaigns, offers and contents perform
    Kpi("impressions", "steering", "count", "Offer or content impressions.", "impressions"),
    Kpi("clicks", "steering", "count", "Clicks on offers or contents.", "clicks"),
    Kpi(
        "click_through_rate",
        "steering",
        "ratio",
        "Clicks per impression.",
        "clicks",
        "impressions",
    ),
    Kpi(
        "revenue_per_visit",
        "steering",
        "currency",
        "Revenue per visit started.",
        "revenue",
        "visits",
    ),
)


def unknown(names: Iterable[str]) -> list[str]:
    """The names that are not KPIs, in the order given."""
    return [name for name in names if name not in CATALOGUE]


def required_state(kpi_names: Iterable[str]) -> tuple[str, ...]:
    """The union of stored fields the named KPIs read, in catalogue order of STATE_FIELDS."""
    names = list(kpi_names)
    missing = unknown(names)
    if missing:
        raise ValueError(f"unknown KPI(s) {', '.join(missing)}; known: {', '.join(CATALOGUE)}")
    wanted = {field for name in names for field in CATALOGUE[name].state}
    return tuple(field for field in STATE_FIELDS if field in wanted)
