"""The console's must-show flows in a real browser (Playwright + Debian Chromium):

- a guardian links a child, withdraws "recommend my child's videos", and the exposure decision
  through the API then denies;
- a reviewer opens an alert, restricts the sender, and the sender's next DM to a minor is denied;
- a guardian who edits the URL to another family's child gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from qinglang.risk.consumer import Consumer

from ...api.consent_testing import ELEMENTS, PUBLISH, RECOMMEND, ric
from ...api.test_events_api import case_events
from .conftest import Live, sign_in

pytestmark = pytest.mark.browser

ADULT = ric(date(1985, 5, 17))


def put_account(live: Live, name: str, **body: Any) -> None:
    r = live.api.put(f"/v1/accounts/{name}", json=body)
    assert r.status_code == 200, r.text


def publish(live: Live, *items: dict[str, Any]) -> None:
    body = {"title": "儿童个人信息保护规则", "elements": ELEMENTS, "items": list(items)}
    r = live.api.post(
        "/v1/notices",
        json={"language": "zh", "audience": "child", "published_by": "dpo", "body": body},
    )
    assert r.status_code == 201, r.text


def recommend_outcome(live: Live) -> str:
    body = {"viewer": "stranger", "item": "vid", "surface": "recommend"}
    r = live.api.post("/v1/decide/exposure", json=body)
    assert r.status_code == 200, r.text
    outcome: str = r.json()["outcome"]
    return outcome


def press(page: Any, purpose: str, decision: str) -> None:
    """Press one of the three equal buttons of a purpose's consent form."""
    form = page.locator(f"form:has(input[name=purpose][value={purpose}])")
    with page.expect_navigation():
        form.locator(f"button[name=decision][value={decision}]").click()


def test_guardian_links_a_child_and_withdrawing_recommend_denies_exposure(
    live: Live, page_of: Callable[..., Any]
) -> None:
    put_account(live, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    put_account(live, "stranger", birth_date="1980-01-01", age_source="verified")
    flags = [{"item": "vid", "owner": "girl", "kind": "minor_pi"}]
    assert live.api.post("/v1/content/flags", json={"flags": flags}).status_code == 200
    publish(live, dict(PUBLISH, audience="public"), RECOMMEND)
    code = live.api.post("/v1/accounts/girl/guardian-link-codes").json()["code"]
    page = page_of()
    sign_in(page, live, live.user("guardian", "mum"))

    page.goto(f"{live.url}/console/guardian")
    page.fill("#account", "girl")
    page.fill("#link_code", code)
    page.select_option("#method", "id_number_realname")
    page.fill("#id_number", ADULT)
    with page.expect_navigation():
        page.click("form[action$='/link'] button[type=submit]")
    assert page.url.endswith("/console/guardian/children/girl"), page.url

    assert recommend_outcome(live) == "deny"  # nothing consented yet
    press(page, "publish_content", "grant")
    press(page, "recommend_content", "grant")
    assert recommend_outcome(live) == "allow"
    press(page, "recommend_content", "withdraw")
    assert recommend_outcome(live) == "deny"


def test_reviewer_restricts_the_sender_and_the_next_dm_is_denied(
    live: Live, page_of: Callable[..., Any]
) -> None:
    for name, born in (("uncle", "1975-05-05"), ("girl", "2016-03-01"), ("teen", "2011-01-15")):
        put_account(live, name, birth_date=born, age_source="verified")
    put_account(live, "boy", birth_date="2015-07-01", age_source="guardian_declared")
    r = live.api.post("/v1/events", json={"events": case_events("uncle", strong=False)})
    assert r.status_code == 200, r.text
    service = live.app.state.service
    report = Consumer(service.sessions, service.write_sessions, service.policy_for).run_once()
    assert report.alerts == 1 and report.restrictions == 0

    def dm() -> str:
        body = {"action": "dm", "sender": "uncle", "recipient": "teen"}
        r = live.api.post("/v1/decide/contact", json=body)
        assert r.status_code == 200, r.text
        outcome: str = r.json()["outcome"]
        return outcome

    assert dm() == "allow"
    page = page_of()
    sign_in(page, live, live.user("reviewer"))
    page.goto(f"{live.url}/console/review")
    with page.expect_navigation():
        page.locator("a[href*='/console/review/alerts/']").first.click()
    assert "uncle" in page.content()
    form = page.locator("form[action$='/actions/restrict']")
    form.locator("textarea, input[name=reason]").first.fill(
        "grooming pattern: age, school, meeting"
    )
    form.locator("select[name=duration]").select_option("30d")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert dm() == "deny"


def test_a_guardian_editing_the_url_to_another_familys_child_gets_403(
    live: Live, page_of: Callable[..., Any]
) -> None:
    put_account(live, "girl", birth_date="2016-03-01")
    put_account(live, "son", birth_date="2015-02-02")
    for guardian, child in (("mum", "girl"), ("dad", "son")):
        assert live.api.put(f"/v1/guardians/{guardian}", json={}).status_code == 200
        r = live.api.post(
            f"/v1/guardians/{guardian}/children",
            json={
                "account": child,
                "method": "signed_form",
                "verified_by": "ops",
                "claims": {"reference": f"form-{child}"},
            },
        )
        assert r.status_code == 201, r.text
    page = page_of()
    sign_in(page, live, live.user("guardian", "mum"))
    mine = page.goto(f"{live.url}/console/guardian/children/girl")
    assert mine is not None and mine.status == 200
    for path in ("", "/data", "/export", "/requests", "/settings", "/actions"):
        theirs = page.goto(f"{live.url}/console/guardian/children/son{path}")
        assert theirs is not None and theirs.status == 403, path
        assert "son" not in page.locator("main").inner_text()
