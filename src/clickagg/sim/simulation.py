"""The generator: plans every visit, plays them in start order, damages lines by `Faults`."""

from __future__ import annotations

import bisect
import heapq
import json
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from clickagg.domain import enrich, events
from clickagg.sim.catalogue import (
    BOT_COUNTRY,
    BOTS,
    BROWSERS,
    CAMPAIGN_REFERRERS,
    CAMPAIGN_TAGS,
    PAID_SOCIAL_SHARE,
    SEARCH_REFERRERS,
    SITE_REFERRERS,
    SOCIAL_REFERRERS,
    UNKNOWN_TYPE,
    Campaign,
    Page,
    build_catalogue,
)
from clickagg.sim.clock import (
    EPOCH_STYLE,
    ISO_STYLE_WEIGHTS,
    UTC_STYLE,
    Clock,
    Seasonality,
    iso,
)
from clickagg.sim.draws import geometric, running_sum, weighted_index
from clickagg.sim.kinds import (
    ACCEPTED_KINDS,
    DUPLICATE,
    FAR_FUTURE_MIN_MS,
    FAR_PAST_MIN_MS,
    HOUR_MS,
    INVALID_UTF8,
    LATE,
    MALFORMED_JSON,
    MINUTE_MS,
    MISSING_FIELD,
    OVERSIZED,
    SECOND_MS,
    TS_FAR_FUTURE,
    TS_FAR_PAST,
    VALID,
    WRONG_TYPE,
    Emitted,
)
from clickagg.sim.profile import Faults, TrafficProfile

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


@dataclass(frozen=True)
class _Visit:
    """What stays the same for every event of one visit."""

    visitor_id: str
    clock: Clock
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
        self,
        profile: TrafficProfile,
        faults: Faults,
        start_ms: int,
        duration_ms: int,
        seed: int,
    ) -> None:
        self._profile = profile
        self._faults = faults
        self._end_ms = start_ms + duration_ms
        self._rng = random.Random(seed)
        self._fault_rng = random.Random(f"faults-{seed}")
        self._catalogue = build_catalogue(profile)
        self._seasons = Seasonality(profile, start_ms, self._end_ms)
        self._run_id = f"{self._rng.getrandbits(32):08x}"
        self._visitor_salt = self._rng.getrandbits(48)
        self._event_seq = 0
        self._order_seq = 0
        self._heap_seq = 0
        self._pending: list[tuple[int, int, Emitted]] = []
        self._timeout_ms = profile.session_timeout_ms
        self._gap_mu = math.log(profile.gap_median_seconds * SECOND_MS)
        self._revenue_mu = math.log(profile.revenue_median)
        rates = faults.exclusive_rates()
        self._fault_kinds = tuple(rates)
        self._fault_cumulative = list(running_sum(rates.values()))
        self._fault_total = self._fault_cumulative[-1]
        # Per visitor: tracker clock and device, fixed at first sight; free_at keeps a
        # visitor's visits apart by more than the session timeout.
        self._visitors: list[tuple[Clock, int, int] | None] = []
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
                count = 2 + geometric(rng, extra_mean)
            for _ in range(count):
                plan.append((self._seasons.draw(rng), len(plan), visitor))
        human_visits = len(plan)
        bot_visits = (
            round(human_visits * profile.bot_share / (1 - profile.bot_share))
            if profile.bot_share < 1
            else human_visits
        )
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

    def _human(self, visitor: int) -> tuple[Clock, int, int]:
        known = self._visitors[visitor]
        if known is not None:
            return known
        rng, catalogue = self._rng, self._catalogue
        country = catalogue.country_pick.pick(rng)
        if rng.random() < self._profile.epoch_ts_share:
            style = EPOCH_STYLE
        else:
            style = weighted_index(rng, ISO_STYLE_WEIGHTS)
        clock = Clock(style, catalogue.countries[country][1])
        known = (clock, catalogue.browser_pick.pick(rng), country)
        self._visitors[visitor] = known
        return known

    def _human_visit(self, visitor: int, start: int) -> int:
        """Play one visit from `start`; return its last event time."""
        profile, rng, catalogue = self._profile, self._rng, self._catalogue
        clock, browser, country = self._human(visitor)
        user_agent, device_class, browser_family, _ = BROWSERS[browser]
        channel = catalogue.channels[catalogue.channel_pick.pick(rng)]
        campaign: Campaign | None = None
        if channel in catalogue.campaigns_by_channel and (
            channel != enrich.SOCIAL or rng.random() < PAID_SOCIAL_SHARE
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

        pages = (
            1
            if rng.random() < profile.bounce_rate
            else 2 + geometric(rng, profile.pages_per_visit - 2)
        )
        ts = start
        cart_category: str | None = None
        clicked_offer: str | None = None
        chosen_next: Page | None = None
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
                for _ in range(1 + geometric(rng, profile.impressions_per_page - 1)):
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
        steps = (
            [catalogue.cart, catalogue.checkout]
            if ordering
            else ([catalogue.cart] if rng.random() < 0.5 else [])
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
                visit,
                ts,
                events.ORDER,
                catalogue.checkout.path,
                catalogue.checkout.url,
                category=cart_category,
                offer=clicked_offer,
                order_id=f"o-{self._run_id}-{self._order_seq}",
                revenue=revenue,
            )
            ts += rng.randint(500, 3000)
            thanks = catalogue.thank_you
            emit(visit, ts, events.PAGE_VIEW, thanks.path, thanks.url, catalogue.checkout.url)
        return ts

    def _landing(self, channel: str, campaign: Campaign | None) -> tuple[Page, str, str | None]:
        """Landing page, url and referrer that say `channel` to enrich.derive_channel too."""
        rng, catalogue = self._rng, self._catalogue
        if campaign is not None:
            source, medium, click_id = CAMPAIGN_TAGS[channel]
            url = (
                f"{campaign.landing.url}?utm_source={source}&utm_medium={medium}"
                f"&utm_campaign={campaign.quoted}"
            )
            if click_id:
                url += f"&{click_id}={rng.getrandbits(64):016x}"
            return campaign.landing, url, CAMPAIGN_REFERRERS[channel] or None
        if channel == enrich.DIRECT:
            page = catalogue.home if rng.random() < 0.5 else catalogue.any_page(rng)
            # Browsers send an empty referrer header; some trackers leave it out.
            return page, page.url, "" if rng.random() < 0.5 else None
        page = catalogue.any_page(rng)
        referrers = {
            enrich.ORGANIC_SEARCH: SEARCH_REFERRERS,
            enrich.SOCIAL: SOCIAL_REFERRERS,
        }.get(channel, SITE_REFERRERS)
        return page, page.url, referrers[int(rng.random() * len(referrers))]

    def _next_page(self, current: Page) -> Page:
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
            "visitor_id": visitor_id,
            "country": BOT_COUNTRY,
            "user_agent": user_agent,
        }
        # Crawlers log server-side: UTC, milliseconds.
        visit = _Visit(
            visitor_id, Clock(UTC_STYLE, 0), _encode(visit_fields)[1:-1], visit_fields, bot=True
        )
        ts, last = start, start
        for _ in range(1 + geometric(rng, self._profile.bot_pages_per_visit - 1)):
            if ts >= self._end_ms:
                break
            page = (
                catalogue.products[int(rng.random() * len(catalogue.products))]
                if rng.random() < 0.7
                else catalogue.others[int(rng.random() * len(catalogue.others))]
            )
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
        return max(500, min(gap, self._timeout_ms - 60 * SECOND_MS))

    def _gap_beyond_timeout(self) -> int:
        return self._timeout_ms + self._rng.randint(MINUTE_MS, 3 * HOUR_MS)

    # ------------------------------------------------------------ lines

    def _emit(
        self,
        visit: _Visit,
        ts: int,
        event_type: str,
        page: str,
        url: str,
        referrer: str | None = None,
        *,
        category: str | None = None,
        offer: str | None = None,
        order_id: str | None = None,
        revenue: float | None = None,
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
            index = min(
                bisect.bisect_right(self._fault_cumulative, draw), len(self._fault_kinds) - 1
            )
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
                text = text[: rng.randint(1, len(text) - 1)]
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
            record["ts"] = ts // SECOND_MS if rng.random() < 0.5 else iso(past)
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
