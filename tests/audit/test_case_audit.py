"""The case, audited: a short-video platform's historical logs reproduce the case's failures
(children registered without a guardian's consent, stale consents used to recommend children's
videos, strangers' direct messages delivered to children) and the audit fails exactly the
requirements they break, with the evidence; after the measures are applied and new activity
runs through qinglang's decisions, the same audit over the new activity passes and the measures
close. On SQLite and PostgreSQL, through the API and the command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qinglang.audit.bundle import generate_key
from qinglang.audit.catalogue import load_catalogue
from qinglang.audit.impact import TEXT_SECTIONS, draft
from qinglang.audit.model import Status
from qinglang.policy import load_policy
from qinglang.store import impact as store_impact
from qinglang.store import rectification, repo
from qinglang.store.models import Platform
from tests.api.consent_testing import ELEMENTS, RECOMMEND, link

REGISTRATION = {
    "purpose": "registration",
    "categories": ["account", "location", "contacts", "face"],
    "method": "注册时填写和设备采集",
    "scope": "提供账号服务",
}
CHILDREN = ("c1", "c2", "c3", "c4", "c5")
STRANGERS = ("uncle", "viewer1", "viewer2")
TZ = load_policy("cn").tz
EXPECTED_FAILS = {
    "cn.req.consent.guardian_before_processing",
    "cn.req.consent.separate_for_sensitive",
    "cn.req.consent.within_consented_purpose",
    "cn.req.consent.reconsent_on_material_change",
    "cn.req.sharing.consented_audience",
    "cn.req.contact.stranger_contact_children",
    "cn.req.governance.impact_assessment",
}
"""What the case's logs break: consent before processing (under-14 PI is sensitive, so also
separate consent), use beyond the consented purpose after the notice changed, the audience of
children's content, stranger contact, and no impact assessment before processing."""


def _publish(api: TestClient, *items: dict[str, Any]) -> int:
    body = {"title": "儿童个人信息保护规则", "elements": ELEMENTS, "items": list(items)}
    r = api.post(
        "/v1/notices",
        json={"language": "zh", "audience": "child", "published_by": "dpo", "body": body},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["version"])


def _grant(
    api: TestClient,
    child: str,
    guardian: str,
    purpose: str,
    category: str,
    v: int,
    decision: str = "grant",
    **extra: Any,
) -> None:
    r = api.post(
        "/v1/consents",
        json={
            "account": child,
            "purpose": purpose,
            "category": category,
            "decision": decision,
            "notice": {"language": "zh", "audience": "child", "version": v},
            "given_by": "guardian",
            "guardian": guardian,
            **extra,
        },
    )
    assert r.status_code in (200, 201), r.text


def _cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qinglang.cli import main; main()", *args, "--db", db],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "250"},
    )


class Clock:
    """Instants for the imported logs: strictly increasing, from now on."""

    def __init__(self) -> None:
        self.n = count(1)
        self.base = datetime.now(UTC)

    def __call__(self) -> str:
        return (self.base + timedelta(milliseconds=next(self.n))).isoformat()


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", "utf-8")
    return path


def _registration(children: tuple[str, ...], at: Clock) -> list[dict[str, Any]]:
    return [
        {"type": "processing", "account": c, "purpose": "registration", "category": k, "at": at()}
        for c in children
        for k in REGISTRATION["categories"]
    ]


def _event(kind: str, eid: str, at: Clock, **fields: Any) -> dict[str, Any]:
    return {"type": "event", "id": eid, "kind": kind, "at": at(), **fields}


def _audit_run(out: Path, period: str, as_of: str, key: Path, db: str, *extra: str) -> None:
    """`qinglang audit run` into `out`, which must succeed."""
    args = ("--period", period, "--as-of", as_of, "--out", str(out), "--key", str(key))
    r = _cli("audit", "run", *args, *extra, db=db)
    assert r.returncode == 0, r.stderr


def _period() -> str:
    today = datetime.now(TZ).date()
    return f"{today - timedelta(days=1)}..{today + timedelta(days=1)}"


def _as_of() -> str:
    return (datetime.now(UTC) + timedelta(seconds=1)).isoformat()


def _result(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "result.json").read_text("utf-8")))


def _fails(result: dict[str, Any]) -> set[str]:
    return {f["requirement_id"] for f in result["findings"] if f["status"] == Status.FAIL.value}


def _finding(result: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(f for f in result["findings"] if f["requirement_id"] == rid)


def _figure(finding: dict[str, Any], name: str) -> Any:
    return next(f["value"] for f in finding["figures"] if f["name"] == name)


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    key = tmp_path / "audit-key.pem"
    generate_key(key)
    return key


def test_the_case_fails_then_passes_after_rectification(
    api: TestClient, db_url: str, tmp_path: Path, keyfile: Path
) -> None:
    service = api.app.state.service  # type: ignore[attr-defined]
    catalogue = load_catalogue()
    # ------------------------------------------------ the platform before its rectification
    v1 = _publish(api, REGISTRATION, RECOMMEND)
    births = {
        "c1": date(2016, 3, 1),
        "c2": date(2015, 7, 9),
        "c3": date(2017, 1, 20),
        "c4": date(2015, 11, 2),
        "c5": date(2016, 8, 30),
        "f1": date(2015, 5, 5),
    }
    for name, born in births.items():
        r = api.put(f"/v1/accounts/{name}", json={"birth_date": born.isoformat()})
        assert r.status_code in (200, 201), r.text
    for name in (*STRANGERS, "teacher", "fan"):
        assert api.put(f"/v1/accounts/{name}", json={"birth_date": "1984-04-04"}).status_code in (
            200,
            201,
        )
    for child in ("c4", "c5"):
        link(api, f"mum-{child}", child)
        _grant(api, child, f"mum-{child}", "recommend_content", "child_content", v1)
    # The notice changes what "recommend" means: the guardians' grants go stale.
    _publish(api, REGISTRATION, {**RECOMMEND, "scope": "推荐给所有用户，包括喜欢儿童内容的用户"})
    r = api.post(
        "/v1/relationships",
        json={
            "events": [
                {"type": "follow", "src": "teacher", "dst": "c1"},
                {"type": "follow", "src": "c1", "dst": "teacher"},
                {"type": "follow", "src": "f1", "dst": "c2"},
                {"type": "follow", "src": "c2", "dst": "f1"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    at = Clock()
    history = _registration(CHILDREN, at)
    history += [
        {
            "type": "processing",
            "account": c,
            "purpose": "recommend_content",
            "category": "child_content",
            "at": at(),
        }
        for c in ("c4", "c5")
    ]
    for c in ("c4", "c5"):
        for viewer in STRANGERS:
            history.append(
                _event(
                    "impression",
                    f"imp-{c}-{viewer}",
                    at,
                    actor=viewer,
                    item=f"video-{c}",
                    owner=c,
                    surface="recommended",
                )
            )
    for c in CHILDREN:
        history.append(_event("follow", f"fol-{c}", at, actor="uncle", target=c))
        history.append(
            _event("message", f"msg-{c}", at, actor="uncle", target=c, text="你好，加个微信吧")
        )
    history.append(
        _event("message", "msg-teacher", at, actor="teacher", target="c1", text="明天记得带作业")
    )
    history.append(_event("message", "msg-f1", at, actor="f1", target="c2", text="一起玩"))
    r = _cli("audit", "import", str(_write(tmp_path / "history.jsonl", history)), db=db_url)
    assert r.returncode == 0, r.stderr
    assert "imported 22 processing records and 18 events" in r.stdout

    period, as_of = _period(), _as_of()
    before = tmp_path / "before"
    _audit_run(before, period, as_of, keyfile, db_url, "--supervisor")
    result = _result(before)
    assert _fails(result) == EXPECTED_FAILS
    coverage = _finding(result, "cn.req.consent.guardian_before_processing")
    assert _figure(coverage, "child_records") == 22
    assert _figure(coverage, "covered") == 0
    assert _figure(coverage, "uncovered_children") == 5
    acted = _finding(result, "cn.req.consent.within_consented_purpose")
    assert _figure(acted, "stale") == 2
    contact = _finding(result, "cn.req.contact.stranger_contact_children")
    assert _figure(contact, "messages_to_minors") == 7
    assert _figure(contact, "delivered_against_rule") == 5
    assert _figure(contact, "senders") == 1
    exposure = _finding(result, "cn.req.sharing.consented_audience")
    assert _figure(exposure, "beyond") == 6
    # The evidence behind the findings, as CSV and JSON, names the accounts and nothing else.
    delivered = (before / "evidence" / "stranger_messages_delivered.csv").read_text("utf-8")
    assert delivered.splitlines()[0] == "sender,recipient,at,rule_id"
    assert sorted(line.split(",")[1] for line in delivered.splitlines()[1:]) == list(CHILDREN)
    assert all("cn.contact.dm.child" in line for line in delivered.splitlines()[1:])
    assert "2016-03-01" not in (before / "evidence" / "processing_without_consent.csv").read_text()
    assert (before / "report.pdf").read_bytes().startswith(b"%PDF")
    proofs = sorted((before / "ledger" / "proofs").glob("*.json"))
    assert proofs, "the supervisor's bundle carries ledger proofs"
    for proof in proofs:
        checked = subprocess.run(
            [
                sys.executable,
                "-c",
                "from qinglang.cli import main; main()",
                "ledger",
                "check",
                str(proof),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (before / "measures.json").is_file()
    assert (before / "README.txt").is_file()
    ok = subprocess.run(
        [
            sys.executable,
            "-c",
            "from qinglang.cli import main; main()",
            "audit",
            "verify",
            str(before),
            "--key",
            str(keyfile.with_suffix(".pub")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # The same records and as-of give a byte-identical report, also when the per-minor
    # evidence is read slice by slice (one row per slice).
    again = tmp_path / "again"
    _audit_run(again, period, as_of, keyfile, db_url, "--supervisor", "--slice-rows", "1")
    for path in sorted(p for p in before.rglob("*") if p.is_file()):
        rel = path.relative_to(before)
        assert (again / rel).read_bytes() == path.read_bytes(), rel

    # ------------------------------------------------ rectification
    now = datetime.now(UTC)
    with service.tx(write=True) as s:
        platform = repo.get_platform_by_slug(s, "video")
        assert platform is not None
        run = rectification.latest_run_after(s, platform.id, now - timedelta(hours=1))
        assert run is not None
        run_id = run.id
        measures = rectification.measures_from_run(
            s,
            platform,
            run_id,
            owner="dpo",
            due_date=date.today() + timedelta(days=30),
            catalogue=catalogue,
            actor="compliance",
            now=now,
        )
        assert {r for m in measures for r in m.requirement_ids} == EXPECTED_FAILS
        codes = [m.code for m in measures]
        blocked = measures[0]
        rectification.set_status(
            s, blocked, "in_progress", catalogue=catalogue, actor="dpo", now=now
        )
        rectification.set_status(s, blocked, "done", catalogue=catalogue, actor="dpo", now=now)
        with pytest.raises(rectification.ClosingBlocked):
            rectification.set_status(
                s, blocked, "closed", catalogue=catalogue, actor="compliance", now=now
            )
    since = datetime.now(UTC)
    v3 = _publish(
        api, REGISTRATION, {**RECOMMEND, "audience": "followers", "scope": "仅推荐给关注孩子的用户"}
    )
    for child in CHILDREN:
        if child not in ("c4", "c5"):
            link(api, f"mum-{child}", child)
        for category in REGISTRATION["categories"]:
            _grant(api, child, f"mum-{child}", "registration", category, v3)
    _grant(api, "c4", "mum-c4", "recommend_content", "child_content", v3, audience="followers")
    _grant(api, "c5", "mum-c5", "recommend_content", "child_content", v3, decision="refuse")
    with service.tx(write=True) as s:
        platform = s.get(Platform, platform.id)
        policy = service.policy_for(platform)
        body = draft(store_impact.platform_config(s, platform, policy))
        for section in TEXT_SECTIONS:
            body[section]["text"] = "儿童账号、位置、通讯录和面部信息仅在监护人单独同意后处理。"
        body["sign_off"] = {"owner": "dpo", "date": datetime.now(TZ).date().isoformat()}
        store_impact.save_assessment(s, platform, body, "dpo", datetime.now(UTC), policy)
    r = api.post(
        "/v1/relationships", json={"events": [{"type": "follow", "src": "fan", "dst": "c4"}]}
    )
    assert r.status_code == 200, r.text
    # New activity: the platform asks before it acts, and logs only what it did.
    for sender, recipient in (("uncle", "c1"), ("uncle", "c3"), ("teacher", "c1")):
        d = api.post(
            "/v1/decide/contact", json={"action": "dm", "sender": sender, "recipient": recipient}
        )
        assert d.status_code == 200, d.text
        assert (d.json()["outcome"] == "allow") == (sender == "teacher")
    for viewer in ("fan", "viewer1"):
        d = api.post(
            "/v1/decide/exposure",
            json={"viewer": viewer, "item": "video-c4", "surface": "recommend"},
        )
        assert d.status_code == 200, d.text
    at = Clock()
    # From now on the platform reports its processing as it happens (POST /v1/processing).
    records = [{k: v for k, v in r.items() if k != "type"} for r in _registration(CHILDREN, at)]
    records.append(
        {"account": "c4", "purpose": "recommend_content", "category": "child_content", "at": at()}
    )
    r = api.post("/v1/processing", json={"records": records})
    assert r.status_code == 201, r.text
    after = [
        _event(
            "impression",
            "imp2-c4-fan",
            at,
            actor="fan",
            item="video-c4",
            owner="c4",
            surface="recommended",
        ),
        _event("message", "msg2-teacher", at, actor="teacher", target="c1", text="作业收到了"),
    ]
    r = _cli("audit", "import", str(_write(tmp_path / "after.jsonl", after)), db=db_url)
    assert r.returncode == 0, r.stderr
    fixed = tmp_path / "after"
    _audit_run(fixed, period, _as_of(), keyfile, db_url, "--since", since.isoformat())
    result = _result(fixed)
    assert _fails(result) == set()
    for rid in EXPECTED_FAILS:
        assert _finding(result, rid)["status"] == Status.PASS.value, rid
    replay = _finding(result, "cn.req.governance.processing_records")
    assert replay["status"] == Status.PASS.value
    assert _figure(replay, "sampled") >= 5
    assert _figure(replay, "unexplained") == 0
    with service.tx(write=True) as s:
        for code in codes:
            m = rectification.get_measure(s, platform.id, code)
            assert m is not None
            if m.status == "open":
                rectification.set_status(
                    s, m, "in_progress", catalogue=catalogue, actor="dpo", now=datetime.now(UTC)
                )
            if m.status == "in_progress":
                rectification.set_status(
                    s, m, "done", catalogue=catalogue, actor="dpo", now=datetime.now(UTC)
                )
            rectification.set_status(
                s, m, "closed", catalogue=catalogue, actor="compliance", now=datetime.now(UTC)
            )
            assert m.status == "closed"
