"""Stored state of real-name verification: platform access, checks, game sessions, outbox.

Login and logout reports are written to the outbox in the same transaction as the game session
they report, so a report exists exactly when the session (or its end) does. `drain` uploads the
outbox in batches of at most 128 through one process per platform at a time (a lease on the
platform's config row), deletes what the system accepted and keeps what it rejected for good,
with the error. A process killed between an upload and its commit sends that batch again on
restart: delivery is at least once, never lost (docs/realname.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from qinglang.realname.client import InvalidInput
from qinglang.realname.protocol import (
    Behaviour,
    BehaviourType,
    CollectionRejected,
    ItemResult,
    PlayerType,
    RealNameError,
    load_protocol,
)
from qinglang.store.db import transaction
from qinglang.store.models import (
    Account,
    GameSession,
    RealNameCheck,
    RealNameConfig,
    RealNameOutbox,
    utcnow,
)

REFUSED_BY_CLIENT = -1
"""errcode of an outbox item the client refused to send (it fails the protocol's checks)."""
DRAIN_LEASE = timedelta(seconds=10)
"""How long an upload lease lasts unless renewed (each batch renews it): after a crash, another
process takes over at most this long after the last batch."""


class Uploader(Protocol):
    """What `drain` needs of a client: upload one batch, answer the per-item errors."""

    def upload(self, items: Sequence[Behaviour]) -> list[ItemResult]:
        """Upload at most 128 items; the items the system rejected (numbered from 1)."""
        ...


# ------------------------------------------------------------------------------ config


def configure(
    session: Session,
    platform_id: int,
    *,
    base_url: str,
    app_id: str,
    biz_id: str,
    secret: str,
    test_codes: dict[str, str] | None = None,
) -> RealNameConfig:
    """Create or replace the platform's access to the real-name system."""
    row = config_of(session, platform_id)
    if row is None:
        row = RealNameConfig(platform_id=platform_id)
        session.add(row)
    row.base_url = base_url.rstrip("/")
    row.app_id = app_id
    row.biz_id = biz_id
    row.secret = secret
    row.test_codes = dict(test_codes or {})
    row.updated_at = utcnow()
    session.flush()
    return row


def config_of(session: Session, platform_id: int) -> RealNameConfig | None:
    """The platform's access to the real-name system, if configured."""
    return session.scalar(select(RealNameConfig).where(RealNameConfig.platform_id == platform_id))


# ------------------------------------------------------------------------------ checks


def check_of(session: Session, account_id: int) -> RealNameCheck | None:
    """The account's latest real-name check."""
    return session.scalar(select(RealNameCheck).where(RealNameCheck.account_id == account_id))


def verified_pi(session: Session, account_id: int) -> str | None:
    """The player id (`pi`) of the account's passed check; None unless it passed."""
    row = check_of(session, account_id)
    return row.pi if row is not None and row.status == "ok" else None


def begin_check(
    session: Session,
    account: Account,
    provider: str,
    at: datetime,
    *,
    birth_date: date | None = None,
    sex: str | None = None,
    id_number_hash: str | None = None,
) -> RealNameCheck:
    """The check row to (re)submit: a pending check keeps its `ai`; otherwise a new `ai`.

    The facts of the submitted number wait on the row until the check passes."""
    row = check_of(session, account.id)
    if row is None:
        row = RealNameCheck(platform_id=account.platform_id, account_id=account.id)
        session.add(row)
    if row.status != "pending" or row.provider != provider:
        row.ai = uuid.uuid4().hex
    row.provider = provider
    row.status = "pending"
    row.pi = None
    row.detail = None
    row.birth_date, row.sex, row.id_number_hash = birth_date, sex, id_number_hash
    row.checked_at = at
    session.flush()
    return row


def record_result(
    row: RealNameCheck, status: str, pi: str | None, detail: str | None, at: datetime
) -> None:
    """Store a check's (or query's) answer on its row."""
    row.status = status
    row.pi = pi if status == "ok" else None
    if status == "failed":
        row.birth_date, row.sex, row.id_number_hash = None, None, None
    row.detail = detail[:255] if detail else None
    row.checked_at = at
    row.updated_at = at


# ------------------------------------------------------------------------------ sessions


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def enqueue(session: Session, platform_id: int, b: Behaviour) -> None:
    """Add one behaviour report to the platform's outbox (in the caller's transaction)."""
    session.add(
        RealNameOutbox(
            platform_id=platform_id,
            si=b.si,
            bt=int(b.bt),
            ot=b.ot,
            ct=int(b.ct),
            di=b.di,
            pi=b.pi,
        )
    )


def _report(si: str, bt: BehaviourType, at: datetime, pi: str | None, di: str | None) -> Behaviour:
    if pi is not None:
        return Behaviour(si=si, bt=bt, ot=_epoch(at), ct=PlayerType.VERIFIED, pi=pi)
    return Behaviour(si=si, bt=bt, ot=_epoch(at), ct=PlayerType.GUEST, di=di)


def start_session(
    session: Session, account: Account, at: datetime, *, pi: str | None, di: str | None
) -> GameSession:
    """Open a game session and queue its login report (verified with `pi`, else guest `di`)."""
    row = GameSession(
        platform_id=account.platform_id,
        account_id=account.id,
        si=uuid.uuid4().hex,
        started_at=at,
        device=di,
    )
    session.add(row)
    enqueue(session, account.platform_id, _report(row.si, BehaviourType.LOGIN, at, pi, di))
    session.flush()
    return row


def end_session(
    session: Session, row: GameSession, at: datetime, *, pi: str | None
) -> tuple[GameSession, bool]:
    """Close a session and queue its logout report; (row, False) if it was already closed."""
    if row.ended_at is not None:
        return row, False
    row.ended_at = max(at, row.started_at)
    enqueue(
        session,
        row.platform_id,
        _report(row.si, BehaviourType.LOGOUT, row.ended_at, pi, row.device),
    )
    session.flush()
    return row, True


def session_by_si(session: Session, platform_id: int, si: str) -> GameSession | None:
    """A game session by its session identifier."""
    return session.scalar(
        select(GameSession).where(GameSession.platform_id == platform_id, GameSession.si == si)
    )


def minutes_played(session: Session, account_id: int, since: datetime, until: datetime) -> int:
    """Whole minutes of game sessions inside [since, until) (open sessions count to `until`)."""
    rows = session.execute(
        select(GameSession.started_at, GameSession.ended_at).where(
            GameSession.account_id == account_id,
            or_(GameSession.ended_at.is_(None), GameSession.ended_at > since),
            GameSession.started_at < until,
        )
    ).all()
    seconds = 0.0
    for start, end in rows:
        lo, hi = max(start, since), min(end or until, until)
        seconds += max(0.0, (hi - lo).total_seconds())
    return int(seconds // 60)


# ------------------------------------------------------------------------------ outbox


def outbox_counts(session: Session, platform_id: int) -> dict[str, int]:
    """Reports waiting to be sent and reports the system rejected for good."""
    total, rejected = session.execute(
        select(func.count(), func.count(RealNameOutbox.errcode)).where(
            RealNameOutbox.platform_id == platform_id
        )
    ).one()
    return {"waiting": int(total or 0) - int(rejected or 0), "rejected": int(rejected or 0)}


def acquire_drainer(session: Session, platform_id: int, holder: str, now: datetime) -> bool:
    """Take (or renew) the platform's upload lease; False while another process holds it."""
    result = session.execute(
        update(RealNameConfig)
        .where(
            RealNameConfig.platform_id == platform_id,
            or_(
                RealNameConfig.drainer.is_(None),
                RealNameConfig.drainer == holder,
                RealNameConfig.drainer_until < now,
            ),
        )
        .values(drainer=holder, drainer_until=now + DRAIN_LEASE)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def release_drainer(session: Session, platform_id: int, holder: str) -> None:
    """Give the upload lease back."""
    session.execute(
        update(RealNameConfig)
        .where(RealNameConfig.platform_id == platform_id, RealNameConfig.drainer == holder)
        .values(drainer=None, drainer_until=None)
        .execution_options(synchronize_session=False)
    )


def _next_batch(session: Session, platform_id: int, size: int) -> list[tuple[int, Behaviour]]:
    rows = session.scalars(
        select(RealNameOutbox)
        .where(RealNameOutbox.platform_id == platform_id, RealNameOutbox.errcode.is_(None))
        .order_by(RealNameOutbox.id)
        .limit(size)
    ).all()
    return [
        (
            r.id,
            Behaviour(
                si=r.si, bt=BehaviourType(r.bt), ot=r.ot, ct=PlayerType(r.ct), di=r.di, pi=r.pi
            ),
        )
        for r in rows
    ]


def _settle(session: Session, ids: list[int], rejected: dict[int, tuple[int, str]]) -> None:
    """Delete accepted reports; mark rejected ones with their error (never resent)."""
    accepted = [i for i in ids if i not in rejected]
    if accepted:
        session.execute(delete(RealNameOutbox).where(RealNameOutbox.id.in_(accepted)))
    for row_id, (code, msg) in rejected.items():
        session.execute(
            update(RealNameOutbox)
            .where(RealNameOutbox.id == row_id)
            .values(errcode=code, errmsg=msg[:64], attempts=RealNameOutbox.attempts + 1)
        )


@dataclass
class DrainReport:
    """What one `drain` call did."""

    batches: int = 0
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    waiting: int = 0
    busy: bool = False
    error: str | None = None
    rejections: dict[str, int] = field(default_factory=dict)

    def count_rejection(self, reason: str) -> None:
        """Count one rejected report under `reason`."""
        self.rejections[reason] = self.rejections.get(reason, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return asdict(self)


def drain(
    sessions: sessionmaker[Session],
    platform_id: int,
    client: Uploader,
    *,
    holder: str | None = None,
    max_batches: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> DrainReport:
    """Upload the platform's outbox in order, batch by batch, until empty or `max_batches`."""
    holder = holder or f"drain-{uuid.uuid4().hex[:12]}"
    size = load_protocol().max_batch
    report = DrainReport()
    with transaction(sessions) as s:
        if not acquire_drainer(s, platform_id, holder, clock()):
            report.busy = True
            report.waiting = outbox_counts(s, platform_id)["waiting"]
            return report
    try:
        while max_batches is None or report.batches < max_batches:
            with transaction(sessions) as s:
                if not acquire_drainer(s, platform_id, holder, clock()):
                    report.busy = True
                    break
                batch = _next_batch(s, platform_id, size)
            if not batch:
                break
            ids = [i for i, _ in batch]
            rejected: dict[int, tuple[int, str]] = {}
            try:
                results = client.upload([b for _, b in batch])
            except CollectionRejected as exc:
                # the whole batch was refused for its content: keep every item with the error
                rejected = {i: (exc.code, exc.errmsg) for i in ids}
                results = []
            except InvalidInput as exc:
                if exc.index is None:
                    report.error = str(exc)
                    break
                # refused by the client before sending: keep that item aside, send the rest
                with transaction(sessions) as s:
                    _settle(s, [], {ids[exc.index]: (REFUSED_BY_CLIENT, f"INVALID {exc.field}")})
                report.rejected += 1
                report.count_rejection(f"INVALID {exc.field}")
                continue
            except (RealNameError, ValueError, OSError, httpx.HTTPError) as exc:
                report.error = f"{type(exc).__name__}: {exc}"
                break
            if not rejected:
                for r in results:
                    if 1 <= r.no <= len(ids) and r.errcode != 0:
                        rejected[ids[r.no - 1]] = (r.errcode, r.errmsg)
            with transaction(sessions) as s:
                _settle(s, ids, rejected)
            report.batches += 1
            report.sent += len(ids)
            report.rejected += len(rejected)
            report.accepted += len(ids) - len(rejected)
            for code, msg in rejected.values():
                report.count_rejection(msg or str(code))
            if progress is not None:
                progress(report.sent, len(ids))
    finally:
        with transaction(sessions) as s:
            release_drainer(s, platform_id, holder)
            report.waiting = outbox_counts(s, platform_id)["waiting"]
    return report
