"""Data-rights requests over HTTP on SQLite and PostgreSQL: each kind, who may ask, refusals,
overdue listing, the access export; errors are problem+json naming the field."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qinglang.api.service import Service
from qinglang.store import repo
from qinglang.store.consents import (
    current_notice,
    publish_notice,
    record_consent,
    record_verified_link,
)

PROBLEM = "application/problem+json"
A_BIRTH = "2016-04-02"
B_BIRTH = "2013-05-17"
ELEMENTS = dict.fromkeys(
    (
        "purpose_method_scope",
        "storage_location",
        "retention_period",
        "expiry_handling",
        "security_measures",
        "refusal_consequences",
        "complaint_channel",
        "correction_deletion",
        "necessity_and_effect",
    ),
    "见正文",
)
NOTICE = {
    "title": "儿童个人信息保护规则",
    "elements": ELEMENTS,
    "items": [
        {
            "purpose": "publish_content",
            "categories": ["child_content"],
            "method": "上传",
            "scope": "关注者",
            "audience": "followers",
        }
    ],
}


def assert_problem(r: Any, status: int, field: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert field in [e["field"] for e in body.get("errors", [])], body
    return body


def _years_ago(years: int) -> str:
    d = date.today() - timedelta(days=10)
    return d.replace(year=d.year - years).isoformat()


def _service(api: TestClient) -> Service:
    service: Service = api.app.state.service  # type: ignore[attr-defined]
    return service


def _link_and_consent(api: TestClient, guardian: str, child: str) -> None:
    """A verified guardian link and a granted consent, written through the store."""
    service = _service(api)
    with service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, "video")
        assert p is not None
        account = repo.get_account(s, p.id, child)
        assert account is not None
        g = repo.upsert_guardian(s, p.id, guardian, display_name="家长")
        record_verified_link(s, p, g, account, "id_number_realname", "kyc", {"reference": guardian})
        notice = current_notice(s, p.id, "zh", "child")
        if notice is None:
            notice = publish_notice(
                s, p, service.policy_for(p), "zh", "child", NOTICE, "dpo"
            ).notice
        record_consent(
            s,
            p,
            account,
            purpose="publish_content",
            category="child_content",
            status="granted",
            given_by="guardian",
            guardian=g,
            notice=notice,
        )


@pytest.fixture
def family(api: TestClient) -> TestClient:
    """Children A (9) and B (12) with their own guardians, following each other, with content."""
    for name, birth in (("child-a", A_BIRTH), ("child-b", B_BIRTH)):
        r = api.put(f"/v1/accounts/{name}", json={"birth_date": birth, "sex": "F"})
        assert r.status_code == 200, r.text
    for name, years in (("teen", 14), ("kid", 12)):
        r = api.put(f"/v1/accounts/{name}", json={"birth_date": _years_ago(years)})
        assert r.status_code == 200, r.text
    assert api.put("/v1/accounts/mystery", json={}).status_code == 200
    r = api.post(
        "/v1/relationships",
        json={
            "events": [
                {"type": "follow", "src": "child-a", "dst": "child-b"},
                {"type": "follow", "src": "child-b", "dst": "child-a"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    r = api.post(
        "/v1/content/flags",
        json={
            "flags": [
                {"item": "a-video", "owner": "child-a", "kind": "shows_minor"},
                {"item": "b-video", "owner": "child-b", "kind": "minor_pi"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    _link_and_consent(api, "mum-a", "child-a")
    _link_and_consent(api, "dad-b", "child-b")
    return api


def create(api: TestClient, **body: Any) -> Any:
    body.setdefault("account", "child-a")
    body.setdefault("requester", "guardian")
    if body["requester"] == "guardian":
        body.setdefault("guardian", "mum-a")
    return api.post("/v1/rights-requests", json=body)


def move(api: TestClient, rid: int, status: str, **body: Any) -> Any:
    return api.post(
        f"/v1/rights-requests/{rid}/transition", json={"status": status, "actor": "dpo", **body}
    )


def test_access_request_end_to_end(family: TestClient) -> None:
    r = create(family, kind="access", note="by phone")
    assert r.status_code == 201, r.text
    req = r.json()
    created = datetime.fromisoformat(req["created_at"])
    assert datetime.fromisoformat(req["due_at"]) - created == timedelta(days=15)
    assert req["status"] == "received" and req["guardian"] == "mum-a" and not req["overdue"]
    assert [h["status"] for h in req["history"]] == ["received"]
    assert req["history"][0]["note"] == "by phone"
    rid = req["id"]
    assert move(family, rid, "in_progress").status_code == 200
    done = move(family, rid, "completed")
    assert done.status_code == 200, done.text
    out = done.json()
    assert out["request"]["status"] == "completed" and out["request"]["closed_at"]
    assert [h["status"] for h in out["request"]["history"]] == [
        "received",
        "in_progress",
        "completed",
    ]
    export = out["export"]
    assert export["account"]["birth_date"] == A_BIRTH
    assert export["content_items"][0]["external_id"] == "a-video"
    text = json.dumps(export, ensure_ascii=False)
    assert "child-b" not in text and B_BIRTH not in text and "b-video" not in text
    assert "dad-b" not in text
    got = family.get(f"/v1/rights-requests/{rid}").json()
    assert got["answer"]["export"]["format_version"] == 1
    assert A_BIRTH not in json.dumps(got["answer"])


def test_direct_export_for_linked_guardian_only(family: TestClient) -> None:
    r = family.get("/v1/accounts/child-a/export", params={"guardian": "mum-a"})
    assert r.status_code == 200, r.text
    export = r.json()
    assert export["format"] == "qinglang.access-export"
    assert export["account"]["external_id"] == "child-a"
    assert {x["direction"] for x in export["relationships"]} == {"outgoing", "incoming"}
    assert all(x["other"].startswith("acct_") for x in export["relationships"])
    assert "child-b" not in r.text and B_BIRTH not in r.text
    body = assert_problem(
        family.get("/v1/accounts/child-a/export", params={"guardian": "dad-b"}), 403, "guardian"
    )
    assert "Traceback" not in json.dumps(body)
    assert_problem(
        family.get("/v1/accounts/child-a/export", params={"guardian": "nobody"}), 404, "guardian"
    )
    assert_problem(
        family.get("/v1/accounts/ghost/export", params={"guardian": "mum-a"}), 404, "account"
    )
    # The person themself: from 14 only.
    assert family.get("/v1/accounts/teen/export").status_code == 200
    assert_problem(family.get("/v1/accounts/kid/export"), 403, "requester")


def test_guardian_of_another_child_gets_403(family: TestClient) -> None:
    body = assert_problem(create(family, kind="deletion", guardian="dad-b"), 403, "guardian")
    assert "link" in body["detail"]
    assert_problem(create(family, kind="deletion", guardian="ghost"), 404, "guardian")
    assert_problem(create(family, kind="deletion", account="ghost"), 404, "account")
    assert_problem(create(family, kind="deletion", guardian=None), 422, "guardian")
    assert_problem(create(family, kind="teleport"), 422, "kind")


def test_fourteen_may_ask_for_themself_twelve_may_not(family: TestClient) -> None:
    r = create(family, kind="access", account="teen", requester="self")
    assert r.status_code == 201, r.text
    assert r.json()["requester"] == "self" and r.json()["guardian"] is None
    body = assert_problem(
        create(family, kind="access", account="kid", requester="self"), 403, "requester"
    )
    err = body["errors"][0]
    assert err["rule_id"] == "cn.consent.self_from_age"
    assert err["message_zh"] and err["message_en"]
    assert_problem(
        create(family, kind="access", account="mystery", requester="self"), 403, "requester"
    )
    assert_problem(
        create(family, kind="access", account="teen", requester="self", guardian="mum-a"),
        422,
        "guardian",
    )


def test_refusal_needs_a_reason_and_bad_moves_conflict(family: TestClient) -> None:
    rid = create(family, kind="deletion").json()["id"]
    assert_problem(move(family, rid, "refused"), 422, "reason")
    assert_problem(move(family, rid, "refused", reason="   "), 422, "reason")
    r = move(family, rid, "refused", reason="identity of the requester not confirmed")
    assert r.status_code == 200, r.text
    req = r.json()["request"]
    assert req["status"] == "refused" and req["reason"].startswith("identity")
    assert_problem(move(family, rid, "completed"), 409, "status")
    assert_problem(move(family, rid, "in_progress"), 409, "status")
    assert_problem(move(family, 999999, "completed"), 404, "request_id")
    assert_problem(family.get("/v1/rights-requests/999999"), 404, "request_id")
    assert_problem(move(family, rid, "lost"), 422, "status")


def test_list_filters_and_overdue(family: TestClient) -> None:
    a = create(family, kind="access").json()["id"]
    b = create(family, kind="withdrawal").json()["id"]
    assert move(family, b, "completed").status_code == 200
    assert family.get("/v1/rights-requests", params={"overdue": "true"}).json()["count"] == 0
    later = (datetime.now(UTC) + timedelta(days=16)).isoformat()
    r = family.get("/v1/rights-requests", params={"overdue": "true", "at": later})
    assert r.status_code == 200, r.text
    listed = r.json()["requests"]
    assert [x["id"] for x in listed] == [a] and listed[0]["overdue"] is True
    done = family.get("/v1/rights-requests", params={"status": "completed"}).json()
    assert [x["id"] for x in done["requests"]] == [b]
    mine = family.get("/v1/rights-requests", params={"account": "child-a"}).json()
    assert {x["id"] for x in mine["requests"]} == {a, b}
    assert_problem(family.get("/v1/rights-requests", params={"account": "ghost"}), 404, "account")
    assert_problem(family.get("/v1/rights-requests", params={"status": "odd"}), 422, "status")


def test_correction_applies_and_floors_hold(family: TestClient) -> None:
    bad = create(
        family, kind="correction", details={"settings": {"contact.blocked_outcome": "allow"}}
    )
    assert_problem(bad, 422, "details.settings.contact.blocked_outcome")
    assert_problem(create(family, kind="correction", details={"nick": "x"}), 422, "details.nick")
    rid = create(family, kind="correction", details={"birth_date": "2016-05-02"}).json()["id"]
    assert family.get(f"/v1/rights-requests/{rid}").json()["details"] == {
        "birth_date": "2016-05-02"
    }
    assert move(family, rid, "completed").status_code == 200
    account = family.get("/v1/accounts/child-a").json()
    assert account["birth_date"] == "2016-05-02"
    assert account["age_source"] == "guardian_declared"


def test_deletion_then_cancellation(family: TestClient) -> None:
    rid = create(family, kind="deletion").json()["id"]
    r = move(family, rid, "completed")
    assert r.status_code == 200, r.text
    answer = r.json()["request"]["answer"]
    assert answer["erased"]["counts"]["content_items"] == 1
    assert answer["erased"]["counts"]["relationships"] == 2
    assert answer["erased"]["counts"]["consents"] == 1
    kept = {k["table"] for k in answer["kept"]}
    assert {"ledger_entries", "guardian_links", "rights_requests"} <= kept
    account = family.get("/v1/accounts/child-a").json()
    assert account["birth_date"] is None and account["settings"] == {}
    export = family.get("/v1/accounts/child-b/export", params={"guardian": "dad-b"}).json()
    assert export["counts"]["relationships"] == 0 and export["counts"]["content_items"] == 1
    cid = create(family, kind="cancellation").json()["id"]
    done = move(family, cid, "completed").json()["request"]
    assert done["answer"]["cancelled_at"]
    assert_problem(create(family, kind="access"), 409, "account")


def test_withdrawal_withdraws_consents(family: TestClient) -> None:
    rid = create(family, kind="withdrawal").json()["id"]
    answer = move(family, rid, "completed").json()["request"]["answer"]
    assert answer["withdrawn"][0]["purpose"] == "publish_content"
    export = family.get("/v1/accounts/child-a/export", params={"guardian": "mum-a"}).json()
    assert [c["status"] for c in export["consents"]] == ["withdrawn"]
    kinds = [e["kind"] for e in export["ledger_entries"]]
    assert "consent.withdrawn" in kinds and "rights.completed" in kinds


def test_requests_need_an_api_key(app_client: TestClient) -> None:
    r = app_client.get("/v1/rights-requests")
    assert_problem(r, 401, "Authorization")
