"""Review storage: the alert queue, restrictions, reviewer actions with their audit entries,
generated documents and guardian notifications.

Every function works in the caller's transaction. Every action — a reviewer's, or the automatic
protective restriction of the risk consumer — writes a ``review_actions`` row and a ledger entry
``review.<action>`` (subject: the sender) together with the change it records. Free-text
reasons are encrypted in ``review_actions``; the ledger carries their SHA-256, so the hash chain
never holds text that may have to be erased.

A restriction is mirrored on ``accounts.restricted_until`` (bumping ``updated_at``), which the
API's profile cache is keyed by: the very next contact decision in any worker sees it.

A legal hold (``alerts.hold_*``) keeps an alert's evidence from retention and account erasure
until a reviewer releases it. A report to the police or a regulator sets it (recorded in the
report's own audit entry); a reviewer sets (``review.hold``) or releases (``review.release``) it.
`held_evidence` says which events are kept and why (`HOLD_REASONS`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from qinglang.policy import Policy
from qinglang.review import actions as review_actions
from qinglang.review.actions import AUTHORITIES, ENFORCEMENT, ActionError
from qinglang.review.priority import due_at, is_overdue, priority_of
from qinglang.review.report import MEDIA_TYPE, authority_report, guardian_message
from qinglang.risk.types import Alert as RiskAlert
from qinglang.store import ledger
from qinglang.store.models import (
    INDEFINITE,
    Account,
    Alert,
    Guardian,
    GuardianLink,
    GuardianNotification,
    Platform,
    Restriction,
    ReviewAction,
    ReviewDocument,
    active_restriction_end,
    utcnow,
)

MIN_HOLD_REASON: Final = 3
MAX_HOLD_REASON: Final = 2000
REPORT_HOLD_REASON: Final = (
    "向{zh}报告，依据未成年人保护法第八十条保存有关记录 / reported to {en}; records kept under "
    "未成年人保护法 art. 80 (document {doc})"
)

AUTOMATIC_ACTOR: Final = "qinglang.risk"
"""Who the automatic protective restriction is recorded as."""
MAX_ITEMS: Final = 1000
STAFF_READ: Final = "staff.read"
"""Ledger kind of a staff read of a child's data (the same as the CLI's reads)."""


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat()


def _digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- alerts


def queue_alert(
    session: Session,
    platform_id: int,
    alert: RiskAlert,
    evidence: Mapping[str, Any],
    policy: Policy,
    now: datetime | None = None,
) -> Alert | None:
    """Queue an engine alert (idempotent by alert id); None when it was queued before."""
    now = now or utcnow()
    existing = find_alert(session, platform_id, alert.id)
    if existing is not None:
        return None
    priority = priority_of(alert, policy)
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = {
        "platform_id": platform_id,
        "alert_id": alert.id,
        "sender": alert.sender,
        "level": alert.level,
        "score": float(alert.score),
        "rule_id": alert.rule_id,
        "raised_at": alert.at,
        "minors": list(dict.fromkeys(alert.minors)),
        "event_ids": list(alert.event_ids),
        "signal_names": list(dict.fromkeys(s.name for s in alert.signals)),
        "evidence": json.dumps(evidence, ensure_ascii=False, sort_keys=True),
        "priority": priority,
        "status": "open",
        "due_at": due_at(now, priority, policy),
        "created_at": now,
        "updated_at": now,
    }
    # The evidence column needs its bind processor (encryption): go through the table type.
    stmt = (
        ins(Alert)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["platform_id", "alert_id"])
    )
    session.execute(stmt)
    return find_alert(session, platform_id, alert.id)


def find_alert(
    session: Session, platform_id: int, alert_id: str, *, lock: bool = False
) -> Alert | None:
    """The platform's alert with this engine id, if any (`lock`: for update, before acting)."""
    stmt = select(Alert).where(Alert.platform_id == platform_id, Alert.alert_id == alert_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def alert_ids(session: Session, pks: Iterable[int]) -> dict[int, str]:
    """Engine alert ids by alert row id."""
    wanted = list(dict.fromkeys(pks))
    if not wanted:
        return {}
    rows = session.execute(select(Alert.id, Alert.alert_id).where(Alert.id.in_(wanted)))
    return {pk: aid for pk, aid in rows}


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which alerts of the queue to list."""

    status: Sequence[str] = ()
    priority: Sequence[str] = ()
    overdue: bool | None = None
    assignee: str | None = None
    sender: str | None = None


def list_alerts(
    session: Session,
    platform_id: int,
    flt: QueueFilter,
    now: datetime,
    *,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Alert], int]:
    """One page of the queue, most urgent (earliest due) first, and the total that match."""
    stmt = select(Alert).where(Alert.platform_id == platform_id)
    if flt.status:
        stmt = stmt.where(Alert.status.in_(list(flt.status)))
    if flt.priority:
        stmt = stmt.where(Alert.priority.in_(list(flt.priority)))
    if flt.assignee is not None:
        stmt = stmt.where(Alert.assignee == flt.assignee)
    if flt.sender is not None:
        stmt = stmt.where(Alert.sender == flt.sender)
    if flt.overdue is True:
        stmt = stmt.where(Alert.status.in_(("open", "in_review")), Alert.due_at < now)
    elif flt.overdue is False:
        stmt = stmt.where(~(Alert.status.in_(("open", "in_review")) & (Alert.due_at < now)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Alert.due_at, Alert.id).limit(limit).offset(offset))
    return list(rows), int(total)


def alert_summary(alert: Alert, now: datetime) -> dict[str, Any]:
    """The queue view of an alert (no evidence)."""
    return {
        "id": alert.alert_id,
        "sender": alert.sender,
        "level": alert.level,
        "score": round(alert.score, 4),
        "rule_id": alert.rule_id,
        "priority": alert.priority,
        "status": alert.status,
        "assignee": alert.assignee,
        "minors": list(alert.minors),
        "signals": list(alert.signal_names),
        "raised_at": _iso(alert.raised_at),
        "queued_at": _iso(alert.created_at),
        "due_at": _iso(alert.due_at),
        "overdue": is_overdue(alert.status, alert.due_at, now),
        "first_action_at": _iso(alert.first_action_at),
        "closed_at": _iso(alert.closed_at),
        "hold": hold_view(alert),
    }


def is_held(alert: Alert) -> bool:
    """Whether the alert is under a legal hold now (set and not released)."""
    return alert.hold_set_at is not None and alert.hold_released_at is None


def hold_view(alert: Alert) -> dict[str, Any] | None:
    """The alert's legal hold as the API shows it (None when it never had one)."""
    if alert.hold_set_at is None:
        return None
    return {
        "active": is_held(alert),
        "reason": alert.hold_reason,
        "set_by": alert.hold_set_by,
        "set_at": _iso(alert.hold_set_at),
        "released_at": _iso(alert.hold_released_at),
    }


def evidence_of(alert: Alert) -> dict[str, Any]:
    """The alert's minimised evidence (decrypted)."""
    data: dict[str, Any] = json.loads(alert.evidence)
    return data


def alert_detail(session: Session, alert: Alert, now: datetime) -> dict[str, Any]:
    """The full view of an alert: summary, evidence, actions, restrictions, documents, notices."""
    out = alert_summary(alert, now)
    out["evidence"] = evidence_of(alert)
    out["actions"] = [action_view(a) for a in actions_of(session, alert)]
    out["restrictions"] = [
        restriction_view(r, alert.alert_id)
        for r in session.scalars(
            select(Restriction).where(Restriction.alert_pk == alert.id).order_by(Restriction.id)
        )
    ]
    out["documents"] = [
        document_view(d, alert.alert_id)
        for d in session.scalars(
            select(ReviewDocument)
            .where(ReviewDocument.alert_pk == alert.id)
            .order_by(ReviewDocument.id)
        )
    ]
    out["notifications"] = [
        notification_view(n, session)
        for n in session.scalars(
            select(GuardianNotification)
            .where(GuardianNotification.alert_pk == alert.id)
            .order_by(GuardianNotification.id)
        )
    ]
    return out


# ---------------------------------------------------------------- audit


def audit(
    session: Session,
    alert: Alert,
    kind: str,
    actor: str,
    reason: str | None,
    details: Mapping[str, Any],
    now: datetime,
) -> ReviewAction:
    """Record an action on an alert: a review_actions row and the ledger entry review.<kind>."""
    data = {
        "alert": alert.alert_id,
        "action": kind,
        "by": actor,
        "reason_sha256": _digest(reason),
        **details,
    }
    entry = ledger.append(session, alert.platform_id, f"review.{kind}", alert.sender, data, at=now)
    row = ReviewAction(
        platform_id=alert.platform_id,
        alert_pk=alert.id,
        kind=kind,
        actor=actor,
        reason=reason,
        details=dict(details),
        ledger_seq=entry.seq,
        at=now,
    )
    session.add(row)
    session.flush()
    return row


def actions_of(session: Session, alert: Alert) -> list[ReviewAction]:
    """The actions taken on an alert, oldest first."""
    return list(
        session.scalars(
            select(ReviewAction).where(ReviewAction.alert_pk == alert.id).order_by(ReviewAction.id)
        )
    )


def action_view(a: ReviewAction) -> dict[str, Any]:
    """An action as the API shows it."""
    return {
        "id": a.id,
        "kind": a.kind,
        "actor": a.actor,
        "reason": a.reason,
        "details": dict(a.details or {}),
        "ledger_seq": a.ledger_seq,
        "at": _iso(a.at),
    }


def record_view(session: Session, alert: Alert, reviewer: str, what: str, now: datetime) -> None:
    """Log a staff read of an alert's evidence or document: one ledger entry ``staff.read`` per
    minor involved (subject: the child, as for every staff read of a child's data)."""
    for child in dict.fromkeys(alert.minors or [alert.sender]):
        ledger.append(
            session,
            alert.platform_id,
            STAFF_READ,
            child,
            {"by": reviewer, "read": what, "alert": alert.alert_id},
            at=now,
        )


# ---------------------------------------------------------------- restrictions


def refresh_account(session: Session, platform_id: int, account: str, now: datetime) -> None:
    """Mirror the account's active restrictions on accounts.restricted_until (bumps updated_at)."""
    end = active_restriction_end(session.connection(), platform_id, account, now)
    row = session.scalars(
        select(Account).where(Account.platform_id == platform_id, Account.external_id == account)
    ).one_or_none()
    if row is not None and row.restricted_until != end:
        row.restricted_until = end
        # A new row version (at the change, strictly later): cached profiles keyed by it go stale.
        row.updated_at = max(now, row.updated_at + timedelta(microseconds=1))
        session.flush()


def add_restriction(
    session: Session,
    platform_id: int,
    account: str,
    *,
    scope: str,
    reason: str,
    by: str,
    automatic: bool = False,
    alert: Alert | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> Restriction:
    """Restrict an account from contacting minors (or record its suspension); no audit here."""
    now = now or utcnow()
    r = Restriction(
        platform_id=platform_id,
        account=account,
        scope=scope,
        automatic=automatic,
        reason=reason,
        created_by=by,
        alert_pk=None if alert is None else alert.id,
        created_at=now,
        until=until,
    )
    session.add(r)
    session.flush()
    refresh_account(session, platform_id, account, now)
    return r


def lift_restriction(
    session: Session, restriction: Restriction, by: str, reason: str, now: datetime
) -> None:
    """Lift a restriction (kept for the record); no audit here."""
    restriction.lifted_at = now
    restriction.lifted_by = by
    restriction.lift_reason = reason
    session.flush()
    refresh_account(session, restriction.platform_id, restriction.account, now)


def active_restrictions(
    session: Session, platform_id: int, account: str | None = None, now: datetime | None = None
) -> list[Restriction]:
    """Unlifted, unexpired restrictions of the platform (of one account), oldest first."""
    now = now or utcnow()
    stmt = select(Restriction).where(
        Restriction.platform_id == platform_id,
        Restriction.lifted_at.is_(None),
        (Restriction.until.is_(None)) | (Restriction.until > now),
    )
    if account is not None:
        stmt = stmt.where(Restriction.account == account)
    return list(session.scalars(stmt.order_by(Restriction.id)))


def all_restrictions(
    session: Session, platform_id: int, account: str | None = None, limit: int = 100
) -> list[Restriction]:
    """Restrictions of the platform (of one account), lifted and expired ones too, newest first."""
    stmt = select(Restriction).where(Restriction.platform_id == platform_id)
    if account is not None:
        stmt = stmt.where(Restriction.account == account)
    return list(session.scalars(stmt.order_by(Restriction.id.desc()).limit(limit)))


def restriction_view(r: Restriction, alert_id: str | None = None) -> dict[str, Any]:
    """A restriction as the API shows it."""
    return {
        "id": r.id,
        "account": r.account,
        "scope": r.scope,
        "automatic": r.automatic,
        "reason": r.reason,
        "created_by": r.created_by,
        "created_at": _iso(r.created_at),
        "until": _iso(r.until),
        "alert": alert_id,
        "lifted_at": _iso(r.lifted_at),
        "lifted_by": r.lifted_by,
        "lift_reason": r.lift_reason,
    }


def auto_restrict(
    session: Session, alert: Alert, policy: Policy, now: datetime
) -> Restriction | None:
    """The automatic protective restriction of a restrict-level alert, pending review (audited);
    None when the pack turns it off or the alert is below the level."""
    if alert.level != "restrict":
        return None
    switch = policy.rule("review.auto_restrict", None)
    if switch is not None and switch.value is False:
        return None
    reason = (
        f"自动保护性限制，待人工审核（预警 {alert.alert_id}，规则 {alert.rule_id}）/ "
        f"automatic protective restriction pending review (alert {alert.alert_id}, "
        f"rule {alert.rule_id})"
    )
    r = add_restriction(
        session,
        alert.platform_id,
        alert.sender,
        scope="contact_minors",
        reason=reason,
        by=AUTOMATIC_ACTOR,
        automatic=True,
        alert=alert,
        now=now,
    )
    audit(
        session,
        alert,
        "auto_restrict",
        AUTOMATIC_ACTOR,
        None,
        {"restriction": r.id, "scope": r.scope, "score": round(alert.score, 4)},
        now,
    )
    return r


def lift(
    session: Session, restriction: Restriction, by: str, reason: str, now: datetime
) -> dict[str, Any]:
    """A reviewer lifts a restriction (audited as review.lift on its alert, or ledger only)."""
    if restriction.lifted_at is not None:
        raise ActionError("restriction", "already lifted", 409)
    text = reason.strip()
    if len(text) < review_actions.MIN_REASON:
        raise ActionError("reason", "lifting a restriction needs a reason")
    lift_restriction(session, restriction, by, text, now)
    alert = None if restriction.alert_pk is None else session.get(Alert, restriction.alert_pk)
    details = {"restriction": restriction.id, "account": restriction.account}
    if alert is not None:
        audit(session, alert, "lift", by, text, details, now)
    else:
        ledger.append(
            session,
            restriction.platform_id,
            "review.lift",
            restriction.account,
            {"by": by, "reason_sha256": _digest(text), **details},
            at=now,
        )
    return restriction_view(restriction, None if alert is None else alert.alert_id)


# ---------------------------------------------------------------- documents and notifications


def document_view(d: ReviewDocument, alert_id: str) -> dict[str, Any]:
    """A document's metadata (the content is downloaded separately)."""
    return {
        "id": d.id,
        "kind": d.kind,
        "authority": d.authority,
        "reference": d.reference,
        "media_type": d.media_type,
        "sha256": d.sha256,
        "created_by": d.created_by,
        "created_at": _iso(d.created_at),
        "url": f"/v1/review/alerts/{alert_id}/documents/{d.id}",
    }


def get_document(session: Session, alert: Alert, document_id: int) -> ReviewDocument | None:
    """A document of this alert by id."""
    d = session.get(ReviewDocument, document_id)
    return d if d is not None and d.alert_pk == alert.id else None


def notification_view(n: GuardianNotification, session: Session) -> dict[str, Any]:
    """A guardian notification as the API shows it."""
    guardian = None if n.guardian_id is None else session.get(Guardian, n.guardian_id)
    return {
        "id": n.id,
        "guardian": None if guardian is None else guardian.external_id,
        "child": n.child,
        "message_zh": n.message_zh,
        "message_en": n.message_en,
        "created_at": _iso(n.created_at),
    }


def guardians_of_children(
    session: Session, platform_id: int, children: Iterable[str]
) -> dict[str, list[Guardian]]:
    """Each child's guardians with an active verified link (children without any map to [])."""
    wanted = list(dict.fromkeys(children))
    out: dict[str, list[Guardian]] = {c: [] for c in wanted}
    if not wanted:
        return out
    rows = session.execute(
        select(Account.external_id, Guardian)
        .join(GuardianLink, GuardianLink.account_id == Account.id)
        .join(Guardian, Guardian.id == GuardianLink.guardian_id)
        .where(
            Account.platform_id == platform_id,
            Account.external_id.in_(wanted),
            GuardianLink.revoked_at.is_(None),
        )
        .order_by(Account.external_id, Guardian.id)
    ).all()
    for child, guardian in rows:
        out[child].append(guardian)
    return out


# ---------------------------------------------------------------- reviewer actions


def assign(
    session: Session, alert: Alert, reviewer: str, assignee: str, now: datetime
) -> dict[str, Any]:
    """Assign an alert to a reviewer (audited as review.assign)."""
    alert.status = review_actions.next_status(alert.status, "assign")
    previous = alert.assignee
    alert.assignee = assignee
    alert.updated_at = now
    audit(
        session, alert, "assign", reviewer, None, {"assignee": assignee, "previous": previous}, now
    )
    return alert_summary(alert, now)


def _until(params: Mapping[str, Any], now: datetime) -> datetime | None:
    until = params.get("until")
    if until is None:
        return None
    if not isinstance(until, datetime) or until.tzinfo is None:
        raise ActionError("until", "must be an instant with a UTC offset")
    if until <= now:
        raise ActionError("until", "must be in the future")
    if until >= INDEFINITE:
        return None
    return until


def act(
    session: Session,
    platform: Platform,
    policy: Policy,
    alert: Alert,
    kind: str,
    reviewer: str,
    reason: str | None = None,
    params: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Take a reviewer action on an alert, audited; ActionError (with an HTTP status) if not
    allowed. Returns what was done (restriction, document, notifications ...)."""
    now = now or utcnow()
    params = params or {}
    new_status = review_actions.next_status(alert.status, kind)
    text = review_actions.check_reason(kind, reason)
    result: dict[str, Any] = {"kind": kind}
    details: dict[str, Any] = {}
    auto = [r for r in active_restrictions(session, alert.platform_id, alert.sender, now)]
    auto = [r for r in auto if r.automatic and r.alert_pk == alert.id]

    if kind == "dismiss":
        assert text is not None
        for r in auto:
            lift_restriction(session, r, reviewer, text, now)
        details["lifted"] = [r.id for r in auto]
        result["lifted"] = details["lifted"]
    elif kind in ("restrict", "suspend"):
        until = _until(params, now)
        scope = "contact_minors" if kind == "restrict" else "suspended"
        label = "限制联系未成年人 / restricted from contacting minors"
        if kind == "suspend":
            label = "账号暂停 / account suspended"
        r = add_restriction(
            session,
            alert.platform_id,
            alert.sender,
            scope=scope,
            reason=text or f"{label} (alert {alert.alert_id})",
            by=reviewer,
            alert=alert,
            until=until,
            now=now,
        )
        for old in auto:
            lift_restriction(session, old, reviewer, f"superseded by restriction {r.id}", now)
        details.update(restriction=r.id, scope=scope, until=_iso(until))
        details["superseded"] = [old.id for old in auto]
        result["restriction"] = restriction_view(r, alert.alert_id)
        result["superseded"] = details["superseded"]
        if kind == "suspend":
            result["platform_must"] = {
                "en": f"suspend account {alert.sender} on the platform",
                "zh": f"在平台上暂停账号 {alert.sender}",
            }
    elif kind == "remove_content":
        items = params.get("items")
        if (
            not isinstance(items, list)
            or not 1 <= len(items) <= MAX_ITEMS
            or not all(isinstance(i, str) and 1 <= len(i) <= 200 for i in items)
        ):
            raise ActionError("items", f"give 1 to {MAX_ITEMS} content item ids to remove")
        details["items"] = list(dict.fromkeys(items))
        result["items"] = details["items"]
        result["platform_must"] = {
            "en": "remove these content items and keep their records",
            "zh": "删除上述内容并保存有关记录",
        }
    elif kind == "notify_guardians":
        restricted = bool(active_restrictions(session, alert.platform_id, alert.sender, now))
        found = guardians_of_children(session, alert.platform_id, alert.minors)
        sent = []
        for child, guardians in found.items():
            zh, en = guardian_message(child, restricted)
            for g in guardians:
                n = GuardianNotification(
                    platform_id=alert.platform_id,
                    alert_pk=alert.id,
                    guardian_id=g.id,
                    child=child,
                    message_zh=zh,
                    message_en=en,
                    created_by=reviewer,
                    created_at=now,
                )
                session.add(n)
                session.flush()
                sent.append(notification_view(n, session))
        details["notifications"] = [n["id"] for n in sent]
        details["without_guardian"] = [c for c, gs in found.items() if not gs]
        result["notifications"] = sent
        result["without_guardian"] = details["without_guardian"]
    elif kind == "report":
        authority = params.get("authority")
        if authority not in AUTHORITIES:
            raise ActionError("authority", f"must be one of {', '.join(AUTHORITIES)}")
        reference = params.get("reference")
        if reference is not None and (not isinstance(reference, str) or len(reference) > 128):
            raise ActionError("reference", "must be a string of at most 128 characters")
        measures = [
            {"kind": a.kind, "actor": a.actor, "at": _iso(a.at)}
            for a in actions_of(session, alert)
            if a.kind in ENFORCEMENT or a.kind == "auto_restrict"
        ]
        content = authority_report(
            evidence_of(alert),
            platform=f"{platform.name} ({platform.slug})",
            authority=str(authority),
            reviewer=reviewer,
            generated_at=now,
            reference=reference,
            measures=measures,
        )
        doc = ReviewDocument(
            platform_id=alert.platform_id,
            alert_pk=alert.id,
            kind="authority_report",
            authority=str(authority),
            reference=reference,
            media_type=MEDIA_TYPE,
            content=content,
            sha256=hashlib.sha256(content.encode("utf-8")).hexdigest(),
            created_by=reviewer,
            created_at=now,
        )
        session.add(doc)
        session.flush()
        details.update(document=doc.id, authority=authority, sha256=doc.sha256)
        result["document"] = document_view(doc, alert.alert_id)
        if not is_held(alert):
            # A report to an authority puts the alert's evidence under legal hold; the report's
            # own audit entry records it (details "hold": true), in the same transaction.
            zh, en = AUTHORITIES[str(authority)]
            _set_hold(alert, reviewer, REPORT_HOLD_REASON.format(zh=zh, en=en, doc=doc.id), now)
            details["hold"] = True
            result["hold"] = hold_view(alert)

    alert.status = new_status
    alert.updated_at = now
    if kind in ENFORCEMENT and alert.first_action_at is None:
        alert.first_action_at = now
    if kind == "dismiss":
        alert.first_action_at = alert.first_action_at or now
        alert.closed_at = now
    action = audit(session, alert, kind, reviewer, text, details, now)
    result["action"] = action_view(action)
    result["alert"] = alert_summary(alert, now)
    return result


# ---------------------------------------------------------------- legal hold


def _hold_text(reason: str | None) -> str:
    text = (reason or "").strip()
    if not MIN_HOLD_REASON <= len(text) <= MAX_HOLD_REASON:
        raise ActionError(
            "reason", f"give a reason of {MIN_HOLD_REASON} to {MAX_HOLD_REASON} characters"
        )
    return text


def _set_hold(alert: Alert, reviewer: str, reason: str, now: datetime) -> None:
    alert.hold_reason = reason
    alert.hold_set_by = reviewer
    alert.hold_set_at = now
    alert.hold_released_at = None
    alert.updated_at = now


def set_hold(
    session: Session, alert: Alert, reviewer: str, reason: str | None, now: datetime
) -> dict[str, Any]:
    """Put the alert's evidence under legal hold (audited as review.hold); 409 if already held."""
    text = _hold_text(reason)
    if is_held(alert):
        raise ActionError("hold", "the alert is already under legal hold", 409)
    _set_hold(alert, reviewer, text, now)
    action = audit(session, alert, "hold", reviewer, text, {}, now)
    return {
        "kind": "hold",
        "hold": hold_view(alert),
        "action": action_view(action),
        "alert": alert_summary(alert, now),
    }


def release_hold(
    session: Session, alert: Alert, reviewer: str, reason: str | None, now: datetime
) -> dict[str, Any]:
    """Release the alert's legal hold (audited as review.release); 409 if not held.

    The evidence then follows the ordinary rules again: the next retention run purges what is
    past its period and held for no other reason."""
    text = _hold_text(reason)
    if not is_held(alert):
        raise ActionError("hold", "the alert is not under legal hold", 409)
    alert.hold_released_at = now
    alert.updated_at = now
    details = {"held_since": _iso(alert.hold_set_at), "set_by": alert.hold_set_by}
    action = audit(session, alert, "release", reviewer, text, details, now)
    return {
        "kind": "release",
        "hold": hold_view(alert),
        "action": action_view(action),
        "alert": alert_summary(alert, now),
    }


# ---------------------------------------------------------------- evidence holds and dismissals

OPEN_STATUSES: Final = ("open", "in_review")
"""Alert statuses that are not yet decided (their evidence is held from retention)."""


HOLD_REASONS: Final = ("legal_hold", "evidence_hold", "actioned_alert")
"""Why an alert's evidence is kept, strongest first: the alert is under legal hold; it is open
or in review; it was actioned and closed less than the pack's period ago (or is still in force)."""


def alert_event_ids(alert: Alert) -> set[str]:
    """The platform event ids an alert references as evidence (ids, signals, timeline)."""
    held = {str(i) for i in alert.event_ids or []}
    evidence = evidence_of(alert)
    for sig in evidence.get("signals") or []:
        held.update(str(i) for i in sig.get("event_ids") or [])
    for item in evidence.get("timeline") or []:
        if isinstance(item, Mapping) and item.get("event_id") is not None:
            held.add(str(item["event_id"]))
    return held


def actioned_closings(
    session: Session, platform_id: int, at: datetime
) -> dict[int, datetime | None]:
    """When each actioned alert of the platform closed (by alert row id); None while one of its
    restrictions is still in force at `at`.

    An actioned alert closes at the latest of its enforcement actions, its dismissal time and the
    ends (lifted or expired) of its restrictions; hold changes do not count."""
    alerts = session.execute(
        select(Alert.id, Alert.raised_at, Alert.first_action_at, Alert.closed_at).where(
            Alert.platform_id == platform_id, Alert.status == "actioned"
        )
    ).all()
    if not alerts:
        return {}
    last: dict[int, datetime] = {
        pk: t
        for pk, t in session.execute(
            select(ReviewAction.alert_pk, func.max(ReviewAction.at))
            .where(
                ReviewAction.platform_id == platform_id,
                ReviewAction.kind.in_(tuple(ENFORCEMENT)),
            )
            .group_by(ReviewAction.alert_pk)
        )
    }
    ends: dict[int, list[datetime]] = {}
    in_force: set[int] = set()
    for pk, lifted, until in session.execute(
        select(Restriction.alert_pk, Restriction.lifted_at, Restriction.until).where(
            Restriction.platform_id == platform_id, Restriction.alert_pk.is_not(None)
        )
    ):
        if pk is None:
            continue
        end = lifted if lifted is not None and (until is None or lifted < until) else until
        if end is None or end > at:
            in_force.add(pk)
        else:
            ends.setdefault(pk, []).append(end)
    out: dict[int, datetime | None] = {}
    for pk, raised, first, closed in alerts:
        if pk in in_force:
            out[pk] = None
            continue
        times = [t for t in (closed, first, last.get(pk), *ends.get(pk, [])) if t is not None]
        out[pk] = max(times, default=raised)
    return out


def held_evidence(
    session: Session, platform_id: int, at: datetime, actioned_days: int | None
) -> dict[str, str]:
    """Event id → why it is kept at `at` (one of HOLD_REASONS, the strongest that applies).

    `actioned_days`: how long an actioned alert's evidence is kept after it closed (the pack's
    ``retention.actioned_alert_evidence_days``); None keeps every actioned alert's evidence.
    Evidence of a dismissed alert not under legal hold is not kept."""
    closings = actioned_closings(session, platform_id, at) if actioned_days is not None else {}
    cutoff = None if actioned_days is None else at - timedelta(days=actioned_days)
    rank = {r: i for i, r in enumerate(HOLD_REASONS)}
    out: dict[str, str] = {}
    for alert in session.scalars(select(Alert).where(Alert.platform_id == platform_id)):
        reason: str | None = None
        if is_held(alert):
            reason = "legal_hold"
        elif alert.status in OPEN_STATUSES:
            reason = "evidence_hold"
        elif alert.status == "actioned":
            closed = closings.get(alert.id)
            if cutoff is None or closed is None or closed >= cutoff:
                reason = "actioned_alert"
        if reason is None:
            continue
        for event_id in alert_event_ids(alert):
            old = out.get(event_id)
            if old is None or rank[reason] < rank[old]:
                out[event_id] = reason
    return out


def last_action_id(session: Session, platform_id: int) -> int:
    """The id of the platform's latest review action (0 when none): a dismissal cursor."""
    n = session.scalar(
        select(func.max(ReviewAction.id)).where(ReviewAction.platform_id == platform_id)
    )
    return int(n or 0)


def dismissals_after(
    session: Session,
    platform_id: int,
    after_id: int,
    upto_id: int | None = None,
    since: datetime | None = None,
    not_before: datetime | None = None,
) -> list[tuple[int, str, datetime]]:
    """Dismiss actions of the platform with id > after_id (<= upto_id), or recorded at or after
    `since` (a late commit of a lower id), none before `not_before`, in id order, as
    (action id, alert sender, action time)."""
    newer = ReviewAction.id > after_id
    stmt = (
        select(ReviewAction.id, Alert.sender, ReviewAction.at)
        .join(Alert, Alert.id == ReviewAction.alert_pk)
        .where(
            ReviewAction.platform_id == platform_id,
            ReviewAction.kind == "dismiss",
            newer if since is None else or_(newer, ReviewAction.at >= since),
        )
        .order_by(ReviewAction.id)
    )
    if upto_id is not None:
        stmt = stmt.where(ReviewAction.id <= upto_id)
    if not_before is not None:
        stmt = stmt.where(ReviewAction.at >= not_before)
    return [(int(i), str(sender), at) for i, sender, at in session.execute(stmt)]
