"""`qinglang review`: the alert queue from the command line — list, show (an audited read of the
evidence), assign, act (dismiss, restrict, suspend, remove content, notify guardians, report),
lift a restriction, and hold / release an alert's evidence (legal hold). The same store
functions as ``/v1/review``: every action is audited in the ledger as ``review.<action>``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import typer
from rich.table import Table

from qinglang.commands.common import DEFAULT_DB, DbOption, fail, open_service, out
from qinglang.commands.rights import write_private_text

if TYPE_CHECKING:
    from qinglang.api.service import Service
    from qinglang.store.models import Alert, Platform

app = typer.Typer(help="Review of risk alerts: queue, evidence, actions.", no_args_is_help=True)

Status = Literal["open", "in_review", "actioned", "dismissed"]
Priority = Literal["urgent", "high", "normal"]
Kind = Literal["dismiss", "restrict", "suspend", "remove_content", "notify_guardians", "report"]
PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="platform slug (default: the only platform)")
]
ReviewerOpt = Annotated[str, typer.Option("--reviewer", help="who is doing this, for the ledger")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
AlertArg = Annotated[str, typer.Argument(help="alert id")]


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _now() -> datetime:
    return datetime.now(UTC)


def _reviewer(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 128:
        fail("--reviewer: give a name of 1 to 128 characters")
    return name


def _open(db: str, slug: str | None) -> tuple[Service, Platform]:
    from qinglang.commands.events import _platform

    service = open_service(db)
    return service, _platform(service, slug)


def _alert(s: Any, platform: Platform, alert_id: str, lock: bool = False) -> Alert:
    from qinglang.store import review as store_review

    alert = store_review.find_alert(s, platform.id, alert_id, lock=lock)
    if alert is None:
        fail(f"no alert {alert_id!r} on platform {platform.slug}")
    return alert


@app.command("list")
def list_command(
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    status: Annotated[
        list[str] | None, typer.Option(help="only these statuses (open, in_review, ...)")
    ] = None,
    priority: Annotated[
        list[str] | None, typer.Option(help="only these priorities (urgent, high, normal)")
    ] = None,
    overdue: Annotated[
        bool | None, typer.Option("--overdue/--not-overdue", help="only (not) overdue alerts")
    ] = None,
    assignee: Annotated[
        str | None, typer.Option(help="only alerts assigned to this reviewer")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The alert queue, earliest due first."""
    from qinglang.store import review as store_review

    for name, given, allowed in (
        ("--status", status, get_args(Status)),
        ("--priority", priority, get_args(Priority)),
    ):
        for value in given or ():
            if value not in allowed:
                fail(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
    service, p = _open(db, platform)
    now = _now()
    flt = store_review.QueueFilter(status or (), priority or (), overdue, assignee)
    with service.tx() as s:
        rows, total = store_review.list_alerts(s, p.id, flt, now, limit=limit)
        items = [store_review.alert_summary(a, now) for a in rows]
    if as_json:
        print(json.dumps({"total": total, "items": items}, ensure_ascii=False))
        return
    if not items:
        _say(f"no alerts on {p.slug} match")
        return
    t = Table(title=f"alerts on {p.slug} ({total} match)")
    for col in ("id", "priority", "status", "due", "sender", "score", "minors", "assignee"):
        t.add_column(col, overflow="fold")
    for a in items:
        due = a["due_at"][:19] + (" OVERDUE" if a["overdue"] else "")
        t.add_row(
            a["id"],
            a["priority"],
            a["status"],
            due,
            a["sender"],
            f"{a['score']:.2f}",
            ", ".join(a["minors"]),
            a["assignee"] or "-",
        )
    out.print(t)


@app.command("show")
def show(
    alert_id: AlertArg,
    reviewer: ReviewerOpt,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An alert with its evidence (the read is recorded in the ledger as staff.read)."""
    from qinglang.store import review as store_review

    name = _reviewer(reviewer)
    service, p = _open(db, platform)
    now = _now()
    with service.tx(write=True) as s:
        alert = _alert(s, p, alert_id)
        store_review.record_view(s, alert, name, "evidence", now)
        detail = store_review.alert_detail(s, alert, now)
    if as_json:
        print(json.dumps(detail, ensure_ascii=False))
        return
    _say(
        f"{detail['id']}  {detail['priority']}  {detail['status']}  sender {detail['sender']}  "
        f"score {detail['score']}  due {detail['due_at']}"
        + ("  OVERDUE" if detail["overdue"] else "")
    )
    ev = detail["evidence"]
    _say("minors: " + ", ".join(f"{m['account']} ({m['age']})" for m in ev["minors"]))
    for sig in ev["signals"]:
        _say(f"  {sig['name']} {sig['weight']}: {sig['explanation_zh']} / {sig['explanation_en']}")
        if sig.get("excerpt"):
            _say(f"    「{sig['excerpt']}」")
    for e in ev["timeline"]:
        _say(f"  {e['at']}  {e['kind']:<12} {e['actor']} → {e.get('counterpart', '-')}")
    for a in detail["actions"]:
        _say(
            f"action {a['at']}  {a['kind']} by {a['actor']}"
            + (f": {a['reason']}" if a["reason"] else "")
        )
    _say(f"read by {name} recorded in the ledger (staff.read)")


@app.command("assign")
def assign(
    alert_id: AlertArg,
    to: Annotated[str, typer.Option("--to", help="the reviewer who takes the alert")],
    reviewer: ReviewerOpt,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
) -> None:
    """Assign an alert to a reviewer (audited)."""
    from qinglang.review.actions import ActionError
    from qinglang.store import review as store_review

    name, assignee = _reviewer(reviewer), _reviewer(to)
    service, p = _open(db, platform)
    try:
        with service.tx(write=True) as s:
            summary = store_review.assign(s, _alert(s, p, alert_id, True), name, assignee, _now())
    except ActionError as exc:
        fail(f"{exc.field}: {exc.message}")
    _say(f"{alert_id} assigned to {assignee}: {summary['status']}")


@app.command("act")
def act(
    alert_id: AlertArg,
    kind: Annotated[Kind, typer.Argument(help="the action")],
    reviewer: ReviewerOpt,
    reason: Annotated[str | None, typer.Option(help="why (required to dismiss)")] = None,
    until: Annotated[
        str | None, typer.Option(help="restrict/suspend: end, ISO 8601 with zone (default: lifted)")
    ] = None,
    item: Annotated[
        list[str] | None, typer.Option("--item", help="remove_content: a content item id")
    ] = None,
    authority: Annotated[
        str | None, typer.Option(help="report: police (公安机关) or cac (网信部门)")
    ] = None,
    reference: Annotated[str | None, typer.Option(help="report: case reference")] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="report: also write the document here (0600)")
    ] = None,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take an action on an alert (audited in the ledger as review.<kind>)."""
    from qinglang.commands.consents import policy_of
    from qinglang.review.actions import ActionError
    from qinglang.store import review as store_review

    name = _reviewer(reviewer)
    when: datetime | None = None
    if until is not None:
        try:
            when = datetime.fromisoformat(until)
        except ValueError:
            fail(f"--until: not an ISO instant: {until!r}")
        if when.tzinfo is None:
            fail("--until: give a time zone, e.g. 2026-12-31T00:00+08:00")
    if out_file is not None and (out_file.is_dir() or not out_file.parent.is_dir()):
        fail(f"--out: cannot write {out_file}")
    service, p = _open(db, platform)
    policy = policy_of(service, p)
    params = {"until": when, "items": item, "authority": authority, "reference": reference}
    content: str | None = None
    try:
        with service.tx(write=True) as s:
            alert = _alert(s, p, alert_id, True)
            result = store_review.act(s, p, policy, alert, kind, name, reason, params, _now())
            if "document" in result:
                doc = store_review.get_document(s, alert, result["document"]["id"])
                content = None if doc is None else doc.content
    except ActionError as exc:
        fail(f"{exc.field}: {exc.message}")
    if out_file is not None and content is not None:
        try:
            write_private_text(out_file, content)
        except OSError as exc:
            fail(f"cannot write {out_file}: {exc.strerror or exc}")
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    action = result["action"]
    _say(
        f"{kind} on {alert_id} by {name}: alert {result['alert']['status']}, "
        f"ledger entry {action['ledger_seq']} (review.{kind})"
    )
    if "restriction" in result:
        r = result["restriction"]
        _say(
            f"restriction {r['id']} on {r['account']} ({r['scope']}) until {r['until'] or 'lifted'}"
        )
    if "hold" in result:
        _say(f"evidence of {alert_id} under legal hold (review.hold): {result['hold']['reason']}")
    for n in result.get("notifications", []):
        _say(f"notification {n['id']} to guardian {n['guardian']} of {n['child']}")
    if result.get("without_guardian"):
        _say("no linked guardian: " + ", ".join(result["without_guardian"]))
    if "document" in result:
        d = result["document"]
        where = f", written to {out_file}" if out_file is not None else ""
        _say(f"document {d['id']} ({d['authority']}) sha256 {d['sha256']}{where}")
    if "platform_must" in result:
        _say(f"platform must: {result['platform_must']['en']} / {result['platform_must']['zh']}")


@app.command("lift")
def lift(
    restriction_id: Annotated[int, typer.Argument(help="restriction id")],
    reviewer: ReviewerOpt,
    reason: Annotated[str, typer.Option(help="why it is lifted")],
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
) -> None:
    """Lift a restriction (audited as review.lift); contact decisions see it at once."""
    from qinglang.review.actions import ActionError
    from qinglang.store import review as store_review
    from qinglang.store.models import Restriction

    name = _reviewer(reviewer)
    service, p = _open(db, platform)
    try:
        with service.tx(write=True) as s:
            r = s.get(Restriction, restriction_id)
            if r is None or r.platform_id != p.id:
                fail(f"no restriction {restriction_id} on platform {p.slug}")
            view = store_review.lift(s, r, name, reason, _now())
    except ActionError as exc:
        fail(f"{exc.field}: {exc.message}")
    _say(f"restriction {view['id']} on {view['account']} lifted by {name}")


def _hold_reason(reason: str) -> str:
    text = reason.strip()
    if not 3 <= len(text) <= 2000:
        fail("--reason: give a reason of 3 to 2000 characters")
    return text


def _change_hold(
    alert_id: str,
    reviewer: str,
    reason: str,
    db: str,
    platform: str | None,
    as_json: bool,
    release: bool,
) -> None:
    """Set or release an alert's legal hold and say what happened (audited by the store)."""
    from qinglang.review.actions import ActionError
    from qinglang.store import review as store_review

    name, text = _reviewer(reviewer), _hold_reason(reason)
    change = store_review.release_hold if release else store_review.set_hold
    service, p = _open(db, platform)
    try:
        with service.tx(write=True) as s:
            result = change(s, _alert(s, p, alert_id, True), name, text, _now())
    except ActionError as exc:
        fail(f"{exc.field}: {exc.message}")
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    seq = result["action"]["ledger_seq"]
    if release:
        _say(f"legal hold on {alert_id} released by {name}, ledger entry {seq} (review.release)")
    else:
        _say(f"evidence of {alert_id} under legal hold by {name}, ledger entry {seq} (review.hold)")


@app.command("hold")
def hold(
    alert_id: AlertArg,
    reviewer: ReviewerOpt,
    reason: Annotated[str, typer.Option(help="why the evidence must be kept")],
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put an alert's evidence under legal hold (audited as review.hold) until released."""
    _change_hold(alert_id, reviewer, reason, db, platform, as_json, release=False)


@app.command("release")
def release(
    alert_id: AlertArg,
    reviewer: ReviewerOpt,
    reason: Annotated[str, typer.Option(help="why the hold ends")],
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Release an alert's legal hold (audited as review.release); retention may then purge."""
    _change_hold(alert_id, reviewer, reason, db, platform, as_json, release=True)
