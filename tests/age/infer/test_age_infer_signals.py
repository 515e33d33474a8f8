"""Signals: stated ages, grades, birth years, generations, lexicons; ages of others skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang.age.infer.records import parse_record
from qinglang.age.infer.signals import record_signals, text_signals


def names(text: str, year: int = 2026) -> dict[str, float]:
    return {s.name: s.weight for s in text_signals(text, year)}


@pytest.mark.parametrize(
    ("text", "name", "age"),
    [
        ("我今年13岁", "stated_age", 13),
        ("十五岁 爱画画", "stated_age", 15),
        ("I'm 13 and bored", "stated_age", 13),
        ("just turned 16 today", "stated_age", 16),
        ("初二学生", "grade", 13),
        ("in 8th grade now", "grade", 13),
        ("2012年出生", "birth_year", 14),
        ("born in 2011", "birth_year", 15),
    ],
)
def test_age_cues(text: str, name: str, age: int) -> None:
    sig = [s for s in text_signals(text, 2026) if s.name == name]
    assert sig and sig[0].age == age and sig[0].weight > 0
    assert sig[0].explanation_en and sig[0].explanation_zh and sig[0].evidence


def test_adult_ages_push_down() -> None:
    assert names("I'm 34 years old")["stated_age"] < 0
    assert names("1990年生")["birth_year"] < 0


def test_generation_words_depend_on_the_year() -> None:
    assert names("10后")["generation"] > 0
    assert names("00后", 2026)["generation"] < 0
    assert names("00后", 2012)["generation"] > 0


@pytest.mark.parametrize(
    "text",
    ["我儿子今年8岁", "my son is 13 years old", "她13岁了", "女儿上初一"],
)
def test_ages_of_others_are_not_the_writers(text: str) -> None:
    assert not any(s.weight > 1 for s in text_signals(text, 2026))


def test_hard_negatives_score_negative() -> None:
    for text in ("宝妈一枚，女儿上初一", "初二数学老师 教龄十年", "00后打工人", "老二次元 社畜"):
        assert sum(s.weight for s in text_signals(text, 2026)) < 0, text


def test_teacher_grade_is_not_a_pupil_grade() -> None:
    assert "grade" not in names("初二地理老师")


def test_behaviour_and_graph_signals() -> None:
    start = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # Monday 19:00 in Shanghai
    events = [
        {"at": (start + timedelta(days=d % 5 + 7 * (d // 5))).isoformat(), "category": "动漫"}
        for d in range(30)
    ]
    r = parse_record({"user_id": "u", "events": events, "friends_minor_share": 0.8})
    got = {s.name: s.weight for s in record_signals(r, start.date())}
    assert got["behaviour:school_hours"] > 0
    assert got["behaviour:content"] > 0
    assert got["graph:minor_friends"] > 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.integers(1990, 2040))
def test_never_crashes_and_weights_are_finite(text: str, year: int) -> None:
    for s in text_signals(text, year):
        assert -10 < s.weight < 10
        assert s.explanation_en and s.explanation_zh
