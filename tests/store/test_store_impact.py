"""Impact assessments and attestations in the store, on SQLite and PostgreSQL: the template
filled from the platform's records, versions kept for the years of the pack rule (never
purged before, never the latest), attested documents encrypted with their digest, and which
documents evidence a period."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from qinglang.audit.impact import AssessmentError, draft
from qinglang.policy import load_policy
from qinglang.store import impact as store
from qinglang.store import ledger, repo
from qinglang.store.consents import publish_notice
from qinglang.store.db import transaction
from qinglang.store.models import Attestation, DecisionLog, ImpactAssessment, LedgerEntry, Platform
from tests.audit.test_measures import CATALOGUE

CN = load_policy("cn")
YEARS = store.keep_years(CN)
MONTHS = store.valid_months(CN)
assert CN.require("audit.records_retention_years").value == YEARS
assert CN.require("audit.attestation_valid_months").value == MONTHS
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
D = timedelta(days=1)
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
NOTICE: dict[str, Any] = {
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


def _p(s: Session, slug: str) -> Platform:
    p = repo.get_platform_by_slug(s, slug)
    assert p is not None
    return p


@pytest.fixture
def seeded(session_maker: sessionmaker[Session]) -> sessionmaker[Session]:
    """Platform video with a child notice (v2), accounts, a guardian link, an exposure decision
    and a consent ledger entry; platform games with nothing."""
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "video", "Video", decision_sample_rate=0.05)
        repo.create_platform(s, "games", "Games")
        publish_notice(s, p, CN, "zh", "child", NOTICE, "ops", T0 - 30 * D)
        v2 = copy.deepcopy(NOTICE)
        v2["items"][1]["categories"] = ["location", "device_id"]
        publish_notice(s, p, CN, "zh", "child", v2, "ops", T0 - 20 * D)
        girl = repo.upsert_account(
            s, p.id, "girl", birth_date=date(2016, 1, 1), age_source="guardian_declared"
        )
        repo.upsert_account(s, p.id, "man", birth_date=date(1980, 1, 1), age_source="verified")
        repo.upsert_account(s, p.id, "anon")
        mum = repo.upsert_guardian(s, p.id, "mum")
        repo.link_guardian(s, mum.id, girl.id, method="signed_form", verified_by="ops")
        s.add(
            DecisionLog(
                platform_id=p.id, kind="exposure", action="feed", outcome="deny", rule_ids=[], at=T0
            )
        )
        ledger.append(s, p.id, "consent.granted", "girl", {"purpose": "nearby"}, at=T0)
    return session_maker


def test_platform_config_is_read_from_the_records(seeded: sessionmaker[Session]) -> None:
    with transaction(seeded) as s:
        c = store.platform_config(s, _p(s, "video"), CN)
        empty = store.platform_config(s, _p(s, "games"), CN)
    assert c.platform_slug == "video" and c.pack.startswith("cn ")
    assert [(n.language, n.audience, n.version) for n in c.notices] == [("zh", "child", 2)]
    nearby = c.notices[0].items[1]
    assert nearby.purpose == "nearby" and nearby.categories == ("location", "device_id")
    assert dict(c.age_sources) == {"guardian_declared": 1, "verified": 1, "unknown": 1}
    assert c.recommendation_filter and not c.age_inference
    assert c.encryption_at_rest and c.staff_read_logging and c.consent_ledger
    assert c.guardian_tools and c.decision_sample_rate == 0.05
    assert c.records_retention is not None
    assert c.records_retention.rule_id == "cn.audit.records_retention"
    assert c.records_retention.value == YEARS
    ids = {r.rule_id for r in c.retention}
    assert "cn.retention.decision_logs" in ids and all(
        r.topic.startswith("retention.") for r in c.retention
    )
    assert empty.notices == () and not empty.consent_ledger and not empty.guardian_tools
    assert not empty.recommendation_filter and empty.age_sources == ()
    body = draft(c)
    assert body["processing"]["categories"] == ["child_content", "device_id", "location"]


def filled(s: Session, slug: str, conclusion: str = "可接受") -> dict[str, Any]:
    body = draft(store.platform_config(s, _p(s, slug), CN))
    body["impact"]["text"] = "位置信息可能暴露行踪"
    body["risks"]["text"] = "默认关闭定位"
    body["conclusion"]["text"] = conclusion
    body["sign_off"].update(owner="DPO", date="2026-11-19")
    return body


def test_versions_are_kept_for_the_pack_years(seeded: sessionmaker[Session]) -> None:
    with transaction(seeded) as s:
        p = _p(s, "video")
        with pytest.raises(AssessmentError) as e:
            store.save_assessment(s, p, draft(store.platform_config(s, p, CN)), "dpo", T0)
        assert e.value.key == "impact.text"
    with transaction(seeded) as s:
        p = _p(s, "video")
        v1 = store.save_assessment(s, p, filled(s, "video"), "dpo", T0, CN)
        v2 = store.save_assessment(s, p, filled(s, "video", "已修订"), "dpo", T0 + 400 * D)
        other = store.save_assessment(s, _p(s, "games"), filled(s, "games"), "dpo2", T0)
        assert (v1.version, v2.version, other.version) == (1, 2, 1)
        assert v1.keep_until == date(2026 + YEARS, 11, 20)
        assert v2.keep_until == date(2027 + YEARS, 12, 25)
        assert v1.content_hash != v2.content_hash and len(v1.content_hash) == 64
        pid = p.id
    with transaction(seeded) as s:
        assert [a.version for a in store.assessments(s, pid)] == [2, 1]
        last = store.latest(s, pid)
        assert last is not None and last.body["conclusion"]["text"] == "已修订"
        got = store.get_assessment(s, pid, 1)
        assert got is not None and got.created_by == "dpo"
        assert store.get_assessment(s, pid, 3) is None
        kinds = s.scalars(
            select(LedgerEntry.body).where(
                LedgerEntry.platform_id == pid, LedgerEntry.kind == "audit.impact_assessment"
            )
        ).all()
        data = [json.loads(k)["data"] for k in kinds]
        assert [d["version"] for d in data] == [1, 2]
        assert data[0]["rule"] == "cn.audit.records_retention"
        assert data[0]["content_hash"] == got.content_hash
        assert ledger.verify(s, pid) is None


def test_purge_never_takes_a_version_before_keep_until_nor_the_latest(
    seeded: sessionmaker[Session],
) -> None:
    with transaction(seeded) as s:
        p = _p(s, "video")
        v1 = store.save_assessment(s, p, filled(s, "video"), "dpo", T0, CN)
        store.save_assessment(s, p, filled(s, "video", "b"), "dpo", T0 + 10 * D, CN)
        keep1 = v1.keep_until
    with transaction(seeded) as s:
        p = _p(s, "video")
        assert store.purge_expired(s, p, keep1, actor="ops", now=T0) == []  # the last day kept
        assert store.purge_expired(s, p, keep1 + D, actor="ops", now=T0) == [1]
        assert [a.version for a in store.assessments(s, p.id)] == [2]
        # long after: the latest is still kept
        far = keep1 + 3650 * D
        assert store.purge_expired(s, p, far, actor="ops", now=T0) == []
        assert [a.version for a in store.assessments(s, p.id)] == [2]
        entry = s.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.platform_id == p.id)
            .order_by(LedgerEntry.seq.desc())
        ).first()
        assert entry is not None and json.loads(entry.body)["data"]["action"] == "purged"
        assert store.purge_expired(s, _p(s, "games"), far, actor="ops", now=T0) == []
        assert (
            s.scalar(select(ImpactAssessment.version).where(ImpactAssessment.platform_id == p.id))
            == 2
        )


def test_add_years_and_months() -> None:
    assert store.add_years(date(2024, 2, 29), 3) == date(2027, 2, 28)
    assert store.add_years(date(2026, 11, 20), 3) == date(2029, 11, 20)
    assert store.add_months(date(2026, 12, 31), -MONTHS) == date(2025, 12, 31)
    assert store.add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert store.add_months(date(2026, 1, 15), 13) == date(2027, 2, 15)


def test_an_attestation_is_stored_encrypted_with_its_digest(
    seeded: sessionmaker[Session],
) -> None:
    doc = "网络安全负责人任命书 · appointment".encode() + bytes(range(256))
    with transaction(seeded) as s:
        p = _p(s, "video")
        a = store.attest(
            s, p, "GOV-01", "任命书", "法务部 王", date(2026, 10, 1), "application/pdf", doc,
            "officer", T0, catalogue=CATALOGUE, policy=CN,
        )  # fmt: skip
        assert a.sha256 == hashlib.sha256(doc).hexdigest()
        aid, pid = a.id, p.id
    with transaction(seeded) as s:
        raw = s.execute(
            text("SELECT content FROM audit_attestations WHERE id = :i"), {"i": aid}
        ).scalar_one()
        assert base64.b64encode(doc).decode() not in raw and ":" in raw  # ciphertext at rest
        rows = store.list_attestations(s, pid)
        assert [r.id for r in rows] == [aid]
        full = s.get(Attestation, aid)
        assert full is not None and store.content_of(full) == doc
        summary = store.attestation_summary(rows[0])
        assert summary["owner"] == "法务部 王" and summary["document_date"] == "2026-10-01"
        entry = s.scalars(
            select(LedgerEntry).where(
                LedgerEntry.platform_id == pid, LedgerEntry.kind == "audit.attestation"
            )
        ).one()
        data = json.loads(entry.body)["data"]
        assert data["sha256"] == summary["sha256"] and data["bytes"] == len(doc)
        assert entry.subject == "GOV-01" and "任命书" not in entry.body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"requirement_id": "NOPE"}, "requirement_id"),
        ({"requirement_id": "REG-01"}, "requirement_id"),  # automated, not attested
        ({"title": " "}, "title"),
        ({"owner": ""}, "owner"),
        ({"document_date": date(2026, 11, 21)}, "date"),  # tomorrow in Shanghai
        ({"media_type": "pdf"}, "media_type"),
        ({"content": b""}, "content"),
        ({"content": b"x" * (store.MAX_ATTESTATION_BYTES + 1)}, "content"),
    ],
)
def test_attestation_refusals_name_the_field(
    seeded: sessionmaker[Session], change: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {
        "requirement_id": "GOV-01",
        "title": "t",
        "owner": "o",
        "document_date": date(2026, 11, 20),
        "media_type": "application/pdf",
        "content": b"%PDF-1.7",
        **change,
    }
    with transaction(seeded) as s, pytest.raises(store.AttestationError) as e:
        store.attest(
            s, _p(s, "video"), actor="officer", now=T0, catalogue=CATALOGUE, policy=CN, **args
        )
    assert e.value.field == field


def test_attestations_for_a_period(seeded: sessionmaker[Session]) -> None:
    end = date(2026, 12, 31)
    start = store.add_months(end, -MONTHS)
    with transaction(seeded) as s:
        p = _p(s, "video")
        for day in (start - D, start, date(2026, 6, 1), date(2026, 11, 20)):
            store.attest(
                s, p, "GOV-01", f"doc {day}", "o", day, "text/plain", day.isoformat().encode(),
                "officer", T0, catalogue=CATALOGUE, policy=CN,
            )  # fmt: skip
        store.attest(
            s, _p(s, "games"), "GOV-01", "other", "o", date(2026, 6, 1), "text/plain", b"x",
            "officer", T0, catalogue=CATALOGUE, policy=CN,
        )  # fmt: skip
        pid = p.id
    with transaction(seeded) as s:
        found = store.attestations_for_period(s, pid, end, MONTHS)
        assert list(found) == ["GOV-01"]
        assert [a.document_date for a in found["GOV-01"]] == [
            date(2026, 11, 20),
            date(2026, 6, 1),
            start,
        ]
        early = store.attestations_for_period(s, pid, date(2026, 5, 31), MONTHS)
        assert [a.document_date for a in early["GOV-01"]] == [start, start - D]
        assert store.attestations_for_period(s, pid, start - 2 * D, 0) == {}
