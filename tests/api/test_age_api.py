"""Age inference actions over HTTP on SQLite and PostgreSQL: score, verify, appeal, decisions."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

PROBLEM = "application/problem+json"
CHILD_BIO = {"bio": "小学五年级，11岁，喜欢画画", "nickname": "小学生"}
TEEN_BIO = {"bio": "初二学生，14岁"}
ADULT_ID = "11010519491231002X"


def id_number(body17: str) -> str:
    """A valid 18-digit identity number from its first 17 digits (ISO 7064 MOD 11-2)."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body17, weights, strict=True)) % 11]
    return body17 + check


def put(api: TestClient, name: str, **body: Any) -> dict[str, Any]:
    r = api.put(f"/v1/accounts/{name}", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def dm(api: TestClient, sender: str, recipient: str) -> str:
    r = api.post(
        "/v1/decide/contact", json={"action": "dm", "sender": sender, "recipient": recipient}
    )
    assert r.status_code == 200, r.text
    outcome: str = r.json()["outcome"]
    return outcome


def score(api: TestClient, account: str, **record: Any) -> dict[str, Any]:
    r = api.post("/v1/age/score", json={"account": account, **record})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def assert_problem(r: Any, status: int, field: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert field in [e["field"] for e in body.get("errors", [])], body
    return body


@pytest.fixture
def world(api: TestClient) -> TestClient:
    """A stranger adult and an unverified account that says it is an adult."""
    put(api, "stranger", identity_number=ADULT_ID, age_source="verified")
    put(api, "kid", birth_date="1995-01-01")  # self-declared adult
    assert dm(api, "stranger", "kid") == "allow"
    return api


def ledger_kinds(api: TestClient) -> list[str]:
    engine = api.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as c:
        rows = c.execute(text("SELECT kind FROM ledger_entries ORDER BY seq")).all()
    return [r[0] for r in rows]


def test_suspected_minor_is_protected_on_the_next_decision(world: TestClient) -> None:
    out = score(world, "kid", **CHILD_BIO)
    assert out["estimate"]["suspected"] is True
    a = out["assessment"]
    assert a["state"] == "verification_requested" and a["suspected"] is True
    assert a["profile"]["is_minor"] is True and a["profile"]["age_source"] == "inferred"
    assert a["message_zh"] and a["message_en"]
    assert all(set(s) == {"name", "weight", "age"} for s in a["signals"])  # minimised
    assert [t["transition"] for t in out["transitions"]] == ["suspect", "request_verification"]
    assert dm(world, "stranger", "kid") == "deny"  # the very next call
    acct = world.get("/v1/accounts/kid").json()
    assert acct["age_source"] == "self_declared" and acct["is_minor"] is True
    hist = world.get("/v1/age/kid").json()
    assert [h["transition"] for h in hist["history"]] == ["suspect", "request_verification"]
    assert ledger_kinds(world)[-2:] == ["age.suspect", "age.request_verification"]


def test_verification_as_adult_lifts_it(world: TestClient) -> None:
    score(world, "kid", **CHILD_BIO)
    assert dm(world, "stranger", "kid") == "deny"
    number = id_number("11010519900307001")
    r = world.post(
        "/v1/age/kid/verify",
        json={"method": "id_number", "id_number": number, "verified_by": "kyc"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "verified_adult" and body["profile"]["is_minor"] is False
    assert dm(world, "stranger", "kid") == "allow"
    acct = world.get("/v1/accounts/kid").json()
    assert acct["age_source"] == "verified" and acct["has_identity_number"]
    # A verified adult is never made suspected again.
    again = score(world, "kid", **CHILD_BIO)
    assert again["assessment"]["state"] == "verified_adult" and again["transitions"] == []
    assert dm(world, "stranger", "kid") == "allow"
    # The number itself is stored nowhere.
    engine = world.app.state.service.engine  # type: ignore[attr-defined]
    with engine.connect() as c:
        dump = " ".join(
            str(row)
            for t in ("accounts", "age_assessments", "age_assessment_events", "ledger_entries")
            for row in c.execute(text(f"SELECT * FROM {t}")).all()
        )
    assert number not in dump and number[:14] not in dump


def test_verification_as_minor_by_attestation(world: TestClient) -> None:
    score(world, "kid", **CHILD_BIO)
    r = world.post(
        "/v1/age/kid/verify",
        json={
            "method": "attestation",
            "reference": "kyc-77",
            "birth_date": "2015-05-01",
            "verified_by": "kyc-vendor",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "verified_minor" and body["profile"]["age_source"] == "verified"
    assert body["transitions"][0]["details"] == {"method": "attestation", "reference": "kyc-77"}
    assert dm(world, "stranger", "kid") == "deny"
    # A later self-declaration does not override the verified minor age.
    assert put(world, "kid", birth_date="1990-01-01")["age_update"] == "kept_higher_ranked"
    assert dm(world, "stranger", "kid") == "deny"


def test_appeal_overturned_lifts_it(world: TestClient) -> None:
    score(world, "kid", **CHILD_BIO)
    r = world.post("/v1/age/kid/appeal", json={"reason": "I am 31, the bio is a quote"})
    assert r.status_code == 200 and r.json()["state"] == "appealed"
    assert dm(world, "stranger", "kid") == "deny"  # still suspected while the appeal is open
    r = world.post(
        "/v1/age/kid/appeal/decide",
        json={"outcome": "overturned", "reason": "quoted lyrics", "reviewer": "rev-1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "clear" and r.json()["profile"]["is_minor"] is False
    assert dm(world, "stranger", "kid") == "allow"
    # The same score does not re-suspect an overturned account.
    assert score(world, "kid", **CHILD_BIO)["assessment"]["state"] == "clear"
    hist = world.get("/v1/age/kid").json()["history"]
    assert hist[-1]["transition"] == "overturned" and hist[-1]["actor"] == "rev-1"
    assert hist[-1]["reason"] == "quoted lyrics"
    assert "age.overturned" in ledger_kinds(world)


def test_appeal_upheld_stays_suspected(world: TestClient) -> None:
    score(world, "kid", **CHILD_BIO)
    world.post("/v1/age/kid/appeal", json={"reason": "no"})
    r = world.post(
        "/v1/age/kid/appeal/decide",
        json={"outcome": "upheld", "reason": "clear statement of age", "reviewer": "rev-2"},
    )
    assert r.status_code == 200 and r.json()["state"] == "verification_requested"
    assert dm(world, "stranger", "kid") == "deny"


def test_verified_adult_is_never_suspected(world: TestClient) -> None:
    out = score(world, "stranger", **CHILD_BIO)
    assert out["estimate"]["suspected"] is True
    # The source is verified: decisions keep the verified adult age even if suspected.
    assert out["assessment"]["profile"]["is_minor"] is False
    assert dm(world, "kid", "stranger") == "allow"


def test_declared_minor_keeps_declared_age(world: TestClient) -> None:
    put(world, "teen", birth_date="2010-06-01", age_source="guardian_declared")
    before = world.get("/v1/accounts/teen").json()["age"]
    out = score(world, "teen", bio="小学五年级，10岁")
    assert out["assessment"]["profile"]["age"] == before
    assert out["assessment"]["profile"]["age_source"] == "guardian_declared"


def test_suspected_teen_is_a_minor_of_17(world: TestClient) -> None:
    a = score(world, "kid", **TEEN_BIO)["assessment"]
    assert a["suspected"] and not a["suspected_child"]
    assert a["profile"]["age"] == 17 and a["profile"]["is_minor"]
    # Later evidence of a child makes the profile younger on the next decision.
    assert dm(world, "stranger", "kid") == "allow"  # the pack lets 14-17 year olds get DMs
    a = score(world, "kid", **CHILD_BIO)["assessment"]
    assert a["suspected_child"] and a["profile"]["age"] == 13
    assert dm(world, "stranger", "kid") == "deny"


def test_clear_account_not_suspected(world: TestClient) -> None:
    out = score(world, "kid", bio="程序员，已婚，35岁")
    assert out["assessment"]["state"] == "clear"
    assert out["transitions"] == []
    assert dm(world, "stranger", "kid") == "allow"


def test_problems_name_the_field(world: TestClient) -> None:
    assert_problem(world.post("/v1/age/score", json={"account": "ghost"}), 404, "account")
    assert_problem(world.post("/v1/age/score", json={"account": "kid", "x": 1}), 422, "x")
    assert_problem(
        world.post("/v1/age/score", json={"account": "kid", "friends_minor_share": 2}),
        422,
        "friends_minor_share",
    )
    assert_problem(
        world.post("/v1/age/score", json={"account": "kid", "events": [1]}), 422, "events[0]"
    )
    assert_problem(world.get("/v1/age/ghost"), 404, "account")
    verify = "/v1/age/kid/verify"
    assert_problem(
        world.post(verify, json={"method": "id_number", "verified_by": "k"}), 422, "id_number"
    )
    assert_problem(
        world.post(verify, json={"method": "id_number", "id_number": "123", "verified_by": "k"}),
        422,
        "id_number",
    )
    assert_problem(
        world.post(verify, json={"method": "attestation", "reference": "r", "verified_by": "k"}),
        422,
        "birth_date",
    )
    body = assert_problem(world.post("/v1/age/kid/appeal", json={"reason": "x"}), 409, "state")
    assert body["errors"][0]["message_zh"]
    assert_problem(
        world.post(
            "/v1/age/kid/appeal/decide",
            json={"outcome": "upheld", "reason": "x", "reviewer": "r"},
        ),
        409,
        "state",
    )
    assert_problem(world.post("/v1/age/kid/appeal", json={"reason": ""}), 422, "reason")
    r = world.post("/v1/age/score", json={"account": "kid"}, headers={"Authorization": "Bearer no"})
    assert r.status_code == 401


def test_access_export_includes_the_age_assessment(world: TestClient) -> None:
    from .consent_testing import link

    score(world, "kid", **CHILD_BIO)
    link(world, "mum", "kid")
    r = world.get("/v1/accounts/kid/export", params={"guardian": "mum"})
    assert r.status_code == 200, r.text
    export = r.json()
    assert export["age_assessment"]["state"] == "verification_requested"
    assert export["age_assessment"]["p_under18"] > 0.5
    transitions = [e["transition"] for e in export["age_assessment_events"]]
    assert transitions == ["suspect", "request_verification"]
    assert export["counts"]["age_assessment_events"] == len(transitions)
