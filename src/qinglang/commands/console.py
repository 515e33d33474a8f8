"""`qinglang console`: web console users (operator): add, list, unlock, disable.

The first platform administrator of a platform is created here; they add the other users in
the console. Passwords are read from standard input (``--password-stdin``), never from the
command line, and stored only as argon2id hashes.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from qinglang.commands.common import DEFAULT_DB, DbOption, fail, open_service, out, platform_by_slug

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from qinglang.api.service import Service
    from qinglang.store.models import ConsoleUser

app = typer.Typer(help="Web console users (operator).", no_args_is_help=True)
user_app = typer.Typer(help="Console users: add, list, unlock, disable.", no_args_is_help=True)
app.add_typer(user_app, name="user")

PlatformOption = Annotated[str, typer.Option("--platform", help="platform slug")]
UsernameOption = Annotated[str, typer.Option("--username", help="console username")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def _read_password(from_stdin: bool) -> str:
    if not from_stdin:
        fail("--password-stdin: give the password on standard input (never as an argument)")
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    if password.endswith("\r"):
        password = password[:-1]
    if not password:
        fail("--password-stdin: no password on standard input")
    return password


def _user(service: Service, username: str) -> tuple[int, str]:
    from qinglang.store import console as store

    with service.tx() as s:
        user = store.user_by_username(s, username)
        if user is None:
            fail(f"no console user {username!r}")
        return user.id, user.username


def _describe(user: ConsoleUser, platform: str, guardian: str | None) -> dict[str, Any]:
    from qinglang.store.models import utcnow

    now = utcnow()
    return {
        "username": user.username,
        "platform": platform,
        "role": user.role,
        "guardian": guardian,
        "locked": user.locked_until is not None and user.locked_until > now,
        "disabled": user.disabled_at is not None,
        "last_login_at": None if user.last_login_at is None else user.last_login_at.isoformat(),
        "created_at": user.created_at.isoformat(),
    }


@user_app.command("add")
def add(
    platform: PlatformOption,
    username: UsernameOption,
    role: Annotated[
        str,
        typer.Option("--role", help="platform_admin, reviewer, compliance or guardian"),
    ],
    guardian: Annotated[
        str | None,
        typer.Option("--guardian", help="for role guardian: the guardian's external id"),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Add a console user to a platform (the password is read from standard input)."""
    from qinglang.store import console as store

    password = _read_password(password_stdin)
    service = open_service(db)
    p = platform_by_slug(service, platform)
    try:
        with service.tx(write=True) as s:
            user = store.create_user(s, p, username, password, role, guardian_external_id=guardian)
            name, user_role = user.username, user.role
    except store.ConsoleUserError as exc:
        fail(f"--{exc.field}: {exc.message}")
    out.print(f"console user {name} ({user_role}) added to {p.slug}", markup=False)


@user_app.command("list")
def list_users(
    platform: PlatformOption, db: DbOption = DEFAULT_DB, as_json: JsonOption = False
) -> None:
    """List a platform's console users."""
    from qinglang.store import console as store

    service = open_service(db)
    p = platform_by_slug(service, platform)
    with service.tx() as s:
        users = store.list_users(s, p.id)
        guardians = store.guardian_external_ids(s, users)
        rows = [
            _describe(u, p.slug, None if u.guardian_id is None else guardians.get(u.guardian_id))
            for u in users
        ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        out.print(f"no console users on {p.slug}", markup=False)
        return
    t = Table(title=Text(f"console users of {p.slug}"))
    for col in ("username", "role", "guardian", "status", "last login"):
        t.add_column(col, overflow="fold")
    for r in rows:
        status = "disabled" if r["disabled"] else "locked" if r["locked"] else "active"
        t.add_row(
            Text(r["username"]),
            Text(r["role"]),
            Text(r["guardian"] or "-"),
            Text(status),
            Text(r["last_login_at"] or "-"),
        )
    out.print(t)


def _change_user(db: str, username: str, change: Callable[[Session, ConsoleUser], None]) -> str:
    """Apply `change` to the console user `username` in one write transaction; their name."""
    from qinglang.store.models import ConsoleUser

    service = open_service(db)
    user_id, name = _user(service, username)
    with service.tx(write=True) as s:
        user = s.get(ConsoleUser, user_id)
        assert user is not None
        change(s, user)
    return name


@user_app.command("unlock")
def unlock(username: UsernameOption, db: DbOption = DEFAULT_DB) -> None:
    """Lift a console user's lockout after failed sign-ins."""
    from qinglang.store import console as store

    name = _change_user(db, username, store.unlock_user)
    out.print(f"console user {name} unlocked", markup=False)


@user_app.command("disable")
def disable(username: UsernameOption, db: DbOption = DEFAULT_DB) -> None:
    """Disable a console user (kept for the record); their sessions end at once."""
    from qinglang.store import console as store

    name = _change_user(db, username, store.disable_user)
    out.print(f"console user {name} disabled", markup=False)
