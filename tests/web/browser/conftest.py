"""Browser tests: the whole app served on loopback, driven by Playwright with Debian's Chromium.

``live`` serves a fresh app (SQLite file, platform ``alpha`` with an API key) with uvicorn on a
free port of 127.0.0.1 in a thread; ``browser`` is one headless Chromium per test session
(``/usr/bin/chromium``, never downloaded). Without Chromium or the Playwright package the tests
skip with the reason, or fail under ``QINGLANG_REQUIRE_SERVICES=1`` (CI installs both).
axe-core is the copy shipped inside the ``axe-playwright-python`` package, injected into each
page by the test; nothing is fetched at test time.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from qinglang.api import Settings, create_app
from qinglang.store import console as console_store
from qinglang.store import repo
from qinglang.store.crypto import DataKey

from ..conftest import PASSWORD, PLATFORM

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}


def _unavailable(reason: str) -> None:
    if os.environ.get("QINGLANG_REQUIRE_SERVICES") == "1":
        pytest.fail(f"browser tests required but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Debian Chromium for the session (skips or fails if it is missing)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium fonts-noto-cjk)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@dataclass
class Live:
    """A served app: its base URL, the app object and a JSON API client for platform alpha."""

    url: str
    app: FastAPI
    api: httpx.Client

    def user(self, role: str, guardian: str | None = None, name: str | None = None) -> str:
        """Create a console user on alpha; returns the username (password: PASSWORD)."""
        username = name or f"{role}-{guardian or 'x'}"
        with self.app.state.service.tx(write=True) as s:
            p = repo.get_platform_by_slug(s, PLATFORM)
            assert p is not None
            if guardian is not None:
                repo.upsert_guardian(s, p.id, guardian)
            console_store.create_user(s, p, username, PASSWORD, role, guardian_external_id=guardian)
        return username


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """The whole app on SQLite, served on 127.0.0.1 in a thread."""
    import uvicorn

    monkeypatch.setenv("QINGLANG_DATA_KEY", DataKey.generate().to_b64())
    monkeypatch.setenv("QINGLANG_REALNAME_DRAIN", "off")
    monkeypatch.setenv("QINGLANG_CONSUMER", "off")
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path}/live.db", admin_token="live-admin"))
    with app.state.service.tx(write=True) as s:
        p = repo.create_platform(s, PLATFORM, "Alpha")
        p.decision_sample_rate = 1.0
        key = repo.issue_api_key(s, p, label="browser tests")
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the app did not start"
    url = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    try:
        yield Live(url, app, api)
    finally:
        api.close()
        server.should_exit = True
        thread.join(10)
        sock.close()
        app.state.service.engine.dispose()


@pytest.fixture
def page_of(browser: Any) -> Iterator[Callable[..., Any]]:
    """``page_of(viewport=DESKTOP, lang=None)``: a new page in a fresh context."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int] = DESKTOP) -> Any:
        # bypass_csp: the console's Content-Security-Policy forbids inline scripts, and the
        # test injects axe-core as one
        ctx = browser.new_context(viewport=viewport, locale="zh-CN", bypass_csp=True)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def sign_in(page: Any, live: Live, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait for the role's start page."""
    page.goto(f"{live.url}/console/login")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/console/login" not in page.url, page.content()[:2000]


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page (axe injected by the test)."""
    import axe_playwright_python

    script = Path(axe_playwright_python.__file__).with_name("axe.min.js").read_text("utf-8")
    page.add_script_tag(content=script)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def overflow(page: Any) -> int:
    """How many pixels the page is wider than the viewport (0: no horizontal overflow)."""
    width: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )
    return max(0, width)
