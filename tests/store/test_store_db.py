"""Engines, transactions and encryption at rest, against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from qinglang.store import repo
from qinglang.store.crypto import ENV_DATA_KEY, DataKey, DataKeyError, keyring_of
from qinglang.store.db import make_engine, session_factory, transaction, upgrade
from qinglang.store.models import Account, Guardian, Platform


def _platform(session_maker: sessionmaker[Session], slug: str = "demo") -> int:
    with transaction(session_maker) as session:
        return repo.create_platform(session, slug, "Demo").id


# --- transactions ------------------------------------------------------------------------


def test_transaction_commits(session_maker: sessionmaker[Session]) -> None:
    platform_id = _platform(session_maker)
    with transaction(session_maker) as session:
        repo.upsert_account(session, platform_id, "u1", birth_date=date(2012, 5, 1))
    with session_maker() as session:
        account = repo.get_account(session, platform_id, "u1")
        assert account is not None
        assert account.birth_date == date(2012, 5, 1)


def test_exception_mid_batch_writes_nothing(session_maker: sessionmaker[Session]) -> None:
    platform_id = _platform(session_maker)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction(session_maker) as session:
        for n in range(50):
            repo.upsert_account(session, platform_id, f"u{n}", sex="F")
            if n == 25:
                raise Boom
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0


def test_database_error_mid_batch_writes_nothing(session_maker: sessionmaker[Session]) -> None:
    """A constraint violation after good rows leaves none of them (savepoints included)."""
    platform_id = _platform(session_maker)
    with pytest.raises(StatementError), transaction(session_maker) as session:
        repo.upsert_account(session, platform_id, "a")
        repo.upsert_account(session, platform_id, "b")
        session.add(Account(platform_id=platform_id, external_id="a", settings={}))
        session.flush()
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0


# --- encryption at rest ------------------------------------------------------------------


def test_birth_date_is_encrypted_at_rest(
    session_maker: sessionmaker[Session], db_engine: Engine, data_key: DataKey
) -> None:
    platform_id = _platform(session_maker)
    with transaction(session_maker) as session:
        repo.upsert_account(session, platform_id, "child", birth_date=date(2012, 5, 1))
        repo.upsert_guardian(session, platform_id, "mum", display_name="王芳")
    with db_engine.connect() as connection:
        raw_date = connection.execute(text("SELECT birth_date FROM accounts")).scalar_one()
        raw_name = connection.execute(text("SELECT display_name FROM guardians")).scalar_one()
    assert isinstance(raw_date, str)
    assert "2012" not in raw_date
    assert raw_date.startswith(f"{data_key.key_id}:")
    assert "王芳" not in raw_name
    assert raw_name.startswith(f"{data_key.key_id}:")


def test_reading_with_the_wrong_key_fails_clearly(
    session_maker: sessionmaker[Session], db_url: str, data_key: DataKey
) -> None:
    platform_id = _platform(session_maker)
    with transaction(session_maker) as session:
        repo.upsert_account(session, platform_id, "child", birth_date=date(2012, 5, 1))
    wrong = make_engine(db_url, data_key=DataKey.generate())
    try:
        with session_factory(wrong)() as session, pytest.raises(DataKeyError) as caught:
            repo.get_account(session, platform_id, "child")
        assert data_key.key_id in str(caught.value)
    finally:
        wrong.dispose()


def test_engine_without_key_refuses_encrypted_columns(
    session_maker: sessionmaker[Session], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform_id = _platform(session_maker)
    monkeypatch.delenv(ENV_DATA_KEY, raising=False)
    keyless = make_engine(db_url, provision_key=False)
    try:
        assert keyring_of(keyless) is None
        keyless_sessions = session_factory(keyless)
        with (
            pytest.raises(StatementError, match="no data key configured"),
            transaction(keyless_sessions) as session,
        ):
            repo.upsert_account(session, platform_id, "x", birth_date=date(2012, 5, 1))
        with keyless_sessions() as session:  # unencrypted columns still work
            assert repo.get_platform(session, platform_id) is not None
    finally:
        keyless.dispose()


def test_keys_are_per_engine(db_url: str, session_maker: sessionmaker[Session]) -> None:
    """Two engines in one process keep their own keys (no global state)."""
    first, second = DataKey.generate(), DataKey.generate()
    e1, e2 = make_engine(db_url, data_key=first), make_engine(db_url, data_key=second)
    try:
        ring1, ring2 = keyring_of(e1), keyring_of(e2)
        assert ring1 is not None and ring2 is not None
        assert ring1.primary == first
        assert ring2.primary == second
    finally:
        e1.dispose()
        e2.dispose()


def test_env_key_is_used(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    key = DataKey.generate()
    monkeypatch.setenv(ENV_DATA_KEY, key.to_b64())
    engine = make_engine(db_url)
    try:
        ring = keyring_of(engine)
        assert ring is not None
        assert ring.primary == key
    finally:
        engine.dispose()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=st.text(max_size=200), born=st.dates(date(1900, 1, 1), date(2100, 12, 31)))
def test_encrypted_columns_round_trip_through_the_database(
    session_maker: sessionmaker[Session], name: str, born: date
) -> None:
    """Any text (even NUL, which PostgreSQL TEXT cannot hold) and any date survive storage."""
    with transaction(session_maker) as session:
        platform = repo.get_platform_by_slug(session, "rt") or repo.create_platform(
            session, "rt", "Round trip"
        )
        repo.upsert_guardian(session, platform.id, "g", display_name=name)
        repo.upsert_account(session, platform.id, "a", birth_date=born)
        platform_id = platform.id
    with session_maker() as session:
        guardian = repo.get_guardian(session, platform_id, "g")
        account = repo.get_account(session, platform_id, "a")
        assert guardian is not None and account is not None
        assert guardian.display_name == name
        assert account.birth_date == born


# --- engine configuration ----------------------------------------------------------------


def test_timestamps_are_aware_utc(session_maker: sessionmaker[Session]) -> None:
    platform_id = _platform(session_maker)
    later = datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    with transaction(session_maker) as session:
        platform = session.get(Platform, platform_id)
        assert platform is not None
        repo.log_decision(
            session,
            platform,
            kind="contact",
            action="dm",
            outcome="deny",
            rule_ids=[],
            at=later,
            always=True,
        )
    with session_maker() as session:
        platform = session.get(Platform, platform_id)
        assert platform is not None
        assert platform.created_at.tzinfo is not None
        assert platform.created_at.utcoffset() == timedelta(0)
        assert abs(platform.created_at - datetime.now(UTC)) < timedelta(minutes=5)
        (entry,) = repo.recent_decisions(session, platform_id)
        assert entry.at == later
        assert entry.at.tzinfo == UTC


def test_naive_datetimes_are_refused(session_maker: sessionmaker[Session]) -> None:
    platform_id = _platform(session_maker)
    with (
        pytest.raises(StatementError, match="naive datetime"),
        transaction(session_maker) as session,
    ):
        platform = session.get(Platform, platform_id)
        assert platform is not None
        repo.log_decision(
            session,
            platform,
            kind="contact",
            action="dm",
            outcome="deny",
            rule_ids=[],
            at=datetime(2026, 3, 1, 12, 0),
            always=True,
        )


def test_sqlite_pragmas(tmp_path: Path, data_key: DataKey) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}", data_key=data_key)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_sqlite_key_file_is_provisioned_next_to_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_DATA_KEY, raising=False)
    database = tmp_path / "q.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        key_file = tmp_path / "q.db.key"
        assert key_file.is_file()
        if os.name == "posix":
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        ring = keyring_of(engine)
        assert ring is not None
        assert ring.primary == DataKey.from_b64(key_file.read_text())
        upgrade(engine)
        with transaction(session_factory(engine)) as session:
            platform = repo.create_platform(session, "p", "P")
            repo.upsert_account(session, platform.id, "a", birth_date=date(2011, 1, 2))
    finally:
        engine.dispose()
    reopened = make_engine(f"sqlite:///{database}")
    try:
        with session_factory(reopened)() as session:
            account = session.scalars(select(Account)).one()
            assert account.birth_date == date(2011, 1, 2)
    finally:
        reopened.dispose()


def test_in_memory_sqlite_gets_an_ephemeral_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_DATA_KEY, raising=False)
    engine = make_engine("sqlite://")
    try:
        assert keyring_of(engine) is not None
    finally:
        engine.dispose()


def test_postgresql_without_driver_uses_psycopg() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none", provision_key=False)
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_guardian_model_is_exported() -> None:
    assert Guardian.__tablename__ == "guardians"


def test_writers_in_two_processes_never_see_database_locked(tmp_path: Path) -> None:
    """Read-then-write transactions from two processes on one SQLite file all commit."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    with transaction(session_factory(make_engine(url))) as s:
        repo.create_platform(s, "p", "P")
    worker = (
        "import sys\n"
        "from qinglang.store import make_engine, repo, session_factory, transaction, writer\n"
        f"sessions = session_factory(writer(make_engine({url!r})))\n"
        "for i in range(150):\n"
        "    with transaction(sessions) as s:\n"
        "        p = repo.get_platform_by_slug(s, 'p')\n"  # read first, then write
        "        repo.upsert_account(s, p.id, f'{sys.argv[1]}-{i}', settings={'n': i})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", worker, name], stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    with transaction(session_factory(make_engine(url))) as s:
        assert s.scalar(select(func.count()).select_from(Account)) == 300
