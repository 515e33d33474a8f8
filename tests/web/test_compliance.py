"""The compliance dashboard (/console/compliance) on SQLite and PostgreSQL: the figures of a
seeded platform for compliance officers and platform administrators, refused to reviewers and
guardians, scoped to the user's platform, in both languages, every chart with its <title>,
<desc> and a table of the same numbers, and no child's personal data."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qinglang.api.service import now_utc
from qinglang.store import repo
from qinglang.web.i18n import translate

from ..store.test_store_dashboard import REASON, seed
from .conftest import OTHER_PLATFORM, PLATFORM, Login, MakeUser

PAGE = "/console/compliance"


@pytest.fixture
def seeded(console_app: FastAPI) -> FastAPI:
    """Alpha seeded as in tests/store/test_store_dashboard.py (sample rate 5 %), beta a little."""
    with console_app.state.service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, PLATFORM)
        o = repo.get_platform_by_slug(s, OTHER_PLATFORM)
        assert p is not None and o is not None
        p.decision_sample_rate = 0.05
        seed(s, p, o, now_utc())
    return console_app


def signed_in(
    client: TestClient, make_user: MakeUser, login: Login, role: str, **kw: str
) -> TestClient:
    name, password = make_user(role, "mum" if role == "guardian" else None, **kw)
    return login(client, name, password)


def figure(html: str, label: str) -> str:
    """The headline value shown under a label."""
    m = re.search(r"<dt>" + re.escape(label) + r"</dt><dd>([^<]*)</dd>", html.replace("&#34;", '"'))
    assert m is not None, label
    return unescape(m.group(1))


def figures_of(html: str) -> list[tuple[str, str, str]]:
    """Every chart: (id, its SVG, its table)."""
    found = re.findall(r'<figure class="cp-chart" id="([a-z-]+)">(.*?)</figure>', html, flags=re.S)
    out = []
    for cid, body in found:
        svg = re.search(r"<svg class=\"cp-svg\".*?</svg>", body, flags=re.S)
        table = re.search(r"<table.*?</table>", body, flags=re.S)
        assert svg is not None and table is not None, cid
        out.append((cid, svg.group(0), table.group(0)))
    return out


def cells(table: str) -> list[list[str]]:
    """The table's body rows: the row heading and each cell's text."""
    body = table.split("<tbody>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    return [[unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r)] for r in rows]


def test_the_figures_for_a_compliance_officer(
    seeded: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    officer = signed_in(client, make_user, login, "compliance")
    r = officer.get(PAGE + "?lang=en")
    assert r.status_code == 200, r.text
    html = r.text
    assert "Content-Security-Policy" in r.headers and "<h1>Compliance dashboard</h1>" in html
    assert figure(html, "Accounts (cancelled ones excluded)") == "7"
    assert figure(html, "Unknown") == "1"
    assert figure(html, "Suspected now (incl. asked to verify, appealing)") == "2"
    assert figure(html, "Child accounts (under 14) with a consent record") == "4"
    assert figure(html, "Stale consents now (all accounts)") == "1"
    assert figure(html, "Withdrawn consents now (all accounts)") == "2"
    assert figure(html, "Denied contacts in the sample") == "3"
    assert figure(html, "Decision log sample rate") == "5%"
    assert figure(html, "Estimated total (sampled ÷ rate)") == "60"
    assert figure(html, "Open now") == "2"  # alerts (first), then rights requests
    assert figure(html, "Overdue now") == "1"
    assert figure(html, "Closed on time (periods shown)").endswith("%")  # due dates vary by day
    assert "this platform&#39;s sample rate, 5%" in html
    assert REASON in html and "重复申请" in html
    # no child's personal data: no account ids, no birth dates
    for private in ("kid1", "kid2", "unk", "okid", "2016-01-01", "2015-06-01"):
        assert private not in html, private


def test_every_chart_has_title_desc_and_the_same_numbers(
    seeded: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    officer = signed_in(client, make_user, login, "compliance")
    html = officer.get(PAGE + "?lang=en").text
    charts = {cid: (svg, table) for cid, svg, table in figures_of(html)}
    assert set(charts) == {
        "cp-sources",
        "cp-assessments",
        "cp-coverage",
        "cp-consent-changes",
        "cp-blocked",
        "cp-alerts",
        "cp-timing",
        "cp-sla",
        "cp-rights",
        "cp-on-time",
    }
    for cid, (svg, table) in charts.items():
        assert f'<title id="{cid}-t">' in svg and f'<desc id="{cid}-d">' in svg, cid
        assert f'aria-labelledby="{cid}-t {cid}-d"' in svg and 'width="100%"' in svg
        assert 'viewBox="0 0 480 ' in svg and "style=" not in svg  # CSP: no inline style
        assert "<caption>" in table
    # bars: the value printed at each bar is the table's number
    svg, table = charts["cp-sources"]
    texts = [unescape(x) for x in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    rows = cells(table)
    assert [[label, n] for label, n in zip(texts[::2], texts[1::2], strict=True)] == rows
    assert rows == [
        ["Verified", "1"],
        ["Declared by guardian", "2"],
        ["Self-declared", "2"],
        ["Inferred", "1"],
        ["Unknown", "1"],
    ]
    svg, table = charts["cp-coverage"]
    assert cells(table) == [["location", "25%"], ["messages", "50%"]]
    assert "location: 25%; messages: 50%" in svg  # the desc
    # columns: the desc's totals are the table's column sums
    for cid, totals in {
        "cp-alerts": {"Urgent": 2, "High": 1, "Normal": 2},
        "cp-rights": {"Received": 7, "Completed": 2, "Refused": 3},
        "cp-blocked": {"Contacts denied": 3},
        "cp-consent-changes": {"Went stale (notice changed)": 1, "Withdrawn": 2},
    }.items():
        svg, table = charts[cid]
        rows = cells(table)
        assert len(rows) == 12
        heads = re.findall(r'<th scope="col">([^<]*)</th>', table)[1:]
        for label, total in totals.items():
            column = heads.index(label)
            assert sum(int(r[column + 1]) for r in rows) == total, (cid, label)
            assert f"{label}: {total}" in svg, (cid, label)
        bars = len(re.findall(r"<rect ", svg))
        assert bars == sum(1 for r in rows for c in r[1 : len(totals) + 1] if c != "0"), cid
    svg, table = charts["cp-blocked"]
    heads = re.findall(r'<th scope="col">([^<]*)</th>', table)
    assert heads[1:] == ["Contacts denied", "Contact decisions sampled"]
    assert sum(int(r[2]) for r in cells(table)) == 5


def test_both_languages_and_both_periods(
    seeded: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    admin = signed_in(client, make_user, login, "platform_admin")
    for query in ("", "?lang=zh", "?lang=en", "?period=month", "?period=week", "?period=x"):
        r = admin.get(PAGE + query)
        assert r.status_code == 200, query  # strict mode: a missing key would raise
    zh = admin.get(PAGE + "?lang=zh&period=month").text
    assert '<html lang="zh-CN">' in zh and "合规看板" in zh
    assert '<option value="month" selected>最近 12 个月</option>' in zh
    charts = figures_of(zh)
    assert len(cells(dict((c, t) for c, _, t in charts)["cp-alerts"])) == 12
    en = admin.get(PAGE + "?lang=en&period=nonsense").text
    assert '<option value="week" selected>Last 12 weeks</option>' in en
    assert "Audit reports" not in en  # none exist yet: no section, no dead link


@pytest.mark.parametrize("role", ["reviewer", "guardian"])
def test_other_roles_are_refused(
    seeded: FastAPI, client: TestClient, make_user: MakeUser, login: Login, role: str
) -> None:
    other = signed_in(client, make_user, login, role)
    assert other.get(PAGE).status_code == 403
    assert other.get(PAGE + "?period=month").status_code == 403


def test_signed_out_goes_to_login(client: TestClient) -> None:
    r = client.get(PAGE)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")


def test_another_platform_sees_only_its_own(
    seeded: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    beta = signed_in(client, make_user, login, "compliance", platform=OTHER_PLATFORM)
    html = beta.get(PAGE + "?lang=en").text
    assert figure(html, "Accounts (cancelled ones excluded)") == "1"
    assert figure(html, "Child accounts (under 14) with a consent record") == "1"
    assert figure(html, "Denied contacts in the sample") == "1"
    assert figure(html, "Decision log sample rate") == "1%"
    assert REASON not in html and "重复申请" not in html
    assert "<td>other</td>" in html


def test_assets_are_served(client: TestClient) -> None:
    css = client.get(PAGE + "/assets/compliance.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get(PAGE + "/assets/compliance.js")
    assert js.status_code == 200 and "cp-numbers" in js.text
    assert client.get(PAGE + "/assets/other.css").status_code == 404


def test_every_dashboard_string_is_translated() -> None:
    from qinglang.review.priority import PRIORITIES
    from qinglang.store import dashboard as dash
    from qinglang.web.i18n import catalogue
    from qinglang.web.routes import compliance

    keys = set(catalogue())
    root = Path(compliance.__file__).parent.parent / "templates" / "compliance"
    used: set[str] = set()
    sources = [p.read_text() for p in root.glob("*.html")]
    sources.append(Path(compliance.__file__).read_text())
    for text in sources:
        found = re.findall(r"""t\(f?["'](compliance\.[a-z0-9_.]+)["']""", text)
        used |= {k for k in found if not k.endswith((".", "_"))}
    families = {
        "source": dash.SOURCES,
        "state": dash.ASSESSMENT_STATES,
        "priority": PRIORITIES,
        "period": tuple(f"last_{p}" for p in dash.PERIODS),
        "col": dash.PERIODS,
    }
    for family, names in families.items():
        used |= {f"compliance.{family}.{n}" for n in names}
    assert used - keys == set()
    assert {k for k in keys if k.startswith("compliance.")} == used  # none unused
    for key in used:
        assert translate(key, "zh") and translate(key, "en")
