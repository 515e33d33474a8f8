"""POST /v1/scan: findings per text, and content that exposes a minor gets flagged."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .consent_testing import PUBLISH, consent, link, publish
from .test_api import assert_problem, put_account


def test_scan_batch_and_flag(api: TestClient) -> None:
    put_account(api, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    put_account(api, "man", birth_date="1980-03-01", age_source="verified")
    api.post(
        "/v1/relationships", json={"events": [{"type": "follow", "src": "man", "dst": "girl"}]}
    )
    r = api.post(
        "/v1/scan",
        json={
            "items": [
                {
                    "id": "t1",
                    "text": "我今年10岁，在实验小学三年级2班，电话13812345678",
                    "item": "vid",
                    "owner": "girl",
                },
                {"id": "t2", "text": "今天天气很好"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    cats = {f["category"] for f in body["results"][0]["findings"]}
    assert {"age", "phone"} <= cats
    assert body["results"][1]["findings"] == []
    assert body["flagged_items"] == ["vid"]
    d = api.post("/v1/decide/exposure", json={"viewer": "man", "item": "vid"}).json()
    assert d["outcome"] == "deny" and d["reasons"][0]["rule_id"] == "cn.exposure.minor_pi"


def test_scan_bad_input(api: TestClient) -> None:
    assert_problem(api.post("/v1/scan", json={"items": []}), 422, "items")
    r = api.post("/v1/scan", json={"items": [{"id": "a", "text": "x"}], "categories": ["zodiac"]})
    assert_problem(r, 422, "categories.0")
    r = api.post("/v1/scan", json={"items": [{"id": "a", "text": "x", "item": "i"}]})
    assert_problem(r, 422, "items.0.owner")
    r = api.post(
        "/v1/scan", json={"items": [{"id": "a", "text": "x", "item": "i", "owner": "ghost"}]}
    )
    assert_problem(r, 404, "items.0.owner")
    r = api.post(
        "/v1/scan",
        json={"items": [{"id": "a", "text": "x"}]},
        headers={"Authorization": "Bearer no"},
    )
    assert_problem(r, 401, "Authorization")


def test_scan_keeps_the_audience_a_guardian_consented_to(api: TestClient) -> None:
    put_account(api, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    put_account(api, "fan", birth_date="1990-01-01", age_source="verified")
    api.post(
        "/v1/relationships", json={"events": [{"type": "follow", "src": "fan", "dst": "girl"}]}
    )
    link(api, "mum", "girl")
    publish(api, PUBLISH)
    assert consent(api, "girl", "publish_content", "grant", 1).status_code == 201
    flags = [{"item": "vid", "owner": "girl", "kind": "minor_pi", "audience": "followers"}]
    assert api.post("/v1/content/flags", json={"flags": flags}).status_code == 200
    body = {"items": [{"id": "t", "text": "我今年10岁", "item": "vid", "owner": "girl"}]}
    assert api.post("/v1/scan", json=body).json()["flagged_items"] == ["vid"]
    d = api.post("/v1/decide/exposure", json={"viewer": "fan", "item": "vid"}).json()
    assert d["outcome"] == "allow"  # still the consented "followers", not narrowed to friends
