"""Shared pytest fixtures: a database URL per backend (SQLite, PostgreSQL), migrated sessions, keys.

``db_url`` is parametrised over ``sqlite`` (a fresh file per test) and ``postgresql``
(``postgresql+psycopg://127.0.0.1:5432/test``, or env ``QINGLANG_TEST_POSTGRES_URL``). Each
PostgreSQL test gets its own freshly created schema, named after the xdist worker plus a random
suffix and selected through ``options=-csearch_path=<schema>`` in the URL, so the URL alone is
enough for any engine (the API tests reuse it) and parallel workers never meet. The schema is
dropped afterwards. If PostgreSQL is unreachable the postgresql cases are skipped with the
reason, or fail when ``QINGLANG_REQUIRE_SERVICES=1``.

qinglang.store is imported lazily so that a broken store does not break unrelated tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from qinglang.store.crypto import DataKey

POSTGRES_URL_ENV = "QINGLANG_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"
REQUIRE_SERVICES_ENV = "QINGLANG_REQUIRE_SERVICES"


def services_required() -> bool:
    """Whether missing services must fail the run instead of skipping (CI sets this)."""
    return os.environ.get(REQUIRE_SERVICES_ENV) == "1"


def postgres_url() -> str:
    """The PostgreSQL URL the tests use (without a per-test schema)."""
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_admin_engine() -> Iterator[Engine]:
    """A connection-checked engine on the test PostgreSQL database; skips/fails if unreachable."""
    url = make_url(postgres_url())
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        where = f"{url.host or '127.0.0.1'}:{url.port or 5432}"
        cause = getattr(exc, "orig", None) or exc
        detail = " ".join(str(cause).split()) or type(cause).__name__
        reason = f"PostgreSQL not reachable at {where}: {detail}"
        if services_required():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    yield engine
    engine.dispose()


def _fresh_schema_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"qltest_{worker}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def postgres_schema_url(postgres_admin_engine: Engine) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL schema for this test only; dropped afterwards."""
    schema = _fresh_schema_name()
    with postgres_admin_engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with postgres_admin_engine.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, as a SQLAlchemy URL: an SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'qinglang.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def data_key() -> DataKey:
    """A fresh random data key for this test."""
    from qinglang.store.crypto import DataKey

    return DataKey.generate()


@pytest.fixture
def db_engine(db_url: str, data_key: DataKey) -> Iterator[Engine]:
    """An engine on ``db_url`` carrying ``data_key`` (not migrated)."""
    from qinglang.store.db import make_engine

    engine = make_engine(db_url, data_key=data_key)
    yield engine
    engine.dispose()


@pytest.fixture
def session_maker(db_engine: Engine) -> sessionmaker[Session]:
    """A session factory on a database migrated to head."""
    from qinglang.store.db import session_factory, upgrade

    upgrade(db_engine)
    return session_factory(db_engine)
