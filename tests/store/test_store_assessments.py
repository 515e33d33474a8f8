"""Age assessment storage on SQLite and PostgreSQL: latest row, history, ledger, row bumps."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from qinglang.age.infer import AgeEstimate, Signal
from qinglang.age.suspicion import TransitionError
from qinglang.store import assessments, ledger, repo
from qinglang.store.db import transaction
from qinglang.store.models import Account, AgeAssessment, LedgerEntry, Platform

T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def estimate(p18: float, p14: float = 0.1, child: bool = False) -> AgeEstimate:
    sigs = tuple(
        Signal(f"s{i}", w, "en", "zh", evidence="我14岁 secret text", age=14)
        for i, w in enumerate([0.1, -2.0, 0.5, 3.0, 0.2, 0.05, 1.0])
    )
    return AgeEstimate("kid", p18, p14, "12to15", p18 >= 0.5, child, sigs, "default")


@pytest.fixture
def world(session_maker: sessionmaker[Session]) -> Platform:
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "video", "Video")
        repo.upsert_account(s, p.id, "kid", birth_date=date(1995, 1, 1))
        s.expunge(p)
        return p


def kid(s: Session, p: Platform) -> Account:
    a = repo.get_account(s, p.id, "kid")
    assert a is not None
    return a


def test_score_suspects_audits_and_bumps(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    with transaction(session_maker) as s:
        a = kid(s, world)
        before = a.updated_at
        row, events = assessments.record_score(s, a, estimate(0.9), 0.5, "score", T)
        assert row.state == "verification_requested"
        assert [e.transition for e in events] == ["suspect", "request_verification"]
        assert a.updated_at > before
        assert assessments.suspected_age(s, a.id) == 17
    with transaction(session_maker) as s:
        a = kid(s, world)
        row2 = assessments.get_assessment(s, a.id)
        assert row2 is not None and row2.p_under18 == 0.9 and row2.band == "12to15"
        assert [sg["name"] for sg in row2.signals] == ["s3", "s1", "s6", "s2", "s4"]
        assert all(set(sg) == {"name", "weight", "age"} for sg in row2.signals)
        hist = assessments.events_of(s, a.id)
        assert [(e.from_state, e.to_state) for e in hist] == [
            ("clear", "suspected"),
            ("suspected", "verification_requested"),
        ]
        entries = ledger.entries_about(s, world.id, "kid")
        assert [e.kind for e in entries] == ["age.suspect", "age.request_verification"]
        assert [e.seq for e in entries] == [h.ledger_seq for h in hist]
        assert "secret" not in str([e.body for e in entries])
        assert ledger.verify(s, world.id) is None


def test_no_transition_no_bump(session_maker: sessionmaker[Session], world: Platform) -> None:
    with transaction(session_maker) as s:
        a = kid(s, world)
        before = a.updated_at
        row, events = assessments.record_score(s, a, estimate(0.2), 0.5, "score", T)
        assert row.state == "clear" and events == []
        s.flush()
        assert a.updated_at == before
        assert assessments.suspected_age(s, a.id) is None
        assert s.scalars(select(LedgerEntry)).all() == []


def test_child_escalation_and_appeal(session_maker: sessionmaker[Session], world: Platform) -> None:
    with transaction(session_maker) as s:
        a = kid(s, world)
        assessments.record_score(s, a, estimate(0.9), 0.5, "score", T)
        v = a.updated_at
        assessments.record_score(s, a, estimate(0.95, 0.8, child=True), 0.5, "score", T)
        s.flush()
        assert assessments.suspected_age(s, a.id) == 13 and a.updated_at > v
        row, _ = assessments.appeal(s, a, "I am an adult", "holder", T)
        assert row.state == "appealed"
        with pytest.raises(TransitionError):
            assessments.appeal(s, a, "again", "holder", T)
        row, (ev,) = assessments.decide_appeal(s, a, "overturned", "a quote", "rev", T)
        assert row.state == "clear" and row.cleared_score == 0.95
        assert ev.reason == "a quote" and ev.actor == "rev"
        assert assessments.suspected_age(s, a.id) is None
        # The same score does not re-suspect; a higher one does.
        assert assessments.record_score(s, a, estimate(0.95), 0.5, "score", T)[1] == []
        row, _ = assessments.record_score(s, a, estimate(0.99), 0.5, "score", T)
        assert row.state == "verification_requested"


def test_verified_states_hold(session_maker: sessionmaker[Session], world: Platform) -> None:
    with transaction(session_maker) as s:
        a = kid(s, world)
        row, (ev,) = assessments.verify(
            s, a, minor=False, method="attestation", actor="kyc", reference="r-1", at=T
        )
        assert row.state == "verified_adult" and ev.details == {
            "method": "attestation",
            "reference": "r-1",
        }
        row, events = assessments.record_score(s, a, estimate(0.99, 0.9, True), 0.5, "score", T)
        assert row.state == "verified_adult" and events == []
        with pytest.raises(TransitionError):
            assessments.appeal(s, a, "x", "holder", T)
        row, _ = assessments.verify(s, a, minor=True, method="id_number", actor="kyc", at=T)
        assert row.state == "verified_minor"
    with transaction(session_maker) as s:
        kinds = [e.kind for e in ledger.entries_about(s, world.id, "kid")]
        assert kinds == ["age.verify_adult", "age.verify_minor"]
        assert len(s.scalars(select(AgeAssessment)).all()) == 1


def test_account_deletion_cascades(session_maker: sessionmaker[Session], world: Platform) -> None:
    with transaction(session_maker) as s:
        assessments.record_score(s, kid(s, world), estimate(0.9), 0.5, "score", T)
    with transaction(session_maker) as s:
        s.delete(kid(s, world))
    with transaction(session_maker) as s:
        assert s.scalars(select(AgeAssessment)).all() == []
