"""Console test fixtures: an app on each backend, console users, logged-in clients.

``console_app`` is the whole app (API and console) on ``db_url`` (SQLite and PostgreSQL) with
two platforms, ``alpha`` (where ``make_user`` puts users by default) and ``beta``.
``make_user(role, guardian=None)`` creates a console user and returns ``(username, password)``;
for role ``guardian``, ``guardian`` is the guardian's external id (the ``guardians`` row is
created if missing). ``login(client, username, password)`` signs in through the form and returns
the client, which then knows its session's CSRF token as ``client.csrf``.
Missing translations raise (``QINGLANG_I18N_STRICT=1``) and passwords use cheap argon2
parameters so that the tests stay fast.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qinglang.api import Settings, create_app
from qinglang.store import console as console_store
from qinglang.store import repo
from qinglang.store.crypto import DataKey

ADMIN_TOKEN = "admin-token-for-console-tests"
PLATFORM = "alpha"
OTHER_PLATFORM = "beta"
PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

MakeUser = Callable[..., tuple[str, str]]
Login = Callable[[TestClient, str, str], TestClient]


@pytest.fixture(autouse=True)
def _strict_and_fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Missing translations raise; argon2 runs with test parameters (restored afterwards)."""
    monkeypatch.setenv("QINGLANG_I18N_STRICT", "1")
    before = console_store.password_hasher()
    console_store.use_password_hasher(FAST_HASHER)
    yield
    console_store.use_password_hasher(before)


@pytest.fixture
def console_app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    """The app (API and console) on ``db_url`` with platforms ``alpha`` and ``beta``."""
    monkeypatch.setenv("QINGLANG_DATA_KEY", DataKey.generate().to_b64())
    monkeypatch.setenv("QINGLANG_REALNAME_DRAIN", "off")
    app = create_app(Settings(db_url=db_url, admin_token=ADMIN_TOKEN))
    service = app.state.service
    service.engine.echo = False
    with service.tx(write=True) as s:
        repo.create_platform(s, PLATFORM, "Alpha")
        repo.create_platform(s, OTHER_PLATFORM, "Beta")
    yield app
    service.engine.dispose()


@pytest.fixture
def platform_id(console_app: FastAPI) -> int:
    """The id of platform ``alpha`` (where ``make_user`` puts users by default)."""
    with console_app.state.service.tx() as s:
        platform = repo.get_platform_by_slug(s, PLATFORM)
        assert platform is not None
        return platform.id


@pytest.fixture
def client(console_app: FastAPI) -> Iterator[TestClient]:
    """A client of ``console_app`` (not signed in; redirects are not followed)."""
    with TestClient(console_app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def make_user(console_app: FastAPI) -> MakeUser:
    """``make_user(role, guardian=None, *, platform="alpha", username=None, password=...)``."""
    counter = itertools.count(1)

    def make(
        role: str,
        guardian: str | None = None,
        *,
        platform: str = PLATFORM,
        username: str | None = None,
        password: str = PASSWORD,
    ) -> tuple[str, str]:
        name = username or f"{role.replace('_', '-')}-{platform}-{next(counter)}"
        with console_app.state.service.tx(write=True) as s:
            p = repo.get_platform_by_slug(s, platform)
            assert p is not None, platform
            if guardian is not None:
                repo.upsert_guardian(s, p.id, guardian)
            console_store.create_user(s, p, name, password, role, guardian_external_id=guardian)
        return name, password

    return make


def sign_in(client: TestClient, username: str, password: str, **extra: Any) -> Any:
    """Post the login form (after fetching it for its CSRF cookie); return the response."""
    page = client.get("/console/login")
    assert page.status_code == 200, page.text
    token = client.cookies.get("ql_login_csrf")
    assert token
    form = {"username": username, "password": password, "csrf_token": token, **extra}
    return client.post("/console/login", data=form, follow_redirects=False)


@pytest.fixture
def login(console_app: FastAPI) -> Login:
    """``login(client, username, password)``: sign in; the client gets ``.csrf``."""

    def do(client: TestClient, username: str, password: str) -> TestClient:
        r = sign_in(client, username, password)
        assert r.status_code == 303, r.text
        token = client.cookies.get("ql_session")
        assert token
        with console_app.state.service.tx() as s:
            found = console_store.session_by_token(s, token)
            assert found is not None
            client.csrf = found[0].csrf_token
        return client

    return do
