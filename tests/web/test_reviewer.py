"""The reviewer workspace (/console/review) on SQLite and PostgreSQL: the queue and its filters,
the SLA countdown, the alert page (evidence, audited view), every action through the forms with
its audit entry, CSRF on every POST, roles and platforms, and restrict → the API denies contact."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from qinglang.store import repo
from qinglang.store.models import Alert, LedgerEntry

from ..api.test_api import put_account
from ..api.test_events_api import case_events, dm, drain, post
from .conftest import PLATFORM, Login, MakeUser


@pytest.fixture(autouse=True)
def no_background_consumer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests drain the risk consumer themselves."""
    monkeypatch.setenv("QINGLANG_CONSUMER", "off")
    yield


@dataclass
class Case:
    """Platform alpha with two queued alerts and clients for the API and the console."""

    app: FastAPI
    api: TestClient
    urgent: str  # restrict-level alert of 'man' (automatically restricted)
    high: str  # review-level alert of 'uncle' (not restricted)


def alert_id_of(app: FastAPI, sender: str) -> str:
    with app.state.service.tx() as s:
        found = s.scalars(select(Alert.alert_id).where(Alert.sender == sender)).all()
    assert len(found) == 1, found
    return str(found[0])


@pytest.fixture
def case(console_app: FastAPI) -> Iterator[Case]:
    """The risk case of tests/api processed on platform alpha: an urgent alert for 'man', a
    high one for 'uncle'; 'girl' has a verified guardian 'mum'."""
    service = console_app.state.service
    with service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, PLATFORM)
        assert p is not None
        key = repo.issue_api_key(s, p, label="tests")
    api = TestClient(console_app, raise_server_exceptions=False)
    api.headers["Authorization"] = f"Bearer {key}"
    put_account(api, "man", birth_date="1980-02-02", age_source="verified")
    put_account(api, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    put_account(api, "boy", birth_date="2015-07-01", age_source="guardian_declared")
    put_account(api, "teen", birth_date="2011-01-15", age_source="verified")
    put_account(api, "uncle", birth_date="1975-05-05", age_source="verified")
    with service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, PLATFORM)
        assert p is not None
        girl = repo.get_account(s, p.id, "girl")
        assert girl is not None
        mum = repo.upsert_guardian(s, p.id, "mum")
        repo.link_guardian(s, mum.id, girl.id, method="signed_form", verified_by="ops")
    post(api, case_events())
    post(api, case_events("uncle", strong=False))
    report = drain(api)
    assert report.alerts == 2 and report.restrictions == 1
    yield Case(console_app, api, alert_id_of(console_app, "man"), alert_id_of(console_app, "uncle"))
    api.close()


@pytest.fixture
def reviewer(client: TestClient, make_user: MakeUser, login: Login) -> TestClient:
    """A signed-in reviewer of platform alpha (``client.username`` is set)."""
    name, password = make_user("reviewer")
    signed = login(client, name, password)
    signed.username = name
    return signed


def ledger(app: FastAPI) -> list[tuple[str, str | None, dict[str, Any]]]:
    """Every ledger entry as (kind, subject, data)."""
    with app.state.service.tx() as s:
        rows = s.execute(
            select(LedgerEntry.kind, LedgerEntry.subject, LedgerEntry.body).order_by(
                LedgerEntry.platform_id, LedgerEntry.seq
            )
        ).all()
    out = []
    for kind, subject, body in rows:
        data = json.loads(body)
        out.append((kind, subject, data.get("data", data)))
    return out


def kinds(app: FastAPI) -> list[str]:
    return [k for k, _, _ in ledger(app)]


def alert_row(app: FastAPI, alert_id: str) -> Alert:
    with app.state.service.tx() as s:
        row: Alert = s.scalars(select(Alert).where(Alert.alert_id == alert_id)).one()
        s.expunge(row)
        return row


def act(client: TestClient, alert: str, path: str, csrf: bool = True, **form: str) -> Any:
    """POST an alert form (with the session's CSRF token unless told not to)."""
    if csrf:
        form.setdefault("csrf_token", client.csrf)
    return client.post(f"/console/review/alerts/{alert}/{path}", data=form)


def rows_in_order(html: str) -> list[str]:
    return re.findall(r'<tr class="rv-row" data-alert="([^"]+)"', html)


# ---------------------------------------------------------------- queue


def test_queue_sorted_with_filters_and_sla(case: Case, reviewer: TestClient) -> None:
    r = reviewer.get("/console/review")
    assert r.status_code == 200, r.text
    assert rows_in_order(r.text) == [case.urgent, case.high]  # urgent first
    assert "剩余" in r.text  # SLA in words (Chinese by default) ...
    due = alert_row(case.app, case.urgent).due_at.astimezone(UTC).isoformat()
    assert f'datetime="{due}"' in r.text  # ... and machine-readable
    assert 'hx-trigger="every 30s"' in r.text
    assert "/console/review/assets/reviewer.js" in r.text

    high = reviewer.get("/console/review", params={"f": "1", "priority": "high"})
    assert rows_in_order(high.text) == [case.high]
    both = reviewer.get("/console/review", params=[("f", "1"), ("status", "dismissed")])
    assert rows_in_order(both.text) == []

    assert act(reviewer, case.high, "assign").status_code == 303
    mine = reviewer.get("/console/review", params={"f": "1", "assigned": "me"})
    assert rows_in_order(mine.text) == [case.high]
    nobody = reviewer.get("/console/review", params={"f": "1", "assigned": "none"})
    assert rows_in_order(nobody.text) == [case.urgent]
    anyone = reviewer.get("/console/review", params={"f": "1", "assigned": "anyone-else"})
    assert rows_in_order(anyone.text) == [case.urgent, case.high]  # unknown value: anyone

    en = reviewer.get("/console/review", params={"lang": "en"})
    assert re.search(r"\d+ min left|\d+ h( \d+ min)? left", en.text), en.text
    with case.app.state.service.tx(write=True) as s:
        s.execute(
            update(Alert)
            .where(Alert.alert_id == case.urgent)
            .values(due_at=datetime.now(UTC) - timedelta(hours=2, minutes=5))
        )
    late = reviewer.get("/console/review/rows", params={"lang": "en"})
    assert late.status_code == 200
    assert "Overdue by 2 h 5 min" in late.text or "Overdue by 2 h 4 min" in late.text
    assert "<html" not in late.text  # a fragment for htmx
    assert 'id="rv-queue"' in late.text and 'hx-trigger="every 30s"' in late.text


# ---------------------------------------------------------------- the alert page


def test_alert_page_shows_evidence_and_logs_the_view(case: Case, reviewer: TestClient) -> None:
    before = len(ledger(case.app))
    r = reviewer.get(f"/console/review/alerts/{case.urgent}")
    assert r.status_code == 200, r.text
    html = r.text
    for needle in ("girl · 10 岁", "boy · 11 岁", "man · 46 岁", "你几岁了", "消息 17 字"):
        assert needle in html, needle
    assert html.index(">man4<") < html.index(">man5<")  # the timeline, in order
    assert "别告诉你爸妈，周末我们见面吧，我给你买皮肤" not in html or "摘录" in html
    reads = ledger(case.app)[before:]
    assert [k for k, _, _ in reads] == ["staff.read", "staff.read"]  # one per minor
    assert sorted(subject or "" for _, subject, _ in reads) == ["boy", "girl"]
    who = f"console:{reviewer.username}"
    assert all(d["by"] == who and d["alert"] == case.urgent for _, _, d in reads)
    for form in ("assign", "actions/dismiss", "actions/restrict", "actions/report", "hold"):
        assert f'action="/console/review/alerts/{case.urgent}/{form}"' in html
    assert html.count('name="csrf_token"') >= 8
    assert "<script>" not in html and "<style>" not in html  # CSP: no inline script or style
    en = reviewer.get(f"/console/review/alerts/{case.urgent}", params={"lang": "en"})
    assert en.status_code == 200 and "Keyboard shortcuts" in en.text
    assert reviewer.get("/console/review/alerts/risk-nope").status_code == 404


def test_dismiss_needs_a_reason(case: Case, reviewer: TestClient) -> None:
    assert dm(case.api, "man", "teen")["outcome"] == "deny"  # automatic restriction
    r = act(reviewer, case.urgent, "actions/dismiss", reason=" ")
    assert r.status_code == 422
    assert 'id="rv-err-dismiss-reason"' in r.text and 'aria-invalid="true"' in r.text
    assert "review.dismiss" not in kinds(case.app)
    r = act(reviewer, case.urgent, "actions/dismiss", reason="误报：是孩子的老师")
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/review/alerts/{case.urgent}?done=dismiss"
    page = reviewer.get(r.headers["location"])
    assert "预警已排除" in page.text
    assert alert_row(case.app, case.urgent).status == "dismissed"
    assert dm(case.api, "man", "teen")["outcome"] == "allow"  # lifted with the dismissal
    _, subject, data = next(e for e in ledger(case.app) if e[0] == "review.dismiss")
    assert subject == "man" and data["by"] == f"console:{reviewer.username}"
    assert data["reason_sha256"] == hashlib.sha256("误报：是孩子的老师".encode()).hexdigest()
    again = act(reviewer, case.urgent, "actions/restrict", duration="7d")
    assert again.status_code == 409 and "该预警已排除" in again.text


def test_restrict_through_the_console_denies_the_next_dm(case: Case, reviewer: TestClient) -> None:
    assert dm(case.api, "uncle", "teen")["outcome"] == "allow"  # a review alert: no restriction
    bad = act(reviewer, case.high, "actions/restrict", duration="forever")
    assert bad.status_code == 422 and 'id="rv-err-restrict-duration"' in bad.text
    r = act(reviewer, case.high, "actions/restrict", reason="grooming pattern", duration="30d")
    assert r.status_code == 303, r.text
    decision = dm(case.api, "uncle", "teen")
    assert decision["outcome"] == "deny"
    assert [x["rule_id"] for x in decision["reasons"]] == ["cn.risk.restricted_contact"]
    assert dm(case.api, "uncle", "man")["outcome"] == "allow"  # adults are not affected
    data = next(d for k, _, d in ledger(case.app) if k == "review.restrict")
    until = datetime.fromisoformat(data["until"])
    assert timedelta(days=29) < until - datetime.now(UTC) <= timedelta(days=30)
    page = reviewer.get(r.headers["location"])
    assert "uncle" in page.text and "已限制 uncle 联系未成年人" in page.text
    assert alert_row(case.app, case.high).status == "actioned"
    # Indefinite: until lifted.
    r = act(reviewer, case.high, "actions/restrict", duration="indefinite")
    assert r.status_code == 303
    assert [d for k, _, d in ledger(case.app) if k == "review.restrict"][1]["until"] is None


def test_other_actions_are_audited(case: Case, reviewer: TestClient) -> None:
    aid = case.urgent
    assert act(reviewer, aid, "assign").status_code == 303
    who = f"console:{reviewer.username}"
    assert alert_row(case.app, aid).assignee == who
    assert alert_row(case.app, aid).status == "in_review"
    empty = act(reviewer, aid, "actions/remove_content", items=" \n ")
    assert empty.status_code == 422 and 'id="rv-err-remove_content-items"' in empty.text
    r = act(reviewer, aid, "actions/remove_content", items="post-1\npost-2, post-3")
    assert r.status_code == 303
    data = next(d for k, _, d in ledger(case.app) if k == "review.remove_content")
    assert data["items"] == ["post-1", "post-2", "post-3"]
    r = act(reviewer, aid, "actions/notify_guardians")
    assert r.status_code == 303
    page = reviewer.get(r.headers["location"])
    assert "mum" in page.text  # the notification is listed
    r = act(reviewer, aid, "actions/suspend", reason="repeat offender", duration="365d")
    assert r.status_code == 303
    page = reviewer.get(r.headers["location"] + "&lang=en")
    assert "the platform must suspend account man" in page.text
    refused = act(reviewer, aid, "actions/dismiss", reason="changed my mind")
    assert refused.status_code == 409
    assert "was actioned and cannot be dismissed" in refused.text  # English: the cookie
    assert act(reviewer, aid, "actions/ban").status_code == 404
    audited = [(k, d.get("by")) for k, _, d in ledger(case.app) if k.startswith("review.")]
    assert audited == [
        ("review.auto_restrict", "qinglang.risk"),
        ("review.assign", who),
        ("review.remove_content", who),
        ("review.notify_guardians", who),
        ("review.suspend", who),
    ]


def test_report_creates_a_document_and_holds(case: Case, reviewer: TestClient) -> None:
    aid = case.urgent
    r = act(reviewer, aid, "actions/report", authority="fbi")
    assert r.status_code == 422 and 'id="rv-err-report-authority"' in r.text
    r = act(reviewer, aid, "actions/report", authority="police", reference="JZ-77")
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert "done=report" in location and "doc=" in location
    page = reviewer.get(location)
    link = re.search(r'href="(/console/review/alerts/[^"]+/documents/\d+)"', page.text)
    assert link is not None and "报告文件已生成" in page.text
    assert alert_row(case.app, aid).hold_set_at is not None
    before = len(ledger(case.app))
    doc = reviewer.get(link.group(1))
    assert doc.status_code == 200
    assert doc.headers["content-type"].startswith("text/markdown")
    assert hashlib.sha256(doc.content).hexdigest() == doc.headers["x-content-sha256"]
    assert "公安机关" in doc.text and "JZ-77" in doc.text
    read = ledger(case.app)[before:]
    assert {k for k, _, _ in read} == {"staff.read"} and len(read) == 2
    assert read[0][2]["read"].startswith("document ")
    assert reviewer.get(f"/console/review/alerts/{aid}/documents/999").status_code == 404
    assert reviewer.get(f"/console/review/alerts/{aid}/documents/x").status_code == 404

    # The report set the legal hold: setting it again is refused; release needs a reason.
    r = act(reviewer, aid, "hold", reason="police request JZ-9")
    assert r.status_code == 409 and "已处于法律保全中" in r.text
    r = act(reviewer, aid, "hold/release", reason="")
    assert r.status_code == 422 and 'id="rv-err-release-reason"' in r.text
    r = act(reviewer, aid, "hold/release", reason="case closed by police")
    assert r.status_code == 303 and r.headers["location"].endswith("done=release")
    assert alert_row(case.app, aid).hold_released_at is not None
    r = act(reviewer, aid, "hold", reason="police asked again")
    assert r.status_code == 303
    row = alert_row(case.app, aid)
    assert row.hold_released_at is None and row.hold_reason == "police asked again"
    tail = [k for k in kinds(case.app) if k.startswith("review.")][-3:]
    assert tail == ["review.report", "review.release", "review.hold"]


# ---------------------------------------------------------------- security


POSTS = (
    "assign",
    "actions/dismiss",
    "actions/restrict",
    "actions/suspend",
    "actions/remove_content",
    "actions/notify_guardians",
    "actions/report",
    "hold",
    "hold/release",
)


def test_every_post_needs_the_csrf_token(case: Case, reviewer: TestClient) -> None:
    before = ledger(case.app)
    form = {"reason": "a good reason", "duration": "7d", "items": "x", "authority": "police"}
    for path in POSTS:
        missing = act(reviewer, case.high, path, csrf=False, **form)
        assert missing.status_code == 403, path
        wrong = act(reviewer, case.high, path, csrf=False, csrf_token="forged", **form)
        assert wrong.status_code == 403, path
    assert ledger(case.app) == before  # nothing written
    assert alert_row(case.app, case.high).status == "open"


@pytest.mark.parametrize("role", ["guardian", "compliance"])
def test_other_roles_are_refused(
    case: Case, client: TestClient, make_user: MakeUser, login: Login, role: str
) -> None:
    name, password = make_user(role, "mum" if role == "guardian" else None)
    other = login(client, name, password)
    assert other.get("/console/review").status_code == 403
    assert other.get("/console/review/rows").status_code == 403
    assert other.get(f"/console/review/alerts/{case.urgent}").status_code == 403
    r = act(other, case.urgent, "actions/dismiss", reason="not mine to dismiss")
    assert r.status_code == 403
    assert "staff.read" not in kinds(case.app)
    assert alert_row(case.app, case.urgent).status == "open"


def test_signed_out_goes_to_login_and_admin_may_review(
    case: Case, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    r = client.get(f"/console/review/alerts/{case.urgent}")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
    name, password = make_user("platform_admin")
    admin = login(client, name, password)
    assert admin.get("/console/review").status_code == 200
    assert act(admin, case.urgent, "assign").status_code == 303


def test_another_platform_sees_nothing(
    case: Case, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    name, password = make_user("reviewer", platform="beta")
    beta = login(client, name, password)
    queue = beta.get("/console/review")
    assert queue.status_code == 200 and rows_in_order(queue.text) == []
    assert case.urgent not in queue.text
    before = ledger(case.app)
    assert beta.get(f"/console/review/alerts/{case.urgent}").status_code == 404
    for path in POSTS:
        r = act(beta, case.urgent, path, reason="a good reason", duration="7d", authority="police")
        assert r.status_code == 404, path
    assert beta.get(f"/console/review/alerts/{case.urgent}/documents/1").status_code == 404
    assert ledger(case.app) == before
    assert alert_row(case.app, case.urgent).status == "open"


def test_assets_are_served(client: TestClient) -> None:
    js = client.get("/console/review/assets/reviewer.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "isContentEditable" in js.text  # shortcuts do not fire while typing
    css = client.get("/console/review/assets/reviewer.css")
    assert css.status_code == 200 and "@media" in css.text
    assert client.get("/console/review/assets/other.js").status_code == 404


def test_every_workspace_string_is_translated() -> None:
    from qinglang.review.actions import ACTION_KINDS, AUTHORITIES
    from qinglang.review.priority import PRIORITIES
    from qinglang.store.models import RESTRICTION_SCOPES
    from qinglang.web.i18n import catalogue
    from qinglang.web.routes import reviewer

    keys = set(catalogue())
    root = Path(reviewer.__file__).parent.parent / "templates" / "reviewer"
    used = set()
    for page in root.glob("*.html"):
        found = re.findall(r"""t\(["'](reviewer\.[a-z0-9_.]+)["']""", page.read_text())
        used |= {k for k in found if not k.endswith(".")}  # "reviewer.status." ~ s: below
    families = {
        "status": reviewer.STATUSES,
        "priority": PRIORITIES,
        "level": ("review", "restrict"),
        "assigned": reviewer.ASSIGNED,
        "duration": tuple(reviewer.DURATIONS),
        "authority": tuple(AUTHORITIES),
        "flash": reviewer.FORMS,
        "kind": (*ACTION_KINDS, "assign", "auto_restrict", "lift", "hold", "release"),
        "scope": RESTRICTION_SCOPES,
        "sla": ("left", "overdue", "met", "missed", "due"),
        "unit": ("d", "h", "m", "lt1m"),
        "error": ("items", "authority", "reference", "duration", "invalid", "label"),
    }
    for family, names in families.items():
        used |= {f"reviewer.{family}.{n}" for n in names}
    used |= {
        f"reviewer.{k}.{p}" for k in ("restrict", "suspend") for p in ("title", "hint", "button")
    }
    used |= {f"reviewer.keys.{k}" for k in ("next", "prev", "open", "help")}
    used |= {f"reviewer.keys.{k}" for k in ("assign", "dismiss", "restrict")}
    code = Path(reviewer.__file__).read_text()
    used |= {k for k in re.findall(r'"(reviewer\.error\.[a-z_]+)"', code) if not k.endswith(".")}
    assert used - keys == set()
    assert {k for k in keys if k.startswith("reviewer.")} == used  # none unused
