"""The suspected-minor state machine: transitions, verified states, inferred ages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.age.suspicion import (
    SUSPECTED_STATES,
    VERIFIED_STATES,
    Assessment,
    State,
    Transition,
    TransitionError,
    effective_age,
    inferred_age,
    on_appeal,
    on_decide_appeal,
    on_score,
    on_verify,
)

T = datetime(2026, 5, 1, tzinfo=UTC)
TODAY = date(2026, 5, 1)


def test_score_suspects_and_requests_verification() -> None:
    a, ts = on_score(Assessment(), 0.7, 0.5, "api", T)
    assert a.state is State.VERIFICATION_REQUESTED
    assert [(t.name, t.from_state, t.to_state) for t in ts] == [
        ("suspect", State.CLEAR, State.SUSPECTED),
        ("request_verification", State.SUSPECTED, State.VERIFICATION_REQUESTED),
    ]
    assert ts[0].actor == "api" and ts[0].at == T and ts[0].reason


def test_below_threshold_stays_clear() -> None:
    assert on_score(Assessment(), 0.49, 0.5, "api", T) == (Assessment(), ())


def test_suspected_account_is_not_suspected_twice() -> None:
    a, _ = on_score(Assessment(), 0.7, 0.5, "api", T)
    assert on_score(a, 0.99, 0.5, "api", T) == (a, ())


def test_appeal_upheld_and_overturned() -> None:
    a, _ = on_score(Assessment(), 0.7, 0.5, "api", T)
    a, (t,) = on_appeal(a, "holder", T, "I am an adult")
    assert a.state is State.APPEALED and t.reason == "I am an adult"
    up, (t,) = on_decide_appeal(a, "upheld", "rev", T, "stated age")
    assert up.state is State.VERIFICATION_REQUESTED and t.name == "upheld"
    down, (t,) = on_decide_appeal(a, "overturned", "rev", T, "a quote", 0.7)
    assert down == Assessment(State.CLEAR, 0.7) and t.actor == "rev"
    # Re-suspected only by a higher score than the one overturned.
    assert on_score(down, 0.7, 0.5, "api", T)[1] == ()
    assert on_score(down, 0.8, 0.5, "api", T)[0].state is State.VERIFICATION_REQUESTED


def test_appeal_needs_a_suspicion() -> None:
    with pytest.raises(TransitionError) as err:
        on_appeal(Assessment(), "holder", T, "x")
    assert err.value.message_zh and err.value.state is State.CLEAR
    with pytest.raises(TransitionError):
        on_decide_appeal(Assessment(State.SUSPECTED), "upheld", "rev", T, "x")


def test_verification_from_any_state() -> None:
    for state in State:
        a, (t,) = on_verify(Assessment(state), minor=True, actor="kyc", at=T)
        assert a.state is State.VERIFIED_MINOR and t.from_state is state


def test_inferred_ages() -> None:
    assert inferred_age(False) == 17 and inferred_age(True) == 13


@pytest.mark.parametrize(
    ("birth", "source", "suspected", "expected"),
    [
        (None, None, None, (None, None)),
        (None, None, 17, (date(2009, 5, 1), "inferred")),
        (None, None, 13, (date(2013, 5, 1), "inferred")),
        (date(1990, 1, 1), "self_declared", 17, (date(2009, 5, 1), "inferred")),
        (date(1990, 1, 1), "guardian_declared", 13, (date(2013, 5, 1), "inferred")),
        (date(1990, 1, 1), "verified", 13, (date(1990, 1, 1), "verified")),
        (date(2012, 1, 1), "verified", 17, (date(2012, 1, 1), "verified")),
        (date(2011, 1, 1), "self_declared", 13, (date(2011, 1, 1), "self_declared")),
        (date(2015, 1, 1), "guardian_declared", 17, (date(2015, 1, 1), "guardian_declared")),
        (date(2000, 1, 1), "inferred", 17, (date(2009, 5, 1), "inferred")),
        (date(2016, 1, 1), "inferred", 13, (date(2016, 1, 1), "inferred")),
    ],
)
def test_effective_age(
    birth: date | None,
    source: str | None,
    suspected: int | None,
    expected: tuple[date | None, str | None],
) -> None:
    assert effective_age(birth, source, suspected, TODAY) == expected


def test_effective_age_on_29_february() -> None:
    assert effective_age(None, None, 17, date(2028, 2, 29)) == (date(2011, 2, 28), "inferred")


Step = tuple[str, float, bool, str]

steps = st.tuples(
    st.sampled_from(["score", "verify", "appeal", "upheld", "overturned"]),
    st.floats(0.0, 1.0),
    st.booleans(),
    st.sampled_from(["api", "kyc", "holder", "rev"]),
)


@given(st.lists(steps, max_size=30))
def test_random_sequences(seq: list[Step]) -> None:
    """Verified states are left only by a new verification; every change is a transition;
    transitions chain and carry who and when."""
    a = Assessment()
    log: list[Transition] = []
    for kind, p, minor, actor in seq:
        before = a
        try:
            if kind == "score":
                a, ts = on_score(a, p, 0.5, actor, T)
            elif kind == "verify":
                a, ts = on_verify(a, minor=minor, actor=actor, at=T)
            elif kind == "appeal":
                a, ts = on_appeal(a, actor, T, "why")
            else:
                a, ts = on_decide_appeal(a, kind, actor, T, "why", p)  # type: ignore[arg-type]
        except TransitionError as exc:
            assert exc.state is before.state
            assert kind in ("appeal", "upheld", "overturned")
            continue
        if before.state in VERIFIED_STATES and kind != "verify":
            assert a == before and ts == ()
        if a.state != before.state:
            assert ts, "a state change without a transition"
            assert ts[0].from_state is before.state and ts[-1].to_state is a.state
        for x, y in pairwise(ts):
            assert x.to_state is y.from_state
        assert all(t.actor == actor and t.at == T for t in ts)
        if kind == "verify":
            assert a.state is (State.VERIFIED_MINOR if minor else State.VERIFIED_ADULT)
        log.extend(ts)
    for x, y in pairwise(log):
        assert x.to_state is y.from_state
    assert a.state in SUSPECTED_STATES | VERIFIED_STATES | {State.CLEAR}


def test_doctests() -> None:
    import doctest

    from qinglang.age import suspicion

    result = doctest.testmod(suspicion)
    assert result.attempted > 0 and result.failed == 0
