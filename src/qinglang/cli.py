"""Command line: serve the API, check identity numbers, make decisions by hand, show policy packs.

Bad input exits with code 2 and a one-line message; `check-id` exits 1 for an invalid number.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from qinglang.age import InvalidIdentityNumber, age_at, region_name, validate
from qinglang.commands import (
    age,
    audit,
    consents,
    console,
    demo,
    events,
    keys,
    ledger,
    notices,
    realname,
    retention,
    review,
    rights,
    risk,
    stream,
)
from qinglang.commands.common import (
    BadInput,
    SparkConfOption,
    err,
    fail,
    out,
    require_pyspark,
    spark_conf_of,
)
from qinglang.guard import (
    ConsentState,
    Decision,
    Profile,
    Relation,
    attribute_decision,
    build_profile,
    collection_decision,
    contact_decision,
    playtime_decision,
    spending_decision,
)
from qinglang.guard.exposure import audience_level
from qinglang.policy import Policy, PolicyError, available_packs, load_policy

app = typer.Typer(
    help="qinglang (清朗): protection of minors online — decisions with citations.",
    no_args_is_help=True,
    add_completion=False,
)
decide_app = typer.Typer(
    help="Make one decision by hand and show its reasons.", no_args_is_help=True
)
policy_app = typer.Typer(help="Policy packs.", no_args_is_help=True)
platform_app = typer.Typer(help="Platforms and API keys (operator).", no_args_is_help=True)
app.add_typer(decide_app, name="decide")
app.add_typer(policy_app, name="policy")
app.add_typer(platform_app, name="platform")

for _name, _module in (
    ("ledger", ledger),
    ("retention", retention),
    ("keys", keys),
    ("notice", notices),
    ("consent", consents),
    ("rights", rights),
    ("events", events),
    ("review", review),
    ("risk", risk),
    ("age", age),
    ("realname", realname),
    ("console", console),
    ("audit", audit),
    ("stream", stream),
):
    app.add_typer(_module.app, name=_name)
app.command("demo")(demo.demo)


# ---------------------------------------------------------------- serve


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    db: Annotated[
        str, typer.Option(help="database URL (SQLite file or postgresql+psycopg://…)")
    ] = ("sqlite:///./qinglang.db"),
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    log_level: str = "warning",
) -> None:
    """Run the HTTP API (OpenAPI at /docs) and the web console (/console)."""
    import uvicorn

    from qinglang.api.service import Service, Settings

    os.environ["QINGLANG_DB_URL"] = db
    try:
        Service(Settings.from_env())  # migrate once and fail early on a bad URL
    except Exception as exc:
        fail(f"cannot open database {db}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    err.print(
        f"qinglang API on http://{host}:{port}  (docs: /docs, console: /console, database: {db})"
    )
    uvicorn.run(
        "qinglang.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


# ---------------------------------------------------------------- identity numbers


@app.command("check-id")
def check_id(
    number: str,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check a resident identity number: birth date, sex and age when valid (exit 1 when not)."""
    try:
        rid = validate(number)
    except InvalidIdentityNumber as exc:
        if as_json:
            print(
                json.dumps(
                    {
                        "valid": False,
                        "reason": exc.reason,
                        "message": exc.message_en,
                        "message_zh": exc.message_zh,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            out.print(f"[red]invalid[/red] ({exc.reason}): {exc.message_en} / {exc.message_zh}")
        raise typer.Exit(1) from None
    age = age_at(rid.birth_date, datetime.now(UTC))
    info = {
        "valid": True,
        "number": rid.number,
        "birth_date": rid.birth_date.isoformat(),
        "sex": rid.sex,
        "age": age,
        "region": rid.region or region_name(rid.region_code, rid.birth_date.year),
        "legacy_15_digit": rid.legacy,
    }
    if as_json:
        print(json.dumps(info, ensure_ascii=False))
        return
    out.print(
        f"[green]valid[/green]  birth date {info['birth_date']}  sex {rid.sex}  age {age}  "
        f"region {info['region']}"
    )


# ---------------------------------------------------------------- decisions by hand


def _policy(pack: str, overlay: Path | None) -> Policy:
    try:
        return load_policy(pack, overlay)
    except (PolicyError, OSError) as exc:
        fail(str(exc))


def _person(policy: Policy, name: str, age: int | None, birth: str | None, at: datetime) -> Profile:
    if birth is not None:
        try:
            birth_date = date.fromisoformat(birth)
        except ValueError:
            fail(f"--{name}-birth-date: not a date (YYYY-MM-DD): {birth!r}")
    elif age is not None:
        birth_date = _birth_for_age(at.astimezone(policy.tz).date(), age)
    else:
        return build_profile(policy, name, None, None, at)
    return build_profile(policy, name, birth_date, "verified", at)


def _birth_for_age(on: date, age: int) -> date:
    """A birth date that makes someone exactly `age` on `on` (their birthday is tomorrow)."""
    tomorrow = on + timedelta(days=1)
    try:
        return tomorrow.replace(year=tomorrow.year - age - 1)
    except ValueError:  # 29 February
        return date(tomorrow.year - age - 1, 3, 1)


def _instant(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(at)
    except ValueError:
        fail(f"--at: not an ISO instant: {at!r}")
    if t.tzinfo is None:
        fail("--at: give a time zone, e.g. 2026-10-09T20:30+08:00")
    return t


def _show(d: Decision, as_json: bool) -> None:
    if as_json:
        print(json.dumps(d.to_dict(), ensure_ascii=False, default=str))
        return
    colour = {"allow": "green", "limit": "yellow", "needs_guardian": "magenta", "deny": "red"}
    out.print(f"[bold {colour[d.outcome.value]}]{d.outcome.value}[/]")
    for r in d.reasons:
        out.print(f"  {r.rule_id}  [dim]{r.citation}[/dim]\n    {r.message_zh}\n    {r.message_en}")
    for k, v in d.limits.items():
        out.print(f"  {k}: {v}")


def _account(
    pack: str, overlay: Path | None, at: str | None, age: int | None, birth: str | None
) -> tuple[Profile, datetime]:
    """The profile of one account described on the command line, and the instant."""
    policy, t = _policy(pack, overlay), _instant(at)
    return _person(policy, "account", age, birth, t), t


def _decide(make: Callable[[], Decision], as_json: bool, field: str = "") -> None:
    """Make a decision and show it; a ValueError from the core is bad input (exit 2)."""
    try:
        d = make()
    except ValueError as exc:
        fail(f"{field}{exc}")
    _show(d, as_json)


Pack = Annotated[str, typer.Option(help="policy pack id")]
Overlay = Annotated[Path | None, typer.Option(help="platform overlay TOML")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]
At = Annotated[str | None, typer.Option(help="instant, ISO 8601 with zone (default now)")]


@decide_app.command("contact")
def decide_contact(
    action: Annotated[
        str, typer.Argument(help="follow, dm, comment, mention, friend_request, gift")
    ],
    sender_age: int | None = None,
    recipient_age: int | None = None,
    sender_birth_date: str | None = None,
    recipient_birth_date: str | None = None,
    mutual: bool = False,
    approved: Annotated[
        bool, typer.Option(help="the recipient's guardian approved this contact")
    ] = False,
    blocked: bool = False,
    at: At = None,
    pack: Pack = "cn",
    overlay: Overlay = None,
    as_json: Json = False,
) -> None:
    """May a sender contact a recipient."""
    policy, t = _policy(pack, overlay), _instant(at)
    s = _person(policy, "sender", sender_age, sender_birth_date, t)
    r = _person(policy, "recipient", recipient_age, recipient_birth_date, t)
    _decide(
        lambda: contact_decision(action, s, r, Relation(mutual, approved, blocked)),
        as_json,
        "action: ",
    )


@decide_app.command("playtime")
def decide_playtime(
    kind: Annotated[str, typer.Argument(help="game or general")],
    age: int | None = None,
    birth_date: str | None = None,
    used: Annotated[int, typer.Option(help="minutes used today")] = 0,
    at: At = None,
    pack: Pack = "cn",
    overlay: Overlay = None,
    as_json: Json = False,
) -> None:
    """May an account use a game or general app at an instant."""
    p, t = _account(pack, overlay, at, age, birth_date)
    _decide(lambda: playtime_decision(p, kind, t, used), as_json)


@decide_app.command("spending")
def decide_spending(
    amount: Annotated[int, typer.Argument(help="amount in fen (CNY 0.01)")],
    age: int | None = None,
    birth_date: str | None = None,
    today: Annotated[int, typer.Option(help="fen already paid today")] = 0,
    month: Annotated[int, typer.Option(help="fen already paid this month")] = 0,
    purpose: str = "purchase",
    at: At = None,
    pack: Pack = "cn",
    overlay: Overlay = None,
    as_json: Json = False,
) -> None:
    """May an account pay an amount now."""
    p, _t = _account(pack, overlay, at, age, birth_date)
    _decide(lambda: spending_decision(p, amount, today, month, purpose), as_json)


@decide_app.command("collection")
def decide_collection(
    category: str,
    purpose: str,
    age: int | None = None,
    birth_date: str | None = None,
    guardian_consent: bool = False,
    separate_consent: bool = False,
    at: At = None,
    pack: Pack = "cn",
    overlay: Overlay = None,
    as_json: Json = False,
) -> None:
    """May a category of personal information be collected for a purpose."""
    policy, t = _policy(pack, overlay), _instant(at)
    p = _person(policy, "account", age, birth_date, t)
    try:
        d = collection_decision(
            p, category, purpose, ConsentState(guardian_consent, separate_consent)
        )
    except ValueError as exc:
        fail(f"category: {exc}")
    _show(d, as_json)


@decide_app.command("attribute")
def decide_attribute(
    attribute: Annotated[str, typer.Argument(help="location, face or school")],
    viewer: Annotated[str, typer.Option(help="owner, friends, followers or public")] = "public",
    age: int | None = None,
    birth_date: str | None = None,
    at: At = None,
    pack: Pack = "cn",
    overlay: Overlay = None,
    as_json: Json = False,
) -> None:
    """May an account's location, face or school be shown to a viewer."""
    p, _t = _account(pack, overlay, at, age, birth_date)
    _decide(lambda: attribute_decision(p, attribute, audience_level(viewer)), as_json)


# ---------------------------------------------------------------- scan


@app.command("scan")
def scan_command(
    source: Annotated[str, typer.Argument(help="file to scan, or - for standard input")] = "-",
    fmt: Annotated[
        str, typer.Option("--format", help="text (a record per line), jsonl or csv")
    ] = "text",
    column: Annotated[str | None, typer.Option(help="CSV column holding the text")] = None,
    output: Annotated[
        Path | None, typer.Option(help="write JSON lines here (default stdout)")
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="only these categories (repeatable)")
    ] = None,
    max_line_bytes: int = 1 << 20,
    model: Annotated[
        bool, typer.Option(help="also run the statistical model (names, addresses, schools)")
    ] = False,
    spark: Annotated[
        str | None,
        typer.Option(
            help="run on Spark (needs --out): master URL, e.g. local[2], spark://host:7077, yarn"
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="with --spark: result rows (JSONL), summary JSON beside it"),
    ] = None,
    spark_conf: SparkConfOption = None,
) -> None:
    """Find personal information in text; one JSON line of findings per input record.

    With --spark MASTER the scan runs on Spark and writes one result row per record (errors
    included) to --out, a summary table, exit 2 if any record was bad."""
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    from qinglang.detect import CATEGORIES
    from qinglang.jobs.scanfile import FORMATS, ScanStats, read_records, scan_records

    if fmt not in FORMATS:
        fail(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if column is not None and fmt != "csv":
        fail("--column applies to --format csv only")
    for c in category or []:
        if c not in CATEGORIES:
            fail(f"--category: unknown category {c!r}; expected one of {', '.join(CATEGORIES)}")
    if spark is not None:
        from rich.progress import MofNCompleteColumn, TimeElapsedColumn

        from qinglang.jobs.scanspark import (
            ScanInputError,
            scan_backlog,
            summary_path,
            summary_table,
        )

        if out_path is None:
            fail("--spark needs --out PATH (the result rows)")
        if output is not None:
            fail("--output is for a local scan; with --spark give --out")
        if source == "-":
            fail("--spark needs a file, not standard input")
        conf = spark_conf_of(spark_conf)
        require_pyspark()
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        job = bar.add_task("scanning", total=None)
        try:
            with bar:
                summary = scan_backlog(
                    source,
                    out_path,
                    fmt=fmt,
                    column=column,
                    categories=category or None,
                    model=model,
                    spark=spark,
                    progress=lambda done, total: bar.update(job, completed=done, total=total),
                    max_line_bytes=max_line_bytes,
                    spark_conf=conf,
                )
        except ScanInputError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot write {out_path}: {exc.strerror}")
        for e in [e for _, e in summary.errors][:50]:
            err.print(f"error: {e}", highlight=False, soft_wrap=True)
        if len(summary.errors) > 50:
            err.print(f"… and {len(summary.errors) - 50:,} more bad records", highlight=False)
        out.print(summary_table(summary))
        out.print(f"results: {out_path}; summary: {summary_path(out_path)}", highlight=False)
        if summary.errors:
            raise typer.Exit(2)
        return
    if out_path is not None or spark_conf:
        fail("--out and --spark-conf apply with --spark only (a local scan writes --output)")
    try:
        stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")
    total = None if source == "-" else os.path.getsize(source)
    stats = ScanStats()
    sink = sys.stdout if output is None else output.open("w", encoding="utf-8")
    progress = Progress(
        TextColumn("scanning"), BarColumn(), TransferSpeedColumn(), console=err, transient=True
    )
    task = progress.add_task("scan", total=total)
    try:
        with progress, stream:
            records = read_records(stream, fmt, column, max_line_bytes, stats)  # type: ignore[arg-type]
            scan_records(
                records,
                sink.write,
                stats,
                category or None,
                on_record=lambda: progress.update(task, completed=stats.bytes_read),
                model=model,
            )
    except ValueError as exc:
        fail(str(exc))
    finally:
        if output is not None:
            sink.close()
    for e in stats.errors:
        err.print(f"error: {e}", highlight=False, soft_wrap=True)
    err.print(
        f"{stats.records:,} records scanned, {stats.findings:,} findings, "
        f"{len(stats.errors):,} bad records",
        highlight=False,
    )
    if stats.errors:
        raise typer.Exit(2)


# ---------------------------------------------------------------- policy


@policy_app.command("show")
def policy_show(
    pack: Annotated[str, typer.Argument(help="pack id, e.g. cn")],
    overlay: Overlay = None,
    as_json: Json = False,
) -> None:
    """The rules of a pack with their citations, as a table."""
    policy = _policy(pack, overlay)
    if as_json:
        print(json.dumps([r.model_dump() for r in policy.rules.values()], ensure_ascii=False))
        return
    t = Table(
        title=f"{policy.meta.title_en} — {policy.meta.id} {policy.meta.version}", show_lines=False
    )
    for col in ("rule", "applies to", "value", "floor", "citation", "message"):
        t.add_column(col, overflow="fold")
    for r in policy.rules.values():
        ages = (
            "all"
            if r.age_min is None and r.age_max is None
            else f"{r.age_min or 0}–{(r.age_max or 0) - 1 if r.age_max else ''}"
        )
        value: Any = r.value
        if r.unit and r.value is not None and not isinstance(r.value, list):
            value = f"{r.value} {r.unit}"
        changed = " *" if r.id in policy.overrides else ""
        t.add_row(
            r.id + changed,
            ages,
            str(value),
            "yes" if r.binding else "no",
            r.citation.short(),
            f"{r.message_zh}\n{r.message_en}",
        )
    out.print(t)


@policy_app.command("list")
def policy_list() -> None:
    """The packs shipped with qinglang."""
    for p in available_packs():
        out.print(p)


# ---------------------------------------------------------------- platforms


@platform_app.command("create")
def platform_create(
    slug: str,
    name: str,
    db: str = "sqlite:///./qinglang.db",
    pack: Pack = "cn",
    overlay: Overlay = None,
) -> None:
    """Register a platform and print its first API key (shown once)."""
    from sqlalchemy.exc import IntegrityError

    from qinglang.api.service import Service, Settings
    from qinglang.store import repo

    _policy(pack, overlay)
    text = overlay.read_text("utf-8") if overlay else None
    service = Service(Settings(db_url=db))
    try:
        with service.tx(write=True) as s:
            p = repo.create_platform(s, slug, name, jurisdiction=pack, policy_overlay=text)
            key = repo.issue_api_key(s, p, label="initial")
    except IntegrityError:
        fail(f"platform {slug!r} exists")
    out.print(f"platform {slug} created; API key (shown once):")
    print(key)


def main() -> None:
    """Console entry point: one-line errors with exit code 2 for bad input."""
    try:
        rc = app(standalone_mode=False)
    except BadInput as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Exit, typer.Abort) as exc:
        sys.exit(getattr(exc, "exit_code", 130))
    except Exception as exc:
        # Typer's usage errors (bad option, missing argument, bad value) carry format_message().
        message = getattr(exc, "format_message", None)
        if message is None:
            raise
        text = " ".join(str(message()).split())
        if text:
            err.print(f"error: {text}", highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
