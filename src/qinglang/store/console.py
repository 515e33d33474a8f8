"""Web console storage: users (argon2id password hashes), server-side sessions, login attempts.

Functions flush but never commit: call them inside :func:`qinglang.store.db.transaction` (or
``Service.tx(write=True)``). Session tokens and usernames in the attempts table are kept only as
SHA-256 digests. Policy (how many failures lock a user, for how long, session lifetimes) lives
in :mod:`qinglang.web.auth`; this module only stores and counts.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from qinglang.store import repo
from qinglang.store.models import (
    CONSOLE_ROLES,
    ConsoleSession,
    ConsoleUser,
    Guardian,
    LoginAttempt,
    Platform,
    utcnow,
)

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
USERNAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")

_hasher: PasswordHasher = PasswordHasher()  # argon2id, RFC 9106 low-memory parameters
_dummy: tuple[PasswordHasher, str] | None = None


class ConsoleUserError(ValueError):
    """A console user cannot be created or changed as asked; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Hash new passwords with these argon2 parameters (old hashes are upgraded at login)."""
    global _hasher, _dummy
    _hasher = hasher
    _dummy = None


def password_hasher() -> PasswordHasher:
    """The argon2id hasher in use."""
    return _hasher


def hash_password(password: str) -> str:
    """An argon2id hash of the password (random salt, current parameters)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash (argon2's own constant-time comparison)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def burn_dummy_verification(password: str) -> None:
    """Verify against a dummy hash: an unknown or locked user costs as much as a known one."""
    global _dummy
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash(secrets.token_urlsafe(16)))
    verify_password(_dummy[1], password)


def sha256_hex(value: str) -> str:
    """Hex SHA-256 of a UTF-8 string."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalise_username(username: str) -> str:
    """The stored form of a username: stripped and lower-cased."""
    return username.strip().lower()


def check_password(password: str) -> None:
    """Refuse a password that is too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConsoleUserError("password", f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ConsoleUserError("password", f"at most {MAX_PASSWORD_LENGTH} characters")


# --- users --------------------------------------------------------------------------------


def create_user(
    session: Session,
    platform: Platform,
    username: str,
    password: str,
    role: str,
    *,
    guardian_external_id: str | None = None,
) -> ConsoleUser:
    """Create a console user on the platform; a guardian user names an existing guardian."""
    name = normalise_username(username)
    if not 3 <= len(name) <= 64 or not set(name) <= USERNAME_CHARS:
        raise ConsoleUserError(
            "username", "3 to 64 characters: letters, digits and . _ - @ (stored lower-case)"
        )
    if role not in CONSOLE_ROLES:
        raise ConsoleUserError("role", f"one of {', '.join(CONSOLE_ROLES)}")
    check_password(password)
    guardian: Guardian | None = None
    if role == "guardian":
        external = (guardian_external_id or "").strip()
        if not external:
            raise ConsoleUserError("guardian", "a guardian user needs the guardian's external id")
        guardian = repo.get_guardian(session, platform.id, external)
        if guardian is None:
            raise ConsoleUserError("guardian", f"no guardian {external!r} on this platform")
    elif guardian_external_id:
        raise ConsoleUserError("guardian", "only a guardian user is tied to a guardian")
    if user_by_username(session, name) is not None:
        raise ConsoleUserError("username", "already taken")
    user = ConsoleUser(
        platform_id=platform.id,
        username=name,
        password_hash=hash_password(password),
        role=role,
        guardian_id=None if guardian is None else guardian.id,
    )
    session.add(user)
    session.flush()
    return user


def user_by_username(session: Session, username: str) -> ConsoleUser | None:
    """The user with this username (any platform), if any."""
    name = normalise_username(username)
    return session.scalars(select(ConsoleUser).where(ConsoleUser.username == name)).one_or_none()


def user_of_platform(session: Session, platform_id: int, user_id: int) -> ConsoleUser | None:
    """The platform's user with this id (None for another platform's user)."""
    user = session.get(ConsoleUser, user_id)
    return user if user is not None and user.platform_id == platform_id else None


def list_users(session: Session, platform_id: int) -> list[ConsoleUser]:
    """The platform's console users, by username."""
    return list(
        session.scalars(
            select(ConsoleUser)
            .where(ConsoleUser.platform_id == platform_id)
            .order_by(ConsoleUser.username)
        )
    )


def guardian_external_ids(session: Session, users: Sequence[ConsoleUser]) -> dict[int, str]:
    """guardians.id → external id, for the guardian users given."""
    ids = {u.guardian_id for u in users if u.guardian_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Guardian.id, Guardian.external_id).where(Guardian.id.in_(ids)))
    return {gid: ext for gid, ext in rows}


def set_password(session: Session, user: ConsoleUser, password: str) -> None:
    """Replace the user's password (and end their sessions)."""
    check_password(password)
    user.password_hash = hash_password(password)
    end_sessions(session, user.id)
    session.flush()


def unlock_user(session: Session, user: ConsoleUser) -> None:
    """Lift a lockout: clear the lock, the failure count and the username's recent failures."""
    user.locked_until = None
    user.failed_logins = 0
    session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.username_hash == sha256_hex(user.username),
            LoginAttempt.succeeded.is_(False),
        )
    )
    session.flush()


def disable_user(session: Session, user: ConsoleUser, at: datetime | None = None) -> None:
    """Disable a user (kept for the record) and end their sessions."""
    if user.disabled_at is None:
        user.disabled_at = at or utcnow()
    end_sessions(session, user.id)
    session.flush()


def enable_user(session: Session, user: ConsoleUser) -> None:
    """Enable a disabled user again."""
    user.disabled_at = None
    session.flush()


# --- login attempts -------------------------------------------------------------------------


def record_attempt(
    session: Session, username: str, address: str, succeeded: bool, at: datetime
) -> None:
    """Record one login attempt (the username only as a digest)."""
    session.add(
        LoginAttempt(
            username_hash=sha256_hex(normalise_username(username)),
            address=address[:64],
            succeeded=succeeded,
            at=at,
        )
    )
    session.flush()


def failures_for_username(session: Session, username: str, since: datetime) -> int:
    """Failed attempts for this username (known or not) since the instant."""
    digest = sha256_hex(normalise_username(username))
    return int(
        session.scalar(
            select(func.count()).where(
                LoginAttempt.username_hash == digest,
                LoginAttempt.succeeded.is_(False),
                LoginAttempt.at >= since,
            )
        )
        or 0
    )


def failures_for_address(session: Session, address: str, since: datetime) -> int:
    """Failed attempts from this client address since the instant."""
    return int(
        session.scalar(
            select(func.count()).where(
                LoginAttempt.address == address[:64],
                LoginAttempt.succeeded.is_(False),
                LoginAttempt.at >= since,
            )
        )
        or 0
    )


def purge_attempts(session: Session, before: datetime) -> int:
    """Delete attempts older than the instant; return how many."""
    result = session.execute(delete(LoginAttempt).where(LoginAttempt.at < before))
    return int(getattr(result, "rowcount", 0) or 0)


# --- sessions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    """A session just created: the cookie's token (never stored) and the CSRF token."""

    token: str
    csrf_token: str
    expires_at: datetime


def create_session(
    session: Session, user: ConsoleUser, now: datetime, lifetime: timedelta
) -> NewSession:
    """Start a session for the user; only the token's SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + lifetime
    session.add(
        ConsoleSession(
            user_id=user.id,
            token_hash=sha256_hex(token),
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
        )
    )
    session.flush()
    return NewSession(token, csrf, expires)


def session_by_token(
    session: Session, token: str
) -> tuple[ConsoleSession, ConsoleUser, Platform] | None:
    """The session with this cookie token, its user and platform, if any (expired ones too)."""
    row = session.execute(
        select(ConsoleSession, ConsoleUser, Platform)
        .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
        .join(Platform, Platform.id == ConsoleUser.platform_id)
        .where(ConsoleSession.token_hash == sha256_hex(token))
    ).one_or_none()
    if row is None:
        return None
    return row[0], row[1], row[2]


def touch_session(session: Session, session_id: int, now: datetime) -> None:
    """Mark the session as used now (idle expiry counts from here)."""
    row = session.get(ConsoleSession, session_id)
    if row is not None:
        row.last_seen_at = now
        session.flush()


def end_session(session: Session, token: str) -> bool:
    """Delete the session with this cookie token; return whether there was one."""
    result = session.execute(
        delete(ConsoleSession).where(ConsoleSession.token_hash == sha256_hex(token))
    )
    return bool(getattr(result, "rowcount", 0))


def end_session_by_id(session: Session, session_id: int) -> None:
    """Delete the session with this id."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))


def end_sessions(session: Session, user_id: int) -> None:
    """Delete every session of the user."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))


def purge_sessions(session: Session, now: datetime, idle_before: datetime) -> int:
    """Delete sessions past their absolute end or idle since before the instant."""
    result = session.execute(
        delete(ConsoleSession).where(
            (ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen_at < idle_before)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
