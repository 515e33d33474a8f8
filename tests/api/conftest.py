"""API test fixtures: an app on each backend, a registered platform and an authenticated client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from qinglang.api import Settings, create_app
from qinglang.store.crypto import DataKey

ADMIN = "admin-token-for-tests"


@pytest.fixture
def app_client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("QINGLANG_DATA_KEY", DataKey.generate().to_b64())
    # real-name reports are uploaded by explicit flushes in tests (one test runs the drainer)
    monkeypatch.setenv("QINGLANG_REALNAME_DRAIN", "off")
    app = create_app(Settings(db_url=db_url, admin_token=ADMIN))
    app.state.service.engine.echo = False
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.service.engine.dispose()


def register(client: TestClient, slug: str, overlay: str | None = None) -> str:
    body = {"slug": slug, "name": slug.title(), "decision_sample_rate": 1.0}
    if overlay is not None:
        body["policy_overlay"] = overlay
    r = client.post("/v1/platforms", json=body, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 201, r.text
    key: str = r.json()["api_key"]
    return key


@pytest.fixture
def api(app_client: TestClient) -> TestClient:
    """A client authenticated as platform 'video'."""
    key = register(app_client, "video")
    app_client.headers["Authorization"] = f"Bearer {key}"
    return app_client
