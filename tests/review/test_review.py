"""The pure review core: priority and SLA from the pack, status transitions, minimised evidence,
the report to an authority and the guardian message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qinglang.policy import load_policy
from qinglang.review import (
    ActionError,
    authority_report,
    build_evidence,
    due_at,
    excerpt,
    guardian_message,
    is_overdue,
    next_status,
    priority_of,
)
from qinglang.risk.events import Event
from qinglang.risk.types import AccountFacts, Alert, Signal

POLICY = load_policy("cn")
HIGH = float(POLICY.require("review.priority_high_score").value)  # type: ignore[arg-type]
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def alert(level: str = "review", score: float = 0.5, minors: tuple[str, ...] = ("g",)) -> Alert:
    return Alert(
        id="a1",
        sender="man",
        level=level,
        score=score,
        at=T0,
        signals=(
            Signal("cue.asks_age", 0.25, "asks age", "询问年龄", ("e2",), "你几岁了？" * 40),
            Signal("fanout_minors", 0.3, "follows minors", "关注多名未成年人", ("e1", "e9")),
        ),
        minors=minors,
        event_ids=("e1", "e2"),
        rule_id="cn.risk.review",
    )


@pytest.mark.parametrize(
    ("level", "score", "minors", "expected"),
    [
        ("restrict", 0.81, ("g",), "urgent"),
        ("review", HIGH, ("g",), "high"),
        ("review", HIGH - 0.01, ("g", "b"), "high"),
        ("review", HIGH - 0.01, ("g",), "normal"),
    ],
)
def test_priority(level: str, score: float, minors: tuple[str, ...], expected: str) -> None:
    assert priority_of(alert(level, score, minors), POLICY) == expected


def test_sla_from_the_pack() -> None:
    assert due_at(T0, "urgent", POLICY) == T0 + timedelta(hours=1)
    assert due_at(T0, "high", POLICY) == T0 + timedelta(hours=24)
    assert due_at(T0, "normal", POLICY) == T0 + timedelta(hours=72)
    with pytest.raises(ValueError):
        due_at(T0, "whenever", POLICY)
    assert is_overdue("open", T0, T0 + timedelta(seconds=1))
    assert not is_overdue("actioned", T0, T0 + timedelta(days=1))
    assert not is_overdue("in_review", T0, T0)


def test_overlay_tightens_the_sla() -> None:
    overlay = """
[pack]
id = "strict"
version = "1"
jurisdiction = "CN"
timezone = "Asia/Shanghai"
title_zh = "严格"
title_en = "strict"
base = "cn"

[[overrides]]
id = "cn.review.sla.normal"
value = 24
"""
    tighter = load_policy("cn", overlay)
    assert due_at(T0, "normal", tighter) == T0 + timedelta(hours=24)


@pytest.mark.parametrize(
    ("current", "kind", "expected"),
    [
        ("open", "assign", "in_review"),
        ("in_review", "assign", "in_review"),
        ("open", "dismiss", "dismissed"),
        ("in_review", "restrict", "actioned"),
        ("actioned", "report", "actioned"),
        ("actioned", "notify_guardians", "actioned"),
    ],
)
def test_transitions(current: str, kind: str, expected: str) -> None:
    assert next_status(current, kind) == expected


@pytest.mark.parametrize(
    ("current", "kind", "status"),
    [("dismissed", "restrict", 409), ("actioned", "dismiss", 409), ("open", "ban", 422)],
)
def test_refused_transitions(current: str, kind: str, status: int) -> None:
    with pytest.raises(ActionError) as exc:
        next_status(current, kind)
    assert exc.value.status == status and exc.value.field == "kind"


def test_evidence_is_minimised() -> None:
    events = {
        "e1": Event("e1", "follow", T0, "man", "g"),
        "e2": Event("e2", "message", T0 + timedelta(minutes=1), "man", "g", "你几岁了？住哪？"),
    }
    facts = {"man": AccountFacts(41, False), "g": AccountFacts(10, True)}
    ev = build_evidence(alert(), events, facts)
    assert ev["sender"] == {"account": "man", "age": 41}
    assert ev["minors"] == [{"account": "g", "age": 10}]
    assert [e["event_id"] for e in ev["timeline"]] == ["e1", "e2"]
    assert ev["timeline"][1] == {
        "event_id": "e2",
        "at": (T0 + timedelta(minutes=1)).isoformat(),
        "kind": "message",
        "actor": "man",
        "counterpart": "g",
        "text_chars": 8,
    }
    assert ev["missing_events"] == ["e9"]
    assert len(ev["signals"][0]["excerpt"]) == 120 and ev["signals"][0]["excerpt"].endswith("…")
    assert excerpt("  a \n b  ") == "a b"


def test_report_is_bilingual_and_minimised() -> None:
    events = {"e1": Event("e1", "message", T0, "man", "g", "full secret message text")}
    ev = build_evidence(alert(), events, {"g": AccountFacts(10, True)})
    doc = authority_report(
        ev,
        platform="Video (video)",
        authority="police",
        reviewer="rev|1",
        generated_at=T0,
        reference="JZ-2026-1",
        measures=[{"kind": "auto_restrict", "actor": "qinglang.risk", "at": T0.isoformat()}],
    )
    for needle in (
        "公安机关",
        "police",
        "第八十条",
        "art. 80",
        "涉及的未成年人 / Minors involved",
        "| g | 10 |",
        "JZ-2026-1",
        "rev\\|1",
        "自动限制联系未成年人",
    ):
        assert needle in doc, needle
    assert "full secret message text" not in doc
    with pytest.raises(ValueError):
        authority_report(ev, platform="p", authority="fbi", reviewer="r", generated_at=T0)


def test_guardian_message_carries_no_evidence() -> None:
    zh, en = guardian_message("kid1", restricted=True)
    assert "kid1" in zh and "kid1" in en
    assert "已限制" in zh and "restricted" in en
    zh2, en2 = guardian_message("kid1", restricted=False)
    assert "已限制" not in zh2 and "restricted" not in en2
