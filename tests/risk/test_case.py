"""The case that started qinglang, as tests of the risk engine.

An adult is shown videos of children, follows 30 of them in a day and messages 12 with questions
about their age and where they live: an alert is raised before the fifth child is messaged. A
teacher or relative whose contact the guardians approved, doing the same, raises none.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from qinglang.risk import AccountFacts, RiskEngine
from qinglang.risk.simulate import case_scenario, ordinary_day, trusted_scenario

from .risk_testing import CN


def _first_alerts(sc_seed: int = 0) -> tuple[list[tuple[int, str, str, str]], RiskEngine]:
    sc = case_scenario(sc_seed)
    eng = RiskEngine(CN, sc.directory)
    raised = []
    for e in sc.events:
        for a in eng.process(e):
            assert a.sender == sc.sender
            k = sc.messaged.index(e.target) + 1 if e.target in sc.messaged else 0
            raised.append((k, e.kind, e.id, a.level))
    return raised, eng


def test_case_alerts_before_the_fifth_child_is_messaged() -> None:
    sc = case_scenario()
    eng = RiskEngine(CN, sc.directory)
    first = None
    messaged: list[str] = []
    for e in sc.events:
        if e.kind == "message" and e.target not in messaged:
            messaged.append(e.target or "")
        alerts = eng.process(e)
        if alerts and first is None:
            first = (e, alerts[0], len(messaged))
    assert first is not None
    event, alert, children_messaged = first
    # The alert comes from a message, to the 2nd child messaged: the first message to her.
    assert event.kind == "message"
    assert children_messaged == 2 < 5
    assert event.target == sc.messaged[1]
    assert event.text == "你好呀，看了你的视频，跳得真棒"
    assert alert.level == "review"
    assert alert.rule_id == "cn.risk.alert.review"
    assert alert.sender == sc.sender
    assert alert.score >= CN.require("risk.alert.review_threshold").value  # type: ignore[operator]
    names = {s.name for s in alert.signals}
    assert {"fanout_follows", "chain_shown_follow_message", "conversation"} <= names
    assert {"cue.asks_age", "cue.asks_location"} <= names
    assert set(sc.messaged[:2]) <= set(alert.minors)
    assert event.id in alert.event_ids
    for s in alert.signals:
        assert s.explanation_en and any("\u4e00" <= c <= "\u9fff" for c in s.explanation_zh)
    excerpts = {s.excerpt for s in alert.signals if s.excerpt}
    assert "小妹妹你今年几岁啦？" in excerpts


def test_case_escalates_to_restriction_and_each_level_is_raised_once() -> None:
    raised, eng = _first_alerts()
    assert [(k, level) for k, _, _, level in raised] == [(2, "review"), (4, "restrict")]
    assert eng.stats.alerts == 2
    assert eng.sender_risk("stranger-adult").score >= 0.85


@pytest.mark.parametrize("seed", range(5))
def test_case_alerts_early_for_every_seed(seed: int) -> None:
    raised, _ = _first_alerts(seed)
    assert raised and raised[0][0] < 5 and raised[0][1] == "message"


@pytest.mark.parametrize("relation", ["teacher", "aunt"])
def test_teacher_or_relative_with_approved_contact_raises_nothing(relation: str) -> None:
    sc = trusted_scenario(relation=relation)
    eng = RiskEngine(CN, sc.directory)
    assert eng.process_many(sc.events) == []
    risk = eng.sender_risk(sc.sender)
    assert risk.score < 0.2
    # what remains is the (discounted) questions, never stranger contact
    assert {s.name for s in risk.signals} == {"conversation_related"}


def test_case_with_unknown_age_adult_still_alerts() -> None:
    sc = case_scenario()
    sc.directory.set_facts(sc.sender, AccountFacts(age=None, is_minor=False))
    eng = RiskEngine(CN, sc.directory)
    assert [a.level for a in eng.process_many(sc.events)] == ["review", "restrict"]


def test_case_inside_an_ordinary_day_alerts_at_the_same_message() -> None:
    sc = case_scenario()
    day = ordinary_day(20_000, seed=3)
    for account in sc.directory.accounts():  # the case's accounts join the day's population
        day.directory.set_facts(account, sc.directory.facts(account))
    shift = sc.events[0].at - day.events[0].at
    background = [replace(e, at=e.at + shift) for e in day.events]
    merged = sorted([*background, *sc.events], key=lambda e: e.at)
    eng = RiskEngine(CN, day.directory)
    alerts = eng.process_many(merged)
    mine = [a for a in alerts if a.sender == sc.sender]
    assert [a.level for a in mine] == ["review", "restrict"]
    first = next(e for e in merged if e.id in mine[0].event_ids[:1])
    assert first.target == sc.messaged[1]
    assert all(a.sender == sc.sender for a in alerts)
