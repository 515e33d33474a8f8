"""Labelled conversations, Chinese and English: grooming across stages is detected, ordinary
chat among classmates, families, teachers and gamers is not.

The scenarios in ``data/zh_scenarios.jsonl`` and ``data/en_scenarios.jsonl`` were written for
these tests (none is a real conversation). Each names the sender ``s`` and the other party ``r``,
their ages (null: the platform does not know), how they are related and the deepest grooming
stage reached. Early-stage conversations (only contact questions and trust) are labelled
``contact`` / ``trust``: a single such conversation is expected to stay below the alert
threshold, the pattern across many children is what catches them (see test_case.py).
"""

from __future__ import annotations

import pytest

from qinglang.risk import score_conversation

from .risk_testing import CN, Outcome, load_scenarios, run_scenario

EARLY = {"contact", "trust"}
REVIEW = float(CN.require("risk.alert.review_threshold").value)  # type: ignore[arg-type]


def _outcomes(name: str) -> list[Outcome]:
    return [run_scenario(sc) for sc in load_scenarios(name)]


@pytest.fixture(scope="module")
def zh() -> list[Outcome]:
    return _outcomes("zh_scenarios.jsonl")


@pytest.fixture(scope="module")
def en() -> list[Outcome]:
    return _outcomes("en_scenarios.jsonl")


def test_the_chinese_set_is_as_large_and_as_evasive_as_required() -> None:
    rows = load_scenarios("zh_scenarios.jsonl")
    grooming = [r for r in rows if r["label"] == "grooming"]
    benign = [r for r in rows if r["label"] == "benign"]
    assert len(grooming) >= 40 and len(benign) >= 40
    assert {r["stage"] for r in grooming} >= {
        "contact",
        "trust",
        "isolation",
        "exclusivity",
        "escalation",
    }
    assert {r["stage"] for r in benign} >= {"classmates", "family", "teacher", "gaming"}
    text = "".join(m[1] for r in rows for m in r["messages"])
    for evasion in ("加我薇信", "V❤", "扣扣", "別告訴爸媽", "１３", "\u200b", "威信号", "加 微 信"):
        assert evasion in text, evasion
    assert len({r["id"] for r in rows}) == len(rows)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_grooming_is_detected(lang: str, request: pytest.FixtureRequest) -> None:
    outcomes: list[Outcome] = request.getfixturevalue(lang)
    later = [o for o in outcomes if o.label == "grooming" and o.stage not in EARLY]
    missed = [o.id for o in later if not o.alerted]
    rate = 1 - len(missed) / len(later)
    assert rate >= 0.95, missed
    for o in later:
        if o.alerted:
            assert o.alerts[0].signals and o.alerts[0].rule_id.startswith("cn.risk.alert.")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_early_stage_conversations_score_but_stay_below_the_threshold(
    lang: str, request: pytest.FixtureRequest
) -> None:
    outcomes: list[Outcome] = request.getfixturevalue(lang)
    early = [o for o in outcomes if o.label == "grooming" and o.stage in EARLY]
    assert early
    for o in early:
        assert 0.0 < o.score < REVIEW and not o.alerted


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_benign_conversations_raise_no_alert(lang: str, request: pytest.FixtureRequest) -> None:
    outcomes: list[Outcome] = request.getfixturevalue(lang)
    benign = [o for o in outcomes if o.label == "benign"]
    assert [o.id for o in benign if o.alerted] == []
    assert max(o.score for o in benign) < REVIEW


@pytest.mark.parametrize("name", ["zh_scenarios.jsonl", "en_scenarios.jsonl"])
def test_standalone_scorer_separates_the_sets(name: str) -> None:
    """score_conversation knows nothing of ages or relations: it reads the flattened text."""
    rows = load_scenarios(name)
    flat = {r["id"]: " ".join(m[1] for m in r["messages"]) for r in rows}
    scores = {r["id"]: score_conversation(flat[r["id"]]).score for r in rows}
    grooming = [
        scores[r["id"]] for r in rows if r["label"] == "grooming" and r["stage"] not in EARLY
    ]
    benign = [scores[r["id"]] for r in rows if r["label"] == "benign"]
    assert sum(grooming) / len(grooming) > 3 * sum(benign) / len(benign)
    assert sum(s >= REVIEW for s in benign) == 0
