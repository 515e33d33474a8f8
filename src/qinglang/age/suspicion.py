"""Suspected minors: the pure state machine of an account's inferred-age assessment.

States: ``clear`` → (score ≥ threshold) ``suspected`` → ``verification_requested``;
``suspected``/``verification_requested`` → ``appealed`` → ``verification_requested`` (appeal
upheld: still suspected, still asked to verify) | ``clear`` (appeal overturned); any state →
``verified_minor`` | ``verified_adult`` by a verification result. A verified state is left only
by a new verification: scores and appeals never change it. After an overturned appeal a new
score re-suspects the account only when it is higher than the score that was overturned.

While an account is in a suspected state (see `SUSPECTED_STATES`) its profile uses an inferred
minor age (`inferred_age`), never overriding a higher-ranked stored age (`effective_age`).

>>> a = Assessment()
>>> a, ts = on_score(a, 0.9, 0.5, "api", _T0)
>>> a.state.value, [t.name for t in ts]
('verification_requested', ['suspect', 'request_verification'])
>>> a, ts = on_verify(a, minor=False, actor="kyc", at=_T0)
>>> on_score(a, 0.99, 0.5, "api", _T0)[1]
()
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final, Literal

from qinglang.age.sources import AgeSource

__all__ = [
    "SUSPECTED_STATES",
    "VERIFIED_STATES",
    "Assessment",
    "State",
    "Transition",
    "TransitionError",
    "effective_age",
    "inferred_age",
    "on_appeal",
    "on_decide_appeal",
    "on_score",
    "on_verify",
]

_T0: Final = datetime(2026, 1, 1, tzinfo=UTC)
ADULT_AGE: Final = 18
CHILD_AGE: Final = 14


class State(StrEnum):
    """Where an account's age assessment stands."""

    CLEAR = "clear"
    SUSPECTED = "suspected"
    VERIFICATION_REQUESTED = "verification_requested"
    APPEALED = "appealed"
    VERIFIED_MINOR = "verified_minor"
    VERIFIED_ADULT = "verified_adult"


SUSPECTED_STATES: Final = frozenset({State.SUSPECTED, State.VERIFICATION_REQUESTED, State.APPEALED})
VERIFIED_STATES: Final = frozenset({State.VERIFIED_MINOR, State.VERIFIED_ADULT})


class TransitionError(ValueError):
    """A transition that is not allowed from the current state (bilingual message)."""

    def __init__(self, state: State, action: str) -> None:
        self.state = state
        self.action = action
        self.message_en = f"cannot {action} an assessment in state {state.value}"
        self.message_zh = f"年龄评估处于 {state.value} 状态，不能执行 {action}"
        super().__init__(self.message_en)


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change: its name, from/to, who made it, when and why."""

    name: str
    from_state: State
    to_state: State
    actor: str
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    """The machine's state: where it stands and the score an overturned appeal cleared."""

    state: State = State.CLEAR
    cleared_score: float | None = None
    """p(under 18) at which a reviewer overturned the suspicion; a re-suspicion needs more."""


def _step(
    a: Assessment, name: str, to: State, actor: str, at: datetime, reason: str | None
) -> Transition:
    """A transition from `a`'s state to `to`."""
    return Transition(name, a.state, to, actor, at, reason)


def on_score(
    a: Assessment, p_under18: float, threshold: float, actor: str, at: datetime
) -> tuple[Assessment, tuple[Transition, ...]]:
    """A new score: suspects a clear account at or above the threshold (then asks to verify)."""
    if a.state is not State.CLEAR or p_under18 < threshold:
        return a, ()
    if a.cleared_score is not None and p_under18 <= a.cleared_score:
        return a, ()
    why = f"p_under18 {p_under18:.4f} >= {threshold:.4f}"
    t1 = _step(a, "suspect", State.SUSPECTED, actor, at, why)
    t2 = Transition(
        "request_verification", State.SUSPECTED, State.VERIFICATION_REQUESTED, actor, at, None
    )
    return Assessment(State.VERIFICATION_REQUESTED, None), (t1, t2)


def on_verify(
    a: Assessment, *, minor: bool, actor: str, at: datetime, reason: str | None = None
) -> tuple[Assessment, tuple[Transition, ...]]:
    """A verification result (from any state): verified_minor or verified_adult."""
    to = State.VERIFIED_MINOR if minor else State.VERIFIED_ADULT
    t = _step(a, "verify_minor" if minor else "verify_adult", to, actor, at, reason)
    return Assessment(to, None), (t,)


def on_appeal(
    a: Assessment, actor: str, at: datetime, reason: str
) -> tuple[Assessment, tuple[Transition, ...]]:
    """The account holder appeals a suspicion."""
    if a.state not in (State.SUSPECTED, State.VERIFICATION_REQUESTED):
        raise TransitionError(a.state, "appeal")
    return replace(a, state=State.APPEALED), (
        _step(a, "appeal", State.APPEALED, actor, at, reason),
    )


def on_decide_appeal(
    a: Assessment,
    outcome: Literal["upheld", "overturned"],
    actor: str,
    at: datetime,
    reason: str,
    p_under18: float | None = None,
) -> tuple[Assessment, tuple[Transition, ...]]:
    """A reviewer decides an appeal: upheld (still suspected) or overturned (clear)."""
    if a.state is not State.APPEALED:
        raise TransitionError(a.state, "decide an appeal on")
    if outcome == "upheld":
        to = State.VERIFICATION_REQUESTED
        return Assessment(to, None), (_step(a, "upheld", to, actor, at, reason),)
    return Assessment(State.CLEAR, p_under18), (
        _step(a, "overturned", State.CLEAR, actor, at, reason),
    )


def inferred_age(suspected_child: bool) -> int:
    """The age a suspected minor is treated as: 13 if a suspected child, else 17 (upper edges)."""
    return CHILD_AGE - 1 if suspected_child else ADULT_AGE - 1


def suspected_age_of(state: str | None, suspected_child: bool | None) -> int | None:
    """The inferred age an assessment in `state` makes the profile use (None unless suspected)."""
    if state is None or State(state) not in SUSPECTED_STATES:
        return None
    return inferred_age(bool(suspected_child))


def _years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February → 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _age_on(birth: date, day: date) -> int:
    """Completed years at `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def effective_age(
    birth_date: date | None,
    source: str | None,
    suspected_age: int | None,
    today: date,
) -> tuple[date | None, str | None]:
    """The birth date and source a profile uses, given a suspected minor age (None: not suspected).

    A stored minor age from any declared or verified source stays as stored; a verified adult
    stays adult; otherwise (no age, an inferred age, a declared adult age) the suspected age
    applies with source ``inferred``, as a birth date giving exactly that age on `today`.
    """
    if suspected_age is None:
        return birth_date, source
    if birth_date is not None and source is not None:
        src = AgeSource(source)
        if src is AgeSource.VERIFIED:
            return birth_date, source
        if src is not AgeSource.INFERRED and _age_on(birth_date, today) < ADULT_AGE:
            return birth_date, source
        if src is AgeSource.INFERRED and _age_on(birth_date, today) <= suspected_age:
            return birth_date, source
    return _years_before(today, suspected_age), AgeSource.INFERRED.value
