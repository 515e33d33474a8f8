"""HTTP API on SQLite and PostgreSQL: the case end to end, bad input as problem+json."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from .conftest import ADMIN, register

PROBLEM = "application/problem+json"


def put_account(api: TestClient, name: str, **body: Any) -> dict[str, Any]:
    r = api.put(f"/v1/accounts/{name}", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def assert_problem(r: Any, status: int, field: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    fields = [e["field"] for e in body.get("errors", [])]
    assert field in fields, (field, body)
    assert "Traceback" not in r.text
    return body


@pytest.fixture
def case(api: TestClient) -> TestClient:
    """The case: a 10-year-old girl, a stranger man who follows her, her approved aunt."""
    girl = put_account(api, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    assert girl["is_child"] and girl["features"]["dm_from_non_friends"]["state"] == "off"
    put_account(api, "man", identity_number="11010519491231002X", age_source="verified")
    put_account(api, "aunt", birth_date="1990-06-01")
    r = api.post(
        "/v1/relationships",
        json={
            "events": [
                {"type": "follow", "src": "man", "dst": "girl"},
                {"type": "follow", "src": "aunt", "dst": "girl"},
                {"type": "approve_contact", "src": "girl", "dst": "aunt"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    r = api.post(
        "/v1/content/flags",
        json={
            "flags": [
                {"item": "v1", "owner": "girl", "kind": "shows_minor"},
                {"item": "v2", "owner": "girl", "kind": "minor_pi"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    return api


def test_the_case_over_http(case: TestClient) -> None:
    api = case
    dm = api.post(
        "/v1/decide/contact", json={"action": "dm", "sender": "man", "recipient": "girl"}
    ).json()
    assert dm["outcome"] == "deny" and dm["reasons"][0]["rule_id"] == "cn.contact.dm.child"
    assert dm["reasons"][0]["message_zh"] and dm["reasons"][0]["citation"]
    for attr in ("location", "face"):
        d = api.post(
            "/v1/decide/attribute", json={"owner": "girl", "viewer": "man", "attribute": attr}
        ).json()
        assert d["outcome"] == "deny"
    batch = api.post(
        "/v1/decide/exposure/batch",
        json={
            "viewer": "man",
            "candidates": ["a", "v1", "b", "v2"],
            "explain": True,
        },
    ).json()
    assert batch["allowed"] == ["a", "b"] and batch["removed"] == 2
    assert batch["reasons"]["v1"]["reasons"][0]["rule_id"] == "cn.exposure.minor_pi"
    single = api.post("/v1/decide/exposure", json={"viewer": "man", "item": "v1"}).json()
    assert single["outcome"] == "deny"
    aunt = api.post(
        "/v1/decide/contact", json={"action": "dm", "sender": "aunt", "recipient": "girl"}
    ).json()
    assert aunt["outcome"] == "allow"
    # the girl blocks the man: nothing gets through, even a follow
    api.post("/v1/relationships", json={"events": [{"type": "block", "src": "girl", "dst": "man"}]})
    f = api.post(
        "/v1/decide/contact", json={"action": "follow", "sender": "man", "recipient": "girl"}
    ).json()
    assert f["outcome"] == "deny" and f["reasons"][0]["rule_id"] == "cn.contact.blocked"


def test_identity_number_is_never_stored(case: TestClient, db_url: str) -> None:
    man = case.get("/v1/accounts/man").json()
    assert man["birth_date"] == "1949-12-31" and man["sex"] == "F" and man["has_identity_number"]
    engine = case.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as c:
        rows = c.execute(text("SELECT * FROM accounts")).all()
    dump = repr(rows)
    assert "11010519491231002X" not in dump and "1949-12-31" not in dump  # hashed, encrypted


def test_other_decisions(case: TestClient) -> None:
    api = case
    put_account(api, "teen", birth_date="2012-01-15", age_source="verified")
    s = api.post(
        "/v1/decide/spending",
        json={"account": "teen", "amount_fen": 3000, "month_total_fen": 18000},
    ).json()
    assert s["outcome"] == "deny" and s["limits"]["max_payable_fen"] == 2000
    p = api.post(
        "/v1/decide/playtime",
        json={"account": "teen", "kind": "game", "at": "2026-10-09T20:30:00+08:00"},
    ).json()
    assert p["outcome"] == "limit" and p["limits"]["minutes_left"] == 30
    p = api.post(
        "/v1/decide/playtime",
        json={"account": "teen", "kind": "game", "at": "2026-10-10T20:30:00+08:00"},
    ).json()
    assert p["outcome"] == "deny"
    c = api.post(
        "/v1/decide/collection", json={"account": "girl", "category": "face", "purpose": "login"}
    ).json()
    assert c["outcome"] == "needs_guardian"
    pol = api.get("/v1/policy").json()
    assert any(r["id"] == "cn.game.window" for r in pol["rules"])


def test_sampled_decisions_are_logged(case: TestClient) -> None:
    case.post("/v1/decide/contact", json={"action": "dm", "sender": "man", "recipient": "girl"})
    engine = case.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as c:
        rows = c.execute(text("SELECT kind, outcome FROM decision_logs")).all()
    assert ("contact", "deny") in [tuple(r) for r in rows]


def test_guardian_settings_cannot_loosen_floors(case: TestClient) -> None:
    r = case.put("/v1/accounts/girl/settings", json={"game.allowed_windows": ["19:00-23:00"]})
    body = assert_problem(r, 422, "settings.game.allowed_windows")
    assert "cn.game.window" in body["detail"]
    ok = case.put("/v1/accounts/girl/settings", json={"playtime.daily_minutes": 30})
    assert ok.status_code == 200
    assert ok.json()["features"]["playtime"]["limit"]["daily_minutes"] == 30


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("1101051949123100", "length"),
        ("11010519491231002Y", "characters"),
        ("110105194902300021", "date"),
        ("000000194912310021", "region"),
        ("110105194912310021", "checksum"),
    ],
)
def test_malformed_identity_number(api: TestClient, number: str, reason: str) -> None:
    r = api.put("/v1/accounts/x", json={"identity_number": number})
    body = assert_problem(r, 422, "identity_number")
    assert body["errors"][0]["reason"] == reason


def test_unknown_account(api: TestClient) -> None:
    put_account(api, "a", birth_date="2000-01-01")
    r = api.post("/v1/decide/contact", json={"action": "dm", "sender": "a", "recipient": "ghost"})
    assert_problem(r, 404, "recipient")
    assert_problem(api.get("/v1/accounts/ghost"), 404, "external_id")


def test_invalid_json(api: TestClient) -> None:
    r = api.post(
        "/v1/decide/contact",
        content=b'{"action": "dm",',
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 400, "body")


def test_bad_fields_are_named(api: TestClient) -> None:
    r = api.post("/v1/decide/contact", json={"action": "poke", "sender": "a", "recipient": "b"})
    assert_problem(r, 422, "action")
    r = api.post("/v1/decide/spending", json={"account": "a", "amount_fen": -1})
    assert_problem(r, 422, "amount_fen")
    r = api.post(
        "/v1/decide/playtime", json={"account": "a", "kind": "game", "at": "2026-10-09T20:30:00"}
    )
    assert_problem(r, 422, "at")


def test_date_outside_calendar(api: TestClient) -> None:
    put_account(api, "kid", birth_date="2016-01-01", age_source="verified")
    r = api.post(
        "/v1/decide/playtime",
        json={"account": "kid", "kind": "game", "at": "2029-01-05T20:30:00+08:00"},
    )
    assert_problem(r, 422, "at")


def test_missing_or_wrong_key(app_client: TestClient) -> None:
    register(app_client, "video")
    assert_problem(app_client.get("/v1/policy"), 401, "Authorization")
    r = app_client.get("/v1/policy", headers={"Authorization": "Bearer ql_0123456789ab_nope"})
    assert_problem(r, 401, "Authorization")
    r = app_client.post(
        "/v1/platforms", json={"slug": "x2", "name": "X"}, headers={"Authorization": "Bearer wrong"}
    )
    assert_problem(r, 401, "Authorization")


def test_revoked_key_stops_working(app_client: TestClient) -> None:
    key = register(app_client, "video")
    h = {"Authorization": f"Bearer {key}"}
    new = app_client.post("/v1/keys", headers=h).json()["api_key"]
    prefix = key.split("_")[1]
    assert (
        app_client.delete(
            f"/v1/keys/{prefix}", headers={"Authorization": f"Bearer {new}"}
        ).status_code
        == 204
    )
    assert_problem(app_client.get("/v1/policy", headers=h), 401, "Authorization")
    assert (
        app_client.get("/v1/policy", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    )


def test_another_platforms_account_is_invisible(app_client: TestClient) -> None:
    a = {"Authorization": f"Bearer {register(app_client, 'alpha')}"}
    b = {"Authorization": f"Bearer {register(app_client, 'beta')}"}
    assert (
        app_client.put("/v1/accounts/kid", json={"birth_date": "2016-01-01"}, headers=a).status_code
        == 200
    )
    assert_problem(app_client.get("/v1/accounts/kid", headers=b), 404, "external_id")
    assert (
        app_client.put("/v1/accounts/man", json={"birth_date": "1980-01-01"}, headers=b).status_code
        == 200
    )
    r = app_client.post(
        "/v1/decide/contact", json={"action": "dm", "sender": "man", "recipient": "kid"}, headers=b
    )
    assert_problem(r, 404, "recipient")


def test_batch_with_bad_items_is_rejected_whole(api: TestClient) -> None:
    put_account(api, "a", birth_date="2000-01-01")
    put_account(api, "b", birth_date="2015-01-01")
    events = [
        {"type": "follow", "src": "a", "dst": "b"},
        {"type": "follow", "src": "a", "dst": "ghost"},
        {"type": "follow", "src": "b", "dst": "a"},
        {"type": "block", "src": "nobody", "dst": "b"},
    ]
    r = api.post("/v1/relationships", json={"events": events})
    body = assert_problem(r, 422, "events.1.dst")
    assert sorted({e["index"] for e in body["errors"]}) == [1, 3]
    # nothing was written: a and b are not friends, so a still cannot DM b
    d = api.post(
        "/v1/decide/contact", json={"action": "dm", "sender": "a", "recipient": "b"}
    ).json()
    assert d["outcome"] == "deny"
    r = api.post(
        "/v1/relationships",
        json={"events": [events[0], {"type": "befriend", "src": "a", "dst": "b"}]},
    )
    assert_problem(r, 422, "events.1.type")
    flags = [
        {"item": "i1", "owner": "b", "kind": "minor_pi"},
        {"item": "i2", "owner": "ghost", "kind": "minor_pi"},
    ]
    assert_problem(api.post("/v1/content/flags", json={"flags": flags}), 422, "flags.1.owner")
    batch = api.post("/v1/decide/exposure/batch", json={"viewer": "a", "candidates": ["i1"]}).json()
    assert batch["allowed"] == ["i1"]  # the good flag of the rejected batch was not written


def test_overlay_that_loosens_a_floor_is_refused(app_client: TestClient) -> None:
    overlay = (
        '[pack]\nid = "lax"\nversion = "1"\njurisdiction = "CN"\ntimezone = "Asia/Shanghai"\n'
        'title_zh = "宽"\ntitle_en = "Lax"\nbase = "cn"\n'
        '[[overrides]]\nid = "cn.spend.single.8to15"\nvalue = 9000\n'
    )
    r = app_client.post(
        "/v1/platforms",
        json={"slug": "lax", "name": "Lax", "policy_overlay": overlay},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    body = assert_problem(r, 422, "policy_overlay")
    assert "cn.spend.single.8to15" in body["detail"]


def test_openapi_is_served(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    assert "/v1/decide/contact" in spec["paths"]
    assert app_client.get("/docs").status_code == 200


def test_lower_ranked_age_never_overrides_a_verified_one(api: TestClient) -> None:
    put_account(api, "k", birth_date="2015-04-01", age_source="verified")
    out = put_account(api, "k", birth_date="1990-04-01", age_source="self_declared")
    assert out["age_update"] == "kept_higher_ranked" and out["birth_date"] == "2015-04-01"
    assert out["is_child"]
    out = put_account(api, "k", birth_date="2015-05-01", age_source="verified")
    assert out["age_update"] == "applied" and out["birth_date"] == "2015-05-01"


def test_decisions_through_the_thread_pool(case: TestClient) -> None:
    """The path used with a database on another host gives the same answers."""
    service = case.app.state.service  # type: ignore[attr-defined]
    service._inline = False
    dm = case.post(
        "/v1/decide/contact", json={"action": "dm", "sender": "man", "recipient": "girl"}
    )
    assert dm.json()["outcome"] == "deny"
    assert_problem(
        case.post("/v1/decide/contact", json={"action": "dm", "sender": "man", "recipient": "x"}),
        404,
        "recipient",
    )
