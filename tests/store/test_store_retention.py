"""Retention runs on SQLite and PostgreSQL: exactly the overdue rows go, the ledger stays and
records the run, a dry run changes nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from qinglang.policy import load_policy
from qinglang.store import events as store_events
from qinglang.store import ledger, repo
from qinglang.store import review as store_review
from qinglang.store.consents import publish_notice, record_consent
from qinglang.store.db import transaction
from qinglang.store.models import (
    Account,
    Alert,
    Consent,
    ContentItem,
    DecisionLog,
    Guardian,
    GuardianLink,
    LedgerEntry,
    LedgerHead,
    Platform,
    RightsRequest,
    RightsRequestEvent,
    RiskConsumer,
    StoredEvent,
)
from qinglang.store.retention import CATEGORIES, run_retention, topic_of
from qinglang.store.rights import create_request, transition

CN = load_policy("cn")
AT = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
ELEMENTS = dict.fromkeys(
    (
        "purpose_method_scope",
        "storage_location",
        "retention_period",
        "expiry_handling",
        "security_measures",
        "refusal_consequences",
        "complaint_channel",
        "correction_deletion",
        "necessity_and_effect",
    ),
    "见正文",
)
NOTICE = {
    "title": "规则",
    "elements": ELEMENTS,
    "items": [
        {"purpose": p, "categories": ["location"], "method": "定位", "scope": "附近"}
        for p in ("nearby", "weather", "maps", "radar")
    ],
}
TABLES: tuple[Any, ...] = (
    DecisionLog,
    RightsRequest,
    RightsRequestEvent,
    Consent,
    GuardianLink,
    Guardian,
    Account,
    ContentItem,
    LedgerEntry,
    StoredEvent,
)


def ago(days: float) -> datetime:
    return AT - timedelta(days=days)


@dataclass(frozen=True)
class Seeded:
    """Rows either side of each retention period; `purge` holds the ids that must go."""

    platform_id: int
    purge: dict[str, set[int]]
    keep: dict[str, set[int]]
    cancelled_subject: str


def _days(category: str) -> int:
    v = CN.require(topic_of(category)).value
    assert isinstance(v, int)
    return v


@pytest.fixture
def seeded(session_maker: sessionmaker[Session]) -> Seeded:
    purge: dict[str, set[int]] = {c: set() for c in CATEGORIES}
    keep: dict[str, set[int]] = {c: set() for c in CATEGORIES}
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "video", "Video")
        other = repo.create_platform(s, "other", "Other")
        child = repo.upsert_account(s, p.id, "kid", birth_date=date(2020, 1, 1))
        friend = repo.upsert_account(s, p.id, "friend", birth_date=date(2019, 1, 1))

        # decision logs: one past the period, one just inside, one on another platform
        d_days = _days("decision_logs")
        for when, bucket in ((ago(d_days + 1), purge), (ago(d_days - 1), keep)):
            row = repo.log_decision(
                s,
                p,
                kind="contact",
                action="dm",
                outcome="deny",
                rule_ids=[],
                subject_account_id=child.id,
                at=when,
                always=True,
            )
            assert row is not None
            bucket["decision_logs"].add(row.id)
        repo.log_decision(
            s, other, kind="x", action="y", outcome="allow", rule_ids=[], at=ago(5000), always=True
        )

        # rights requests: closed long ago, closed recently, open and ancient
        r_days = _days("closed_rights_requests")
        for closed, bucket in ((ago(r_days + 2), purge), (ago(r_days - 2), keep)):
            req = create_request(
                s,
                p,
                CN,
                child,
                kind="deletion",
                requester="guardian",
                guardian=_linked_guardian(s, p, child, f"g-{closed:%Y%m%d}"),
                at=closed - timedelta(days=1),
            )
            transition(s, p, CN, req, status="refused", actor="dpo", reason="hold", at=closed)
            bucket["closed_rights_requests"].add(req.id)
        open_req = create_request(
            s,
            p,
            CN,
            child,
            kind="access",
            requester="guardian",
            guardian=_linked_guardian(s, p, child, "g-open"),
            at=ago(5000),
        )
        keep["closed_rights_requests"].add(open_req.id)

        # consents: withdrawn/refused past the period, refused recently, granted ancient
        notice = publish_notice(s, p, CN, "zh", "child", NOTICE, "dpo", at=ago(6000)).notice
        c_days = _days("inactive_consents")
        for purpose, status, when, bucket in (
            ("nearby", "refused", ago(c_days + 1), purge),
            ("weather", "refused", ago(c_days - 1), keep),
            ("maps", "granted", ago(6000), keep),
        ):
            row, _ = record_consent(
                s,
                p,
                friend,
                purpose=purpose,
                category="location",
                status=status,
                given_by="guardian",
                guardian=None,
                notice=notice,
                at=when,
            )
            bucket["inactive_consents"].add(row.id)
        for status, when in (("granted", ago(6000)), ("withdrawn", ago(c_days + 3))):
            withdrawn, _ = record_consent(
                s,
                p,
                friend,
                purpose="radar",
                category="location",
                status=status,
                given_by="guardian",
                guardian=None,
                notice=notice,
                at=when,
            )
        purge["inactive_consents"].add(withdrawn.id)

        # guardian links: revoked past the period, revoked recently, active and ancient
        l_days = _days("revoked_guardian_links")
        for name, revoked, bucket in (
            ("g-old", ago(l_days + 1), purge),
            ("g-new", ago(l_days - 1), keep),
            ("g-active", None, keep),
        ):
            g = repo.upsert_guardian(s, p.id, name)
            link = repo.link_guardian(
                s, g.id, friend.id, method="m", verified_by="v", verified_at=ago(9000)
            )
            link.revoked_at = revoked
            bucket["revoked_guardian_links"].add(link.id)

        # guardians with no link and no consent: old, recent
        u_days = _days("unlinked_guardians")
        for name, updated, bucket in (
            ("lonely-old", ago(u_days + 1), purge),
            ("lonely-new", ago(u_days - 1), keep),
        ):
            g = repo.upsert_guardian(s, p.id, name, display_name="某某")
            g.updated_at = updated
            bucket["unlinked_guardians"].add(g.id)
        # every guardian with a link (even revoked) is kept this run
        lonely = purge["unlinked_guardians"] | keep["unlinked_guardians"]
        for g in s.execute(select(Guardian).where(Guardian.platform_id == p.id)).scalars():
            if g.id not in lonely:
                g.updated_at = ago(9000)
                keep["unlinked_guardians"].add(g.id)

        # cancelled accounts: past the period, recent, never cancelled
        a_days = _days("cancelled_accounts")
        for name, cancelled, bucket in (
            ("gone", ago(a_days + 1), purge),
            ("going", ago(a_days - 1), keep),
        ):
            acc = repo.upsert_account(s, p.id, name, birth_date=date(2018, 2, 2))
            acc.cancelled_at = cancelled
            repo.upsert_content_item(s, p.id, f"{name}-video", acc.id)
            bucket["cancelled_accounts"].add(acc.id)
            ledger.append(s, p.id, "consent.granted", name, {"purpose": "x"}, at=ago(9000))
        keep["cancelled_accounts"] |= {child.id, friend.id}

        _seed_events(s, p.id, other.id, purge, keep)
        s.flush()
        return Seeded(p.id, purge, keep, "gone")


def _linked_guardian(s: Session, p: Platform, child: Account, name: str) -> Guardian:
    g = repo.upsert_guardian(s, p.id, name)
    repo.link_guardian(s, g.id, child.id, method="m", verified_by="v", verified_at=ago(9000))
    return g


def _alert(s: Session, platform_id: int, name: str, status: str, event_ids: list[str]) -> None:
    evidence = {"signals": [{"name": "x", "event_ids": event_ids}], "timeline": []}
    s.add(
        Alert(
            platform_id=platform_id,
            alert_id=name,
            sender="man",
            level="review",
            score=0.5,
            rule_id="cn.risk.review",
            raised_at=ago(300),
            minors=["kid"],
            event_ids=[],
            signal_names=["x"],
            evidence=json.dumps(evidence),
            priority="normal",
            status=status,
            due_at=ago(299),
        )
    )


def _seed_events(
    s: Session, pid: int, other: int, purge: dict[str, set[int]], keep: dict[str, set[int]]
) -> None:
    """Events either side of the period; processed or not; held by an open alert or not."""
    e_days = _days("events")
    raws = [
        {"id": name, "kind": "message", "at": ago(400).isoformat(), "actor": "man"}
        | {"target": "kid", "text": "你好"}
        for name in ("done", "held", "dismissed", "recent", "pending")
    ]
    store_events.ingest(s, pid, raws[:4], now=ago(e_days + 1))
    store_events.ingest(s, pid, raws[4:], now=ago(e_days + 1))
    store_events.ingest(s, other, raws[:1], now=ago(e_days + 50))
    s.add(RiskConsumer(platform_id=pid, checkpoint=4))
    _alert(s, pid, "a-open", "in_review", ["held"])
    _alert(s, pid, "a-closed", "dismissed", ["dismissed"])
    s.flush()
    mine = select(StoredEvent).where(StoredEvent.platform_id == pid)
    rows = {e.event_id: e for e in s.scalars(mine)}
    rows["recent"].received_at = ago(e_days - 1)
    for name in ("done", "dismissed"):
        purge["events"].add(rows[name].id)
    keep["events"] |= {rows[name].id for name in ("held", "recent", "pending")}
    theirs = select(StoredEvent.id).where(StoredEvent.platform_id == other)
    keep["events"] |= set(s.scalars(theirs))


_MODEL = {
    "decision_logs": DecisionLog,
    "closed_rights_requests": RightsRequest,
    "inactive_consents": Consent,
    "revoked_guardian_links": GuardianLink,
    "unlinked_guardians": Guardian,
    "cancelled_accounts": Account,
    "events": StoredEvent,
}


def _snapshot(s: Session) -> dict[str, Any]:
    counts = {
        m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar_one() for m in TABLES
    }
    heads = sorted(tuple(r) for r in s.execute(select(LedgerHead.platform_id, LedgerHead.seq)))
    return {"counts": counts, "heads": heads}


def _platform(s: Session, seeded: Seeded) -> Platform:
    p = s.get(Platform, seeded.platform_id)
    assert p is not None
    return p


def test_every_category_has_a_pack_rule_in_days() -> None:
    for c in CATEGORIES:
        rule = CN.require(topic_of(c))
        assert rule.unit == "days" and rule.id.startswith("cn.retention.")
        assert rule.message_zh and rule.message_en
        if not rule.citation.verified:
            assert not rule.binding and "qinglang default" in rule.citation.note


def test_dry_run_reports_and_changes_nothing(
    session_maker: sessionmaker[Session], seeded: Seeded
) -> None:
    with session_maker() as s:
        before = _snapshot(s)
    with transaction(session_maker) as s:
        report = run_retention(s, _platform(s, seeded), CN, AT, dry_run=True)
    assert report.dry_run and report.ledger_seq is None
    assert report.counts == {c: len(seeded.purge[c]) for c in CATEGORIES}
    assert report.held == {"events": {"unprocessed": 1, "evidence_hold": 1}}
    assert all(len(seeded.purge[c]) >= 1 for c in CATEGORIES)
    with session_maker() as s:
        assert _snapshot(s) == before


def test_run_purges_exactly_the_overdue_rows_and_records_it(
    session_maker: sessionmaker[Session], seeded: Seeded
) -> None:
    with session_maker() as s:
        ledger_before = s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
        other_logs = s.execute(
            select(func.count())
            .select_from(DecisionLog)
            .where(DecisionLog.platform_id != seeded.platform_id)
        ).scalar_one()
    with transaction(session_maker) as s:
        report = run_retention(s, _platform(s, seeded), CN, AT)
    assert not report.dry_run and report.ledger_seq is not None
    assert report.counts == {c: len(seeded.purge[c]) for c in CATEGORIES}
    with session_maker() as s:
        for category, model in _MODEL.items():
            present = set(s.execute(select(model.id)).scalars())
            assert not present & seeded.purge[category], category
            assert seeded.keep[category] <= present, category
        # events of purged requests went with them
        orphans = s.execute(
            select(func.count())
            .select_from(RightsRequestEvent)
            .where(RightsRequestEvent.request_id.in_(seeded.purge["closed_rights_requests"]))
        ).scalar_one()
        assert orphans == 0
        # a cancelled account's content went with it; its ledger entries stay
        assert not set(
            s.execute(
                select(ContentItem.external_id).where(ContentItem.external_id == "gone-video")
            ).scalars()
        )
        assert ledger.entries_about(s, seeded.platform_id, seeded.cancelled_subject)
        # the ledger only grew, by the one retention entry, and still verifies
        assert s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == (
            ledger_before + 1
        )
        entry = s.execute(
            select(LedgerEntry).where(
                LedgerEntry.platform_id == seeded.platform_id,
                LedgerEntry.seq == report.ledger_seq,
            )
        ).scalar_one()
        assert entry.kind == "retention.run" and entry.subject is None
        data = json.loads(entry.body)["data"]
        assert data["counts"] == report.counts
        assert data["rules"]["decision_logs"] == "cn.retention.decision_logs"
        assert data["rules"]["events"] == "cn.retention.events"
        assert data["held"] == {"events": {"unprocessed": 1, "evidence_hold": 1}}
        assert ledger.verify(s, seeded.platform_id) is None
        assert (
            s.execute(
                select(func.count())
                .select_from(DecisionLog)
                .where(DecisionLog.platform_id != seeded.platform_id)
            ).scalar_one()
            == other_logs
        )


def test_a_second_run_purges_nothing_more(
    session_maker: sessionmaker[Session], seeded: Seeded
) -> None:
    with transaction(session_maker) as s:
        run_retention(s, _platform(s, seeded), CN, AT)
    with transaction(session_maker) as s:
        again = run_retention(s, _platform(s, seeded), CN, AT)
    # the guardians whose last link was purged become unlinked, but were updated long ago
    assert again.counts["decision_logs"] == 0 and again.counts["cancelled_accounts"] == 0
    assert again.counts["closed_rights_requests"] == 0 and again.counts["inactive_consents"] == 0
    assert again.counts["events"] == 0
    assert again.held == {"events": {"unprocessed": 1, "evidence_hold": 1}}
    assert again.ledger_seq is not None


def test_run_needs_an_aware_instant(session_maker: sessionmaker[Session], seeded: Seeded) -> None:
    with transaction(session_maker) as s, pytest.raises(ValueError):
        run_retention(s, _platform(s, seeded), CN, AT.replace(tzinfo=None))


def test_events_held_as_evidence_go_once_the_alert_is_closed(
    session_maker: sessionmaker[Session], seeded: Seeded
) -> None:
    with transaction(session_maker) as s:
        run_retention(s, _platform(s, seeded), CN, AT)
        open_alert = s.scalars(select(Alert).where(Alert.alert_id == "a-open")).one()
        open_alert.status = "dismissed"
        open_alert.closed_at = ago(1)
        s.get(RiskConsumer, seeded.platform_id).checkpoint = 5  # type: ignore[union-attr]
    with transaction(session_maker) as s:
        again = run_retention(s, _platform(s, seeded), CN, AT)
    assert again.counts["events"] == 2 and again.held == {}
    with session_maker() as s:
        left = set(
            s.scalars(
                select(StoredEvent.event_id).where(StoredEvent.platform_id == seeded.platform_id)
            )
        )
    assert left == {"recent"}


def _open_alert(s: Session) -> Alert:
    return s.scalars(select(Alert).where(Alert.alert_id == "a-open")).one()


def _kept_events(s: Session, seeded: Seeded) -> set[str]:
    mine = select(StoredEvent.event_id).where(StoredEvent.platform_id == seeded.platform_id)
    return set(s.scalars(mine))


def test_the_actioned_evidence_period_is_a_qinglang_default_rule() -> None:
    rule = CN.require("retention.actioned_alert_evidence_days")
    assert rule.id == "cn.retention.actioned_alert_evidence" and rule.unit == "days"
    assert isinstance(rule.value, int) and rule.value > _days("events")
    assert not rule.binding and not rule.citation.verified
    assert "fixes no period" in rule.citation.note and "qinglang default" in rule.citation.note


@pytest.mark.parametrize(("closed_days_ago", "kept"), [(1, True), (1200, False)])
def test_actioned_alert_evidence_is_kept_for_the_pack_period(
    session_maker: sessionmaker[Session], seeded: Seeded, closed_days_ago: int, kept: bool
) -> None:
    period = CN.require("retention.actioned_alert_evidence_days").value
    assert isinstance(period, int) and (closed_days_ago < period) == kept
    with transaction(session_maker) as s:
        alert = _open_alert(s)
        alert.status = "actioned"
        alert.first_action_at = ago(closed_days_ago)
    with transaction(session_maker) as s:
        report = run_retention(s, _platform(s, seeded), CN, AT)
    held = report.held["events"]
    if kept:
        assert held == {"unprocessed": 1, "actioned_alert": 1}
    else:
        assert held == {"unprocessed": 1}
    events = next(c for c in report.categories if c.category == "events")
    assert events.hold_rules == {"cn.retention.actioned_alert_evidence": period}
    with session_maker() as s:
        assert ("held" in _kept_events(s, seeded)) == kept


def test_a_restriction_in_force_keeps_an_old_actioned_alerts_evidence(
    session_maker: sessionmaker[Session], seeded: Seeded
) -> None:
    with transaction(session_maker) as s:
        alert = _open_alert(s)
        alert.status = "actioned"
        alert.first_action_at = ago(5000)
        s.flush()
        r = store_review.add_restriction(
            s,
            seeded.platform_id,
            "man",
            scope="contact_minors",
            reason="x",
            by="rev",
            alert=alert,
            now=ago(5000),
        )
    with transaction(session_maker) as s:
        report = run_retention(s, _platform(s, seeded), CN, AT)
    assert report.held["events"] == {"unprocessed": 1, "actioned_alert": 1}
    with transaction(session_maker) as s:
        row = s.get(type(r), r.id)
        assert row is not None
        store_review.lift_restriction(s, row, "rev", "served", ago(5000 - 30))
    with transaction(session_maker) as s:
        again = run_retention(s, _platform(s, seeded), CN, AT)
    assert again.held["events"] == {"unprocessed": 1} and again.counts["events"] == 1


def test_a_legal_hold_keeps_evidence_until_released(
    session_maker: sessionmaker[Session], seeded: Seeded
) -> None:
    with transaction(session_maker) as s:
        alert = _open_alert(s)
        alert.status = "dismissed"
        alert.closed_at = ago(250)
        store_review.set_hold(s, alert, "lead", "police asked us to keep it", ago(200))
    with transaction(session_maker) as s:
        report = run_retention(s, _platform(s, seeded), CN, AT)
    assert report.held["events"] == {"unprocessed": 1, "legal_hold": 1}
    with session_maker() as s:
        assert "held" in _kept_events(s, seeded)
        entry = s.scalars(
            select(LedgerEntry)
            .where(
                LedgerEntry.platform_id == seeded.platform_id, LedgerEntry.kind == "retention.run"
            )
            .order_by(LedgerEntry.seq.desc())
        ).first()
        assert entry is not None
        assert json.loads(entry.body)["data"]["held"]["events"]["legal_hold"] == 1
    with transaction(session_maker) as s:
        store_review.release_hold(s, _open_alert(s), "lead", "case closed by police", ago(1))
    with transaction(session_maker) as s:
        again = run_retention(s, _platform(s, seeded), CN, AT)
    assert again.held["events"] == {"unprocessed": 1} and again.counts["events"] == 1
    with session_maker() as s:
        assert "held" not in _kept_events(s, seeded)
        kinds = [
            k
            for k in s.scalars(
                select(LedgerEntry.kind)
                .where(LedgerEntry.platform_id == seeded.platform_id)
                .order_by(LedgerEntry.seq)
            )
            if k.startswith("review.")
        ]
        assert kinds == ["review.hold", "review.release"]
        assert ledger.verify(s, seeded.platform_id) is None
