"""Impact assessments and attestations in the store.

Impact assessments (PIPL art. 55): :func:`platform_config` reads what the template is filled
from; :func:`save_assessment` stores a validated, edited document as the platform's next version
with its content hash and the date it must be kept until (creation date plus the years of pack
rule ``cn.audit.records_retention``, PIPL art. 56), and a ledger entry of kind
``audit.impact_assessment``. :func:`purge_expired` deletes only versions past their keep-until
date that are not the latest.

Attestations: a document (any file up to :data:`MAX_ATTESTATION_BYTES`) that evidences an
attested requirement, with its owner and date; the content is kept base64 in an encrypted
column, its SHA-256 in clear, and each upload is a ledger entry of kind ``audit.attestation``.
A document evidences its requirement for a period when it is dated within the months of pack
rule ``cn.audit.attestation_validity`` before the period's end.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Engine, delete, exists, func, select
from sqlalchemy.orm import Session, defer

from qinglang.audit.impact import (
    NoticeFact,
    NoticeItemFact,
    PlatformConfig,
    RetentionFact,
    content_hash,
    validate,
)
from qinglang.audit.model import Requirement
from qinglang.policy import Policy, load_policy
from qinglang.policy.schema import Rule
from qinglang.store import ledger
from qinglang.store.crypto import keyring_of
from qinglang.store.models import (
    Account,
    AgeAssessment,
    Attestation,
    ConsoleUser,
    DecisionLog,
    GuardianLink,
    ImpactAssessment,
    LedgerEntry,
    Notice,
    Platform,
)

RECORDS_TOPIC: Final = "audit.records_retention_years"
VALIDITY_TOPIC: Final = "audit.attestation_valid_months"
ASSESSMENT_KIND: Final = "audit.impact_assessment"
ATTESTATION_KIND: Final = "audit.attestation"
MAX_ATTESTATION_BYTES: Final = 10 * 1024 * 1024
"""Largest attested document (a qinglang limit, not a legal value)."""
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$", re.I)


class AttestationError(ValueError):
    """An attestation that cannot be stored; `field` names the offending part."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.message = message
        self.field = field


def policy_of(platform: Platform) -> Policy:
    """The platform's pack tightened by its overlay."""
    return load_policy(platform.jurisdiction, platform.policy_overlay)


def _int_rule(policy: Policy, topic: str) -> tuple[int, Rule]:
    rule = policy.require(topic)
    value = rule.value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"rule {rule.id} ({topic}) has no whole number")
    return value, rule


def keep_years(policy: Policy) -> int:
    """Years an impact assessment is kept (pack rule for audit.records_retention_years)."""
    return _int_rule(policy, RECORDS_TOPIC)[0]


def valid_months(policy: Policy) -> int:
    """Months an attested document evidences its requirement (audit.attestation_valid_months)."""
    return _int_rule(policy, VALIDITY_TOPIC)[0]


def add_years(day: date, years: int) -> date:
    """The same day `years` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, d))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover


def _actor(actor: str, field: str = "actor") -> str:
    name = actor.strip()
    if not 1 <= len(name) <= 128:
        raise AttestationError("give a name of 1 to 128 characters", field)
    return name


# ---------------------------------------------------------------- platform configuration


def _retention_fact(rule: Rule) -> RetentionFact:
    return RetentionFact(rule.id, rule.topic, rule.value, rule.unit, rule.citation.short())


def _notices(session: Session, platform_id: int) -> tuple[NoticeFact, ...]:
    rows = session.execute(
        select(Notice)
        .where(Notice.platform_id == platform_id)
        .order_by(Notice.language, Notice.audience, Notice.version.desc())
    ).scalars()
    latest: dict[tuple[str, str], Notice] = {}
    for n in rows:
        latest.setdefault((n.language, n.audience), n)
    out = []
    for (language, audience), n in sorted(latest.items()):
        body = n.body if isinstance(n.body, Mapping) else {}
        items = []
        for it in body.get("items") or []:
            if not isinstance(it, Mapping) or not it.get("purpose"):
                continue
            items.append(
                NoticeItemFact(
                    str(it["purpose"]),
                    tuple(str(c) for c in it.get("categories") or ()),
                    str(it.get("method") or ""),
                    str(it.get("scope") or ""),
                    it.get("audience"),
                    str(it.get("retention") or ""),
                )
            )
        out.append(NoticeFact(language, audience, n.version, n.content_hash, tuple(items)))
    return tuple(out)


def _exists(session: Session, stmt: Any) -> bool:
    return bool(session.execute(select(exists(stmt))).scalar())


def platform_config(session: Session, platform: Platform, policy: Policy) -> PlatformConfig:
    """What the impact assessment template is filled from, read from the platform's records."""
    pid = platform.id
    sources = session.execute(
        select(Account.age_source, func.count())
        .where(Account.platform_id == pid, Account.cancelled_at.is_(None))
        .group_by(Account.age_source)
    ).all()
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    guardians = _exists(
        session,
        select(GuardianLink.id)
        .join(Account, Account.id == GuardianLink.account_id)
        .where(Account.platform_id == pid, GuardianLink.revoked_at.is_(None)),
    ) or _exists(
        session,
        select(ConsoleUser.id).where(
            ConsoleUser.platform_id == pid, ConsoleUser.role == "guardian"
        ),
    )
    retention = tuple(
        _retention_fact(r)
        for r in sorted(policy.rules.values(), key=lambda r: r.id)
        if r.topic.startswith("retention.")
    )
    return PlatformConfig(
        platform_slug=platform.slug,
        platform_name=platform.name,
        jurisdiction=platform.jurisdiction,
        pack=f"{policy.meta.id} {policy.meta.version}",
        notices=_notices(session, pid),
        age_sources=tuple(sorted((src or "unknown", int(n)) for src, n in sources)),
        age_inference=_exists(
            session, select(AgeAssessment.id).where(AgeAssessment.platform_id == pid)
        ),
        recommendation_filter=_exists(
            session,
            select(DecisionLog.id).where(
                DecisionLog.platform_id == pid, DecisionLog.kind == "exposure"
            ),
        ),
        encryption_at_rest=keyring_of(engine) is not None,
        staff_read_logging=True,
        consent_ledger=_exists(
            session,
            select(LedgerEntry.id).where(
                LedgerEntry.platform_id == pid, LedgerEntry.kind.like("consent.%")
            ),
        ),
        decision_sample_rate=float(platform.decision_sample_rate),
        guardian_tools=guardians,
        retention=retention,
        records_retention=_retention_fact(policy.require(RECORDS_TOPIC)),
    )


# ---------------------------------------------------------------- impact assessments


def assessments(session: Session, platform_id: int) -> list[ImpactAssessment]:
    """The platform's assessment versions, newest first."""
    return list(
        session.execute(
            select(ImpactAssessment)
            .where(ImpactAssessment.platform_id == platform_id)
            .order_by(ImpactAssessment.version.desc())
        ).scalars()
    )


def get_assessment(session: Session, platform_id: int, version: int) -> ImpactAssessment | None:
    """One version of the platform's assessment, if it exists."""
    return session.execute(
        select(ImpactAssessment).where(
            ImpactAssessment.platform_id == platform_id, ImpactAssessment.version == version
        )
    ).scalar_one_or_none()


def latest(session: Session, platform_id: int) -> ImpactAssessment | None:
    """The platform's latest assessment version, if any."""
    return session.execute(
        select(ImpactAssessment)
        .where(ImpactAssessment.platform_id == platform_id)
        .order_by(ImpactAssessment.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def save_assessment(
    session: Session,
    platform: Platform,
    body: Any,
    actor: str,
    now: datetime,
    policy: Policy | None = None,
) -> ImpactAssessment:
    """Store a validated assessment as the next version, kept the pack's years (ledger entry)."""
    validate(body)
    actor = _actor(actor)
    policy = policy or policy_of(platform)
    years = keep_years(policy)
    rule_id = policy.require(RECORDS_TOPIC).id
    doc = dict(body)
    digest = content_hash(doc)
    ledger.lock_head(session, platform.id)
    last = latest(session, platform.id)
    keep_until = add_years(now.astimezone(policy.tz).date(), years)
    row = ImpactAssessment(
        platform_id=platform.id,
        version=1 if last is None else last.version + 1,
        body=doc,
        content_hash=digest,
        created_by=actor,
        created_at=now,
        keep_until=keep_until,
    )
    session.add(row)
    session.flush()
    ledger.append(
        session,
        platform.id,
        ASSESSMENT_KIND,
        None,
        {
            "action": "saved",
            "version": row.version,
            "content_hash": digest,
            "keep_until": keep_until.isoformat(),
            "rule": rule_id,
            "actor": actor,
        },
        at=now,
    )
    return row


def purge_expired(
    session: Session, platform: Platform, today: date, *, actor: str, now: datetime
) -> list[int]:
    """Delete versions past their keep-until date, never the latest; the versions deleted."""
    actor = _actor(actor)
    last = latest(session, platform.id)
    if last is None:
        return []
    versions = list(
        session.execute(
            select(ImpactAssessment.version)
            .where(
                ImpactAssessment.platform_id == platform.id,
                ImpactAssessment.keep_until < today,
                ImpactAssessment.version != last.version,
            )
            .order_by(ImpactAssessment.version)
        ).scalars()
    )
    if not versions:
        return []
    session.execute(
        delete(ImpactAssessment)
        .where(
            ImpactAssessment.platform_id == platform.id,
            ImpactAssessment.version.in_(versions),
            ImpactAssessment.keep_until < today,
        )
        .execution_options(synchronize_session=False)
    )
    ledger.append(
        session,
        platform.id,
        ASSESSMENT_KIND,
        None,
        {"action": "purged", "versions": versions, "as_of": today.isoformat(), "actor": actor},
        at=now,
    )
    return versions


# ---------------------------------------------------------------- attestations


def _text(value: str, field: str, limit: int) -> str:
    cleaned = value.strip()
    if not 1 <= len(cleaned) <= limit:
        raise AttestationError(f"give 1 to {limit} characters", field)
    return cleaned


def attest(
    session: Session,
    platform: Platform,
    requirement_id: str,
    title: str,
    owner: str,
    document_date: date,
    media_type: str,
    content: bytes,
    actor: str,
    now: datetime,
    *,
    catalogue: Sequence[Requirement],
    policy: Policy | None = None,
) -> Attestation:
    """Store a document evidencing an attested requirement (encrypted; ledger entry)."""
    req = next((r for r in catalogue if r.id == requirement_id), None)
    if req is None:
        raise AttestationError(f"unknown requirement {requirement_id!r}", "requirement_id")
    if req.kind != "attested":
        raise AttestationError(
            f"{requirement_id} is checked {req.kind}, not attested", "requirement_id"
        )
    title = _text(title, "title", 300)
    owner = _text(owner, "owner", 128)
    actor = _actor(actor)
    media_type = media_type.strip().lower()
    if len(media_type) > 100 or not _MEDIA_TYPE.match(media_type):
        raise AttestationError(f"not a media type: {media_type!r}", "media_type")
    policy = policy or policy_of(platform)
    today = now.astimezone(policy.tz).date()
    if document_date > today:
        raise AttestationError(
            f"{document_date.isoformat()} is in the future (today is {today.isoformat()})", "date"
        )
    if not content:
        raise AttestationError("the document is empty", "content")
    if len(content) > MAX_ATTESTATION_BYTES:
        raise AttestationError(
            f"{len(content)} bytes; at most {MAX_ATTESTATION_BYTES} (10 MB)", "content"
        )
    digest = hashlib.sha256(content).hexdigest()
    row = Attestation(
        platform_id=platform.id,
        requirement_id=requirement_id,
        title=title,
        owner=owner,
        document_date=document_date,
        media_type=media_type,
        sha256=digest,
        content=base64.b64encode(content).decode("ascii"),
        uploaded_by=actor,
        uploaded_at=now,
    )
    session.add(row)
    session.flush()
    ledger.append(
        session,
        platform.id,
        ATTESTATION_KIND,
        requirement_id,
        {
            "attestation": row.id,
            "requirement": requirement_id,
            "sha256": digest,
            "bytes": len(content),
            "media_type": media_type,
            "document_date": document_date.isoformat(),
            "owner": owner,
            "actor": actor,
        },
        at=now,
    )
    return row


def content_of(attestation: Attestation) -> bytes:
    """The attested document's bytes (decrypted, decoded)."""
    return base64.b64decode(attestation.content)


def list_attestations(
    session: Session, platform_id: int, requirement_id: str | None = None
) -> list[Attestation]:
    """The platform's attestations (content not loaded), newest document first."""
    stmt = (
        select(Attestation)
        .options(defer(Attestation.content))
        .where(Attestation.platform_id == platform_id)
    )
    if requirement_id is not None:
        stmt = stmt.where(Attestation.requirement_id == requirement_id)
    stmt = stmt.order_by(Attestation.document_date.desc(), Attestation.id.desc())
    return list(session.execute(stmt).scalars())


def attestations_for_period(
    session: Session, platform_id: int, end: date, valid_months: int
) -> dict[str, list[Attestation]]:
    """Requirement id → documents dated within `valid_months` before `end` (inclusive), newest
    first; content not loaded."""
    start = add_months(end, -valid_months)
    rows = session.execute(
        select(Attestation)
        .options(defer(Attestation.content))
        .where(
            Attestation.platform_id == platform_id,
            Attestation.document_date >= start,
            Attestation.document_date <= end,
        )
        .order_by(
            Attestation.requirement_id, Attestation.document_date.desc(), Attestation.id.desc()
        )
    ).scalars()
    out: dict[str, list[Attestation]] = {}
    for a in rows:
        out.setdefault(a.requirement_id, []).append(a)
    return out


def assessment_summary(row: ImpactAssessment) -> dict[str, Any]:
    """A version's metadata (JSON-ready), without the document."""
    return {
        "version": row.version,
        "content_hash": row.content_hash,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "keep_until": row.keep_until.isoformat(),
    }


def attestation_summary(row: Attestation) -> dict[str, Any]:
    """An attestation's metadata (JSON-ready), without the document."""
    return {
        "id": row.id,
        "requirement_id": row.requirement_id,
        "title": row.title,
        "owner": row.owner,
        "document_date": row.document_date.isoformat(),
        "media_type": row.media_type,
        "sha256": row.sha256,
        "uploaded_by": row.uploaded_by,
        "uploaded_at": row.uploaded_at.isoformat(),
    }
