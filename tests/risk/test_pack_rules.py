"""The risk section of the cn pack: every number the engine uses is a rule, none is unused."""

from __future__ import annotations

from qinglang.policy import Policy, Rule
from qinglang.risk import RiskParams

from .risk_testing import CN

RISK = {r.topic: r for r in CN.rules.values() if r.topic.startswith("risk.")}


class _Recording(Policy):
    def __init__(self, base: Policy) -> None:
        super().__init__(base.meta, base.rules.values(), base.bandsets.values())
        self.asked: set[str] = set()

    def require(self, topic: str, age: int | None = None) -> Rule:
        self.asked.add(topic)
        return super().require(topic, age)


def test_every_risk_rule_is_read_by_the_engine_and_nothing_else_is_needed() -> None:
    rec = _Recording(CN)
    params = RiskParams.from_policy(rec)
    assert {t for t in rec.asked if t.startswith("risk.")} == set(RISK)
    assert rec.asked - set(RISK) == {"age.minor_below"}
    assert set(params.rules) == {t[5:] for t in RISK}


def test_risk_rules_are_cited_qinglang_defaults_with_both_messages() -> None:
    assert len(RISK) >= 40
    for topic, r in RISK.items():
        assert r.id.startswith("cn.risk."), topic
        assert not r.binding and not r.citation.verified, r.id
        assert "qinglang default" in r.citation.note, r.id
        assert r.citation.instrument and r.citation.article, r.id
        assert any("\u4e00" <= c <= "\u9fff" for c in r.message_zh) and r.message_en, r.id
        assert r.stricter in ("lower", "higher"), r.id
        assert isinstance(r.value, int | float), r.id


def test_the_duty_to_act_is_cited() -> None:
    cited = " ".join(f"{r.citation.instrument} {r.citation.article}" for r in RISK.values())
    assert "未成年人保护法" in cited and "art. 80" in cited and "未成年人网络保护条例" in cited


def test_review_before_restrict_and_windows_in_order() -> None:
    p = RiskParams.from_policy(CN)
    assert 0 < p.review < p.restrict <= 1
    assert p.fanout_start <= p.fanout_full and p.follow_start <= p.follow_full
    assert p.horizon == max(p.fanout_window, p.chain_window, p.conversation_window)
