"""Enrichment: channel derivation, user-agent classification, bot flagging, and that an event's
own values always win.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from clickagg.domain import enrich, events

pytestmark = pytest.mark.unit

CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"

SHOP = "https://shop.example/kettles"


# --- channel ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "referrer", "channel"),
    [
        (f"{SHOP}?utm_medium=cpc&utm_source=google", "https://www.google.com/", "paid_search"),
        (f"{SHOP}?utm_medium=paid", None, "paid_search"),
        (f"{SHOP}?utm_medium=Paid%20Search", None, "paid_search"),
        (f"{SHOP}?utm_medium=E-Mail&utm_source=newsletter", None, "email"),
        (f"{SHOP}?utm_source=newsletter", None, "email"),
        (f"{SHOP}?utm_medium=social&utm_source=linkedin", None, "social"),
        (f"{SHOP}?utm_source=facebook", None, "social"),
        (f"{SHOP}?utm_medium=display", None, "display"),
        (f"{SHOP}?utm_medium=banner", None, "display"),
        (f"{SHOP}?utm_medium=affiliate&utm_source=partner42", None, "affiliate"),
        (f"{SHOP}?gclid=Cj0KCQ", "https://www.google.com/", "paid_search"),
        (f"{SHOP}?msclkid=abc", "https://www.bing.com/", "paid_search"),
        (f"{SHOP}?utm_campaign=spring", None, "other_campaign"),
        (f"{SHOP}?utm_medium=carrier_pigeon", "https://www.google.com/", "other_campaign"),
        (SHOP, "https://www.google.com/", "organic_search"),
        (SHOP, "https://www.google.co.uk/search?q=kettle", "organic_search"),
        (SHOP, "https://duckduckgo.com/", "organic_search"),
        (SHOP, "https://www.bing.com/search?q=kettle", "organic_search"),
        (SHOP, "https://l.facebook.com/l.php?u=x", "social"),
        (SHOP, "https://t.co/xyz", "social"),
        (SHOP, "https://www.linkedin.com/feed/", "social"),
        (SHOP, "https://mail.google.com/mail/u/0/", "email"),
        (SHOP, "android-app://com.google.android.gm/", "email"),
        (SHOP, "https://blog.example.org/best-kettles", "referral"),
        (SHOP, None, "direct"),
        (SHOP, "", "direct"),
        (None, None, "direct"),
        (SHOP, "https://www.shop.example/cart", "direct"),  # own site: no source
        (SHOP, "https://checkout.shop.example/", "direct"),
    ],
)
def test_derive_channel(url: str | None, referrer: str | None, channel: str) -> None:
    assert enrich.derive_channel(url, referrer) == channel
    assert channel in enrich.CHANNELS


def test_split_url_reads_host_path_and_decoded_params() -> None:
    parts = enrich.split_url(
        "HTTPS://user@WWW.Shop.Example:8443/a/b?x=1&utm_campaign=Spring%20Sale+2&x=2#top"
    )
    assert parts.host == "www.shop.example"
    assert parts.path == "/a/b"
    assert dict(parts.params) == {"x": "1", "utm_campaign": "Spring Sale 2"}


def test_split_url_of_a_relative_url_has_no_host() -> None:
    parts = enrich.split_url("/kettles?utm_source=x")
    assert (parts.host, parts.path, dict(parts.params)) == ("", "/kettles", {"utm_source": "x"})


def test_percent_decoding_is_utf8() -> None:
    assert enrich.split_url("/?c=Fr%C3%BChling").params["c"] == "Frühling"


# --- user agents --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "device_class", "browser_family"),
    [
        (CHROME_ANDROID, "mobile", "chrome"),
        (FIREFOX_ANDROID, "mobile", "firefox"),
        (SAFARI_IPHONE, "mobile", "safari"),
        (SAFARI_IPAD, "tablet", "safari"),
        (CHROME_ANDROID_TABLET, "tablet", "chrome"),
        (EDGE_WINDOWS, "desktop", "edge"),
        (FIREFOX_LINUX, "desktop", "firefox"),
        ("not a browser", "other", "other"),
    ],
)
def test_real_browsers(user_agent: str, device_class: str, browser_family: str) -> None:
    assert enrich.classify_user_agent(user_agent) == enrich.UserAgentClass(
        device_class=device_class, browser_family=browser_family, is_bot=False
    )


@pytest.mark.parametrize("user_agent", [GOOGLEBOT, GOOGLEBOT_SMARTPHONE, BINGBOT, "curl/8.4.0"])
def test_crawlers_are_bots(user_agent: str) -> None:
    assert enrich.is_bot(user_agent)
    agent = enrich.classify_user_agent(user_agent)
    assert agent.is_bot
    assert agent.device_class == "bot"


@pytest.mark.parametrize("user_agent", [CHROME_ANDROID, SAFARI_IPHONE, EDGE_WINDOWS])
def test_browsers_are_not_bots(user_agent: str) -> None:
    assert not enrich.is_bot(user_agent)


def test_user_agents_are_classified_once() -> None:
    enrich.classify_user_agent(FIREFOX_LINUX)
    hits = enrich.classify_user_agent.cache_info().hits
    enrich.classify_user_agent(FIREFOX_LINUX)
    assert enrich.classify_user_agent.cache_info().hits == hits + 1


# --- the whole event ----------------------------------------------------------------------


def event(**fields: Any) -> events.Event:
    return dataclasses.replace(
        events.Event(event_id="e-1", ts_ms=0, visitor_id="v-1", type="page_view"), **fields
    )


def test_enrich_fills_what_is_absent() -> None:
    enriched = enrich.enrich(
        event(
            url=f"{SHOP}?utm_medium=email&utm_campaign=spring",
            user_agent=SAFARI_IPHONE,
        )
    )
    assert enriched.channel == "email"
    assert enriched.campaign == "spring"
    assert enriched.page == "/kettles"
    assert enriched.device_class == "mobile"
    assert enriched.browser_family == "safari"
    assert not enriched.bot


def test_enrich_keeps_what_the_event_says() -> None:
    own = event(
        url=f"{SHOP}?utm_medium=email&utm_campaign=spring",
        user_agent=SAFARI_IPHONE,
        channel="partner_tv",
        campaign="winter",
        page="kettle-detail",
        device_class="kiosk",
        browser_family="in_house",
    )
    enriched = enrich.enrich(own)
    assert enriched == own


def test_enrich_flags_bots_even_with_device_class_given() -> None:
    enriched = enrich.enrich(event(user_agent=GOOGLEBOT, device_class="desktop"))
    assert enriched.bot
    assert enriched.device_class == "desktop"


def test_enrich_of_a_bare_event_only_sets_direct() -> None:
    assert enrich.enrich(event()) == event(channel="direct")
