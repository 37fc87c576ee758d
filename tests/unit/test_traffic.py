"""The traffic generator: the same seed gives the same bytes, valid lines pass the contract,
each fault gets the dead-letter reason it stands for, and the traffic looks like a shop's
(funnels, bots, returning visitors, skewed campaigns, a daily rhythm).
"""

from __future__ import annotations

import collections
import dataclasses
import importlib.resources
import inspect
import json
from collections.abc import Iterator, Sequence

import jsonschema
import pytest

from clickagg import errors, sim
from clickagg.cli import generate_cmd
from clickagg.domain import enrich, events

pytestmark = pytest.mark.unit

# 2016-02-16T00:00:00Z, a Tuesday.
START_MS = 1_455_580_800_000
DAY_MS = 86_400_000
END_MS = START_MS + DAY_MS
# The pipeline's clock at the end of the span: every valid event is within its window.
NOW_MS = END_MS
SESSION_TIMEOUT_MS = 30 * 60_000
SMALL = sim.TrafficProfile(visitors=2_000)
# Every fault often enough to show up in a small sample.
EVERY_FAULT = sim.Faults(
    duplicate=0.02,
    late=0.02,
    out_of_order=0.03,
    malformed_json=0.004,
    wrong_type=0.004,
    missing_field=0.004,
    invalid_utf8=0.004,
    oversized=0.002,
    ts_far_past=0.004,
    ts_far_future=0.004,
    late_max_ms=90_000,
)


@dataclasses.dataclass(frozen=True)
class Parsed:
    emitted: sim.Emitted
    event: events.Event


def run(
    profile: sim.TrafficProfile = SMALL,
    faults: sim.Faults = EVERY_FAULT,
    *,
    seed: int = 11,
    start_ms: int = START_MS,
    duration_ms: int = DAY_MS,
) -> list[sim.Emitted]:
    return list(sim.generate(profile, faults, start_ms, duration_ms, seed))


def parse(emitted: sim.Emitted) -> events.Event:
    return events.parse_event(emitted.line, now_ms=NOW_MS)


@pytest.fixture(scope="module")
def faulty() -> list[sim.Emitted]:
    return run()


@pytest.fixture(scope="module")
def clean() -> list[sim.Emitted]:
    return run(faults=sim.Faults.none())


@pytest.fixture(scope="module")
def clean_events(clean: list[sim.Emitted]) -> list[Parsed]:
    return [Parsed(e, parse(e)) for e in clean]


@pytest.fixture(scope="module")
def human_visitors(clean_events: list[Parsed]) -> dict[str, list[events.Event]]:
    """Each human visitor's events in the order the pipeline sessionizes them."""
    by_visitor: dict[str, list[events.Event]] = collections.defaultdict(list)
    for parsed in clean_events:
        if not parsed.emitted.bot:
            by_visitor[parsed.event.visitor_id].append(parsed.event)
    for visitor_events in by_visitor.values():
        visitor_events.sort(key=lambda e: (e.ts_ms, e.event_id))
    return by_visitor


def visits(visitor_events: Sequence[events.Event]) -> Iterator[list[events.Event]]:
    """Split into visits as docs/semantics.md says: a gap over the session timeout."""
    visit: list[events.Event] = []
    for event in visitor_events:
        if visit and event.ts_ms - visit[-1].ts_ms > SESSION_TIMEOUT_MS:
            yield visit
            visit = []
        visit.append(event)
    if visit:
        yield visit


# --- determinism --------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes() -> None:
    small = sim.TrafficProfile(visitors=200)
    first = run(small, seed=5, duration_ms=6 * 3_600_000)
    second = run(small, seed=5, duration_ms=6 * 3_600_000)
    assert first == second
    assert len(first) > 1_000


def test_another_seed_gives_other_traffic() -> None:
    small = sim.TrafficProfile(visitors=200)
    first = run(small, seed=5, duration_ms=6 * 3_600_000)
    other = run(small, seed=6, duration_ms=6 * 3_600_000)
    assert [e.line for e in first] != [e.line for e in other]
    first_ids = {json.loads(e.line)["event_id"] for e in first if e.kind == sim.VALID}
    other_ids = {json.loads(e.line)["event_id"] for e in other if e.kind == sim.VALID}
    assert not first_ids & other_ids, "event ids must be unique across senders (seeds)"


def test_faults_damage_the_same_traffic(
    faulty: list[sim.Emitted], clean: list[sim.Emitted]
) -> None:
    clean_lines = {e.line for e in clean}
    accepted = [e for e in faulty if e.kind in sim.ACCEPTED_KINDS]
    assert all(e.line in clean_lines for e in accepted)
    # Every event is sent once (whole or damaged), and some once more.
    duplicates = sum(e.kind == sim.DUPLICATE for e in faulty)
    assert len(faulty) - duplicates == len(clean)


# --- the contract -------------------------------------------------------------------------


def test_every_accepted_line_passes_the_contract(faulty: list[sim.Emitted]) -> None:
    kinds = collections.Counter(e.kind for e in faulty)
    assert set(sim.ACCEPTED_KINDS) <= set(kinds)
    for emitted in faulty:
        if emitted.kind in sim.ACCEPTED_KINDS:
            event = parse(emitted)
            assert START_MS <= event.ts_ms < END_MS
            assert event.visitor_id == emitted.visitor_id


def test_every_fault_is_rejected_with_its_reason(faulty: list[sim.Emitted]) -> None:
    seen: collections.Counter[str] = collections.Counter()
    for emitted in faulty:
        if emitted.kind in sim.ACCEPTED_KINDS:
            continue
        with pytest.raises(errors.EventContractError) as rejected:
            parse(emitted)
        assert sim.REJECTED_REASONS[emitted.kind] in str(rejected.value), emitted.line[:300]
        seen[emitted.kind] += 1
    assert set(seen) == set(sim.REJECTED_REASONS)


def test_faults_are_rejected_under_a_replay_clock_too(faulty: list[sim.Emitted]) -> None:
    # A replay a week later with a 40-day past window still rejects the far times.
    window = events.TimeWindow(max_past_ms=40 * DAY_MS)
    for emitted in faulty:
        if emitted.kind in (sim.TS_FAR_PAST, sim.TS_FAR_FUTURE):
            with pytest.raises(errors.EventContractError, match=r"days? (before|after) now"):
                events.parse_event(emitted.line, now_ms=END_MS + 7 * DAY_MS, window=window)


def test_valid_lines_match_the_json_schema(clean: list[sim.Emitted]) -> None:
    source = importlib.resources.files("clickagg.domain").joinpath("event_schema.json")
    validator = jsonschema.Draft202012Validator(json.loads(source.read_text()))
    for emitted in clean[::50]:
        validator.validate(json.loads(emitted.line))


def test_oversized_lines_are_over_the_limit(faulty: list[sim.Emitted]) -> None:
    oversized = [e for e in faulty if e.kind == sim.OVERSIZED]
    assert oversized
    assert all(len(e.line) > events.MAX_LINE_BYTES for e in oversized)
    assert all(len(e.line) <= events.MAX_LINE_BYTES for e in faulty if e.kind != "oversized")


def test_kafka_key_is_the_parsed_visitor_id(faulty: list[sim.Emitted]) -> None:
    for emitted in faulty:
        try:
            record = json.loads(emitted.line)
        except (UnicodeDecodeError, ValueError):
            assert emitted.visitor_id is None
            continue
        found = record.get("visitor_id") if isinstance(record, dict) else None
        assert emitted.visitor_id == (found if isinstance(found, str) else None)


# --- arrival ------------------------------------------------------------------------------


def test_lines_come_in_arrival_order(faulty: list[sim.Emitted]) -> None:
    arrivals = [e.arrival_ms for e in faulty]
    assert arrivals == sorted(arrivals)


def test_delays_stay_within_the_faults_maximum(faulty: list[sim.Emitted]) -> None:
    delays = collections.defaultdict(list)
    for emitted in faulty:
        if emitted.kind in sim.ACCEPTED_KINDS:
            delays[emitted.kind].append(emitted.arrival_ms - parse(emitted).ts_ms)
    assert set(delays[sim.VALID]) == {0}
    assert min(delays[sim.OUT_OF_ORDER]) > 0
    assert max(delays[sim.OUT_OF_ORDER]) <= EVERY_FAULT.out_of_order_max_ms
    assert EVERY_FAULT.late_max_ms // 4 <= min(delays[sim.LATE])
    assert max(delays[sim.LATE]) <= EVERY_FAULT.late_max_ms
    assert max(delays[sim.DUPLICATE]) <= EVERY_FAULT.max_delay_ms


def test_duplicates_resend_an_earlier_line(faulty: list[sim.Emitted]) -> None:
    first_sent: dict[str, sim.Emitted] = {}
    duplicates = 0
    for emitted in faulty:
        if emitted.kind not in sim.ACCEPTED_KINDS:
            continue
        event_id = json.loads(emitted.line)["event_id"]
        if emitted.kind == sim.DUPLICATE:
            original = first_sent[event_id]
            assert original.line == emitted.line
            assert original.arrival_ms <= emitted.arrival_ms
            duplicates += 1
        else:
            assert event_id not in first_sent, "event ids are unique apart from resends"
            first_sent[event_id] = emitted
    assert duplicates > 100


def test_clean_traffic_is_all_valid(clean: list[sim.Emitted]) -> None:
    assert {e.kind for e in clean} == {sim.VALID}


# --- what the events say ------------------------------------------------------------------


def test_human_events_state_their_dimensions(clean_events: list[Parsed]) -> None:
    for parsed in clean_events:
        event = parsed.event
        assert event.country is not None
        assert len(event.country) == 2
        assert event.country.isupper()
        if parsed.emitted.bot:
            assert (event.channel, event.device_class, event.browser_family) == (None,) * 3
            continue
        assert event.channel in enrich.CHANNELS
        assert event.device_class in enrich.DEVICE_CLASSES
        assert event.device_class != enrich.BOT
        assert event.browser_family is not None
        assert event.browser_family == event.browser_family.lower()


def test_bots_are_flagged_and_browsers_are_not(clean_events: list[Parsed]) -> None:
    bots = [p for p in clean_events if p.emitted.bot]
    assert 0.02 < len(bots) / len(clean_events) < 0.3
    # User agents repeat: check each (agent, flag) pair once, as the pipeline's cache does.
    agents = {(p.event.user_agent, p.emitted.bot) for p in clean_events}
    assert len({agent for agent, _ in agents}) == len(agents), "an agent is bot or not"
    for agent, bot in agents:
        assert agent is not None
        assert enrich.is_bot(agent) == bot
        assert enrich.classify_user_agent(agent).is_bot == bot
    assert sum(bot for _, bot in agents) >= 8


@pytest.mark.parametrize("user_agent", [ua for ua, _ in sim.BOTS])
def test_every_crawler_agent_is_a_bot(user_agent: str) -> None:
    assert enrich.is_bot(user_agent)


@pytest.mark.parametrize(("user_agent", "device_class", "browser_family", "_weight"), sim.BROWSERS)
def test_browser_agents_say_what_the_events_state(
    user_agent: str, device_class: str, browser_family: str, _weight: float
) -> None:
    assert enrich.classify_user_agent(user_agent) == enrich.UserAgentClass(
        device_class=device_class, browser_family=browser_family, is_bot=False
    )


def test_landing_url_and_referrer_say_the_stated_channel(
    human_visitors: dict[str, list[events.Event]],
) -> None:
    channels: collections.Counter[str] = collections.Counter()
    for visitor_events in human_visitors.values():
        landing = visitor_events[0]
        assert landing.type == events.PAGE_VIEW
        assert enrich.derive_channel(landing.url, landing.referrer) == landing.channel
        derived = enrich.enrich(dataclasses.replace(landing, campaign=None, page=None))
        assert derived.campaign == landing.campaign
        assert derived.page == landing.page
        channels[str(landing.channel)] += 1
    assert set(channels) == set(enrich.CHANNELS)


def test_the_funnel_narrows(clean_events: list[Parsed]) -> None:
    types = collections.Counter(p.event.type for p in clean_events if not p.emitted.bot)
    assert types[events.ORDER] < types[events.ADD_TO_CART] < types[events.PRODUCT_VIEW]
    assert types[events.PRODUCT_VIEW] < types[events.PAGE_VIEW]
    assert 0 < types[events.CLICK] < types[events.IMPRESSION] * 0.1  # a realistic CTR
    assert 0 < types[sim.UNKNOWN_TYPE] < types[events.PAGE_VIEW] * 0.05
    orders = [p.event for p in clean_events if p.event.type == events.ORDER]
    assert all(o.revenue is not None and o.revenue > 0 and o.order_id for o in orders)
    assert len({o.order_id for o in orders}) == len(orders)
    revenues = sorted(o.revenue or 0.0 for o in orders)
    median = revenues[len(revenues) // 2]
    assert 0.6 * SMALL.revenue_median < median < 1.6 * SMALL.revenue_median
    assert revenues[-1] > 4 * median  # lognormal: a long tail of big baskets


def test_carts_are_abandoned_and_visits_bounce(
    human_visitors: dict[str, list[events.Event]],
) -> None:
    with_cart = abandoned = bounces = total = 0
    for visitor_events in human_visitors.values():
        for visit in visits(visitor_events):
            total += 1
            kinds = {e.type for e in visit}
            if events.ADD_TO_CART in kinds:
                with_cart += 1
                abandoned += events.ORDER not in kinds
            bounces += sum(e.type == events.PAGE_VIEW for e in visit) == 1
    assert 0.3 < abandoned / with_cart < 0.9
    assert 0.2 < bounces / total < 0.7


def test_visitors_come_back_after_the_session_timeout(
    human_visitors: dict[str, list[events.Event]],
) -> None:
    visit_counts = [sum(1 for _ in visits(v)) for v in human_visitors.values()]
    returning = sum(count > 1 for count in visit_counts)
    assert 0.2 < returning / len(visit_counts) < 0.6
    assert 1.3 < sum(visit_counts) / len(visit_counts) < 2.5


def test_campaigns_are_zipf_skewed(clean_events: list[Parsed]) -> None:
    campaigns = collections.Counter(
        p.event.campaign for p in clean_events if p.event.campaign is not None
    )
    top_share = campaigns.most_common(1)[0][1] / sum(campaigns.values())
    # A uniform spread over the campaigns would give each 1/len.
    assert top_share > 5 / len(campaigns)
    assert any(not name.isascii() for name in campaigns)  # utm values get percent-encoded


def test_pages_and_countries_are_skewed(clean_events: list[Parsed]) -> None:
    humans = [p.event for p in clean_events if not p.emitted.bot]
    countries = collections.Counter(e.country for e in humans).most_common()
    assert countries[0][0] == "DE"
    assert countries[0][1] > 2 * countries[2][1]
    pages = collections.Counter(e.page for e in humans if e.type == events.PRODUCT_VIEW)
    top_ten = sum(count for _, count in pages.most_common(10))
    assert top_ten / sum(pages.values()) > 0.2


def test_evenings_are_busier_than_nights(clean_events: list[Parsed]) -> None:
    # The shop's local time is UTC+1: 19-21 local is 18-20 UTC, 2-4 local is 1-3 UTC.
    hours = collections.Counter(p.event.ts_ms % DAY_MS // 3_600_000 for p in clean_events)
    assert hours[18] + hours[19] > 4 * (hours[1] + hours[2])


def test_ts_comes_in_several_spellings(clean: list[sim.Emitted]) -> None:
    spellings: collections.Counter[str] = collections.Counter()
    for emitted in clean:
        ts = json.loads(emitted.line)["ts"]
        if isinstance(ts, int):
            spellings["epoch ms"] += 1
        elif ts.endswith("Z"):
            spellings["utc"] += 1
        elif ts[-3] == ":":
            spellings["offset"] += 1
        else:
            spellings["compact offset"] += 1
    assert set(spellings) == {"epoch ms", "utc", "offset", "compact offset"}
    assert spellings["offset"] > spellings["epoch ms"] > spellings["compact offset"]


def test_events_stay_inside_the_span() -> None:
    start = START_MS + 3_600_000
    lines = run(
        sim.TrafficProfile(visitors=300), sim.Faults.none(), start_ms=start, duration_ms=3_600_000
    )
    times = [parse(e).ts_ms for e in lines]
    assert min(times) >= start
    assert max(times) < start + 3_600_000


# --- knobs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "knobs",
    [
        {"visitors": 0},
        {"bounce_rate": 1.5},
        {"daily_curve": (1.0,) * 23},
        {"visits_per_visitor": 0.5},
        {"channels": 10},
        {"page_zipf": 0},
    ],
)
def test_a_bad_profile_is_refused(knobs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="invalid traffic profile"):
        sim.TrafficProfile(**knobs)  # type: ignore[arg-type]


def test_bad_faults_are_refused() -> None:
    with pytest.raises(ValueError, match="add up to more than 1"):
        sim.Faults(late=0.6, out_of_order=0.6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        sim.Faults(duplicate=-0.1)


def test_few_channels_and_a_short_span_still_work() -> None:
    profile = sim.TrafficProfile(
        visitors=50, channels=2, campaigns=1, pages=20, product_categories=3, countries=1
    )
    lines = run(profile, sim.Faults.none(), duration_ms=600_000)
    parsed = [parse(e) for e in lines]
    assert parsed
    assert {e.channel for e in parsed} <= {enrich.ORGANIC_SEARCH, enrich.DIRECT, None}


def test_the_command_defaults_are_the_faults_defaults() -> None:
    defaults = sim.Faults()
    options = {
        name: parameter.default
        for name, parameter in inspect.signature(generate_cmd.generate).parameters.items()
    }
    assert options["duplicates"] == defaults.duplicate
    assert options["malformed"] == defaults.malformed_json
    assert options["far_past"] == defaults.ts_far_past
    assert options["far_future"] == defaults.ts_far_future
    for name in (
        "late",
        "out_of_order",
        "wrong_type",
        "missing_field",
        "invalid_utf8",
        "oversized",
    ):
        assert options[name] == getattr(defaults, name), name
    assert options["late_max"] == "2m"
    assert defaults.late_max_ms == 2 * 60_000
    assert sim.TrafficProfile().visitors == generate_cmd.VISITORS_PER_DAY
