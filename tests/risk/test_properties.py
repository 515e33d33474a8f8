"""Properties of the engine and the cue detector, on generated event streams and texts."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qinglang.risk import Event, Link, MemoryDirectory, RiskEngine, detect_cues, score_conversation
from qinglang.risk.simulate import START

from .risk_testing import CN

ADULTS = ["a0", "a1", "a2", "u0"]
MINORS = ["m0", "m1", "m2", "m3", "m4"]
ACCOUNTS = ADULTS + MINORS
TEXTS = [
    "你好",
    "你几岁了？住哪里？",
    "别告诉爸妈，加我薇信",
    "发张自拍给我",
    "周末出来见面",
    "我12岁",
    "作业写完了吗",
    "how old r u",
    "dont tell ur mom",
    "wanna meet up",
    "gg",
]
KINDS = ["message", "message", "message", "follow", "impression", "gift", "block", "report"]


def _directory(restricted: bool, links: list[tuple[int, int, int]]) -> MemoryDirectory:
    d = MemoryDirectory()
    for i, a in enumerate(ADULTS):
        d.add(a, None if a.startswith("u") else 30 + i)
    for i, m in enumerate(MINORS):
        d.add(m, 9 + i)
    if restricted:
        d.restrict("a0")
    kinds = [Link(mutual=True), Link(approved=True), Link(guardian=True)]
    for x, y, k in links:
        if x != y:
            d.relate(ACCOUNTS[x], ACCOUNTS[y], kinds[k])
    return d


@st.composite
def streams(draw: st.DrawFn) -> tuple[MemoryDirectory, list[Event]]:
    restricted = draw(st.booleans())
    links = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(ACCOUNTS) - 1),
                st.integers(0, len(ACCOUNTS) - 1),
                st.integers(0, 2),
            ),
            max_size=6,
        )
    )
    n = draw(st.integers(1, 60))
    events = []
    for i in range(n):
        kind = draw(st.sampled_from(KINDS))
        actor = draw(st.sampled_from(ACCOUNTS))
        other = draw(st.sampled_from([a for a in ACCOUNTS if a != actor]))
        minutes = draw(st.integers(0, 3 * 24 * 60))
        at = START + timedelta(minutes=minutes)
        if kind == "impression":
            e = Event(f"e{i}", kind, at, actor, None, None, f"v-{other}", other, "recommended")
        elif kind == "message":
            e = Event(f"e{i}", kind, at, actor, other, draw(st.sampled_from(TEXTS)))
        elif kind == "gift":
            e = Event(f"e{i}", kind, at, actor, other, amount_fen=draw(st.integers(1, 10_000)))
        else:
            e = Event(f"e{i}", kind, at, actor, other)
        events.append(e)
    if draw(st.booleans()):
        events.sort(key=lambda e: e.at)
    return _directory(restricted, links), events


def _run(d: MemoryDirectory, events: list[Event]) -> tuple[list[object], list[float]]:
    eng = RiskEngine(CN, d)
    alerts = eng.process_many(events)
    risks = [eng.sender_risk(a).score for a in ACCOUNTS]
    return [(a.id, a.level, round(a.score, 12), a.event_ids) for a in alerts], risks


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(streams())
def test_the_same_stream_gives_the_same_alerts(stream: tuple[MemoryDirectory, list[Event]]) -> None:
    d, events = stream
    assert _run(d, events) == _run(d, events)


@SETTINGS
@given(streams(), st.data())
def test_duplicates_never_change_alerts_or_state(
    stream: tuple[MemoryDirectory, list[Event]], data: st.DataObject
) -> None:
    d, events = stream
    with_dups = list(events)
    for _ in range(data.draw(st.integers(1, 10))):
        i = data.draw(st.integers(0, len(events) - 1))
        j = data.draw(st.integers(i + 1, len(with_dups)))
        with_dups.insert(j, events[i])
    assert _run(d, events) == _run(d, with_dups)


@SETTINGS
@given(streams())
def test_scores_stay_in_unit_interval_and_levels_are_raised_once(
    stream: tuple[MemoryDirectory, list[Event]],
) -> None:
    d, events = stream
    eng = RiskEngine(CN, d)
    alerts = eng.process_many(events)
    for a in alerts:
        assert 0.0 <= a.score <= 1.0 and a.level in ("review", "restrict")
        assert all(0.0 <= s.weight <= 1.0 for s in a.signals)
    levels = [(a.sender, a.level) for a in alerts]
    assert len(levels) == len(set(levels))
    for x in ACCOUNTS:
        assert 0.0 <= eng.sender_risk(x).score <= 1.0
        for y in ACCOUNTS:
            assert 0.0 <= eng.conversation_risk(x, y).score <= 1.0
    s = eng.stats
    assert s.received == len(events) == s.applied + s.duplicates + s.stale


_TEXT = st.text(
    st.characters(
        categories=("L", "N", "P", "Zs", "So", "Cf"),
        include_characters="加微信薇扣别告诉爸妈几岁你我\u200b１２３①",
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_cue_spans_lie_inside_the_text(text: str) -> None:
    for h in detect_cues(text):
        assert 0 <= h.start < h.end <= len(text)
    assert 0.0 <= score_conversation(text).score <= 1.0
