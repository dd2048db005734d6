"""metrics.md section 2, rule by rule, and order independence as a property."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.profiles import BUILTIN_PROFILES, WaitRule
from monitor.core.waits import ThreadEvent, Wait, derive_waits

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
STRICT = WaitRule()
AUTO_CLOSES = WaitRule(automated_closes_wait=True)
BADGE = BUILTIN_PROFILES["meta-badge"].rule


def ev(message_id: str, role: str, minutes: float, rating: int | None = None) -> ThreadEvent:
    """An event at T0 + minutes."""
    return ThreadEvent(T0 + timedelta(minutes=minutes), role, message_id, rating)


def spans(waits: list[Wait]) -> list[tuple[str, str | None, float | None]]:
    """(opened_by, closed_by, response seconds) of each wait."""
    return [(w.opened_by, w.closed_by, w.response_seconds) for w in waits]


def test_rule1_customer_opens_and_rule3_business_closes() -> None:
    """A customer turn opens a wait; the next business turn closes it: 5 min = 300 s."""
    assert spans(derive_waits([ev("a", "customer", 0), ev("b", "business", 5)])) == [
        ("a", "b", 300.0)
    ]


def test_rule2_more_customer_turns_keep_the_opening_time() -> None:
    """Three customer turns then a reply: one wait, from the first turn (10 min)."""
    events = [
        ev("a", "customer", 0),
        ev("b", "customer", 4),
        ev("c", "customer", 8),
        ev("d", "business", 10),
    ]
    assert spans(derive_waits(events)) == [("a", "d", 600.0)]


def test_rule4_automated_neither_opens_nor_closes_unless_switched_on() -> None:
    """An instant reply does not answer; with automated_closes_wait it does."""
    events = [ev("a", "customer", 0), ev("bot", "automated", 0.1), ev("b", "business", 7)]
    assert spans(derive_waits(events)) == [("a", "b", 420.0)]
    assert spans(derive_waits(events, AUTO_CLOSES)) == [("a", "bot", 6.0)]
    # An automated message alone opens nothing.
    assert derive_waits([ev("bot", "automated", 0)]) == []


def test_rule5_business_without_open_wait_changes_nothing() -> None:
    """A business post before any customer turn, or a second reply, is not a wait."""
    events = [
        ev("x", "business", 0),
        ev("a", "customer", 1),
        ev("b", "business", 2),
        ev("c", "business", 3),
    ]
    assert spans(derive_waits(events)) == [("a", "b", 60.0)]


def test_rule6_open_wait_is_unanswered() -> None:
    """A last customer turn without reply is an open wait with no close."""
    [wait] = derive_waits([ev("a", "business", 0), ev("b", "customer", 5)])
    assert wait.closed_at is None and wait.response_seconds is None
    assert wait.opened_at == T0 + timedelta(minutes=5)


def test_ties_customer_first_then_numeric_ids() -> None:
    """At equal times the customer comes first (0 s reply); digit ids sort numerically."""
    same = [ev("r", "business", 0), ev("q", "customer", 0)]
    assert spans(derive_waits(same)) == [("q", "r", 0.0)]
    # "9" < "10" numerically: the wait opens with 9 (as a string "10" < "9").
    events = [ev("10", "customer", 0), ev("9", "customer", 0), ev("11", "business", 1)]
    assert spans(derive_waits(events))[0][0] == "9"


def test_rule8_and_9_duplicates_count_once_and_earliest_time_wins() -> None:
    """A re-delivered reply with a later time changes nothing; an earlier one wins."""
    base = [ev("a", "customer", 0), ev("b", "business", 30)]
    later = [*base, ev("b", "business", 90)]
    earlier = [*base, ev("b", "business", 20)]
    assert spans(derive_waits(later)) == [("a", "b", 1800.0)]
    assert spans(derive_waits(earlier)) == [("a", "b", 1200.0)]
    assert spans(derive_waits([*base, *base])) == spans(derive_waits(base))


def test_review_tier_from_rating() -> None:
    """A review rated 1-2 opens a negative-tier wait; 3-5 are standard."""
    assert derive_waits([ev("r", "customer", 0, rating=2)])[0].tier == "negative"
    assert derive_waits([ev("r", "customer", 0, rating=3)])[0].tier == "standard"


def test_meta_badge_counts_only_first_message_after_24h_silence() -> None:
    """Under meta-badge a turn 23 h after the last reply opens nothing; 24 h does."""
    events = [
        ev("a", "customer", 0),
        ev("b", "business", 5),
        ev("c", "customer", 5 + 23 * 60),
        ev("d", "business", 5 + 23 * 60 + 1),
        # 24 h after d exactly: silence on both sides for 24 h, so this opens a wait.
        ev("e", "customer", 5 + 47 * 60 + 1),
        ev("f", "business", 5 + 47 * 60 + 3),
    ]
    assert [w.opened_by for w in derive_waits(events)] == ["a", "c", "e"]
    assert [(w.opened_by, w.closed_by) for w in derive_waits(events, BADGE)] == [
        ("a", "b"),
        ("e", "f"),
    ]


def test_meta_badge_automated_replies_never_close() -> None:
    """An instant reply never answers under meta-badge, whatever the switch says."""
    events = [ev("a", "customer", 0), ev("bot", "automated", 0), ev("b", "business", 9)]
    rule = WaitRule(counting="first_after_silence", automated_closes_wait=True)
    assert spans(derive_waits(events, rule)) == [("a", "b", 540.0)]


def test_meta_badge_automated_messages_do_not_break_the_silence() -> None:
    """An away message 23 h after the last reply leaves the 24 h of silence whole."""
    events = [
        ev("a", "customer", 0),
        ev("b", "business", 5),
        ev("away", "automated", 5 + 23 * 60),
        # Exactly 24 h after b: the away message in between is not a break.
        ev("c", "customer", 5 + 24 * 60),
        ev("d", "business", 5 + 24 * 60 + 2),
    ]
    switched = WaitRule(counting="first_after_silence", automated_closes_wait=True)
    for rule in (BADGE, switched):
        assert [(w.opened_by, w.closed_by) for w in derive_waits(events, rule)] == [
            ("a", "b"),
            ("c", "d"),
        ]
    # One second short of 24 h opens nothing.
    early = [*events[:3], ev("c", "customer", 5 + 24 * 60 - 1 / 60), events[4]]
    assert [w.opened_by for w in derive_waits(early, BADGE)] == ["a"]


def test_meta_badge_a_customer_turn_breaks_the_silence_too() -> None:
    """Silence is on both sides: a customer's own message 2 h earlier restarts the 24 h."""
    events = [
        ev("a", "customer", 0),
        ev("b", "business", 5),
        ev("c", "customer", 5 + 22 * 60),  # 22 h later: opens nothing
        ev("d", "customer", 5 + 24 * 60),  # 24 h after b but 2 h after c
        ev("e", "business", 5 + 24 * 60 + 1),
    ]
    assert [w.opened_by for w in derive_waits(events, BADGE)] == ["a"]


# -- properties -----------------------------------------------------------------------------

ROLES = st.sampled_from(["customer", "customer", "business", "automated"])
IDS = st.one_of(st.integers(0, 40).map(str), st.sampled_from(["m_a", "m_b", "x9", "10a"]))


@st.composite
def threads(draw: st.DrawFn) -> list[ThreadEvent]:
    """A thread of up to 25 events with many equal times and mixed id styles."""
    ids = draw(st.lists(IDS, min_size=1, max_size=25, unique=True))
    return [
        ThreadEvent(T0 + timedelta(minutes=draw(st.integers(0, 12)) * 5), draw(ROLES), i)
        for i in ids
    ]


@settings(max_examples=300, deadline=None)
@given(thread=threads(), data=st.data(), rule=st.sampled_from([STRICT, AUTO_CLOSES, BADGE]))
def test_any_arrival_order_and_redelivery_gives_the_same_waits(
    thread: list[ThreadEvent], data: st.DataObject, rule: WaitRule
) -> None:
    """Permuting arrivals and re-delivering copies (same or later time) changes nothing."""
    expected = derive_waits(thread, rule)
    shuffled = data.draw(st.permutations(thread))
    copies = data.draw(st.lists(st.sampled_from(thread), max_size=10))
    later = [
        c._replace(created_at=c.created_at + timedelta(minutes=data.draw(st.integers(0, 60))))
        for c in copies
    ]
    assert derive_waits([*shuffled, *later], rule) == expected


@settings(max_examples=300, deadline=None)
@given(thread=threads(), rule=st.sampled_from([STRICT, AUTO_CLOSES, BADGE]))
def test_wait_invariants(thread: list[ThreadEvent], rule: WaitRule) -> None:
    """Waits do not overlap, responses equal close - open, only the last may be open."""
    waits = derive_waits(thread, rule)
    for wait in waits:
        if wait.closed_at is not None:
            assert wait.response_seconds == (wait.closed_at - wait.opened_at).total_seconds()
            assert wait.response_seconds >= 0
    for before, after in pairwise(waits):
        assert before.closed_at is not None
        assert before.closed_at <= after.opened_at
    customers = [e for e in thread if e.author_role == "customer"]
    assert len(waits) <= len(customers)
    if rule == STRICT and customers:
        assert waits, "a thread with a customer turn has at least one wait"
