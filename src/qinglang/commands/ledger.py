"""`qinglang ledger`: verify a platform's hash chain, export and check proof bundles.

``verify`` and ``export`` only read: they open an existing, migrated database without creating
files, keys or tables, and read each chain with its head in one snapshot. ``check`` needs no
database at all. Exit codes: 0 intact, 1 a break (the line names the first bad position),
2 bad input (one line on stderr).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qinglang.commands.common import DEFAULT_DB, BadInput, DbOption, err, fail, out

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from qinglang.consent.ledger import Link

app = typer.Typer(help="The tamper-evident consent ledger.", no_args_is_help=True)

PROGRESS_FROM = 10_000
"""Chains at least this long show a progress bar on stderr (when it is a terminal)."""


def _say(line: str) -> None:
    out.print(line, markup=False, highlight=False, soft_wrap=True)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _open(db: str) -> Engine:
    """A read-only snapshot engine on an existing, migrated database, or a one-line failure."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from qinglang.store import make_engine
    from qinglang.store.ledger import snapshot_engine

    try:
        url = make_url(db)
    except Exception:
        fail(f"not a database URL: {db!r}")
    shown = url.render_as_string(hide_password=True)
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            fail(f"not a database file: {shown}")
        if not Path(database).is_file():
            fail(f"no database file at {database}")
    kwargs: dict[str, Any] = {}
    if backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = make_engine(url, provision_key=False, **kwargs)
        with engine.connect() as connection:
            inspector = inspect(connection)
            migrated = inspector.has_table("ledger_entries") and inspector.has_table("ledger_heads")
    except Exception as exc:
        fail(f"cannot open database {shown}: {_first_line(exc)}")
    if not migrated:
        engine.dispose()
        fail(f"database {shown} has no ledger tables (not a migrated qinglang database)")
    return snapshot_engine(engine)


def _platforms(engine: Engine, slug: str | None) -> list[tuple[int, str]]:
    """(id, slug) of the named platform, or of every platform."""
    from sqlalchemy import select

    from qinglang.store.models import Platform

    stmt = select(Platform.id, Platform.slug).order_by(Platform.slug)
    if slug is not None:
        stmt = stmt.where(Platform.slug == slug)
    with engine.connect() as connection:
        rows = [(pid, s) for pid, s in connection.execute(stmt)]
    if slug is not None and not rows:
        fail(f"no platform {slug!r}")
    return rows


def _with_progress(links: Iterator[Link], total: int, label: str) -> Generator[Link, None, None]:
    """The same links, advancing a transient progress bar on stderr for long chains."""
    if total < PROGRESS_FROM or not err.is_terminal:
        yield from links
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=total)
        for i, link in enumerate(links, 1):
            if i % 1000 == 0:
                progress.update(task, completed=i)
            yield link


def _database_error(exc: Exception) -> BadInput:
    return BadInput(f"database error while reading the ledger: {_first_line(exc)}")


@app.command()
def verify(
    db: DbOption = DEFAULT_DB,
    platform: Annotated[
        str | None, typer.Option(help="platform slug (default: every platform)")
    ] = None,
) -> None:
    """Verify hash chains: exit 0 when intact, 1 naming the first bad position of a broken one."""
    from sqlalchemy.exc import SQLAlchemyError

    from qinglang.consent.ledger import verify_chain
    from qinglang.store import ledger as store_ledger
    from qinglang.store import session_factory, transaction

    engine = _open(db)
    sessions = session_factory(engine)
    broken = 0
    try:
        chosen = _platforms(engine, platform)
        if not chosen:
            _say("no platforms: nothing to verify")
        for pid, slug in chosen:
            with transaction(sessions) as session:
                head = store_ledger.head(session, pid)
                total = head[0] if head is not None else 0
                stream = _with_progress(store_ledger.links(session, pid), total, slug)
                try:
                    brk = verify_chain(stream, head, platform_id=pid)
                finally:
                    stream.close()
            if brk is not None:
                broken += 1
                _say(f"{slug}: BROKEN at position {brk.position}: {brk.reason}")
            elif head is None:
                _say(f"{slug}: intact, no entries")
            else:
                entries = _count(head[0], "entry", "entries")
                _say(f"{slug}: intact, {entries}, head {head[0]} {head[1]}")
    except SQLAlchemyError as exc:
        raise _database_error(exc) from None
    finally:
        engine.dispose()
    if broken:
        raise typer.Exit(1)


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@app.command()
def export(
    platform: Annotated[str, typer.Option(help="platform slug")],
    child: Annotated[str, typer.Option(help="the child's account external id")],
    out_file: Annotated[Path, typer.Option("--out", help="where to write the JSON bundle")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Write a proof bundle of the child's ledger entries that anyone can check offline."""
    from sqlalchemy.exc import SQLAlchemyError

    from qinglang.store import session_factory, transaction
    from qinglang.store.ledger import ChainBroken, build_bundle

    if not out_file.parent.is_dir():
        fail(f"no directory {out_file.parent} to write {out_file.name} in")
    if out_file.is_dir():
        fail(f"{out_file} is a directory")
    engine = _open(db)
    try:
        ((pid, slug),) = _platforms(engine, platform)
        with transaction(session_factory(engine)) as session:
            bundle = build_bundle(session, pid, child, platform_slug=slug)
    except ChainBroken as exc:
        _say(f"{platform}: BROKEN at position {exc.brk.position}: {exc.brk.reason}; no bundle")
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        raise _database_error(exc) from None
    finally:
        engine.dispose()
    entries = bundle["entries"]
    about = sum(1 for e in entries if "body" in e)
    if about == 0:
        fail(f"no ledger entries about {child!r} on platform {platform!r}")
    try:
        _write_atomically(out_file, json.dumps(bundle, ensure_ascii=False, indent=1) + "\n")
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}")
    head = bundle["head"]
    _say(
        f"wrote {out_file}: {about} of {_count(len(entries), 'entry', 'entries')} about {child} "
        f"on {slug} in full, head {head['seq']} {head['hash']}"
    )


def _anchors(values: list[str]) -> dict[int, str]:
    anchors: dict[int, str] = {}
    for value in values:
        seq, _, digest = value.partition(":")
        if not (seq.isdigit() and int(seq) > 0 and len(digest) == 64):
            fail(f"--anchor must be SEQ:HASH (64 hex digits), not {value!r}")
        try:
            bytes.fromhex(digest)
        except ValueError:
            fail(f"--anchor must be SEQ:HASH (64 hex digits), not {value!r}")
        anchors[int(seq)] = digest.lower()
    return anchors


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="a proof bundle written by `ledger export`")],
    anchor: Annotated[
        list[str] | None,
        typer.Option(help="SEQ:HASH of a head published earlier, must be on the chain"),
    ] = None,
) -> None:
    """Check a proof bundle offline: exit 0 when it verifies, 1 naming the first bad position."""
    from qinglang.consent.ledger import BundleError, check_bundle

    anchors = _anchors(anchor or [])
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}")
    try:
        bundle = json.loads(text)
    except ValueError as exc:
        fail(f"{file} is not JSON: {exc}")
    try:
        brk = check_bundle(bundle, anchors)
    except BundleError as exc:
        fail(f"{file}: {exc}")
    if brk is not None:
        _say(f"{file}: BROKEN at position {brk.position}: {brk.reason}")
        raise typer.Exit(1)
    about = sum(1 for e in bundle["entries"] if "body" in e)
    head = bundle["head"]
    where = bundle.get("platform_slug") or f"platform {bundle['platform']}"
    anchored = f", {len(anchors)} anchor(s) matched" if anchors else ""
    _say(
        f"{file}: valid: {_count(about, 'entry', 'entries')} about {bundle['child']} on {where}, "
        f"chain of {_count(head['seq'], 'entry', 'entries')} to head {head['hash']}{anchored}"
    )
