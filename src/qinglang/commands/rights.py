"""`qinglang rights`: data-rights requests as staff handle them, and the access export.

The same store functions as the API: a status change writes its history row and a
``rights.<status>`` ledger entry, completing a request carries it out in that transaction, and
a refusal needs a written reason (未成年人网络保护条例 art. 34). Exports are written with mode
0600 and the disclosure is recorded in the ledger (``rights.export``), as the API records it.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from qinglang.commands.common import DEFAULT_DB, DbOption, fail, open_service, out, platform_by_slug
from qinglang.commands.consents import (
    STAFF_READ,
    ByOption,
    ChildOption,
    JsonOption,
    PlatformOption,
    account_of,
    policy_of,
    say,
    staff_name,
    with_rule,
)

if TYPE_CHECKING:
    from qinglang.api.routers.rights import RightsRequestOut, RightsRequestSummary
    from qinglang.consent.rights import RightsError

app = typer.Typer(help="Data-rights requests and access exports (operator).", no_args_is_help=True)

Status = Literal["received", "in_progress", "completed", "refused"]
IdArgument = Annotated[int, typer.Argument(help="request id")]
OutOption = Annotated[Path, typer.Option("--out", help="where to write the export JSON (0600)")]


def _now() -> datetime:
    return datetime.now(UTC)


def _rights_failure(exc: RightsError) -> str:
    return with_rule(str(exc), exc.rule)


def _check_out_path(path: Path) -> None:
    if path.is_dir():
        fail(f"{path} is a directory")
    if not path.parent.is_dir():
        fail(f"no directory {path.parent} to write {path.name} in")


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to `path` readable by the owner only (0600), through a temporary file."""
    write_private_text(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def write_private_text(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (0600), through a temporary file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_or_fail(path: Path, data: dict[str, Any]) -> None:
    try:
        write_private(path, data)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


def _when(t: datetime | None) -> str:
    return "-" if t is None else t.isoformat(timespec="seconds")


@app.command("list")
def list_command(
    platform: PlatformOption,
    status: Annotated[Status | None, typer.Option(help="only requests in this status")] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="only open requests past their due date")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 100,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """The platform's requests by due date."""
    from qinglang.api.routers.rights import RightsRequestSummary, _summary
    from qinglang.store import rights as store

    at = _now()
    service = open_service(db)
    p = platform_by_slug(service, platform)
    with service.tx() as s:
        rows = store.list_requests(
            s, p.id, status=status, overdue_at=at if overdue else None, limit=limit
        )
        items = [RightsRequestSummary(**_summary(s, r, at)) for r in rows]
    if as_json:
        listed = {"requests": [i.model_dump(mode="json") for i in items], "count": len(items)}
        print(json.dumps(listed, ensure_ascii=False))
        return
    _list_table(items, p.slug, status, overdue)


def _list_table(
    items: list[RightsRequestSummary], slug: str, status: str | None, overdue: bool
) -> None:
    which = " ".join(x for x in ("overdue" if overdue else "", status or "") if x)
    title = f"{which + ' ' if which else ''}rights requests on {slug}"
    if not items:
        say(f"no {title}")
        return
    t = Table(title=Text(title))
    columns = ("id", "account", "kind", "status", "requester", "received", "due", "closed")
    for col in columns:
        t.add_column(col, overflow="fold")
    for r in items:
        requester = r.requester if r.guardian is None else f"{r.requester} ({r.guardian})"
        due = Text(_when(r.due_at))
        if r.overdue:
            due.append(" OVERDUE", style="bold red")
        t.add_row(
            str(r.id),
            Text(r.account),
            r.kind,
            r.status,
            Text(requester),
            _when(r.created_at),
            due,
            _when(r.closed_at),
        )
    out.print(t)
    say(f"{len(items)} request(s)")


@app.command("show")
def show(
    request_id: IdArgument,
    platform: PlatformOption,
    by: ByOption,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """One request with its particulars, reason, answer and status history; the read is
    recorded in the ledger as staff.read."""
    from qinglang.api.routers.rights import _out
    from qinglang.store import ledger
    from qinglang.store import rights as store

    name = staff_name(by)
    service = open_service(db)
    p = platform_by_slug(service, platform)
    with service.tx(write=True) as s:
        r = store.get_request(s, p.id, request_id)
        if r is None:
            fail(f"no rights request {request_id} on platform {p.slug!r}")
        shown = _out(s, r, _now())
        seq = ledger.append(
            s,
            p.id,
            STAFF_READ,
            r.subject,
            {"by": name, "read": "rights_request", "command": "rights show", "request": r.id},
        ).seq
    if as_json:
        print(json.dumps(shown.model_dump(mode="json"), ensure_ascii=False))
        return
    _print_request(shown)
    say(f"read by {name} recorded as ledger entry {seq} ({STAFF_READ})")


def _print_request(r: RightsRequestOut) -> None:
    requester = r.requester if r.guardian is None else f"{r.requester} ({r.guardian})"
    lines = [
        f"request {r.id}: {r.kind} about {r.account}, {r.status}"
        + (" (OVERDUE)" if r.overdue else ""),
        f"  requested by {requester}",
        f"  received {_when(r.created_at)}, due {_when(r.due_at)}, closed {_when(r.closed_at)}",
    ]
    if r.details is not None:
        lines.append(f"  details: {json.dumps(r.details, ensure_ascii=False)}")
    if r.reason is not None:
        lines.append(f"  reason: {r.reason}")
    if r.answer is not None:
        lines.append(f"  answer: {json.dumps(r.answer, ensure_ascii=False)}")
    say("\n".join(lines))
    t = Table(title="history")
    for col in ("at", "status", "actor", "note"):
        t.add_column(col, overflow="fold")
    for e in r.history:
        t.add_row(_when(e.at), e.status, Text(e.actor), Text(e.note or ""))
    out.print(t)


@app.command("transition")
def transition(
    request_id: IdArgument,
    platform: PlatformOption,
    status: Annotated[Status, typer.Option(help="in_progress, completed (executes) or refused")],
    by: ByOption,
    note: Annotated[str | None, typer.Option(help="a note for the history")] = None,
    reason: Annotated[
        str | None, typer.Option(help="written reason for the requester; required to refuse")
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="completing an access request: write its export here (0600)"),
    ] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Move a request on; `completed` carries it out (an access export goes to --out)."""
    from qinglang.api.routers.rights import _out
    from qinglang.consent.rights import RightsError
    from qinglang.store import rights as store

    name = staff_name(by)
    if note is not None and len(note) > 2000:
        fail("--note: at most 2000 characters")
    if out_file is not None:
        _check_out_path(out_file)
    at = _now()
    service = open_service(db)
    p = platform_by_slug(service, platform)
    policy = policy_of(service, p)
    written = False
    try:
        with service.tx(write=True) as s:
            r = store.get_request(s, p.id, request_id)
            if r is None:
                fail(f"no rights request {request_id} on platform {p.slug!r}")
            completes_access = status == "completed" and r.kind == "access"
            if completes_access and out_file is None:
                fail(
                    f"completing access request {request_id} produces its export and qinglang "
                    "keeps no copy: give --out FILE"
                )
            if out_file is not None and not completes_access:
                fail("--out applies only when completing an access request")
            try:
                done = store.transition(
                    s, p, policy, r, status=status, actor=name, note=note, reason=reason, at=at
                )
            except RightsError as exc:
                fail(_rights_failure(exc))
            shown = _out(s, done.request, at)
            if out_file is not None and done.export is not None:
                _write_or_fail(out_file, done.export)
                written = True
    except BaseException:
        if written and out_file is not None:
            out_file.unlink(missing_ok=True)
        raise
    if as_json:
        print(json.dumps(shown.model_dump(mode="json"), ensure_ascii=False))
        return
    say(f"request {shown.id} ({shown.kind} about {shown.account}) is now {shown.status}")
    if shown.answer is not None:
        say(f"  answer: {json.dumps(shown.answer, ensure_ascii=False)}")
    if written:
        say(f"  export written to {out_file} (mode 0600)")


@app.command("export")
def export(
    platform: PlatformOption,
    child: ChildOption,
    by: ByOption,
    out_file: OutOption,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Write the access export of a child's data (0600); the disclosure goes in the ledger."""
    from qinglang.store import ledger
    from qinglang.store import rights as store

    name = staff_name(by)
    _check_out_path(out_file)
    at = _now()
    service = open_service(db)
    p = platform_by_slug(service, platform)
    written = False
    try:
        with service.tx(write=True) as s:
            account = account_of(s, p, child)
            data = store.export_account(s, p, account, at)
            entry = ledger.append(
                s,
                p.id,
                "rights.export",
                account.external_id,
                {
                    "requester": "staff",
                    "by": name,
                    "guardian": None,
                    "format_version": data["format_version"],
                    "counts": data["counts"],
                },
                at=at,
            )
            seq = entry.seq
            _write_or_fail(out_file, data)
            written = True
    except BaseException:
        if written:
            out_file.unlink(missing_ok=True)
        raise
    counts = ", ".join(f"{k} {v}" for k, v in data["counts"].items() if v)
    say(
        f"wrote {out_file} (mode 0600): access export of {child} on {p.slug} "
        f"({counts or 'nothing held'}); ledger entry {seq} (rights.export)"
    )
