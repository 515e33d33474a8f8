"""Ledger storage on SQLite and PostgreSQL: appends, concurrency, snapshots, proof bundles."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from qinglang.consent.ledger import GENESIS, Break, check_bundle, verify_chain
from qinglang.store import ledger, repo
from qinglang.store.db import session_factory, transaction, upgrade, writer
from qinglang.store.models import LedgerEntry

THREADS = 8
APPENDS_PER_THREAD = 50


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """The migrated test engine."""
    upgrade(db_engine)
    return db_engine


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions for writing (BEGIN IMMEDIATE on SQLite)."""
    return session_factory(writer(engine))


def _platform(sessions: sessionmaker[Session], slug: str = "demo") -> int:
    with transaction(sessions) as session:
        return repo.create_platform(session, slug, slug.title()).id


def _fill(sessions: sessionmaker[Session], platform_id: int, n: int) -> None:
    subjects = (None, "c1", "c2")
    with transaction(sessions) as session:
        for i in range(1, n + 1):
            ledger.append(session, platform_id, "consent.granted", subjects[i % 3], {"i": i})


def _verify(engine: Engine, platform_id: int) -> Break | None:
    with transaction(session_factory(ledger.snapshot_engine(engine))) as session:
        return ledger.verify(session, platform_id)


def test_appends_form_a_chain_that_verifies(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    pid = _platform(sessions)
    at = datetime(2026, 3, 2, 10, 15, 30, 123456, tzinfo=UTC)
    with transaction(sessions) as session:
        first = ledger.append(session, pid, "notice.published", None, {"version": 1}, at=at)
        second = ledger.append(
            session, pid, "consent.granted", "c1", {"purpose": "social"}, request_key="rk-1"
        )
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    body = json.loads(first.body)
    assert body["at"] == "2026-03-02T10:15:30.123456+00:00" and body["platform"] == pid
    _fill(sessions, pid, 18)
    with transaction(sessions) as session:
        assert ledger.verify(session, pid) is None
        head = ledger.head(session, pid)
        links = list(ledger.links(session, pid, batch=7))
        assert [x.seq for x in links] == list(range(1, 21))
        assert head == (20, links[-1].hash)
        hit = ledger.by_request_key(session, pid, "rk-1")
        assert hit is not None and hit.seq == 2
        assert ledger.by_request_key(session, pid, "rk-2") is None
        about = ledger.entries_about(session, pid, "c1")
        assert [e.seq for e in about] == [2, *range(3, 21, 3)]


def test_rolled_back_append_leaves_no_gap(engine: Engine, sessions: sessionmaker[Session]) -> None:
    pid = _platform(sessions)
    _fill(sessions, pid, 3)
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        ledger.append(session, pid, "consent.granted", "c1", {})
        raise RuntimeError("the recorded change failed")
    _fill(sessions, pid, 1)
    with transaction(sessions) as session:
        assert ledger.head(session, pid) is not None
        assert [x.seq for x in ledger.links(session, pid)] == [1, 2, 3, 4]
    assert _verify(engine, pid) is None


def test_naive_timestamp_is_refused_before_anything_is_written(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    pid = _platform(sessions)
    with pytest.raises(ValueError, match="naive"), transaction(sessions) as session:
        ledger.append(session, pid, "k", None, {}, at=datetime(2026, 1, 1))
    with transaction(sessions) as session:
        assert ledger.head(session, pid) is None
        assert ledger.verify(session, pid) is None


def test_platforms_have_separate_chains(engine: Engine, sessions: sessionmaker[Session]) -> None:
    a, b = _platform(sessions, "a"), _platform(sessions, "b")
    for _ in range(3):
        _fill(sessions, a, 2)
        _fill(sessions, b, 1)
    with transaction(sessions) as session:
        head_a = ledger.head(session, a)
        assert head_a is not None and head_a[0] == 6
        assert [x.seq for x in ledger.links(session, b)] == [1, 2, 3]
    assert _verify(engine, a) is None and _verify(engine, b) is None


def _run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_appends_never_fork_or_reuse_a_seq(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """8 connections append at once to a fresh platform (its head row does not exist yet)."""
    pid = _platform(sessions)

    def appender(i: int) -> None:
        for j in range(APPENDS_PER_THREAD):
            with transaction(sessions) as session:
                ledger.append(session, pid, "consent.granted", f"c{i}", {"thread": i, "j": j})

    assert _run_threads(THREADS, appender) == []
    total = THREADS * APPENDS_PER_THREAD
    with transaction(sessions) as session:
        rows = session.execute(
            select(LedgerEntry.seq, LedgerEntry.prev_hash, LedgerEntry.body).where(
                LedgerEntry.platform_id == pid
            )
        ).all()
        head = ledger.head(session, pid)
    assert sorted(seq for seq, _, _ in rows) == list(range(1, total + 1))
    assert len({prev for _, prev, _ in rows}) == total  # no two entries follow the same one
    per_thread = [json.loads(body)["data"] for _, _, body in rows]
    assert {(d["thread"], d["j"]) for d in per_thread} == {
        (i, j) for i in range(THREADS) for j in range(APPENDS_PER_THREAD)
    }
    assert head is not None and head[0] == total
    assert _verify(engine, pid) is None


def test_verifying_while_appending_sees_no_false_break(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Head and entries are read in one snapshot, so appends in between are not breaks."""
    pid = _platform(sessions)
    _fill(sessions, pid, 5)
    done = threading.Event()
    results: list[Break | None] = []

    def appender(i: int) -> None:
        try:
            for j in range(150):
                with transaction(sessions) as session:
                    ledger.append(session, pid, "consent.granted", "c1", {"j": j})
        finally:
            done.set()

    def verifier(i: int) -> None:
        while not done.is_set() or len(results) < 3:
            results.append(_verify(engine, pid))

    assert _run_threads(2, lambda i: (appender if i == 0 else verifier)(i)) == []
    assert len(results) >= 3 and set(results) == {None}


def test_build_bundle_shows_the_child_and_checks_out(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    pid = _platform(sessions)
    _fill(sessions, pid, 20)
    with transaction(sessions) as session:
        bundle = ledger.build_bundle(session, pid, "c1", platform_slug="demo")
        head = ledger.head(session, pid)
        about = [e.seq for e in ledger.entries_about(session, pid, "c1")]
    assert check_bundle(bundle) is None
    assert bundle["head"] == {"seq": 20, "hash": head[1] if head else None}
    assert [e["seq"] for e in bundle["entries"]] == list(range(1, 21))
    assert [e["seq"] for e in bundle["entries"] if "body" in e] == about
    assert all(set(e) == {"seq", "digest", "hash"} for e in bundle["entries"] if "body" not in e)
    assert '\\"c2\\"' not in json.dumps(bundle)  # nobody else's body is shown


def test_build_bundle_refuses_a_broken_chain(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    pid = _platform(sessions)
    _fill(sessions, pid, 10)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_entries WHERE seq = 4"))
    with transaction(sessions) as session, pytest.raises(ledger.ChainBroken) as caught:
        ledger.build_bundle(session, pid, "c1")
    assert caught.value.brk == Break(4, "entry 4 is missing (found sequence 5 next)")


def test_snapshot_engine_is_read_only_on_postgresql(engine: Engine) -> None:
    snap = ledger.snapshot_engine(engine)
    if engine.dialect.name != "postgresql":
        assert snap is engine
        return
    with snap.connect() as connection:
        level = connection.execute(text("SHOW transaction_isolation")).scalar_one()
        read_only = connection.execute(text("SHOW transaction_read_only")).scalar_one()
    assert (level, read_only) == ("repeatable read", "on")


def test_links_stream_in_sequence_order_with_columns(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    pid = _platform(sessions)
    _fill(sessions, pid, 4)
    with transaction(sessions) as session:
        links = list(ledger.links(session, pid, batch=3))
        count = session.scalar(select(func.count()).select_from(LedgerEntry))
    assert count == 4 and [x.seq for x in links] == [1, 2, 3, 4]
    for link in links:
        body = json.loads(link.body)
        assert link.columns == {"kind": body["kind"], "subject": body["subject"], "at": body["at"]}
    assert verify_chain(links, (4, links[-1].hash), platform_id=pid) is None
