"""False alarms: a simulated day of 100,000 ordinary messages among minors and adults (friends,
families, teachers with approved contact, strangers chatting about games and videos), with
follows, recommendations, late and duplicate events, alerts at most 0.1% of senders."""

from __future__ import annotations

from qinglang.risk import RiskEngine
from qinglang.risk.simulate import ordinary_day

from .risk_testing import CN


def test_an_ordinary_day_alerts_at_most_one_sender_in_a_thousand() -> None:
    day = ordinary_day(100_000, seed=7)
    messages = sum(1 for e in day.events if e.kind == "message")
    assert messages >= 100_000
    senders = {e.actor for e in day.events if e.kind == "message"}
    eng = RiskEngine(CN, day.directory)
    alerts = eng.process_many(day.events)
    alerted = {a.sender for a in alerts}
    assert len(alerted) <= 0.001 * len(senders), sorted(alerted)
    s = eng.stats
    assert s.duplicates > 0 and s.received == len(day.events)
    assert s.received == s.applied + s.duplicates + s.stale


def test_the_simulation_is_deterministic() -> None:
    a, b = ordinary_day(2_000, seed=1), ordinary_day(2_000, seed=1)
    assert a.events == b.events
    assert ordinary_day(2_000, seed=2).events != a.events
