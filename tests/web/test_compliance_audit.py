"""The rectification panel of the compliance dashboard and the audit run page, on SQLite and
PostgreSQL: measures counted by status, overdue ones listed with their days overdue, audit runs
linked newest first, each run's counts and statuses per requirement; own platform only (404
otherwise), compliance officers and platform administrators only, in both languages."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from html import unescape

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from qinglang.api.service import now_utc
from qinglang.policy import load_policy
from qinglang.store import dashboard as dash
from qinglang.store import rectification as rect
from qinglang.store import repo
from qinglang.store.models import AuditRun, Platform
from tests.audit.test_measures import CATALOGUE

from .conftest import OTHER_PLATFORM, PLATFORM, Login, MakeUser

PAGE = "/console/compliance"
D = timedelta(days=1)


def today() -> date:
    return now_utc().astimezone(load_policy("cn").tz).date()


def run_row(s: Session, p: Platform, period: str, statuses: dict[str, str], at: datetime) -> int:
    counts = [
        sum(1 for v in statuses.values() if v == k) for k in ("pass", "fail", "not_evidenced")
    ]
    r = AuditRun(
        platform_id=p.id, period=period, start=date(2026, 1, 1), end=date(2026, 12, 31),
        as_of=at, passed=counts[0], failed=counts[1], not_evidenced=counts[2],
        statuses=statuses, created_by="auditor", created_at=at, manifest_sha256="ab" * 32,
    )  # fmt: skip
    s.add(r)
    s.flush()
    return r.id


@pytest.fixture
def seeded(console_app: FastAPI) -> dict[str, int]:
    """Alpha: two runs, four measures (two overdue, one closed); beta: one run and a measure."""
    now = now_utc()
    day = today()
    with console_app.state.service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, PLATFORM)
        o = repo.get_platform_by_slug(s, OTHER_PLATFORM)
        assert p is not None and o is not None
        old = run_row(s, p, "2025", {"REG-01": "fail", "USE-01": "pass"}, now - 400 * D)
        new = run_row(
            s, p, "2026", {"REG-01": "fail", "GOV-01": "not_evidenced", "USE-01": "pass"}, now - D
        )
        other = run_row(s, o, "2026", {"REG-01": "fail"}, now - D)

        def add(plat: Platform, area: str, owner: str, due: date, run: int | None = None) -> None:
            rect.create_measure(
                s, plat, area=area, description="整改", owner=owner, due_date=due,
                requirement_ids=[], catalogue=CATALOGUE, actor="officer", now=now - 2 * D,
                run_id=run,
            )  # fmt: skip

        add(p, "registration", "产品部 张", day - 12 * D, new)
        add(p, "governance", "法务部 王", day - 3 * D)
        add(p, "contact", "安全部", day + 30 * D)
        add(p, "use", "运营部", day - 50 * D)
        m4 = rect.get_measure(s, p.id, "M-0004")
        assert m4 is not None
        for st in ("in_progress", "done", "closed"):
            rect.set_status(s, m4, st, catalogue=CATALOGUE, actor="officer", now=now)
        m2 = rect.get_measure(s, p.id, "M-0002")
        assert m2 is not None
        rect.set_status(s, m2, "in_progress", catalogue=CATALOGUE, actor="officer", now=now)
        add(o, "use", "beta-owner", day - 99 * D)
        return {"old": old, "new": new, "other": other, "platform": p.id}


def signed_in(client: TestClient, make_user: MakeUser, login: Login, role: str) -> TestClient:
    name, password = make_user(role, "mum" if role == "guardian" else None)
    return login(client, name, password)


def figure(html: str, label: str) -> str:
    m = re.search(r"<dt>" + re.escape(label) + r"</dt><dd>([^<]*)</dd>", html)
    assert m is not None, label
    return unescape(m.group(1))


def rows(html: str, table_id: str) -> list[list[str]]:
    m = re.search(r'<table class="cp-table" id="' + table_id + r'">(.*?)</table>', html, re.S)
    assert m is not None, table_id
    body = m.group(1).split("<tbody>")[1]
    return [
        [unescape(c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)]
        for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_store_queries(console_app: FastAPI, seeded: dict[str, int]) -> None:
    with console_app.state.service.tx() as s:
        links = dash.audit_reports(s, seeded["platform"])
        r = dash.rectification(s, seeded["platform"], today())
    assert [(x.title, x.period, x.url) for x in links] == [
        ("Audit 2026", "2026", f"/console/compliance/audits/{seeded['new']}"),
        ("Audit 2025", "2025", f"/console/compliance/audits/{seeded['old']}"),
    ]
    assert r.counts == {"open": 2, "in_progress": 1, "done": 0, "closed": 1} and r.total == 4
    assert [(o.code, o.days_overdue) for o in r.overdue] == [("M-0001", 12), ("M-0002", 3)]


def test_the_rectification_panel_and_report_links(
    seeded: dict[str, int], client: TestClient, make_user: MakeUser, login: Login
) -> None:
    officer = signed_in(client, make_user, login, "compliance")
    en = officer.get(PAGE + "?lang=en")
    assert en.status_code == 200, en.text
    html = en.text
    assert '<h2 id="cp-h-rectification">Rectification</h2>' in html
    assert figure(html, "Measures") == "4"
    assert figure(html, "Open") == "2"
    assert figure(html, "In progress") == "1"
    assert figure(html, "Done, to be verified") == "0"
    assert figure(html, "Closed") == "1"
    assert figure(html, "Overdue") == "2"
    assert rows(html, "cp-overdue-measures") == [
        ["M-0001", "Registration", "产品部 张", "Open", (today() - 12 * D).isoformat(), "12"],
        ["M-0002", "Governance", "法务部 王", "In progress", (today() - 3 * D).isoformat(), "3"],
    ]
    assert "beta-owner" not in html  # the other platform's measure
    links = re.findall(r'<a href="(/console/compliance/audits/\d+)">([^<]*)</a>', html)
    assert links == [
        (f"/console/compliance/audits/{seeded['new']}", "Audit 2026"),
        (f"/console/compliance/audits/{seeded['old']}", "Audit 2025"),
    ]
    zh = officer.get(PAGE + "?lang=zh").text
    assert "整改措施" in zh and figure(zh, "已逾期") == "2"
    assert rows(zh, "cp-overdue-measures")[0][1] == "注册"


def test_no_measures_no_overdue_table(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    html = signed_in(client, make_user, login, "platform_admin").get(PAGE + "?lang=en").text
    assert figure(html, "Measures") == "0" and "No measure is overdue." in html
    assert 'id="cp-overdue-measures"' not in html


def test_the_audit_run_page(
    seeded: dict[str, int], client: TestClient, make_user: MakeUser, login: Login
) -> None:
    admin = signed_in(client, make_user, login, "platform_admin")
    r = admin.get(f"{PAGE}/audits/{seeded['new']}?lang=en")
    assert r.status_code == 200, r.text
    html = r.text
    assert "<h1>Audit 2026</h1>" in html and "Period 2026-01-01 to 2026-12-31" in html
    assert figure(html, "Pass") == "1" and figure(html, "Fail") == "1"
    assert figure(html, "Not evidenced") == "1"
    statuses = {row[0]: row[2] for row in rows(html, "cp-audit-statuses")}
    assert statuses == {"REG-01": "Fail", "GOV-01": "Not evidenced", "USE-01": "Pass"}
    assert "M-0001" in html and "Measures opened from this audit" in html
    zh = admin.get(f"{PAGE}/audits/{seeded['new']}?lang=zh").text
    assert "2026 合规审计" in zh and "未通过" in zh
    old = admin.get(f"{PAGE}/audits/{seeded['old']}?lang=en").text
    assert "No measure was opened from this audit yet." in old


def test_the_audit_page_is_scoped_and_role_checked(
    seeded: dict[str, int], client: TestClient, make_user: MakeUser, login: Login
) -> None:
    officer = signed_in(client, make_user, login, "compliance")
    for path in (
        f"/audits/{seeded['other']}",  # the other platform's run
        "/audits/999999",
        "/audits/abc",
        "/audits/-1",
    ):
        assert officer.get(PAGE + path).status_code == 404, path


@pytest.mark.parametrize("role", ["reviewer", "guardian"])
def test_other_roles_are_refused_the_audit_page(
    seeded: dict[str, int], client: TestClient, make_user: MakeUser, login: Login, role: str
) -> None:
    other = signed_in(client, make_user, login, role)
    assert other.get(f"{PAGE}/audits/{seeded['new']}").status_code == 403


def test_not_signed_in_is_sent_to_login(seeded: dict[str, int], client: TestClient) -> None:
    r = client.get(f"{PAGE}/audits/{seeded['new']}")
    assert r.status_code == 303 and "/console/login" in r.headers["location"]


def test_requirement_texts_come_from_the_shipped_catalogue(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    from qinglang.audit.catalogue import load_catalogue

    req = load_catalogue()[0]
    with console_app.state.service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, PLATFORM)
        assert p is not None
        run = run_row(s, p, "2026", {req.id: "pass", "GONE-1": "fail"}, now_utc())
    officer = signed_in(client, make_user, login, "compliance")
    en = officer.get(f"{PAGE}/audits/{run}?lang=en").text
    found = {r[0]: r for r in rows(en, "cp-audit-statuses")}
    assert found[req.id][2] == "Pass" and found[req.id][3] == req.text_en
    assert found["GONE-1"][1:] == ["—", "Fail", "—"]
    assert list(found) == [req.id, "GONE-1"]  # catalogue order, unknown ids last
    zh = officer.get(f"{PAGE}/audits/{run}?lang=zh").text
    assert {r[0]: r for r in rows(zh, "cp-audit-statuses")}[req.id][3] == req.text_zh
