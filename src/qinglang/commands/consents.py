"""`qinglang consent`: a child's consents as staff see them; every look is itself ledgered.

Reading a child's consents is a staff read of the child's data: the command appends a
``staff.read`` ledger entry (who read, what was read, how many rows; no personal data) in the
same transaction as the read, so nothing is shown that was not recorded.

Also the helpers the ``notice`` and ``rights`` sub-apps share: the platform's policy and an
account by external id, each failing with one line and exit code 2.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from qinglang.commands.common import DEFAULT_DB, DbOption, fail, open_service, out, platform_by_slug

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from qinglang.api.routers.consent import ConsentOut
    from qinglang.api.service import Service
    from qinglang.policy import Policy, Rule
    from qinglang.store.models import Account, Platform

app = typer.Typer(help="Guardian consents (operator).", no_args_is_help=True)

PlatformOption = Annotated[str, typer.Option("--platform", help="platform slug")]
ChildOption = Annotated[str, typer.Option("--child", help="the child's account external id")]
ByOption = Annotated[
    str, typer.Option("--by", help="who is doing this (staff name or id), for the ledger")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]

STAFF_READ = "staff.read"
"""Ledger kind of a staff member's read of a child's data."""


def policy_of(service: Service, platform: Platform) -> Policy:
    """The platform's policy (pack and overlay), or a one-line failure."""
    try:
        return service.policy_for(platform)
    except Exception as exc:
        fail(f"platform {platform.slug}: invalid policy: {' '.join(str(exc).split())}")


def account_of(session: Session, platform: Platform, external_id: str) -> Account:
    """The platform's account with this external id, or a one-line failure."""
    from qinglang.store import repo

    account = repo.get_account(session, platform.id, external_id)
    if account is None:
        fail(f"no account {external_id!r} on platform {platform.slug!r}")
    return account


def staff_name(by: str) -> str:
    """The --by value, stripped; a blank one is a one-line failure."""
    name = by.strip()
    if not name:
        fail("--by: name who is doing this")
    if len(name) > 128:
        fail("--by: at most 128 characters")
    return name


def say(text: str) -> None:
    """Print plain text to stdout: no markup, no highlighting, long lines not wrapped."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def with_rule(message: str, rule: Rule | None) -> str:
    """A message followed by the pack rule's text in both languages, when a rule is behind it."""
    if rule is None:
        return message
    return f"{message} [{rule.id}: {rule.message_zh} / {rule.message_en}]"


@app.command("show")
def show(
    platform: PlatformOption,
    child: ChildOption,
    by: ByOption,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """A child's consents (valid or stale); the read is recorded in the ledger as staff.read."""
    from qinglang.api.routers.consent import _consent_out
    from qinglang.store import consents as store
    from qinglang.store import ledger

    name = staff_name(by)
    service = open_service(db)
    p = platform_by_slug(service, platform)
    rows: list[ConsentOut]
    with service.tx(write=True) as s:
        account = account_of(s, p, child)
        rows = [_consent_out(s, c, account.external_id) for c in store.consents_of(s, account.id)]
        entry = ledger.append(
            s,
            p.id,
            STAFF_READ,
            account.external_id,
            {"by": name, "read": "consents", "command": "consent show", "rows": len(rows)},
        )
        seq = entry.seq
    if as_json:
        print(json.dumps([c.model_dump(mode="json") for c in rows], ensure_ascii=False))
        return
    _table(rows, child, p.slug)
    say(f"read by {name} recorded as ledger entry {seq} ({STAFF_READ})")


def _table(rows: list[ConsentOut], child: str, slug: str) -> None:
    if not rows:
        say(f"no consents recorded for {child} on {slug}")
        return
    t = Table(title=Text(f"consents of {child} on {slug}"))
    columns = ("purpose", "category", "status", "valid", "audience", "notice", "given by")
    for col in (*columns, "decided at"):
        t.add_column(col, overflow="fold")
    for c in rows:
        if c.stale_since is not None:
            since = c.stale_since.isoformat(timespec="seconds")
            valid = Text(f"stale since {since}", style="yellow")
        elif c.valid:
            valid = Text("valid", style="green")
        else:
            valid = Text("no", style="dim")
        given = c.given_by if c.guardian is None else f"{c.given_by} ({c.guardian})"
        t.add_row(
            Text(c.purpose),
            Text(c.category),
            Text(c.status),
            valid,
            Text(c.audience or "-"),
            Text(f"v{c.notice_version}"),
            Text(given),
            Text(c.decided_at.isoformat(timespec="seconds")),
        )
    out.print(t)
