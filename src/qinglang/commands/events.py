"""`qinglang events`: ingest platform events from a JSONL file, show the consumer's lag, and run
the risk consumer by hand.

`ingest` applies the intake contract of ``POST /v1/events`` line by line: one JSON event per
line; a bad line (invalid UTF-8, over the size limit, not JSON, an invalid event) is reported on
stderr with its line number and skipped, a line repeating a stored event id is a duplicate and
stored once, every other line is stored — in transactions of ``--batch`` lines. The exit code
is 2 when any line failed, 0 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

from qinglang.commands.common import DEFAULT_DB, DbOption, err, fail, open_service, out

if TYPE_CHECKING:
    from qinglang.api.service import Service
    from qinglang.store.models import Platform

app = typer.Typer(help="Platform events: bulk ingest and the risk consumer.", no_args_is_help=True)

MAX_LINE_BYTES: Final = 256 << 10
"""A line over 256 KiB is refused: the longest valid message (20,000 characters) fits easily."""

PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="platform slug (default: the only platform)")
]


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _platform(service: Service, slug: str | None) -> Platform:
    """The named platform, or the only one; a one-line failure otherwise."""
    from sqlalchemy import select

    from qinglang.store.models import Platform

    with service.tx() as s:
        stmt = select(Platform).order_by(Platform.slug)
        if slug is not None:
            stmt = stmt.where(Platform.slug == slug)
        rows = list(s.scalars(stmt.limit(2)))
        for p in rows:
            s.expunge(p)
    if not rows:
        fail(f"no platform {slug!r}" if slug else "no platform: create one first")
    if len(rows) > 1:
        fail("several platforms: choose one with --platform")
    return rows[0]


@dataclass(slots=True)
class IngestStats:
    """What an ingest run did."""

    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    bytes_read: int = 0


def read_lines(
    stream: IO[bytes], max_bytes: int, stats: IngestStats
) -> Iterator[tuple[int, Any | None]]:
    """(line number, parsed JSON) per non-blank line; bad lines are recorded and yield None."""
    for n, raw in enumerate(stream, start=1):
        stats.bytes_read += len(raw)
        body = raw.rstrip(b"\r\n")
        if not body.strip():
            continue
        stats.lines += 1
        if len(body) > max_bytes:
            stats.errors.append(f"line {n}: {len(body):,} bytes, over the {max_bytes:,}-byte limit")
            yield n, None
            continue
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            stats.errors.append(f"line {n}: invalid UTF-8 at byte {exc.start}")
            yield n, None
            continue
        try:
            yield n, json.loads(text)
        except ValueError as exc:
            stats.errors.append(f"line {n}: not valid JSON ({exc})")
            yield n, None
        except RecursionError:
            stats.errors.append(f"line {n}: JSON nested too deeply")
            yield n, None


def _store(
    service: Service, platform_id: int, batch: list[tuple[int, Any]], stats: IngestStats
) -> None:
    from qinglang.store import events as store_events

    with service.tx(write=True) as s:
        result = store_events.ingest(s, platform_id, [raw for _, raw in batch])
    stats.stored += result.accepted
    stats.duplicates += len(result.duplicates)
    for r in result.rejected:
        stats.errors.append(f"line {batch[r.index][0]}: {r.field}: {r.message}")


@app.command("ingest")
def ingest(
    source: Annotated[str, typer.Argument(help="JSONL file of events, or - for standard input")],
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="lines per transaction")] = 1000,
    max_line_bytes: Annotated[int, typer.Option(min=1024)] = MAX_LINE_BYTES,
) -> None:
    """Store the events of a JSONL file (one event object per line); bad lines on stderr."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")
    service = open_service(db)
    p = _platform(service, platform)
    stats = IngestStats()
    total = None if source == "-" else os.path.getsize(source)
    progress = Progress(
        TextColumn("ingesting"), BarColumn(), TransferSpeedColumn(), console=err, transient=True
    )
    task = progress.add_task("ingest", total=total)
    started = time.perf_counter()
    pending: list[tuple[int, Any]] = []
    try:
        with progress, stream:
            for n, obj in read_lines(stream, max_line_bytes, stats):
                if obj is not None:
                    pending.append((n, obj))
                if len(pending) >= batch:
                    _store(service, p.id, pending, stats)
                    pending = []
                    progress.update(task, completed=stats.bytes_read)
            if pending:
                _store(service, p.id, pending, stats)
    except SQLAlchemyError as exc:
        fail(
            f"database error after {stats.stored:,} stored events: "
            f"{str(getattr(exc, 'orig', exc)).splitlines()[0]}"
        )
    finally:
        service.engine.dispose()
    seconds = time.perf_counter() - started
    stats.errors.sort(key=lambda e: int(e.split(":", 1)[0].split()[1]))
    for e in stats.errors:
        err.print(f"error: {e}", highlight=False, soft_wrap=True, markup=False)
    rate = stats.stored / seconds if seconds > 0 else 0.0
    err.print(
        f"{stats.lines:,} events read, {stats.stored:,} stored, {stats.duplicates:,} duplicates, "
        f"{len(stats.errors):,} rejected ({rate:,.0f} events/s) on {p.slug}",
        highlight=False,
        markup=False,
    )
    if stats.errors:
        raise typer.Exit(2)


@app.command("status")
def status(
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Events stored and processed by the risk consumer, and who holds its lease."""
    from qinglang.store import events as store_events

    service = open_service(db)
    p = _platform(service, platform)
    with service.tx() as s:
        st = store_events.consumer_status(s, p.id)
    if as_json:
        print(json.dumps(st))
        return
    _say(
        f"{p.slug}: {st['stored']:,} stored, {st['processed']:,} processed, lag {st['lag']:,}; "
        f"lease {st['lease_holder'] or '-'} until {st['lease_expires_at'] or '-'}"
    )


@app.command("consume")
def consume(
    db: DbOption = DEFAULT_DB,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="keep running (Ctrl-C to stop) instead of draining once"),
    ] = False,
) -> None:
    """Feed stored events to the risk engine (the API runs this in the background)."""
    from qinglang.risk.consumer import Consumer

    service = open_service(db)
    consumer = Consumer(service.sessions, service.write_sessions, service.policy_for)
    try:
        while True:
            report = consumer.run_once()
            if report.events or not follow:
                _say(
                    f"{report.events:,} events processed, {report.alerts:,} alerts, "
                    f"{report.restrictions:,} automatic restrictions"
                    + (f", {report.replayed:,} replayed" if report.replayed else "")
                    + (
                        f"; lease held elsewhere for platform(s) {report.held_elsewhere}"
                        if report.held_elsewhere
                        else ""
                    )
                )
            if not follow:
                break
            if not report.events:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.release()
        service.engine.dispose()
