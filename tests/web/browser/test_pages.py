"""Every console page in Chinese and English, at desktop and phone width, in a real browser:
it renders (missing translations raise: QINGLANG_I18N_STRICT=1), no translation key shows as
text, nothing overflows horizontally, and axe-core finds no serious or critical violation.

With ``QINGLANG_SCREENSHOTS=DIR`` each view is also saved as a JPEG in DIR (docs/screenshots/
holds the set that was looked at; see docs/console.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qinglang.audit import run as audit_run
from qinglang.audit.catalogue import load_catalogue
from qinglang.risk.consumer import Consumer
from qinglang.store import rectification, repo
from qinglang.web import routes

from ...api.consent_testing import ELEMENTS, PUBLISH, RECOMMEND
from ...api.test_events_api import case_events
from .conftest import DESKTOP, PHONE, Live, axe_violations, overflow, sign_in

pytestmark = pytest.mark.browser

KEY_AS_TEXT = re.compile(r"\b(?:auth|common|admin|guardian|reviewer|compliance)\.[a-z_]+\.[a-z_.]+")


@dataclass
class World:
    """A served platform with something on every page, and a user per role."""

    live: Live
    users: dict[str, str]
    alert: str
    request_id: int
    audit_run: int


def _put(live: Live, name: str, **body: Any) -> None:
    r = live.api.put(f"/v1/accounts/{name}", json=body)
    assert r.status_code == 200, r.text


@pytest.fixture
def world(live: Live) -> Iterator[World]:
    _put(live, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    for name, born in (("uncle", "1975-05-05"), ("teen", "2011-01-15"), ("man", "1980-02-02")):
        _put(live, name, birth_date=born, age_source="verified")
    _put(live, "boy", birth_date="2015-07-01", age_source="guardian_declared")
    assert live.api.put("/v1/guardians/mum", json={}).status_code == 200
    r = live.api.post(
        "/v1/guardians/mum/children",
        json={
            "account": "girl",
            "method": "signed_form",
            "verified_by": "ops",
            "claims": {"reference": "form-1"},
        },
    )
    assert r.status_code == 201, r.text
    body = {"title": "儿童个人信息保护规则", "elements": ELEMENTS, "items": [PUBLISH, RECOMMEND]}
    r = live.api.post(
        "/v1/notices",
        json={"language": "zh", "audience": "child", "published_by": "dpo", "body": body},
    )
    assert r.status_code == 201, r.text
    r = live.api.post(
        "/v1/rights-requests",
        json={"account": "girl", "kind": "correction", "requester": "guardian", "guardian": "mum",
              "details": {"birth_date": "2016-03-02"}},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    r = live.api.post("/v1/events", json={"events": case_events("man")})
    assert r.status_code == 200, r.text
    service = live.app.state.service
    Consumer(service.sessions, service.write_sessions, service.policy_for).run_once()
    with service.tx() as s:
        p = repo.get_platform_by_slug(s, "alpha")
        assert p is not None
        from qinglang.store.models import Alert

        alert = s.query(Alert.alert_id).filter(Alert.platform_id == p.id).first()
        assert alert is not None
    with service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, "alpha")
        assert p is not None
        now = datetime.now(UTC)
        job = audit_run.RunInput("2026", date(2026, 1, 1), date(2026, 12, 31), now, 50)
        run = audit_run.record_run(
            s, p, audit_run.audit(s, service, p, job), "ci", None, None, None
        )
        rectification.measures_from_run(
            s, p, run.id, owner="dpo", due_date=now.date() - timedelta(days=3),
            catalogue=load_catalogue(), actor="compliance", now=now,
        )  # fmt: skip
        run_id = int(run.id)
    users = {
        "guardian": live.user("guardian", "mum"),
        "reviewer": live.user("reviewer"),
        "platform_admin": live.user("platform_admin"),
    }
    if "compliance" in routes.ROUTERS:
        users["compliance"] = live.user("compliance")
    yield World(live, users, str(alert[0]), int(request_id), run_id)


def _pages(w: World) -> list[tuple[str | None, str, str]]:
    """(role signed in, name, path) of every page."""
    child = "/console/guardian/children/girl"
    pages: list[tuple[str | None, str, str]] = [
        (None, "login", "/console/login"),
        ("guardian", "guardian-home", "/console/guardian"),
        ("guardian", "guardian-child", child),
        ("guardian", "guardian-data", f"{child}/data"),
        ("guardian", "guardian-requests", f"{child}/requests"),
        ("guardian", "guardian-request", f"{child}/requests/{w.request_id}"),
        ("guardian", "guardian-settings", f"{child}/settings"),
        ("guardian", "guardian-actions", f"{child}/actions"),
        ("guardian", "error-403", "/console/guardian/children/uncle"),
        ("guardian", "error-404", "/console/no-such-page"),
        ("reviewer", "review-queue", "/console/review"),
        ("reviewer", "review-alert", f"/console/review/alerts/{w.alert}"),
        ("platform_admin", "admin-home", "/console/admin"),
        ("platform_admin", "admin-keys", "/console/admin/keys"),
        ("platform_admin", "admin-policy", "/console/admin/policy"),
        ("platform_admin", "admin-users", "/console/admin/users"),
    ]
    if "compliance" in w.users:
        pages.append(("compliance", "compliance", "/console/compliance"))
        pages.append(
            ("compliance", "compliance-audit", f"/console/compliance/audits/{w.audit_run}")
        )
    return pages


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_in_both_languages(
    world: World, page_of: Callable[..., Any], viewport: dict[str, int]
) -> None:
    shots = os.environ.get("QINGLANG_SCREENSHOTS")
    problems: list[str] = []
    pages: dict[str | None, Any] = {}
    for role, name, path in _pages(world):
        if role not in pages:
            pages[role] = page_of(viewport)
            if role is not None:
                sign_in(pages[role], world.live, world.users[role])
        page = pages[role]
        for lang in ("zh", "en"):
            sep = "&" if "?" in path else "?"
            response = page.goto(f"{world.live.url}{path}{sep}lang={lang}")
            assert response is not None
            expected = 403 if name == "error-403" else 404 if name == "error-404" else 200
            where = f"{name} [{lang}, {viewport['width']}px]"
            if response.status != expected:
                problems.append(f"{where}: HTTP {response.status}")
                continue
            text = page.locator("body").inner_text()
            keys = KEY_AS_TEXT.findall(text)
            if keys:
                problems.append(f"{where}: untranslated {sorted(set(keys))[:5]}")
            if page.locator("html").get_attribute("lang") != ("zh-CN" if lang == "zh" else "en"):
                problems.append(f"{where}: html lang is not {lang}")
            wide = overflow(page)
            if wide:
                problems.append(f"{where}: {wide}px horizontal overflow")
            for v in axe_violations(page):
                problems.append(f"{where}: axe {v['impact']} {v['id']} at {v['nodes']}")
            if shots:
                width = "phone" if viewport is PHONE else "desktop"
                out = Path(shots) / f"{name}-{lang}-{width}.jpg"
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=True, type="jpeg", quality=70)
    assert not problems, "\n".join(problems)
