"""Ledger storage: append entries to a platform's hash chain, find them, read the chain.

Appends serialise per platform on the head row (``SELECT ... FOR UPDATE`` on PostgreSQL; the
single writer lock on SQLite), so two transactions never take the same sequence number. An
append is part of the caller's transaction: the entry, the head and the change it records
commit together or not at all.

Reading a chain to verify or export it must see the entries and the head in one snapshot:
open the session on :func:`snapshot_engine` (REPEATABLE READ on PostgreSQL; an SQLite read
transaction is a snapshot already), or a concurrent append looks like a break.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from qinglang.consent.ledger import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    GENESIS,
    Break,
    Link,
    body_digest,
    iso_utc,
    link_hash,
    make_body,
    verify_chain,
)
from qinglang.store.models import LedgerEntry, LedgerHead


def _locked_head(session: Session, platform_id: int) -> LedgerHead:
    dialect = session.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        ins(LedgerHead)
        .values(platform_id=platform_id, seq=0, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=["platform_id"])
    )
    head = session.execute(
        select(LedgerHead)
        .where(LedgerHead.platform_id == platform_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    return head


def lock_head(session: Session, platform_id: int) -> None:
    """Lock the platform's chain head for the rest of the transaction (appends serialise on it).

    Writers that read rows before appending (consents, notices) take it first, so the order of
    the rows' states and the order of their ledger entries are the same order.
    """
    _locked_head(session, platform_id)


def append(
    session: Session,
    platform_id: int,
    kind: str,
    subject: str | None,
    data: Mapping[str, Any],
    *,
    request_key: str | None = None,
    at: datetime | None = None,
) -> LedgerEntry:
    """Append an entry to the platform's chain in the caller's transaction."""
    at = at or datetime.now(UTC)
    iso_utc(at)  # refuse a naive timestamp before taking the lock
    head = _locked_head(session, platform_id)
    seq = head.seq + 1
    body = make_body(platform_id, seq, kind, subject, at, data)
    h = link_hash(head.hash, body_digest(body))
    entry = LedgerEntry(
        platform_id=platform_id,
        seq=seq,
        kind=kind,
        subject=subject,
        body=body,
        prev_hash=head.hash,
        hash=h,
        request_key=request_key,
        at=at,
    )
    session.add(entry)
    head.seq = seq
    head.hash = h
    session.flush()
    return entry


def by_request_key(session: Session, platform_id: int, request_key: str) -> LedgerEntry | None:
    """The entry written by the request with this idempotency key, if any."""
    return session.execute(
        select(LedgerEntry).where(
            LedgerEntry.platform_id == platform_id, LedgerEntry.request_key == request_key
        )
    ).scalar_one_or_none()


def head(session: Session, platform_id: int) -> tuple[int, str] | None:
    """The recorded head (seq, hash) of a platform's chain, or None if it has no entries."""
    row = session.get(LedgerHead, platform_id)
    return None if row is None else (row.seq, row.hash)


def links(session: Session, platform_id: int, batch: int = 5000) -> Iterator[Link]:
    """Every entry of the platform's chain in sequence order, streamed (with its columns)."""
    stmt = (
        select(
            LedgerEntry.seq,
            LedgerEntry.body,
            LedgerEntry.prev_hash,
            LedgerEntry.hash,
            LedgerEntry.kind,
            LedgerEntry.subject,
            LedgerEntry.at,
        )
        .where(LedgerEntry.platform_id == platform_id)
        .order_by(LedgerEntry.seq)
        .execution_options(yield_per=batch)
    )
    for seq, body, prev, h, kind, subject, at in session.execute(stmt):
        columns = {"kind": kind, "subject": subject, "at": iso_utc(at)}
        yield Link(seq, body, prev, h, columns)


def entries_about(session: Session, platform_id: int, subject: str) -> list[LedgerEntry]:
    """Entries whose subject is this account external id, in sequence order."""
    return list(
        session.execute(
            select(LedgerEntry)
            .where(LedgerEntry.platform_id == platform_id, LedgerEntry.subject == subject)
            .order_by(LedgerEntry.seq)
        ).scalars()
    )


def snapshot_engine(engine: Engine) -> Engine:
    """The engine for reading a whole chain and its head in one snapshot (read-only)."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)


class ChainBroken(Exception):
    """The platform's chain does not verify, so no proof can be built from it."""

    def __init__(self, platform_id: int, brk: Break) -> None:
        super().__init__(f"ledger of platform {platform_id} is broken at {brk}")
        self.platform_id = platform_id
        self.brk = brk


def verify(session: Session, platform_id: int) -> Break | None:
    """The first break in the platform's stored chain, or None when intact up to its head."""
    return verify_chain(
        links(session, platform_id), head(session, platform_id), platform_id=platform_id
    )


def build_bundle(
    session: Session,
    platform_id: int,
    child: str,
    *,
    platform_slug: str | None = None,
    now: datetime | None = None,
    upto: int | None = None,
) -> dict[str, Any]:
    """A proof bundle for `child` (an account external id): see docs/ledger.md.

    Entries about the child carry their full body, every other entry only its body digest;
    all carry their link hash. The chain is verified while it is read: raises ChainBroken.
    With `upto`, the proof ends at that entry (its head is that entry), e.g. the head as of an
    audit's instant, so that later entries do not change it.
    """
    entries: list[dict[str, Any]] = []

    def recorded() -> Iterator[Link]:
        for link in links(session, platform_id):
            if upto is not None and link.seq > upto:
                return
            entry: dict[str, Any] = {"seq": link.seq}
            if link.columns is not None and link.columns["subject"] == child:
                entry["body"] = link.body
            else:
                entry["digest"] = body_digest(link.body)
            entry["hash"] = link.hash
            entries.append(entry)
            yield link

    recorded_head = head(session, platform_id)
    if upto is not None and recorded_head is not None and upto < recorded_head[0]:
        at_upto = session.execute(
            select(LedgerEntry.hash).where(
                LedgerEntry.platform_id == platform_id, LedgerEntry.seq == upto
            )
        ).scalar_one_or_none()
        recorded_head = None if at_upto is None else (upto, at_upto)
    brk = verify_chain(recorded(), recorded_head, platform_id=platform_id)
    if brk is not None:
        raise ChainBroken(platform_id, brk)
    head_seq, head_hash = recorded_head or (0, GENESIS)
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "platform": platform_id,
        "platform_slug": platform_slug,
        "child": child,
        "generated_at": iso_utc(now or datetime.now(UTC)),
        "head": {"seq": head_seq, "hash": head_hash},
        "entries": entries,
    }
