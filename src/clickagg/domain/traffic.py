"""A realistic, deterministic clickstream: visitors, visits, funnels, bots and broken lines.

Tests, benchmarks and demos need traffic that looks like a real shop's (skewed campaigns and
pages, a day and week rhythm, visitors who come back, abandoned carts, crawlers, senders that
get the contract wrong), and they need exactly the same traffic again for the same seed, so an
oracle can recompute what the pipeline must show. This module only builds the lines (bytes) and
says when each is sent and what it is; writing them to files or Kafka is the landing adapter's
job.

Every non-bot event states its channel, device class, browser family and country itself, so an
oracle never has to repeat the derivation to agree with the pipeline; the urls, referrers and
user agents still say the same thing, so derivation would agree too.

Two random streams are used: one for the traffic and one for the faults, so switching faults
off leaves the same visits and event ids, only without the damage.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import heapq
import json
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType

from clickagg.domain import enrich, events

# ---------------------------------------------------------------- what comes out

VALID = "valid"
DUPLICATE = "duplicate"
LATE = "late"
OUT_OF_ORDER = "out_of_order"
MALFORMED_JSON = "malformed_json"
WRONG_TYPE = "wrong_type"
MISSING_FIELD = "missing_field"
INVALID_UTF8 = "invalid_utf8"
OVERSIZED = "oversized"
TS_FAR_PAST = "ts_far_past"
TS_FAR_FUTURE = "ts_far_future"

#: Kinds of line the contract accepts (a duplicate is accepted, then dropped by event_id).
ACCEPTED_KINDS = frozenset({VALID, DUPLICATE, LATE, OUT_OF_ORDER})
#: Kinds the contract rejects, each with a text its dead-letter reason always contains.
#: The ts kinds assume the default TimeWindow or one with limits in days.
REJECTED_REASONS: Mapping[str, str] = MappingProxyType({
    MALFORMED_JSON: "malformed JSON",
    WRONG_TYPE: "': expected a ",
    MISSING_FIELD: "required but missing",
    INVALID_UTF8: "not valid UTF-8",
    OVERSIZED: f"more than the limit of {events.MAX_LINE_BYTES} bytes",
    TS_FAR_PAST: "days before now",
    TS_FAR_FUTURE: "after now",
})

_SECOND_MS = 1000
_MINUTE_MS = 60 * _SECOND_MS
_HOUR_MS = 60 * _MINUTE_MS
_DAY_MS = 24 * _HOUR_MS
#: Far-past and far-future times lie at least this far from the real event time, so any
#: pipeline clock within a year of the traffic rejects them.
FAR_PAST_MIN_MS = 400 * _DAY_MS
FAR_FUTURE_MIN_MS = 365 * _DAY_MS


@dataclass(frozen=True, slots=True)
class Emitted:
    """One line as it is sent.

    `line` is the exact bytes (one JSON object, no newline). `arrival_ms` is when it is sent:
    the event time, plus the delay of a late, out-of-order or resent line. `visitor_id` is the
    one a JSON parser finds in the line (None when it finds none), the natural Kafka key.
    `bot` is True for lines of a crawler's visit.
    """

    line: bytes
    arrival_ms: int
    kind: str
    visitor_id: str | None = None
    bot: bool = False


# ---------------------------------------------------------------- knobs


# Local hour 0..23 of the shop: quiet nights, a lunch bump and an evening peak.
_DAILY = (
    0.30, 0.18, 0.11, 0.08, 0.08, 0.12, 0.25, 0.45, 0.70, 0.85, 0.95, 1.00,
    1.05, 1.00, 0.95, 0.95, 1.00, 1.08, 1.20, 1.40, 1.55, 1.45, 1.05, 0.60,
)
# Monday..Sunday: weekdays alike, Saturday quiet, Sunday evening shopping.
_WEEKLY = (1.00, 0.98, 0.97, 0.95, 0.90, 0.78, 1.08)


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
    daily_curve: tuple[float, ...] = _DAILY
    weekly_curve: tuple[float, ...] = _WEEKLY
    #: Share of visitors whose tracker sends `ts` as epoch milliseconds instead of ISO 8601.
    epoch_ts_share: float = 0.15

    def __post_init__(self) -> None:
        problems = [
            *(f"{f.name} must be at least 1" for f in fields(self)
              if f.name in _COUNT_KNOBS and getattr(self, f.name) < 1),
            *(f"{f.name} must be between 0 and 1" for f in fields(self)
              if f.name in _SHARE_KNOBS and not 0 <= getattr(self, f.name) <= 1),
            *(f"{f.name} must be greater than 0" for f in fields(self)
              if f.name in _POSITIVE_KNOBS and not getattr(self, f.name) > 0),
        ]
        if self.visits_per_visitor < 1:
            problems.append("visits_per_visitor must be at least 1")
        if self.channels > len(enrich.CHANNELS):
            problems.append(f"channels must be at most {len(enrich.CHANNELS)}")
        if self.countries > len(_COUNTRIES):
            problems.append(f"countries must be at most {len(_COUNTRIES)}")
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
        return self.session_timeout_seconds * _SECOND_MS


_COUNT_KNOBS = frozenset({
    "visitors", "campaigns", "channels", "offers", "pages", "product_categories", "countries",
    "session_timeout_seconds",
})
_SHARE_KNOBS = frozenset({
    "returning_share", "bot_share", "bounce_rate", "product_page_share", "add_to_cart_rate",
    "order_rate", "impression_rate", "click_through_rate", "unknown_type_rate",
    "long_gap_share", "epoch_ts_share",
})
_POSITIVE_KNOBS = frozenset({
    "bot_pages_per_visit", "campaign_zipf", "channel_zipf", "offer_zipf", "page_zipf",
    "country_zipf", "pages_per_visit", "impressions_per_page", "revenue_median",
    "gap_median_seconds", "gap_sigma",
})


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
    late_max_ms: int = 2 * _MINUTE_MS
    out_of_order_max_ms: int = 5 * _SECOND_MS
    duplicate_max_delay_ms: int = 30 * _SECOND_MS

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
            duplicate=0, late=0, out_of_order=0, malformed_json=0, wrong_type=0,
            missing_field=0, invalid_utf8=0, oversized=0, ts_far_past=0, ts_far_future=0,
        )

    def exclusive_rates(self) -> dict[str, float]:
        """The rate of each exclusive kind, by kind name."""
        return {kind: getattr(self, kind) for kind in (*_LINE_FAULTS, LATE, OUT_OF_ORDER)}

    @property
    def max_delay_ms(self) -> int:
        """The most an accepted line can arrive after its event time."""
        return max(self.late_max_ms, self.out_of_order_max_ms) + self.duplicate_max_delay_ms


_LINE_FAULTS = (
    MALFORMED_JSON, WRONG_TYPE, MISSING_FIELD, INVALID_UTF8, OVERSIZED, TS_FAR_PAST,
    TS_FAR_FUTURE,
)


# ---------------------------------------------------------------- catalogues

SHOP = "https://www.shop.example"

# (user agent, device class, browser family, weight): real headers, classified the way
# enrich.classify_user_agent classifies them (a unit test checks).
BROWSERS: tuple[tuple[str, str, str, float], ...] = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", enrich.DESKTOP, "chrome", 0.22),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", enrich.MOBILE, "safari",
     0.20),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36", enrich.MOBILE, "chrome", 0.18),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0", enrich.DESKTOP, "edge", 0.07),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.4 Safari/605.1.15", enrich.DESKTOP, "safari", 0.07),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", enrich.DESKTOP, "chrome", 0.06),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
     enrich.DESKTOP, "firefox", 0.05),
    ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 "
     "(KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
     enrich.MOBILE, "samsung_internet", 0.04),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", enrich.TABLET, "safari",
     0.04),
    ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", enrich.TABLET, "chrome", 0.02),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", enrich.MOBILE,
     "chrome", 0.02),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
     enrich.DESKTOP, "firefox", 0.01),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0", enrich.DESKTOP, "opera", 0.01),
    ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", enrich.MOBILE,
     "firefox", 0.01),
)

# (user agent, weight): real crawler headers that enrich.is_bot recognises (a test checks).
BOTS: tuple[tuple[str, float], ...] = (
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.22),
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 "
     "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.15),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 0.12),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 0.10),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", 0.08),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", 0.05),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", 0.03),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 "
     "(Applebot/0.1; +http://www.apple.com/go/applebot)", 0.05),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", 0.05),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; "
     "+https://openai.com/gptbot)", 0.05),
    ("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", 0.04),
    ("curl/8.4.0", 0.03),
    ("python-requests/2.31.0", 0.03),
)

# (ISO 3166-1 alpha-2, standard-time UTC offset in minutes), by importance to the shop.
_COUNTRIES: tuple[tuple[str, int], ...] = (
    ("DE", 60), ("AT", 60), ("CH", 60), ("NL", 60), ("FR", 60), ("BE", 60), ("PL", 60),
    ("IT", 60), ("ES", 60), ("GB", 0), ("DK", 60), ("SE", 60), ("CZ", 60), ("LU", 60),
    ("US", -300), ("IE", 0), ("NO", 60), ("FI", 120), ("PT", 0), ("HU", 60), ("SK", 60),
    ("SI", 60), ("HR", 60), ("RO", 120), ("GR", 120), ("BG", 120), ("LT", 120), ("LV", 120),
    ("EE", 120), ("CA", -300), ("AU", 600), ("JP", 540), ("TR", 180), ("IN", 330),
    ("BR", -180), ("MX", -360), ("CN", 480), ("ZA", 120), ("IL", 120), ("AE", 240),
)
_BOT_COUNTRY = "US"

_CATEGORIES = (
    "kettles", "coffee-machines", "toasters", "blenders", "cookware", "knives", "espresso",
    "grinders", "mixers", "juicers", "tableware", "storage", "baking", "grills",
    "vacuum-cleaners", "irons", "fans", "heaters", "water-filters", "scales",
    "kitchen-textiles", "cutlery", "spare-parts", "gifts",
)
_BRANDS = ("aurora", "nordhaus", "vesta", "kobalt", "lumen", "ferro", "solis", "arktis")
_MODELS = ("classic", "pro", "mini", "max", "eco", "smart", "steel", "compact", "deluxe")
_CONTENT_PAGES = (
    "/blog/descaling-guide", "/blog/perfect-espresso", "/blog/knife-care", "/help/shipping",
    "/help/returns", "/help/payment", "/about", "/contact", "/stores", "/gift-cards",
    "/blog/brunch-ideas", "/blog/small-kitchens", "/sale", "/new", "/brands",
)
_CAMPAIGN_THEMES = (
    "brand", "spring-sale", "summer-sale", "black-friday", "christmas", "back-to-school",
    "retargeting", "new-arrivals", "clearance", "frühling",  # non-ASCII on purpose: urls encode it
)
_OFFER_KINDS = ("10-off", "free-shipping", "bundle", "gift", "2-for-1", "flash-sale")

# The channel order the Zipf skew follows: organic search leads, other_campaign trails.
_CHANNEL_ORDER = (
    enrich.ORGANIC_SEARCH, enrich.DIRECT, enrich.PAID_SEARCH, enrich.SOCIAL, enrich.EMAIL,
    enrich.REFERRAL, enrich.DISPLAY, enrich.AFFILIATE, enrich.OTHER_CAMPAIGN,
)
_CAMPAIGN_CHANNELS = (
    enrich.PAID_SEARCH, enrich.SOCIAL, enrich.EMAIL, enrich.DISPLAY, enrich.AFFILIATE,
    enrich.OTHER_CAMPAIGN,
)
# Half the social visits come from paid posts with utm tags, half from shared links.
_PAID_SOCIAL_SHARE = 0.5
_SEARCH_REFERRERS = (
    "https://www.google.com/", "https://www.google.de/", "https://www.bing.com/",
    "https://duckduckgo.com/", "https://www.ecosia.org/",
)
_SOCIAL_REFERRERS = (
    "https://t.co/", "https://l.facebook.com/", "https://www.instagram.com/",
    "https://www.pinterest.de/", "https://www.reddit.com/r/Cooking/",
)
_SITE_REFERRERS = (
    "https://www.kettle-reviews.example/best-kettles", "https://forum.kitchen-talk.example/t/81",
    "https://www.deal-finder.example/kitchen", "https://blog.coffee-nerds.example/gear",
)
# (utm_source, utm_medium, click id parameter or "") per campaign channel.
_CAMPAIGN_TAGS: Mapping[str, tuple[str, str, str]] = MappingProxyType({
    enrich.PAID_SEARCH: ("google", "cpc", "gclid"),
    enrich.SOCIAL: ("facebook", "paid_social", "fbclid"),
    enrich.EMAIL: ("newsletter", "email", ""),
    enrich.DISPLAY: ("criteo", "display", ""),
    enrich.AFFILIATE: ("partner-network", "affiliate", ""),
    enrich.OTHER_CAMPAIGN: ("podcast", "audio", ""),
})
_CAMPAIGN_REFERRERS: Mapping[str, str] = MappingProxyType({
    enrich.PAID_SEARCH: "https://www.google.com/",
    enrich.SOCIAL: "https://l.facebook.com/",
    enrich.EMAIL: "",
    enrich.DISPLAY: "https://www.news-portal.example/",
    enrich.AFFILIATE: "https://www.cashback-club.example/",
    enrich.OTHER_CAMPAIGN: "",
})
UNKNOWN_TYPE = "scroll"
_CART_PATH = "/cart"
_CHECKOUT_PATH = "/checkout"
_THANK_YOU_PATH = "/checkout/thank-you"


@dataclass(frozen=True)
class _Page:
    path: str
    url: str
    category: str | None
    #: A product detail page: viewing it is a product_view.
    is_product: bool = False


@dataclass(frozen=True)
class _Campaign:
    name: str
    channel: str
    landing: _Page
    #: The name as a query parameter value (percent-encoded UTF-8).
    quoted: str


@dataclass(frozen=True)
class _Offer:
    name: str
    landing: _Page


class _Weighted:
    """Draws indexes by weight: bisect on the cumulative weights, one random() per draw."""

    __slots__ = ("_cumulative", "_last", "_total")

    def __init__(self, weights: Sequence[float]) -> None:
        running = 0.0
        cumulative = []
        for weight in weights:
            running += weight
            cumulative.append(running)
        self._cumulative = cumulative
        self._total = running
        self._last = len(cumulative) - 1

    def pick(self, rng: random.Random) -> int:
        index = bisect.bisect_right(self._cumulative, rng.random() * self._total)
        return min(index, self._last)  # random() * total may round up to total


def _zipf(size: int, exponent: float) -> _Weighted:
    return _Weighted([1.0 / rank**exponent for rank in range(1, size + 1)])


@dataclass(frozen=True)
class _Catalogue:
    """Pages, campaigns, offers, channels and countries with their popularity.

    Built from the profile alone (names come from a fixed random stream), so runs with
    different seeds describe the same shop.
    """

    home: _Page
    products: tuple[_Page, ...]
    others: tuple[_Page, ...]
    cart: _Page
    checkout: _Page
    thank_you: _Page
    product_pick: _Weighted
    other_pick: _Weighted
    any_pick: _Weighted
    channels: tuple[str, ...]
    channel_pick: _Weighted
    campaigns_by_channel: Mapping[str, tuple[tuple[_Campaign, ...], _Weighted]]
    offers: tuple[_Offer, ...]
    offer_pick: _Weighted
    countries: tuple[tuple[str, int], ...]
    country_pick: _Weighted
    browser_pick: _Weighted
    bot_pick: _Weighted

    def any_page(self, rng: random.Random) -> _Page:
        index = self.any_pick.pick(rng)
        if index < len(self.products):
            return self.products[index]
        return self.others[index - len(self.products)]


def _page(path: str, category: str | None = None, *, is_product: bool = False) -> _Page:
    return _Page(path=path, url=SHOP + path, category=category, is_product=is_product)


def _catalogue(profile: TrafficProfile) -> _Catalogue:
    names = random.Random(20160216)  # fixed: the shop's names do not depend on the seed
    categories = [
        _CATEGORIES[i] if i < len(_CATEGORIES) else f"category-{i + 1}"
        for i in range(profile.product_categories)
    ]
    category_pages = [_page(f"/c/{c}", c) for c in categories]
    # About a tenth of what is not home or a category is content; the rest are products.
    rest = profile.pages - 1 - len(category_pages)
    content = [_page(path) for path in _CONTENT_PAGES[:min(len(_CONTENT_PAGES), rest // 10)]]
    product_count = rest - len(content)
    products = []
    for n in range(product_count):
        # Earlier categories get more products: a Zipf-ish assortment.
        category = categories[min(int(names.paretovariate(1.2)) - 1, len(categories) - 1)]
        brand, model = names.choice(_BRANDS), names.choice(_MODELS)
        products.append(
            _page(f"/p/{category}/{brand}-{model}-{n + 1}", category, is_product=True)
        )
    names.shuffle(products)  # popularity rank is independent of the product number
    others = [_page("/"), *category_pages, *content]
    home = others[0]
    product_pick = _zipf(len(products), profile.page_zipf)
    other_pick = _zipf(len(others), profile.page_zipf)
    # Landing pages of organic traffic: products and other pages interleaved by rank.
    any_weights = [
        *(1.0 / (2 * rank) ** profile.page_zipf for rank in range(1, len(products) + 1)),
        *(1.0 / (2 * rank - 1) ** profile.page_zipf for rank in range(1, len(others) + 1)),
    ]

    channels = _CHANNEL_ORDER[:profile.channels]
    campaign_channels = [c for c in _CAMPAIGN_CHANNELS if c in channels]
    by_channel: dict[str, list[tuple[_Campaign, float]]] = {c: [] for c in campaign_channels}
    # Every theme for every category, in a fixed shuffled order: the popular campaigns mix
    # themes and categories.
    pairs = [(t, c) for t in _CAMPAIGN_THEMES for c in range(len(categories))]
    names.shuffle(pairs)
    # Except that brand search leads, as in most shops.
    first_brand = next(i for i, (theme, _) in enumerate(pairs) if theme == "brand")
    pairs[0], pairs[first_brand] = pairs[first_brand], pairs[0]
    if campaign_channels:
        for rank in range(1, profile.campaigns + 1):
            theme, category_index = pairs[(rank - 1) % len(pairs)]
            name = f"{theme}-{categories[category_index]}"
            if rank > len(pairs):
                name += f"-{rank}"
            channel = campaign_channels[(rank - 1) % len(campaign_channels)]
            landing = home if theme == "brand" else category_pages[category_index]
            campaign = _Campaign(name, channel, landing, _quote(name))
            by_channel[channel].append((campaign, 1.0 / rank**profile.campaign_zipf))
    campaigns_by_channel = MappingProxyType({
        channel: (tuple(c for c, _ in items), _Weighted([w for _, w in items]))
        for channel, items in by_channel.items() if items
    })

    offers = []
    for n in range(profile.offers):
        kind = _OFFER_KINDS[n % len(_OFFER_KINDS)]
        category_index = n // len(_OFFER_KINDS) % len(categories)
        name = f"{kind}-{categories[category_index]}"
        if n >= len(_OFFER_KINDS) * len(categories):
            name += f"-{n + 1}"
        offers.append(_Offer(name, category_pages[category_index]))

    countries = _COUNTRIES[:profile.countries]
    return _Catalogue(
        home=home,
        products=tuple(products),
        others=tuple(others),
        cart=_page(_CART_PATH),
        checkout=_page(_CHECKOUT_PATH),
        thank_you=_page(_THANK_YOU_PATH),
        product_pick=product_pick,
        other_pick=other_pick,
        any_pick=_Weighted(any_weights),
        channels=channels,
        channel_pick=_zipf(len(channels), profile.channel_zipf),
        campaigns_by_channel=campaigns_by_channel,
        offers=tuple(offers),
        offer_pick=_zipf(len(offers), profile.offer_zipf),
        countries=countries,
        country_pick=_zipf(len(countries), profile.country_zipf),
        browser_pick=_Weighted([weight for *_, weight in BROWSERS]),
        bot_pick=_Weighted([weight for _, weight in BOTS]),
    )


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _quote(text: str) -> str:
    """Percent-encode a query value (the domain may not import urllib)."""
    return "".join(
        chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in text.encode("utf-8")
    )


# ---------------------------------------------------------------- time


class _Seasonality:
    """Draws visit start times over [start, end) following the daily and weekly curves."""

    def __init__(self, profile: TrafficProfile, start_ms: int, end_ms: int) -> None:
        offset_ms = profile.shop_utc_offset_minutes * _MINUTE_MS
        slots: list[tuple[int, int]] = []
        weights: list[float] = []
        slot_start = start_ms
        while slot_start < end_ms:
            # Slots end on the shop's local hour, so each has one curve value.
            slot_end = min(end_ms, (slot_start + offset_ms) // _HOUR_MS * _HOUR_MS
                           + _HOUR_MS - offset_ms)
            local_hour_index = (slot_start + offset_ms) // _HOUR_MS
            weekday = (local_hour_index // 24 + 3) % 7  # 1970-01-01 was a Thursday
            weight = (profile.daily_curve[local_hour_index % 24]
                      * profile.weekly_curve[weekday] * (slot_end - slot_start))
            slots.append((slot_start, slot_end - slot_start))
            weights.append(weight)
            slot_start = slot_end
        if not sum(weights):  # a span that falls only into zero-weight hours
            weights = [float(length) for _, length in slots]
        self._slots = slots
        self._pick = _Weighted(weights)

    def draw(self, rng: random.Random) -> int:
        slot_start, length = self._slots[self._pick.pick(rng)]
        return slot_start + int(rng.random() * length)


class _Clock:
    """Formats event times the way one visitor's tracker sends them."""

    __slots__ = ("_epoch", "_fraction_digits", "_offset_ms", "_suffix")

    def __init__(self, style: int, offset_minutes: int) -> None:
        self._epoch = style == _EPOCH_STYLE
        if style in (_UTC_STYLE, _NANOS_STYLE):
            offset_minutes = 0
        self._offset_ms = offset_minutes * _MINUTE_MS
        sign = "-" if offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(offset_minutes), 60)
        if style in (_UTC_STYLE, _NANOS_STYLE):
            self._suffix = "Z"
        elif style == _COMPACT_STYLE:
            self._suffix = f"{sign}{hours:02d}{minutes:02d}"
        else:
            self._suffix = f"{sign}{hours:02d}:{minutes:02d}"
        self._fraction_digits = 9 if style == _NANOS_STYLE else 3

    def ts(self, ts_ms: int) -> str | int:
        if self._epoch:
            return ts_ms
        return iso(ts_ms, self._offset_ms, self._suffix, self._fraction_digits)


# Tracker styles: how a visitor's tracker writes `ts`.
_OFFSET_STYLE, _UTC_STYLE, _COMPACT_STYLE, _NANOS_STYLE, _EPOCH_STYLE = range(5)
_ISO_STYLE_WEIGHTS = (0.82, 0.12, 0.04, 0.02)
_EPOCH_DATE = dt.date(1970, 1, 1)


def iso(ts_ms: int, offset_ms: int = 0, suffix: str = "Z", fraction_digits: int = 3) -> str:
    """`ts_ms` as ISO 8601 in local time at `offset_ms`, e.g. 2016-02-16T10:00:00.250+01:00.

    Hand-made rather than datetime.isoformat: it runs once per event. Digits beyond
    milliseconds are zeros.
    """
    day, in_day = divmod(ts_ms + offset_ms, _DAY_MS)
    date = _date(day)
    seconds, millis = divmod(in_day, _SECOND_MS)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    fraction = f"{millis:03d}".ljust(fraction_digits, "0")
    return f"{date}T{hours:02d}:{minutes:02d}:{seconds:02d}.{fraction}{suffix}"


@functools.lru_cache(maxsize=4096)
def _date(day: int) -> str:
    return (_EPOCH_DATE + dt.timedelta(days=day)).isoformat()


# ---------------------------------------------------------------- the generator

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


@dataclass(frozen=True)
class _Visit:
    """What stays the same for every event of one visit."""

    visitor_id: str
    clock: _Clock
    #: The visit-wide fields as JSON object members without braces, appended to each event.
    members: str
    fields: Mapping[str, object]
    bot: bool


def generate(
    profile: TrafficProfile, faults: Faults, start_ms: int, duration_ms: int, seed: int
) -> Iterator[Emitted]:
    """The traffic of `profile` with event times in [start_ms, start_ms + duration_ms),
    damaged by `faults`, as lines in arrival order. The same arguments give the same bytes.
    """
    if duration_ms <= 0:
        raise ValueError("duration_ms must be greater than 0")
    return _Simulation(profile, faults, start_ms, duration_ms, seed).run()


class _Simulation:
    """Plans every visit, then plays them in start order, holding the lines of running
    visits in a heap until no later visit can send anything earlier.
    """

    def __init__(
        self, profile: TrafficProfile, faults: Faults, start_ms: int, duration_ms: int,
        seed: int,
    ) -> None:
        self._profile = profile
        self._faults = faults
        self._end_ms = start_ms + duration_ms
        self._rng = random.Random(seed)
        self._fault_rng = random.Random(f"faults-{seed}")
        self._catalogue = _catalogue(profile)
        self._seasons = _Seasonality(profile, start_ms, self._end_ms)
        self._run_id = f"{self._rng.getrandbits(32):08x}"
        self._visitor_salt = self._rng.getrandbits(48)
        self._event_seq = 0
        self._order_seq = 0
        self._heap_seq = 0
        self._pending: list[tuple[int, int, Emitted]] = []
        self._timeout_ms = profile.session_timeout_ms
        self._gap_mu = math.log(profile.gap_median_seconds * _SECOND_MS)
        self._revenue_mu = math.log(profile.revenue_median)
        rates = faults.exclusive_rates()
        self._fault_kinds = tuple(rates)
        self._fault_cumulative = list(_running_sum(rates.values()))
        self._fault_total = self._fault_cumulative[-1]
        # Per visitor: tracker clock and device, fixed at first sight; free_at keeps a
        # visitor's visits apart by more than the session timeout.
        self._visitors: list[tuple[_Clock, int, int] | None] = []
        self._free_at: list[int] = []

    # ------------------------------------------------------------ planning

    def _plan(self) -> list[tuple[int, int, int]]:
        """(start, tie-breaker, visitor index) of every planned visit."""
        profile, rng = self._profile, self._rng
        returning = min(profile.returning_share, profile.visits_per_visitor - 1)
        # Returning visitors make 2 + geometric visits, so the mean comes out right.
        extra_mean = (profile.visits_per_visitor - 1) / returning - 1 if returning else 0.0
        plan: list[tuple[int, int, int]] = []
        for visitor in range(profile.visitors):
            count = 1
            if returning and rng.random() < returning:
                count = 2 + _geometric(rng, extra_mean)
            for _ in range(count):
                plan.append((self._seasons.draw(rng), len(plan), visitor))
        human_visits = len(plan)
        bot_visits = round(human_visits * profile.bot_share / (1 - profile.bot_share)) \
            if profile.bot_share < 1 else human_visits
        for bot in range(bot_visits):
            plan.append((self._seasons.draw(rng), len(plan), profile.visitors + bot))
        self._visitors = [None] * (profile.visitors + bot_visits)
        self._free_at = [0] * (profile.visitors + bot_visits)
        heapq.heapify(plan)
        return plan

    def run(self) -> Iterator[Emitted]:
        plan = self._plan()
        pending = self._pending
        tie = len(plan)
        while plan:
            start, _, visitor = heapq.heappop(plan)
            if start < self._free_at[visitor]:
                # Too close to the visitor's last visit: they come back a while later.
                later = self._free_at[visitor] + self._gap_beyond_timeout()
                if later < self._end_ms:
                    heapq.heappush(plan, (later, tie, visitor))
                    tie += 1
                continue
            # Every later visit starts at `start` or after, so it sends nothing earlier.
            while pending and pending[0][0] <= start:
                yield heapq.heappop(pending)[2]
            if visitor >= self._profile.visitors:
                last = self._bot_visit(visitor, start)
            else:
                last = self._human_visit(visitor, start)
            self._free_at[visitor] = last + self._timeout_ms + 1
        while pending:
            yield heapq.heappop(pending)[2]

    # ------------------------------------------------------------ visits

    def _visitor_id(self, visitor: int) -> str:
        # An odd multiplier is a bijection modulo 2**48: unique ids that look random.
        return f"{(visitor * 0x9E3779B97F4B + self._visitor_salt) % (1 << 48):012x}"

    def _human(self, visitor: int) -> tuple[_Clock, int, int]:
        known = self._visitors[visitor]
        if known is not None:
            return known
        rng, catalogue = self._rng, self._catalogue
        country = catalogue.country_pick.pick(rng)
        if rng.random() < self._profile.epoch_ts_share:
            style = _EPOCH_STYLE
        else:
            style = _weighted_index(rng, _ISO_STYLE_WEIGHTS)
        clock = _Clock(style, catalogue.countries[country][1])
        known = (clock, catalogue.browser_pick.pick(rng), country)
        self._visitors[visitor] = known
        return known

    def _human_visit(self, visitor: int, start: int) -> int:
        """Play one visit from `start`; return its last event time."""
        profile, rng, catalogue = self._profile, self._rng, self._catalogue
        clock, browser, country = self._human(visitor)
        user_agent, device_class, browser_family, _ = BROWSERS[browser]
        channel = catalogue.channels[catalogue.channel_pick.pick(rng)]
        campaign: _Campaign | None = None
        if channel in catalogue.campaigns_by_channel and (
            channel != enrich.SOCIAL or rng.random() < _PAID_SOCIAL_SHARE
        ):
            choices, pick = catalogue.campaigns_by_channel[channel]
            campaign = choices[pick.pick(rng)]
        page, url, referrer = self._landing(channel, campaign)
        visitor_id = self._visitor_id(visitor)
        visit_fields: dict[str, object] = {
            "visitor_id": visitor_id,
            "channel": channel,
            **({"campaign": campaign.name} if campaign else {}),
            "device_class": device_class,
            "browser_family": browser_family,
            "country": catalogue.countries[country][0],
            "user_agent": user_agent,
        }
        visit = _Visit(visitor_id, clock, _encode(visit_fields)[1:-1], visit_fields, bot=False)
        emit, end = self._emit, self._end_ms

        pages = 1 if rng.random() < profile.bounce_rate else 2 + _geometric(
            rng, profile.pages_per_visit - 2
        )
        ts = start
        cart_category: str | None = None
        clicked_offer: str | None = None
        chosen_next: _Page | None = None
        for number in range(pages):
            if number:
                ts += self._gap()
                referrer = url
                page = chosen_next or self._next_page(page)
                url, chosen_next = page.url, None
            if ts >= end:
                return ts
            emit(visit, ts, events.PAGE_VIEW, page.path, url, referrer)
            if page.is_product:
                ts += rng.randint(100, 1500)
                emit(visit, ts, events.PRODUCT_VIEW, page.path, url, category=page.category)
                if rng.random() < profile.add_to_cart_rate:
                    ts += rng.randint(3000, 60_000)
                    emit(visit, ts, events.ADD_TO_CART, page.path, url, category=page.category)
                    cart_category = page.category
            if rng.random() < profile.impression_rate:
                for _ in range(1 + _geometric(rng, profile.impressions_per_page - 1)):
                    offer = catalogue.offers[catalogue.offer_pick.pick(rng)]
                    ts += rng.randint(50, 800)
                    emit(visit, ts, events.IMPRESSION, page.path, url, offer=offer.name)
                    if rng.random() < profile.click_through_rate:
                        ts += rng.randint(1000, 8000)
                        emit(visit, ts, events.CLICK, page.path, url, offer=offer.name)
                        # The click leads to the offer's landing page, if the visit goes on.
                        clicked_offer, chosen_next = offer.name, offer.landing
            if rng.random() < profile.unknown_type_rate:
                ts += rng.randint(2000, 20_000)
                emit(visit, ts, UNKNOWN_TYPE, page.path, url)
        if cart_category is None:
            return ts
        # The checkout: an order, or an abandoned cart (half of those look at the cart first).
        ordering = rng.random() < profile.order_rate
        steps = [catalogue.cart, catalogue.checkout] if ordering else (
            [catalogue.cart] if rng.random() < 0.5 else []
        )
        for step in steps:
            ts += self._gap()
            referrer, url = url, step.url
            emit(visit, ts, events.PAGE_VIEW, step.path, url, referrer)
        if ordering:
            ts += rng.randint(20_000, 180_000)
            self._order_seq += 1
            revenue = round(rng.lognormvariate(self._revenue_mu, profile.revenue_sigma), 2)
            emit(
                visit, ts, events.ORDER, catalogue.checkout.path, catalogue.checkout.url,
                category=cart_category, offer=clicked_offer,
                order_id=f"o-{self._run_id}-{self._order_seq}", revenue=revenue,
            )
            ts += rng.randint(500, 3000)
            thanks = catalogue.thank_you
            emit(visit, ts, events.PAGE_VIEW, thanks.path, thanks.url, catalogue.checkout.url)
        return ts

    def _landing(self, channel: str, campaign: _Campaign | None) -> tuple[_Page, str, str | None]:
        """Landing page, url and referrer that say `channel` to enrich.derive_channel too."""
        rng, catalogue = self._rng, self._catalogue
        if campaign is not None:
            source, medium, click_id = _CAMPAIGN_TAGS[channel]
            url = (f"{campaign.landing.url}?utm_source={source}&utm_medium={medium}"
                   f"&utm_campaign={campaign.quoted}")
            if click_id:
                url += f"&{click_id}={rng.getrandbits(64):016x}"
            return campaign.landing, url, _CAMPAIGN_REFERRERS[channel] or None
        if channel == enrich.DIRECT:
            page = catalogue.home if rng.random() < 0.5 else catalogue.any_page(rng)
            # Browsers send an empty referrer header; some trackers leave it out.
            return page, page.url, "" if rng.random() < 0.5 else None
        page = catalogue.any_page(rng)
        referrers = {
            enrich.ORGANIC_SEARCH: _SEARCH_REFERRERS,
            enrich.SOCIAL: _SOCIAL_REFERRERS,
        }.get(channel, _SITE_REFERRERS)
        return page, page.url, referrers[int(rng.random() * len(referrers))]

    def _next_page(self, current: _Page) -> _Page:
        rng, catalogue = self._rng, self._catalogue
        if current.category is not None and not current.is_product and rng.random() < 0.6:
            # From a category page most visitors open one of its products.
            for _ in range(8):
                candidate = catalogue.products[catalogue.product_pick.pick(rng)]
                if candidate.category == current.category:
                    return candidate
        if rng.random() < self._profile.product_page_share:
            return catalogue.products[catalogue.product_pick.pick(rng)]
        return catalogue.others[catalogue.other_pick.pick(rng)]

    def _bot_visit(self, visitor: int, start: int) -> int:
        rng, catalogue = self._rng, self._catalogue
        user_agent = BOTS[catalogue.bot_pick.pick(rng)][0]
        visitor_id = self._visitor_id(visitor)
        visit_fields: dict[str, object] = {
            "visitor_id": visitor_id, "country": _BOT_COUNTRY, "user_agent": user_agent,
        }
        # Crawlers log server-side: UTC, milliseconds.
        visit = _Visit(visitor_id, _Clock(_UTC_STYLE, 0), _encode(visit_fields)[1:-1],
                       visit_fields, bot=True)
        ts, last = start, start
        for _ in range(1 + _geometric(rng, self._profile.bot_pages_per_visit - 1)):
            if ts >= self._end_ms:
                break
            page = catalogue.products[int(rng.random() * len(catalogue.products))] \
                if rng.random() < 0.7 else catalogue.others[int(rng.random()
                                                                 * len(catalogue.others))]
            self._emit(visit, ts, events.PAGE_VIEW, page.path, page.url)
            last = ts
            ts += 200 + int(rng.lognormvariate(math.log(2000), 0.7))
        return last

    def _gap(self) -> int:
        rng = self._rng
        if rng.random() < self._profile.long_gap_share:
            return self._gap_beyond_timeout()
        gap = int(rng.lognormvariate(self._gap_mu, self._profile.gap_sigma))
        # The lognormal tail stays inside the visit: long gaps come from long_gap_share only.
        return max(500, min(gap, self._timeout_ms - 60 * _SECOND_MS))

    def _gap_beyond_timeout(self) -> int:
        return self._timeout_ms + self._rng.randint(_MINUTE_MS, 3 * _HOUR_MS)

    # ------------------------------------------------------------ lines

    def _emit(
        self, visit: _Visit, ts: int, event_type: str, page: str, url: str,
        referrer: str | None = None, *, category: str | None = None, offer: str | None = None,
        order_id: str | None = None, revenue: float | None = None,
    ) -> None:
        if ts >= self._end_ms:
            return  # the visit runs past the generated span
        self._event_seq += 1
        event: dict[str, object] = {
            "event_id": f"{self._run_id}-{self._event_seq:x}",
            "ts": visit.clock.ts(ts),
            "type": event_type,
            "page": page,
            "url": url,
        }
        if referrer is not None:
            event["referrer"] = referrer
        if offer is not None:
            event["offer"] = offer
        if category is not None:
            event["product_category"] = category
        if order_id is not None:
            event["order_id"] = order_id
            event["revenue"] = revenue
        draw = self._fault_rng.random() if self._fault_total else 1.0
        if draw >= self._fault_total:
            kind, arrival = VALID, ts
        else:
            index = min(bisect.bisect_right(self._fault_cumulative, draw),
                        len(self._fault_kinds) - 1)
            kind = self._fault_kinds[index]
            if kind not in ACCEPTED_KINDS:
                self._push(self._damaged(kind, event, visit, ts), ts)
                return
            arrival = ts + self._delay(kind)
        line = (_encode(event)[:-1] + "," + visit.members + "}").encode("utf-8")
        emitted = Emitted(line, arrival, kind, visit.visitor_id, visit.bot)
        self._push(emitted, arrival)
        if self._faults.duplicate and self._fault_rng.random() < self._faults.duplicate:
            resent = arrival + self._fault_rng.randint(0, self._faults.duplicate_max_delay_ms)
            self._push(Emitted(line, resent, DUPLICATE, visit.visitor_id, visit.bot), resent)

    def _push(self, emitted: Emitted, arrival: int) -> None:
        self._heap_seq += 1
        heapq.heappush(self._pending, (arrival, self._heap_seq, emitted))

    def _delay(self, kind: str) -> int:
        faults, rng = self._faults, self._fault_rng
        if kind == LATE:
            return rng.randint(faults.late_max_ms // 4, faults.late_max_ms)
        return rng.randint(min(1, faults.out_of_order_max_ms), faults.out_of_order_max_ms)

    def _damaged(self, kind: str, event: dict[str, object], visit: _Visit, ts: int) -> Emitted:
        """The event as a sender with a bug would send it; arrives at the event time."""
        rng = self._fault_rng
        record = {**event, **visit.fields}
        visitor_id: str | None = visit.visitor_id
        if kind == MALFORMED_JSON:
            text = _encode(record)
            variant = rng.randrange(4)
            if variant == 0:  # the sender died mid-line
                text = text[:rng.randint(1, len(text) - 1)]
            elif variant == 1:
                text = text[:-1] + ",}"
            elif variant == 2:
                text = text.replace('"', "'")
            else:
                # JavaScript's NaN: lenient parsers (Python's json) still read the line.
                text = text[:-1] + ',"revenue":NaN}'
                return Emitted(text.encode("utf-8"), ts, kind, visitor_id, visit.bot)
            return Emitted(text.encode("utf-8"), ts, kind, None, visit.bot)
        if kind == INVALID_UTF8:
            # A Latin-1 sender: "Straße" with ß as the single byte 0xDF.
            line = _encode({**record, "search": "\x00MARK\x00"}).encode("utf-8")
            line = line.replace(b"\\u0000MARK\\u0000", b"Stra\xdfe")
            return Emitted(line, ts, kind, None, visit.bot)
        if kind == OVERSIZED:
            size = rng.randint(events.MAX_LINE_BYTES + 1, 2 * events.MAX_LINE_BYTES)
            record["dom_snapshot"] = "<div>" * (size // 5 + 1)
        elif kind == MISSING_FIELD:
            missing = events.REQUIRED_FIELDS[rng.randrange(len(events.REQUIRED_FIELDS))]
            del record[missing]
            if missing == "visitor_id":
                visitor_id = None
        elif kind == WRONG_TYPE:
            visitor_id = self._wrong_type(record, visitor_id)
        elif kind == TS_FAR_PAST:
            past = ts - rng.randint(FAR_PAST_MIN_MS, 3 * FAR_PAST_MIN_MS)
            # Half are epoch seconds sent as milliseconds: the classic mistake.
            record["ts"] = ts // _SECOND_MS if rng.random() < 0.5 else iso(past)
        elif kind == TS_FAR_FUTURE:
            future = ts + rng.randint(FAR_FUTURE_MIN_MS, 5 * FAR_FUTURE_MIN_MS)
            record["ts"] = future if rng.random() < 0.5 else iso(future)
        return Emitted(_encode(record).encode("utf-8"), ts, kind, visitor_id, visit.bot)

    def _wrong_type(self, record: dict[str, object], visitor_id: str | None) -> str | None:
        rng = self._fault_rng
        choices = ["event_id", "visitor_id", "type", "page"]
        if "revenue" in record:
            choices.append("revenue")
        field = choices[rng.randrange(len(choices))]
        if field == "event_id":
            record["event_id"] = rng.randint(1, 10**9)
        elif field == "visitor_id":
            record["visitor_id"] = rng.randint(1, 10**6)  # a numeric user id
            return None
        elif field == "type":
            record["type"] = None
        elif field == "page":
            record["page"] = 404
        else:
            record["revenue"] = f"{record['revenue']}"  # an amount as a string
        return visitor_id


def _running_sum(values: Iterable[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _geometric(rng: random.Random, mean: float) -> int:
    """A count >= 0 with the given mean: how many more, when each is a coin toss."""
    if mean <= 0:
        return 0
    stop = 1.0 / (1.0 + mean)
    return int(math.log(1.0 - rng.random()) / math.log(1.0 - stop))


def _weighted_index(rng: random.Random, weights: Sequence[float]) -> int:
    draw = rng.random() * sum(weights)
    for index, weight in enumerate(weights):
        draw -= weight
        if draw < 0:
            return index
    return len(weights) - 1
