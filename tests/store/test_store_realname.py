"""Real-name storage on SQLite and PostgreSQL: sessions queue reports, the outbox drains in order,
rejected items are kept with their error, one drainer per platform, nothing lost on failure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from qinglang.realname.protocol import (
    Behaviour,
    BehaviourType,
    CollectionRejected,
    ItemResult,
    PlayerType,
    ServerError,
    error_for,
)
from qinglang.store import realname as store
from qinglang.store import repo
from qinglang.store.db import transaction
from qinglang.store.models import Account, Platform, RealNameOutbox

T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PI = "1fffbjzos82bs9cnyj1dna7d6d29zg4esnh99u"
SECRET = "2836e95fcd10e04b0069bb1ee659955b"


class FakeUploader:
    """Records batches; rejects the item numbers listed in `reject` (per batch index)."""

    def __init__(self, reject: dict[int, list[int]] | None = None, fail_at: int | None = None):
        self.batches: list[list[Behaviour]] = []
        self.reject = reject or {}
        self.fail_at = fail_at

    def upload(self, items: Sequence[Behaviour]) -> list[ItemResult]:
        n = len(self.batches)
        if self.fail_at is not None and n == self.fail_at:
            raise error_for(1001, "SYS ERROR")
        assert 1 <= len(items) <= 128
        self.batches.append(list(items))
        return [ItemResult(no, 3010, "BUS COLL PLAYERID INVALID") for no in self.reject.get(n, [])]


@pytest.fixture
def world(session_maker: sessionmaker[Session]) -> Platform:
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "game", "Game")
        repo.upsert_account(s, p.id, "kid", birth_date=date(2013, 1, 1))
        store.configure(
            s, p.id, base_url="http://127.0.0.1:1/", app_id="a", biz_id="b", secret=SECRET
        )
        s.expunge(p)
        return p


def account(s: Session, p: Platform) -> Account:
    a = repo.get_account(s, p.id, "kid")
    assert a is not None
    return a


def fill(sm: sessionmaker[Session], p: Platform, sessions: int) -> list[str]:
    """Open and close `sessions` game sessions: 2 reports each, in order."""
    sis = []
    with transaction(sm) as s:
        a = account(s, p)
        for i in range(sessions):
            gs = store.start_session(s, a, T + timedelta(minutes=i), pi=PI, di=None)
            store.end_session(s, gs, T + timedelta(minutes=i, seconds=30), pi=PI)
            sis.append(gs.si)
    return sis


def test_session_queues_login_and_logout_in_one_transaction(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    (si,) = fill(session_maker, world, 1)
    with transaction(session_maker) as s:
        rows = s.scalars(select(RealNameOutbox).order_by(RealNameOutbox.id)).all()
        assert [(r.si, r.bt, r.ct, r.pi) for r in rows] == [(si, 1, 0, PI), (si, 0, 0, PI)]
        assert rows[0].ot == int(T.timestamp())
        gs = store.session_by_si(s, world.id, si)
        assert gs is not None
        _, ended = store.end_session(s, gs, T + timedelta(hours=1), pi=PI)
        assert not ended  # a second end queues nothing
    with transaction(session_maker) as s:
        assert s.scalar(select(func.count()).select_from(RealNameOutbox)) == 2


def test_pi_is_encrypted_at_rest(session_maker: sessionmaker[Session], world: Platform) -> None:
    fill(session_maker, world, 1)
    with session_maker() as s:
        raw = s.connection().exec_driver_sql("SELECT pi FROM realname_outbox").scalars().all()
    assert raw and all(PI not in str(v) for v in raw)


def test_guest_session_reports_device(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    with transaction(session_maker) as s:
        gs = store.start_session(s, account(s, world), T, pi=None, di="d" * 32)
        store.end_session(s, gs, T + timedelta(minutes=5), pi=None)
    with transaction(session_maker) as s:
        rows = s.scalars(select(RealNameOutbox)).all()
        assert {(r.ct, r.di, r.pi) for r in rows} == {(int(PlayerType.GUEST), "d" * 32, None)}


def test_drain_uploads_in_order_in_batches_and_empties(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    sis = fill(session_maker, world, 150)  # 300 reports → 128 + 128 + 44
    up = FakeUploader()
    seen: list[int] = []
    report = store.drain(session_maker, world.id, up, progress=lambda done, n: seen.append(n))
    assert [len(b) for b in up.batches] == [128, 128, 44] == seen
    sent = [(b.si, b.bt) for batch in up.batches for b in batch]
    assert sent == [(si, bt) for si in sis for bt in (BehaviourType.LOGIN, BehaviourType.LOGOUT)]
    assert (report.sent, report.accepted, report.rejected, report.waiting) == (300, 300, 0, 0)
    with transaction(session_maker) as s:
        assert store.outbox_counts(s, world.id) == {"waiting": 0, "rejected": 0}


def test_rejected_items_are_kept_with_their_error_and_not_resent(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    fill(session_maker, world, 5)
    up = FakeUploader(reject={0: [2, 7]})
    report = store.drain(session_maker, world.id, up)
    assert (report.accepted, report.rejected) == (8, 2)
    assert report.rejections == {"BUS COLL PLAYERID INVALID": 2}
    with transaction(session_maker) as s:
        assert store.outbox_counts(s, world.id) == {"waiting": 0, "rejected": 2}
        kept = s.scalars(select(RealNameOutbox)).all()
        assert {r.errcode for r in kept} == {3010}
    again = FakeUploader()
    assert store.drain(session_maker, world.id, again).sent == 0
    assert again.batches == []


def test_a_failed_upload_keeps_everything_for_the_next_run(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    fill(session_maker, world, 100)  # 200 reports
    first = FakeUploader(fail_at=1)
    report = store.drain(session_maker, world.id, first)
    assert report.error is not None and "SYS ERROR" in report.error
    assert (report.sent, report.waiting) == (128, 72)
    second = FakeUploader()
    assert store.drain(session_maker, world.id, second).sent == 72
    with transaction(session_maker) as s:
        assert store.outbox_counts(s, world.id)["waiting"] == 0
    assert isinstance(error_for(1001, "SYS ERROR"), ServerError)


def test_a_whole_batch_refused_for_content_is_kept_as_rejected(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    fill(session_maker, world, 2)

    class Refuse(FakeUploader):
        def upload(self, items: Sequence[Behaviour]) -> list[ItemResult]:
            raise error_for(3003, "BUS COLL OVER LIMIT COUNT")

    report = store.drain(session_maker, world.id, Refuse())
    assert report.rejected == 4 and report.error is None
    assert isinstance(error_for(3003, "BUS COLL OVER LIMIT COUNT"), CollectionRejected)


def test_one_drainer_per_platform(session_maker: sessionmaker[Session], world: Platform) -> None:
    fill(session_maker, world, 1)
    with transaction(session_maker) as s:
        assert store.acquire_drainer(s, world.id, "other", T.replace(year=2099))
    busy = store.drain(session_maker, world.id, FakeUploader(), clock=lambda: T)
    assert busy.busy and busy.sent == 0 and busy.waiting == 2
    # an expired lease is taken over
    later = T.replace(year=2099) + timedelta(hours=1)
    done = store.drain(session_maker, world.id, FakeUploader(), clock=lambda: later)
    assert done.sent == 2 and not done.busy


def test_minutes_played_counts_overlap_with_the_day(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    day = datetime(2026, 5, 1, tzinfo=UTC)
    with transaction(session_maker) as s:
        a = account(s, world)
        old = store.start_session(s, a, day - timedelta(minutes=30), pi=PI, di=None)
        store.end_session(s, old, day + timedelta(minutes=20), pi=PI)
        store.start_session(s, a, day + timedelta(hours=2), pi=PI, di=None)  # still open
        assert store.minutes_played(s, a.id, day, day + timedelta(hours=2, minutes=15)) == 35


def test_checks_keep_ai_while_pending_and_renew_after_failure(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    with transaction(session_maker) as s:
        a = account(s, world)
        first = store.begin_check(s, a, "nppa", T)
        ai = first.ai
        assert len(ai) == 32 and first.status == "pending"
        assert store.begin_check(s, a, "nppa", T).ai == ai
        store.record_result(first, "failed", None, "no match", T)
        assert store.begin_check(s, a, "nppa", T).ai != ai
        row = store.check_of(s, a.id)
        assert row is not None
        store.record_result(row, "ok", PI, None, T)
    with session_maker() as s:
        raw = s.connection().exec_driver_sql("SELECT pi FROM realname_checks").scalar_one()
    assert PI not in str(raw)


def test_an_item_the_client_refuses_is_set_aside_and_the_rest_sent(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    from qinglang.realname.client import InvalidInput

    fill(session_maker, world, 2)
    with transaction(session_maker) as s:
        store.enqueue(
            s,
            world.id,
            Behaviour(si="short", bt=BehaviourType.LOGIN, ot=1, ct=PlayerType.VERIFIED, pi=PI),
        )

    class Strict(FakeUploader):
        def upload(self, items: Sequence[Behaviour]) -> list[ItemResult]:
            for i, b in enumerate(items):
                if len(b.si) != 32:
                    raise InvalidInput(f"collections[{i}].si", "must be 32 characters", i)
            return super().upload(items)

    up = Strict()
    report = store.drain(session_maker, world.id, up)
    assert (report.accepted, report.rejected, report.waiting) == (4, 1, 0)
    assert report.rejections == {"INVALID collections[4].si": 1}
    with transaction(session_maker) as s:
        assert store.outbox_counts(s, world.id) == {"waiting": 0, "rejected": 1}


def test_a_network_failure_stops_the_run_and_keeps_the_batch(
    session_maker: sessionmaker[Session], world: Platform
) -> None:
    import httpx

    fill(session_maker, world, 1)

    class Down(FakeUploader):
        def upload(self, items: Sequence[Behaviour]) -> list[ItemResult]:
            raise httpx.ConnectError("connection refused")

    report = store.drain(session_maker, world.id, Down())
    assert report.error is not None and "ConnectError" in report.error
    assert report.waiting == 2
