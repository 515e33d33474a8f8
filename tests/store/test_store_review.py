"""Review storage on SQLite and PostgreSQL: the queue, restrictions mirrored on accounts,
reviewer actions with their ledger entries, documents and guardian notifications."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from qinglang.policy import load_policy
from qinglang.review.actions import ActionError
from qinglang.risk.types import Alert as RiskAlert
from qinglang.risk.types import Signal
from qinglang.store import ledger, repo
from qinglang.store import review as store_review
from qinglang.store.db import transaction
from qinglang.store.models import INDEFINITE, Account, LedgerEntry, Platform

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POLICY = load_policy("cn")


def risk_alert(
    level: str = "restrict", score: float = 0.9, minors: tuple[str, ...] = ("girl",)
) -> RiskAlert:
    return RiskAlert(
        id=f"al-man-{level}",
        sender="man",
        level=level,
        score=score,
        at=NOW,
        signals=(Signal("cue.asks_age", 0.3, "asks age", "询问年龄", ("e1",), "你几岁了？"),),
        minors=minors,
        event_ids=("e1",),
        rule_id=f"cn.risk.{level}",
    )


EVIDENCE = {
    "alert": "al-man-restrict",
    "sender": {"account": "man", "age": 40},
    "level": "restrict",
    "score": 0.9,
    "rule_id": "cn.risk.restrict",
    "signals": [
        {
            "name": "cue.asks_age",
            "weight": 0.3,
            "explanation_zh": "询问年龄",
            "explanation_en": "asks age",
            "event_ids": ["e1"],
            "excerpt": "你几岁了？ | 住哪",
        }
    ],
    "minors": [{"account": "girl", "age": 10}],
    "timeline": [
        {
            "event_id": "e1",
            "at": NOW.isoformat(),
            "kind": "message",
            "actor": "man",
            "counterpart": "girl",
            "text_chars": 5,
        }
    ],
}


@pytest.fixture
def world(session_maker: sessionmaker[Session]) -> Platform:
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "video", "Video")
        repo.upsert_account(s, p.id, "man", birth_date=date(1986, 1, 1), age_source="verified")
        girl = repo.upsert_account(s, p.id, "girl", birth_date=date(2016, 1, 1))
        mum = repo.upsert_guardian(s, p.id, "mum")
        repo.link_guardian(s, mum.id, girl.id, method="signed_form", verified_by="ops")
        s.expunge(p)
        return p


def account(sm: sessionmaker[Session], pid: int, name: str) -> Account:
    with transaction(sm) as s:
        a = repo.get_account(s, pid, name)
        assert a is not None
        return a


def kinds(sm: sessionmaker[Session], pid: int) -> list[str]:
    with transaction(sm) as s:
        return list(
            s.scalars(
                select(LedgerEntry.kind)
                .where(LedgerEntry.platform_id == pid)
                .order_by(LedgerEntry.seq)
            )
        )


def test_queue_is_idempotent_with_priority_and_due(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    with transaction(session_maker) as s:
        row = store_review.queue_alert(s, world.id, risk_alert(), EVIDENCE, POLICY, NOW)
        assert row is not None
        assert row.priority == "urgent" and row.due_at == NOW + timedelta(hours=1)
        assert store_review.queue_alert(s, world.id, risk_alert(), EVIDENCE, POLICY, NOW) is None
        low = store_review.queue_alert(
            s, world.id, risk_alert("review", 0.5), EVIDENCE, POLICY, NOW
        )
        assert low is not None and low.priority == "normal"
        assert low.due_at == NOW + timedelta(hours=72)
        raw = s.execute(text("SELECT evidence FROM alerts ORDER BY id")).scalars().all()
    assert all("几岁" not in r for r in raw)  # evidence encrypted at rest
    with transaction(session_maker) as s:
        flt = store_review.QueueFilter(status=("open",))
        rows, total = store_review.list_alerts(s, world.id, flt, NOW)
        assert total == 2 and rows[0].alert_id == "al-man-restrict"  # earliest due first
        late = NOW + timedelta(hours=2)
        rows, total = store_review.list_alerts(
            s, world.id, store_review.QueueFilter(overdue=True), late
        )
        assert [r.alert_id for r in rows] == ["al-man-restrict"]
        rows, _ = store_review.list_alerts(
            s, world.id, store_review.QueueFilter(priority=("normal",)), late
        )
        assert [r.alert_id for r in rows] == ["al-man-review"]
        assert store_review.alert_summary(rows[0], late)["overdue"] is False


def test_auto_restriction_is_mirrored_and_audited(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    before = account(session_maker, world.id, "man").updated_at
    with transaction(session_maker) as s:
        row = store_review.queue_alert(s, world.id, risk_alert(), EVIDENCE, POLICY, NOW)
        assert row is not None
        r = store_review.auto_restrict(s, row, POLICY, NOW)
        assert r is not None and r.automatic and r.until is None
    man = account(session_maker, world.id, "man")
    assert man.restricted_until == INDEFINITE
    assert man.updated_at > before
    assert kinds(session_maker, world.id)[-1] == "review.auto_restrict"
    with transaction(session_maker) as s:
        assert ledger.verify(s, world.id) is None


def test_dismiss_needs_a_reason_and_lifts_the_automatic_restriction(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    with transaction(session_maker) as s:
        row = store_review.queue_alert(s, world.id, risk_alert(), EVIDENCE, POLICY, NOW)
        assert row is not None
        store_review.auto_restrict(s, row, POLICY, NOW)
    with transaction(session_maker) as s:
        row = store_review.find_alert(s, world.id, "al-man-restrict")
        assert row is not None
        with pytest.raises(ActionError) as exc:
            store_review.act(s, world, POLICY, row, "dismiss", "rev1", "  ", now=NOW)
        assert exc.value.field == "reason"
        out = store_review.act(
            s, world, POLICY, row, "dismiss", "rev1", "the man is her teacher", now=NOW
        )
        assert out["alert"]["status"] == "dismissed" and len(out["lifted"]) == 1
        with pytest.raises(ActionError) as exc:
            store_review.act(s, world, POLICY, row, "restrict", "rev1", None, now=NOW)
        assert exc.value.status == 409
    assert account(session_maker, world.id, "man").restricted_until is None
    assert kinds(session_maker, world.id)[-2:] == ["review.auto_restrict", "review.dismiss"]
    with transaction(session_maker) as s:
        body = json.loads(
            s.scalars(select(LedgerEntry.body).order_by(LedgerEntry.seq.desc())).first() or "{}"
        )
    assert "teacher" not in json.dumps(body, ensure_ascii=False)  # only its digest is chained


def test_reviewer_actions(session_maker: sessionmaker[Session], world: Platform) -> None:
    later = NOW + timedelta(days=30)
    with transaction(session_maker) as s:
        row = store_review.queue_alert(s, world.id, risk_alert(), EVIDENCE, POLICY, NOW)
        assert row is not None
        auto = store_review.auto_restrict(s, row, POLICY, NOW)
        assert auto is not None
        out = store_review.act(
            s, world, POLICY, row, "restrict", "rev1", "confirmed", {"until": later}, NOW
        )
        assert out["restriction"]["until"] == later.isoformat()
        assert out["superseded"] == [auto.id]
        with pytest.raises(ActionError) as exc:
            store_review.act(s, world, POLICY, row, "dismiss", "rev1", "oops", now=NOW)
        assert exc.value.status == 409
        notified = store_review.act(s, world, POLICY, row, "notify_guardians", "rev1", now=NOW)
        assert [n["guardian"] for n in notified["notifications"]] == ["mum"]
        assert "girl" in notified["notifications"][0]["message_zh"]
        assert "几岁" not in notified["notifications"][0]["message_zh"]
        removed = store_review.act(
            s, world, POLICY, row, "remove_content", "rev1", params={"items": ["p1"]}, now=NOW
        )
        assert removed["items"] == ["p1"]
        with pytest.raises(ActionError) as exc:
            store_review.act(s, world, POLICY, row, "report", "rev1", params={}, now=NOW)
        assert exc.value.field == "authority"
        report = store_review.act(
            s,
            world,
            POLICY,
            row,
            "report",
            "rev1",
            params={"authority": "police", "reference": "JZ-1"},
            now=NOW,
        )
        doc = store_review.get_document(s, row, report["document"]["id"])
        assert doc is not None
        assert "公安机关" in doc.content and "police" in doc.content
        assert "你几岁了？ \\| 住哪" in doc.content  # excerpt, with the table pipe escaped
        assert "限制联系未成年人" in doc.content  # measures taken are listed
        suspended = store_review.act(s, world, POLICY, row, "suspend", "rev2", now=NOW)
        assert suspended["platform_must"]["en"].startswith("suspend account man")
        assert row.status == "actioned" and row.first_action_at == NOW
        detail = store_review.alert_detail(s, row, NOW)
    assert [a["kind"] for a in detail["actions"]] == [
        "auto_restrict",
        "restrict",
        "notify_guardians",
        "remove_content",
        "report",
        "suspend",
    ]
    assert account(session_maker, world.id, "man").restricted_until == INDEFINITE  # suspension
    assert kinds(session_maker, world.id)[-6:] == [f"review.{a['kind']}" for a in detail["actions"]]


def test_restriction_reaches_an_account_registered_later(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    with transaction(session_maker) as s:
        r = store_review.add_restriction(
            s, world.id, "newcomer", scope="contact_minors", reason="test", by="rev", now=NOW
        )
    with transaction(session_maker) as s:
        repo.upsert_account(s, world.id, "newcomer", birth_date=date(1990, 1, 1))
    assert account(session_maker, world.id, "newcomer").restricted_until == INDEFINITE
    with transaction(session_maker) as s:
        row = s.merge(r)
        out = store_review.lift(s, row, "rev", "mistaken identity", NOW)
        assert out["lifted_by"] == "rev"
        with pytest.raises(ActionError):
            store_review.lift(s, row, "rev", "again please", NOW)
    assert account(session_maker, world.id, "newcomer").restricted_until is None
    assert kinds(session_maker, world.id)[-1] == "review.lift"


def test_expired_restrictions_are_not_active(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    with transaction(session_maker) as s:
        store_review.add_restriction(
            s,
            world.id,
            "man",
            scope="contact_minors",
            reason="short",
            by="rev",
            until=NOW + timedelta(hours=1),
            now=NOW,
        )
        assert len(store_review.active_restrictions(s, world.id, "man", NOW)) == 1
        assert store_review.active_restrictions(s, world.id, "man", NOW + timedelta(hours=2)) == []
    assert account(session_maker, world.id, "man").restricted_until == NOW + timedelta(hours=1)


def test_a_report_sets_the_legal_hold_and_a_reviewer_releases_it(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    with transaction(session_maker) as s:
        row = store_review.queue_alert(s, world.id, risk_alert(), EVIDENCE, POLICY, NOW)
        assert row is not None and store_review.hold_view(row) is None
        assert not store_review.is_held(row)
        report = store_review.act(
            s, world, POLICY, row, "report", "rev1", params={"authority": "cac"}, now=NOW
        )
        hold = report["hold"]
        assert hold["active"] and hold["set_by"] == "rev1" and hold["set_at"] == NOW.isoformat()
        assert "网信部门" in hold["reason"] and "art. 80" in hold["reason"]
        assert report["action"]["details"]["hold"] is True
        assert store_review.held_evidence(s, world.id, NOW, 0) == {"e1": "legal_hold"}
        # a second report keeps the hold as it is
        again = store_review.act(
            s, world, POLICY, row, "report", "rev2", params={"authority": "police"}, now=NOW
        )
        assert "hold" not in again and row.hold_set_by == "rev1"
        with pytest.raises(ActionError) as exc:
            store_review.set_hold(s, row, "lead", "keep it", NOW)
        assert (exc.value.field, exc.value.status) == ("hold", 409)
        with pytest.raises(ActionError) as exc:
            store_review.release_hold(s, row, "lead", "", NOW)
        assert exc.value.field == "reason"
        later = NOW + timedelta(days=1)
        out = store_review.release_hold(s, row, "lead", "the police closed the case", later)
        assert out["hold"]["active"] is False and out["hold"]["released_at"] == later.isoformat()
        with pytest.raises(ActionError) as exc:
            store_review.release_hold(s, row, "lead", "twice", later)
        assert exc.value.status == 409
        # released: the evidence of the actioned alert follows the pack's period again
        assert store_review.held_evidence(s, world.id, later, 10) == {"e1": "actioned_alert"}
        assert store_review.held_evidence(s, world.id, later + timedelta(days=11), 10) == {}
        # a reviewer may hold it again
        store_review.set_hold(s, row, "lead", "new request from the police", later)
        assert store_review.is_held(row) and row.hold_set_by == "lead"
    assert kinds(session_maker, world.id)[-4:] == [
        "review.report",
        "review.report",
        "review.release",
        "review.hold",
    ]


def test_actioned_alert_with_restriction_in_force_keeps_its_evidence(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    with transaction(session_maker) as s:
        row = store_review.queue_alert(s, world.id, risk_alert(), EVIDENCE, POLICY, NOW)
        assert row is not None
        store_review.auto_restrict(s, row, POLICY, NOW)
        until = NOW + timedelta(days=30)
        store_review.act(
            s, world, POLICY, row, "restrict", "rev1", params={"until": until}, now=NOW
        )
        closings = store_review.actioned_closings(s, world.id, NOW + timedelta(days=1))
        assert closings == {row.id: None}
        assert store_review.held_evidence(s, world.id, NOW + timedelta(days=29), 0) == {
            "e1": "actioned_alert"
        }
        # the restriction ended: the period counts from its end
        assert store_review.actioned_closings(s, world.id, until) == {row.id: until}
        assert store_review.held_evidence(s, world.id, until + timedelta(days=5), 10) == {
            "e1": "actioned_alert"
        }
        assert store_review.held_evidence(s, world.id, until + timedelta(days=11), 10) == {}
