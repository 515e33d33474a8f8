"""/v1/review on SQLite and PostgreSQL: the queue and its filters, evidence reads, assignment,
every reviewer action with its audit entry, the report document, restrictions and lifting."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from qinglang.api.service import Service
from qinglang.store import ledger, repo
from qinglang.store.models import Alert, LedgerEntry, Platform

from .test_api import assert_problem, put_account
from .test_events_api import case_events, dm, drain, post


@pytest.fixture(autouse=True)
def no_background_consumer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests drain the consumer themselves."""
    monkeypatch.setenv("QINGLANG_CONSUMER", "off")
    yield


def service_of(api: TestClient) -> Service:
    service: Service = api.app.state.service  # type: ignore[attr-defined]
    return service


@pytest.fixture
def alerts(api: TestClient) -> TestClient:
    """The case processed: a restrict alert for 'man', a review alert for 'uncle', and a
    guardian for 'girl'."""
    put_account(api, "man", birth_date="1980-02-02", age_source="verified")
    put_account(api, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    put_account(api, "boy", birth_date="2015-07-01", age_source="guardian_declared")
    put_account(api, "teen", birth_date="2011-01-15", age_source="verified")
    put_account(api, "uncle", birth_date="1975-05-05", age_source="verified")
    service = service_of(api)
    with service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, "video")
        assert p is not None
        girl = repo.get_account(s, p.id, "girl")
        assert girl is not None
        mum = repo.upsert_guardian(s, p.id, "mum")
        repo.link_guardian(s, mum.id, girl.id, method="signed_form", verified_by="ops")
    post(api, case_events())
    post(api, case_events("uncle", strong=False))
    report = drain(api)
    assert report.alerts == 2 and report.restrictions == 1
    return api


def alert_of(api: TestClient, sender: str) -> str:
    """The id of the sender's alert."""
    items = api.get("/v1/review/alerts", params={"sender": sender}).json()["items"]
    assert len(items) == 1
    alert_id: str = items[0]["id"]
    return alert_id


def ledger_kinds(api: TestClient) -> list[str]:
    with service_of(api).tx() as s:
        return list(s.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.seq)))


def act(api: TestClient, alert: str, **body: Any) -> Any:
    body.setdefault("reviewer", "rev1")
    return api.post(f"/v1/review/alerts/{alert}/actions", json=body)


def test_queue_filters(alerts: TestClient) -> None:
    api = alerts
    restrict, review = alert_of(api, "man"), alert_of(api, "uncle")
    q = api.get("/v1/review/alerts").json()
    assert q["total"] == 2
    assert [a["id"] for a in q["items"]] == [restrict, review]  # earliest due first
    assert [a["priority"] for a in q["items"]] == ["urgent", "high"]
    assert "evidence" not in q["items"][0]
    high = api.get("/v1/review/alerts", params={"priority": "high"}).json()
    assert [a["id"] for a in high["items"]] == [review]
    assert api.get("/v1/review/alerts", params={"overdue": True}).json()["total"] == 0
    with service_of(api).tx(write=True) as s:
        s.execute(
            update(Alert)
            .where(Alert.alert_id == restrict)
            .values(due_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    overdue = api.get("/v1/review/alerts", params={"overdue": "true"}).json()
    assert [a["id"] for a in overdue["items"]] == [restrict]
    assert overdue["items"][0]["overdue"] is True
    both = api.get("/v1/review/alerts", params=[("status", "open"), ("status", "dismissed")])
    assert both.json()["total"] == 2
    assert_problem(api.get("/v1/review/alerts", params={"status": "lost"}), 422, "status.0")
    page = api.get("/v1/review/alerts", params={"limit": 1, "offset": 1}).json()
    assert [a["id"] for a in page["items"]] == [review] and page["total"] == 2


def test_evidence_read_is_audited(alerts: TestClient) -> None:
    api = alerts
    restrict = alert_of(api, "man")
    assert_problem(api.get(f"/v1/review/alerts/{restrict}"), 422, "reviewer")
    r = api.get(f"/v1/review/alerts/{restrict}", params={"reviewer": "rev1"})
    assert r.status_code == 200, r.text
    detail = r.json()
    ev = detail["evidence"]
    assert {m["account"] for m in ev["minors"]} == {"girl", "boy"}
    assert any(s["excerpt"] and "几岁" in s["excerpt"] for s in ev["signals"]), ev["signals"]
    assert all("text" not in e for e in ev["timeline"])
    assert [a["kind"] for a in detail["actions"]] == ["auto_restrict"]
    assert detail["restrictions"][0]["automatic"] is True
    assert ledger_kinds(api)[-2:] == ["staff.read", "staff.read"]  # one per minor
    with service_of(api).tx() as s:
        subjects = s.scalars(
            select(LedgerEntry.subject).where(LedgerEntry.kind == "staff.read")
        ).all()
    assert sorted(subjects) == ["boy", "girl"]
    assert_problem(api.get("/v1/review/alerts/nope", params={"reviewer": "rev1"}), 404, "alert_id")


def test_dismiss_needs_a_reason_and_lifts_the_automatic_restriction(alerts: TestClient) -> None:
    api = alerts
    restrict = alert_of(api, "man")
    assert dm(api, "man", "teen")["outcome"] == "deny"
    assert_problem(act(api, restrict, kind="dismiss"), 422, "reason")
    assert_problem(act(api, restrict, kind="dismiss", reason=" "), 422, "reason")
    r = act(api, restrict, kind="dismiss", reason="误报：该用户是孩子的老师 / teacher")
    assert r.status_code == 200, r.text
    assert r.json()["alert"]["status"] == "dismissed" and len(r.json()["lifted"]) == 1
    assert dm(api, "man", "teen")["outcome"] == "allow"  # the next decision sees it
    assert_problem(act(api, restrict, kind="restrict"), 409, "kind")
    assert ledger_kinds(api)[-1] == "review.dismiss"


def test_actions_are_audited_and_the_report_is_downloadable(alerts: TestClient) -> None:
    api = alerts
    aid = alert_of(api, "man")
    r = api.post(f"/v1/review/alerts/{aid}/assign", json={"reviewer": "lead", "assignee": "rev1"})
    assert r.status_code == 200 and r.json()["status"] == "in_review"
    assert r.json()["assignee"] == "rev1"
    mine = api.get("/v1/review/alerts", params={"assignee": "rev1"}).json()
    assert [a["id"] for a in mine["items"]] == [aid]

    until = (datetime.now(UTC) + timedelta(days=90)).isoformat()
    r = act(api, aid, kind="restrict", reason="grooming pattern", until=until)
    assert r.status_code == 200, r.text
    restriction = r.json()["restriction"]
    assert restriction["automatic"] is False and restriction["until"] is not None
    assert len(r.json()["superseded"]) == 1
    assert dm(api, "man", "teen")["outcome"] == "deny"

    r = act(api, aid, kind="notify_guardians")
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(n["guardian"], n["child"]) for n in out["notifications"]] == [("mum", "girl")]
    assert out["without_guardian"] == ["boy"]

    assert_problem(act(api, aid, kind="remove_content"), 422, "items")
    r = act(api, aid, kind="remove_content", items=["post-1", "post-2"])
    assert r.json()["items"] == ["post-1", "post-2"]

    assert_problem(act(api, aid, kind="report"), 422, "authority")
    assert_problem(act(api, aid, kind="report", authority="fbi"), 422, "authority")
    r = act(api, aid, kind="report", authority="police", reference="JZ-77")
    assert r.status_code == 200, r.text
    doc = r.json()["document"]
    hold = r.json()["hold"]
    assert hold["active"] is True and hold["set_by"] == "rev1" and "art. 80" in hold["reason"]
    assert r.json()["alert"]["hold"] == hold and r.json()["action"]["details"]["hold"] is True
    got = api.get(doc["url"], params={"reviewer": "rev1"})
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/markdown")
    assert (
        hashlib.sha256(got.content).hexdigest() == doc["sha256"] == got.headers["x-content-sha256"]
    )
    text = got.text
    for needle in ("公安机关", "police", "JZ-77", "girl", "boy", "事件时间线 / Event timeline"):
        assert needle in text
    assert "你好，你几岁了？" not in text or "摘录" in text  # only as an excerpt of a signal
    assert_problem(
        api.get(f"/v1/review/alerts/{aid}/documents/999", params={"reviewer": "r"}),
        404,
        "document_id",
    )

    r = act(api, aid, kind="suspend", reason="repeat offender")
    assert r.json()["platform_must"]["zh"].startswith("在平台上暂停账号")
    assert_problem(act(api, aid, kind="dismiss", reason="changed my mind"), 409, "kind")
    assert_problem(act(api, aid, kind="ban"), 422, "kind")

    kinds = ledger_kinds(api)
    expected = [
        "review.auto_restrict",
        "review.assign",
        "review.restrict",
        "review.notify_guardians",
        "review.remove_content",
        "review.report",
        "staff.read",
        "staff.read",
        "review.suspend",
    ]
    assert [k for k in kinds if k.startswith(("review.", "staff."))] == expected
    detail = api.get(f"/v1/review/alerts/{aid}", params={"reviewer": "rev1"}).json()
    assert detail["status"] == "actioned" and detail["first_action_at"] is not None
    assert [a["kind"] for a in detail["actions"]] == [
        "auto_restrict",
        "assign",
        "restrict",
        "notify_guardians",
        "remove_content",
        "report",
        "suspend",
    ]
    assert detail["actions"][2]["reason"] == "grooming pattern"
    with service_of(api).tx() as s:
        p = s.scalars(select(Platform)).one()
        assert ledger.verify(s, p.id) is None
        bodies = [
            json.loads(b)
            for b in s.scalars(
                select(LedgerEntry.body).where(LedgerEntry.kind == "review.restrict")
            )
        ]
    assert "grooming pattern" not in json.dumps(bodies)
    assert bodies[0]["data"]["reason_sha256"] == hashlib.sha256(b"grooming pattern").hexdigest()


def test_lifting_a_restriction(alerts: TestClient) -> None:
    api = alerts
    items = api.get("/v1/review/restrictions").json()["items"]
    assert len(items) == 1 and items[0]["account"] == "man"
    assert items[0]["alert"] == alert_of(api, "man")
    rid = items[0]["id"]
    assert_problem(
        api.post(f"/v1/review/restrictions/{rid}/lift", json={"reviewer": "rev1"}), 422, "reason"
    )
    r = api.post(
        f"/v1/review/restrictions/{rid}/lift",
        json={"reviewer": "rev1", "reason": "account recovered from a hijack"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["lifted_by"] == "rev1"
    assert dm(api, "man", "teen")["outcome"] == "allow"
    again = api.post(
        f"/v1/review/restrictions/{rid}/lift", json={"reviewer": "rev1", "reason": "twice"}
    )
    assert_problem(again, 409, "restriction")
    assert api.get("/v1/review/restrictions").json()["items"] == []
    history = api.get("/v1/review/restrictions", params={"active": False}).json()["items"]
    assert history[0]["lift_reason"] == "account recovered from a hijack"
    assert ledger_kinds(api)[-1] == "review.lift"
    assert_problem(
        api.post("/v1/review/restrictions/9999/lift", json={"reviewer": "r", "reason": "why not"}),
        404,
        "restriction_id",
    )


def test_another_platform_sees_nothing(alerts: TestClient) -> None:
    from .conftest import register

    key = register(alerts, "other")
    h = {"Authorization": f"Bearer {key}"}
    assert alerts.get("/v1/review/alerts", headers=h).json()["total"] == 0
    aid = alert_of(alerts, "man")
    r = alerts.get(f"/v1/review/alerts/{aid}", params={"reviewer": "x"}, headers=h)
    assert_problem(r, 404, "alert_id")


def test_legal_hold_set_and_released_by_a_reviewer(alerts: TestClient) -> None:
    api = alerts
    aid = alert_of(api, "uncle")
    url = f"/v1/review/alerts/{aid}/hold"
    assert_problem(api.post(url, json={"reviewer": "lead"}), 422, "reason")
    assert_problem(api.post(url, json={"reviewer": "lead", "reason": "x"}), 422, "reason")
    assert_problem(api.post(url, json={"reason": "police request"}), 422, "reviewer")
    assert_problem(
        api.post(url + "/release", json={"reviewer": "lead", "reason": "nothing held"}), 409, "hold"
    )
    assert_problem(
        api.post("/v1/review/alerts/nope/hold", json={"reviewer": "l", "reason": "abc"}),
        404,
        "alert_id",
    )
    r = api.post(url, json={"reviewer": "lead", "reason": "police request JZ-9"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hold"]["active"] is True and body["hold"]["reason"] == "police request JZ-9"
    assert body["action"]["kind"] == "hold" and body["alert"]["status"] == "open"
    assert_problem(api.post(url, json={"reviewer": "lead", "reason": "again"}), 409, "hold")
    queue = api.get("/v1/review/alerts", params={"sender": "uncle"}).json()["items"][0]
    assert queue["hold"]["active"] is True and queue["hold"]["set_by"] == "lead"
    # a dismissed alert keeps its hold: the evidence stays until a reviewer releases it
    r = act(api, aid, kind="dismiss", reason="not grooming after all")
    assert r.status_code == 200, r.text
    r = api.post(url + "/release", json={"reviewer": "lead2", "reason": "police closed JZ-9"})
    assert r.status_code == 200, r.text
    hold = r.json()["hold"]
    assert hold["active"] is False and hold["released_at"] is not None
    assert hold["set_by"] == "lead"  # who set it stays on record
    detail = api.get(f"/v1/review/alerts/{aid}", params={"reviewer": "rev1"}).json()
    assert [(a["kind"], a["actor"]) for a in detail["actions"]] == [
        ("hold", "lead"),
        ("dismiss", "rev1"),
        ("release", "lead2"),
    ]
    assert detail["actions"][2]["reason"] == "police closed JZ-9"
    kinds = [k for k in ledger_kinds(api) if k.startswith("review.")]
    assert kinds[-3:] == ["review.hold", "review.dismiss", "review.release"]
    with service_of(api).tx() as s:
        p = s.scalars(select(Platform)).one()
        assert ledger.verify(s, p.id) is None
        bodies = [
            json.loads(b)["data"]
            for b in s.scalars(
                select(LedgerEntry.body)
                .where(LedgerEntry.kind.in_(("review.hold", "review.release")))
                .order_by(LedgerEntry.seq)
            )
        ]
    assert "police request JZ-9" not in json.dumps(bodies, ensure_ascii=False)
    assert bodies[0]["reason_sha256"] == hashlib.sha256(b"police request JZ-9").hexdigest()
    assert bodies[1]["by"] == "lead2" and bodies[1]["set_by"] == "lead"
