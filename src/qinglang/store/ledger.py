"""Ledger storage: append entries to a platform's hash chain, find them, read the chain.

Appends serialise per platform on the head row (``SELECT ... FOR UPDATE`` on PostgreSQL; the
single writer lock on SQLite), so two transactions never take the same sequence number. An
append is part of the caller's transaction: the entry, the head and the change it records
commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from qinglang.consent.ledger import GENESIS, Link, body_digest, link_hash, make_body
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
    """Every entry of the platform's chain in sequence order, streamed."""
    stmt = (
        select(LedgerEntry.seq, LedgerEntry.body, LedgerEntry.prev_hash, LedgerEntry.hash)
        .where(LedgerEntry.platform_id == platform_id)
        .order_by(LedgerEntry.seq)
        .execution_options(yield_per=batch)
    )
    for seq, body, prev, h in session.execute(stmt):
        yield Link(seq, body, prev, h)


def entries_about(session: Session, platform_id: int, subject: str) -> list[LedgerEntry]:
    """Entries whose subject is this account external id, in sequence order."""
    return list(
        session.execute(
            select(LedgerEntry)
            .where(LedgerEntry.platform_id == platform_id, LedgerEntry.subject == subject)
            .order_by(LedgerEntry.seq)
        ).scalars()
    )
