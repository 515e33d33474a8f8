"""Notices, guardian verification and consents.

A platform publishes versioned privacy notices; a child notice that lacks an element the pack
requires is refused, naming what is missing. A guardian is linked to a child only through a
verifier (`method`), and consents are recorded one purpose × category at a time, tied to the
notice version shown. Every change is appended to the platform's ledger; decisions read the
consents on the very next call.

Retries are safe: send an `Idempotency-Key` header with a consent; a retry with the same key
returns the first answer and writes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from qinglang.api.deps import ApiKeyDep, PlatformDep, ServiceDep, storable_text
from qinglang.api.problems import error_responses, field_problem
from qinglang.api.service import require_account
from qinglang.consent.notices import NoticeError
from qinglang.consent.verify import VerificationError, verify_guardian
from qinglang.store import consents as store
from qinglang.store import id_number_digest, ledger, linkcodes, repo
from qinglang.store.models import Consent, Guardian, Notice, Platform

router = APIRouter(
    tags=["consent"], responses=error_responses(401), dependencies=[Depends(storable_text)]
)

Language = Literal["zh", "en"]
NoticeAudience = Literal["child", "minor", "general"]
Id = Annotated[str, Field(min_length=1, max_length=200)]
MAX_VERSION = 2**31 - 1


class Strict(BaseModel):
    """Request bodies refuse unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class NoticeIn(Strict):
    """A notice to publish: language, audience and the document (elements and items)."""

    language: Language
    audience: NoticeAudience = "child"
    published_by: Id
    body: dict[str, Any] = Field(
        description="{title, elements: {element: text}, items: [{purpose, categories, method, "
        "scope, audience?, retention?}]}"
    )


class NoticeOut(BaseModel):
    """A published notice version."""

    language: str
    audience: str
    version: int
    content_hash: str
    published_at: datetime
    published_by: str
    body: dict[str, Any]
    stale_consents: int | None = None
    stale_accounts: int | None = None


def _notice_out(n: Notice, published: store.Published | None = None) -> NoticeOut:
    return NoticeOut(
        language=n.language,
        audience=n.audience,
        version=n.version,
        content_hash=n.content_hash,
        published_at=n.published_at,
        published_by=n.published_by,
        body=n.body,
        stale_consents=None if published is None else published.stale_consents,
        stale_accounts=None if published is None else published.stale_accounts,
    )


@router.post("/v1/notices", status_code=201, responses=error_responses(400, 409, 422))
def publish_notice(body: NoticeIn, platform: PlatformDep, service: ServiceDep) -> NoticeOut:
    """Publish the next version of a notice; consents whose purpose or scope changed go stale."""
    policy = service.policy_for(platform)
    with service.tx(write=True) as s:
        try:
            published = store.publish_notice(
                s,
                platform,
                policy,
                body.language,
                body.audience,
                body.body,
                body.published_by,
                service.clock(),
            )
        except NoticeError as exc:
            raise field_problem(422, exc.field, str(exc), "Notice cannot be published") from None
        return _notice_out(published.notice, published)


@router.get("/v1/notices/{language}/{audience}", responses=error_responses(404, 422))
def get_notice(
    language: Language,
    audience: NoticeAudience,
    platform: PlatformDep,
    service: ServiceDep,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> NoticeOut:
    """The current notice (or `version`) for a language and audience."""
    with service.tx() as s:
        n = _notice(s, platform, language, audience, version, "version")
        return _notice_out(n)


def _notice(
    s: Session,
    platform: Platform,
    language: str,
    audience: str,
    version: int | None,
    field: str,
) -> Notice:
    if version is None:
        n = store.current_notice(s, platform.id, language, audience)
    else:
        n = (
            s.query(Notice)
            .filter_by(platform_id=platform.id, language=language, audience=audience)
            .filter_by(version=version)
            .one_or_none()
        )
    if n is None:
        raise field_problem(404, field, f"no {audience} notice in {language!r}", "Unknown notice")
    return n


class GuardianIn(Strict):
    """A guardian as the platform knows them (the display name is stored encrypted)."""

    display_name: str | None = Field(default=None, max_length=200)


class LinkIn(Strict):
    """Link a guardian to a child after verifying the guardian by `method`."""

    account: Id
    method: str = Field(min_length=1, max_length=32)
    verified_by: Id
    claims: dict[str, Any] = Field(
        default_factory=dict,
        description="what the method checks: id_number for id_number_realname; "
        "reference for small_payment, signed_form, video_call",
    )


class LinkOut(BaseModel):
    """A verified guardian link."""

    guardian: str
    account: str
    method: str
    verified_by: str
    verified_at: datetime
    evidence: dict[str, Any]


@router.put("/v1/guardians/{guardian}", responses=error_responses(400, 422))
def put_guardian(
    guardian: str, body: GuardianIn, platform: PlatformDep, service: ServiceDep
) -> dict[str, str]:
    """Create or update a guardian."""
    if not 1 <= len(guardian) <= 200:
        raise field_problem(422, "guardian", "must be 1 to 200 characters")
    with service.tx(write=True) as s:
        repo.upsert_guardian(s, platform.id, guardian, display_name=body.display_name)
    return {"guardian": guardian}


@router.post(
    "/v1/guardians/{guardian}/children",
    status_code=201,
    responses=error_responses(400, 404, 409, 422),
)
def link_child(guardian: str, body: LinkIn, platform: PlatformDep, service: ServiceDep) -> LinkOut:
    """Verify the guardian and link them to the child; 422 names the claim that failed."""
    policy = service.policy_for(platform)
    at = service.clock()
    try:
        result = verify_guardian(body.method, body.claims, at, policy)
    except VerificationError as exc:
        raise field_problem(422, exc.field, str(exc), "Verification method not allowed") from None
    if not result.verified:
        raise field_problem(422, "claims", result.reason, "Guardian not verified")
    with service.tx(write=True) as s:
        g = _guardian(s, platform, guardian)
        account = require_account(s, platform, body.account, "account")
        if body.method == "id_number_realname":
            g.id_number_hash = id_number_digest(service.keys, str(body.claims["id_number"]))
        link = store.record_verified_link(
            s, platform, g, account, body.method, body.verified_by, result.evidence, at
        )
        return LinkOut(
            guardian=guardian,
            account=account.external_id,
            method=link.method,
            verified_by=link.verified_by,
            verified_at=link.verified_at,
            evidence=dict(link.evidence or {}),
        )


class LinkCodeOut(BaseModel):
    """A one-time code for the child's own app; a guardian linking in the console types it."""

    account: str
    code: str
    expires_at: datetime


@router.post(
    "/v1/accounts/{account}/guardian-link-codes",
    status_code=201,
    responses=error_responses(404, 422),
)
def issue_link_code(account: str, platform: PlatformDep, service: ServiceDep) -> LinkCodeOut:
    """Issue a one-time guardian link code for this account (show it in the child's app)."""
    at = service.clock()
    with service.tx(write=True) as s:
        child = require_account(s, platform, account, "account")
        code, expires = linkcodes.issue(s, service.keys, child, at)
        return LinkCodeOut(account=child.external_id, code=code, expires_at=expires)


@router.delete(
    "/v1/guardians/{guardian}/children/{account}",
    status_code=204,
    responses=error_responses(404, 422),
)
def unlink_child(guardian: str, account: str, platform: PlatformDep, service: ServiceDep) -> None:
    """Revoke a guardian link (kept for the record; recorded in the ledger)."""
    with service.tx(write=True) as s:
        g = _guardian(s, platform, guardian)
        child = require_account(s, platform, account, "account")
        at = service.clock()
        if not repo.unlink_guardian(s, g.id, child.id, at):
            raise field_problem(404, "account", "no active link to this account")
        ledger.append(
            s, platform.id, "guardian.unlinked", child.external_id, {"guardian": guardian}, at=at
        )


def _guardian(s: Session, platform: Platform, external_id: str) -> Guardian:
    g = repo.get_guardian(s, platform.id, external_id)
    if g is None:
        raise field_problem(404, "guardian", f"no guardian {external_id!r}", "Unknown guardian")
    return g


class NoticeRef(Strict):
    """The notice version shown when the decision was made."""

    language: Language
    audience: NoticeAudience = "child"
    version: int = Field(ge=1, le=MAX_VERSION)


class ConsentIn(Strict):
    """One consent decision: grant, refuse or withdraw one purpose × category."""

    account: Id
    purpose: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=64)
    decision: Literal["grant", "refuse", "withdraw"]
    notice: NoticeRef
    given_by: Literal["guardian", "self"] = "guardian"
    guardian: str | None = Field(default=None, max_length=200)
    audience: Literal["owner", "friends", "followers", "public"] | None = Field(
        default=None, description="for disclosure purposes; at most what the notice offers"
    )


class ConsentOut(BaseModel):
    """A consent as recorded, and whether decisions treat it as given."""

    account: str
    purpose: str
    category: str
    status: str
    valid: bool
    stale_since: datetime | None
    audience: str | None
    given_by: str
    guardian: str | None
    notice_version: int
    decided_at: datetime
    ledger_seq: int | None = None
    replayed: bool = False


_STATUS = {"grant": "granted", "refuse": "refused", "withdraw": "withdrawn"}


def _consent_out(
    s: Session, c: Consent, account: str, seq: int | None = None, replayed: bool = False
) -> ConsentOut:
    notice = s.get(Notice, c.notice_id)
    guardian = s.get(Guardian, c.guardian_id) if c.guardian_id is not None else None
    return ConsentOut(
        account=account,
        purpose=c.purpose,
        category=c.category,
        status=c.status,
        valid=c.status == "granted" and c.stale_since is None,
        stale_since=c.stale_since,
        audience=c.audience,
        given_by=c.given_by,
        guardian=None if guardian is None else guardian.external_id,
        notice_version=0 if notice is None else notice.version,
        decided_at=c.decided_at,
        ledger_seq=seq,
        replayed=replayed,
    )


@router.post("/v1/consents", status_code=201, responses=error_responses(400, 403, 404, 409, 422))
async def post_consent(
    body: ConsentIn,
    key: ApiKeyDep,
    service: ServiceDep,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> ConsentOut:
    """Record a guardian's (or a 14+ minor's own) consent decision; effective on the next call."""

    def work(s: Session, platform: Platform) -> ConsentOut:
        if idempotency_key is not None:
            done = ledger.by_request_key(s, platform.id, idempotency_key)
            if done is not None:
                return _replay(s, platform, done.subject, body, done.seq)
        account = require_account(s, platform, body.account, "account")
        profile = service.profile(platform, account)
        guardian: Guardian | None = None
        if body.given_by == "guardian":
            if body.guardian is None:
                raise field_problem(422, "guardian", "required when given_by is guardian")
            guardian = _guardian(s, platform, body.guardian)
            if store.active_link(s, guardian.id, account.id) is None:
                raise field_problem(
                    403, "guardian", "is not a verified guardian of this account", "Forbidden"
                )
        else:
            floor = service.policy_for(platform).require("consent.self_from_age").value
            if profile.age is None or not isinstance(floor, int) or profile.age < floor:
                raise field_problem(
                    403,
                    "given_by",
                    f"an account under {floor} (or of unknown age) needs its guardian's consent",
                    "Forbidden",
                )
        notice = _notice(
            s, platform, body.notice.language, body.notice.audience, body.notice.version, "notice"
        )
        try:
            row, seq = store.record_consent(
                s,
                platform,
                account,
                purpose=body.purpose,
                category=body.category,
                status=_STATUS[body.decision],
                given_by=body.given_by,
                guardian=guardian,
                notice=notice,
                audience=body.audience,
                request_key=idempotency_key,
                at=service.clock(),
            )
        except store.ConsentConflict as exc:
            raise field_problem(exc.status, exc.field, str(exc)) from None
        return _consent_out(s, row, account.external_id, seq)

    return await service.run_write(key, work)


def _replay(
    s: Session, platform: Platform, subject: str | None, body: ConsentIn, seq: int
) -> ConsentOut:
    if subject != body.account:
        raise field_problem(
            409, "Idempotency-Key", "was used for another request", "Idempotency key reused"
        )
    account = require_account(s, platform, body.account, "account")
    for c in store.consents_of(s, account.id):
        if c.purpose == body.purpose and c.category == body.category:
            return _consent_out(s, c, account.external_id, seq, replayed=True)
    raise field_problem(409, "Idempotency-Key", "was used for another request")


@router.get("/v1/accounts/{account}/consents", responses=error_responses(404, 422))
def list_consents(account: str, platform: PlatformDep, service: ServiceDep) -> list[ConsentOut]:
    """Every consent of the account, with whether decisions treat it as given."""
    with service.tx() as s:
        acc = require_account(s, platform, account, "account")
        return [_consent_out(s, c, acc.external_id) for c in store.consents_of(s, acc.id)]
