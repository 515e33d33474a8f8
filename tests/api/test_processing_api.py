"""POST /v1/processing: records of processing, all or nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinglang.store.models import ProcessingRecord


def _count(api: TestClient) -> int:
    service = api.app.state.service  # type: ignore[attr-defined]
    with service.tx() as s:
        return int(s.scalar(select(func.count(ProcessingRecord.id))) or 0)


def _record(account: str = "kid", **over: object) -> dict[str, object]:
    return {
        "account": account,
        "purpose": "registration",
        "category": "face",
        "at": "2026-03-01T08:00:00+08:00",
        **over,
    }


def test_records_are_stored(api: TestClient) -> None:
    assert api.put("/v1/accounts/kid", json={"birth_date": "2016-03-01"}).status_code in (200, 201)
    r = api.post("/v1/processing", json={"records": [_record(), _record(category="location")]})
    assert r.status_code == 201, r.text
    assert r.json() == {"accepted": 2}
    assert _count(api) == 2
    service = api.app.state.service  # type: ignore[attr-defined]
    with service.tx() as s:
        at = s.scalars(select(ProcessingRecord.at)).first()
    assert at is not None and at.isoformat() == "2026-03-01T00:00:00+00:00"


def test_an_unknown_account_rejects_the_whole_batch(api: TestClient) -> None:
    assert api.put("/v1/accounts/kid", json={"birth_date": "2016-03-01"}).status_code in (200, 201)
    r = api.post("/v1/processing", json={"records": [_record(), _record("nobody")]})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    assert errors == [
        {
            "index": 1,
            "field": "records.1.account",
            "message": "no account 'nobody' on this platform",
        }
    ]
    assert _count(api) == 0


def test_bad_fields_are_named(api: TestClient) -> None:
    for bad, field in (
        (_record(purpose="Not A Name"), "purpose"),
        (_record(at="2026-03-01T08:00:00"), "at"),
        (_record(extra=1), "extra"),
    ):
        r = api.post("/v1/processing", json={"records": [bad]})
        assert r.status_code == 422, r.text
        assert field in r.text
    assert api.post("/v1/processing", json={"records": []}).status_code == 422


def test_needs_an_api_key(app_client: TestClient) -> None:
    r = app_client.post("/v1/processing", json={"records": [_record()]})
    assert r.status_code == 401
