"""Console sign-in: passwords (argon2id), database sessions, CSRF, login throttling, roles.

A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure over https); the
database keeps only its SHA-256, the user, the session's CSRF token, when it was last used
(idle expiry) and its absolute end. Every tunable number is in :class:`ConsoleSettings`
(operational defaults, not legal facts), overridable by ``QINGLANG_CONSOLE_*`` variables.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qinglang.store import console as store
from qinglang.store import ledger

if TYPE_CHECKING:
    from qinglang.api.service import Service
    from qinglang.store.models import Account, ConsoleUser, Platform

SESSION_COOKIE: Final = "ql_session"
LOGIN_CSRF_COOKIE: Final = "ql_login_csrf"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
ROLES: Final = ("platform_admin", "reviewer", "compliance", "guardian")
STAFF_READ: Final = "staff.read"
"""Ledger kind of a staff read of a child's data (the same kind `qinglang consent show` writes)."""

#: Where each role lands after signing in.
HOME: Final = {
    "guardian": "/console/guardian",
    "reviewer": "/console/review",
    "compliance": "/console/compliance",
    "platform_admin": "/console/admin",
}

#: Console areas: (router module name, path, i18n key of the nav label, roles that see it).
AREAS: Final = (
    ("admin", "/console/admin", "common.nav.admin", ("platform_admin",)),
    ("reviewer", "/console/review", "common.nav.review", ("reviewer", "platform_admin")),
    (
        "compliance",
        "/console/compliance",
        "common.nav.compliance",
        ("compliance", "platform_admin"),
    ),
    ("guardian", "/console/guardian", "common.nav.guardian", ("guardian",)),
)


@dataclass(frozen=True)
class ConsoleSettings:
    """Operational settings of console sign-in (defaults here, env overrides, not legal facts)."""

    session_idle: timedelta = timedelta(minutes=30)
    """A session unused this long ends (QINGLANG_CONSOLE_SESSION_IDLE_MINUTES)."""
    session_absolute: timedelta = timedelta(hours=12)
    """A session ends this long after sign-in, used or not (QINGLANG_CONSOLE_SESSION_HOURS)."""
    lockout_after: int = 5
    """Consecutive wrong passwords that lock a user (QINGLANG_CONSOLE_LOCKOUT_AFTER)."""
    lockout_for: timedelta = timedelta(minutes=15)
    """How long a lock lasts unless unlocked (QINGLANG_CONSOLE_LOCKOUT_MINUTES)."""
    throttle_window: timedelta = timedelta(minutes=15)
    """Window in which failures are counted (QINGLANG_CONSOLE_THROTTLE_WINDOW_MINUTES)."""
    max_failures_per_username: int = 5
    """Failures for one username (known or not) in the window before refusing
    (QINGLANG_CONSOLE_MAX_FAILURES_PER_USERNAME)."""
    max_failures_per_address: int = 20
    """Failures from one client address in the window before refusing
    (QINGLANG_CONSOLE_MAX_FAILURES_PER_ADDRESS)."""
    touch_every: timedelta = timedelta(seconds=60)
    """A session's last use is written at most this often (QINGLANG_CONSOLE_TOUCH_SECONDS)."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ConsoleSettings:
        """Defaults, overridden by the QINGLANG_CONSOLE_* variables that are set."""
        env = dict(os.environ if environ is None else environ)
        names = {
            "session_idle": ("QINGLANG_CONSOLE_SESSION_IDLE_MINUTES", "minutes"),
            "session_absolute": ("QINGLANG_CONSOLE_SESSION_HOURS", "hours"),
            "lockout_after": ("QINGLANG_CONSOLE_LOCKOUT_AFTER", "int"),
            "lockout_for": ("QINGLANG_CONSOLE_LOCKOUT_MINUTES", "minutes"),
            "throttle_window": ("QINGLANG_CONSOLE_THROTTLE_WINDOW_MINUTES", "minutes"),
            "max_failures_per_username": ("QINGLANG_CONSOLE_MAX_FAILURES_PER_USERNAME", "int"),
            "max_failures_per_address": ("QINGLANG_CONSOLE_MAX_FAILURES_PER_ADDRESS", "int"),
            "touch_every": ("QINGLANG_CONSOLE_TOUCH_SECONDS", "seconds"),
        }
        values: dict[str, Any] = {}
        for f in fields(cls):
            var, kind = names[f.name]
            raw = env.get(var)
            if not raw:
                continue
            try:
                number = float(raw)
            except ValueError:
                raise ValueError(f"{var} must be a number, got {raw!r}") from None
            if number <= 0:
                raise ValueError(f"{var} must be positive, got {raw!r}")
            if kind == "int":
                values[f.name] = int(number)
            else:
                values[f.name] = timedelta(**{kind: number})
        return cls(**values)


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in console user of this request."""

    id: int
    platform_id: int
    platform_slug: str
    username: str
    role: str  # "platform_admin" | "reviewer" | "compliance" | "guardian"
    guardian_id: int | None  # guardians.id for role "guardian", else None
    csrf_token: str


class LoginRequired(Exception):
    """No valid session: the console answers 303 to the login page (``next`` = this path)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """The user may not do this (wrong role, bad CSRF token): the console answers a 403 page."""

    def __init__(self, reason: str = "forbidden") -> None:
        super().__init__(reason)
        self.reason = reason


def now_utc() -> datetime:
    """The current instant (UTC); tests may replace it."""
    return datetime.now(UTC)


def settings_of(request: Request) -> ConsoleSettings:
    """The console settings of this app (set by :func:`qinglang.web.mount`)."""
    settings = getattr(request.app.state, "console_settings", None)
    if settings is None:
        settings = ConsoleSettings.from_env()
        request.app.state.console_settings = settings
    assert isinstance(settings, ConsoleSettings)
    return settings


def service_of(request: Request) -> Service:
    """The app's service (database access)."""
    return request.app.state.service  # type: ignore[no-any-return]


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy: run uvicorn with
    --proxy-headers so that this is the forwarded address)."""
    return request.client.host if request.client is not None else "unknown"


def is_https(request: Request) -> bool:
    """Whether the request came over https (cookies are then Secure)."""
    return request.url.scheme == "https"


def safe_next(value: str | None) -> str | None:
    """A redirect target only if it is a path inside the console (no open redirects)."""
    if not value or not value.startswith("/console") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 32 for c in value):
        return None
    return value


def home_of(user: CurrentUser) -> str:
    """The landing page of the user's role."""
    return HOME.get(user.role, "/console/login")


# --- sessions --------------------------------------------------------------------------------

_UNRESOLVED: Final = object()


def _user_of(row: ConsoleUser, platform: Platform, csrf: str) -> CurrentUser:
    return CurrentUser(
        id=row.id,
        platform_id=row.platform_id,
        platform_slug=platform.slug,
        username=row.username,
        role=row.role,
        guardian_id=row.guardian_id,
        csrf_token=csrf,
    )


def current_user(request: Request) -> CurrentUser | None:
    """The signed-in user of this request, or None (an expired session is deleted)."""
    cached: object = getattr(request.state, "console_user", _UNRESOLVED)
    if cached is None or isinstance(cached, CurrentUser):
        return cached
    user = _resolve(request)
    request.state.console_user = user
    return user


def _resolve(request: Request) -> CurrentUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        return None
    settings = settings_of(request)
    service = service_of(request)
    now = now_utc()
    with service.tx() as s:
        found = store.session_by_token(s, token)
        if found is None:
            return None
        row, user_row, platform = found
        expired = (
            row.expires_at <= now
            or row.last_seen_at + settings.session_idle <= now
            or user_row.disabled_at is not None
        )
        touch = not expired and now - row.last_seen_at >= settings.touch_every
        session_id = row.id
        user = None if expired else _user_of(user_row, platform, row.csrf_token)
    if expired:
        with service.tx(write=True) as s:
            store.end_session_by_id(s, session_id)
        return None
    if touch:
        with service.tx(write=True) as s:
            store.touch_session(s, session_id, now)
    return user


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """Put the session token in an HttpOnly, SameSite=Lax cookie (Secure over https)."""
    settings = settings_of(request)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_absolute.total_seconds()),
        path="/console",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    """Remove the session cookie from the browser."""
    response.delete_cookie(
        SESSION_COOKIE, path="/console", httponly=True, samesite="lax", secure=is_https(request)
    )


def end_current_session(request: Request) -> None:
    """Delete this request's session from the database (logout)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with service_of(request).tx(write=True) as s:
            store.end_session(s, token)
    request.state.console_user = None


# --- login -----------------------------------------------------------------------------------

LoginOutcome = Literal["ok", "invalid", "throttled"]


@dataclass(frozen=True)
class LoginResult:
    """What a login attempt gave: ``ok`` with a session token, ``invalid`` or ``throttled``."""

    outcome: LoginOutcome
    user: CurrentUser | None = None
    token: str | None = None


def attempt_login(
    service: Service,
    settings: ConsoleSettings,
    username: str,
    password: str,
    address: str,
    now: datetime | None = None,
) -> LoginResult:
    """Check a username and password under the throttling rules; on success start a session.

    Unknown, disabled and locked users cost one argon2 verification like a known user, and
    every refusal is either ``invalid`` (wrong username or password) or ``throttled``, so the
    answer never tells whether a username exists.
    """
    now = now or now_utc()
    since = now - settings.throttle_window
    name = store.normalise_username(username)[:200]
    with service.tx(write=True) as s:
        if store.failures_for_address(s, address, since) >= settings.max_failures_per_address:
            store.burn_dummy_verification(password)
            return LoginResult("throttled")
        user = store.user_by_username(s, name) if name else None
        name_failures = store.failures_for_username(s, name, since)
        if user is None or user.disabled_at is not None:
            store.burn_dummy_verification(password)
            if name_failures >= settings.max_failures_per_username:
                return LoginResult("throttled")
            store.record_attempt(s, name, address, False, now)
            return LoginResult("invalid")
        locked = user.locked_until is not None and user.locked_until > now
        if locked or name_failures >= settings.max_failures_per_username:
            store.burn_dummy_verification(password)
            return LoginResult("throttled")
        if not store.verify_password(user.password_hash, password):
            user.failed_logins += 1
            if user.failed_logins >= settings.lockout_after:
                user.locked_until = now + settings.lockout_for
                user.failed_logins = 0
            store.record_attempt(s, name, address, False, now)
            return LoginResult("invalid")
        if store.needs_rehash(user.password_hash):
            user.password_hash = store.hash_password(password)
        user.last_login_at = now
        store.unlock_user(s, user)  # clears the failure count, the lock and recent failures
        store.record_attempt(s, name, address, True, now)
        store.purge_attempts(s, now - 4 * settings.throttle_window)
        store.purge_sessions(s, now, now - settings.session_idle)
        new = store.create_session(s, user, now, settings.session_absolute)
        platform = user_platform(s, user)
        return LoginResult("ok", _user_of(user, platform, new.csrf_token), new.token)


def user_platform(session: Session, user: ConsoleUser) -> Platform:
    """The platform a console user belongs to."""
    from qinglang.store.models import Platform

    platform = session.get(Platform, user.platform_id)
    assert platform is not None  # foreign key
    return platform


def login_csrf_token(request: Request) -> str:
    """The pre-session CSRF token of the login form (double-submit cookie), new if absent."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not token or len(token) > 128:
        token = getattr(request.state, "login_csrf", None) or secrets.token_urlsafe(32)
    request.state.login_csrf = token
    return token


def set_login_csrf_cookie(request: Request, response: Response, token: str) -> None:
    """Send the login form's CSRF cookie (HttpOnly, SameSite=Strict)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two tokens (a missing one never matches)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


# --- what routes use ---------------------------------------------------------------------------


def _return_path(request: Request) -> str:
    """Where to come back after signing in: this page, or for a form post the page it was on."""
    if request.method not in ("GET", "HEAD"):
        referer = urlsplit(request.headers.get("referer", ""))
        same_site = referer.netloc in ("", request.url.netloc)
        back = referer.path + (f"?{referer.query}" if referer.query else "")
        return (safe_next(back) if same_site else None) or "/console/"
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return path


def login_url(next_path: str) -> str:
    """The login page, returning to ``next_path`` afterwards."""
    return "/console/login?next=" + quote(next_path, safe="/")


def require_role(*roles: str) -> Callable[[Request], CurrentUser]:
    """A dependency: the signed-in user having one of these roles (303 to login; 403 page)."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"require_role: roles must be among {ROLES}, got {roles}")

    def dependency(request: Request) -> CurrentUser:
        user = current_user(request)
        if user is None:
            raise LoginRequired(_return_path(request))
        if user.role not in roles:
            raise Forbidden("role")
        return user

    return dependency


async def csrf_checked(request: Request) -> None:
    """A dependency of every state-changing route: the session's CSRF token must come back in
    the form field ``csrf_token`` or the ``X-CSRF-Token`` header (else a 403 page)."""
    user = await run_in_threadpool(current_user, request)
    given = request.headers.get(CSRF_HEADER)
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if user is None or not tokens_match(user.csrf_token, given):
        raise Forbidden("csrf")


def audit_staff_read(session: Session, user: CurrentUser, account: Account, what: str) -> None:
    """Record a staff read of a child's data in the platform's ledger (needs a write
    transaction; call it in the transaction that reads, so nothing is shown unrecorded)."""
    if account.platform_id != user.platform_id:
        raise Forbidden("platform")
    ledger.append(
        session,
        user.platform_id,
        STAFF_READ,
        account.external_id,
        {"by": f"console:{user.username}", "role": user.role, "read": what, "via": "console"},
    )
