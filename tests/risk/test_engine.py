"""Behaviour of the risk engine: signals, de-duplication of alerts, bad input, memory."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qinglang.policy import PolicyError, load_policy, parse_pack
from qinglang.risk import UNKNOWN, AccountFacts, Link, RiskEngine, RiskParams
from qinglang.risk.simulate import START

from .risk_testing import CN, Clock, engine, world

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _fanout(n: int, clock: Clock, sender: str = "man", text: str = "你好") -> list:  # type: ignore[type-arg]
    return [clock("message", sender, f"kid{i}", text) for i in range(n)]


def _kids(n: int, **more: int | None) -> dict[str, int | None]:
    return {f"kid{i}": 10 + i % 6 for i in range(n)} | more


# ----------------------------------------------------------------------------- signals


def test_fanout_counts_distinct_stranger_minors_in_the_window() -> None:
    d = world(man=40, **_kids(6))
    eng, clock = engine(d), Clock()
    eng.process_many(_fanout(6, clock))
    eng.process(clock("message", "man", "kid0", "你好"))  # the same child again: not distinct
    risk = eng.sender_risk("man")
    fanout = next(s for s in risk.signals if s.name == "fanout_minors")
    assert fanout.weight == pytest.approx(0.45)  # full weight at 5 minors
    assert "6 minors in 24 h" in fanout.explanation_en and "6名未成年人" in fanout.explanation_zh
    assert risk.score < 0.6  # fan-out of plain chat alone is not an alert
    # a day later the window is empty again
    later = eng.sender_risk("man", at=START + 2 * DAY)
    assert later.score == 0.0


def test_friends_guardians_and_approved_contacts_are_not_stranger_contact() -> None:
    d = world(man=40, **_kids(6))
    for i, link in enumerate([Link(mutual=True), Link(approved=True), Link(guardian=True)] * 2):
        d.relate("man", f"kid{i}", link)
    eng, clock = engine(d), Clock()
    eng.process_many(_fanout(6, clock))
    assert eng.sender_risk("man").score == 0.0


def test_minors_and_adults_are_not_fanned_out_to() -> None:
    d = world(teen=15, **{f"p{i}": 30 for i in range(6)}, **_kids(6))
    eng, clock = engine(d), Clock()
    eng.process_many(_fanout(6, clock, sender="teen"))  # a minor messaging minors
    eng.process_many([clock("message", "kid0", f"p{i}", "你好") for i in range(6)])
    assert eng.sender_risk("teen").score == 0.0
    assert eng.sender_risk("kid0").score == 0.0


def test_chain_shown_follow_message_needs_all_three_steps_in_order() -> None:
    d = world(man=35, a=10, b=10, c=10)
    eng, clock = engine(d), Clock()
    eng.process(clock("impression", "man", owner="a"))
    eng.process(clock("follow", "man", "a"))
    eng.process(clock("message", "man", "a", "你好"))  # the chain for a
    eng.process(clock("follow", "man", "b"))  # never shown b
    eng.process(clock("message", "man", "b", "你好"))
    eng.process(clock("impression", "man", owner="c"))
    eng.process(clock("message", "man", "c", "你好"))  # shown c, never followed
    chain = next(s for s in eng.sender_risk("man").signals if s.name.startswith("chain"))
    assert chain.weight == pytest.approx(0.15)
    assert chain.event_ids == ("e00003",)


def test_chain_outside_its_window_does_not_count() -> None:
    d = world(man=35, a=10)
    eng, clock = engine(d), Clock()
    eng.process(clock("impression", "man", owner="a"))
    eng.process(clock("follow", "man", "a"))
    eng.process(clock("message", "man", "a", "你好", step=4 * DAY))
    assert not any(s.name.startswith("chain") for s in eng.sender_risk("man").signals)


def test_restricted_sender_attempting_contact_is_a_strong_signal() -> None:
    d = world(man=40, kid=9, kid2=11)
    d.restrict("man")
    eng, clock = engine(d), Clock()
    first = eng.process(clock("message", "man", "kid", "在吗"))
    assert [a.level for a in first] == ["review"]
    assert first[0].signals[0].name == "restricted_attempt"
    second = eng.process(clock("follow", "man", "kid2"))
    assert [a.level for a in second] == ["restrict"]


def test_blocks_and_reports_by_minors_count_against_the_target() -> None:
    d = world(man=40, **_kids(4))
    eng, clock = engine(d), Clock()
    eng.process(clock("block", "kid0", "man"))
    eng.process(clock("report", "kid1", "man"))
    eng.process(clock("report", "p0", "man"))  # unknown reporter: not a minor, ignored
    names = {s.name: s.weight for s in eng.sender_risk("man").signals}
    assert names == {
        "blocked_by_minors": pytest.approx(0.15),
        "reported_by_minors": pytest.approx(0.3),
    }


def test_gifts_to_a_minor_count_as_contact_and_as_a_cue() -> None:
    d = world(man=40, **_kids(3))
    eng, clock = engine(d), Clock()
    eng.process_many([clock("gift", "man", f"kid{i}", amount=5000) for i in range(3)])
    risk = eng.sender_risk("man")
    assert {s.name for s in risk.signals} >= {"fanout_minors", "conversation"}
    conv = eng.conversation_risk("man", "kid0")
    assert conv.signals[0].name == "cue.gifts" and "50.00" in (conv.signals[0].excerpt or "")


def test_a_single_grooming_conversation_with_a_known_child_alerts() -> None:
    d = world(man=33, girl=11)
    eng, clock = engine(d), Clock()
    alerts = []
    for text in ("你好可爱", "你爸妈在家吗？", "别告诉爸妈我们聊天", "加我薇信吧", "发张自拍给我"):
        alerts += eng.process(clock("message", "man", "girl", text))
    assert [a.level for a in alerts] == ["review", "restrict"]
    assert alerts[0].event_ids[0] == "e00003"  # raised at the request for secrecy
    conv = eng.conversation_risk("man", "girl")
    names = [s.name for s in conv.signals]
    assert "stage.progression" in names and "cue.secrecy" in names
    stage = next(s for s in conv.signals if s.name == "stage.progression")
    assert "trust → isolation → exclusivity" in stage.explanation_en
    assert "建立信任 → 隔离 → 转移平台" in stage.explanation_zh


def test_cues_from_a_mutual_friend_count_with_a_lower_weight() -> None:
    texts = ("你好可爱", "别告诉爸妈", "加我微信")
    scores = {}
    for relation in ("stranger", "mutual", "approved"):
        d = world(man=33, girl=12)
        if relation == "mutual":
            d.relate("man", "girl", Link(mutual=True))
        if relation == "approved":
            d.relate("man", "girl", Link(approved=True))
        eng, clock = engine(d), Clock()
        for t in texts:
            eng.process(clock("message", "man", "girl", t))
        scores[relation] = eng.conversation_risk("man", "girl").score
    assert scores["stranger"] > scores["mutual"] > scores["approved"] > 0


def test_unknown_recipient_who_states_a_minor_age_is_treated_as_a_minor() -> None:
    d = world(man=33)  # "girl" is not registered: UNKNOWN
    eng, clock = engine(d), Clock()
    eng.process(clock("message", "man", "girl", "加我薇信，别告诉别人"))
    before = eng.conversation_risk("man", "girl").score
    eng.process(clock("message", "girl", "man", "我才12岁"))
    after = eng.conversation_risk("man", "girl").score
    assert after > before * 2
    assert "girl" in eng._minors(eng._accounts["man"], eng._accounts["man"].now)


def test_stated_ages_far_apart_add_an_age_gap_signal() -> None:
    d = world()
    eng, clock = engine(d), Clock()
    eng.process(clock("message", "man", "girl", "我35岁，你呢？你好可爱"))
    eng.process(clock("message", "girl", "man", "我１３岁"))
    names = {s.name for s in eng.conversation_risk("man", "girl").signals}
    assert "age_gap" in names


# ----------------------------------------------------------------------------- alerts


def test_one_alert_per_level_until_acknowledged() -> None:
    d = world(man=40, **_kids(8))
    d.restrict("man")
    eng, clock = engine(d), Clock()
    alerts = eng.process_many(_fanout(8, clock))
    assert [a.level for a in alerts] == ["review", "restrict"]
    assert eng.process(clock("message", "man", "kid1", "hi")) == []
    eng.acknowledge("man")
    # the same risk again does not re-alert; more evidence does
    assert eng.process(clock("message", "man", "kid1", "hi")) != []


def test_reset_forgets_the_sender() -> None:
    d = world(man=40, kid=9)
    d.restrict("man")
    eng, clock = engine(d), Clock()
    assert eng.process(clock("message", "man", "kid", "hi"))
    eng.reset("man")
    assert eng.sender_risk("man").score == 0.0
    assert eng.process(clock("message", "man", "kid", "hi"))  # raised afresh


def test_alert_ids_are_deterministic_and_scores_match_the_risk() -> None:
    d = world(man=40, kid=9)
    d.restrict("man")
    streams = []
    for _ in range(2):
        eng, clock = engine(d), Clock()
        alerts = eng.process_many([clock("message", "man", "kid", "hi")])
        streams.append(alerts)
        assert alerts[0].score == pytest.approx(eng.sender_risk("man").score)
    assert streams[0] == streams[1]
    assert streams[0][0].id.startswith("risk-")


def test_thresholds_come_from_the_pack() -> None:
    overlay = (
        '[pack]\nid = "strict"\nversion = "1"\njurisdiction = "CN"\ntimezone = "Asia/Shanghai"\n'
        'title_zh = "严"\ntitle_en = "Strict"\nbase = "cn"\n'
        '[[overrides]]\nid = "cn.risk.alert.review"\nvalue = 0.4\n'
    )
    strict = load_policy("cn", overlay)
    d = world(man=40, **_kids(6))
    clock = Clock()
    events = _fanout(6, clock)
    assert RiskEngine(CN, d).process_many(events) == []
    alerts = RiskEngine(strict, d).process_many(events)
    assert [a.level for a in alerts] == ["review"]


def test_a_pack_without_risk_rules_is_a_clear_error() -> None:
    text = "rules = []\n" + (
        '[pack]\nid = "x"\nversion = "1"\njurisdiction = "CN"\ntimezone = "Asia/Shanghai"\n'
        'title_zh = "x"\ntitle_en = "x"\n'
    )
    with pytest.raises(PolicyError, match=r"risk\."):
        RiskParams.from_policy(parse_pack(text))


def test_restrict_threshold_below_review_is_rejected() -> None:
    overlay = (
        '[pack]\nid = "odd"\nversion = "1"\njurisdiction = "CN"\ntimezone = "Asia/Shanghai"\n'
        'title_zh = "x"\ntitle_en = "x"\nbase = "cn"\n'
        '[[overrides]]\nid = "cn.risk.alert.restrict"\nvalue = 0.5\n'
    )
    with pytest.raises(PolicyError) as exc:
        RiskParams.from_policy(load_policy("cn", overlay))
    assert exc.value.rule_id == "cn.risk.alert.restrict"


# ----------------------------------------------------------------------------- bad input


def test_unknown_accounts_are_unknown_age_senders_and_not_known_minors() -> None:
    d = world(**_kids(5))
    eng, clock = engine(d), Clock()
    eng.process_many(_fanout(5, clock, sender="ghost"))  # an account the platform never registered
    assert any(s.name == "fanout_minors" for s in eng.sender_risk("ghost").signals)
    assert d.facts("ghost") == UNKNOWN
    eng.process_many([clock("message", "kid0", f"ghost{i}", "hi") for i in range(5)])
    assert eng.sender_risk("kid0").score == 0.0  # unknown recipients are not known minors


def test_duplicates_are_ignored_and_counted() -> None:
    d = world(man=40, **_kids(5))
    eng, clock = engine(d), Clock()
    events = _fanout(5, clock)
    eng.process_many(events)
    before = eng.sender_risk("man")
    assert eng.process_many(events + events[:2]) == []
    assert eng.sender_risk("man") == before
    s = eng.stats
    assert (s.received, s.applied, s.duplicates, s.stale) == (12, 5, 7, 0)


def test_duplicate_memory_is_bounded() -> None:
    d = world(man=40, kid=9)
    eng = RiskEngine(CN, d, recent_ids=3)
    clock = Clock()
    events = [clock("message", "man", "kid", "hi") for _ in range(5)]
    eng.process_many(events)
    eng.process(events[0])  # forgotten: applied again (the shell dedups durably)
    eng.process(events[4])  # remembered
    assert eng.stats.duplicates == 1


def test_late_events_count_in_the_windows_that_cover_their_time() -> None:
    d = world(man=35, a=10)
    eng, clock = engine(d), Clock()
    shown = clock("impression", "man", owner="a")
    follow = clock("follow", "man", "a")
    message = clock("message", "man", "a", "你好")
    eng.process_many([shown, message, follow])  # the follow arrives after the message
    # the late follow is counted, but the chain needs the follow before the message
    assert not any(s.name.startswith("chain") for s in eng.sender_risk("man").signals)
    eng2 = engine(d)
    eng2.process_many([message, shown, follow, clock("message", "man", "a", "在吗")])
    assert any(s.name.startswith("chain") for s in eng2.sender_risk("man").signals)


def test_late_message_counts_in_the_fanout() -> None:
    d = world(man=40, **_kids(5))
    eng, clock = engine(d), Clock()
    events = _fanout(5, clock)
    eng.process_many([*events[1:], events[0]])
    fanout = next(s for s in eng.sender_risk("man").signals if s.name == "fanout_minors")
    assert "5 minors" in fanout.explanation_en


def test_events_older_than_the_longest_window_are_stale_not_lost() -> None:
    d = world(man=40, kid=9)
    eng, clock = engine(d), Clock()
    eng.process(clock("message", "man", "kid", "你好"))
    eng.process(clock("message", "x", "y", "hi", at=START + 40 * HOUR))
    for _ in range(24 * 40):  # the clock moves on, an hour per event at most
        eng.process(clock("message", "x", "y", "hi", step=HOUR))
    old = clock("message", "man", "kid", "你几岁", at=START)
    assert eng.process(old) == []
    s = eng.stats
    assert s.stale == 1 and s.received == s.applied + s.duplicates + s.stale


def test_one_wild_timestamp_cannot_expire_everyone() -> None:
    d = world(man=40, **_kids(5))
    eng, clock = engine(d), Clock()
    eng.process_many(_fanout(4, clock))
    eng.process(clock("message", "x", "y", "hi", at=START + timedelta(days=3650)))
    assert eng.clock is not None and eng.clock < START + 2 * HOUR
    eng.process(clock("message", "man", "kid4", "hi"))
    fanout = next(s for s in eng.sender_risk("man").signals if s.name == "fanout_minors")
    assert "5 minors" in fanout.explanation_en


def test_state_is_evicted_after_the_longest_window() -> None:
    d = world(man=40, **_kids(5))
    eng, clock = engine(d), Clock()
    eng.process_many(_fanout(5, clock, text="你几岁了？住哪里？"))
    assert eng.stats.senders == 1 and eng.stats.conversations == 5
    horizon = eng.horizon
    assert horizon == timedelta(days=30)
    for _ in range(int(horizon / HOUR) + 30):
        eng.process(clock("message", "x", "y", "hi", step=HOUR))
    assert eng.stats.senders == 0 and eng.stats.conversations == 0
    assert eng.sender_risk("man").score == 0.0


def test_adult_facts_may_change_between_events() -> None:
    d = world(man=40, kid=9)
    eng, clock = engine(d), Clock()
    eng.process(clock("message", "man", "kid", "hi"))
    assert eng.sender_risk("man").score == 0.0
    d.set_facts("man", AccountFacts(age=40, is_minor=False, restricted=True))
    assert [a.level for a in eng.process(clock("message", "man", "kid", "hi"))] == ["review"]


def test_impressions_and_unfollows_raise_nothing_by_themselves() -> None:
    d = world(man=40, **_kids(30))
    eng, clock = engine(d), Clock()
    for i in range(30):
        assert eng.process(clock("impression", "man", owner=f"kid{i}")) == []
        assert eng.process(clock("unfollow", "man", f"kid{i}")) == []
    assert eng.sender_risk("man").score == 0.0
