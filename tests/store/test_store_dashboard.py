"""Compliance dashboard queries on SQLite and PostgreSQL: a seeded platform (and a second one
that must not leak into it) checked to the exact number, per week and per month."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from qinglang.policy import load_policy
from qinglang.store import dashboard as dash
from qinglang.store import repo
from qinglang.store.db import transaction
from qinglang.store.models import (
    Account,
    AgeAssessment,
    AgeAssessmentEvent,
    Alert,
    Consent,
    DecisionLog,
    Notice,
    Platform,
    RightsRequest,
)

NOW = datetime(2026, 5, 13, 12, 0, tzinfo=UTC)  # Wednesday, 20:00 in Shanghai
POLICY = load_policy("cn")
TZ = ZoneInfo("Asia/Shanghai")
D = timedelta(days=1)
H = timedelta(hours=1)
REASON = "无法核实请求人身份"


@dataclass
class World:
    """The seeded platform and the other one."""

    platform: Platform
    other: Platform


def _account(s: Session, p: Platform, ext: str, born: date | None, source: str | None) -> Account:
    return repo.upsert_account(s, p.id, ext, birth_date=born, age_source=source)  # type: ignore[arg-type]


def _notice(s: Session, p: Platform) -> Notice:
    n = Notice(
        platform_id=p.id,
        language="zh",
        audience="child",
        version=1,
        body={},
        content_hash="0" * 64,
        published_by="ops",
        published_at=NOW - 100 * D,
    )
    s.add(n)
    s.flush()
    return n


def _consent(
    s: Session,
    a: Account,
    n: Notice,
    category: str,
    status: str,
    given_by: str = "guardian",
    at: datetime = NOW - 50 * D,
    stale: datetime | None = None,
) -> None:
    purpose = {"location": "show_location", "messages": "messages_from_non_friends"}[category]
    s.add(
        Consent(
            platform_id=a.platform_id,
            account_id=a.id,
            purpose=purpose,
            category=category,
            status=status,
            given_by=given_by,
            notice_id=n.id,
            decided_at=at,
            stale_since=stale,
        )
    )


def _assessment(s: Session, a: Account, state: str, child: bool = False) -> None:
    s.add(
        AgeAssessment(
            platform_id=a.platform_id, account_id=a.id, state=state, suspected_child=child
        )
    )


def _event(s: Session, a: Account, frm: str, to: str, at: datetime) -> None:
    s.add(
        AgeAssessmentEvent(
            platform_id=a.platform_id,
            account_id=a.id,
            transition="t",
            from_state=frm,
            to_state=to,
            actor="test",
            details={},
            ledger_seq=1,
            at=at,
        )
    )


def _decision(s: Session, p: Platform, kind: str, outcome: str, at: datetime) -> None:
    s.add(
        DecisionLog(platform_id=p.id, kind=kind, action="dm", outcome=outcome, rule_ids=[], at=at)
    )


def _alert(
    s: Session,
    p: Platform,
    name: str,
    priority: str,
    raised: datetime,
    sla: timedelta,
    first: timedelta | None,
    status: str,
) -> None:
    s.add(
        Alert(
            platform_id=p.id,
            alert_id=name,
            sender="man",
            level="restrict" if priority == "urgent" else "review",
            score=0.9,
            rule_id="cn.risk.review",
            raised_at=raised,
            minors=["kid1"],
            event_ids=[],
            signal_names=[],
            evidence="{}",
            priority=priority,
            status=status,
            due_at=raised + sla,
            first_action_at=None if first is None else raised + first,
        )
    )


def _request(
    s: Session,
    p: Platform,
    kind: str,
    status: str,
    created: datetime,
    due: datetime,
    closed: datetime | None = None,
    reason: str | None = None,
) -> None:
    s.add(
        RightsRequest(
            platform_id=p.id,
            subject="kid1",
            requester="guardian",
            kind=kind,
            status=status,
            due_at=due,
            reason=reason,
            created_at=created,
            closed_at=closed,
        )
    )


def seed(s: Session, p: Platform, o: Platform, now: datetime = NOW) -> None:
    """Seed platform `p` with every kind of row (times relative to `now`) and `o` with a few."""
    adult = _account(s, p, "adult", date(1980, 1, 1), "verified")
    kid1 = _account(s, p, "kid1", date(2016, 1, 1), "guardian_declared")
    kid2 = _account(s, p, "kid2", date(2015, 6, 1), "guardian_declared")
    kid3 = _account(s, p, "kid3", date(2014, 3, 3), "self_declared")
    teen = _account(s, p, "teen", date(2010, 1, 1), "self_declared")
    inf = _account(s, p, "inf", date(2017, 1, 1), "inferred")
    unk = _account(s, p, "unk", None, None)  # no age, but suspected as a child
    gone = _account(s, p, "gone", date(2015, 1, 1), "verified")
    gone.cancelled_at = now - 5 * D
    okid = _account(s, o, "okid", date(2016, 1, 1), "guardian_declared")
    s.flush()
    n, on = _notice(s, p), _notice(s, o)
    _consent(s, kid1, n, "location", "granted")
    _consent(s, kid1, n, "messages", "granted")
    _consent(s, kid2, n, "location", "granted", stale=now - 10 * D)
    _consent(s, kid2, n, "messages", "withdrawn", at=now - 3 * D)
    _consent(s, kid3, n, "location", "refused")
    _consent(s, unk, n, "location", "granted", given_by="self")
    _consent(s, teen, n, "location", "granted", given_by="self")
    _consent(s, adult, n, "messages", "withdrawn", given_by="self", at=now - 20 * D)
    _consent(s, gone, n, "location", "granted")
    _consent(s, okid, on, "location", "withdrawn", at=now - D)
    _assessment(s, unk, "suspected", child=True)
    _assessment(s, teen, "appealed")
    _assessment(s, adult, "verified_adult")
    _assessment(s, kid3, "verified_minor")
    _assessment(s, inf, "clear")
    _assessment(s, okid, "suspected")
    _event(s, unk, "clear", "suspected", now - D)
    _event(s, teen, "clear", "suspected", now - 30 * D)
    _event(s, teen, "suspected", "appealed", now - 29 * D)
    _event(s, adult, "clear", "verified_adult", now - 100 * D)
    _event(s, kid3, "clear", "verified_minor", now - 2 * D)
    _event(s, inf, "suspected", "clear", now - 2 * D)
    _event(s, okid, "clear", "suspected", now - D)
    # with now = NOW: Sunday 23:00 and Monday 01:00 in Shanghai, two different weeks
    _decision(s, p, "contact", "deny", now - timedelta(days=2, hours=19))
    _decision(s, p, "contact", "deny", now - timedelta(days=2, hours=21))
    _decision(s, p, "contact", "deny", now - H)
    _decision(s, p, "contact", "allow", now - H)
    _decision(s, p, "contact", "allow", now - 40 * D)
    _decision(s, p, "collection", "deny", now - H)
    _decision(s, p, "contact", "deny", now - 200 * D)
    _decision(s, o, "contact", "deny", now - H)
    _alert(s, p, "a1", "urgent", now - 2 * D, H, H, "actioned")
    _alert(s, p, "a2", "urgent", now - 2 * D, H, 5 * H, "actioned")
    _alert(s, p, "a3", "high", now - 9 * D, 24 * H, H / 2, "dismissed")
    _alert(s, p, "a4", "normal", now - 9 * D, 72 * H, None, "open")
    _alert(s, p, "a5", "normal", now - H, 72 * H, None, "in_review")
    _alert(s, o, "o1", "urgent", now - 2 * D, H, 9 * H, "actioned")
    _request(s, p, "access", "completed", now - 20 * D, now - 5 * D, now - 10 * D)
    _request(s, p, "deletion", "completed", now - 40 * D, now - 25 * D, now - 22 * D)
    _request(s, p, "correction", "refused", now - 8 * D, now + 2 * D, now - 6 * D, REASON)
    _request(s, p, "access", "refused", now - 8 * D, now + 3 * D, now - 7 * D, REASON)
    _request(s, p, "access", "received", now - 16 * D, now - D)
    _request(s, p, "deletion", "in_progress", now - D, now + 14 * D)
    _request(s, p, "withdrawal", "refused", now - 3 * D, now + 12 * D, now - 2 * D, "重复申请")
    _request(s, o, "access", "refused", now - 3 * D, now + 12 * D, now - 2 * D, "other")
    _request(s, o, "access", "received", now - 30 * D, now - 20 * D)
    s.flush()


@pytest.fixture
def world(session_maker: sessionmaker[Session]) -> World:
    """Platform ``video`` (sample rate 5 %) seeded with every kind of row; ``other`` too."""
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "video", "Video", decision_sample_rate=0.05)
        o = repo.create_platform(s, "other", "Other")
        seed(s, p, o)
        s.expunge_all()
    return World(p, o)


def zeros(**at: int) -> list[int]:
    """Twelve periods of zeros, with ``i<n>=value`` set."""
    out = [0] * 12
    for key, value in at.items():
        out[int(key[1:])] = value
    return out


def test_periods_are_local_weeks_and_months() -> None:
    weeks = dash.periods("week", NOW, TZ)
    assert len(weeks) == 12 and weeks[-1].first_day == date(2026, 5, 11)
    assert weeks[0].first_day == date(2026, 2, 23) and weeks[0].label == "2026-02-23"
    assert weeks[-1].start == datetime(2026, 5, 10, 16, 0, tzinfo=UTC)  # Monday 00:00 CST
    assert all(a.end == b.start for a, b in itertools.pairwise(weeks))
    months = dash.periods("month", NOW, TZ)
    assert [m.label for m in months][::5] == ["2025-06", "2025-11", "2026-04"]
    assert months[-1].end == datetime(2026, 5, 31, 16, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        dash.periods("day", NOW, TZ)


def test_age_sources(session_maker: sessionmaker[Session], world: World) -> None:
    with transaction(session_maker) as s:
        got = dash.age_sources(s, world.platform.id)
    assert {c.source: c.accounts for c in got.by_source} == {
        "verified": 1,
        "guardian_declared": 2,
        "self_declared": 2,
        "inferred": 1,
        "unknown": 1,
    }
    assert got.total == 7  # the cancelled account is left out


def test_assessments_now_and_per_period(session_maker: sessionmaker[Session], world: World) -> None:
    weeks = dash.periods("week", NOW, TZ)
    months = dash.periods("month", NOW, TZ)
    with transaction(session_maker) as s:
        w = dash.assessments(s, world.platform.id, weeks)
        m = dash.assessments(s, world.platform.id, months)
    assert w.now == {
        "suspected": 1,
        "verification_requested": 0,
        "appealed": 1,
        "verified_minor": 1,
        "verified_adult": 1,
    }
    assert w.suspected_now == 2
    assert w.entered["suspected"] == zeros(i7=1, i11=1)
    assert w.entered["appealed"] == zeros(i7=1)
    assert w.entered["verified_minor"] == zeros(i11=1)
    assert w.entered["verified_adult"] == zeros()  # 100 days ago: before the 12 weeks
    assert m.entered["verified_adult"] == zeros(i8=1)  # February
    assert m.entered["suspected"] == zeros(i10=1, i11=1)


def test_consent_coverage(session_maker: sessionmaker[Session], world: World) -> None:
    weeks = dash.periods("week", NOW, TZ)
    with transaction(session_maker) as s:
        got = dash.consent_coverage(s, world.platform.id, POLICY, weeks, NOW, chunk=2)
    assert got.child_below == 14
    # kid1, kid2, kid3 and the suspected child 'unk'; not the teen, the adult or 'gone'
    assert got.children == 4 and got.scanned == 6 and not got.capped
    by = {c.category: c for c in got.categories}
    assert by["location"] == dash.CategoryCoverage("location", 4, 1, 1, 0)
    assert by["location"].share == 0.25
    assert by["messages"] == dash.CategoryCoverage("messages", 2, 1, 0, 1)
    assert got.stale_now == 1 and got.withdrawn_now == 2
    assert got.went_stale == zeros(i9=1)
    assert got.withdrawn == zeros(i8=1, i10=1)


def test_consent_coverage_is_capped(session_maker: sessionmaker[Session], world: World) -> None:
    weeks = dash.periods("week", NOW, TZ)
    with transaction(session_maker) as s:
        got = dash.consent_coverage(s, world.platform.id, POLICY, weeks, NOW, chunk=2, cap=3)
    assert got.capped and got.scanned == 3


def test_blocked_contacts(session_maker: sessionmaker[Session], world: World) -> None:
    weeks = dash.periods("week", NOW, TZ)
    with transaction(session_maker) as s:
        p = s.get(Platform, world.platform.id)
        assert p is not None
        got = dash.blocked_contacts(s, p, weeks)
    assert got.sample_rate == 0.05
    assert got.denied == zeros(i10=1, i11=2)
    assert got.sampled == zeros(i5=1, i10=1, i11=3)
    assert got.denied_total == 3 and got.estimated_denied == 60


def test_alert_figures(session_maker: sessionmaker[Session], world: World) -> None:
    weeks = dash.periods("week", NOW, TZ)
    with transaction(session_maker) as s:
        got = dash.alert_figures(s, world.platform.id, weeks, NOW, POLICY)
    assert got.raised == {
        "urgent": zeros(i11=2),
        "high": zeros(i10=1),
        "normal": zeros(i10=1, i11=1),
    }
    assert got.timing[11] == dash.Timing(2, 3600.0, 18000.0)
    assert got.timing[10] == dash.Timing(1, 1800.0, 1800.0)
    assert got.timing[0] == dash.Timing(0, None, None)
    assert got.met == zeros(i10=1, i11=1)
    assert got.missed == zeros(i10=1, i11=1)
    assert got.within_sla[10] == 0.5 and got.within_sla[0] is None
    urgent, high, normal = got.by_priority
    assert urgent == dash.PriorityTiming("urgent", 1.0, 2, dash.Timing(2, 3600.0, 18000.0), 1, 1)
    assert high == dash.PriorityTiming("high", 24.0, 1, dash.Timing(1, 1800.0, 1800.0), 1, 0)
    assert normal == dash.PriorityTiming("normal", 72.0, 2, dash.Timing(0, None, None), 0, 1)
    assert normal.within_sla == 0.0 and high.within_sla == 1.0
    assert got.open_now == 2 and got.overdue_now == 1


def test_rights_figures(session_maker: sessionmaker[Session], world: World) -> None:
    weeks = dash.periods("week", NOW, TZ)
    with transaction(session_maker) as s:
        got = dash.rights_figures(s, world.platform.id, weeks, NOW)
    assert got.received == zeros(i5=1, i8=1, i9=1, i10=3, i11=1)
    assert got.completed == zeros(i8=1, i9=1)
    assert got.refused == zeros(i10=2, i11=1)
    assert got.due == zeros(i7=1, i10=1, i11=3)
    assert got.on_time == zeros(i10=1, i11=2)
    assert got.on_time_rate[7] == 0.0 and got.on_time_rate[10] == 1.0
    assert got.on_time_overall == 0.6
    assert got.reasons == [dash.ReasonCount(REASON, 2), dash.ReasonCount("重复申请", 1)]
    assert got.open_now == 2 and got.overdue_now == 1


def test_the_other_platform_sees_only_its_own(
    session_maker: sessionmaker[Session], world: World
) -> None:
    weeks = dash.periods("week", NOW, TZ)
    oid = world.other.id
    with transaction(session_maker) as s:
        o = s.get(Platform, oid)
        assert o is not None
        assert dash.age_sources(s, oid).total == 1
        assert dash.assessments(s, oid, weeks).now["suspected"] == 1
        cov = dash.consent_coverage(s, oid, POLICY, weeks, NOW)
        assert cov.children == 1 and cov.withdrawn_now == 1 and cov.stale_now == 0
        assert dash.blocked_contacts(s, o, weeks).denied_total == 1
        alerts = dash.alert_figures(s, oid, weeks, NOW, POLICY)
        assert alerts.raised["urgent"] == zeros(i11=1) and alerts.met == zeros()
        rights = dash.rights_figures(s, oid, weeks, NOW)
        assert rights.reasons == [dash.ReasonCount("other", 1)] and rights.overdue_now == 1
        assert dash.audit_reports(s, oid) == []
