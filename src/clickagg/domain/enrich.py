"""Fill in what an event does not say: channel, campaign, page, device class, browser family,
and whether a bot sent it.

Spark calls these functions once per event, so everything costly happens once: the crawler
patterns are compiled on first use, and user agents and referrer hosts, which repeat a lot,
are classified through caches. A value the event carries itself is never overwritten.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import ua_parser

from clickagg.domain import events

DIRECT = "direct"
ORGANIC_SEARCH = "organic_search"
PAID_SEARCH = "paid_search"
SOCIAL = "social"
EMAIL = "email"
DISPLAY = "display"
AFFILIATE = "affiliate"
REFERRAL = "referral"
#: Tagged with utm parameters that name no channel we know.
OTHER_CAMPAIGN = "other_campaign"
CHANNELS = (
    DIRECT,
    ORGANIC_SEARCH,
    PAID_SEARCH,
    SOCIAL,
    EMAIL,
    DISPLAY,
    AFFILIATE,
    REFERRAL,
    OTHER_CAMPAIGN,
)

DESKTOP = "desktop"
MOBILE = "mobile"
TABLET = "tablet"
BOT = "bot"
OTHER_DEVICE = "other"
DEVICE_CLASSES = (DESKTOP, MOBILE, TABLET, BOT, OTHER_DEVICE)

# utm_medium, lower-cased with '-' and ' ' as '_'.
_MEDIUM_CHANNELS: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(("cpc", "ppc", "paid", "paidsearch", "paid_search", "sem"), PAID_SEARCH),
        **dict.fromkeys(("display", "banner", "cpm", "programmatic", "rtb"), DISPLAY),
        **dict.fromkeys(("email", "e_mail", "newsletter", "mail"), EMAIL),
        **dict.fromkeys(
            ("social", "social_media", "social_network", "sm", "paid_social", "paidsocial"), SOCIAL
        ),
        **dict.fromkeys(("affiliate", "affiliates", "partner"), AFFILIATE),
        "organic": ORGANIC_SEARCH,
        "referral": REFERRAL,
    }
)
_EMAIL_SOURCES = frozenset({"email", "e_mail", "newsletter", "mail"})
# Click ids that ad networks append to landing urls, in the order they are checked.
_CLICK_ID_CHANNELS = (
    ("gclid", PAID_SEARCH),
    ("gbraid", PAID_SEARCH),
    ("wbraid", PAID_SEARCH),
    ("msclkid", PAID_SEARCH),
    ("dclid", DISPLAY),
    ("fbclid", SOCIAL),
)

# A host "belongs" to a name when the name is its registrable label: google.com, google.co.uk.
_TLD_TAIL = r"\.(?:[a-z]{2,3}|co\.[a-z]{2}|com\.[a-z]{2})$"
_SEARCH_HOSTS = re.compile(
    r"(?:^|\.)(?:google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|qwant|startpage|brave|naver"
    r"|seznam|sogou|aol)" + _TLD_TAIL
)
_SOCIAL_HOSTS = re.compile(
    r"(?:^|\.)(?:facebook|instagram|twitter|linkedin|pinterest|reddit|tiktok|youtube|xing|vk"
    r"|snapchat|tumblr|whatsapp|telegram|discord|quora|mastodon|threads)" + _TLD_TAIL
)
# Short and app hosts the name rule does not catch (t.co, lnkd.in, Android app referrers).
_SOCIAL_DOMAINS = frozenset(
    {
        "t.co",
        "x.com",
        "lnkd.in",
        "t.me",
        "bsky.app",
        "youtu.be",
        "fb.me",
        "wa.me",
        "threads.net",
        "com.facebook.katana",
        "com.twitter.android",
        "com.linkedin.android",
        "com.instagram.android",
        "com.reddit.frontpage",
    }
)
_MAIL_HOSTS = re.compile(r"^(?:mail|webmail|outlook)\.|^com\.google\.android\.gm$")
_SEARCH_DOMAINS = frozenset({"com.google.android.googlequicksearchbox"})
_SOURCES_SOCIAL = re.compile(
    r"^(?:facebook|fb|instagram|ig|twitter|x|linkedin|pinterest|reddit|tiktok|youtube|xing"
    r"|snapchat|whatsapp|telegram|threads|bluesky|mastodon)$"
)

_CRAWLER_CHUNK = 40  # one alternation of all patterns is 3x slower in `re` than chunks
_UA_CACHE_SIZE = 16_384
_HOST_CACHE_SIZE = 4_096

# ua-parser browser families, by prefix, to the coarse families a dimension can hold.
_BROWSER_PREFIXES = (
    ("Chrome", "chrome"),
    ("Chromium", "chrome"),
    ("HeadlessChrome", "chrome"),
    ("Firefox", "firefox"),
    ("Mobile Safari", "safari"),
    ("Safari", "safari"),
    ("Edge", "edge"),
    ("Samsung Internet", "samsung_internet"),
    ("Opera", "opera"),
    ("IE", "internet_explorer"),
    ("UC Browser", "uc_browser"),
    ("Yandex Browser", "yandex"),
)
_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "macOS",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "ChromeOS",
        "Fedora",
        "Debian",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)
_MOBILE_OS = frozenset(
    {
        "iOS",
        "Android",
        "Windows Phone",
        "BlackBerry OS",
        "KaiOS",
        "Firefox OS",
        "Symbian OS",
        "HarmonyOS",
    }
)
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class UserAgentClass:
    """What a user agent says about its sender."""

    device_class: str
    browser_family: str
    is_bot: bool


@dataclass(frozen=True)
class UrlParts:
    """The parts of a url enrichment reads; host is lower-case and "" for a relative url."""

    host: str
    path: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class LinkFacts:
    """What an event's url and referrer say: its channel, campaign and page."""

    channel: str
    campaign: str | None
    page: str | None


def enrich(event: events.Event) -> events.Event:
    """The event with derived values filled in where it has none, and `bot` set."""
    links = (
        None
        if event.channel and event.campaign and event.page
        else link_facts(event.url, event.referrer)
    )
    agent = classify_user_agent(event.user_agent) if event.user_agent else None
    return dataclasses.replace(
        event,
        channel=event.channel or (links.channel if links else None),
        campaign=event.campaign or (links.campaign if links else None),
        page=event.page or (links.page if links else None),
        device_class=event.device_class or (agent.device_class if agent else None),
        browser_family=event.browser_family or (agent.browser_family if agent else None),
        bot=agent.is_bot if agent else False,
    )


def link_facts(url: str | None, referrer: str | None) -> LinkFacts:
    """The channel (`derive_channel`), the landing url's utm_campaign and its path."""
    parts = split_url(url) if url else None
    return LinkFacts(
        channel=derive_channel(url, referrer),
        campaign=(parts.params.get("utm_campaign") if parts else None) or None,
        page=parts.path if parts else None,
    )


def derive_channel(url: str | None, referrer: str | None) -> str:
    """The channel from, in this order: utm_medium, utm_source, ad click ids, any other utm
    tag (other_campaign), an external referrer's host, else direct.
    """
    landing = split_url(url) if url else None
    params = landing.params if landing else {}
    medium = _token(params.get("utm_medium", ""))
    if medium in _MEDIUM_CHANNELS:
        return _MEDIUM_CHANNELS[medium]
    source = _token(params.get("utm_source", ""))
    if _SOURCES_SOCIAL.match(source):
        return SOCIAL
    if source in _EMAIL_SOURCES:
        return EMAIL
    for click_id, channel in _CLICK_ID_CHANNELS:
        if params.get(click_id):
            return channel
    if any(name.startswith("utm_") and value for name, value in params.items()):
        return OTHER_CAMPAIGN
    if referrer:
        referrer_host = split_url(referrer).host
        if referrer_host and not _same_site(referrer_host, landing.host if landing else ""):
            return _referrer_channel(referrer_host)
    return DIRECT


@functools.lru_cache(maxsize=_HOST_CACHE_SIZE)
def _referrer_channel(host: str) -> str:
    # Mail first: mail.google.com is no search engine.
    if _MAIL_HOSTS.search(host):
        return EMAIL
    if _SEARCH_HOSTS.search(host) or host in _SEARCH_DOMAINS:
        return ORGANIC_SEARCH
    if _SOCIAL_HOSTS.search(host) or _in_domains(host, _SOCIAL_DOMAINS):
        return SOCIAL
    return REFERRAL


def _in_domains(host: str, domains: frozenset[str]) -> bool:
    return host in domains or any(host.endswith("." + domain) for domain in domains)


def _same_site(referrer_host: str, landing_host: str) -> bool:
    if not landing_host:
        return False
    a, b = _without_www(referrer_host), _without_www(landing_host)
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _without_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def _token(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


@functools.lru_cache(maxsize=_HOST_CACHE_SIZE)
def split_url(url: str) -> UrlParts:
    """Host, path and query parameters (first value wins, percent-decoded) of a url.

    Tolerant by design: a url that is no url yields what can be read, never an error.
    """
    text = url.strip()
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # an unbalanced IPv6 bracket: no host or path, the query still counts
        query = text.partition("#")[0].partition("?")[2]
        return UrlParts(host="", path="/", params=_query_params(query))
    host = (parts.hostname or "").rstrip(".")
    return UrlParts(host=host, path=parts.path or "/", params=_query_params(parts.query))


def _query_params(query: str) -> Mapping[str, str]:
    params: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True, errors="replace"):
        params.setdefault(name.strip().lower(), value.strip())
    return MappingProxyType(params)


def derive_page(url: str) -> str:
    """The page of a url: its path."""
    return split_url(url).path


@functools.lru_cache(maxsize=_UA_CACHE_SIZE)
def classify_user_agent(user_agent: str) -> UserAgentClass:
    """Device class, browser family and bot flag of a User-Agent header.

    A bot is what the crawler-user-agents list matches, or what ua-parser calls a Spider.
    """
    parsed = ua_parser.parse(user_agent)
    device_family = parsed.device.family if parsed.device else ""
    bot = is_bot(user_agent) or device_family == "Spider"
    browser = parsed.user_agent.family if parsed.user_agent else "Other"
    return UserAgentClass(
        device_class=BOT if bot else _device_class(user_agent, parsed),
        browser_family=_browser_family(browser),
        is_bot=bot,
    )


def is_bot(user_agent: str) -> bool:
    """True when the crawler-user-agents list matches the user agent (case-sensitive)."""
    return any(pattern.search(user_agent) for pattern in _crawler_patterns())


@functools.cache
def _crawler_patterns() -> tuple[re.Pattern[str], ...]:
    # Read as package data rather than imported: the package has no type information.
    source = importlib.resources.files("crawleruseragents").joinpath("crawler-user-agents.json")
    patterns = [entry["pattern"] for entry in json.loads(source.read_text(encoding="utf-8"))]
    return tuple(
        re.compile("|".join(patterns[start : start + _CRAWLER_CHUNK]))
        for start in range(0, len(patterns), _CRAWLER_CHUNK)
    )


def _device_class(user_agent: str, parsed: ua_parser.Result) -> str:
    device = parsed.device
    os_family = parsed.os.family if parsed.os else ""
    device_text = f"{device.family} {device.brand or ''}" if device else ""
    if (
        "Tablet" in device_text
        or "iPad" in device_text
        or "Kindle" in device_text
        or "Tablet" in user_agent
        # Android phones say "Mobile"; Android tablets do not.
        or (os_family == "Android" and "Mobile" not in user_agent)
    ):
        return TABLET
    # "Mobi" anywhere in the header is the browsers' own mobile marker.
    if "Mobi" in user_agent or os_family in _MOBILE_OS or "Smartphone" in device_text:
        return MOBILE
    if os_family in _DESKTOP_OS:
        return DESKTOP
    return OTHER_DEVICE


def _browser_family(family: str) -> str:
    for prefix, coarse in _BROWSER_PREFIXES:
        if family.startswith(prefix):
            return coarse
    return _SLUG.sub("_", family.lower()).strip("_") or "other"
