"""Age assessments in storage: the latest assessment per account, its transitions and audit.

Every transition of :mod:`qinglang.age.suspicion` is a row of ``age_assessment_events`` and a
ledger entry of kind ``age.<transition>`` (ids, states and scores only: no personal data), in
the caller's transaction. A transition bumps the account row (``updated_at``) in the same
transaction, so the next decision in any worker rebuilds the cached profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinglang.age.infer import AgeEstimate, Signal
from qinglang.age.suspicion import (
    SUSPECTED_STATES,
    VERIFIED_STATES,
    Assessment,
    State,
    Transition,
    on_appeal,
    on_decide_appeal,
    on_score,
    on_verify,
    suspected_age_of,
)
from qinglang.store import ledger
from qinglang.store.models import Account, AgeAssessment, AgeAssessmentEvent, utcnow

if TYPE_CHECKING:
    from qinglang.policy import Policy

ApplyOutcome = Literal["applied", "unchanged", "skipped_verified"]
"""What applying a batch-scan score did to an account's assessment."""

__all__ = [
    "TOP_SIGNALS",
    "ApplyOutcome",
    "appeal",
    "apply_score",
    "decide_appeal",
    "events_of",
    "get_assessment",
    "record_score",
    "suspect_threshold",
    "suspected_age",
    "verify",
]

TOP_SIGNALS = 5


def get_assessment(session: Session, account_id: int) -> AgeAssessment | None:
    """The account's assessment row, or None if it was never scored or verified."""
    return session.scalars(
        select(AgeAssessment).where(AgeAssessment.account_id == account_id)
    ).one_or_none()


def events_of(session: Session, account_id: int) -> Sequence[AgeAssessmentEvent]:
    """The account's transitions, oldest first."""
    return session.scalars(
        select(AgeAssessmentEvent)
        .where(AgeAssessmentEvent.account_id == account_id)
        .order_by(AgeAssessmentEvent.id)
    ).all()


def suspected_age(session: Session, account_id: int) -> int | None:
    """The inferred minor age the account's profile uses while suspected (13 or 17), else None."""
    row = session.execute(
        select(AgeAssessment.state, AgeAssessment.suspected_child).where(
            AgeAssessment.account_id == account_id
        )
    ).one_or_none()
    return None if row is None else suspected_age_of(row.state, row.suspected_child)


def _row(session: Session, account: Account) -> AgeAssessment:
    """The account's assessment row, created ``clear`` if missing (flushed).

    Locks the account row first (``FOR UPDATE`` on PostgreSQL; SQLite has one writer), so
    transitions of one account serialise and two first scores never insert two rows.
    """
    session.execute(select(Account.id).where(Account.id == account.id).with_for_update())
    row = session.scalars(
        select(AgeAssessment)
        .where(AgeAssessment.account_id == account.id)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        row = AgeAssessment(
            platform_id=account.platform_id,
            account_id=account.id,
            state=State.CLEAR.value,
            signals=[],
        )
        session.add(row)
        session.flush()
    return row


def _machine(row: AgeAssessment) -> Assessment:
    """The pure machine state of a row."""
    return Assessment(State(row.state), row.cleared_score)


def _apply(
    session: Session,
    account: Account,
    row: AgeAssessment,
    new: Assessment,
    transitions: Sequence[Transition],
    details: dict[str, Any] | None = None,
) -> list[AgeAssessmentEvent]:
    """Store the new state, one event and one ledger entry per transition; bump the account."""
    row.state = new.state.value
    row.cleared_score = new.cleared_score
    out: list[AgeAssessmentEvent] = []
    for t in transitions:
        data: dict[str, Any] = {
            "from": t.from_state.value,
            "to": t.to_state.value,
            "actor": t.actor,
            "p_under18": None if row.p_under18 is None else round(row.p_under18, 4),
            **(details or {}),
        }
        entry = ledger.append(
            session, account.platform_id, f"age.{t.name}", account.external_id, data, at=t.at
        )
        ev = AgeAssessmentEvent(
            platform_id=account.platform_id,
            account_id=account.id,
            transition=t.name,
            from_state=t.from_state.value,
            to_state=t.to_state.value,
            actor=t.actor,
            reason=t.reason,
            details=dict(details or {}),
            ledger_seq=entry.seq,
            at=t.at,
        )
        session.add(ev)
        out.append(ev)
    if transitions:
        # A new row version (at the change, strictly later): cached profiles keyed by it go stale.
        at = transitions[-1].at
        account.updated_at = max(at, account.updated_at + timedelta(microseconds=1))
    session.flush()
    return out


def minimised_signals(estimate: AgeEstimate, top: int = TOP_SIGNALS) -> list[dict[str, Any]]:
    """The strongest signals as name, weight and implied age (no evidence text)."""
    ranked = sorted(estimate.signals, key=lambda s: abs(s.weight), reverse=True)[:top]
    return [{"name": s.name, "weight": round(s.weight, 4), "age": s.age} for s in ranked]


def record_score(
    session: Session,
    account: Account,
    estimate: AgeEstimate,
    threshold: float,
    actor: str,
    at: datetime | None = None,
) -> tuple[AgeAssessment, list[AgeAssessmentEvent]]:
    """Store a new estimate; suspect a clear account at or above the threshold."""
    at = at or utcnow()
    row = _row(session, account)
    row.p_under18 = float(estimate.p_under18)
    row.p_under14 = float(estimate.p_under14)
    row.band = estimate.band
    row.model = estimate.model[:64]
    row.signals = minimised_signals(estimate)
    new, ts = on_score(_machine(row), row.p_under18, threshold, actor, at)
    child = bool(estimate.suspected_child)
    if ts or State(row.state) not in SUSPECTED_STATES:
        row.suspected_child = child
    elif child and not row.suspected_child:
        # Already suspected, now as a child: the profile gets younger, so bump the account.
        row.suspected_child = True
        account.updated_at = max(at, account.updated_at + timedelta(microseconds=1))
    row.updated_at = at
    events = _apply(session, account, row, new, ts, {"band": estimate.band})
    return row, events


def verify(
    session: Session,
    account: Account,
    *,
    minor: bool,
    method: str,
    actor: str,
    reference: str | None = None,
    at: datetime | None = None,
) -> tuple[AgeAssessment, list[AgeAssessmentEvent]]:
    """Record a verification result (the caller updates the account's verified age)."""
    at = at or utcnow()
    row = _row(session, account)
    new, ts = on_verify(_machine(row), minor=minor, actor=actor, at=at)
    details: dict[str, Any] = {"method": method}
    if reference is not None:
        details["reference"] = reference
    row.updated_at = at
    return row, _apply(session, account, row, new, ts, details)


def appeal(
    session: Session, account: Account, reason: str, actor: str, at: datetime | None = None
) -> tuple[AgeAssessment, list[AgeAssessmentEvent]]:
    """The account holder appeals a suspicion (TransitionError when not suspected)."""
    at = at or utcnow()
    row = _row(session, account)
    new, ts = on_appeal(_machine(row), actor, at, reason)
    row.updated_at = at
    return row, _apply(session, account, row, new, ts)


def decide_appeal(
    session: Session,
    account: Account,
    outcome: Literal["upheld", "overturned"],
    reason: str,
    reviewer: str,
    at: datetime | None = None,
) -> tuple[AgeAssessment, list[AgeAssessmentEvent]]:
    """A reviewer decides an appeal (TransitionError when there is no open appeal)."""
    at = at or utcnow()
    row = _row(session, account)
    new, ts = on_decide_appeal(_machine(row), outcome, reviewer, at, reason, row.p_under18)
    row.updated_at = at
    return row, _apply(session, account, row, new, ts)


def suspect_threshold(policy: Policy) -> float:
    """The pack's p(under 18) suspect threshold, ``age.infer.suspect_under18`` (0.5 if unset)."""
    rule = policy.rule("age.infer.suspect_under18", None)
    value = None if rule is None else rule.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.5


def _same_score(row: AgeAssessment, estimate: AgeEstimate) -> bool:
    """Whether storing this estimate would change nothing (as `record_score` stores it)."""
    child = bool(estimate.suspected_child)
    if State(row.state) in SUSPECTED_STATES:
        child_same = row.suspected_child or not child  # while suspected the flag only rises
    else:
        child_same = row.suspected_child == child
    return (
        child_same
        and row.p_under18 == float(estimate.p_under18)
        and row.p_under14 == float(estimate.p_under14)
        and row.band == estimate.band
        and row.model == estimate.model[:64]
        and list(row.signals or []) == minimised_signals(estimate)
    )


def apply_score(
    session: Session,
    account: Account,
    *,
    p_under18: float,
    p_under14: float,
    band: str | None,
    suspected_child: bool,
    signals: Sequence[tuple[str, float]],
    model: str,
    threshold: float,
    actor: str,
    at: datetime | None = None,
    dry_run: bool = False,
) -> tuple[ApplyOutcome, list[str]]:
    """Apply one batch-scan score through `record_score`: (outcome, transition names).

    A verified assessment is never touched (``skipped_verified``). A score the row already holds,
    with no transition due, writes nothing (``unchanged``), so re-applying the same results is a
    no-op. `dry_run` reports what would happen and writes nothing.
    """
    at = at or utcnow()
    estimate = AgeEstimate(
        user_id=account.external_id,
        p_under18=float(p_under18),
        p_under14=float(p_under14),
        band=band,
        suspected=float(p_under18) >= threshold,
        suspected_child=bool(suspected_child),
        signals=tuple(Signal(name, float(weight), "", "") for name, weight in signals),
        model=model,
    )
    row = get_assessment(session, account.id)
    machine = Assessment() if row is None else _machine(row)
    if machine.state in VERIFIED_STATES:
        return "skipped_verified", []
    _, due = on_score(machine, estimate.p_under18, threshold, actor, at)
    if row is not None and not due and _same_score(row, estimate):
        return "unchanged", []
    if dry_run:
        return "applied", [t.name for t in due]
    locked = _row(session, account)
    if State(locked.state) in VERIFIED_STATES:  # verified meanwhile (row lock taken now)
        return "skipped_verified", []
    _, events = record_score(session, account, estimate, threshold, actor, at)
    return "applied", [e.transition for e in events]
