"""The service's clock: what a request records (notices, guardian links, consents, follows, the
ledger) is stamped with `Service.clock`, the wall clock unless a simulation sets its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from qinglang.store.models import Consent, GuardianLink, LedgerEntry, Notice, Relationship

from .consent_testing import PUBLISH, RECOMMEND, consent, link, publish
from .test_api import put_account

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_clock_is_the_wall_clock_by_default(app_client: TestClient) -> None:
    service: Any = app_client.app.state.service
    before = datetime.now(UTC)
    now = service.clock()
    assert before <= now <= datetime.now(UTC) and now.tzinfo is not None


def test_requests_stamp_what_they_record_with_the_service_clock(api: TestClient) -> None:
    service: Any = api.app.state.service
    now = [T0]
    service.clock = lambda: now[0]
    put_account(api, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    put_account(api, "fan", birth_date="1990-01-01", age_source="verified")
    version = publish(api, PUBLISH, RECOMMEND)["version"]
    now[0] = T0 + HOUR
    link(api, "mum", "girl")
    now[0] = T0 + 2 * HOUR
    r = consent(api, "girl", "publish_content", "grant", version, audience="followers")
    assert r.status_code == 201, r.text
    assert _instant(r.json()["decided_at"]) == T0 + 2 * HOUR
    listed = api.get("/v1/accounts/girl/consents").json()
    assert [_instant(c["decided_at"]) for c in listed] == [T0 + 2 * HOUR]
    now[0] = T0 + 3 * HOUR
    follow = {"events": [{"type": "follow", "src": "fan", "dst": "girl"}]}
    assert api.post("/v1/relationships", json=follow).status_code == 200
    with service.tx() as s:
        assert s.scalars(select(Notice.published_at)).all() == [T0]
        assert s.scalars(select(GuardianLink.verified_at)).all() == [T0 + HOUR]
        assert s.scalars(select(Consent.decided_at)).all() == [T0 + 2 * HOUR]
        assert s.scalars(select(Relationship.created_at)).all() == [T0 + 3 * HOUR]
        ledger = s.execute(select(LedgerEntry.kind, LedgerEntry.at).order_by(LedgerEntry.seq))
        assert [tuple(row) for row in ledger] == [
            ("notice.published", T0),
            ("guardian.verified", T0 + HOUR),
            ("consent.granted", T0 + 2 * HOUR),
        ]
