"""`qinglang demo`: simulate a week of a short-video platform with the case in it, then serve the
console over the result (see `qinglang.demo`).

With ``--no-serve`` the command prints the summary and exits 0; its last line on standard output
is one JSON object of the summary figures (the compliance audit's under ``audit``).

The audit bundle and the demo's signing key go into a directory next to the database
(``qinglang-demo-audit/`` for the default ``qinglang-demo.db``, replaced with it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from qinglang.commands.common import err, fail, out
from qinglang.demo import Reporter, audit_dir_for

if TYPE_CHECKING:
    from qinglang.demo import DemoResult

DEFAULT_DB = Path("qinglang-demo.db")

ROLE_PAGES = {
    "guardian": ("/console/guardian", "监护人 / guardian"),
    "reviewer": ("/console/review", "审核员 / reviewer"),
    "compliance": ("/console/compliance", "合规 / compliance"),
    "platform_admin": ("/console/admin", "平台管理员 / platform admin"),
}

_LABELS: tuple[tuple[str, str, str], ...] = (
    ("accounts", "账号", "accounts"),
    ("minors", "未成年人（实际）", "minors (true)"),
    ("minors_age_unknown", "未提供年龄的未成年人", "minors whose age the platform was not told"),
    ("age_scored", "年龄推断评估的账号", "accounts scored by age inference"),
    ("unknown_age_minors_found", "推断识别出的未成年人", "of those minors, found by inference"),
    ("suspected_adults", "被误判为未成年人的成年人", "adults wrongly suspected"),
    ("guardian_links", "已核验的监护关系", "verified guardian links"),
    ("consents_granted", "监护人同意", "guardian consents granted"),
    ("consents_refused", "监护人拒绝", "guardian consents refused"),
    ("decisions", "决策（关注、私信、曝光）", "decisions (follow, DM, exposure)"),
    ("dms_delivered", "已送达私信", "DMs delivered"),
    ("dms_denied", "被拒绝的私信", "DMs denied"),
    ("dms_blocked_restricted", "因限制被拦截的私信", "DMs blocked by a restriction"),
    ("messages_scanned", "扫描的消息", "messages scanned for personal information"),
    ("messages_with_pii", "含个人信息的消息", "messages with personal information"),
    ("pii_findings", "个人信息发现", "PII findings"),
    ("events", "事件", "events"),
    ("alerts", "风险告警", "risk alerts"),
    ("automatic_restrictions", "自动限制", "automatic restrictions"),
)


class _RichReporter(Reporter):
    """Shows each phase of the demo as a progress bar on standard error."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def phase(self, name: str, total: int) -> None:
        if self.task is not None:
            t = self.progress.tasks[-1]
            self.progress.update(self.task, completed=t.total)
        self.task = self.progress.add_task(name, total=max(total, 1))

    def advance(self, steps: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, steps)


def _fresh(path: Path) -> None:
    """Remove the default demo database and its companions (key file, journals, audit bundle)."""
    for suffix in ("", ".key", "-wal", "-shm", "-journal"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            p.unlink()
    audit = audit_dir_for(path)
    if audit.is_dir() and not audit.is_symlink():
        shutil.rmtree(audit)


def _print_audit(audit: dict[str, Any], temporary: bool) -> None:
    """The compliance audit's counts, failed requirements and bundle."""

    def say(text: str) -> None:
        out.print(text, highlight=False, soft_wrap=True)

    out.print()
    say(
        f"[bold]合规审计 / compliance audit[/bold] {audit['period']} "
        f"(截至 / as of {audit['as_of']}):"
    )
    say(
        f"  要求 / requirements {audit['requirements']}: 符合 / passed {audit['passed']}, "
        f"不符合 / failed {audit['failed']}, 无证据 / not evidenced {audit['not_evidenced']}"
    )
    failed = audit["failed_requirements"]
    say("  不符合的要求 / failed requirements: " + (", ".join(failed) if failed else "—"))
    ok = (
        "签名已核验 / signature verified" if audit["bundle_verified"] else "核验失败 / NOT verified"
    )
    say(f"  审计包 / bundle: {escape(audit['bundle'])} ({ok})")
    if temporary:
        say(
            "  （临时目录，退出时删除；用 --db 保留）/ (temporary: removed on exit; "
            "give --db to keep it)"
        )


def _print_summary(result: DemoResult) -> None:
    s = result.summary
    t = Table(title="qinglang demo — 一周模拟 / a simulated week", show_lines=False)
    t.add_column("指标", overflow="fold")
    t.add_column("figure", overflow="fold")
    t.add_column("value", justify="right")
    for key, zh, en in _LABELS:
        t.add_row(zh, en, f"{s[key]:,}")
    out.print(t)
    out.print(
        "决策结果 / decisions by outcome: "
        + ", ".join(f"{k} {v:,}" for k, v in s["decisions_by_outcome"].items()),
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        "个人信息类别 / PII by category: "
        + ", ".join(f"{k} {v:,}" for k, v in s["pii_by_category"].items()),
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        "审核 / reviewer actions: "
        + ", ".join(f"{k} {v:,}" for k, v in s["reviewer_actions"].items()),
        highlight=False,
        soft_wrap=True,
    )
    out.print()
    out.print(f"[bold]案例 / the case[/bold] — {s['offender']}:", highlight=False, soft_wrap=True)
    n = s["offender_alert_at_contact"]
    if n is None:
        out.print("  [red]未告警 / no alert was raised[/red]")
    else:
        out.print(
            f"  告警于第 {n} 名儿童接触 / alerted at child contact {n} "
            f"({s['offender_alert_level']}, {s['offender_alert_at']})",
            highlight=False,
            soft_wrap=True,
        )
    out.print(
        f"  私信触达的儿童 / children his messages reached: {s['offender_children_reached']} "
        f"(告警前 / before the alert: {s['offender_children_reached_before_alert']}) of "
        f"{s['offender_child_contacts']} he tried",
        highlight=False,
        soft_wrap=True,
    )
    b = s["offender_blocked_at_contact"]
    if b is not None:
        out.print(
            f"  受限后首次被拦截：第 {b} 名儿童 / first DM blocked by the restriction: "
            f"child contact {b}",
            highlight=False,
            soft_wrap=True,
        )
    for c in s["offender_contacts"]:
        known = "年龄已知 / age known" if c["age_known"] else "年龄未告知 / age not told"
        out.print(
            f"    #{c['contact']} {c['at']}  {c['child']} ({c['age']}, {known}): "
            f"first DM {c['first_dm']}",
            highlight=False,
            soft_wrap=True,
        )
    secs = s["seconds"]
    out.print(
        "用时 / seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in secs.items()),
        highlight=False,
        soft_wrap=True,
    )


def _print_logins(result: DemoResult, url: str) -> None:
    out.print()
    out.print(
        f"控制台 / console: {url}/console/login   API docs: {url}/docs",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        "演示账号（密码仅显示一次）/ demo logins (passwords shown once):",
        highlight=False,
        soft_wrap=True,
    )
    for role, (username, password) in result.logins.items():
        page, label = ROLE_PAGES[role]
        extra = ""
        if role == "guardian":
            extra = f"  (guardian {result.summary['guardian_login_for']})"
        out.print(
            f"  {label:28} {username:16} {password}  {url}{page}{extra}",
            highlight=False,
            soft_wrap=True,
        )
    out.print(f"API key (platform demo): {result.api_key}", highlight=False, soft_wrap=True)


def demo(
    seed: Annotated[int, typer.Option(help="random seed: the same seed, the same week")] = 1,
    accounts: Annotated[
        int, typer.Option(min=100, max=200_000, help="accounts on the simulated platform")
    ] = 3000,
    no_serve: Annotated[
        bool,
        typer.Option(
            "--no-serve", help="print the summary and exit (last line: the figures as JSON)"
        ),
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file to create (must not exist); default ./qinglang-demo.db, "
            "replaced, or a temporary file with --no-serve"
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="port of the console (127.0.0.1)")] = 8000,
) -> None:
    """Simulate a week of a short-video platform with the case in it; serve the console on it."""
    from qinglang.demo import run_demo

    temp: Path | None = None
    if db is None:
        if no_serve:
            import tempfile

            temp = Path(tempfile.mkdtemp(prefix="qinglang-demo-"))
            path = temp / "demo.db"
        else:
            path = DEFAULT_DB
            _fresh(path)
    else:
        path = db
        if path.exists():
            fail(f"--db: {path} exists; the demo creates a fresh database (remove it first)")
        if not path.parent.exists():
            fail(f"--db: no directory {path.parent}")
        if audit_dir_for(path).exists():
            fail(f"--db: {audit_dir_for(path)} exists; the demo writes its audit bundle there")
    keep = temp is None
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )
    try:
        with progress:
            result = run_demo(
                seed, accounts, path, reporter=_RichReporter(progress), console_users=keep
            )
        url = f"http://127.0.0.1:{port}"
        _print_summary(result)
        _print_audit(result.summary["audit"], temp is not None)
        if keep:
            _print_logins(result, url)
            out.print(f"数据库 / database: {result.db_url}", highlight=False, soft_wrap=True)
        if no_serve:
            print(json.dumps(result.summary, ensure_ascii=False, sort_keys=True), flush=True)
            return
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    import uvicorn

    os.environ["QINGLANG_DB_URL"] = result.db_url
    err.print(f"qinglang demo console on {url}/console  (Ctrl-C to stop)")
    uvicorn.run(
        "qinglang.api.app:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
