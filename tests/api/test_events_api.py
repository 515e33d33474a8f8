"""POST /v1/events on SQLite and PostgreSQL: the intake contract, bad input, crash safety, and the
case end to end (events → consumer → alert → automatic restriction → contact denied)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qinglang.api.routers import events as events_router
from qinglang.api.service import Service
from qinglang.risk.consumer import Consumer
from qinglang.store.models import StoredEvent

from .test_api import assert_problem, put_account

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_background_consumer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests drain the consumer themselves (run_once), so the app runs none in the background."""
    monkeypatch.setenv("QINGLANG_CONSUMER", "off")
    yield


def drain(api: TestClient, holder: str = "test") -> Any:
    service: Service = api.app.state.service  # type: ignore[attr-defined]
    consumer = Consumer(service.sessions, service.write_sessions, service.policy_for, holder=holder)
    return consumer.run_once()


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
        body.update(item=f"v{i}", owner="girl", surface="searched")
    else:
        body.update(target="girl")
    body.update(extra)
    return body


def stored_count(api: TestClient) -> int:
    service: Service = api.app.state.service  # type: ignore[attr-defined]
    with service.tx() as s:
        return int(s.scalar(select(func.count()).select_from(StoredEvent)) or 0)


def post(api: TestClient, events: list[Any]) -> dict[str, Any]:
    r = api.post("/v1/events", json={"events": events})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_mixed_batch_contract(api: TestClient) -> None:
    body = post(
        api,
        [
            ev(0),
            ev(1, kind="wave"),
            ev(2, "impression"),
            ev(3, text="长" * 20_001),
            ev(0),
            ev(5, at="yesterday"),
            ev(6, "follow", actor="not-registered", target="nobody-either"),
            ev(7, at=(T0 - timedelta(days=30)).isoformat()),  # out of order: accepted
        ],
    )
    assert body["received"] == 8 and body["accepted"] == 4
    assert body["duplicates"] == [4]
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "events.1.kind"),
        (3, "events.3.text"),
        (5, "events.5.at"),
    ]
    assert stored_count(api) == 4
    again = post(api, [ev(0), ev(2, "impression"), ev(8)])
    assert again["accepted"] == 1 and again["duplicates"] == [0, 1]
    assert stored_count(api) == 5
    status = api.get("/v1/events/status").json()
    assert status["stored"] == 5 and status["processed"] == 0 and status["lag"] == 5


def test_batch_limits_name_the_field(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    r = api.post("/v1/events", json={"events": [ev(i) for i in range(10_001)]})
    body = assert_problem(r, 413, "events")
    assert "10,000" in body["detail"]
    assert_problem(api.post("/v1/events", json={"events": []}), 422, "events")
    assert_problem(api.post("/v1/events", json={"event": [ev(1)]}), 422, "event")
    assert_problem(api.post("/v1/events", json=[ev(1)]), 422, "body")
    r = api.post(
        "/v1/events", content=b'{"events": [', headers={"content-type": "application/json"}
    )
    assert_problem(r, 400, "body")
    monkeypatch.setattr(events_router, "MAX_BODY_BYTES", 1000)
    assert_problem(api.post("/v1/events", json={"events": [ev(i) for i in range(50)]}), 413, "body")
    assert stored_count(api) == 0


def test_invalid_utf8_spoils_only_its_event(api: TestClient) -> None:
    good = json.dumps({"events": [ev(0), ev(1, text="BAD"), ev(2)]}, ensure_ascii=False)
    raw = good.encode("utf-8").replace(b"BAD", b"b\xffd\xc3")
    r = api.post("/v1/events", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [
        {"index": 1, "field": "events.1.text", "message": "invalid UTF-8: byte 0xff at character 1"}
    ]
    r = api.post(
        "/v1/events",
        content=b'{"events": [\xff]}',
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 400, "body")  # outside a string: the JSON itself is broken
    lone = api.post(
        "/v1/events",
        content=b'{"events": [{"id": "e9", "kind": "follow", "at": 1, "actor": "a\\ud800", '
        b'"target": "b"}]}',
        headers={"content-type": "application/json"},
    )
    assert lone.json()["rejected"][0]["field"] == "events.0.actor"


def test_a_server_error_stores_nothing_and_a_retry_stores_all(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Session.execute

    def execute(self: Session, stmt: Any, params: Any = None, *a: Any, **k: Any) -> Any:
        if isinstance(params, list) and params and "event_id" in params[0]:
            real(self, stmt, params[:10], *a, **k)
            raise OSError("disk full")
        return real(self, stmt, params, *a, **k)

    events = [ev(i) for i in range(100)]
    monkeypatch.setattr(Session, "execute", execute)
    r = api.post("/v1/events", json={"events": events})
    monkeypatch.undo()
    assert r.status_code == 500 and "nothing was written" in r.json()["detail"]
    assert stored_count(api) == 0
    assert post(api, events)["accepted"] == 100
    assert post(api, events)["duplicates"] == list(range(100))


def case_events(sender: str = "man", strong: bool = True) -> list[dict[str, Any]]:
    """Children's videos shown to a man, who follows the children, asks their age and school;
    `strong`: also secrecy and a meeting (the engine restricts him), else a review alert."""
    out: list[dict[str, Any]] = []
    at = T0

    def add(kind: str, **body: Any) -> None:
        nonlocal at
        at += timedelta(minutes=2)
        out.append(
            {
                "id": f"{sender}{len(out)}",
                "kind": kind,
                "at": at.isoformat(),
                "actor": sender,
                **body,
            }
        )

    for kid in ("girl", "boy"):
        add("impression", item=f"video-{kid}", owner=kid, surface="recommended")
    for kid in ("girl", "boy"):
        add("follow", target=kid)
    if strong:
        for kid in ("girl", "boy"):
            add("message", target=kid, text="你好呀，你几岁了？在哪个学校上学？")
            add("message", target=kid, text="别告诉你爸妈，周末我们见面吧，我给你买皮肤")
    else:
        add("message", target="girl", text="你好呀，你几岁了？")
        add("message", target="girl", text="你住哪里？我可以去找你玩")
    return out


@pytest.fixture
def accounts(api: TestClient) -> TestClient:
    put_account(api, "man", birth_date="1980-02-02", age_source="verified")
    put_account(api, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    put_account(api, "boy", birth_date="2015-07-01", age_source="guardian_declared")
    put_account(api, "teen", birth_date="2011-01-15", age_source="verified")
    put_account(api, "woman", birth_date="1990-01-01", age_source="verified")
    return api


def dm(api: TestClient, sender: str, recipient: str) -> dict[str, Any]:
    r = api.post(
        "/v1/decide/contact", json={"action": "dm", "sender": sender, "recipient": recipient}
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_the_case_over_http(accounts: TestClient) -> None:
    api = accounts
    assert dm(api, "man", "teen")["outcome"] == "allow"  # cached profile, before any event
    body = post(api, case_events())
    assert body["accepted"] == 8
    report = drain(api)
    assert report.events == 8 and report.alerts == 1 and report.restrictions == 1
    queue = api.get("/v1/review/alerts", params={"status": "open"}).json()
    urgent = queue["items"]
    assert len(urgent) == 1 and urgent[0]["level"] == "restrict"
    assert urgent[0]["priority"] == "urgent" and urgent[0]["id"].startswith("risk-")
    assert urgent[0]["sender"] == "man" and sorted(urgent[0]["minors"]) == ["boy", "girl"]
    restrictions = api.get("/v1/review/restrictions", params={"account": "man"}).json()
    assert [r["automatic"] for r in restrictions["items"]] == [True]
    # The very next contact decision sees it: a DM to a minor is denied, with the pack rule.
    d = dm(api, "man", "teen")
    assert d["outcome"] == "deny"
    assert [r["rule_id"] for r in d["reasons"]] == ["cn.risk.restricted_contact"]
    assert "未成年人保护法" in d["reasons"][0]["citation"]
    assert dm(api, "man", "woman")["outcome"] == "allow"
    r = api.post(
        "/v1/decide/contact", json={"action": "follow", "sender": "man", "recipient": "girl"}
    )
    assert r.json()["outcome"] == "deny"
    assert api.get("/v1/events/status").json()["lag"] == 0


def test_restriction_of_a_sender_registered_later(accounts: TestClient) -> None:
    api = accounts
    post(api, case_events("stranger"))
    assert drain(api).restrictions == 1
    put_account(api, "stranger", birth_date="1970-01-01", age_source="verified")
    assert dm(api, "stranger", "teen")["outcome"] == "deny"


def test_the_app_runs_the_consumer_in_the_background(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qinglang.api import Settings, create_app
    from qinglang.store.crypto import DataKey

    from .conftest import ADMIN, register

    monkeypatch.setenv("QINGLANG_CONSUMER", "on")
    monkeypatch.setenv("QINGLANG_DATA_KEY", DataKey.generate().to_b64())
    app = create_app(Settings(db_url=db_url, admin_token=ADMIN))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {register(client, 'video')}"
            for name, birth in (
                ("man", "1980-02-02"),
                ("girl", "2016-03-01"),
                ("boy", "2015-07-01"),
            ):
                put_account(client, name, birth_date=birth, age_source="verified")
            assert post(client, case_events())["accepted"] == 8
            deadline = time.monotonic() + 60  # a bound on waiting, not a timing assertion
            status = client.get("/v1/events/status").json()
            while status["lag"] and time.monotonic() < deadline:
                time.sleep(0.1)
                status = client.get("/v1/events/status").json()
            assert status["lag"] == 0 and status["lease_holder"] is not None
            r = client.post(
                "/v1/decide/contact",
                json={"action": "follow", "sender": "man", "recipient": "girl"},
            )
            assert r.json()["reasons"][0]["rule_id"] == "cn.risk.restricted_contact"
            assert client.get("/v1/review/alerts").json()["total"] == 1
        with app.state.service.tx() as s:  # shutdown released the lease
            from qinglang.store.events import consumer_status

            assert consumer_status(s, 1)["lease_holder"] is None
    finally:
        app.state.service.engine.dispose()
