"""Data-rights requests in the store, on SQLite and PostgreSQL: each kind end to end, the access
export (everything about the child, nothing about another), deletion and what it keeps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from qinglang.consent.rights import RightsError
from qinglang.policy import Policy, load_policy
from qinglang.store import events as store_events
from qinglang.store import ledger, repo
from qinglang.store import rights as store
from qinglang.store.consents import publish_notice, record_consent, record_verified_link
from qinglang.store.db import transaction
from qinglang.store.models import (
    Account,
    Alert,
    Consent,
    ContentFlag,
    ContentItem,
    DecisionLog,
    Guardian,
    GuardianLink,
    LedgerEntry,
    Platform,
    Relationship,
    RightsRequest,
    RightsRequestEvent,
    StoredEvent,
)

CN = load_policy("cn")
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
A_BIRTH = date(2016, 4, 2)  # 9 at T0
B_BIRTH = date(2013, 5, 17)  # 12 at T0
A, B = "child-a-5512", "child-b-7781"
B_HASH = "b7" * 32
B_CORRECTED = "2013-06-21"

ELEMENTS = {
    "purpose_method_scope": "短视频服务",
    "storage_location": "中国境内",
    "retention_period": "账号存续期间",
    "expiry_handling": "到期删除",
    "security_measures": "加密存储",
    "refusal_consequences": "不影响基本功能",
    "complaint_channel": "客服",
    "correction_deletion": "监护人页面",
    "necessity_and_effect": "展示作品所必需",
}
NOTICE = {
    "title": "儿童个人信息保护规则",
    "elements": ELEMENTS,
    "items": [
        {
            "purpose": "publish_content",
            "categories": ["child_content"],
            "method": "上传",
            "scope": "关注者",
            "audience": "followers",
        },
        {"purpose": "nearby", "categories": ["location"], "method": "定位", "scope": "附近"},
    ],
}


def _age(years: int) -> date:
    d = (T0 - timedelta(days=7)).date()
    return d.replace(year=d.year - years)


@dataclass(frozen=True)
class World:
    """Two children A and B on one platform, everything the store holds, plus a 14- and a
    12-year-old and an account of unknown age."""

    platform_id: int
    a: int
    b: int
    mum_a: int
    dad_b: int
    b_request: int


def _platform(s: Session, world: World) -> Platform:
    p = s.get(Platform, world.platform_id)
    assert p is not None
    return p


def _account(s: Session, account_id: int) -> Account:
    a = s.get(Account, account_id)
    assert a is not None
    return a


def _guardian(s: Session, guardian_id: int) -> Guardian:
    g = s.get(Guardian, guardian_id)
    assert g is not None
    return g


@pytest.fixture
def world(session_maker: sessionmaker[Session]) -> World:
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "video", "Video")
        a = repo.upsert_account(
            s,
            p.id,
            A,
            birth_date=A_BIRTH,
            sex="F",
            age_source="guardian_declared",
            settings={"playtime.daily_minutes": 30},
        )
        b = repo.upsert_account(
            s,
            p.id,
            B,
            birth_date=B_BIRTH,
            sex="M",
            age_source="verified",
            id_number_hash=B_HASH,
            settings={"playtime.daily_minutes": 45},
        )
        for name, years in (("teen-14", 14), ("kid-12", 12)):
            repo.upsert_account(s, p.id, name, birth_date=_age(years), age_source="verified")
        repo.upsert_account(s, p.id, "nobody-knows")
        mum = repo.upsert_guardian(s, p.id, "mum-a", display_name="王女士")
        dad = repo.upsert_guardian(s, p.id, "dad-b", display_name="李先生")
        ev = {"reference": "kyc-1", "checks": ["name", "id_number"]}
        record_verified_link(s, p, mum, a, "id_number_realname", "kyc", ev, at=T0)
        record_verified_link(s, p, dad, b, "small_payment", "pay", {"reference": "pay-9"}, at=T0)
        edges: tuple[tuple[Account, Account, repo.RelationKind], ...] = (
            (a, b, "follow"),
            (b, a, "follow"),
            (a, b, "approved_contact"),
            (b, a, "block"),
        )
        for src, dst, kind in edges:
            repo.set_relationship(s, p.id, src.id, dst.id, kind)
        item_a = repo.upsert_content_item(s, p.id, "a-video-1", a.id)
        repo.set_content_flag(s, item_a.id, "shows_minor", source="model", audience="friends")
        repo.set_content_flag(s, item_a.id, "minor_pi", source="scan")
        item_b = repo.upsert_content_item(s, p.id, "b-video-9", b.id)
        repo.set_content_flag(s, item_b.id, "shows_minor", source="model")
        notice = publish_notice(s, p, CN, "zh", "child", NOTICE, "dpo", at=T0).notice
        for child, guardian, purpose, category, status in (
            (a, mum, "publish_content", "child_content", "granted"),
            (a, mum, "nearby", "location", "refused"),
            (b, dad, "publish_content", "child_content", "granted"),
        ):
            record_consent(
                s,
                p,
                child,
                purpose=purpose,
                category=category,
                status=status,
                given_by="guardian",
                guardian=guardian,
                notice=notice,
                at=T0,
            )
        for subject, other, action, request in (
            (a, b, "dm", {"recipient": B, "channel": "dm"}),
            (b, a, "follow", None),
            (b, None, "game", {"birth_date": B_BIRTH.isoformat()}),
        ):
            repo.log_decision(
                s,
                p,
                kind="contact",
                action=action,
                outcome="deny",
                rule_ids=["cn.contact.dm.child"],
                subject_account_id=subject.id,
                other_account_id=None if other is None else other.id,
                request=request,
                at=T0,
                always=True,
            )
        store.create_request(s, p, CN, a, kind="access", requester="guardian", guardian=mum, at=T0)
        b_req = store.create_request(
            s,
            p,
            CN,
            b,
            kind="correction",
            requester="guardian",
            guardian=dad,
            details={"birth_date": B_CORRECTED},
            at=T0,
        )
        store.create_request(
            s, p, CN, b, kind="deletion", requester="guardian", guardian=dad, at=T0
        )
        return World(p.id, a.id, b.id, mum.id, dad.id, b_req.id)


def _create(
    s: Session,
    world: World,
    kind: str,
    *,
    account: int | None = None,
    guardian: int | None = None,
    requester: str = "guardian",
    details: dict[str, Any] | None = None,
    at: datetime = T0,
    policy: Policy = CN,
) -> RightsRequest:
    g = None
    if requester == "guardian":
        g = _guardian(s, world.mum_a if guardian is None else guardian)
    return store.create_request(
        s,
        _platform(s, world),
        policy,
        _account(s, account or world.a),
        kind=kind,
        requester=requester,
        guardian=g,
        details=details,
        at=at,
    )


def _move(s: Session, world: World, r: RightsRequest, status: str, **kw: Any) -> store.Outcome:
    kw.setdefault("actor", "dpo-desk")
    kw.setdefault("at", T0 + timedelta(days=2))
    return store.transition(s, _platform(s, world), CN, r, status=status, **kw)


def _count(s: Session, model: Any, *where: Any) -> int:
    n = s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
    return int(n)


def _ledger_kinds(s: Session, world: World, subject: str) -> list[str]:
    return [e.kind for e in ledger.entries_about(s, world.platform_id, subject)]


# ---------------------------------------------------------------- creation, due dates, history


def test_created_request_is_due_per_pack_with_history_and_ledger(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        r = _create(s, world, "deletion")
        assert r.status == "received" and r.subject == A and r.requester == "guardian"
        assert r.due_at == T0 + timedelta(days=15)
        rid = r.id
    with session_maker() as s:
        r2 = store.get_request(s, world.platform_id, rid)
        assert r2 is not None and r2.due_at == T0 + timedelta(days=15)
        assert [(e.status, e.actor) for e in store.events_of(s, rid)] == [
            ("received", "guardian:mum-a")
        ]
        entry = ledger.entries_about(s, world.platform_id, A)[-1]
        data = json.loads(entry.body)["data"]
        assert entry.kind == "rights.received"
        assert data["request"] == rid and data["kind"] == "deletion"
        assert data["guardian"] == "mum-a" and data["status"] == "received"


def test_due_date_follows_a_platform_overlay(
    session_maker: sessionmaker[Session], world: World
) -> None:
    overlay = (
        '[pack]\nid = "acme"\nversion = "1"\njurisdiction = "CN"\ntimezone = "Asia/Shanghai"\n'
        'title_zh = "甲"\ntitle_en = "Acme"\nbase = "cn"\n'
        '[[overrides]]\nid = "cn.rights.response_days"\nvalue = 5\n'
    )
    with transaction(session_maker) as s:
        r = _create(s, world, "access", policy=load_policy("cn", overlay))
        assert r.due_at == T0 + timedelta(days=5)


def test_overdue_listing(session_maker: sessionmaker[Session], world: World) -> None:
    with transaction(session_maker) as s:
        early = _create(s, world, "access", at=T0 - timedelta(days=20)).id
        late = _create(s, world, "deletion", at=T0 - timedelta(days=5)).id
        done = _create(s, world, "withdrawal", at=T0 - timedelta(days=30))
        _move(s, world, done, "completed", at=T0 - timedelta(days=29))
        working = _create(s, world, "access", at=T0 - timedelta(days=16))
        _move(s, world, working, "in_progress", at=T0 - timedelta(days=15))
    with session_maker() as s:
        overdue = store.list_requests(s, world.platform_id, overdue_at=T0)
        assert [r.id for r in overdue] == [early, working.id]
        later = store.list_requests(s, world.platform_id, overdue_at=T0 + timedelta(days=11))
        assert {early, working.id, late} <= {r.id for r in later}
        assert done.id not in {r.id for r in later}
        mine = store.list_requests(s, world.platform_id, account_id=world.a, status="completed")
        assert [r.id for r in mine] == [done.id]


# ---------------------------------------------------------------- who may ask


def test_guardian_of_another_child_may_not_ask(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s, pytest.raises(RightsError) as e:
        _create(s, world, "access", guardian=world.dad_b)
    assert e.value.status == 403 and e.value.field == "guardian"


def test_revoked_link_may_not_ask(session_maker: sessionmaker[Session], world: World) -> None:
    with transaction(session_maker) as s:
        assert repo.unlink_guardian(s, world.mum_a, world.a)
    with transaction(session_maker) as s, pytest.raises(RightsError) as e:
        _create(s, world, "access")
    assert e.value.status == 403


@pytest.mark.parametrize(("name", "allowed"), [("teen-14", True), ("kid-12", False)])
def test_self_request_from_fourteen(
    session_maker: sessionmaker[Session], world: World, name: str, allowed: bool
) -> None:
    with transaction(session_maker) as s:
        account = repo.get_account(s, world.platform_id, name)
        assert account is not None
        if allowed:
            r = _create(s, world, "access", account=account.id, requester="self")
            assert r.requester == "self" and r.guardian_id is None
            return
        with pytest.raises(RightsError) as e:
            _create(s, world, "access", account=account.id, requester="self")
        assert e.value.status == 403 and e.value.field == "requester"
        assert e.value.rule is not None and e.value.rule.id == "cn.consent.self_from_age"


def test_unknown_age_cannot_ask_for_itself(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        account = repo.get_account(s, world.platform_id, "nobody-knows")
        assert account is not None
        with pytest.raises(RightsError) as e:
            _create(s, world, "access", account=account.id, requester="self")
        assert e.value.status == 403


# ---------------------------------------------------------------- transitions


def test_refusal_needs_a_reason_and_is_final(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        rid = _create(s, world, "deletion").id
    with transaction(session_maker) as s:
        r = store.get_request(s, world.platform_id, rid)
        assert r is not None
        with pytest.raises(RightsError) as e:
            _move(s, world, r, "refused", reason="  ")
        assert e.value.field == "reason" and e.value.status == 422
    with transaction(session_maker) as s:
        r = store.get_request(s, world.platform_id, rid)
        assert r is not None and r.status == "received"
        _move(s, world, r, "refused", reason="the account is under a legal hold (case 12)")
    with transaction(session_maker) as s:
        r = store.get_request(s, world.platform_id, rid)
        assert r is not None and r.status == "refused"
        assert r.reason == "the account is under a legal hold (case 12)"
        assert r.closed_at == T0 + timedelta(days=2)
        with pytest.raises(RightsError) as e:
            _move(s, world, r, "completed")
        assert e.value.status == 409 and e.value.field == "status"
        entry = ledger.entries_about(s, world.platform_id, A)[-1]
        assert entry.kind == "rights.refused"
        assert json.loads(entry.body)["data"]["reason"].startswith("the account is under")
    with session_maker() as s:
        assert _count(s, ContentItem, ContentItem.owner_account_id == world.a) == 1


def test_status_history_records_every_step(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        r = _create(s, world, "withdrawal")
        _move(s, world, r, "in_progress", note="identity checked", at=T0 + timedelta(hours=1))
        _move(s, world, r, "completed", at=T0 + timedelta(hours=2))
        rid = r.id
    with session_maker() as s:
        events = store.events_of(s, rid)
        assert [(e.status, e.note) for e in events] == [
            ("received", None),
            ("in_progress", "identity checked"),
            ("completed", None),
        ]
        kinds = [k for k in _ledger_kinds(s, world, A) if k.startswith("rights.")]
        assert kinds[-3:] == ["rights.received", "rights.in_progress", "rights.completed"]


# ---------------------------------------------------------------- each kind


def test_access_completes_with_the_export_and_keeps_only_its_digest(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        r = _create(s, world, "access")
        done = _move(s, world, r, "completed")
        assert done.export is not None
        assert done.export["account"]["birth_date"] == A_BIRTH.isoformat()
        answer = done.request.answer
        assert answer is not None and answer["export"]["format_version"] == 1
        assert answer["export"]["counts"] == done.export["counts"]
        assert A_BIRTH.isoformat() not in json.dumps(answer)
        rid = r.id
    with session_maker() as s:
        r2 = store.get_request(s, world.platform_id, rid)
        assert r2 is not None and r2.status == "completed" and r2.closed_at is not None
        for e in ledger.entries_about(s, world.platform_id, A):
            assert A_BIRTH.isoformat() not in e.body


def test_correction_applies_and_keeps_values_out_of_the_ledger(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with session_maker() as s:
        before = _account(s, world.a).updated_at
    fix = {"birth_date": "2016-05-02", "sex": "M", "settings": {"playtime.daily_minutes": 20}}
    with transaction(session_maker) as s:
        r = _create(s, world, "correction", details=fix)
        assert store.details_of(r) == fix
        done = _move(s, world, r, "completed")
        assert done.request.answer == {
            "corrected": ["birth_date", "sex", "settings"],
            "age_source": "guardian_declared",
        }
    with session_maker() as s:
        a = _account(s, world.a)
        assert a.birth_date == date(2016, 5, 2) and a.sex == "M"
        assert a.settings == {"playtime.daily_minutes": 20}
        assert a.age_source == "guardian_declared"
        assert a.updated_at > before
        for e in ledger.entries_about(s, world.platform_id, A):
            assert "2016-05-02" not in e.body


def test_correction_that_loosens_a_floor_is_rejected(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s, pytest.raises(RightsError) as e:
        _create(s, world, "correction", details={"settings": {"contact.blocked_outcome": "allow"}})
    assert e.value.field == "details.settings.contact.blocked_outcome"
    with transaction(session_maker) as s, pytest.raises(RightsError) as e:
        _create(s, world, "correction", details={"nickname": "x"})
    assert e.value.field == "details.nickname"


def test_withdrawal_withdraws_every_granted_consent(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with session_maker() as s:
        version = _account(s, world.a).consent_version
    with transaction(session_maker) as s:
        r = _create(s, world, "withdrawal")
        done = _move(s, world, r, "completed")
        answer = done.request.answer
        assert answer is not None
        assert [(w["purpose"], w["category"]) for w in answer["withdrawn"]] == [
            ("publish_content", "child_content")
        ]
    with session_maker() as s:
        rows = {(c.purpose, c.status) for c in s.execute(select(Consent)).scalars()}
        assert ("publish_content", "withdrawn") in rows and ("nearby", "refused") in rows
        b_consent = s.execute(select(Consent).where(Consent.account_id == world.b)).scalar_one()
        assert b_consent.status == "granted"
        kinds = _ledger_kinds(s, world, A)
        assert kinds[-2:] == ["consent.withdrawn", "rights.completed"]
        assert _account(s, world.a).consent_version > version


def _held_about_a(s: Session, world: World) -> dict[str, int]:
    items = select(ContentItem.id).where(ContentItem.owner_account_id == world.a)
    return {
        "content_items": _count(s, ContentItem, ContentItem.owner_account_id == world.a),
        "content_flags": _count(s, ContentFlag, ContentFlag.item_id.in_(items)),
        "relationships": _count(
            s,
            Relationship,
            or_(Relationship.src_account_id == world.a, Relationship.dst_account_id == world.a),
        ),
        "consents": _count(s, Consent, Consent.account_id == world.a),
    }


def test_deletion_propagates_and_lists_what_is_kept(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        older = _create(s, world, "correction", details={"sex": "M"}).id
        r = _create(s, world, "deletion")
        rid = r.id
    with session_maker() as s:
        assert _held_about_a(s, world) == {
            "content_items": 1,
            "content_flags": 2,
            "relationships": 4,
            "consents": 2,
        }
        ledger_before = _count(s, LedgerEntry, LedgerEntry.subject == A)
        b_before = _held_b(s, world)
        version = _account(s, world.a).consent_version
    with transaction(session_maker) as s:
        r2 = store.get_request(s, world.platform_id, rid)
        assert r2 is not None
        answer = _move(s, world, r2, "completed").request.answer
    assert answer is not None
    assert answer["erased"]["counts"] == {
        "content_items": 1,
        "content_flags": 2,
        "relationships": 4,
        "consents": 2,
        "rights_request_details": 1,
        "decision_log_requests": 1,
        "age_assessments": 0,
        "age_assessment_events": 0,
        "events": 0,
        "event_texts": 0,
    }
    assert "age_assessment" not in answer["erased"]
    assert set(answer["erased"]["account_fields"]) == {
        "birth_date",
        "sex",
        "age_source",
        "settings",
    }
    kept = {k["table"]: k for k in answer["kept"]}
    assert {"ledger_entries", "decision_logs", "rights_requests", "guardian_links"} <= set(kept)
    assert kept["ledger_entries"]["count"] == ledger_before
    assert kept["decision_logs"]["count"] == 2
    assert "56 para. 2" in kept["decision_logs"]["basis"]
    assert all(k["why_en"] and k["why_zh"] and "verified" in k for k in answer["kept"])
    with session_maker() as s:
        assert _held_about_a(s, world) == dict.fromkeys(
            ("content_items", "content_flags", "relationships", "consents"), 0
        )
        a = _account(s, world.a)
        assert (a.birth_date, a.sex, a.age_source, a.id_number_hash) == (None, None, None, None)
        assert a.settings == {} and a.cancelled_at is None
        assert a.consent_version > version
        old = store.get_request(s, world.platform_id, older)
        assert old is not None and old.details is None
        logs = s.execute(
            select(DecisionLog).where(
                or_(DecisionLog.subject_account_id == a.id, DecisionLog.other_account_id == a.id)
            )
        ).scalars()
        assert all(log.request is None for log in logs)
        assert _count(s, LedgerEntry, LedgerEntry.subject == A) == ledger_before + 1
        assert _count(s, GuardianLink, GuardianLink.account_id == a.id) == 1
        # B keeps everything that is B's alone.
        after_b = _held_b(s, world)
        assert after_b["relationships"] == 0 and b_before["relationships"] == 4
        assert {k: v for k, v in after_b.items() if k != "relationships"} == {
            k: v for k, v in b_before.items() if k != "relationships"
        }
        assert store.details_of(_b_request(s, world)) == {"birth_date": B_CORRECTED}
        assert ledger.verify(s, world.platform_id) is None


def _held_b(s: Session, world: World) -> dict[str, Any]:
    b = _account(s, world.b)
    return {
        "profile": (b.birth_date, b.sex, b.id_number_hash, dict(b.settings)),
        "items": _count(s, ContentItem, ContentItem.owner_account_id == world.b),
        "consents": _count(s, Consent, Consent.account_id == world.b),
        "relationships": _count(
            s,
            Relationship,
            or_(Relationship.src_account_id == world.b, Relationship.dst_account_id == world.b),
        ),
        "b_only_log": s.execute(
            select(DecisionLog.request).where(
                DecisionLog.subject_account_id == world.b, DecisionLog.other_account_id.is_(None)
            )
        ).scalar_one(),
    }


def _b_request(s: Session, world: World) -> RightsRequest:
    r = store.get_request(s, world.platform_id, world.b_request)
    assert r is not None
    return r


def test_cancellation_erases_marks_and_blocks_new_requests(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        r = _create(s, world, "cancellation")
        answer = _move(s, world, r, "completed").request.answer
        assert answer is not None and answer["cancelled_at"] == (T0 + timedelta(days=2)).isoformat()
        assert answer["erased"]["counts"]["content_items"] == 1
    with transaction(session_maker) as s:
        a = _account(s, world.a)
        assert a.cancelled_at == T0 + timedelta(days=2) and a.birth_date is None
        with pytest.raises(RightsError) as e:
            _create(s, world, "access")
        assert e.value.status == 409 and e.value.field == "account"


def test_completion_rechecks_the_guardian_link(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        rid = _create(s, world, "deletion").id
        repo.unlink_guardian(s, world.mum_a, world.a)
    with transaction(session_maker) as s:
        r = store.get_request(s, world.platform_id, rid)
        assert r is not None
        with pytest.raises(RightsError) as e:
            _move(s, world, r, "completed")
        assert e.value.status == 403
    with session_maker() as s:
        assert _held_about_a(s, world)["content_items"] == 1


# ---------------------------------------------------------------- the access export


def test_access_export_holds_everything_about_a_and_nothing_about_b(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with session_maker() as s:
        p = _platform(s, world)
        a = _account(s, world.a)
        export = store.export_account(s, p, a, T0)
        text = json.dumps(export, ensure_ascii=False)

        # Every table, row for row.
        assert export["format"] == "qinglang.access-export" and export["format_version"] == 1
        acc = export["account"]
        assert acc["external_id"] == A and acc["birth_date"] == A_BIRTH.isoformat()
        assert acc["sex"] == "F" and acc["age_source"] == "guardian_declared"
        assert acc["settings"] == {"playtime.daily_minutes": 30}
        assert acc["created_at"] and acc["updated_at"]

        def ids(model: Any, *where: Any) -> set[int]:
            return set(s.execute(select(model.id).where(*where)).scalars())

        links = ids(GuardianLink, GuardianLink.account_id == a.id)
        assert {x["id"] for x in export["guardian_links"]} == links and links
        link = export["guardian_links"][0]
        assert link["guardian"] == "mum-a" and link["method"] == "id_number_realname"
        assert link["evidence"] == {"reference": "kyc-1", "checks": ["name", "id_number"]}
        rels = ids(
            Relationship,
            or_(Relationship.src_account_id == a.id, Relationship.dst_account_id == a.id),
        )
        assert {x["id"] for x in export["relationships"]} == rels and len(rels) == 4
        assert {x["direction"] for x in export["relationships"]} == {"outgoing", "incoming"}
        items = ids(ContentItem, ContentItem.owner_account_id == a.id)
        assert {x["id"] for x in export["content_items"]} == items
        assert export["content_items"][0]["external_id"] == "a-video-1"
        flags = ids(ContentFlag, ContentFlag.item_id.in_(items))
        assert {f["id"] for x in export["content_items"] for f in x["flags"]} == flags
        consents = ids(Consent, Consent.account_id == a.id)
        assert {x["id"] for x in export["consents"]} == consents and len(consents) == 2
        assert {x["status"] for x in export["consents"]} == {"granted", "refused"}
        assert all(x["notice"]["version"] == 1 for x in export["consents"])
        logs = ids(
            DecisionLog,
            or_(DecisionLog.subject_account_id == a.id, DecisionLog.other_account_id == a.id),
        )
        assert {x["id"] for x in export["decision_logs"]} == logs and len(logs) == 2
        assert {x["role"] for x in export["decision_logs"]} == {"subject", "other_party"}
        reqs = ids(RightsRequest, RightsRequest.account_id == a.id)
        assert {x["id"] for x in export["rights_requests"]} == reqs and reqs
        events = ids(RightsRequestEvent, RightsRequestEvent.request_id.in_(reqs))
        assert {e["id"] for x in export["rights_requests"] for e in x["events"]} == events
        seqs = {e.seq for e in ledger.entries_about(s, p.id, A)}
        assert {x["seq"] for x in export["ledger_entries"]} == seqs and len(seqs) >= 4
        assert all(x["body"] is not None for x in export["ledger_entries"])
        assert export["counts"]["relationships"] == 4

        # Nothing about B: no external id, birth date, digest, content, guardian or request.
        for value in (
            B,
            B_BIRTH.isoformat(),
            B_BIRTH.strftime("%Y%m%d"),
            B_HASH,
            B_CORRECTED,
            "b-video-9",
            "dad-b",
            "pay-9",
            "李先生",
            "王女士",
        ):
            assert value not in text, value
        others = {x["other"] for x in export["relationships"]}
        assert len(others) == 1 and next(iter(others)).startswith("acct_")
        counterparts = {x["counterpart"] for x in export["decision_logs"]}
        assert counterparts == others
        dm = next(x for x in export["decision_logs"] if x["action"] == "dm")
        assert dm["request"] == {"recipient": next(iter(others)), "channel": "dm"}
        assert "pseudonymous" in export["notes"]["other_accounts"]["en"]
        assert export["notes"]["other_accounts"]["zh"]

        # B's own export shows the same pseudonym rule the other way round.
        b_export = json.dumps(store.export_account(s, p, _account(s, world.b), T0))
        assert A not in b_export and A_BIRTH.isoformat() not in b_export
        assert B_BIRTH.isoformat() in b_export and B_CORRECTED in b_export


# ---------------------------------------------------------------- platform events

STRANGER = "stranger-x-4410"  # never registered with qinglang


def _message(eid: str, actor: str, target: str, text: str, minute: int) -> dict[str, Any]:
    at = (T0 + timedelta(minutes=minute)).isoformat()
    return {"id": eid, "kind": "message", "at": at, "actor": actor, "target": target, "text": text}


def _seed_events(
    s: Session,
    world: World,
    status: str = "actioned",
    first_action: datetime | None = T0,
    hold: bool = False,
) -> None:
    """A sends two messages (one held as evidence), receives two (one held), B writes to a
    third account; an alert (actioned just now by default) references the held ones."""
    raws = [
        _message("a1", A, B, "我是A的消息", 1),
        _message("a2", A, STRANGER, "A发给陌生人", 2),
        _message("b1", B, A, "B写给A的秘密", 3),
        _message("s1", STRANGER, A, "别告诉你爸妈，周末见面", 4),
        _message("b2", B, "teen-14", "B写给别人", 5),
    ]
    assert store_events.ingest(s, world.platform_id, raws, now=T0).accepted == 5
    evidence = {"signals": [{"name": "secrecy", "event_ids": ["s1"]}], "timeline": []}
    s.add(
        Alert(
            platform_id=world.platform_id,
            alert_id="alert-1",
            sender=STRANGER,
            level="review",
            score=0.6,
            rule_id="cn.risk.review",
            raised_at=T0,
            minors=[A],
            event_ids=["a2"],
            signal_names=["secrecy"],
            evidence=json.dumps(evidence, ensure_ascii=False),
            priority="high",
            status=status,
            due_at=T0 + timedelta(hours=1),
            first_action_at=first_action,
            closed_at=T0 if status == "dismissed" else None,
            hold_reason="police request" if hold else None,
            hold_set_by="lead" if hold else None,
            hold_set_at=T0 if hold else None,
        )
    )
    s.flush()


def _texts(s: Session, world: World) -> dict[str, str | None]:
    rows = s.execute(
        select(StoredEvent.event_id, StoredEvent.text).where(
            StoredEvent.platform_id == world.platform_id
        )
    )
    return {e: t for e, t in rows}


def test_deletion_erases_the_events_and_holds_evidence(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        _seed_events(s, world)
        r = _create(s, world, "cancellation")
        answer = _move(s, world, r, "completed").request.answer
    assert answer is not None
    counts = answer["erased"]["counts"]
    assert counts["events"] == 1 and counts["event_texts"] == 1
    kept = {k["table"]: k for k in answer["kept"]}
    held = kept["events"]
    assert held["count"] == 2 and held["verified"] is False
    assert held["reason"] == "evidence for a report under 未成年人保护法 art. 80"
    assert "art. 80" in held["basis"] and held["why_zh"]
    assert (
        held["held"] == {"actioned_alert": 2} and "actioned" in held["held_why"]["actioned_alert"]
    )
    with session_maker() as s:
        assert _texts(s, world) == {
            "a2": "A发给陌生人",  # sent by A, but evidence: kept
            "b1": None,  # sent to A: text stripped, the event stays for B
            "s1": "别告诉你爸妈，周末见面",  # sent to A, evidence: kept
            "b2": "B写给别人",  # nothing to do with A
        }
        kinds = _ledger_kinds(s, world, A)
        assert kinds[-1] == "rights.completed"
        assert ledger.verify(s, world.platform_id) is None


def test_access_export_holds_the_events_with_others_pseudonymised(
    session_maker: sessionmaker[Session], world: World
) -> None:
    with transaction(session_maker) as s:
        _seed_events(s, world)
    with session_maker() as s:
        p = _platform(s, world)
        export = store.export_account(s, p, _account(s, world.a), T0)
        text = json.dumps(export, ensure_ascii=False)
    events = {e["event_id"]: e for e in export["events"]}
    assert list(events) == ["a1", "a2", "b1", "s1"] and export["counts"]["events"] == 4
    b_ref = next(iter({x["other"] for x in export["relationships"]}))
    a1, b1, s1 = events["a1"], events["b1"], events["s1"]
    assert a1["role"] == "actor" and a1["actor"] == "self" and a1["target"] == b_ref
    assert a1["text"] == "我是A的消息" and a1["kind"] == "message" and a1["received_at"]
    assert b1["role"] == "target" and b1["actor"] == b_ref and b1["target"] == "self"
    assert b1["text"] == "B写给A的秘密"  # sent to the child: hers to see
    assert s1["actor"].startswith("acct_") and s1["actor"] != b_ref
    assert events["a2"]["target"] == s1["actor"]  # one stable reference per account
    for value in (B, STRANGER, "B写给别人", "teen-14"):
        assert value not in text, value


@pytest.mark.parametrize(
    ("status", "first_action", "hold", "reason"),
    [
        ("dismissed", T0, False, None),
        ("dismissed", T0, True, "legal_hold"),
        ("in_review", None, False, "evidence_hold"),
        ("actioned", T0 - timedelta(days=2000), False, None),
        ("actioned", T0 - timedelta(days=2000), True, "legal_hold"),
    ],
)
def test_deletion_keeps_only_evidence_an_alert_still_holds(
    session_maker: sessionmaker[Session],
    world: World,
    status: str,
    first_action: datetime | None,
    hold: bool,
    reason: str | None,
) -> None:
    with transaction(session_maker) as s:
        _seed_events(s, world, status, first_action, hold)
        r = _create(s, world, "deletion")
        answer = _move(s, world, r, "completed").request.answer
    assert answer is not None
    kept = {k["table"]: k for k in answer["kept"]}
    counts = answer["erased"]["counts"]
    with session_maker() as s:
        texts = _texts(s, world)
    if reason is None:
        assert "events" not in kept
        assert (counts["events"], counts["event_texts"]) == (2, 2)
        assert texts == {"b1": None, "s1": None, "b2": "B写给别人"}
    else:
        assert kept["events"]["held"] == {reason: 2} and kept["events"]["held_why"][reason]
        assert texts["s1"] == "别告诉你爸妈，周末见面" and texts["a2"] == "A发给陌生人"


def _suspect(s: Session, world: World, account_id: int) -> None:
    from qinglang.age.infer import AgeEstimate
    from qinglang.store import assessments

    estimate = AgeEstimate("x", 0.93, 0.2, "12to15", True, False, (), "default")
    assessments.record_score(s, _account(s, account_id), estimate, 0.5, "score", at=T0)


def test_deletion_erases_the_age_assessment_and_its_history(
    session_maker: sessionmaker[Session], world: World
) -> None:
    from qinglang.store.models import AgeAssessment, AgeAssessmentEvent

    with transaction(session_maker) as s:
        _suspect(s, world, world.a)
        _suspect(s, world, world.b)
        before = _ledger_kinds(s, world, A)
        assert {"age.suspect", "age.request_verification"} <= set(before)
        r = _create(s, world, "deletion")
    with transaction(session_maker) as s:
        answer = _move(s, world, r, "completed").request.answer
    assert answer is not None
    counts = answer["erased"]["counts"]
    assert counts["age_assessments"] == 1 and counts["age_assessment_events"] == 2
    note = answer["erased"]["age_assessment"]
    assert "erased" in note["en"] and "ledger" in note["en"] and note["zh"]
    assert "age_assessments" not in {k["table"] for k in answer["kept"]}
    assert "age.*" in {k["table"]: k for k in answer["kept"]}["ledger_entries"]["minimised"]
    with session_maker() as s:
        assert _count(s, AgeAssessment, AgeAssessment.account_id == world.a) == 0
        assert _count(s, AgeAssessmentEvent, AgeAssessmentEvent.account_id == world.a) == 0
        # B's assessment is B's alone
        assert _count(s, AgeAssessment, AgeAssessment.account_id == world.b) == 1
        assert _count(s, AgeAssessmentEvent, AgeAssessmentEvent.account_id == world.b) == 2
        # the audit entries stay in the ledger, which still verifies
        assert set(before) <= set(_ledger_kinds(s, world, A))
        assert ledger.verify(s, world.platform_id) is None
        export = store.export_account(s, _platform(s, world), _account(s, world.a), T0)
    assert export["age_assessment"] is None and export["age_assessment_events"] == []
