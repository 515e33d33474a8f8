"""The guardian portal on SQLite and PostgreSQL: children and linking, consents (and what the
exposure decision then says), the other family's 403, the data download, rights requests,
settings within the legal floors, approved contacts, protective actions, CSRF on every POST."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinglang.api.service import Service
from qinglang.review.report import guardian_message
from qinglang.store import id_number_digest, repo
from qinglang.store.models import (
    Alert,
    Guardian,
    GuardianLink,
    GuardianNotification,
    LedgerEntry,
)

from ..api.consent_testing import ELEMENTS, PUBLISH, RECOMMEND, ric
from .conftest import PLATFORM, Login, MakeUser

ADULT = ric(date(1985, 5, 17))
CHILD_URL = "/console/guardian/children/girl"


def service_of(app: FastAPI) -> Service:
    service: Service = app.state.service
    return service


@pytest.fixture
def api(console_app: FastAPI) -> Iterator[TestClient]:
    """The JSON API as platform alpha (its own API key)."""
    with service_of(console_app).tx(write=True) as s:
        platform = repo.get_platform_by_slug(s, PLATFORM)
        assert platform is not None
        key = repo.issue_api_key(s, platform, label="tests")
    with TestClient(console_app, follow_redirects=False) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        yield c


def put_account(api: TestClient, name: str, **body: Any) -> None:
    r = api.put(f"/v1/accounts/{name}", json=body)
    assert r.status_code == 200, r.text


def link_by_api(api: TestClient, guardian: str, child: str) -> None:
    assert api.put(f"/v1/guardians/{guardian}", json={}).status_code == 200
    r = api.post(
        f"/v1/guardians/{guardian}/children",
        json={
            "account": child,
            "method": "signed_form",
            "verified_by": "ops",
            "claims": {"reference": "form-1"},
        },
    )
    assert r.status_code == 201, r.text


def link_code(api: TestClient, child: str) -> str:
    """A one-time link code for the child's account, as the platform's child app would get it."""
    r = api.post(f"/v1/accounts/{child}/guardian-link-codes")
    assert r.status_code == 201, r.text
    code: str = r.json()["code"]
    return code


def publish(api: TestClient, *items: dict[str, Any]) -> int:
    body = {"title": "儿童个人信息保护规则", "elements": ELEMENTS, "items": list(items)}
    r = api.post(
        "/v1/notices",
        json={"language": "zh", "audience": "child", "published_by": "dpo", "body": body},
    )
    assert r.status_code == 201, r.text
    version: int = r.json()["version"]
    return version


@dataclass
class Family:
    """Platform alpha with a 10-year-old 'girl' linked to 'mum' (signed in as `web`)."""

    app: FastAPI
    api: TestClient
    web: TestClient


@pytest.fixture
def family(
    console_app: FastAPI, api: TestClient, client: TestClient, make_user: MakeUser, login: Login
) -> Family:
    put_account(api, "girl", birth_date="2016-03-01", age_source="guardian_declared")
    put_account(api, "fan", birth_date="1990-01-01", age_source="verified")
    put_account(api, "stranger", birth_date="1980-01-01", age_source="verified")
    link_by_api(api, "mum", "girl")
    username, password = make_user("guardian", "mum")
    return Family(console_app, api, login(client, username, password))


def post(web: TestClient, path: str, data: dict[str, str] | None = None) -> Any:
    """A form POST with the session's CSRF token."""
    return web.post(path, data={"csrf_token": web.csrf, **(data or {})})


def field_error(html: str, field: str) -> str:
    """The text of the error shown next to a field."""
    m = re.search(rf'<p class="error" id="{re.escape(field)}-error"[^>]*>(.*?)</p>', html, re.S)
    assert m is not None, f"no error at {field}"
    return m.group(1)


def ledger_kinds(app: FastAPI) -> list[str]:
    with service_of(app).tx() as s:
        return list(s.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.seq)))


def consent_form(html: str, purpose: str) -> dict[str, str]:
    """The hidden fields of the consent form of a purpose, as rendered."""
    m = re.search(
        rf'<form method="post" action="[^"]*/consents">'
        rf'(?:(?!</form>).)*?name="purpose" value="{purpose}"(?:(?!</form>).)*</form>',
        html,
        re.S,
    )
    assert m is not None, purpose
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', m.group(0)))
    fields.pop("csrf_token", None)
    return fields


# ---------------------------------------------------------------- children and linking


def test_lists_the_linked_children_with_age_band(family: Family) -> None:
    put_account(family.api, "baby")  # no age facts
    link_by_api(family.api, "mum", "baby")
    put_account(family.api, "other", birth_date="2015-01-01")  # not linked
    r = family.web.get("/console/guardian")
    assert r.status_code == 200
    assert 'href="/console/guardian/children/girl"' in r.text
    assert "8至11岁" in r.text  # the content band of a 10-year-old
    assert "年龄未知" in r.text
    assert "other" not in r.text
    r = family.web.get("/console/guardian?lang=en")
    assert "8 to 11" in r.text and "age unknown" in r.text
    assert 'name="method"' in r.text and "Identity number" in r.text


def test_linking_a_child_by_identity_number(family: Family) -> None:
    put_account(family.api, "boy", birth_date="2017-06-01")
    r = post(
        family.web,
        "/console/guardian/link",
        {
            "account": "boy",
            "method": "id_number_realname",
            "id_number": ADULT,
            "link_code": link_code(family.api, "boy").lower(),  # case and dash do not matter
        },
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/guardian/children/boy"
    assert "boy" in family.web.get("/console/guardian").text
    assert family.web.get("/console/guardian/children/boy").status_code == 200
    service = service_of(family.app)
    with service.tx() as s:
        mum = s.scalars(select(Guardian).where(Guardian.external_id == "mum")).one()
        assert mum.id_number_hash == id_number_digest(service.keys, ADULT)  # a digest only
        link = s.scalars(
            select(GuardianLink).where(
                GuardianLink.guardian_id == mum.id, GuardianLink.method == "id_number_realname"
            )
        ).one()
        assert ADULT not in json.dumps(link.evidence)
        bodies = list(s.scalars(select(LedgerEntry.body)))
    assert not any(ADULT in b for b in bodies)
    assert ledger_kinds(family.app).count("guardian.verified") == 2


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (
            {"method": "id_number_realname", "id_number": ADULT[:-1] + "0"},
            "id_number",
            "身份证号码无效",
        ),
        (
            {"method": "id_number_realname", "id_number": ric(date(2012, 1, 1))},
            "id_number",
            "监护人须为成年人",
        ),
        ({"method": "face_scan", "id_number": ADULT}, "method", "平台不接受这种核验方式"),
        ({"method": "signed_form", "reference": " "}, "reference", "请填写此项"),
        ({"method": "signed_form", "reference": "f-9", "account": "nobody"}, "link_code", "不正确"),
        (
            {"method": "signed_form", "reference": "f-9", "link_code": "AAAAA-BBBBB"},
            "link_code",
            "不正确",
        ),
    ],
    ids=["bad-number", "not-adult", "method-not-allowed", "no-reference", "no-account", "bad-code"],
)
def test_linking_errors_show_at_the_field(
    family: Family, form: dict[str, str], field: str, message: str
) -> None:
    put_account(family.api, "boy", birth_date="2017-06-01")
    before = ledger_kinds(family.app)
    code = link_code(family.api, "boy")
    r = post(family.web, "/console/guardian/link", {"account": "boy", "link_code": code, **form})
    assert r.status_code == 422, r.text
    assert message in field_error(r.text, field)
    assert 'value="boy"' in r.text or form.get("account") == "nobody"  # the form keeps its input
    assert ledger_kinds(family.app) == before
    assert "/console/guardian/children/boy" not in family.web.get("/console/guardian").text


# ---------------------------------------------------------------- consents


def consent_state(web: TestClient, purpose: str) -> str:
    html = web.get(CHILD_URL).text
    m = re.search(
        rf"<h3>{purpose} · child_content</h3>.*?<dt>当前状态</dt>\s*<dd><strong>(.*?)</strong>",
        html,
        re.S,
    )
    assert m is not None, purpose
    return m.group(1)


def press(web: TestClient, purpose: str, decision: str) -> Any:
    fields = consent_form(web.get(CHILD_URL).text, purpose)
    return post(web, f"{CHILD_URL}/consents", {**fields, "decision": decision})


def test_consent_buttons_are_equal_and_each_records_a_decision(family: Family) -> None:
    publish(family.api, PUBLISH, RECOMMEND)
    html = family.web.get(CHILD_URL).text
    groups = re.findall(r'<div class="choices"[^>]*>(.*?)</div>', html, re.S)
    assert len(groups) == 2  # one per purpose × category of the notice
    for group in groups:
        # three buttons, same element and attributes (so the same size and style), in one
        # grid; none pre-selected, no nudging text beside them
        buttons = re.findall(r"<button([^>]*)>([^<]*)</button>", group)
        assert [(re.sub(r' value="\w+"', "", a), text) for a, text in buttons] == [
            (' type="submit" name="decision"', "同意"),
            (' type="submit" name="decision"', "拒绝"),
            (' type="submit" name="decision"', "撤回"),
        ]
        assert [re.search(r'value="(\w+)"', a) is not None for a, _ in buttons] == [True] * 3
        assert re.sub(r"<button[^>]*>[^<]*</button>", "", group).strip() == ""
    assert "checked" not in html and "autofocus" not in html and "selected" not in html
    assert consent_state(family.web, "publish_content") == "未决定"

    assert press(family.web, "publish_content", "grant").status_code == 303
    assert consent_state(family.web, "publish_content") == "已同意"
    assert press(family.web, "publish_content", "refuse").status_code == 303
    assert consent_state(family.web, "publish_content") == "已拒绝"
    assert press(family.web, "publish_content", "withdraw").status_code == 303
    assert consent_state(family.web, "publish_content") == "已撤回"
    listed = family.api.get("/v1/accounts/girl/consents").json()
    assert [(c["purpose"], c["status"], c["guardian"]) for c in listed] == [
        ("publish_content", "withdrawn", "mum")
    ]
    kinds = ledger_kinds(family.app)
    assert [k for k in kinds if k.startswith("consent.")] == [
        "consent.granted",
        "consent.refused",
        "consent.withdrawn",
    ]


def test_a_double_submit_counts_once(family: Family) -> None:
    publish(family.api, PUBLISH)
    fields = consent_form(family.web.get(CHILD_URL).text, "publish_content")
    for _ in range(2):
        r = post(family.web, f"{CHILD_URL}/consents", {**fields, "decision": "grant"})
        assert r.status_code == 303
    assert ledger_kinds(family.app).count("consent.granted") == 1


def test_withdrawing_with_nothing_given_and_an_outdated_notice(family: Family) -> None:
    publish(family.api, PUBLISH)
    r = press(family.web, "publish_content", "withdraw")
    assert r.status_code == 422
    assert "尚无可撤回的同意" in field_error(r.text, "publish_content/child_content")
    fields = consent_form(family.web.get(CHILD_URL).text, "publish_content")
    publish(family.api, PUBLISH, RECOMMEND)  # a new version while the page was open
    r = post(family.web, f"{CHILD_URL}/consents", {**fields, "decision": "grant"})
    assert r.status_code == 409
    assert "规则已更新" in field_error(r.text, "publish_content/child_content")
    assert "consent.granted" not in ledger_kinds(family.app)


def test_a_stale_consent_is_shown_as_stale(family: Family) -> None:
    publish(family.api, PUBLISH)
    assert press(family.web, "publish_content", "grant").status_code == 303
    publish(family.api, PUBLISH, RECOMMEND)
    assert consent_state(family.web, "publish_content") == "规则已变更，需重新决定"
    assert consent_state(family.web, "recommend_content") == "未决定"


def test_withdrawing_recommend_denies_recommending_the_childs_videos(family: Family) -> None:
    api = family.api
    flags = [{"item": "vid", "owner": "girl", "kind": "minor_pi"}]
    assert api.post("/v1/content/flags", json={"flags": flags}).status_code == 200
    publish(api, dict(PUBLISH, audience="public"), RECOMMEND)

    def recommend() -> str:
        body = {"viewer": "stranger", "item": "vid", "surface": "recommend"}
        r = api.post("/v1/decide/exposure", json=body)
        assert r.status_code == 200, r.text
        outcome: str = r.json()["outcome"]
        return outcome

    assert recommend() == "deny"
    assert press(family.web, "publish_content", "grant").status_code == 303
    assert press(family.web, "recommend_content", "grant").status_code == 303
    assert recommend() == "allow"
    assert press(family.web, "recommend_content", "withdraw").status_code == 303
    assert recommend() == "deny"


# ---------------------------------------------------------------- the other family


def test_another_familys_child_is_403_wherever_the_url_names_it(
    family: Family, make_user: MakeUser, login: Login
) -> None:
    api = family.api
    put_account(api, "son", birth_date="2015-02-02")
    link_by_api(api, "dad", "son")
    publish(api, PUBLISH)
    # dad's own request, so that a request id of the other family exists
    r = api.post(
        "/v1/rights-requests",
        json={"account": "son", "kind": "deletion", "requester": "guardian", "guardian": "dad"},
    )
    assert r.status_code == 201
    theirs = r.json()["id"]
    mine = post(family.web, f"{CHILD_URL}/requests", {"kind": "deletion"})
    assert mine.status_code == 303
    web = family.web
    for name in ("son", "nobody", "fan"):
        base = f"/console/guardian/children/{name}"
        for page in ("", "/data", "/export", "/requests", "/settings", "/actions"):
            assert web.get(base + page).status_code == 403, base + page
        assert web.get(f"{base}/requests/{theirs}").status_code == 403
        for page, data in (
            ("/consents", {"purpose": "publish_content", "category": "child_content",
                           "decision": "grant", "notice_language": "zh", "notice_version": "1"}),
            ("/requests", {"kind": "deletion"}),
            ("/settings", {"spending__single_cap_fen": "10"}),
            ("/contacts", {"contact": "fan", "action": "approve"}),
        ):  # fmt: skip
            assert post(web, base + page, data).status_code == 403, base + page
    # a request id of the other family under my own child's URL
    assert web.get(f"{CHILD_URL}/requests/{theirs}").status_code == 403
    assert "son" not in web.get("/console/guardian").text
    # what the other family sees is untouched
    assert api.get("/v1/accounts/son/consents").json() == []
    dad_name, dad_password = make_user("guardian", "dad")
    with TestClient(family.app, follow_redirects=False) as other:
        login(other, dad_name, dad_password)
        assert other.get(CHILD_URL).status_code == 403
        assert other.get("/console/guardian/children/son").status_code == 200


def test_the_portal_needs_a_signed_in_guardian(
    family: Family, make_user: MakeUser, login: Login
) -> None:
    with TestClient(family.app, follow_redirects=False) as anonymous:
        r = anonymous.get(CHILD_URL)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/console/login?next=")
    name, password = make_user("reviewer")
    with TestClient(family.app, follow_redirects=False) as staff:
        login(staff, name, password)
        assert staff.get("/console/guardian").status_code == 403
        assert staff.get(f"{CHILD_URL}/export").status_code == 403


# ---------------------------------------------------------------- data held


def test_data_summary_and_the_access_export_download(family: Family) -> None:
    publish(family.api, PUBLISH)
    assert press(family.web, "publish_content", "grant").status_code == 303
    r = family.web.get(f"{CHILD_URL}/data")
    assert r.status_code == 200
    assert "2016-03-01" in r.text and 'href="/console/guardian/children/girl/export"' in r.text
    assert "staff.read" not in ledger_kinds(family.app)  # a guardian's read is not a staff read

    r = family.web.get(f"{CHILD_URL}/export")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    disposition = r.headers["content-disposition"]
    assert disposition == 'attachment; filename="qinglang-export-girl.json"'
    export = r.json()
    assert export["format"] == "qinglang.access-export"
    assert export["account"]["external_id"] == "girl"
    assert export["account"]["birth_date"] == "2016-03-01"
    assert [(c["purpose"], c["status"]) for c in export["consents"]] == [
        ("publish_content", "granted")
    ]
    assert export["counts"]["guardian_links"] == 1
    kinds = ledger_kinds(family.app)
    assert kinds.count("rights.export") == 1 and "staff.read" not in kinds
    # the same content as the API's export for the same guardian
    by_api = family.api.get("/v1/accounts/girl/export", params={"guardian": "mum"}).json()
    assert by_api["consents"] == export["consents"]
    assert by_api["account"] == export["account"]


# ---------------------------------------------------------------- rights requests


def test_a_correction_request_and_its_status(family: Family) -> None:
    web = family.web
    r = post(web, f"{CHILD_URL}/requests", {"kind": "correction", "birth_date": "2099-01-01"})
    assert r.status_code == 422
    assert "birth_date" in field_error(r.text, "birth_date")
    r = post(web, f"{CHILD_URL}/requests", {"kind": "correction"})
    assert r.status_code == 422 and field_error(r.text, "details")

    page = web.get(f"{CHILD_URL}/requests").text
    key = re.search(r'name="key" value="([0-9a-f]{32})"', page)
    assert key is not None
    form = {"kind": "correction", "birth_date": "2016-04-01", "note": "生日登记错了", "key": key[1]}
    for _ in range(2):  # a double submit counts once
        assert post(web, f"{CHILD_URL}/requests", form).status_code == 303
    listed = family.api.get("/v1/rights-requests", params={"account": "girl"}).json()
    assert listed["count"] == 1
    request = listed["requests"][0]
    assert (request["kind"], request["requester"], request["guardian"]) == (
        "correction",
        "guardian",
        "mum",
    )
    page = web.get(f"{CHILD_URL}/requests").text
    assert "已受理" in page and "答复期限" in page
    due = datetime.fromisoformat(request["due_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert due.strftime("%Y-%m-%d %H:%M") in page

    r = family.api.post(
        f"/v1/rights-requests/{request['id']}/transition",
        json={"status": "refused", "actor": "dpo", "reason": "出生证明显示为3月1日"},
    )
    assert r.status_code == 200, r.text
    detail = web.get(f"{CHILD_URL}/requests/{request['id']}")
    assert detail.status_code == 200
    assert "出生证明显示为3月1日" in detail.text and "已拒绝" in detail.text
    history = re.findall(r"<li>[^<]*— (已受理|处理中|已完成|已拒绝)", detail.text)
    assert history == ["已受理", "已拒绝"]
    assert "2016-04-01" in detail.text


def test_a_deletion_request(family: Family) -> None:
    r = post(family.web, f"{CHILD_URL}/requests", {"kind": "deletion", "note": "请删除"})
    assert r.status_code == 303
    assert r.headers["location"] == f"{CHILD_URL}/requests"
    page = family.web.get(f"{CHILD_URL}/requests?lang=en").text
    assert "Deletion" in page and "received" in page
    r = post(family.web, f"{CHILD_URL}/requests", {"kind": "access"})
    assert r.status_code == 422 and field_error(r.text, "kind")


# ---------------------------------------------------------------- settings


def account_settings(api: TestClient) -> dict[str, Any]:
    settings: dict[str, Any] = api.get("/v1/accounts/girl").json()["settings"]
    return settings


def test_settings_within_the_floors_are_saved(family: Family) -> None:
    web = family.web
    page = web.get(f"{CHILD_URL}/settings").text
    # each floor explained with the rule's message and citation
    assert "8至15周岁用户单次充值不得超过50元" in page
    assert "国家新闻出版署关于防止未成年人沉迷网络游戏的通知 (2019) item 3" in page
    assert "法定底线：只能收紧" in page and "默认值：可以调整" in page
    en = web.get(f"{CHILD_URL}/settings?lang=en").text
    assert "Ages 8-15: a single top-up may not exceed CNY 50" in en
    form = {
        "playtime__daily_minutes": "45",
        "playtime__night_windows": "21:00-07:00",
        "spending__single_cap_fen": "30",
        "spending__daily_cap_fen": "20.50",
        "spending__monthly_cap_fen": "",
    }
    r = post(web, f"{CHILD_URL}/settings", form)
    assert r.status_code == 303, r.text
    assert account_settings(family.api) == {
        "playtime.daily_minutes": 45,
        "playtime.night_windows": ["21:00-07:00"],
        "spending.single_cap_fen": 3000,
        "spending.daily_cap_fen": 2050,
    }
    features = family.api.get("/v1/accounts/girl").json()["features"]
    assert features["payments"]["limit"]["single_cap_fen"] == 3000
    page = web.get(f"{CHILD_URL}/settings").text
    assert 'value="30"' in page and 'value="20.5"' in page
    # emptying a field returns to the rule's value; a field not sent is left as it is
    r = post(web, f"{CHILD_URL}/settings", {"spending__daily_cap_fen": ""})
    assert r.status_code == 303
    assert account_settings(family.api) == {
        "playtime.daily_minutes": 45,
        "playtime.night_windows": ["21:00-07:00"],
        "spending.single_cap_fen": 3000,
    }
    # a default that is not a legal floor can be loosened
    assert post(web, f"{CHILD_URL}/settings", {"playtime__daily_minutes": "90"}).status_code == 303
    assert account_settings(family.api)["playtime.daily_minutes"] == 90


def test_a_setting_that_loosens_a_floor_is_refused_with_the_rule(family: Family) -> None:
    web = family.web
    assert post(web, f"{CHILD_URL}/settings", {"spending__single_cap_fen": "30"}).status_code == 303
    r = post(web, f"{CHILD_URL}/settings", {"spending__single_cap_fen": "60"})
    assert r.status_code == 422
    error = field_error(r.text, "spending.single_cap_fen")
    assert "这会放宽法定底线" in error and "cn.spend.single.8to15" in error
    assert "8至15周岁用户单次充值不得超过50元" in error  # refused with the rule's explanation
    assert "国家新闻出版署关于防止未成年人沉迷网络游戏的通知 (2019) item 3" in error
    assert 'value="60"' in r.text  # the form keeps the input
    assert account_settings(family.api) == {"spending.single_cap_fen": 3000}
    r = post(web, f"{CHILD_URL}/settings", {"playtime__night_windows": "late"})
    assert r.status_code == 422
    assert "21:00-07:00" in field_error(r.text, "playtime.night_windows")
    r = post(web, f"{CHILD_URL}/settings", {"spending__monthly_cap_fen": "1.234"})
    assert r.status_code == 422 and field_error(r.text, "spending.monthly_cap_fen")
    r = post(web, f"{CHILD_URL}/settings", {"playtime__night_windows": "25:00-07:00"})
    assert r.status_code == 422 and field_error(r.text, "playtime.night_windows")
    for bad in ("NaN", "-1", "abc"):
        r = post(web, f"{CHILD_URL}/settings", {"spending__daily_cap_fen": bad})
        assert r.status_code == 422 and field_error(r.text, "spending.daily_cap_fen")
    r = post(web, f"{CHILD_URL}/settings?lang=en", {"spending__single_cap_fen": "60"})
    error = field_error(r.text, "spending.single_cap_fen")
    assert "Ages 8-15: a single top-up may not exceed CNY 50" in error
    assert account_settings(family.api) == {"spending.single_cap_fen": 3000}


def test_approved_contacts(family: Family) -> None:
    web = family.web
    dm = {"action": "dm", "sender": "fan", "recipient": "girl"}
    assert family.api.post("/v1/decide/contact", json=dm).json()["outcome"] == "deny"
    r = post(web, f"{CHILD_URL}/contacts", {"contact": "fan", "action": "approve"})
    assert r.status_code == 303
    assert "<li>" in web.get(f"{CHILD_URL}/settings").text
    assert family.api.post("/v1/decide/contact", json=dm).json()["outcome"] == "allow"
    r = post(web, f"{CHILD_URL}/contacts", {"contact": "ghost", "action": "approve"})
    assert r.status_code == 422 and field_error(r.text, "contact")
    r = post(web, f"{CHILD_URL}/contacts", {"contact": "fan", "action": "revoke"})
    assert r.status_code == 303
    assert family.api.post("/v1/decide/contact", json=dm).json()["outcome"] == "deny"


# ---------------------------------------------------------------- protective actions


def test_protective_actions_show_what_and_when_never_the_evidence(family: Family) -> None:
    service = service_of(family.app)
    now = datetime.now(UTC)
    with service.tx(write=True) as s:
        platform = repo.get_platform_by_slug(s, PLATFORM)
        assert platform is not None
        mum = repo.get_guardian(s, platform.id, "mum")
        assert mum is not None
        alert = Alert(
            platform_id=platform.id,
            alert_id="a-1",
            sender="stranger",
            level="restrict",
            score=0.9,
            rule_id="cn.risk.grooming",
            raised_at=now,
            minors=["girl"],
            event_ids=["e-1"],
            signal_names=["secrecy"],
            evidence=json.dumps({"text": "SECRET-EVIDENCE-TEXT"}),
            priority="urgent",
            status="actioned",
            due_at=now + timedelta(hours=1),
        )
        s.add(alert)
        s.flush()
        zh, en = guardian_message("girl", True)
        s.add(
            GuardianNotification(
                platform_id=platform.id,
                alert_pk=alert.id,
                guardian_id=mum.id,
                child="girl",
                message_zh=zh,
                message_en=en,
                created_by="rev1",
            )
        )
    page = family.web.get(f"{CHILD_URL}/actions")
    assert page.status_code == 200
    assert "我们已限制该用户联系未成年人" in page.text
    assert "SECRET-EVIDENCE-TEXT" not in page.text and "stranger" not in page.text
    assert "We have restricted that user" in family.web.get(f"{CHILD_URL}/actions?lang=en").text
    with service.tx() as s:
        assert s.scalar(select(func.count()).select_from(GuardianNotification)) == 1


# ---------------------------------------------------------------- CSRF


POSTS = (
    ("/console/guardian/link", {"account": "girl", "method": "signed_form", "reference": "x"}),
    (f"{CHILD_URL}/consents", {"purpose": "publish_content", "category": "child_content",
                               "decision": "grant", "notice_language": "zh",
                               "notice_version": "1"}),
    (f"{CHILD_URL}/requests", {"kind": "deletion"}),
    (f"{CHILD_URL}/settings", {"spending__single_cap_fen": "10"}),
    (f"{CHILD_URL}/contacts", {"contact": "fan", "action": "approve"}),
)  # fmt: skip


@pytest.mark.parametrize(("path", "data"), POSTS, ids=lambda v: v if isinstance(v, str) else "")
def test_every_post_needs_the_csrf_token(family: Family, path: str, data: dict[str, str]) -> None:
    publish(family.api, PUBLISH)
    before = ledger_kinds(family.app)
    assert family.web.post(path, data=data).status_code == 403
    assert family.web.post(path, data={**data, "csrf_token": "forged"}).status_code == 403
    assert ledger_kinds(family.app) == before
    assert account_settings(family.api) == {}
    assert family.api.get("/v1/accounts/girl/consents").json() == []


def test_a_link_code_works_once_for_its_own_child_only(family: Family) -> None:
    put_account(family.api, "boy", birth_date="2017-06-01")
    put_account(family.api, "other", birth_date="2015-01-01")
    code = link_code(family.api, "other")
    form = {"method": "id_number_realname", "id_number": ADULT, "link_code": code}
    wrong_child = post(family.web, "/console/guardian/link", {"account": "boy", **form})
    assert wrong_child.status_code == 422
    assert "不正确" in field_error(wrong_child.text, "link_code")
    assert (
        post(family.web, "/console/guardian/link", {"account": "other", **form}).status_code == 303
    )
    again = post(family.web, "/console/guardian/link", {"account": "other", **form})
    assert again.status_code == 422  # used
