"""The shop: real browser and crawler user agents, countries, pages, campaigns and offers."""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from clickagg.domain import enrich
from clickagg.sim.draws import Weighted, zipf

if TYPE_CHECKING:  # profile checks its knobs against this module's tables
    from clickagg.sim.profile import TrafficProfile

SHOP = "https://www.shop.example"

# (user agent, device class, browser family, weight): real headers, classified the way
# enrich.classify_user_agent classifies them (a unit test checks).
BROWSERS: tuple[tuple[str, str, str, float], ...] = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        enrich.DESKTOP,
        "chrome",
        0.22,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        enrich.MOBILE,
        "safari",
        0.20,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        enrich.MOBILE,
        "chrome",
        0.18,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
        enrich.DESKTOP,
        "edge",
        0.07,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        enrich.DESKTOP,
        "safari",
        0.07,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        enrich.DESKTOP,
        "chrome",
        0.06,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        enrich.DESKTOP,
        "firefox",
        0.05,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 "
        "(KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        enrich.MOBILE,
        "samsung_internet",
        0.04,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        enrich.TABLET,
        "safari",
        0.04,
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        enrich.TABLET,
        "chrome",
        0.02,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        enrich.MOBILE,
        "chrome",
        0.02,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        enrich.DESKTOP,
        "firefox",
        0.01,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
        enrich.DESKTOP,
        "opera",
        0.01,
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        enrich.MOBILE,
        "firefox",
        0.01,
    ),
)

# (user agent, weight): real crawler headers that enrich.is_bot recognises (a test checks).
BOTS: tuple[tuple[str, float], ...] = (
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.22),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 "
        "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        0.15,
    ),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 0.12),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 0.10),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", 0.08),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", 0.05),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", 0.03),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 "
        "(Applebot/0.1; +http://www.apple.com/go/applebot)",
        0.05,
    ),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", 0.05),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; "
        "+https://openai.com/gptbot)",
        0.05,
    ),
    ("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", 0.04),
    ("curl/8.4.0", 0.03),
    ("python-requests/2.31.0", 0.03),
)

# (ISO 3166-1 alpha-2, standard-time UTC offset in minutes), by importance to the shop.
COUNTRIES: tuple[tuple[str, int], ...] = (
    ("DE", 60),
    ("AT", 60),
    ("CH", 60),
    ("NL", 60),
    ("FR", 60),
    ("BE", 60),
    ("PL", 60),
    ("IT", 60),
    ("ES", 60),
    ("GB", 0),
    ("DK", 60),
    ("SE", 60),
    ("CZ", 60),
    ("LU", 60),
    ("US", -300),
    ("IE", 0),
    ("NO", 60),
    ("FI", 120),
    ("PT", 0),
    ("HU", 60),
    ("SK", 60),
    ("SI", 60),
    ("HR", 60),
    ("RO", 120),
    ("GR", 120),
    ("BG", 120),
    ("LT", 120),
    ("LV", 120),
    ("EE", 120),
    ("CA", -300),
    ("AU", 600),
    ("JP", 540),
    ("TR", 180),
    ("IN", 330),
    ("BR", -180),
    ("MX", -360),
    ("CN", 480),
    ("ZA", 120),
    ("IL", 120),
    ("AE", 240),
)
BOT_COUNTRY = "US"

_CATEGORIES = (
    "kettles",
    "coffee-machines",
    "toasters",
    "blenders",
    "cookware",
    "knives",
    "espresso",
    "grinders",
    "mixers",
    "juicers",
    "tableware",
    "storage",
    "baking",
    "grills",
    "vacuum-cleaners",
    "irons",
    "fans",
    "heaters",
    "water-filters",
    "scales",
    "kitchen-textiles",
    "cutlery",
    "spare-parts",
    "gifts",
)
_BRANDS = ("aurora", "nordhaus", "vesta", "kobalt", "lumen", "ferro", "solis", "arktis")
_MODELS = ("classic", "pro", "mini", "max", "eco", "smart", "steel", "compact", "deluxe")
_CONTENT_PAGES = (
    "/blog/descaling-guide",
    "/blog/perfect-espresso",
    "/blog/knife-care",
    "/help/shipping",
    "/help/returns",
    "/help/payment",
    "/about",
    "/contact",
    "/stores",
    "/gift-cards",
    "/blog/brunch-ideas",
    "/blog/small-kitchens",
    "/sale",
    "/new",
    "/brands",
)
_CAMPAIGN_THEMES = (
    "brand",
    "spring-sale",
    "summer-sale",
    "black-friday",
    "christmas",
    "back-to-school",
    "retargeting",
    "new-arrivals",
    "clearance",
    "frühling",  # non-ASCII on purpose: urls encode it
)
_OFFER_KINDS = ("10-off", "free-shipping", "bundle", "gift", "2-for-1", "flash-sale")

# The channel order the Zipf skew follows: organic search leads, other_campaign trails.
_CHANNEL_ORDER = (
    enrich.ORGANIC_SEARCH,
    enrich.DIRECT,
    enrich.PAID_SEARCH,
    enrich.SOCIAL,
    enrich.EMAIL,
    enrich.REFERRAL,
    enrich.DISPLAY,
    enrich.AFFILIATE,
    enrich.OTHER_CAMPAIGN,
)
_CAMPAIGN_CHANNELS = (
    enrich.PAID_SEARCH,
    enrich.SOCIAL,
    enrich.EMAIL,
    enrich.DISPLAY,
    enrich.AFFILIATE,
    enrich.OTHER_CAMPAIGN,
)
# Half the social visits come from paid posts with utm tags, half from shared links.
PAID_SOCIAL_SHARE = 0.5
SEARCH_REFERRERS = (
    "https://www.google.com/",
    "https://www.google.de/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://www.ecosia.org/",
)
SOCIAL_REFERRERS = (
    "https://t.co/",
    "https://l.facebook.com/",
    "https://www.instagram.com/",
    "https://www.pinterest.de/",
    "https://www.reddit.com/r/Cooking/",
)
SITE_REFERRERS = (
    "https://www.kettle-reviews.example/best-kettles",
    "https://forum.kitchen-talk.example/t/81",
    "https://www.deal-finder.example/kitchen",
    "https://blog.coffee-nerds.example/gear",
)
# (utm_source, utm_medium, click id parameter or "") per campaign channel.
CAMPAIGN_TAGS: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        enrich.PAID_SEARCH: ("google", "cpc", "gclid"),
        enrich.SOCIAL: ("facebook", "paid_social", "fbclid"),
        enrich.EMAIL: ("newsletter", "email", ""),
        enrich.DISPLAY: ("criteo", "display", ""),
        enrich.AFFILIATE: ("partner-network", "affiliate", ""),
        enrich.OTHER_CAMPAIGN: ("podcast", "audio", ""),
    }
)
CAMPAIGN_REFERRERS: Mapping[str, str] = MappingProxyType(
    {
        enrich.PAID_SEARCH: "https://www.google.com/",
        enrich.SOCIAL: "https://l.facebook.com/",
        enrich.EMAIL: "",
        enrich.DISPLAY: "https://www.news-portal.example/",
        enrich.AFFILIATE: "https://www.cashback-club.example/",
        enrich.OTHER_CAMPAIGN: "",
    }
)
UNKNOWN_TYPE = "scroll"
CART_PATH = "/cart"
CHECKOUT_PATH = "/checkout"
THANK_YOU_PATH = "/checkout/thank-you"


@dataclass(frozen=True)
class Page:
    path: str
    url: str
    category: str | None
    #: A product detail page: viewing it is a product_view.
    is_product: bool = False


@dataclass(frozen=True)
class Campaign:
    name: str
    channel: str
    landing: Page
    #: The name as a query parameter value (percent-encoded UTF-8).
    quoted: str


@dataclass(frozen=True)
class Offer:
    name: str
    landing: Page


@dataclass(frozen=True)
class Catalogue:
    """Pages, campaigns, offers, channels and countries with their popularity.

    Built from the profile alone (names come from a fixed random stream), so runs with
    different seeds describe the same shop.
    """

    home: Page
    products: tuple[Page, ...]
    others: tuple[Page, ...]
    cart: Page
    checkout: Page
    thank_you: Page
    product_pick: Weighted
    other_pick: Weighted
    any_pick: Weighted
    channels: tuple[str, ...]
    channel_pick: Weighted
    campaigns_by_channel: Mapping[str, tuple[tuple[Campaign, ...], Weighted]]
    offers: tuple[Offer, ...]
    offer_pick: Weighted
    countries: tuple[tuple[str, int], ...]
    country_pick: Weighted
    browser_pick: Weighted
    bot_pick: Weighted

    def any_page(self, rng: random.Random) -> Page:
        index = self.any_pick.pick(rng)
        if index < len(self.products):
            return self.products[index]
        return self.others[index - len(self.products)]


def page(path: str, category: str | None = None, *, is_product: bool = False) -> Page:
    return Page(path=path, url=SHOP + path, category=category, is_product=is_product)


def build_catalogue(profile: TrafficProfile) -> Catalogue:
    names = random.Random(20160216)  # fixed: the shop's names do not depend on the seed
    categories = [
        _CATEGORIES[i] if i < len(_CATEGORIES) else f"category-{i + 1}"
        for i in range(profile.product_categories)
    ]
    category_pages = [page(f"/c/{c}", c) for c in categories]
    # About a tenth of what is not home or a category is content; the rest are products.
    rest = profile.pages - 1 - len(category_pages)
    content = [page(path) for path in _CONTENT_PAGES[: min(len(_CONTENT_PAGES), rest // 10)]]
    product_count = rest - len(content)
    products = []
    for n in range(product_count):
        # Earlier categories get more products: a Zipf-ish assortment.
        category = categories[min(int(names.paretovariate(1.2)) - 1, len(categories) - 1)]
        brand, model = names.choice(_BRANDS), names.choice(_MODELS)
        products.append(page(f"/p/{category}/{brand}-{model}-{n + 1}", category, is_product=True))
    names.shuffle(products)  # popularity rank is independent of the product number
    others = [page("/"), *category_pages, *content]
    home = others[0]
    product_pick = zipf(len(products), profile.page_zipf)
    other_pick = zipf(len(others), profile.page_zipf)
    # Landing pages of organic traffic: products and other pages interleaved by rank.
    any_weights = [
        *(1.0 / (2 * rank) ** profile.page_zipf for rank in range(1, len(products) + 1)),
        *(1.0 / (2 * rank - 1) ** profile.page_zipf for rank in range(1, len(others) + 1)),
    ]

    channels = _CHANNEL_ORDER[: profile.channels]
    campaign_channels = [c for c in _CAMPAIGN_CHANNELS if c in channels]
    by_channel: dict[str, list[tuple[Campaign, float]]] = {c: [] for c in campaign_channels}
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
            campaign = Campaign(name, channel, landing, urllib.parse.quote(name, safe=""))
            by_channel[channel].append((campaign, 1.0 / rank**profile.campaign_zipf))
    campaigns_by_channel = MappingProxyType(
        {
            channel: (tuple(c for c, _ in items), Weighted([w for _, w in items]))
            for channel, items in by_channel.items()
            if items
        }
    )

    offers = []
    for n in range(profile.offers):
        kind = _OFFER_KINDS[n % len(_OFFER_KINDS)]
        category_index = n // len(_OFFER_KINDS) % len(categories)
        name = f"{kind}-{categories[category_index]}"
        if n >= len(_OFFER_KINDS) * len(categories):
            name += f"-{n + 1}"
        offers.append(Offer(name, category_pages[category_index]))

    countries = COUNTRIES[: profile.countries]
    return Catalogue(
        home=home,
        products=tuple(products),
        others=tuple(others),
        cart=page(CART_PATH),
        checkout=page(CHECKOUT_PATH),
        thank_you=page(THANK_YOU_PATH),
        product_pick=product_pick,
        other_pick=other_pick,
        any_pick=Weighted(any_weights),
        channels=channels,
        channel_pick=zipf(len(channels), profile.channel_zipf),
        campaigns_by_channel=campaigns_by_channel,
        offers=tuple(offers),
        offer_pick=zipf(len(offers), profile.offer_zipf),
        countries=countries,
        country_pick=zipf(len(countries), profile.country_zipf),
        browser_pick=Weighted([weight for *_, weight in BROWSERS]),
        bot_pick=Weighted([weight for _, weight in BOTS]),
    )
