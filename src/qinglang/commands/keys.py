"""`qinglang keys`: data keys for encryption at rest (status, rotation, digest key).

How the keys are found and how a rotation stays safe when interrupted: see
:mod:`qinglang.store.keys` and docs/security.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from qinglang.commands.common import DEFAULT_DB, DbOption, err, fail, out
from qinglang.store.crypto import (
    ENV_DATA_KEY,
    ENV_DIGEST_KEY,
    ENV_PREVIOUS_DATA_KEYS,
    DataKey,
    DataKeyError,
    KeyRing,
)
from qinglang.store.keys import (
    DEFAULT_BATCH_SIZE,
    NOT_CIPHERTEXT,
    KeySource,
    RotationPlan,
    RotationResult,
    env_lines,
    key_source,
    key_usage,
    present_columns,
    rotate,
)

app = typer.Typer(help="Data keys for encryption at rest.", no_args_is_help=True)

NewKeyOption = Annotated[
    str | None,
    typer.Option(
        "--new-key",
        help="new primary key (urlsafe base64 of 32 bytes); default: generate one, or finish "
        "an unfinished rotation when previous keys are still configured",
    ),
]
BatchOption = Annotated[int, typer.Option(min=1, help="rows re-encrypted per transaction")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0] if lines else ''}"


def _source(db: str) -> KeySource:
    """The keys of this database as make_engine finds them, or a one-line failure."""
    try:
        return key_source(db)
    except ArgumentError as exc:
        fail(f"--db: not a database URL: {db!r} ({_first_line(exc)})")
    except (DataKeyError, OSError) as exc:
        fail(str(exc))


@contextmanager
def _engine(db: str) -> Iterator[Engine]:
    """An engine on an existing database (nothing created, no migration), disposed after."""
    from qinglang.store.db import make_engine

    sa_url = make_url(db)
    database = sa_url.database
    if (
        sa_url.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).exists()
    ):
        fail(f"no database file at {database}")
    try:
        engine = make_engine(db, provision_key=False)
    except (DataKeyError, ArgumentError) as exc:
        fail(str(exc))
    try:
        yield engine
    except SQLAlchemyError as exc:
        fail(f"database {sa_url.render_as_string(hide_password=True)}: {_first_line(exc)}")
    finally:
        engine.dispose()


def _where(source: KeySource) -> str:
    if source.key_file is not None:
        return f"key file {source.key_file}"
    return "environment" if source.from_env else "none configured"


def _role(ring: KeyRing | None, key_id: str) -> str:
    if key_id == NOT_CIPHERTEXT:
        return "not ciphertext"
    if ring is None:
        return "?"
    if key_id == ring.primary.key_id:
        return "primary"
    return "previous" if ring.get(key_id) is not None else "UNKNOWN (no key opens it)"


@app.command()
def status(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Count the stored ciphertexts per key id in every encrypted column."""
    source = _source(db)
    ring = source.ring
    with _engine(db) as engine:
        usage = key_usage(engine, present_columns(engine))
    if as_json:
        doc: dict[str, Any] = {
            "keys_from": "key_file" if source.key_file else ("env" if source.from_env else None),
            "key_file": str(source.key_file) if source.key_file else None,
            "primary": ring.primary.key_id if ring else None,
            "previous": [k.key_id for k in ring.previous] if ring else [],
            "digest_key_id": ring.digest_key.key_id if ring else None,
            "columns": usage,
        }
        print(json.dumps(doc, indent=2))
        return
    table = Table("column", "key id", "key", "values")
    for name, counts in usage.items():
        if not counts:
            table.add_row(name, "-", "", "0")
        for key_id, n in counts.items():
            table.add_row(name, key_id, _role(ring, key_id), str(n))
    out.print(table)
    out.print(f"keys from: {_where(source)}", highlight=False, soft_wrap=True)
    if ring is not None:
        previous = ", ".join(k.key_id for k in ring.previous) or "none"
        derived = ring.digest_key == ring.primary.digest_key
        how = "derived from the primary key" if derived else "pinned"
        out.print(
            f"primary key id {ring.primary.key_id}; previous: {previous}; "
            f"digest key id {ring.digest_key.key_id} ({how})",
            highlight=False,
            soft_wrap=True,
        )


def _announce(plan: RotationPlan, source: KeySource) -> None:
    """Say what is about to happen; with environment keys print the new environment once."""
    new_id = plan.ring.primary.key_id
    if plan.ring is plan.before:
        err.print(
            f"finishing the rotation to key id {new_id}: "
            f"{plan.to_rewrite} value(s) still under older keys",
            highlight=False,
            soft_wrap=True,
        )
        return
    if source.key_file is not None:
        err.print(
            f"key file {source.key_file}: new primary key id {new_id} "
            f"(previous: {', '.join(k.key_id for k in plan.ring.previous)}); "
            f"{plan.to_rewrite} value(s) to re-encrypt. Stop other processes using this "
            "database first: they hold the old key file in memory.",
            highlight=False,
            soft_wrap=True,
        )
        return
    made = "generated, shown only now" if plan.generated else "given with --new-key"
    err.print(
        f"new data key id {new_id} ({made}). The environment for every qinglang process "
        "from now on (keep it secret):",
        highlight=False,
        soft_wrap=True,
    )
    for line in env_lines(plan.ring):
        print(line, flush=True)


def _report(result: RotationResult, source: KeySource) -> None:
    plan, stats = result.plan, result.stats
    new_id = plan.ring.primary.key_id
    line = f"re-encrypted {stats.rewritten} value(s) under key id {new_id} in {stats.batches} "
    line += "batch(es)"
    if stats.skipped:
        line += f"; {stats.skipped} changed by another writer meanwhile and left as they were"
    out.print(line, highlight=False, soft_wrap=True)
    if result.remaining:
        left = ", ".join(f"{k} ({n})" for k, n in result.remaining.items())
        out.print(
            f"values still under older keys: {left}; run `qinglang keys rotate` again",
            highlight=False,
            soft_wrap=True,
        )
    if source.key_file is not None:
        retired = ", ".join(result.retired) or "none"
        out.print(
            f"key file {source.key_file}: primary key id {result.ring.primary.key_id}; "
            f"retired key id(s): {retired}",
            highlight=False,
            soft_wrap=True,
        )
        return
    if plan.before.primary != plan.ring.primary:
        out.print(
            f"Set {ENV_DATA_KEY}, {ENV_PREVIOUS_DATA_KEYS} and {ENV_DIGEST_KEY} as printed "
            "above in every qinglang process and restart them; then run `qinglang keys rotate` "
            "again (it finishes the rotation) and remove the old keys as it says.",
            highlight=False,
            soft_wrap=True,
        )
    elif result.retired and not result.remaining:
        out.print(
            f"No value uses key id(s) {', '.join(result.retired)} any more: remove them from "
            f"{ENV_PREVIOUS_DATA_KEYS} (keep {ENV_DIGEST_KEY}) and restart the processes.",
            highlight=False,
            soft_wrap=True,
        )


@app.command("rotate")
def rotate_command(
    db: DbOption = DEFAULT_DB,
    new_key: NewKeyOption = None,
    batch_size: BatchOption = DEFAULT_BATCH_SIZE,
) -> None:
    """Re-encrypt every encrypted value under a new primary key, then retire the old keys."""
    parsed: DataKey | None = None
    if new_key is not None:
        try:
            parsed = DataKey.from_b64(new_key)
        except DataKeyError as exc:
            fail(f"--new-key: {exc}")
    source = _source(db)
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task: list[Any] = []

    def on_start(plan: RotationPlan) -> None:
        _announce(plan, source)
        task.append(progress.add_task("re-encrypting", total=plan.to_rewrite))
        progress.start()

    def after_batch(_column: object, rows: int) -> None:
        progress.advance(task[0], rows)

    with _engine(db) as engine:
        try:
            result = rotate(
                engine,
                source,
                new_key=parsed,
                batch_size=batch_size,
                on_start=on_start,
                after_batch=after_batch,
            )
        except DataKeyError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"key file: {exc}")
        finally:
            progress.stop()
    _report(result, source)


@app.command("digest-key")
def digest_key(db: DbOption = DEFAULT_DB) -> None:
    """Print the identity-number digest key as QINGLANG_DIGEST_KEY=… (secret)."""
    ring = _source(db).ring
    if ring is None:
        fail(f"no data key configured: set {ENV_DATA_KEY}")
    err.print(f"digest key id {ring.digest_key.key_id}", highlight=False, soft_wrap=True)
    print(f"{ENV_DIGEST_KEY}={ring.digest_key.to_b64()}")


@app.command()
def generate() -> None:
    """Print a new random data key (urlsafe base64, the QINGLANG_DATA_KEY format)."""
    key = DataKey.generate()
    err.print(f"data key id {key.key_id}", highlight=False, soft_wrap=True)
    print(key.to_b64())
