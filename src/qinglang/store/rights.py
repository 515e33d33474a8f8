"""Data-rights requests: create, move through their statuses, execute; the access export.

Every status change writes a history row (``rights_request_events``) and a ledger entry of
kind ``rights.<status>`` in the caller's transaction. The ledger gets ids, kinds, statuses,
counts and reasons only, never personal information. Completing a request executes it in the
same transaction:

- ``access``: builds the JSON export of everything held about the account (returned, not
  kept; the answer records its format version, counts and digest);
- ``correction``: applies the corrected birth date, sex or settings (settings checked against
  the pack's floors, as the accounts API does);
- ``deletion``: erases the profile, content items and their flags, relationships, consents,
  the age assessment and its history, the particulars of the account's other requests, the
  events it sent and the text of events sent to it; keeps, minimised, what the law requires
  (the ledger as consent proof, decision logs as processing records, events an alert holds as
  evidence: under legal hold, open, or actioned within the pack's period) and says so in the
  answer;
- ``withdrawal``: withdraws every granted consent (each a ``consent.withdrawn`` ledger entry);
- ``cancellation``: a deletion, and the account is marked cancelled (retention removes the
  rest later, see :mod:`qinglang.store.retention`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.orm import Session

from qinglang.consent.canonical import canonical_json, sha256_hex
from qinglang.consent.rights import (
    CLOSED,
    EXPORT_FORMAT,
    EXPORT_VERSION,
    PSEUDONYM_PREFIX,
    Correction,
    RightsError,
    check_corrected_settings,
    check_kind,
    check_requester,
    check_transition,
    due_date,
    parse_correction,
    profile_age,
    pseudonym,
)
from qinglang.policy import Policy
from qinglang.store import ledger
from qinglang.store.consents import active_link, bump_consent_versions, record_consent
from qinglang.store.crypto import DataKeyError, id_number_digest, keyring_of
from qinglang.store.models import (
    Account,
    AgeAssessment,
    AgeAssessmentEvent,
    Consent,
    ContentFlag,
    ContentItem,
    DecisionLog,
    Guardian,
    GuardianLink,
    LedgerEntry,
    Notice,
    Platform,
    Relationship,
    RightsRequest,
    RightsRequestEvent,
    StoredEvent,
    utcnow,
)
from qinglang.store.review import HOLD_REASONS, held_evidence

_CHUNK: Final = 500

OTHER_ACCOUNTS_NOTE: Final = {
    "en": (
        "Other accounts (the other end of a relationship or a decision) appear only as "
        "pseudonymous references (acct_…: a keyed HMAC-SHA256 of platform and account id "
        "under a secret per-platform salt); their identifiers, birth dates and any other "
        "data are not part of this export."
    ),
    "zh": (
        "其他账号（关系或决定的另一方）仅以化名引用（acct_…：以平台专用密钥对平台与账号编号"
        "计算的 HMAC-SHA256）出现；其标识、出生日期及任何其他信息均不在本导出之中。"
    ),
}
CONTENTS_NOTE: Final = {
    "en": (
        "Everything qinglang holds about this account: profile (birth date decrypted), "
        "guardian links, relationships, content items and their flags, consents, decision "
        "logs, data-rights requests with their history, ledger entries about the account, and "
        "the platform events it sent (in full) or that were sent to it (with the text, the "
        "sender pseudonymised). "
        "Ledger bodies are the exact hashed text, verifiable against the chain."
    ),
    "zh": (
        "青朗就本账号保存的全部信息：账号资料（出生日期已解密）、监护关系、关系、内容及其标记、"
        "同意、决定日志、个人信息权利请求及其处理记录、与本账号有关的账本条目，以及本账号发出的平台事件"
        "（完整）和发给本账号的平台事件（含内容，发送方以化名表示）。"
        "账本条目正文为参与哈希计算的原文，可对照哈希链核验。"
    ),
}

EVIDENCE_HOLD_REASON: Final = "evidence for a report under 未成年人保护法 art. 80"
ACTIONED_EVIDENCE_TOPIC: Final = "retention.actioned_alert_evidence_days"
#: Why an alert's evidence survives a deletion, by held reason (see store.review.HOLD_REASONS).
EVIDENCE_HELD_WHY: Final[dict[str, str]] = {
    "legal_hold": "evidence of an alert under legal hold (reported, or held by a reviewer)",
    "evidence_hold": "evidence of an alert still open or in review",
    "actioned_alert": "evidence of an actioned alert, within the pack's period after it closed "
    "(rule cn.retention.actioned_alert_evidence)",
}
#: What a deletion says about the age assessment it erased.
AGE_ASSESSMENT_NOTE: Final = {
    "en": (
        "The age assessment (inferred probabilities, band, signals) and its history were erased: "
        "no law we can cite requires keeping them. The ledger keeps its age.* audit entries "
        "(states, score and band, no texts or reasons) with the other ledger entries. Until the "
        "account is scored or verified again it is not treated as a suspected minor."
    ),
    "zh": (
        "年龄评估（推断概率、年龄段、信号）及其历史记录已删除：没有可援引的法律要求保存。"
        "账本中的 age.* 审计条目（状态、分数与年龄段，不含文本或理由）随其他账本条目保留。"
        "在重新评分或核验之前，该账号不再被视为疑似未成年人。"
    ),
}

#: What a deletion keeps, why, and on which basis (verified: the article says so in terms).
KEPT_BASES: Final[dict[str, dict[str, Any]]] = {
    "ledger_entries": {
        "minimised": "ids, kinds, statuses, purposes and notice versions; age.* entries also "
        "carry the state, inferred p(under 18) and band; no texts, reasons or birth dates",
        "why_en": (
            "consent proof: the tamper-evident record of the consents given, refused or "
            "withdrawn and of this and earlier requests; erasing an entry would break the "
            "hash chain of every later entry"
        ),
        "why_zh": (
            "同意凭证：防篡改地记录同意、拒绝、撤回及权利请求；删除任一条目将破坏其后全部哈希链"
        ),
        "basis": "个人信息保护法 art. 47 para. 2 (technically infeasible to erase: keep "
        "stored and secured, no other processing); art. 69 (processor bears the burden of "
        "proof)",
        "verified": False,
        "note": "no article fixes a retention period for consent records; keeping them as "
        "proof is qinglang's reading, not a stated duty",
    },
    "decision_logs": {
        "minimised": "request parameters removed; kind, action, outcome, rule ids, time kept",
        "why_en": "processing records of automated decisions about the account",
        "why_zh": "对本账号自动化决定的处理情况记录",
        "basis": "个人信息保护法 art. 55, 56 para. 2 (processing records kept at least three "
        "years)",
        "verified": False,
        "note": "that sampled decision logs are the processing records of art. 56 is "
        "qinglang's reading; they are purged by rule cn.retention.decision_logs",
    },
    "rights_requests": {
        "minimised": "particulars (details) of the other requests erased; kind, status, dates, "
        "reasons and answers kept",
        "why_en": "the record that requests were received and answered in time, with the "
        "written reasons of refusals",
        "why_zh": "受理和答复个人信息权利请求的记录，包括拒绝的书面理由",
        "basis": "未成年人网络保护条例 art. 34",
        "verified": False,
        "note": "the regulation requires handling and written refusals, not a retention "
        "period; purged by rule cn.retention.closed_rights_requests",
    },
    "guardian_links": {
        "minimised": "method, verifier, time and minimised evidence only",
        "why_en": "shows who had authority to consent for the account when consents were given",
        "why_zh": "证明作出同意时监护人的身份与权限",
        "basis": "个人信息保护法 art. 31 (guardian consent for under-14s), art. 69",
        "verified": False,
        "note": "kept as part of the consent proof (qinglang's reading); revoked links are "
        "purged by rule cn.retention.revoked_guardian_links",
    },
    "events": {
        "minimised": "only events an alert holds as evidence (under legal hold, open, or "
        "actioned within the pack's period): kept as received",
        "why_en": EVIDENCE_HOLD_REASON,
        "why_zh": "依据未成年人保护法第八十条向有关部门报告所需的证据",
        "basis": "未成年人保护法 art. 80 (保存有关记录)",
        "verified": False,
        "note": "art. 80 requires keeping the records of harm to minors that a platform finds and "
        "reports; that the events behind an alert are such records is qinglang's reading",
    },
    "accounts": {
        "minimised": "external id, jurisdiction, consent version and timestamps only",
        "why_en": "the identifier the kept records refer to and the platform uses to answer",
        "why_zh": "保留记录所指向、平台据以答复的账号标识",
        "basis": "个人信息保护法 art. 47 para. 2",
        "verified": False,
        "note": "a cancelled account row is removed by rule cn.retention.cancelled_accounts",
    },
}


@dataclass(frozen=True)
class Outcome:
    """A request after a transition, and the access export when one was completed."""

    request: RightsRequest
    export: dict[str, Any] | None = None


# ---------------------------------------------------------------- reads


def details_of(request: RightsRequest) -> dict[str, Any] | None:
    """The request's particulars (decrypted JSON), or None."""
    if request.details is None:
        return None
    value = json.loads(request.details)
    return value if isinstance(value, dict) else {"value": value}


def get_request(session: Session, platform_id: int, request_id: int) -> RightsRequest | None:
    """The platform's request with this id, if any."""
    return session.execute(
        select(RightsRequest).where(
            RightsRequest.platform_id == platform_id, RightsRequest.id == request_id
        )
    ).scalar_one_or_none()


def events_of(session: Session, request_id: int) -> list[RightsRequestEvent]:
    """The status history of a request, oldest first."""
    return list(
        session.execute(
            select(RightsRequestEvent)
            .where(RightsRequestEvent.request_id == request_id)
            .order_by(RightsRequestEvent.at, RightsRequestEvent.id)
        ).scalars()
    )


def list_requests(
    session: Session,
    platform_id: int,
    *,
    status: str | None = None,
    overdue_at: datetime | None = None,
    account_id: int | None = None,
    limit: int = 100,
) -> list[RightsRequest]:
    """The platform's requests by due date; `overdue_at`: only those open and past due then."""
    stmt = select(RightsRequest).where(RightsRequest.platform_id == platform_id)
    if status is not None:
        stmt = stmt.where(RightsRequest.status == status)
    if overdue_at is not None:
        stmt = stmt.where(
            RightsRequest.status.in_(("received", "in_progress")),
            RightsRequest.due_at < overdue_at,
        )
    if account_id is not None:
        stmt = stmt.where(RightsRequest.account_id == account_id)
    stmt = stmt.order_by(RightsRequest.due_at, RightsRequest.id).limit(limit)
    return list(session.execute(stmt).scalars())


def guardian_ref(session: Session, guardian_id: int | None) -> str | None:
    """The external id of a guardian by row id (None when unset or deleted)."""
    if guardian_id is None:
        return None
    g = session.get(Guardian, guardian_id)
    return None if g is None else g.external_id


# ---------------------------------------------------------------- who may ask


def check_may_request(
    session: Session,
    policy: Policy,
    account: Account,
    requester: str,
    guardian: Guardian | None,
    at: datetime,
) -> None:
    """Raise RightsError unless the guardian (linked) or the person (old enough) may ask."""
    linked: bool | None = None
    if guardian is not None:
        linked = (
            guardian.platform_id == account.platform_id
            and active_link(session, guardian.id, account.id) is not None
        )
    age = None
    if requester == "self":
        age = profile_age(policy, account.birth_date, account.age_source, at)
    check_requester(policy, requester, age=age, guardian_linked=linked)


# ---------------------------------------------------------------- create and transition


def _record(
    session: Session,
    request: RightsRequest,
    subject: str,
    status: str,
    actor: str,
    note: str | None,
    at: datetime,
    extra: Mapping[str, Any],
    request_key: str | None = None,
) -> None:
    session.add(
        RightsRequestEvent(request_id=request.id, status=status, actor=actor, note=note, at=at)
    )
    ledger.append(
        session,
        request.platform_id,
        f"rights.{status}",
        subject,
        {"request": request.id, "kind": request.kind, "status": status, "actor": actor, **extra},
        request_key=request_key,
        at=at,
    )


def create_request(
    session: Session,
    platform: Platform,
    policy: Policy,
    account: Account,
    *,
    kind: str,
    requester: str,
    guardian: Guardian | None,
    details: Mapping[str, Any] | None = None,
    actor: str | None = None,
    note: str | None = None,
    request_key: str | None = None,
    at: datetime | None = None,
) -> RightsRequest:
    """Record a received request (history row and ledger entry); due per the pack."""
    at = at or utcnow()
    check_kind(kind)
    if account.platform_id != platform.id:
        raise ValueError("account belongs to another platform")
    if account.cancelled_at is not None:
        raise RightsError("the account was cancelled; its data has been erased", "account", 409)
    check_may_request(session, policy, account, requester, guardian, at)
    if kind == "correction":
        _check_correction(policy, account, requester, details, at)
    elif details is not None and not isinstance(details, Mapping):
        raise RightsError("details must be an object", "details")
    request = RightsRequest(
        platform_id=platform.id,
        account_id=account.id,
        subject=account.external_id,
        requester=requester,
        guardian_id=guardian.id if guardian is not None else None,
        kind=kind,
        status="received",
        details=None if not details else canonical_json(dict(details)),
        due_at=due_date(at, policy),
        created_at=at,
        updated_at=at,
    )
    session.add(request)
    session.flush()
    _record(
        session,
        request,
        account.external_id,
        "received",
        actor or (f"guardian:{guardian.external_id}" if guardian is not None else "self"),
        note,
        at,
        {
            "requester": requester,
            "guardian": guardian.external_id if guardian is not None else None,
            "due_at": request.due_at.isoformat(),
        },
        request_key,
    )
    session.flush()
    return request


def transition(
    session: Session,
    platform: Platform,
    policy: Policy,
    request: RightsRequest,
    *,
    status: str,
    actor: str,
    note: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
) -> Outcome:
    """Move a request to `status`; completing it executes it in this transaction."""
    at = at or utcnow()
    if request.platform_id != platform.id:
        raise ValueError("request belongs to another platform")
    if not actor.strip():
        raise RightsError("actor names who made the change", "actor")
    reason = check_transition(request.status, status, reason)
    extra: dict[str, Any] = {}
    export: dict[str, Any] | None = None
    if status == "completed":
        answer, export, counts = _execute(session, platform, policy, request, at)
        request.answer = answer
        extra["counts"] = counts
    elif status == "refused":
        request.reason = reason
        extra["reason"] = reason
    request.status = status
    request.updated_at = at
    if status in CLOSED:
        request.closed_at = at
    _record(session, request, request.subject, status, actor, note, at, extra)
    session.flush()
    return Outcome(request, export)


def _check_correction(
    policy: Policy,
    account: Account,
    requester: str,
    details: Mapping[str, Any] | None,
    at: datetime,
) -> Correction:
    fix = parse_correction(details, at)
    birth = fix.birth_date if "birth_date" in fix.fields else account.birth_date
    source = _corrected_source(requester) if "birth_date" in fix.fields else account.age_source
    settings = fix.settings if fix.settings is not None else (account.settings or {})
    check_corrected_settings(policy, birth, source, settings, at)
    return fix


def _corrected_source(requester: str) -> str:
    return "guardian_declared" if requester == "guardian" else "self_declared"


def _execute(
    session: Session, platform: Platform, policy: Policy, request: RightsRequest, at: datetime
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, int]]:
    """Carry out a request: (answer to store, access export or None, counts for the ledger)."""
    account = session.get(Account, request.account_id) if request.account_id is not None else None
    if account is None:
        raise RightsError(
            "the account no longer exists; refuse the request with a reason", "account", 409
        )
    guardian = session.get(Guardian, request.guardian_id) if request.guardian_id else None
    if request.requester == "guardian" and (
        guardian is None or active_link(session, guardian.id, account.id) is None
    ):
        raise RightsError(
            "the requesting guardian is no longer linked to the account; refuse the "
            "request with a reason",
            "guardian",
            403,
        )
    if request.kind == "access":
        export = export_account(session, platform, account, at)
        summary = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_VERSION,
            "sha256": sha256_hex(canonical_json(export)),
            "counts": export["counts"],
        }
        answer: dict[str, Any] = {
            "export": summary,
            "delivered": "in the response that completed the request; qinglang keeps no copy",
        }
        return answer, export, dict(export["counts"])
    if request.kind == "correction":
        fields = _correct(session, policy, account, request, at)
        return {"corrected": fields, "age_source": account.age_source}, None, {}
    if request.kind == "withdrawal":
        withdrawn = _withdraw_all(session, platform, account, request, guardian, at)
        return {"withdrawn": withdrawn}, None, {"withdrawn": len(withdrawn)}
    answer = erase_account(session, account, request, at, policy=policy)
    if request.kind == "cancellation":
        account.cancelled_at = at
        answer["cancelled_at"] = at.isoformat()
    return answer, None, dict(answer["erased"]["counts"])


def _correct(
    session: Session, policy: Policy, account: Account, request: RightsRequest, at: datetime
) -> list[str]:
    fix = _check_correction(policy, account, request.requester, details_of(request), at)
    if "birth_date" in fix.fields:
        account.birth_date = fix.birth_date
        account.age_source = _corrected_source(request.requester)
    if "sex" in fix.fields:
        account.sex = fix.sex
    if "settings" in fix.fields:
        account.settings = dict(fix.settings or {})
    account.updated_at = utcnow()
    session.flush()
    return list(fix.fields)


def _withdraw_all(
    session: Session,
    platform: Platform,
    account: Account,
    request: RightsRequest,
    guardian: Guardian | None,
    at: datetime,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    granted = [
        c
        for c in session.execute(
            select(Consent)
            .where(Consent.account_id == account.id, Consent.status == "granted")
            .order_by(Consent.purpose, Consent.category)
        ).scalars()
    ]
    for c in granted:
        notice = session.get(Notice, c.notice_id)
        assert notice is not None  # notice_id is a non-null foreign key
        _, seq = record_consent(
            session,
            platform,
            account,
            purpose=c.purpose,
            category=c.category,
            status="withdrawn",
            given_by=request.requester,
            guardian=guardian,
            notice=notice,
            at=at,
        )
        out.append({"purpose": c.purpose, "category": c.category, "ledger_seq": seq})
    return out


def _count(session: Session, stmt: Any) -> int:
    n = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    return int(n)


def erase_account(
    session: Session,
    account: Account,
    request: RightsRequest | None,
    at: datetime,
    *,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """Erase what is held about an account except what the law requires keeping; the answer.

    Erased: birth date, sex, age source, identity-number digest, settings; content items and
    their flags; relationships in both directions; consent rows; the age assessment and its
    history; the particulars of the account's other requests; the request parameters of
    decision logs about it; the events it sent; the text of events sent to it. Kept (minimised,
    listed with reasons): ledger entries, decision logs, requests, guardian links, events an
    alert holds as evidence (legal hold, open, or actioned within the period of `policy`'s
    ``retention.actioned_alert_evidence_days``; without `policy`, every actioned alert's) and
    the account's identifier.
    """
    fields = [
        f
        for f in ("birth_date", "sex", "age_source", "id_number_hash")
        if getattr(account, f) is not None
    ]
    if account.settings:
        fields.append("settings")
    account.birth_date = None
    account.sex = None
    account.age_source = None
    account.id_number_hash = None
    account.settings = {}

    item_ids = list(
        session.execute(
            select(ContentItem.id).where(ContentItem.owner_account_id == account.id)
        ).scalars()
    )
    n_flags = 0
    for batch in _chunks(item_ids):
        for flag in session.execute(
            select(ContentFlag).where(ContentFlag.item_id.in_(batch))
        ).scalars():
            session.delete(flag)
            n_flags += 1
        session.flush()
        for item in session.execute(select(ContentItem).where(ContentItem.id.in_(batch))).scalars():
            session.delete(item)
    rels = list(
        session.execute(
            select(Relationship).where(
                or_(
                    Relationship.src_account_id == account.id,
                    Relationship.dst_account_id == account.id,
                )
            )
        ).scalars()
    )
    for rel in rels:
        session.delete(rel)
    consents = list(
        session.execute(select(Consent).where(Consent.account_id == account.id)).scalars()
    )
    for c in consents:
        session.delete(c)
    n_details = 0
    for other in session.execute(
        select(RightsRequest).where(
            RightsRequest.account_id == account.id, RightsRequest.details.is_not(None)
        )
    ).scalars():
        if request is not None and other.id == request.id:
            continue
        other.details = None
        n_details += 1
    n_assessments = 0
    for row in session.execute(
        select(AgeAssessment).where(AgeAssessment.account_id == account.id)
    ).scalars():
        session.delete(row)
        n_assessments += 1
    n_age_events = _count(
        session, select(AgeAssessmentEvent.id).where(AgeAssessmentEvent.account_id == account.id)
    )
    session.execute(delete(AgeAssessmentEvent).where(AgeAssessmentEvent.account_id == account.id))
    n_events, n_texts, held_by = _erase_events(
        session, account.platform_id, account.external_id, at, _actioned_days(policy)
    )
    n_held = sum(held_by.values())
    logs = list(session.execute(_decisions_about(account.id)).scalars())
    n_stripped = 0
    for log in logs:
        if log.request is not None:
            log.request = None
            n_stripped += 1
    session.flush()
    bump_consent_versions(session, [account.id])
    session.flush()
    session.refresh(account)

    n_ledger = _count(
        session,
        select(LedgerEntry.id).where(
            LedgerEntry.platform_id == account.platform_id,
            LedgerEntry.subject == account.external_id,
        ),
    )
    n_links = _count(session, select(GuardianLink.id).where(GuardianLink.account_id == account.id))
    n_requests = _count(
        session, select(RightsRequest.id).where(RightsRequest.account_id == account.id)
    )
    kept_counts = {
        "ledger_entries": n_ledger,
        "decision_logs": len(logs),
        "rights_requests": n_requests,
        "guardian_links": n_links,
        "events": n_held,
        "accounts": 1,
    }
    kept = [
        {"table": table, "count": kept_counts[table], **basis}
        for table, basis in KEPT_BASES.items()
        if kept_counts[table]
    ]
    for k in kept:
        if k["table"] == "events":
            k["reason"] = EVIDENCE_HOLD_REASON
            k["held"] = {r: n for r, n in held_by.items() if n}
            k["held_why"] = {r: EVIDENCE_HELD_WHY[r] for r in k["held"]}
    answer: dict[str, Any] = {
        "erased": {
            "account_fields": fields,
            "counts": {
                "content_items": len(item_ids),
                "content_flags": n_flags,
                "relationships": len(rels),
                "consents": len(consents),
                "age_assessments": n_assessments,
                "age_assessment_events": n_age_events,
                "rights_request_details": n_details,
                "decision_log_requests": n_stripped,
                "events": n_events,
                "event_texts": n_texts,
            },
        },
        "kept": kept,
        "at": at.isoformat(),
    }
    if n_assessments or n_age_events:
        answer["erased"]["age_assessment"] = AGE_ASSESSMENT_NOTE
    return answer


def _actioned_days(policy: Policy | None) -> int | None:
    """The pack's period for an actioned alert's evidence (None: no policy or no rule)."""
    rule = None if policy is None else policy.rule(ACTIONED_EVIDENCE_TOPIC, None)
    value = None if rule is None else rule.value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _erase_events(
    session: Session, platform_id: int, external_id: str, at: datetime, actioned_days: int | None
) -> tuple[int, int, dict[str, int]]:
    """Delete the events the account sent and strip the text of those sent to it, except
    events an alert holds as evidence: (deleted, texts stripped, held by reason)."""
    held = held_evidence(session, platform_id, at, actioned_days)
    sent = session.execute(
        select(StoredEvent.id, StoredEvent.event_id).where(
            StoredEvent.platform_id == platform_id, StoredEvent.actor == external_id
        )
    ).all()
    received = session.execute(
        select(StoredEvent.id, StoredEvent.event_id).where(
            StoredEvent.platform_id == platform_id,
            StoredEvent.target == external_id,
            StoredEvent.actor != external_id,
            StoredEvent.text.is_not(None),
        )
    ).all()
    gone = [int(i) for i, e in sent if e not in held]
    blank = [int(i) for i, e in received if e not in held]
    for batch in _chunks(gone):
        session.execute(delete(StoredEvent).where(StoredEvent.id.in_(batch)))
    for batch in _chunks(blank):
        session.execute(update(StoredEvent).where(StoredEvent.id.in_(batch)).values(text=None))
    held_by = dict.fromkeys(HOLD_REASONS, 0)
    for _, e in [*sent, *received]:
        if e in held:
            held_by[held[e]] += 1
    return len(gone), len(blank), held_by


def _chunks(items: list[int], size: int = _CHUNK) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _decisions_about(account_id: int) -> Any:
    return (
        select(DecisionLog)
        .where(
            or_(
                DecisionLog.subject_account_id == account_id,
                DecisionLog.other_account_id == account_id,
            )
        )
        .order_by(DecisionLog.at, DecisionLog.id)
    )


# ---------------------------------------------------------------- access export


class _Others:
    """Pseudonymous references to the other accounts of the platform that appear in an export."""

    def __init__(self, session: Session, platform_id: int, self_id: int) -> None:
        bind = session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        keys = keyring_of(engine)
        if keys is None:
            raise DataKeyError("no data key: pseudonymous references need one")
        # A secret per-platform salt, derived from the data key (never stored).
        self._salt = id_number_digest(keys, f"PSEUDONYM-SALT:{platform_id}")
        self._platform_id = platform_id
        self._self_id = self_id
        self._session = session
        me = session.get(Account, self_id)
        self.me = None if me is None else me.external_id

    def ref(self, account_id: int | None) -> str | None:
        """The reference of an account: "self", a pseudonym, or None (erased or unknown)."""
        if account_id is None:
            return None
        if account_id == self._self_id:
            return "self"
        return pseudonym(self._salt, self._platform_id, account_id)

    def named(self, external_id: str | None, names: Mapping[str, str]) -> str | None:
        """The reference of an account named by its external id: "self", the pseudonym of a
        registered account (from `names`), or a keyed pseudonym of an unregistered one."""
        if external_id is None:
            return None
        if external_id == self.me:
            return "self"
        known = names.get(external_id)
        if known is not None:
            return known
        message = f"{self._platform_id}:external:{external_id}".encode()
        mac = hmac.new(self._salt.encode("utf-8"), message, hashlib.sha256)
        return PSEUDONYM_PREFIX + mac.hexdigest()[:24]

    def redactor(self, values: Iterable[Any]) -> dict[str, str]:
        """External id → pseudonym for every other account named by a string in `values`."""
        strings: set[str] = set()
        for v in values:
            _strings(v, strings)
        found: dict[str, str] = {}
        wanted = sorted(s for s in strings if 0 < len(s) <= 255)
        for i in range(0, len(wanted), _CHUNK):
            rows = self._session.execute(
                select(Account.id, Account.external_id).where(
                    Account.platform_id == self._platform_id,
                    Account.external_id.in_(wanted[i : i + _CHUNK]),
                    Account.id != self._self_id,
                )
            )
            for account_id, external_id in rows:
                found[external_id] = pseudonym(self._salt, self._platform_id, account_id)
        return found


def _strings(value: Any, into: set[str]) -> None:
    if isinstance(value, str):
        into.add(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            into.add(str(k))
            _strings(v, into)
    elif isinstance(value, list | tuple):
        for v in value:
            _strings(v, into)


def _redact(value: Any, names: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, Mapping):
        return {names.get(str(k), str(k)): _redact(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, names) for v in value]
    return value


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _pick(row: Any, *names: str) -> dict[str, Any]:
    """These columns of a row, dates and times as ISO text."""
    out: dict[str, Any] = {}
    for name in names:
        v = getattr(row, name)
        out[name] = v.isoformat() if isinstance(v, datetime | date) else v
    return out


def _by_parent(
    session: Session, model: Any, parent_column: Any, parent_ids: list[int], *names: str
) -> dict[int, list[dict[str, Any]]]:
    """Child rows (as picked columns) by parent id, in id order."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in parent_ids}
    for batch in _chunks(parent_ids):
        rows = session.execute(
            select(model).where(parent_column.in_(batch)).order_by(model.id)
        ).scalars()
        for row in rows:
            out[getattr(row, parent_column.key)].append(_pick(row, *names))
    return out


def export_account(
    session: Session, platform: Platform, account: Account, at: datetime | None = None
) -> dict[str, Any]:
    """JSON-ready export of every stored item about the account (format EXPORT_VERSION).

    Other accounts appear only as pseudonymous references: their external ids, birth dates
    and other data are never included (strings in logged request parameters or ledger bodies
    that name another account are replaced by its reference).
    """
    at = at or utcnow()
    me = account.id
    others = _Others(session, platform.id, me)
    guardians: dict[int, str | None] = {}

    def gref(guardian_id: int | None) -> str | None:
        if guardian_id is not None and guardian_id not in guardians:
            guardians[guardian_id] = guardian_ref(session, guardian_id)
        return None if guardian_id is None else guardians[guardian_id]

    def rows(stmt: Any) -> list[Any]:
        return list(session.execute(stmt).scalars())

    links = rows(
        select(GuardianLink).where(GuardianLink.account_id == me).order_by(GuardianLink.id)
    )
    guardian_links = [
        {
            **_pick(link, "id", "method", "verified_by", "verified_at", "evidence"),
            "guardian": gref(link.guardian_id),
            **_pick(link, "revoked_at", "created_at", "updated_at"),
        }
        for link in links
    ]
    rels = rows(
        select(Relationship)
        .where(or_(Relationship.src_account_id == me, Relationship.dst_account_id == me))
        .order_by(Relationship.id)
    )
    relationships = [
        {
            "id": r.id,
            "direction": "outgoing" if r.src_account_id == me else "incoming",
            "kind": r.kind,
            "other": others.ref(r.dst_account_id if r.src_account_id == me else r.src_account_id),
            "created_at": _iso(r.created_at),
        }
        for r in rels
    ]
    items = rows(
        select(ContentItem).where(ContentItem.owner_account_id == me).order_by(ContentItem.id)
    )
    flags = _by_parent(
        session,
        ContentFlag,
        ContentFlag.item_id,
        [i.id for i in items],
        *("id", "kind", "audience", "min_age", "source", "created_at", "updated_at"),
    )
    content: list[dict[str, Any]] = [
        {**_pick(i, "id", "external_id", "created_at"), "flags": flags[i.id]} for i in items
    ]
    consent_rows = session.execute(
        select(Consent, Notice)
        .join(Notice, Notice.id == Consent.notice_id)
        .where(Consent.account_id == me)
        .order_by(Consent.purpose, Consent.category)
    )
    consents = [
        {
            **_pick(c, "id", "purpose", "category", "status", "audience", "given_by"),
            "guardian": gref(c.guardian_id),
            "notice": _pick(
                n, "id", "language", "audience", "version", "content_hash", "published_at"
            ),
            **_pick(c, "decided_at", "stale_since", "created_at", "updated_at"),
        }
        for c, n in consent_rows
    ]
    logs: list[DecisionLog] = rows(_decisions_about(me))
    requests: list[RightsRequest] = rows(
        select(RightsRequest)
        .where(RightsRequest.account_id == me)
        .order_by(RightsRequest.created_at, RightsRequest.id)
    )
    entries = ledger.entries_about(session, platform.id, account.external_id)
    bodies = [json.loads(e.body) for e in entries]
    stored: list[StoredEvent] = rows(
        select(StoredEvent)
        .where(
            StoredEvent.platform_id == platform.id,
            or_(
                StoredEvent.actor == account.external_id,
                StoredEvent.target == account.external_id,
            ),
        )
        .order_by(StoredEvent.seq)
    )
    parties = [[e.actor, e.target, e.owner] for e in stored]
    names = others.redactor([log.request for log in logs] + bodies + parties)
    platform_events = [
        {
            **_pick(e, "seq", "event_id", "kind", "at"),
            "role": "actor" if e.actor == account.external_id else "target",
            "actor": others.named(e.actor, names),
            "target": others.named(e.target, names),
            **_pick(e, "item"),
            "owner": others.named(e.owner, names),
            **_pick(e, "surface", "amount_fen", "delivered", "text", "received_at"),
        }
        for e in stored
    ]
    decisions = [
        {
            **_pick(log, "id", "kind", "action", "outcome", "rule_ids", "at"),
            "role": "subject" if log.subject_account_id == me else "other_party",
            "counterpart": others.ref(
                log.other_account_id if log.subject_account_id == me else log.subject_account_id
            ),
            "request": _redact(log.request, names),
        }
        for log in logs
    ]
    events = _by_parent(
        session,
        RightsRequestEvent,
        RightsRequestEvent.request_id,
        [r.id for r in requests],
        *("id", "status", "actor", "note", "at"),
    )
    rights_requests = [
        {
            **_pick(r, "id", "kind", "status", "requester"),
            "guardian": gref(r.guardian_id),
            "details": details_of(r),
            **_pick(r, "due_at", "reason", "answer", "created_at", "updated_at", "closed_at"),
            "events": events[r.id],
        }
        for r in requests
    ]
    assessment = session.execute(
        select(AgeAssessment).where(AgeAssessment.account_id == me)
    ).scalar_one_or_none()
    age_assessment = (
        None
        if assessment is None
        else {
            **_pick(
                assessment,
                "state",
                "p_under18",
                "p_under14",
                "band",
                "suspected_child",
                "model",
                "created_at",
                "updated_at",
            ),
            "signals": list(assessment.signals or []),
        }
    )
    age_events = [
        {
            **_pick(e, "transition", "from_state", "to_state", "actor", "reason", "at"),
            "details": dict(e.details or {}),
            "ledger_seq": e.ledger_seq,
        }
        for e in session.execute(
            select(AgeAssessmentEvent)
            .where(AgeAssessmentEvent.account_id == me)
            .order_by(AgeAssessmentEvent.id)
        ).scalars()
    ]
    ledger_entries = []
    for e, body in zip(entries, bodies, strict=True):
        redacted = _redact(body, names)
        ledger_entries.append(
            {
                **_pick(e, "seq", "kind", "at", "hash", "prev_hash"),
                # The exact hashed text, unless it named another account (then redacted).
                "body": e.body if redacted == body else None,
                "data": redacted,
                "body_redacted": redacted != body,
            }
        )
    counts = {
        "guardian_links": len(guardian_links),
        "relationships": len(relationships),
        "content_items": len(content),
        "content_flags": sum(len(f) for f in flags.values()),
        "consents": len(consents),
        "decision_logs": len(decisions),
        "rights_requests": len(rights_requests),
        "rights_request_events": sum(len(v) for v in events.values()),
        "ledger_entries": len(ledger_entries),
        "age_assessment_events": len(age_events),
        "events": len(platform_events),
    }
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "generated_at": at.isoformat(),
        "platform": {"slug": platform.slug, "name": platform.name},
        "notes": {"contents": CONTENTS_NOTE, "other_accounts": OTHER_ACCOUNTS_NOTE},
        "account": {
            **_pick(account, "id", "external_id", "birth_date", "sex", "age_source"),
            "id_number_hash": account.id_number_hash,
            "jurisdiction": account.jurisdiction,
            "settings": dict(account.settings or {}),
            **_pick(account, "consent_version", "cancelled_at", "created_at", "updated_at"),
        },
        "guardian_links": guardian_links,
        "relationships": relationships,
        "content_items": content,
        "consents": consents,
        "decision_logs": decisions,
        "rights_requests": rights_requests,
        "ledger_entries": ledger_entries,
        "age_assessment": age_assessment,
        "age_assessment_events": age_events,
        "events": platform_events,
        "counts": counts,
    }
