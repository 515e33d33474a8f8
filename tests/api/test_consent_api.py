"""Notices, guardian verification and consents over HTTP, and the decisions that read them."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from .consent_testing import (
    ELEMENTS,
    LOCATION,
    PUBLISH,
    RECOMMEND,
    consent,
    link,
    notice_body,
    publish,
    ric,
)
from .test_api import assert_problem, put_account


@pytest.fixture
def family(api: TestClient) -> TestClient:
    """A 10-year-old with a video showing her, her verified mother, a follower and a stranger."""
    put_account(api, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    put_account(api, "fan", birth_date="1990-01-01", age_source="verified")
    put_account(api, "stranger", birth_date="1980-01-01", age_source="verified")
    api.post(
        "/v1/relationships", json={"events": [{"type": "follow", "src": "fan", "dst": "girl"}]}
    )
    flags = [{"item": "vid", "owner": "girl", "kind": "minor_pi"}]
    assert api.post("/v1/content/flags", json={"flags": flags}).status_code == 200
    link(api, "mum", "girl")
    return api


def outcome(api: TestClient, viewer: str, surface: str = "recommend") -> str:
    body = {"viewer": viewer, "item": "vid", "surface": surface}
    r = api.post("/v1/decide/exposure", json=body)
    assert r.status_code == 200, r.text
    result: str = r.json()["outcome"]
    return result


def test_notice_change_stales_consent_until_the_guardian_consents_again(
    family: TestClient,
) -> None:
    api = family
    assert publish(api, PUBLISH)["version"] == 1
    assert outcome(api, "fan") == "deny"  # no consent yet: friends only
    assert consent(api, "girl", "publish_content", "grant", 1).status_code == 201
    assert outcome(api, "fan") == "allow"  # followers, as consented
    assert outcome(api, "stranger") == "deny"

    v2 = publish(api, PUBLISH, RECOMMEND)  # adds "recommend the child's videos to others"
    assert (v2["version"], v2["stale_consents"], v2["stale_accounts"]) == (2, 1, 1)
    assert outcome(api, "fan") == "deny"  # stale counts as not given
    listed = api.get("/v1/accounts/girl/consents").json()
    assert [(c["purpose"], c["valid"], c["stale_since"] is not None) for c in listed] == [
        ("publish_content", False, True)
    ]
    r = consent(api, "girl", "publish_content", "grant", 1)
    assert_problem(r, 409, "notice_version")  # consent is tied to the current notice

    assert consent(api, "girl", "publish_content", "grant", 2).status_code == 201
    assert outcome(api, "fan") == "allow"
    assert outcome(api, "stranger") == "deny"  # recommending still needs its own consent
    assert consent(api, "girl", "recommend_content", "grant", 2).status_code == 201
    assert outcome(api, "stranger") == "deny"  # publishing is bounded by followers
    assert (
        consent(api, "girl", "publish_content", "grant", 2, audience="followers").status_code == 201
    )

    # Withdrawal takes effect on the very next decision.
    assert consent(api, "girl", "publish_content", "withdraw", 2).status_code == 201
    assert outcome(api, "fan") == "deny"
    assert consent(api, "girl", "publish_content", "grant", 2).status_code == 201
    assert outcome(api, "fan") == "allow"


def test_recommendation_is_bounded_by_its_own_consent(family: TestClient) -> None:
    api = family
    wide_publish = dict(PUBLISH, audience="public")
    publish(api, wide_publish, RECOMMEND)
    assert consent(api, "girl", "publish_content", "grant", 1).status_code == 201
    assert outcome(api, "stranger", "profile") == "allow"
    assert outcome(api, "stranger", "recommend") == "deny"
    assert consent(api, "girl", "recommend_content", "grant", 1).status_code == 201
    assert outcome(api, "stranger", "recommend") == "allow"
    assert consent(api, "girl", "recommend_content", "withdraw", 1).status_code == 201
    assert outcome(api, "stranger", "recommend") == "deny"
    assert outcome(api, "stranger", "profile") == "allow"


def test_collection_reads_recorded_consent(family: TestClient) -> None:
    api = family
    publish(api, LOCATION)
    body = {"account": "girl", "category": "location", "purpose": "nearby"}
    assert api.post("/v1/decide/collection", json=body).json()["outcome"] == "needs_guardian"
    r = consent(api, "girl", "nearby", "grant", 1, category="location")
    assert r.status_code == 201, r.text
    assert api.post("/v1/decide/collection", json=body).json()["outcome"] == "allow"
    assert consent(api, "girl", "nearby", "refuse", 1, category="location").status_code == 201
    assert api.post("/v1/decide/collection", json=body).json()["outcome"] == "needs_guardian"
    # A platform can no longer assert consent in the request.
    r = api.post("/v1/decide/collection", json=body | {"consent": {"guardian": True}})
    assert_problem(r, 422, "consent")


def test_stranger_messages_need_the_guardians_consent(family: TestClient) -> None:
    api = family
    item = {
        "purpose": "messages_from_non_friends",
        "categories": ["messages"],
        "method": "私信",
        "scope": "接收非好友私信",
    }
    publish(api, item)
    api.put("/v1/accounts/girl/settings", json={"contact.dm_from_non_friends": "deny"})
    dm = {"action": "dm", "sender": "stranger", "recipient": "girl"}
    assert api.post("/v1/decide/contact", json=dm).json()["outcome"] == "deny"
    r = consent(api, "girl", "messages_from_non_friends", "grant", 1, category="messages")
    assert r.status_code == 201
    # Consent alone does not loosen the pack's child-safe default (deny stays deny).
    assert api.post("/v1/decide/contact", json=dm).json()["outcome"] == "deny"


def test_publishing_a_notice_that_lacks_elements_fails_naming_them(api: TestClient) -> None:
    elements = {
        k: v for k, v in ELEMENTS.items() if k not in ("storage_location", "security_measures")
    }
    elements["complaint_channel"] = "  "
    r = api.post(
        "/v1/notices",
        json={
            "language": "zh",
            "audience": "child",
            "published_by": "dpo",
            "body": notice_body(PUBLISH, elements=elements),
        },
    )
    p = assert_problem(r, 422, "body.elements")
    for name in ("storage_location", "security_measures", "complaint_channel"):
        assert name in p["detail"]
    assert "cn.consent.notice_elements" in p["detail"]
    assert api.get("/v1/notices/zh/child").status_code == 404


def test_notice_versions_are_hashed_and_readable(api: TestClient) -> None:
    v1 = publish(api, PUBLISH)
    v2 = publish(api, PUBLISH, RECOMMEND)
    assert v1["content_hash"] != v2["content_hash"] and len(v1["content_hash"]) == 64
    assert api.get("/v1/notices/zh/child").json()["version"] == 2
    assert (
        api.get("/v1/notices/zh/child", params={"version": 1}).json()["content_hash"]
        == (v1["content_hash"])
    )
    # The same document again is a new version with the same hash and makes nothing stale.
    v3 = publish(api, PUBLISH, RECOMMEND)
    assert v3["content_hash"] == v2["content_hash"] and v3["stale_consents"] == 0


@pytest.mark.parametrize(
    ("claims", "method", "status", "field"),
    [
        ({"id_number": ric(date(2012, 1, 1))}, "id_number_realname", 422, "claims"),
        ({"id_number": "110101198505171234"}, "id_number_realname", 422, "claims"),
        ({}, "id_number_realname", 422, "claims"),
        ({"reference": "pay-1"}, "telepathy", 422, "method"),
        ({}, "signed_form", 422, "claims"),
    ],
)
def test_guardian_verification_failures(
    family: TestClient, claims: dict[str, Any], method: str, status: int, field: str
) -> None:
    r = family.post(
        "/v1/guardians/mum/children",
        json={"account": "girl", "method": method, "verified_by": "desk", "claims": claims},
    )
    assert_problem(r, status, field)


def test_attested_verification_and_evidence_is_minimised(family: TestClient) -> None:
    r = family.post(
        "/v1/guardians/mum/children",
        json={
            "account": "girl",
            "method": "small_payment",
            "verified_by": "pay-desk",
            "claims": {"reference": "txn-42"},
        },
    )
    assert r.status_code == 201
    assert r.json()["evidence"] == {"checks": ["attested"], "reference": "txn-42"}


def test_only_a_linked_guardian_or_an_old_enough_minor_consents(family: TestClient) -> None:
    api = family
    publish(api, PUBLISH)
    api.put("/v1/guardians/other", json={})
    assert_problem(
        consent(api, "girl", "publish_content", "grant", 1, guardian="other"), 403, "guardian"
    )
    r = consent(api, "girl", "publish_content", "grant", 1, given_by="self", guardian=None)
    assert_problem(r, 403, "given_by")
    put_account(api, "teen", birth_date="2011-01-01", age_source="verified")
    r = consent(api, "teen", "publish_content", "grant", 1, given_by="self", guardian=None)
    assert r.status_code == 201, r.text
    assert_problem(consent(api, "girl", "publish_content", "withdraw", 1), 404, "purpose")
    assert_problem(consent(api, "girl", "nope", "grant", 1), 422, "purpose")
    r = consent(api, "girl", "publish_content", "grant", 1, audience="public")
    assert_problem(r, 422, "audience")


def test_idempotent_retry_writes_nothing(family: TestClient) -> None:
    api = family
    publish(api, PUBLISH)
    body = {
        "account": "girl",
        "purpose": "publish_content",
        "category": "child_content",
        "decision": "grant",
        "notice": {"language": "zh", "audience": "child", "version": 1},
        "guardian": "mum",
    }
    first = api.post("/v1/consents", json=body, headers={"Idempotency-Key": "k-1"})
    again = api.post("/v1/consents", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 201
    assert again.json()["replayed"] is True
    assert again.json()["ledger_seq"] == first.json()["ledger_seq"]
    other = api.post(
        "/v1/consents", json=body | {"account": "fan"}, headers={"Idempotency-Key": "k-1"}
    )
    assert_problem(other, 409, "Idempotency-Key")
