"""Event intake storage and the consumer lease, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from qinglang.risk.events import MAX_TEXT_CHARS
from qinglang.store import events as store_events
from qinglang.store import repo
from qinglang.store.db import transaction, writer
from qinglang.store.models import EventHead, StoredEvent

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def ev(i: int, kind: str = "message", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"e{i}",
        "kind": kind,
        "at": (T0 + timedelta(seconds=i)).isoformat(),
        "actor": "man",
    }
    if kind == "message":
        body.update(target="girl", text=f"你好 {i}")
    elif kind == "impression":
        body.update(item=f"v{i}", owner="girl", surface="recommended")
    elif kind == "gift":
        body.update(target="girl", amount_fen=100)
    else:
        body.update(target="girl")
    body.update(extra)
    return body


@pytest.fixture
def platform_id(session_maker: sessionmaker[Session]) -> int:
    with transaction(session_maker) as s:
        return repo.create_platform(s, "video", "Video").id


def ingest(sm: sessionmaker[Session], pid: int, raws: list[Any]) -> store_events.IntakeResult:
    with transaction(session_maker_writer(sm)) as s:
        return store_events.ingest(s, pid, raws)


def session_maker_writer(sm: sessionmaker[Session]) -> sessionmaker[Session]:
    bind = sm.kw["bind"]
    return sessionmaker(bind=writer(bind), expire_on_commit=False)


def stored(sm: sessionmaker[Session], pid: int) -> list[StoredEvent]:
    with transaction(sm) as s:
        return list(
            s.scalars(
                select(StoredEvent).where(StoredEvent.platform_id == pid).order_by(StoredEvent.seq)
            )
        )


def test_mixed_batch_keeps_the_good_ones(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    raws: list[Any] = [
        ev(0),
        {"id": "e1", "kind": "wave", "at": T0.isoformat(), "actor": "man"},  # bad kind
        ev(2, "impression"),
        ev(3, text="x" * (MAX_TEXT_CHARS + 1)),  # oversized message
        ev(4, "follow"),
        ev(5, text="bad \udcff byte"),  # invalid UTF-8 kept as a surrogate escape
        ev(6, actor="m\x00n"),  # NUL in an id
        ev(0),  # duplicate of index 0 in the same batch
        ev(0, text="something else"),  # same id, other content
        "not an object",
        ev(10, "gift"),
        ev(11, at="2026-05-01T12:00:00"),  # no offset
        ev(12, target="man"),  # to oneself
        ev(13, extra="x"),
    ]
    r = ingest(session_maker, platform_id, raws)
    assert r.received == len(raws)
    assert r.accepted == 4
    assert r.duplicates == [7]
    bad = {x.index: (x.field, x.message) for x in r.rejected}
    assert bad[1][0] == "kind"
    assert bad[3][0] == "text" and "longer than" in bad[3][1]
    assert bad[5] == ("text", "invalid UTF-8: byte 0xff at character 4")
    assert bad[6][0] == "actor"
    assert bad[8][0] == "id"
    assert bad[9][0] == "event"
    assert bad[11][0] == "at"
    assert bad[12][0] == "target"
    assert bad[13][0] == "extra"
    assert sorted(bad) == [1, 3, 5, 6, 8, 9, 11, 12, 13]
    rows = stored(session_maker, platform_id)
    assert [r.event_id for r in rows] == ["e0", "e2", "e4", "e10"]
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert rows[0].text == "你好 0"


def test_duplicates_across_batches(session_maker: sessionmaker[Session], platform_id: int) -> None:
    ingest(session_maker, platform_id, [ev(1), ev(2)])
    r = ingest(session_maker, platform_id, [ev(2), ev(3), ev(1, text="changed")])
    assert r.accepted == 1 and r.duplicates == [0]
    assert [(x.index, x.field) for x in r.rejected] == [(2, "id")]
    rows = stored(session_maker, platform_id)
    assert [(r.event_id, r.seq) for r in rows] == [("e1", 1), ("e2", 2), ("e3", 3)]
    assert rows[0].text == "你好 1"


def test_unknown_accounts_and_out_of_order_times_are_accepted(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    late = ev(1, at=(T0 - timedelta(days=3)).isoformat(), actor="nobody-registered")
    r = ingest(session_maker, platform_id, [ev(5), late, ev(3)])
    assert r.accepted == 3 and not r.rejected
    rows = stored(session_maker, platform_id)
    assert [r.event_id for r in rows] == ["e5", "e1", "e3"]  # arrival order, not time order
    assert rows[1].at == T0 - timedelta(days=3)


def test_message_text_is_encrypted_at_rest(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    ingest(session_maker, platform_id, [ev(1, text="你几岁了？住在哪里？")])
    with transaction(session_maker) as s:
        raw = s.execute(text("SELECT text FROM events")).scalar_one()
    assert "几岁" not in raw and ":" in raw


def test_a_failed_batch_stores_nothing(
    session_maker: sessionmaker[Session], platform_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(session_maker, platform_id, [ev(0)])
    calls: list[int] = []
    real_execute = Session.execute

    def execute(self: Session, stmt: Any, params: Any = None, *a: Any, **k: Any) -> Any:
        if isinstance(params, list) and params and "event_id" in params[0]:
            calls.append(len(params))
            real_execute(self, stmt, params[: len(params) // 2], *a, **k)
            raise RuntimeError("disk full")
        return real_execute(self, stmt, params, *a, **k)

    monkeypatch.setattr(Session, "execute", execute)
    with pytest.raises(RuntimeError):
        ingest(session_maker, platform_id, [ev(i) for i in range(1, 101)])
    monkeypatch.undo()
    assert calls == [100]
    assert [r.event_id for r in stored(session_maker, platform_id)] == ["e0"]
    with transaction(session_maker) as s:
        assert s.get(EventHead, platform_id).seq == 1  # type: ignore[union-attr]
    r = ingest(session_maker, platform_id, [ev(i) for i in range(1, 101)])
    assert r.accepted == 100
    assert len(stored(session_maker, platform_id)) == 101


def test_sequence_numbers_are_per_platform(session_maker: sessionmaker[Session]) -> None:
    with transaction(session_maker) as s:
        a = repo.create_platform(s, "a", "A").id
        b = repo.create_platform(s, "b", "B").id
    ingest(session_maker, a, [ev(1), ev(2)])
    ingest(session_maker, b, [ev(1)])
    ingest(session_maker, a, [ev(3)])
    assert [r.seq for r in stored(session_maker, a)] == [1, 2, 3]
    assert [r.seq for r in stored(session_maker, b)] == [1]
    with transaction(session_maker) as s:
        assert store_events.pending_platforms(s) == sorted([a, b])
        assert store_events.head_seq(s, a) == 3
        batch = store_events.events_after(s, a, 1, 10)
        assert [(seq, e.id) for seq, e in batch] == [(2, "e2"), (3, "e3")]
        replay = list(store_events.events_for_replay(s, a, 2, T0 + timedelta(seconds=2)))
        assert [e.id for e in replay] == ["e2"]
        total = s.scalar(select(func.count()).select_from(StoredEvent))
    assert total == 4


def test_lease_one_holder_at_a_time(session_maker: sessionmaker[Session], platform_id: int) -> None:
    w = session_maker_writer(session_maker)
    ttl = timedelta(seconds=30)
    with transaction(w) as s:
        a = store_events.acquire_lease(s, platform_id, "A", T0, ttl)
    assert a is not None and a.checkpoint == 0 and a.holder == "A"
    with transaction(w) as s:
        assert (
            store_events.acquire_lease(s, platform_id, "B", T0 + timedelta(seconds=29), ttl) is None
        )
    with transaction(w) as s:
        assert store_events.advance(s, platform_id, "A", 0, 10, T0, 10, T0, ttl)
    with transaction(w) as s:
        # A renewed at T0: B still waits until T0 + 30 s.
        assert (
            store_events.acquire_lease(s, platform_id, "B", T0 + timedelta(seconds=29), ttl) is None
        )
    with transaction(w) as s:
        b = store_events.acquire_lease(s, platform_id, "B", T0 + timedelta(seconds=31), ttl)
    assert b is not None and b.checkpoint == 10 and b.holder == "B"
    with transaction(w) as s:
        # A comes back: its lease is gone, its write is refused.
        assert not store_events.advance(s, platform_id, "A", 10, 20, T0, 10, T0, ttl)
        assert (
            store_events.acquire_lease(s, platform_id, "A", T0 + timedelta(seconds=32), ttl) is None
        )
    with transaction(w) as s:
        store_events.release(s, platform_id, "B")
    with transaction(w) as s:
        again = store_events.acquire_lease(s, platform_id, "A", T0 + timedelta(seconds=33), ttl)
    assert again is not None and again.checkpoint == 10
    with transaction(session_maker) as s:
        status = store_events.consumer_status(s, platform_id)
    assert status["processed"] == 10 and status["lease_holder"] == "A"
