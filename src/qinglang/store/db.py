"""Engines, sessions, all-or-nothing transactions and Alembic migrations for the qinglang store.

SQLite (the embedded default, ``sqlite:///./qinglang.db``) gets foreign keys, WAL and real
``BEGIN``/``SAVEPOINT`` handling; PostgreSQL is used through psycopg 3
(``postgresql+psycopg://user@host/db``; a bare ``postgresql://`` URL is given that driver).
How the data key is chosen is described in :mod:`qinglang.store.crypto`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from qinglang.store.crypto import (
    DataKey,
    KeyRing,
    attach_keyring,
    key_path_for_sqlite,
    load_or_create_key,
)

DEFAULT_URL: Final = "sqlite:///./qinglang.db"
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS: Final = 10_000
"""How long an SQLite connection waits for another process's write lock."""


def _normalise_url(url: str | URL) -> URL:
    sa_url = make_url(url)
    if sa_url.drivername in ("postgresql", "postgres"):
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    return sa_url


def _sqlite_database_file(sa_url: URL) -> Path | None:
    database = sa_url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    if sa_url.query.get("mode") == "memory":
        return None
    return Path(database)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy so that BEGIN, SAVEPOINT and transactional
        # DDL behave as documented (the sqlite3 module's implicit transactions do not).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


_BEGIN_OPTION: Final = "qinglang_sqlite_begin"


def writer(engine: Engine) -> Engine:
    """The same engine (pool, data key) for transactions that will write.

    On SQLite they start with ``BEGIN IMMEDIATE``: the write lock is taken (waiting up to the
    busy timeout) before the first read, so a transaction that reads and then writes never
    fails with "database is locked" when another process wrote in between. Elsewhere this is
    the engine itself.
    """
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})


def _resolve_keys(
    sa_url: URL, data_key: DataKey | KeyRing | None, provision_key: bool
) -> KeyRing | None:
    if data_key is not None:
        return KeyRing.of(data_key)
    from_env = KeyRing.from_env()
    if from_env is not None or not provision_key:
        return from_env
    if sa_url.get_backend_name() == "sqlite":
        database = _sqlite_database_file(sa_url)
        if database is None:
            return KeyRing(DataKey.generate())  # in-memory data dies with the engine
        return load_or_create_key(key_path_for_sqlite(database))
    return None


def make_engine(
    url: str | URL = DEFAULT_URL,
    *,
    data_key: DataKey | KeyRing | None = None,
    provision_key: bool = True,
    **engine_kwargs: Any,
) -> Engine:
    """Create an engine for SQLite or PostgreSQL with the data key attached (see module doc)."""
    sa_url = _normalise_url(url)
    if sa_url.get_backend_name() == "sqlite":
        engine = create_engine(sa_url, **engine_kwargs)
        _configure_sqlite(engine)
    else:
        engine_kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(sa_url, **engine_kwargs)
    keys = _resolve_keys(sa_url, data_key, provision_key)
    if keys is not None:
        attach_keyring(engine, keys)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session in a transaction: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def alembic_config() -> Config:
    """Return an Alembic config pointing at the packaged migrations (independent of the CWD)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@contextmanager
def _engine_for(target: str | URL | Engine) -> Iterator[Engine]:
    if isinstance(target, Engine):
        yield target
        return
    engine = make_engine(target, provision_key=False)
    try:
        yield engine
    finally:
        engine.dispose()


def upgrade(target: str | URL | Engine = DEFAULT_URL, revision: str = "head") -> None:
    """Migrate the database at ``target`` (URL or engine) up to ``revision``, in one transaction."""
    config = alembic_config()
    with _engine_for(target) as engine, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(target: str | URL | Engine, revision: str) -> None:
    """Migrate the database at ``target`` down to ``revision`` ("base" empties it)."""
    config = alembic_config()
    with _engine_for(target) as engine, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(target: str | URL | Engine) -> str | None:
    """Return the Alembic revision the database is at, or None if unmigrated."""
    with _engine_for(target) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
