"""Durable intake of platform events, and the risk consumer's lease and checkpoint.

Intake contract (``POST /v1/events`` and ``qinglang events ingest``; see docs/events.md): each
event of a batch is validated on its own (:func:`qinglang.risk.events.parse_event`, plus valid
Unicode and no NUL in ids). A bad event is rejected with its index, the field and the reason;
an event whose id is already stored (or appears earlier in the batch) with the same content is a
``duplicate`` and is not stored again; the same id with different content is rejected (field
``id``). Every other event is stored, in one transaction per batch: all of them or none.

Events are numbered per platform (``seq``) under a lock on the platform's
:class:`~qinglang.store.models.EventHead` row, so sequence numbers are committed in order and a
consumer reading ``seq > checkpoint`` never skips an event that committed late. Unknown account
ids and out-of-order timestamps are accepted: the platform knows its users before qinglang
does, and a late event is still evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from qinglang.risk.events import Event, EventError, parse_event
from qinglang.store.models import EventHead, RiskConsumer, StoredEvent, utcnow

MAX_BATCH: Final = 10_000
"""Most events accepted in one request (or one CLI transaction)."""
_CHUNK: Final = 900
_ID_FIELDS: Final = ("id", "actor", "target", "item", "owner")


@dataclass(frozen=True, slots=True)
class Rejected:
    """One event that was not stored: its index in the batch, the field and why."""

    index: int
    field: str
    message: str


@dataclass(slots=True)
class IntakeResult:
    """What a batch did: how many were stored, which were duplicates, which were rejected."""

    received: int
    accepted: int = 0
    duplicates: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None


def unicode_problem(value: str) -> str | None:
    """Why a string cannot be stored as UTF-8 text, or None."""
    for i, ch in enumerate(value):
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            return f"invalid UTF-8: byte 0x{o - 0xDC00:02x} at character {i}"
        if 0xD800 <= o <= 0xDFFF:
            return f"not valid Unicode: lone surrogate U+{o:04X} at character {i}"
    return None


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate(raw: Any) -> Event:
    """One event, validated for storage; EventError names the bad field."""
    event = parse_event(raw)
    for name in _ID_FIELDS:
        v = getattr(event, name)
        if v is None:
            continue
        if _has_surrogate(v):
            raise EventError(name, unicode_problem(v) or "not valid Unicode")
        if "\x00" in v:
            raise EventError(name, "must not contain NUL characters")
    if event.text is not None and _has_surrogate(event.text):
        raise EventError("text", unicode_problem(event.text) or "not valid Unicode")
    return event


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def lock_head(session: Session, platform_id: int) -> EventHead:
    """Lock the platform's intake head for the rest of the transaction (creating it if needed)."""
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        ins(EventHead)
        .values(platform_id=platform_id, seq=0)
        .on_conflict_do_nothing(index_elements=["platform_id"])
    )
    return session.execute(
        select(EventHead)
        .where(EventHead.platform_id == platform_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def to_event(row: StoredEvent) -> Event:
    """The risk event of a stored row."""
    return Event(
        row.event_id,
        row.kind,
        row.at,
        row.actor,
        row.target,
        row.text,
        row.item,
        row.owner,
        row.surface,
        row.amount_fen,
        row.delivered,
    )


def stored_events(session: Session, platform_id: int, event_ids: Iterable[str]) -> dict[str, Event]:
    """Stored events by platform event id (unknown ids are absent)."""
    wanted = list(dict.fromkeys(event_ids))
    found: dict[str, Event] = {}
    for chunk in _chunks(wanted):
        rows = session.scalars(
            select(StoredEvent).where(
                StoredEvent.platform_id == platform_id, StoredEvent.event_id.in_(chunk)
            )
        )
        for row in rows:
            found[row.event_id] = to_event(row)
    return found


@dataclass(slots=True)
class Checked:
    """A batch after validation (no database needed): the good events and the rejected ones."""

    received: int
    good: list[tuple[int, Event]]
    rejected: list[Rejected]


def check_batch(raws: Sequence[Any]) -> Checked:
    """Validate each raw event of a batch on its own."""
    good: list[tuple[int, Event]] = []
    rejected: list[Rejected] = []
    for index, raw in enumerate(raws):
        try:
            good.append((index, validate(raw)))
        except EventError as exc:
            rejected.append(Rejected(index, exc.field, exc.message))
    return Checked(len(raws), good, rejected)


def ingest(
    session: Session, platform_id: int, raws: Sequence[Any], *, now: datetime | None = None
) -> IntakeResult:
    """Validate and store a batch of raw events (JSON objects) in the caller's transaction."""
    return store_batch(session, platform_id, check_batch(raws), now=now)


def store_batch(
    session: Session, platform_id: int, checked: Checked, *, now: datetime | None = None
) -> IntakeResult:
    """Store the good events of a checked batch (duplicates once) in the caller's transaction."""
    result = IntakeResult(received=checked.received, rejected=list(checked.rejected))
    head = lock_head(session, platform_id)
    first: dict[str, tuple[int, Event]] = {}
    fresh: list[tuple[int, Event]] = []
    for index, event in checked.good:
        seen = first.get(event.id)
        if seen is None:
            first[event.id] = (index, event)
            fresh.append((index, event))
        elif seen[1] == event:
            result.duplicates.append(index)
        else:
            result.rejected.append(
                Rejected(index, "id", f"repeats the id of event {seen[0]} with different content")
            )
    existing = _existing_ids(session, platform_id, [e.id for _, e in fresh])
    if existing:
        stored = stored_events(session, platform_id, existing)
        keep: list[tuple[int, Event]] = []
        for index, event in fresh:
            if event.id not in existing:
                keep.append((index, event))
            elif stored.get(event.id) == event:
                result.duplicates.append(index)
            else:
                result.rejected.append(
                    Rejected(index, "id", "an event with this id is stored with different content")
                )
        fresh = keep
    received_at = now or utcnow()
    seq = head.seq
    rows: list[dict[str, Any]] = []
    for _, e in fresh:
        seq += 1
        rows.append(
            {
                "platform_id": platform_id,
                "seq": seq,
                "event_id": e.id,
                "kind": e.kind,
                "at": e.at,
                "actor": e.actor,
                "target": e.target,
                "item": e.item,
                "owner": e.owner,
                "surface": e.surface,
                "amount_fen": e.amount_fen,
                "delivered": e.delivered,
                "text": e.text,
                "received_at": received_at,
            }
        )
    if rows:
        session.execute(insert(StoredEvent), rows)
        result.first_seq, result.last_seq = head.seq + 1, seq
        head.seq = seq
        session.flush()
    result.accepted = len(rows)
    result.duplicates.sort()
    result.rejected.sort(key=lambda r: r.index)
    return result


def _existing_ids(session: Session, platform_id: int, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(
            session.scalars(
                select(StoredEvent.event_id).where(
                    StoredEvent.platform_id == platform_id, StoredEvent.event_id.in_(chunk)
                )
            )
        )
    return found


# ---------------------------------------------------------------- reading for the consumer


def head_seq(session: Session, platform_id: int) -> int:
    """The last event sequence number stored for the platform (0 when none)."""
    seq = session.scalar(select(EventHead.seq).where(EventHead.platform_id == platform_id))
    return int(seq or 0)


def events_after(
    session: Session, platform_id: int, after_seq: int, limit: int
) -> list[tuple[int, Event]]:
    """Up to `limit` events with seq > after_seq, in seq order, as (seq, event)."""
    rows = session.scalars(
        select(StoredEvent)
        .where(StoredEvent.platform_id == platform_id, StoredEvent.seq > after_seq)
        .order_by(StoredEvent.seq)
        .limit(limit)
    )
    return [(r.seq, to_event(r)) for r in rows]


def events_for_replay(
    session: Session, platform_id: int, upto_seq: int, since: datetime, batch: int = 5000
) -> Iterator[Event]:
    """Events up to seq `upto_seq` whose time is at or after `since`, in seq order (streamed)."""
    stmt = (
        select(StoredEvent)
        .where(
            StoredEvent.platform_id == platform_id,
            StoredEvent.seq <= upto_seq,
            StoredEvent.at >= since,
        )
        .order_by(StoredEvent.seq)
        .execution_options(yield_per=batch)
    )
    for row in session.scalars(stmt):
        yield to_event(row)


# ---------------------------------------------------------------- consumer lease and checkpoint


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """The consumer row of a platform as read under a lease."""

    platform_id: int
    holder: str | None
    lease_expires_at: datetime | None
    checkpoint: int
    watermark_at: datetime | None
    processed: int


def _state(row: RiskConsumer) -> ConsumerState:
    return ConsumerState(
        row.platform_id,
        row.holder,
        row.lease_expires_at,
        row.checkpoint,
        row.watermark_at,
        row.processed,
    )


def pending_platforms(
    session: Session, holder: str | None = None, now: datetime | None = None
) -> list[int]:
    """Platforms with stored events that no consumer has processed yet; with `holder` and
    `now`, those whose lease is free, expired or this holder's (a read, no lock)."""
    stmt = (
        select(EventHead.platform_id)
        .outerjoin(RiskConsumer, RiskConsumer.platform_id == EventHead.platform_id)
        .where(EventHead.seq > func.coalesce(RiskConsumer.checkpoint, 0))
        .order_by(EventHead.platform_id)
    )
    if holder is not None and now is not None:
        stmt = stmt.where(
            or_(
                RiskConsumer.holder.is_(None),
                RiskConsumer.holder == holder,
                RiskConsumer.lease_expires_at.is_(None),
                RiskConsumer.lease_expires_at <= now,
            )
        )
    return list(session.scalars(stmt))


def acquire_lease(
    session: Session, platform_id: int, holder: str, now: datetime, ttl: timedelta
) -> ConsumerState | None:
    """Take or renew the platform's consumer lease; None when another holder's lease is live."""
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        ins(RiskConsumer)
        .values(platform_id=platform_id, checkpoint=0, processed=0)
        .on_conflict_do_nothing(index_elements=["platform_id"])
    )
    taken = session.execute(
        update(RiskConsumer)
        .where(
            RiskConsumer.platform_id == platform_id,
            or_(
                RiskConsumer.holder.is_(None),
                RiskConsumer.holder == holder,
                RiskConsumer.lease_expires_at.is_(None),
                RiskConsumer.lease_expires_at <= now,
            ),
        )
        .values(holder=holder, lease_expires_at=now + ttl, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        return None
    row = session.execute(
        select(RiskConsumer)
        .where(RiskConsumer.platform_id == platform_id)
        .execution_options(populate_existing=True)
    ).scalar_one()
    return _state(row)


def advance(
    session: Session,
    platform_id: int,
    holder: str,
    expected_checkpoint: int,
    checkpoint: int,
    watermark_at: datetime | None,
    processed: int,
    now: datetime,
    ttl: timedelta,
) -> bool:
    """Move the checkpoint (and renew the lease) if this holder still holds it at the expected
    checkpoint; False means the lease was lost and the caller must roll back."""
    moved = session.execute(
        update(RiskConsumer)
        .where(
            RiskConsumer.platform_id == platform_id,
            RiskConsumer.holder == holder,
            RiskConsumer.checkpoint == expected_checkpoint,
        )
        .values(
            checkpoint=checkpoint,
            watermark_at=watermark_at,
            processed=RiskConsumer.processed + processed,
            lease_expires_at=now + ttl,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return getattr(moved, "rowcount", 0) == 1


def release(session: Session, platform_id: int, holder: str) -> None:
    """Give the lease up (on a clean shutdown) so another consumer can take over at once."""
    session.execute(
        update(RiskConsumer)
        .where(RiskConsumer.platform_id == platform_id, RiskConsumer.holder == holder)
        .values(holder=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


def consumer_status(session: Session, platform_id: int) -> dict[str, Any]:
    """Stored head, checkpoint, lag and lease of the platform's consumer (for /v1/events/status)."""
    head = head_seq(session, platform_id)
    row = session.get(RiskConsumer, platform_id)
    checkpoint = 0 if row is None else row.checkpoint
    expires = None if row is None else row.lease_expires_at
    return {
        "stored": head,
        "processed": checkpoint,
        "lag": head - checkpoint,
        "lease_holder": None if row is None else row.holder,
        "lease_expires_at": None if expires is None else expires.astimezone(UTC).isoformat(),
        "watermark_at": None
        if row is None or row.watermark_at is None
        else row.watermark_at.isoformat(),
    }


def counts_by_kind(session: Session, platform_id: int) -> Mapping[str, int]:
    """How many events of each kind are stored for the platform."""
    rows = session.execute(
        select(StoredEvent.kind, func.count())
        .where(StoredEvent.platform_id == platform_id)
        .group_by(StoredEvent.kind)
    ).all()
    return {k: int(n) for k, n in rows}
