"""Consent records: notices, guardian verification, consents and the snapshot decisions read.

Every change here appends to the platform's ledger in the same transaction and, when it
changes what an account has consented to, bumps ``accounts.consent_version``: the API caches
profiles (with their consent snapshot) by that version, so a withdrawal is seen by the very
next decision in every worker. Each write takes the platform's chain lock
(`ledger.lock_head`) before it reads the rows it changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, literal, select, update
from sqlalchemy.orm import Session

from qinglang.consent.notices import (
    NoticeDoc,
    check_publishable,
    content_hash,
    parse_notice,
    stale_pairs,
)
from qinglang.guard.consents import ConsentView, Grant
from qinglang.policy import AUDIENCES, Policy
from qinglang.store import ledger
from qinglang.store.models import (
    Account,
    Consent,
    Guardian,
    GuardianLink,
    Notice,
    Platform,
    UTCDateTime,
    utcnow,
)


class ConsentConflict(ValueError):
    """A consent that cannot be recorded as asked; `field` names the request field."""

    def __init__(self, message: str, field: str, status: int = 409) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Published:
    """A published notice and how many consents it made stale (in how many accounts)."""

    notice: Notice
    stale_consents: int
    stale_accounts: int


def current_notice(
    session: Session, platform_id: int, language: str, audience: str
) -> Notice | None:
    """The latest published notice version for this platform, language and audience."""
    return session.execute(
        select(Notice)
        .where(
            Notice.platform_id == platform_id,
            Notice.language == language,
            Notice.audience == audience,
        )
        .order_by(Notice.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def bump_consent_versions(
    session: Session, account_ids: Iterable[int], at: datetime | None = None
) -> None:
    """Invalidate the consent snapshots of these accounts (same transaction as the change,
    which happened at `at`, default now)."""
    when = literal(at or utcnow(), UTCDateTime())
    ids = sorted(set(account_ids))
    for i in range(0, len(ids), 500):
        session.execute(
            update(Account)
            .where(Account.id.in_(ids[i : i + 500]))
            .values(
                consent_version=Account.consent_version + 1,
                # never earlier than the row's last version
                updated_at=case((Account.updated_at > when, Account.updated_at), else_=when),
            )
            .execution_options(synchronize_session=False)
        )


def publish_notice(
    session: Session,
    platform: Platform,
    policy: Policy,
    language: str,
    audience: str,
    body: Mapping[str, Any],
    published_by: str,
    at: datetime | None = None,
) -> Published:
    """Publish the next version; consents whose purpose or scope it changes become stale."""
    at = at or utcnow()
    doc = parse_notice(body)
    check_publishable(doc, policy, audience)
    ledger.lock_head(session, platform.id)
    last = current_notice(session, platform.id, language, audience)
    notice = Notice(
        platform_id=platform.id,
        language=language,
        audience=audience,
        version=1 if last is None else last.version + 1,
        body=doc.model_dump(mode="json"),
        content_hash=content_hash(doc),
        published_by=published_by,
        published_at=at,
    )
    session.add(notice)
    session.flush()
    ledger.append(
        session,
        platform.id,
        "notice.published",
        None,
        {
            "language": language,
            "audience": audience,
            "version": notice.version,
            "content_hash": notice.content_hash,
            "published_by": published_by,
        },
        at=at,
    )
    n_consents, accounts = _mark_stale(session, platform, notice, doc, at)
    return Published(notice, n_consents, len(accounts))


def _mark_stale(
    session: Session, platform: Platform, notice: Notice, doc: NoticeDoc, at: datetime
) -> tuple[int, set[int]]:
    older = session.execute(
        select(Notice).where(
            Notice.platform_id == platform.id,
            Notice.language == notice.language,
            Notice.audience == notice.audience,
            Notice.id != notice.id,
        )
    ).scalars()
    by_account: dict[int, list[Consent]] = {}
    for old in older:
        pairs = stale_pairs(NoticeDoc.model_validate(old.body), doc)
        if not pairs:
            continue
        rows = session.execute(
            select(Consent).where(
                Consent.notice_id == old.id,
                Consent.status == "granted",
                Consent.stale_since.is_(None),
            )
        ).scalars()
        for c in rows:
            if (c.purpose, c.category) in pairs:
                c.stale_since = at
                by_account.setdefault(c.account_id, []).append(c)
    if not by_account:
        return 0, set()
    id_rows = session.execute(
        select(Account.id, Account.external_id).where(Account.id.in_(list(by_account)))
    )
    subjects: dict[int, str] = {aid: ext for aid, ext in id_rows}
    for account_id, consents in sorted(by_account.items()):
        ledger.append(
            session,
            platform.id,
            "consent.stale",
            subjects[account_id],
            {
                "notice": _notice_ref(notice),
                "pairs": sorted([c.purpose, c.category] for c in consents),
            },
            at=at,
        )
    bump_consent_versions(session, by_account, at)
    session.flush()
    return sum(len(v) for v in by_account.values()), set(by_account)


def _notice_ref(notice: Notice) -> dict[str, Any]:
    return {
        "language": notice.language,
        "audience": notice.audience,
        "version": notice.version,
        "content_hash": notice.content_hash,
    }


def active_link(session: Session, guardian_id: int, account_id: int) -> GuardianLink | None:
    """The guardian's unrevoked link to the account, if any."""
    return session.execute(
        select(GuardianLink).where(
            GuardianLink.guardian_id == guardian_id,
            GuardianLink.account_id == account_id,
            GuardianLink.revoked_at.is_(None),
        )
    ).scalar_one_or_none()


def record_verified_link(
    session: Session,
    platform: Platform,
    guardian: Guardian,
    account: Account,
    method: str,
    verified_by: str,
    evidence: Mapping[str, Any],
    at: datetime | None = None,
) -> GuardianLink:
    """Record a verified guardian link with its evidence, and the verification in the ledger."""
    from qinglang.store import repo

    at = at or utcnow()
    ledger.lock_head(session, platform.id)
    link = repo.link_guardian(
        session, guardian.id, account.id, method=method, verified_by=verified_by, verified_at=at
    )
    link.evidence = dict(evidence)
    ledger.append(
        session,
        platform.id,
        "guardian.verified",
        account.external_id,
        {
            "guardian": guardian.external_id,
            "method": method,
            "verified_by": verified_by,
            "evidence": dict(evidence),
        },
        at=at,
    )
    session.flush()
    return link


def record_consent(
    session: Session,
    platform: Platform,
    account: Account,
    *,
    purpose: str,
    category: str,
    status: str,
    given_by: str,
    guardian: Guardian | None,
    notice: Notice,
    audience: str | None = None,
    request_key: str | None = None,
    at: datetime | None = None,
) -> tuple[Consent, int]:
    """Record a grant, refusal or withdrawal under `notice`; return the row and its ledger seq.

    A grant or refusal must name a pair the notice offers and the notice must be the current
    version (consent is tied to what was shown). A withdrawal needs neither. The caller checks
    who may decide (guardian link, or the person's own age).
    """
    at = at or utcnow()
    ledger.lock_head(session, platform.id)
    doc = NoticeDoc.model_validate(notice.body)
    latest = current_notice(session, platform.id, notice.language, notice.audience)
    item = doc.item(purpose)
    if status != "withdrawn":
        if latest is not None and latest.id != notice.id:
            raise ConsentConflict(
                f"notice version {notice.version} is outdated; show version {latest.version}",
                "notice_version",
            )
        if item is None or category not in item.categories:
            raise ConsentConflict(
                f"notice version {notice.version} offers no consent for {purpose}/{category}",
                "purpose",
                422,
            )
    if audience is not None:
        if audience not in AUDIENCES:
            raise ConsentConflict(f"unknown audience {audience!r}", "audience", 422)
        bound = item.audience if item is not None else None
        if bound is None or AUDIENCES.index(audience) > AUDIENCES.index(bound):
            raise ConsentConflict(
                f"audience {audience!r} is wider than the notice offers ({bound})",
                "audience",
                422,
            )
    elif status == "granted" and item is not None:
        audience = item.audience
    row = session.execute(
        select(Consent).where(
            Consent.account_id == account.id,
            Consent.purpose == purpose,
            Consent.category == category,
        )
    ).scalar_one_or_none()
    if row is None:
        if status == "withdrawn":
            raise ConsentConflict(
                f"no consent for {purpose}/{category} to withdraw", "purpose", 404
            )
        row = Consent(
            platform_id=platform.id, account_id=account.id, purpose=purpose, category=category
        )
        session.add(row)
    row.status = status
    row.audience = audience if status == "granted" else None
    row.given_by = given_by
    row.guardian_id = guardian.id if guardian is not None else None
    if status != "withdrawn":
        row.notice_id = notice.id
    row.decided_at = at
    row.stale_since = None
    entry = ledger.append(
        session,
        platform.id,
        f"consent.{status}",
        account.external_id,
        {
            "purpose": purpose,
            "category": category,
            "audience": row.audience,
            "given_by": given_by,
            "guardian": guardian.external_id if guardian is not None else None,
            "notice": _notice_ref(notice),
        },
        request_key=request_key,
        at=at,
    )
    bump_consent_versions(session, [account.id], at)
    session.flush()
    return row, entry.seq


def consents_of(session: Session, account_id: int) -> list[Consent]:
    """Every consent row of an account (any status), by purpose and category."""
    return list(
        session.execute(
            select(Consent)
            .where(Consent.account_id == account_id)
            .order_by(Consent.purpose, Consent.category)
        ).scalars()
    )


def consent_view(session: Session, account: Account) -> ConsentView:
    """The account's snapshot: valid grants (granted and not stale) and stale pairs."""
    return consent_view_of(session, account.id, account.consent_version)


def consent_view_of(session: Session, account_id: int, version: int) -> ConsentView:
    """The snapshot of an account by id, labelled with the consent version read alongside."""
    grants: dict[tuple[str, str], Grant] = {}
    stale: set[tuple[str, str]] = set()
    for c in consents_of(session, account_id):
        if c.status != "granted":
            continue
        if c.stale_since is not None:
            stale.add((c.purpose, c.category))
            continue
        level = None if c.audience is None else AUDIENCES.index(c.audience)
        grants[(c.purpose, c.category)] = Grant(c.given_by, level)
    return ConsentView(version, grants, frozenset(stale))
