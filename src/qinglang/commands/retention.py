"""`qinglang retention`: purge personal information whose retention period has passed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from qinglang.commands.common import (
    DEFAULT_DB,
    DbOption,
    err,
    fail,
    open_service,
    out,
    platform_by_slug,
)

if TYPE_CHECKING:
    from qinglang.store.models import Platform
    from qinglang.store.retention import RetentionReport

app = typer.Typer(help="Retention of personal information.", no_args_is_help=True)


def _instant(text: str | None) -> datetime:
    """The --at instant (aware), or now."""
    if text is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at: not an ISO instant: {text!r}")
    if t.tzinfo is None or t.utcoffset() is None:
        fail("--at: give a time zone, e.g. 2026-10-09T20:30+08:00")
    return t


@app.command("run")
def run(
    db: DbOption = DEFAULT_DB,
    platform: Annotated[
        str | None, typer.Option(help="platform slug (default: every platform)")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="instant to judge retention at, ISO 8601 with zone")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would be purged; change nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Purge what is past its retention period (pack rules retention.*_days) and ledger it."""
    from sqlalchemy import select

    from qinglang.store.models import Platform
    from qinglang.store.retention import run_retention

    when = _instant(at)
    service = open_service(db)
    platforms: list[Platform]
    if platform is not None:
        platforms = [platform_by_slug(service, platform)]
    else:
        with service.tx() as s:
            platforms = list(s.execute(select(Platform).order_by(Platform.id)).scalars())
            for p in platforms:
                s.expunge(p)
    reports: list[tuple[Platform, RetentionReport]] = []
    progress = Progress(
        TextColumn("retention {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    )
    with progress:
        task = progress.add_task("platforms", total=len(platforms))
        for p in platforms:
            progress.update(task, description=p.slug)
            try:
                policy = service.policy_for(p)
            except Exception as exc:
                fail(f"platform {p.slug}: invalid policy: {' '.join(str(exc).split())}")
            try:
                with service.tx(write=not dry_run) as s:
                    report = run_retention(s, p, policy, when, dry_run)
            except Exception as exc:
                first = (str(exc).splitlines() or [""])[0]
                fail(f"platform {p.slug}: retention failed: {exc.__class__.__name__}: {first}")
            reports.append((p, report))
            progress.advance(task)
    if as_json:
        print(json.dumps([{"platform": p.slug, **r.to_dict()} for p, r in reports]))
        return
    _show(reports, when, dry_run)


def _show(reports: list[tuple[Platform, RetentionReport]], when: datetime, dry_run: bool) -> None:
    verb = "would purge" if dry_run else "purged"
    t = Table(title=f"retention at {when.isoformat()}" + (" (dry run)" if dry_run else ""))
    for col in ("platform", "category", "rule", "kept (days)", "older than", verb):
        t.add_column(col, overflow="fold")
    for p, r in reports:
        for c in r.categories:
            t.add_row(
                p.slug,
                c.category,
                c.rule_id,
                str(c.days),
                c.cutoff.isoformat(timespec="seconds"),
                str(c.count),
            )
    out.print(t)
    _show_held(reports)
    if not reports:
        out.print("no platforms")
    for p, r in reports:
        if dry_run:
            out.print(f"{p.slug}: {r.total} rows would be purged; nothing changed")
        else:
            out.print(f"{p.slug}: {r.total} rows purged; ledger entry {r.ledger_seq}")


def _show_held(reports: list[tuple[Platform, RetentionReport]]) -> None:
    """Overdue rows kept, by held reason and why (only when some were kept)."""
    from qinglang.store.retention import HELD_WHY

    rows = [
        (p.slug, c, reason, n)
        for p, r in reports
        for c in r.categories
        for reason, n in c.held.items()
        if n
    ]
    if not rows:
        return
    t = Table(title="kept although overdue (held)")
    for col in ("platform", "category", "held reason", "rows", "why"):
        t.add_column(col, overflow="fold")
    for slug, c, reason, n in rows:
        why = HELD_WHY.get(reason, reason)
        if reason == "actioned_alert":
            why += "".join(f" ({rule}: {days} days)" for rule, days in c.hold_rules.items())
        t.add_row(slug, c.category, reason, str(n), why)
    out.print(t)
