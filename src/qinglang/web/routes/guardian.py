"""The guardian portal: linked children, consents, held data, rights requests, settings, actions.

A guardian sees only the children linked to their ``guardians`` row: any other account id in a
URL answers 403 (the same page whether the account exists or not). Every write is one
transaction and calls the same store and core functions as the API (``record_verified_link``,
``record_consent``, ``create_request``, the profile's settings check), so the console and the
API cannot disagree. A guardian reading their own child's data is not a staff read and is not
logged as one; the download of the access export is recorded in the ledger as the API's is.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, NoReturn
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qinglang.api.service import Service, now_utc
from qinglang.consent.notices import NoticeDoc
from qinglang.consent.rights import RightsError, is_overdue
from qinglang.consent.verify import VerificationError, verify_guardian
from qinglang.guard import SettingsError
from qinglang.guard.profile import apply_settings
from qinglang.policy import Policy, Rule, RuleValue
from qinglang.store import consents as consent_store
from qinglang.store import id_number_digest, ledger, linkcodes, repo
from qinglang.store import rights as rights_store
from qinglang.store.models import (
    Account,
    Consent,
    Guardian,
    GuardianLink,
    GuardianNotification,
    Notice,
    Platform,
    Relationship,
    RightsRequest,
)
from qinglang.web.auth import CurrentUser, Forbidden, csrf_checked, require_role, service_of
from qinglang.web.i18n import lang_of
from qinglang.web.render import render

router = APIRouter(prefix="/console/guardian", include_in_schema=False)

GuardianUser = Annotated[CurrentUser, Depends(require_role("guardian"))]
CSRF: Final = [Depends(csrf_checked)]
FormText = Annotated[str, Form()]

DECISIONS: Final = {"grant": "granted", "refuse": "refused", "withdraw": "withdrawn"}
"""Consent button → stored status (as POST /v1/consents)."""
REQUEST_KINDS: Final = ("correction", "deletion")
"""Rights requests the portal offers (access is the download)."""
SETTING_TOPICS: Final = (
    "playtime.daily_minutes",
    "playtime.night_windows",
    "spending.single_cap_fen",
    "spending.daily_cap_fen",
    "spending.monthly_cap_fen",
)
"""Guardian settings the portal edits, in page order (only those that apply to the child)."""
MONEY_TOPICS: Final = frozenset(
    {"spending.single_cap_fen", "spending.daily_cap_fen", "spending.monthly_cap_fen"}
)
_KEY = re.compile(r"^[0-9a-f]{32}$")
_WINDOW = re.compile(r"^\d{2}:\d{2}-\d{2}:\d{2}$")
MAX_NOTE: Final = 2000
MAX_NOTIFICATIONS: Final = 50


@dataclass(frozen=True)
class FieldError:
    """A form error shown next to its field: an i18n key, its parameters and the core detail."""

    key: str
    detail: str = ""
    params: Mapping[str, Any] | None = None


class _Refused(Exception):
    """A write the core refused: roll the transaction back and re-render with these errors."""

    def __init__(self, errors: dict[str, FieldError], status: int = 422) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors
        # A bad field is a 422 (docs/console.md); a conflict with newer state stays a 409.
        self.status = status if status in (403, 409) else 422


# ---------------------------------------------------------------- helpers


def _platform(s: Session, user: CurrentUser) -> Platform:
    platform = s.get(Platform, user.platform_id)
    if platform is None:  # the user row references its platform: only after a deletion
        raise LookupError(f"platform {user.platform_id} is gone")
    return platform


def _guardian(s: Session, user: CurrentUser) -> Guardian | None:
    if user.guardian_id is None:
        return None
    g = s.get(Guardian, user.guardian_id)
    return g if g is not None and g.platform_id == user.platform_id else None


def _linked(s: Session, user: CurrentUser, external_id: str) -> Account | None:
    """The child named in the URL if this guardian has an active link to it, else None."""
    if user.guardian_id is None:
        return None
    account = repo.get_account(s, user.platform_id, external_id)
    if account is None:
        return None
    if consent_store.active_link(s, user.guardian_id, account.id) is None:
        return None
    return account


def _linked_or_403(s: Session, user: CurrentUser, external_id: str) -> tuple[Account, Platform]:
    """The linked child named in the URL and the user's platform; the 403 page otherwise."""
    child = _linked(s, user, external_id)
    if child is None:
        raise Forbidden("not a linked child")
    return child, _platform(s, user)


def _forbidden(request: Request) -> NoReturn:
    """Not this guardian's child (or no such account): the console's 403 page."""
    raise Forbidden("not a linked child")


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _child_url(account: str, page: str = "") -> str:
    base = f"/console/guardian/children/{quote(account, safe='')}"
    return f"{base}/{page}" if page else base


def _when(value: datetime | None, policy: Policy) -> str:
    """A time in the pack's zone, to the minute, with the zone's offset (e.g. UTC+08:00)."""
    if value is None:
        return ""
    local = value.astimezone(policy.tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} UTC{offset[:3]}:{offset[3:]}"


def _form_key() -> str:
    """A fresh idempotency key for one form render."""
    return secrets.token_hex(16)


def _request_key(user: CurrentUser, key: str) -> str | None:
    """The ledger request key of a form submission (namespaced to the console user)."""
    if not _KEY.match(key):
        return None
    return f"console:{user.id}:{key}"


def _band_label(policy: Policy, band: str | None) -> dict[str, str] | None:
    if band is None or "content" not in policy.bandsets:
        return None
    for b in policy.bands("content"):
        if b.id == band:
            return {"zh": b.label_zh, "en": b.label_en}
    return {"zh": band, "en": band}


def _rule_view(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "binding": rule.binding,
        "value": rule.value,
        "message_zh": rule.message_zh,
        "message_en": rule.message_en,
        "citation": rule.citation.short(),
    }


def _child_view(service: Service, platform: Platform, account: Account) -> dict[str, Any]:
    profile = service.profile(platform, account)
    return {
        "external_id": account.external_id,
        "url": _child_url(account.external_id),
        "age": profile.age,
        "band": _band_label(service.policy_for(platform), profile.band),
        "is_child": profile.is_child,
    }


# ---------------------------------------------------------------- children and linking


def _children(s: Session, service: Service, user: CurrentUser) -> list[dict[str, Any]]:
    if user.guardian_id is None:
        return []
    platform = _platform(s, user)
    rows = s.execute(
        select(Account)
        .join(GuardianLink, GuardianLink.account_id == Account.id)
        .where(
            GuardianLink.guardian_id == user.guardian_id,
            GuardianLink.revoked_at.is_(None),
            Account.platform_id == user.platform_id,
        )
        .order_by(Account.external_id)
    ).scalars()
    return [_child_view(service, platform, a) for a in rows]


def _methods(service: Service, s: Session, user: CurrentUser) -> list[str]:
    allowed = service.policy_for(_platform(s, user)).require(
        "consent.guardian_verification_methods"
    )
    return [str(m) for m in allowed.value] if isinstance(allowed.value, list) else []


def _index(
    request: Request,
    user: CurrentUser,
    errors: Mapping[str, FieldError] | None = None,
    values: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    service = service_of(request)
    with service.tx() as s:
        children = _children(s, service, user)
        methods = _methods(service, s, user)
    ctx = {
        "children": children,
        "methods": methods,
        "errors": dict(errors or {}),
        "values": dict(values or {}),
    }
    return render(request, "guardian/index.html", ctx, status_code=status_code)


@router.get("")
def index(request: Request, user: GuardianUser) -> HTMLResponse:
    """The guardian's linked children and the form to link another."""
    return _index(request, user)


def _verification_error(method: str, reason: str) -> dict[str, FieldError]:
    field = "id_number" if method == "id_number_realname" else "reference"
    if reason.startswith("the guardian must be an adult"):
        return {field: FieldError("guardian.link.error.not_adult", reason)}
    if reason.startswith("identity number invalid"):
        return {field: FieldError("guardian.link.error.id_number_invalid", reason)}
    if reason.endswith("is required"):
        return {field: FieldError("guardian.error.required", reason)}
    return {field: FieldError("guardian.link.error.not_verified", reason)}


@router.post("/link", dependencies=CSRF)
def link_child(
    request: Request,
    user: GuardianUser,
    account: FormText = "",
    method: FormText = "",
    id_number: FormText = "",
    reference: FormText = "",
    link_code: FormText = "",
) -> Response:
    """Verify the guardian by an allowed method and link them to the child's account.

    The guardian also gives the one-time link code the platform showed in the child's own app
    (store/linkcodes.py): knowing an account id is not enough to claim a child."""
    service = service_of(request)
    values = {"account": account.strip(), "method": method}
    at = now_utc()
    try:
        if not values["account"] or len(values["account"]) > 200:
            raise _Refused({"account": FieldError("guardian.error.required")})
        claims = {"id_number": id_number} if method == "id_number_realname" else {}
        if method != "id_number_realname":
            claims["reference"] = reference
        with service.tx(write=True) as s:
            platform = _platform(s, user)
            guardian = _guardian(s, user)
            if guardian is None:
                raise _Refused({"account": FieldError("guardian.link.error.no_guardian")}, 403)
            try:
                result = verify_guardian(method, claims, at, service.policy_for(platform))
            except VerificationError as exc:
                raise _Refused(
                    {"method": FieldError("guardian.link.error.method", str(exc))}
                ) from None
            if not result.verified:
                raise _Refused(_verification_error(method, result.reason))
            child = repo.get_account(s, platform.id, values["account"])
            if child is None or not linkcodes.redeem(s, service.keys, child, link_code, at):
                # one message for both: the form must not tell which account ids exist
                raise _Refused({"link_code": FieldError("guardian.link.error.code")})
            if method == "id_number_realname":
                guardian.id_number_hash = id_number_digest(service.keys, id_number)
            consent_store.record_verified_link(
                s,
                platform,
                guardian,
                child,
                method,
                f"console:{user.username}"[:128],
                result.evidence,
                at,
            )
            target = _child_url(child.external_id)
    except _Refused as exc:
        return _index(request, user, exc.errors, values, exc.status)
    return _back(target)


# ---------------------------------------------------------------- child page and consents


def _notice_for(s: Session, platform_id: int, lang: str) -> Notice | None:
    """The current child notice in the reader's language (else the other language)."""
    for language in (lang, "zh", "en"):
        n = consent_store.current_notice(s, platform_id, language, "child")
        if n is not None:
            return n
    return None


def _state(c: Consent | None) -> str:
    if c is None:
        return "undecided"
    if c.status == "granted" and c.stale_since is not None:
        return "stale"
    return c.status


def _consent_rows(s: Session, account: Account, notice: Notice | None) -> list[dict[str, Any]]:
    if notice is None:
        return []
    held = {(c.purpose, c.category): c for c in consent_store.consents_of(s, account.id)}
    doc = NoticeDoc.model_validate(notice.body)
    rows = []
    for item in doc.items:
        for category in item.categories:
            c = held.get((item.purpose, category))
            rows.append(
                {
                    "purpose": item.purpose,
                    "category": category,
                    "scope": item.scope,
                    "method": item.method,
                    "audience": item.audience,
                    "state": _state(c),
                    "decided_at": None if c is None else c.decided_at,
                    "key": _form_key(),
                }
            )
    return rows


def _child_page(
    request: Request,
    user: CurrentUser,
    account: str,
    errors: Mapping[str, FieldError] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    service = service_of(request)
    lang = lang_of(request)
    with service.tx() as s:
        child, platform = _linked_or_403(s, user, account)
        policy = service.policy_for(platform)
        notice = _notice_for(s, platform.id, lang)
        rows = _consent_rows(s, child, notice)
        for r in rows:
            r["decided_at"] = _when(r["decided_at"], policy)
        ctx = {
            "child": _child_view(service, platform, child),
            "child_notice": None
            if notice is None
            else {
                "language": notice.language,
                "version": notice.version,
                "title": NoticeDoc.model_validate(notice.body).title,
                "published_at": _when(notice.published_at, policy),
            },
            "consents": rows,
            "errors": dict(errors or {}),
        }
    return render(request, "guardian/child.html", ctx, status_code=status_code)


@router.get("/children/{account}")
def child(request: Request, account: str, user: GuardianUser) -> HTMLResponse:
    """One child: consents under the current notice, and links to the other pages."""
    return _child_page(request, user, account)


@router.post("/children/{account}/consents", dependencies=CSRF)
def post_consent(
    request: Request,
    account: str,
    user: GuardianUser,
    purpose: FormText = "",
    category: FormText = "",
    decision: FormText = "",
    notice_language: FormText = "",
    notice_version: FormText = "",
    key: FormText = "",
) -> Response:
    """Grant, refuse or withdraw one purpose × category (as POST /v1/consents)."""
    service = service_of(request)
    pair = f"{purpose}/{category}"
    try:
        with service.tx(write=True) as s:
            child, platform = _linked_or_403(s, user, account)
            guardian = _guardian(s, user)
            if guardian is None:
                return _forbidden(request)
            request_key = _request_key(user, key)
            if request_key is not None:
                done = ledger.by_request_key(s, platform.id, request_key)
                if done is not None:  # a double submit: the first one counted
                    if done.subject != child.external_id:
                        raise _Refused({pair: FieldError("guardian.consent.error.key")}, 409)
                    return _back(_child_url(child.external_id) + "#consents")
            status = DECISIONS.get(decision)
            if status is None:
                raise _Refused({pair: FieldError("guardian.consent.error.decision")})
            notice = _notice_version(s, platform.id, notice_language, notice_version)
            if notice is None:
                raise _Refused({pair: FieldError("guardian.consent.error.notice")}, 409)
            try:
                consent_store.record_consent(
                    s,
                    platform,
                    child,
                    purpose=purpose,
                    category=category,
                    status=status,
                    given_by="guardian",
                    guardian=guardian,
                    notice=notice,
                    request_key=request_key,
                )
            except consent_store.ConsentConflict as exc:
                which = {
                    "notice_version": "guardian.consent.error.notice",
                    "purpose": "guardian.consent.error.nothing"
                    if status == "withdrawn"
                    else "guardian.consent.error.pair",
                }.get(exc.field, "guardian.consent.error.pair")
                raise _Refused({pair: FieldError(which, str(exc))}, exc.status) from None
            target = _child_url(child.external_id) + "#consents"
    except _Refused as exc:
        return _child_page(request, user, account, exc.errors, exc.status)
    return _back(target)


def _notice_version(s: Session, platform_id: int, language: str, version: str) -> Notice | None:
    if language not in ("zh", "en") or not version.isdigit():
        return None
    return s.execute(
        select(Notice).where(
            Notice.platform_id == platform_id,
            Notice.language == language,
            Notice.audience == "child",
            Notice.version == int(version),
        )
    ).scalar_one_or_none()


# ---------------------------------------------------------------- data held and the download

COUNT_KEYS: Final = (
    "guardian_links",
    "relationships",
    "content_items",
    "content_flags",
    "consents",
    "decision_logs",
    "rights_requests",
    "rights_request_events",
    "ledger_entries",
    "age_assessment_events",
    "events",
)


@router.get("/children/{account}/data")
def data_page(request: Request, account: str, user: GuardianUser) -> HTMLResponse:
    """What is held about the child: the counts of the access export and the profile facts."""
    service = service_of(request)
    with service.tx() as s:
        child, platform = _linked_or_403(s, user, account)
        export = rights_store.export_account(s, platform, child, now_utc())
        ctx = {
            "child": _child_view(service, platform, child),
            "profile": {
                "birth_date": None if child.birth_date is None else child.birth_date.isoformat(),
                "sex": child.sex,
                "age_source": child.age_source,
                "has_identity_number": child.id_number_hash is not None,
                "settings": dict(child.settings or {}),
            },
            "counts": [(k, export["counts"].get(k, 0)) for k in COUNT_KEYS],
            "has_age_assessment": export["age_assessment"] is not None,
        }
    return render(request, "guardian/data.html", ctx)


def _filename(external_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", external_id)[:80] or "account"
    return f"qinglang-export-{safe}.json"


@router.get("/children/{account}/export")
def download(request: Request, account: str, user: GuardianUser) -> Response:
    """The access export as a file (as GET /v1/accounts/{account}/export, recorded likewise)."""
    service = service_of(request)
    at = now_utc()
    with service.tx(write=True) as s:
        child, platform = _linked_or_403(s, user, account)
        guardian = _guardian(s, user)
        if guardian is None:
            return _forbidden(request)
        try:
            rights_store.check_may_request(
                s, service.policy_for(platform), child, "guardian", guardian, at
            )
        except RightsError:
            return _forbidden(request)
        export = rights_store.export_account(s, platform, child, at)
        ledger.append(
            s,
            platform.id,
            "rights.export",
            child.external_id,
            {
                "requester": "guardian",
                "guardian": guardian.external_id,
                "format_version": export["format_version"],
                "counts": export["counts"],
            },
            at=at,
        )
        name = _filename(child.external_id)
    body = json.dumps(export, ensure_ascii=False, indent=2, sort_keys=False)
    return Response(
        body.encode("utf-8"),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


# ---------------------------------------------------------------- rights requests


def _requests_page(
    request: Request,
    user: CurrentUser,
    account: str,
    errors: Mapping[str, FieldError] | None = None,
    values: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    service = service_of(request)
    at = now_utc()
    with service.tx() as s:
        child, platform = _linked_or_403(s, user, account)
        policy = service.policy_for(platform)
        rows = [
            r
            for r in rights_store.list_requests(s, platform.id, account_id=child.id, limit=1000)
            if r.guardian_id == user.guardian_id
        ]
        ctx = {
            "child": _child_view(service, platform, child),
            "requests": [_request_view(r, policy, at) for r in rows],
            "kinds": REQUEST_KINDS,
            "errors": dict(errors or {}),
            "values": dict(values or {}),
            "key": _form_key(),
        }
    return render(request, "guardian/requests.html", ctx, status_code=status_code)


def _request_view(r: RightsRequest, policy: Policy, at: datetime) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "status": r.status,
        "due_at": _when(r.due_at, policy),
        "overdue": is_overdue(r.status, r.due_at, at),
        "created_at": _when(r.created_at, policy),
        "closed_at": _when(r.closed_at, policy),
        "reason": r.reason,
        "url": _child_url(r.subject, f"requests/{r.id}"),
    }


@router.get("/children/{account}/requests")
def requests_page(request: Request, account: str, user: GuardianUser) -> HTMLResponse:
    """The guardian's correction and deletion requests about the child, and the form."""
    return _requests_page(request, user, account)


def _rights_field(field: str) -> str:
    if field.startswith("details."):
        name = field.split(".")[1]
        return name if name in ("birth_date", "sex") else "details"
    return {"guardian": "kind", "account": "kind", "requester": "kind"}.get(field, field)


@router.post("/children/{account}/requests", dependencies=CSRF)
def post_request(
    request: Request,
    account: str,
    user: GuardianUser,
    kind: FormText = "",
    birth_date: FormText = "",
    sex: FormText = "",
    note: FormText = "",
    key: FormText = "",
) -> Response:
    """Ask for a correction or a deletion (as POST /v1/rights-requests, requester guardian)."""
    service = service_of(request)
    values = {"kind": kind, "birth_date": birth_date, "sex": sex, "note": note}
    at = now_utc()
    try:
        with service.tx(write=True) as s:
            child, platform = _linked_or_403(s, user, account)
            guardian = _guardian(s, user)
            if guardian is None:
                return _forbidden(request)
            request_key = _request_key(user, key)
            if request_key is not None and ledger.by_request_key(s, platform.id, request_key):
                return _back(_child_url(child.external_id, "requests"))
            if kind not in REQUEST_KINDS:
                raise _Refused({"kind": FieldError("guardian.requests.error.kind")})
            if len(note) > MAX_NOTE:
                raise _Refused({"note": FieldError("guardian.error.too_long")})
            details: dict[str, Any] | None = None
            if kind == "correction":
                details = {}
                if birth_date.strip():
                    details["birth_date"] = birth_date.strip()
                if sex.strip():
                    details["sex"] = sex.strip()
            try:
                rights_store.create_request(
                    s,
                    platform,
                    service.policy_for(platform),
                    child,
                    kind=kind,
                    requester="guardian",
                    guardian=guardian,
                    details=details,
                    note=note.strip() or None,
                    request_key=request_key,
                    at=at,
                )
            except RightsError as exc:
                error = FieldError("guardian.requests.error.refused", str(exc))
                raise _Refused({_rights_field(exc.field): error}, exc.status) from None
            target = _child_url(child.external_id, "requests")
    except _Refused as exc:
        return _requests_page(request, user, account, exc.errors, values, exc.status)
    return _back(target)


@router.get("/children/{account}/requests/{request_id}")
def request_detail(
    request: Request, account: str, request_id: int, user: GuardianUser
) -> HTMLResponse:
    """One request: its status, due date, history and, if refused, the written reason."""
    service = service_of(request)
    at = now_utc()
    with service.tx() as s:
        child, platform = _linked_or_403(s, user, account)
        r = rights_store.get_request(s, platform.id, request_id)
        if r is None or r.account_id != child.id or r.guardian_id != user.guardian_id:
            return _forbidden(request)
        policy = service.policy_for(platform)
        ctx = {
            "child": _child_view(service, platform, child),
            "req": _request_view(r, policy, at),
            "details": rights_store.details_of(r),
            "history": [
                {"status": e.status, "note": e.note, "at": _when(e.at, policy)}
                for e in rights_store.events_of(s, r.id)
            ],
        }
    return render(request, "guardian/request.html", ctx)


# ---------------------------------------------------------------- settings and contacts


def _setting_value(topic: str, value: RuleValue) -> str:
    """A setting as the form shows it (money in yuan, windows comma-separated)."""
    if value is None:
        return ""
    if topic in MONEY_TOPICS and isinstance(value, int | float):
        return str(Decimal(int(value)) / 100)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _parse_setting(topic: str, raw: str) -> RuleValue:
    """The typed value of a form field; ValueError with an i18n key when malformed."""
    text = raw.strip()
    if topic in MONEY_TOPICS:
        try:
            yuan = Decimal(text)
        except InvalidOperation:
            raise ValueError("guardian.settings.error.money") from None
        if not yuan.is_finite() or yuan < 0 or yuan > 10_000_000:
            raise ValueError("guardian.settings.error.money")
        if yuan != yuan.quantize(Decimal("0.01")):
            raise ValueError("guardian.settings.error.money")
        return int(yuan * 100)
    if topic == "playtime.night_windows":
        windows = [w.strip() for w in text.split(",") if w.strip()]
        if not windows or not all(_WINDOW.match(w) for w in windows):
            raise ValueError("guardian.settings.error.window")
        return windows
    if not text.isdigit() or int(text) > 24 * 60:
        raise ValueError("guardian.settings.error.minutes")
    return int(text)


def _contacts(s: Session, child: Account) -> list[str]:
    return list(
        s.execute(
            select(Account.external_id)
            .join(Relationship, Relationship.dst_account_id == Account.id)
            .where(
                Relationship.src_account_id == child.id,
                Relationship.kind == "approved_contact",
            )
            .order_by(Account.external_id)
        ).scalars()
    )


def _settings_page(
    request: Request,
    user: CurrentUser,
    account: str,
    errors: Mapping[str, FieldError] | None = None,
    values: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    service = service_of(request)
    with service.tx() as s:
        child, platform = _linked_or_403(s, user, account)
        profile = service.profile(platform, child)
        floors = profile.policy.table(profile.age)
        settings = dict(child.settings or {})
        fields = []
        for topic in SETTING_TOPICS:
            rule = floors.get(topic)
            if rule is None:
                continue
            effective = settings.get(topic, rule.value)
            fields.append(
                {
                    "topic": topic,
                    "name": topic.replace(".", "__"),
                    "inputmode": "decimal"
                    if topic in MONEY_TOPICS
                    else "numeric"
                    if topic == "playtime.daily_minutes"
                    else "text",
                    "value": (values or {}).get(topic, _setting_value(topic, settings.get(topic))),
                    "effective": _setting_value(topic, effective),
                    "default": _setting_value(topic, rule.value),
                    "rule": _rule_view(rule),
                }
            )
        ctx = {
            "child": _child_view(service, platform, child),
            "fields": fields,
            "contacts": _contacts(s, child),
            "errors": dict(errors or {}),
            "values": dict(values or {}),
        }
    return render(request, "guardian/settings.html", ctx, status_code=status_code)


@router.get("/children/{account}/settings")
def settings_page(request: Request, account: str, user: GuardianUser) -> HTMLResponse:
    """Time, night window and spending settings with each floor explained; approved contacts."""
    return _settings_page(request, user, account)


@router.post("/children/{account}/settings", dependencies=CSRF)
async def post_settings(request: Request, account: str, user: GuardianUser) -> Response:
    """Change settings within the legal floors (as PUT /v1/accounts/{id}/settings)."""
    form = await request.form()
    names = {t: t.replace(".", "__") for t in SETTING_TOPICS}
    raw = {t: str(form[n]) for t, n in names.items() if n in form}  # absent: unchanged
    return await run_in_threadpool(_save_settings, request, account, user, raw)


def _settings_error(exc: SettingsError, floors: Mapping[str, Rule], lang: str) -> FieldError:
    """A refused setting: a loosened floor is explained by its rule (message and citation)."""
    rule = floors.get(exc.setting)
    if rule is None or "loosen" not in str(exc):
        return FieldError("guardian.settings.error.invalid", str(exc))
    message = rule.message_zh if lang == "zh" else rule.message_en
    params = {"rule": message, "citation": rule.citation.short(), "id": rule.id}
    return FieldError("guardian.settings.error.floor", "", params)


def _save_settings(
    request: Request, account: str, user: CurrentUser, raw: Mapping[str, str]
) -> Response:
    service = service_of(request)
    lang = lang_of(request)
    try:
        with service.tx(write=True) as s:
            child, platform = _linked_or_403(s, user, account)
            profile = service.profile(platform, child)
            floors = profile.policy.table(profile.age)
            settings: dict[str, Any] = dict(child.settings or {})
            errors: dict[str, FieldError] = {}
            for topic, text in raw.items():
                if topic not in floors:
                    continue
                if not text.strip():
                    settings.pop(topic, None)  # back to the pack's value
                    continue
                try:
                    settings[topic] = _parse_setting(topic, text)
                except ValueError as exc:
                    errors[topic] = FieldError(str(exc))
            if errors:
                raise _Refused(errors)
            try:  # the profile's own check: a floor may be tightened, never loosened
                apply_settings(floors, settings)
            except SettingsError as exc:
                raise _Refused({exc.setting: _settings_error(exc, floors, lang)}) from None
            repo.upsert_account(s, platform.id, child.external_id, settings=settings)
            service.forget_account(child.id)
            service.profile(platform, child, bad_settings=422)  # checked before commit
            target = _child_url(child.external_id, "settings")
    except _Refused as exc:
        return _settings_page(request, user, account, exc.errors, raw, exc.status)
    return _back(target)


@router.post("/children/{account}/contacts", dependencies=CSRF)
def post_contact(
    request: Request,
    account: str,
    user: GuardianUser,
    contact: FormText = "",
    action: FormText = "approve",
) -> Response:
    """Approve contact from an account, or revoke an approval (as the approve_contact event)."""
    service = service_of(request)
    try:
        with service.tx(write=True) as s:
            child, platform = _linked_or_403(s, user, account)
            if action not in ("approve", "revoke"):
                raise _Refused({"contact": FieldError("guardian.contacts.error.action")})
            other = repo.get_account(s, platform.id, contact.strip())
            if other is None:
                raise _Refused({"contact": FieldError("guardian.contacts.error.unknown")})
            if other.id == child.id:
                raise _Refused({"contact": FieldError("guardian.contacts.error.self")})
            repo.set_relationship(
                s, platform.id, child.id, other.id, "approved_contact", action == "approve"
            )
            target = _child_url(child.external_id, "settings") + "#contacts"
    except _Refused as exc:
        return _settings_page(request, user, account, exc.errors, {"contact": contact}, exc.status)
    return _back(target)


# ---------------------------------------------------------------- protective actions


@router.get("/children/{account}/actions")
def actions_page(request: Request, account: str, user: GuardianUser) -> HTMLResponse:
    """Recent protective actions concerning the child: what happened and when, no evidence."""
    service = service_of(request)
    with service.tx() as s:
        child, platform = _linked_or_403(s, user, account)
        policy = service.policy_for(platform)
        rows = s.execute(
            select(GuardianNotification)
            .where(
                GuardianNotification.platform_id == platform.id,
                GuardianNotification.guardian_id == user.guardian_id,
                GuardianNotification.child == child.external_id,
            )
            .order_by(GuardianNotification.created_at.desc(), GuardianNotification.id.desc())
            .limit(MAX_NOTIFICATIONS)
        ).scalars()
        ctx = {
            "child": _child_view(service, platform, child),
            "actions": [
                {
                    "at": _when(n.created_at, policy),
                    "message_zh": n.message_zh,
                    "message_en": n.message_en,
                }
                for n in rows
            ],
        }
    return render(request, "guardian/actions.html", ctx)
