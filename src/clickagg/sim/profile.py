"""The knobs: how the shop's traffic looks (`TrafficProfile`), how it is damaged (`Faults`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from clickagg.domain import enrich
from clickagg.sim.catalogue import COUNTRIES
from clickagg.sim.kinds import (
    INVALID_UTF8,
    LATE,
    MALFORMED_JSON,
    MINUTE_MS,
    MISSING_FIELD,
    OUT_OF_ORDER,
    OVERSIZED,
    SECOND_MS,
    TS_FAR_FUTURE,
    TS_FAR_PAST,
    WRONG_TYPE,
)

# Local hour 0..23 of the shop: quiet nights, a lunch bump and an evening peak.
DAILY = (
    0.30,
    0.18,
    0.11,
    0.08,
    0.08,
    0.12,
    0.25,
    0.45,
    0.70,
    0.85,
    0.95,
    1.00,
    1.05,
    1.00,
    0.95,
    0.95,
    1.00,
    1.08,
    1.20,
    1.40,
    1.55,
    1.45,
    1.05,
    0.60,
)
# Monday..Sunday: weekdays alike, Saturday quiet, Sunday evening shopping.
WEEKLY = (1.00, 0.98, 0.97, 0.95, 0.90, 0.78, 1.08)


@dataclass(frozen=True)
class TrafficProfile:
    """How the shop's traffic looks; the defaults are a mid-size European web shop."""

    #: Distinct human visitors over the whole generated span.
    visitors: int = 20_000
    #: Average visits per visitor within the span (at least 1).
    visits_per_visitor: float = 1.8
    #: Share of visitors who come back within the span; the rest visit once.
    returning_share: float = 0.35
    #: Share of all visits that are crawlers' (each crawl is one visit of many pages).
    bot_share: float = 0.04
    bot_pages_per_visit: float = 25.0

    # Catalogue sizes.
    campaigns: int = 60
    #: How many of enrich.CHANNELS occur, most common first.
    channels: int = len(enrich.CHANNELS)
    offers: int = 40
    pages: int = 400
    product_categories: int = 16
    countries: int = 25

    # Zipf exponents: the k-th most popular value has weight 1 / k**s.
    campaign_zipf: float = 1.1
    channel_zipf: float = 0.9
    offer_zipf: float = 1.0
    page_zipf: float = 1.0
    country_zipf: float = 1.6

    # The visit and its funnel.
    bounce_rate: float = 0.40
    #: Mean page views of a visit that does not bounce.
    pages_per_visit: float = 5.0
    #: Share of page views after the landing that are product pages (with a product_view).
    product_page_share: float = 0.45
    #: Chance a product view puts the product into the cart.
    add_to_cart_rate: float = 0.09
    #: Chance a visit with a cart orders; the rest abandon the cart.
    order_rate: float = 0.35
    #: Chance a page view shows offers, and how many it shows on average.
    impression_rate: float = 0.5
    impressions_per_page: float = 2.0
    click_through_rate: float = 0.025
    #: Chance a page view is followed by an event of a type the KPIs do not know.
    unknown_type_rate: float = 0.01
    revenue_median: float = 48.0
    revenue_sigma: float = 0.75

    # Time.
    #: Gaps between page views are lognormal with this median and sigma.
    gap_median_seconds: float = 25.0
    gap_sigma: float = 1.0
    #: Share of gaps longer than the session timeout: the visitor left the tab open.
    long_gap_share: float = 0.02
    session_timeout_seconds: int = 1800
    #: The shop's local time, which the daily and weekly curves follow.
    shop_utc_offset_minutes: int = 60
    daily_curve: tuple[float, ...] = DAILY
    weekly_curve: tuple[float, ...] = WEEKLY
    #: Share of visitors whose tracker sends `ts` as epoch milliseconds instead of ISO 8601.
    epoch_ts_share: float = 0.15

    def __post_init__(self) -> None:
        problems = [
            *(
                f"{f.name} must be at least 1"
                for f in fields(self)
                if f.name in _COUNT_KNOBS and getattr(self, f.name) < 1
            ),
            *(
                f"{f.name} must be between 0 and 1"
                for f in fields(self)
                if f.name in _SHARE_KNOBS and not 0 <= getattr(self, f.name) <= 1
            ),
            *(
                f"{f.name} must be greater than 0"
                for f in fields(self)
                if f.name in _POSITIVE_KNOBS and not getattr(self, f.name) > 0
            ),
        ]
        if self.visits_per_visitor < 1:
            problems.append("visits_per_visitor must be at least 1")
        if self.channels > len(enrich.CHANNELS):
            problems.append(f"channels must be at most {len(enrich.CHANNELS)}")
        if self.countries > len(COUNTRIES):
            problems.append(f"countries must be at most {len(COUNTRIES)}")
        if self.pages < self.product_categories + 3:
            problems.append("pages must leave room for a home, category and product pages")
        if len(self.daily_curve) != 24 or min(self.daily_curve) < 0 or not sum(self.daily_curve):
            problems.append("daily_curve must be 24 weights >= 0, not all 0")
        if len(self.weekly_curve) != 7 or min(self.weekly_curve) < 0 or not sum(self.weekly_curve):
            problems.append("weekly_curve must be 7 weights >= 0, not all 0")
        if problems:
            raise ValueError("invalid traffic profile: " + "; ".join(problems))

    @property
    def session_timeout_ms(self) -> int:
        return self.session_timeout_seconds * SECOND_MS


_COUNT_KNOBS = frozenset(
    {
        "visitors",
        "campaigns",
        "channels",
        "offers",
        "pages",
        "product_categories",
        "countries",
        "session_timeout_seconds",
    }
)
_SHARE_KNOBS = frozenset(
    {
        "returning_share",
        "bot_share",
        "bounce_rate",
        "product_page_share",
        "add_to_cart_rate",
        "order_rate",
        "impression_rate",
        "click_through_rate",
        "unknown_type_rate",
        "long_gap_share",
        "epoch_ts_share",
    }
)
_POSITIVE_KNOBS = frozenset(
    {
        "bot_pages_per_visit",
        "campaign_zipf",
        "channel_zipf",
        "offer_zipf",
        "page_zipf",
        "country_zipf",
        "pages_per_visit",
        "impressions_per_page",
        "revenue_median",
        "gap_median_seconds",
        "gap_sigma",
    }
)


@dataclass(frozen=True)
class Faults:
    """How often senders and the network get things wrong; each rate is per event.

    `late`, `out_of_order` and the line faults are exclusive (an event has at most one);
    `duplicate` resends an accepted line once more, up to `duplicate_max_delay_ms` later.
    A late line arrives between a quarter of `late_max_ms` and `late_max_ms` after its event
    time, an out-of-order one up to `out_of_order_max_ms` after it: keep `max_delay_ms` below
    the pipeline's watermark delay and no accepted line is dropped as too late.
    """

    duplicate: float = 0.01
    late: float = 0.02
    out_of_order: float = 0.05
    malformed_json: float = 0.001
    wrong_type: float = 0.0005
    missing_field: float = 0.0005
    invalid_utf8: float = 0.0002
    oversized: float = 0.0001
    ts_far_past: float = 0.0002
    ts_far_future: float = 0.0002
    late_max_ms: int = 2 * MINUTE_MS
    out_of_order_max_ms: int = 5 * SECOND_MS
    duplicate_max_delay_ms: int = 30 * SECOND_MS

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be between 0 and 1"
            for name, rate in (("duplicate", self.duplicate), *self.exclusive_rates().items())
            if not 0 <= rate <= 1
        ]
        if sum(self.exclusive_rates().values()) > 1:
            problems.append("late, out_of_order and the line faults add up to more than 1")
        for name in ("late_max_ms", "out_of_order_max_ms", "duplicate_max_delay_ms"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if problems:
            raise ValueError("invalid faults: " + "; ".join(problems))

    @classmethod
    def none(cls) -> Faults:
        """Clean traffic: every line valid, on time, once."""
        return cls(
            duplicate=0,
            late=0,
            out_of_order=0,
            malformed_json=0,
            wrong_type=0,
            missing_field=0,
            invalid_utf8=0,
            oversized=0,
            ts_far_past=0,
            ts_far_future=0,
        )

    def exclusive_rates(self) -> dict[str, float]:
        """The rate of each exclusive kind, by kind name."""
        return {kind: getattr(self, kind) for kind in (*LINE_FAULTS, LATE, OUT_OF_ORDER)}

    @property
    def max_delay_ms(self) -> int:
        """The most an accepted line can arrive after its event time."""
        return max(self.late_max_ms, self.out_of_order_max_ms) + self.duplicate_max_delay_ms


LINE_FAULTS = (
    MALFORMED_JSON,
    WRONG_TYPE,
    MISSING_FIELD,
    INVALID_UTF8,
    OVERSIZED,
    TS_FAR_PAST,
    TS_FAR_FUTURE,
)
