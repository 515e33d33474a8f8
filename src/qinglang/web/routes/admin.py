"""Platform administration: API keys, the policy pack and overlay in force, console users.

Every page is scoped to the signed-in administrator's platform: another platform's key prefix
or user id answers as if it did not exist. Writes are one transaction each and go through the
same store functions as the CLI (``repo.issue_api_key``, ``store.console.create_user`` …).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from qinglang.policy import PolicyError, load_policy
from qinglang.policy.loader import load_pack
from qinglang.store import console as store
from qinglang.store import repo
from qinglang.store.models import CONSOLE_ROLES, ApiKey, ConsoleUser, Platform, utcnow
from qinglang.web.auth import CurrentUser, csrf_checked, require_role, service_of
from qinglang.web.i18n import lang_of, translate
from qinglang.web.render import render

router = APIRouter(prefix="/console/admin", include_in_schema=False)

Admin = Annotated[CurrentUser, Depends(require_role("platform_admin"))]
CSRF: Final = [Depends(csrf_checked)]
NOTICES: Final = {
    "revoked": "admin.keys.revoked",
    "created": "admin.users.created",
    "unlocked": "admin.users.unlocked",
    "disabled": "admin.users.disabled",
    "enabled": "admin.users.enabled",
}


def _notice(request: Request, done: str | None) -> str | None:
    key = NOTICES.get(done or "")
    return None if key is None else translate(key, lang_of(request))


def _platform(session: Any, user: CurrentUser) -> Platform:
    platform = session.get(Platform, user.platform_id)
    if platform is None:
        raise HTTPException(404)
    return platform  # type: ignore[no-any-return]


@dataclass(frozen=True)
class KeyRow:
    """An API key as the keys page shows it (never the key itself)."""

    prefix: str
    label: str
    created_at: Any
    revoked_at: Any


@dataclass(frozen=True)
class UserRow:
    """A console user as the users page shows it."""

    id: int
    username: str
    role: str
    guardian: str | None
    locked: bool
    disabled: bool
    last_login_at: Any
    created_at: Any


@router.get("")
def overview(request: Request, user: Admin) -> Response:
    """The administration start page: the platform and links to the three sections."""
    with service_of(request).tx() as s:
        platform = _platform(s, user)
        keys = repo.list_api_keys(s, platform.id)
        users = store.list_users(s, platform.id)
        context = {
            "platform": {"slug": platform.slug, "name": platform.name},
            "active_keys": sum(1 for k in keys if k.revoked_at is None),
            "user_count": sum(1 for u in users if u.disabled_at is None),
            "jurisdiction": platform.jurisdiction,
            "has_overlay": bool(platform.policy_overlay),
        }
    return render(request, "admin/index.html", context)


# --- API keys ------------------------------------------------------------------------------


def _key_rows(keys: list[ApiKey]) -> list[KeyRow]:
    return [KeyRow(k.prefix, k.label, k.created_at, k.revoked_at) for k in reversed(keys)]


def _keys_page(
    request: Request,
    user: CurrentUser,
    *,
    new_key: str | None = None,
    error: str | None = None,
    label: str = "",
    notice: str | None = None,
    status: int = 200,
) -> Response:
    with service_of(request).tx() as s:
        rows = _key_rows(repo.list_api_keys(s, user.platform_id))
    context = {"keys": rows, "new_key": new_key, "error": error, "label": label, "notice": notice}
    return render(request, "admin/keys.html", context, status_code=status)


@router.get("/keys")
def keys(request: Request, user: Admin, done: str | None = None) -> Response:
    """The platform's API keys: prefix, label, created, revoked."""
    return _keys_page(request, user, notice=_notice(request, done))


@router.post("/keys", dependencies=CSRF)
def create_key(
    request: Request, user: Admin, label: Annotated[str, Form(max_length=1000)] = ""
) -> Response:
    """Issue a new key and show it once (it is never stored, only its SHA-256)."""
    label = label.strip()
    if len(label) > 200:
        error = translate("admin.keys.label_too_long", lang_of(request))
        return _keys_page(request, user, error=error, label=label[:200], status=422)
    service = service_of(request)
    with service.tx(write=True) as s:
        plaintext = repo.issue_api_key(s, _platform(s, user), label=label)
    service.forget_api_keys()
    return _keys_page(request, user, new_key=plaintext)


@router.post("/keys/{prefix}/revoke", dependencies=CSRF)
def revoke_key(request: Request, user: Admin, prefix: str) -> Response:
    """Revoke the platform's key with this prefix (another platform's prefix: 404)."""
    service = service_of(request)
    with service.tx(write=True) as s:
        revoked = repo.revoke_api_key(s, user.platform_id, prefix[:12])
    if not revoked:
        raise HTTPException(404)
    service.forget_api_keys()
    return RedirectResponse("/console/admin/keys?done=revoked", status_code=303)


# --- policy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangedRule:
    """A rule the platform's overlay changes: pack value → value in force, and why."""

    id: str
    topic: str
    before: str
    after: str
    unit: str | None
    binding: bool
    citation: str
    message: str
    note: str


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "[]"
    return str(value)


@router.get("/policy")
def policy(request: Request, user: Admin) -> Response:
    """The pack and overlay in force (read-only) and the rules the overlay changes."""
    lang = lang_of(request)
    with service_of(request).tx() as s:
        platform = _platform(s, user)
        jurisdiction, overlay = platform.jurisdiction, platform.policy_overlay
    context: dict[str, Any] = {"jurisdiction": jurisdiction, "overlay": overlay, "error": None}
    try:
        pack = load_pack(jurisdiction)
        context["pack"] = {
            "id": pack.meta.id,
            "version": pack.meta.version,
            "title": pack.meta.title_zh if lang == "zh" else pack.meta.title_en,
            "timezone": pack.meta.timezone,
            "rules": len(pack.rules),
        }
        in_force = load_policy(jurisdiction, overlay)
    except PolicyError as exc:
        context["error"] = str(exc)
        context.setdefault("pack", None)
        context["changes"] = []
        return render(request, "admin/policy.html", context)
    changes = []
    for rule_id, note in sorted(in_force.overrides.items()):
        base, now = pack.rules[rule_id], in_force.rules[rule_id]
        changes.append(
            ChangedRule(
                id=rule_id,
                topic=now.topic,
                before=_value(base.value),
                after=_value(now.value),
                unit=now.unit,
                binding=now.binding,
                citation=now.citation.short(),
                message=now.message_zh if lang == "zh" else now.message_en,
                note=note,
            )
        )
    context["changes"] = changes
    context["version"] = in_force.meta.version
    return render(request, "admin/policy.html", context)


# --- console users ----------------------------------------------------------------------------


def _user_rows(session: Any, platform_id: int) -> list[UserRow]:
    users = store.list_users(session, platform_id)
    guardians = store.guardian_external_ids(session, users)
    now = utcnow()
    return [
        UserRow(
            id=u.id,
            username=u.username,
            role=u.role,
            guardian=None if u.guardian_id is None else guardians.get(u.guardian_id),
            locked=u.locked_until is not None and u.locked_until > now,
            disabled=u.disabled_at is not None,
            last_login_at=u.last_login_at,
            created_at=u.created_at,
        )
        for u in users
    ]


def _users_page(
    request: Request,
    user: CurrentUser,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    with service_of(request).tx() as s:
        rows = _user_rows(s, user.platform_id)
    context = {
        "users": rows,
        "roles": CONSOLE_ROLES,
        "form": form or {"username": "", "role": "", "guardian": ""},
        "errors": errors or {},
        "notice": notice,
    }
    return render(request, "admin/users.html", context, status_code=status)


@router.get("/users")
def users(request: Request, user: Admin, done: str | None = None) -> Response:
    """The platform's console users, and the form to add one."""
    return _users_page(request, user, notice=_notice(request, done))


@router.post("/users", dependencies=CSRF)
def create_user(
    request: Request,
    user: Admin,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
    role: Annotated[str, Form(max_length=64)] = "",
    guardian: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Add a console user to this platform (a guardian user names the guardian's external id)."""
    form = {"username": username.strip(), "role": role, "guardian": guardian.strip()}
    lang = lang_of(request)
    try:
        with service_of(request).tx(write=True) as s:
            store.create_user(
                s,
                _platform(s, user),
                username,
                password,
                role,
                guardian_external_id=guardian.strip() or None,
            )
    except store.ConsoleUserError as exc:
        errors = {exc.field: _user_error(exc, lang)}
        return _users_page(request, user, form=form, errors=errors, status=422)
    return RedirectResponse("/console/admin/users?done=created", status_code=303)


def _user_error(exc: store.ConsoleUserError, lang: str) -> str:
    key = {
        "username": "admin.users.error.username",
        "password": "admin.users.error.password",
        "role": "admin.users.error.role",
        "guardian": "admin.users.error.guardian",
    }[exc.field]
    if exc.field == "username" and exc.message == "already taken":
        key = "admin.users.error.taken"
    elif exc.field == "guardian" and exc.message.startswith("no guardian"):
        key = "admin.users.error.no_guardian"
    elif exc.field == "guardian" and exc.message.startswith("only"):
        key = "admin.users.error.not_guardian"
    return translate(key, lang, min=store.MIN_PASSWORD_LENGTH)


def _change_user(request: Request, user: CurrentUser, user_id: int, change: str) -> Response:
    if change == "disabled" and user_id == user.id:
        error = translate("admin.users.error.self", lang_of(request))
        return _users_page(request, user, errors={"list": error}, status=422)
    with service_of(request).tx(write=True) as s:
        target: ConsoleUser | None = store.user_of_platform(s, user.platform_id, user_id)
        if target is None:
            raise HTTPException(404)
        if change == "unlocked":
            store.unlock_user(s, target)
        elif change == "disabled":
            store.disable_user(s, target)
        else:
            store.enable_user(s, target)
    return RedirectResponse(f"/console/admin/users?done={change}", status_code=303)


@router.post("/users/{user_id}/unlock", dependencies=CSRF)
def unlock_user(request: Request, user: Admin, user_id: int) -> Response:
    """Lift a user's lockout after failed sign-ins."""
    return _change_user(request, user, user_id, "unlocked")


@router.post("/users/{user_id}/disable", dependencies=CSRF)
def disable_user(request: Request, user: Admin, user_id: int) -> Response:
    """Disable a user (their sessions end at once); not oneself."""
    return _change_user(request, user, user_id, "disabled")


@router.post("/users/{user_id}/enable", dependencies=CSRF)
def enable_user(request: Request, user: Admin, user_id: int) -> Response:
    """Enable a disabled user again."""
    return _change_user(request, user, user_id, "enabled")
