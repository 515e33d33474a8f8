"""`qinglang notice`, `consent` and `rights` as an operator runs them (SQLite file): notices
published from JSON and TOML, staff reads of consents ledgered, rights requests moved on and
exported 0600; bad input exits 2 with one line, never a traceback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from qinglang.api.service import Service, Settings
from qinglang.store import repo
from qinglang.store import rights as store_rights
from qinglang.store.consents import publish_notice, record_consent, record_verified_link
from qinglang.store.models import LedgerEntry, RightsRequest

KID_BIRTH = date.today().replace(day=1) - timedelta(days=9 * 366)  # about 9 years old
ELEMENTS = {
    "purpose_method_scope": "短视频服务：上传、展示孩子的作品",
    "storage_location": "中华人民共和国境内",
    "retention_period": "账号存续期间",
    "expiry_handling": "到期删除或匿名化",
    "security_measures": "加密存储、访问控制",
    "refusal_consequences": "不影响基本浏览功能",
    "complaint_channel": "客服热线 400-000-0000",
    "correction_deletion": "监护人页面",
    "necessity_and_effect": "展示作品所必需",
}
NOTICE: dict[str, Any] = {
    "title": "儿童个人信息保护规则",
    "elements": ELEMENTS,
    "items": [
        {
            "purpose": "publish_content",
            "categories": ["child_content"],
            "method": "上传",
            "scope": "展示给关注孩子的用户",
            "audience": "followers",
        }
    ],
}
NOTICE_TOML = (
    'title = "儿童个人信息保护规则"\n\n[elements]\n'
    + "".join(f'{k} = "{v}"\n' for k, v in ELEMENTS.items())
    + """
[[items]]
purpose = "publish_content"
categories = ["child_content"]
method = "上传"
scope = "展示给关注孩子的用户"
audience = "followers"

[[items]]
purpose = "recommend_content"
categories = ["child_content"]
method = "算法推荐"
scope = "推荐给其他用户"
audience = "public"
"""
)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the console entry point in this process: (exit code, stdout, stderr)."""
    from qinglang.cli import main

    capsys.readouterr()
    argv = sys.argv
    sys.argv = ["qinglang", *args]
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def bad(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run a command that must fail with exit 2 and one line on stderr; return that line."""
    code, out, err = cli(capsys, *args)
    assert code == 2, (out, err)
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI's consoles are created once per process, reading COLUMNS then: when another test
    # imported them first, the environment is too late, so widen the consoles themselves.
    from qinglang.commands import common

    monkeypatch.setenv("COLUMNS", "250")
    for console in (common.out, common.err):
        monkeypatch.setattr(console, "width", 250)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite file with platform `video` and a nine-year-old `kid`."""
    db = f"sqlite:///{tmp_path / 'q.db'}"
    service = Service(Settings(db_url=db))
    with service.tx(write=True) as s:
        p = repo.create_platform(s, "video", "Video")
        repo.upsert_account(s, p.id, "kid", birth_date=KID_BIRTH, sex="F", age_source="verified")
    yield db
    service.engine.dispose()


@pytest.fixture
def family(url: str) -> str:
    """`kid` with guardian `mum` (verified), a child notice v1 and a granted consent."""
    service = Service(Settings(db_url=url))
    with service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, "video")
        assert p is not None
        kid = repo.get_account(s, p.id, "kid")
        assert kid is not None
        mum = repo.upsert_guardian(s, p.id, "mum", display_name="妈妈")
        record_verified_link(s, p, mum, kid, "small_payment", "kyc-team", {"reference": "pay-7"})
        notice = publish_notice(s, p, service.policy_for(p), "zh", "child", NOTICE, "dpo").notice
        record_consent(
            s,
            p,
            kid,
            purpose="publish_content",
            category="child_content",
            status="granted",
            given_by="guardian",
            guardian=mum,
            notice=notice,
        )
    service.engine.dispose()
    return url


def entries(url: str, kind: str) -> list[tuple[str | None, dict[str, Any]]]:
    """(subject, data) of the ledger entries of a kind, in order."""
    service = Service(Settings(db_url=url))
    try:
        with service.tx() as s:
            rows = s.execute(
                select(LedgerEntry).where(LedgerEntry.kind == kind).order_by(LedgerEntry.seq)
            ).scalars()
            return [(e.subject, json.loads(e.body)["data"]) for e in rows]
    finally:
        service.engine.dispose()


# ---------------------------------------------------------------- notices


def test_publish_from_json_and_toml_then_show(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    j = tmp_path / "notice.json"
    j.write_text(json.dumps(NOTICE, ensure_ascii=False), "utf-8")
    code, out, err = cli(
        capsys, "notice", "publish", str(j), "--platform", "video", "--language", "zh",
        "--by", "dpo", "--db", url,
    )  # fmt: skip
    assert code == 0, err
    assert "zh child notice version 1 on video" in out
    assert "stale: 0 consent(s) in 0 account(s)" in out

    t = tmp_path / "notice.toml"
    t.write_text(NOTICE_TOML, "utf-8")
    code, out, err = cli(
        capsys, "notice", "publish", str(t), "--platform", "video", "--language", "zh",
        "--by", "dpo", "--db", url, "--json",
    )  # fmt: skip
    assert code == 0, err
    v2 = json.loads(out)
    assert v2["version"] == 2 and v2["published_by"] == "dpo"
    assert [i["purpose"] for i in v2["body"]["items"]] == ["publish_content", "recommend_content"]
    assert len(v2["content_hash"]) == 64

    code, out, err = cli(
        capsys, "notice", "show", "--platform", "video", "--language", "zh", "--db", url, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["content_hash"] == v2["content_hash"]
    code, out, err = cli(
        capsys, "notice", "show", "--platform", "video", "--language", "zh", "--version", "1",
        "--db", url,
    )  # fmt: skip
    assert code == 0, err
    assert "儿童个人信息保护规则" in out and "version 1" in out
    assert "中华人民共和国境内" in out and "recommend_content" not in out
    assert "展示给关注孩子的用户" in out

    # An English general notice needs no child elements; the audience is an option.
    g = tmp_path / "general.json"
    g.write_text(json.dumps({**NOTICE, "title": "Privacy notice", "elements": {}}), "utf-8")
    code, out, err = cli(
        capsys, "notice", "publish", str(g), "--platform", "video", "--language", "en",
        "--audience", "general", "--by", "dpo", "--db", url,
    )  # fmt: skip
    assert code == 0, err
    assert "en general notice version 1" in out


def test_publish_refuses_missing_elements_naming_them(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lacking = {**NOTICE, "elements": {**ELEMENTS, "storage_location": " "}}
    del lacking["elements"]["complaint_channel"]
    f = tmp_path / "lacking.json"
    f.write_text(json.dumps(lacking, ensure_ascii=False), "utf-8")
    line = bad(
        capsys, "notice", "publish", str(f), "--platform", "video", "--language", "zh",
        "--by", "dpo", "--db", url,
    )  # fmt: skip
    assert "storage_location" in line and "complaint_channel" in line
    assert "purpose_method_scope" not in line
    assert "cn.consent.notice_elements" in line
    # Nothing was published.
    line = bad(capsys, "notice", "show", "--platform", "video", "--language", "zh", "--db", url)
    assert "no zh child notice published" in line


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("broken.json", "{not json", "is not JSON"),
        ("broken.toml", "title = ", "is not TOML"),
        ("list.json", "[1, 2]", "a notice body is an object"),
        ("extra.json", json.dumps({**NOTICE, "colour": "red"}), "colour"),
    ],
)
def test_bad_notice_files(
    url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    expected: str,
) -> None:
    f = tmp_path / name
    f.write_text(text, "utf-8")
    line = bad(
        capsys, "notice", "publish", str(f), "--platform", "video", "--language", "zh",
        "--by", "dpo", "--db", url,
    )  # fmt: skip
    assert expected in line


def test_notice_bad_options(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "n.json"
    f.write_text(json.dumps(NOTICE), "utf-8")
    common = ("--by", "dpo", "--db", url)
    assert "no platform 'nope'" in bad(
        capsys, "notice", "publish", str(f), "--platform", "nope", "--language", "zh", *common
    )
    assert "--language" in bad(
        capsys, "notice", "publish", str(f), "--platform", "video", "--language", "fr", *common
    )
    assert "cannot read" in bad(
        capsys, "notice", "publish", str(tmp_path / "gone.json"), "--platform", "video",
        "--language", "zh", *common,
    )  # fmt: skip
    line = bad(
        capsys, "notice", "show", "--platform", "video", "--language", "zh", "--version", "3",
        "--db", url,
    )  # fmt: skip
    assert "version 3" in line


# ---------------------------------------------------------------- consents


def test_consent_show_is_a_ledgered_staff_read(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = entries(family, "staff.read")
    assert before == []
    code, out, err = cli(
        capsys, "consent", "show", "--platform", "video", "--child", "kid", "--by", "alice",
        "--db", family, "--json",
    )  # fmt: skip
    assert code == 0, err
    (c,) = json.loads(out)
    assert c["purpose"] == "publish_content" and c["category"] == "child_content"
    assert c["status"] == "granted" and c["valid"] is True and c["stale_since"] is None
    assert c["audience"] == "followers" and c["notice_version"] == 1
    assert c["given_by"] == "guardian" and c["guardian"] == "mum"
    ((subject, data),) = entries(family, "staff.read")
    assert subject == "kid"
    assert data == {"by": "alice", "read": "consents", "command": "consent show", "rows": 1}

    # A new version adds a use of the child's videos: the consent goes stale.
    t = tmp_path / "v2.toml"
    t.write_text(NOTICE_TOML, "utf-8")
    code, out, err = cli(
        capsys, "notice", "publish", str(t), "--platform", "video", "--language", "zh",
        "--by", "dpo", "--db", family,
    )  # fmt: skip
    assert code == 0, err
    assert "version 2" in out and "stale: 1 consent(s) in 1 account(s)" in out

    code, out, err = cli(
        capsys, "consent", "show", "--platform", "video", "--child", "kid", "--by", "bob",
        "--db", family,
    )  # fmt: skip
    assert code == 0, err
    assert "publish_content" in out and "child_content" in out and "followers" in out
    assert "stale since" in out and "v1" in out and "guardian (mum)" in out
    assert "recorded as ledger entry" in out
    reads = entries(family, "staff.read")
    assert [d["by"] for _, d in reads] == ["alice", "bob"]
    body = json.dumps(reads, ensure_ascii=False)
    assert KID_BIRTH.isoformat() not in body and "妈妈" not in body


def test_consent_show_bad_input_writes_nothing(
    family: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("--platform", "video", "--db", family)
    assert "no account 'ghost'" in bad(
        capsys, "consent", "show", "--child", "ghost", "--by", "a", *common
    )
    assert "--by" in bad(capsys, "consent", "show", "--child", "kid", *common)
    assert "--by" in bad(capsys, "consent", "show", "--child", "kid", "--by", "  ", *common)
    assert "no platform" in bad(
        capsys, "consent", "show", "--child", "kid", "--by", "a", "--platform", "x", "--db", family
    )
    assert entries(family, "staff.read") == []


def test_consent_show_without_consents(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys, "consent", "show", "--platform", "video", "--child", "kid", "--by", "alice",
        "--db", url,
    )  # fmt: skip
    assert code == 0, err
    assert "no consents recorded for kid on video" in out
    assert len(entries(url, "staff.read")) == 1


# ---------------------------------------------------------------- rights


@pytest.fixture
def requests(family: str) -> tuple[str, dict[str, int]]:
    """An access request (received 30 days ago: overdue), a deletion and a withdrawal."""
    service = Service(Settings(db_url=family))
    ids: dict[str, int] = {}
    now = datetime.now(UTC)
    with service.tx(write=True) as s:
        p = repo.get_platform_by_slug(s, "video")
        assert p is not None
        kid = repo.get_account(s, p.id, "kid")
        mum = repo.get_guardian(s, p.id, "mum")
        assert kid is not None and mum is not None
        policy = service.policy_for(p)
        for kind, at in (
            ("access", now - timedelta(days=30)),
            ("deletion", now),
            ("withdrawal", now),
        ):
            r = store_rights.create_request(
                s,
                p,
                policy,
                kid,
                kind=kind,
                requester="guardian",
                guardian=mum,
                details={"channel": "phone"},
                note="by phone",
                at=at,
            )
            ids[kind] = r.id
    service.engine.dispose()
    return family, ids


def status_of(url: str, request_id: int) -> str:
    service = Service(Settings(db_url=url))
    try:
        with service.tx() as s:
            r = s.get(RightsRequest, request_id)
            assert r is not None
            return r.status
    finally:
        service.engine.dispose()


def test_rights_list_and_show(
    requests: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, ids = requests
    code, out, err = cli(capsys, "rights", "list", "--platform", "video", "--db", url, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["count"] == 3
    assert [r["id"] for r in listed["requests"]] == [
        ids["access"],
        ids["deletion"],
        ids["withdrawal"],
    ]
    assert listed["requests"][0]["overdue"] is True and listed["requests"][0]["guardian"] == "mum"

    code, out, err = cli(
        capsys, "rights", "list", "--platform", "video", "--overdue", "--db", url, "--json"
    )
    assert code == 0, err
    assert [r["kind"] for r in json.loads(out)["requests"]] == ["access"]

    code, out, err = cli(capsys, "rights", "list", "--platform", "video", "--db", url)
    assert code == 0, err
    assert "rights requests on video" in out and "OVERDUE" in out
    assert "deletion" in out and "guardian (mum)" in out and "3 request(s)" in out

    code, out, err = cli(
        capsys, "rights", "list", "--platform", "video", "--status", "refused", "--db", url
    )
    assert code == 0, err
    assert "no refused rights requests on video" in out
    assert "--status" in bad(
        capsys, "rights", "list", "--platform", "video", "--status", "done", "--db", url
    )

    code, out, err = cli(
        capsys,
        "rights",
        "show",
        str(ids["deletion"]),
        "--platform",
        "video",
        "--by",
        "dpo",
        "--db",
        url,
    )
    assert code == 0, err
    assert f"request {ids['deletion']}: deletion about kid, received" in out
    assert '"channel": "phone"' in out and "by phone" in out and "history" in out
    assert "recorded as ledger entry" in out
    code, out, err = cli(
        capsys,
        "rights",
        "show",
        str(ids["access"]),
        "--platform",
        "video",
        "--by",
        "dpo",
        "--db",
        url,
        "--json",
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["kind"] == "access" and shown["overdue"] is True
    assert [h["status"] for h in shown["history"]] == ["received"]
    assert "no rights request 999" in bad(
        capsys, "rights", "show", "999", "--platform", "video", "--by", "dpo", "--db", url
    )
    assert "request_id" in bad(
        capsys, "rights", "show", "abc", "--platform", "video", "--by", "dpo", "--db", url
    ).replace("REQUEST_ID", "request_id")


def test_rights_transitions(
    requests: tuple[str, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, ids = requests
    d = str(ids["deletion"])

    def move(rid: str, status: str, *more: str) -> tuple[int, str, str]:
        return cli(
            capsys, "rights", "transition", rid, "--platform", "video", "--status", status,
            "--by", "dpo", "--db", url, *more,
        )  # fmt: skip

    code, out, err = move(d, "in_progress", "--note", "checking identity")
    assert code == 0, err
    assert f"request {d} (deletion about kid) is now in_progress" in out

    # A refusal needs a written reason: exit 2, nothing changed.
    line = bad(
        capsys, "rights", "transition", d, "--platform", "video", "--status", "refused",
        "--by", "dpo", "--db", url,
    )  # fmt: skip
    assert "written reason" in line
    assert status_of(url, ids["deletion"]) == "in_progress"
    assert "reason" in bad(
        capsys, "rights", "transition", d, "--platform", "video", "--status", "refused",
        "--reason", "   ", "--by", "dpo", "--db", url,
    )  # fmt: skip

    code, out, err = move(d, "refused", "--reason", "账号仍有未结纠纷 / dispute pending", "--json")
    assert code == 0, err
    refused = json.loads(out)
    assert refused["status"] == "refused" and refused["reason"].startswith("账号仍有")
    assert [h["status"] for h in refused["history"]] == ["received", "in_progress", "refused"]
    assert refused["history"][-1]["actor"] == "dpo"

    # Closed for good; bad moves exit 2 with one line.
    assert "already refused" in bad(
        capsys, "rights", "transition", d, "--platform", "video", "--status", "completed",
        "--by", "dpo", "--db", url,
    )  # fmt: skip
    assert "no rights request 999" in bad(
        capsys, "rights", "transition", "999", "--platform", "video", "--status", "completed",
        "--by", "dpo", "--db", url,
    )  # fmt: skip
    assert "--status" in bad(
        capsys, "rights", "transition", d, "--platform", "video", "--status", "done",
        "--by", "dpo", "--db", url,
    )  # fmt: skip
    w = str(ids["withdrawal"])
    assert "only with status refused" in bad(
        capsys, "rights", "transition", w, "--platform", "video", "--status", "in_progress",
        "--reason", "x", "--by", "dpo", "--db", url,
    )  # fmt: skip

    # A withdrawal executes: the consent is withdrawn.
    code, out, err = move(w, "completed")
    assert code == 0, err
    assert "is now completed" in out and "withdrawn" in out
    code, out, err = cli(
        capsys, "consent", "show", "--platform", "video", "--child", "kid", "--by", "dpo",
        "--db", url, "--json",
    )  # fmt: skip
    assert [c["status"] for c in json.loads(out)] == ["withdrawn"]

    # Completing an access request needs somewhere to put the export (no copy is kept).
    a = str(ids["access"])
    assert "--out" in bad(
        capsys, "rights", "transition", a, "--platform", "video", "--status", "completed",
        "--by", "dpo", "--db", url,
    )  # fmt: skip
    assert status_of(url, ids["access"]) == "received"
    target = tmp_path / "access.json"
    code, out, err = move(a, "completed", "--out", str(target))
    assert code == 0, err
    assert "export written to" in out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    export = json.loads(target.read_text("utf-8"))
    assert export["account"]["external_id"] == "kid"
    assert export["account"]["birth_date"] == KID_BIRTH.isoformat()
    assert status_of(url, ids["access"]) == "completed"


def test_rights_export_writes_0600_and_is_ledgered(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "kid.json"
    code, out, err = cli(
        capsys, "rights", "export", "--platform", "video", "--child", "kid", "--by", "alice",
        "--out", str(target), "--db", family,
    )  # fmt: skip
    assert code == 0, err
    assert f"wrote {target} (mode 0600)" in out and "(rights.export)" in out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    export = json.loads(target.read_text("utf-8"))
    assert export["format"] == "qinglang.access-export"
    assert export["account"]["external_id"] == "kid"
    assert export["account"]["birth_date"] == KID_BIRTH.isoformat()
    assert export["account"]["sex"] == "F"
    assert [c["purpose"] for c in export["consents"]] == ["publish_content"]
    assert export["guardian_links"][0]["guardian"] == "mum"
    ((subject, data),) = entries(family, "rights.export")
    assert subject == "kid"
    assert data["requester"] == "staff" and data["by"] == "alice"
    assert data["counts"] == export["counts"]
    assert KID_BIRTH.isoformat() not in json.dumps(data)

    # Overwriting keeps 0600 even if the old file was readable by others.
    os.chmod(target, 0o644)
    code, _, err = cli(
        capsys, "rights", "export", "--platform", "video", "--child", "kid", "--by", "alice",
        "--out", str(target), "--db", family,
    )  # fmt: skip
    assert code == 0, err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_rights_export_bad_input(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("--platform", "video", "--by", "alice", "--db", family)
    assert "no account 'ghost'" in bad(
        capsys, "rights", "export", "--child", "ghost", "--out", str(tmp_path / "g.json"), *common
    )
    assert "is a directory" in bad(
        capsys, "rights", "export", "--child", "kid", "--out", str(tmp_path), *common
    )
    assert "no directory" in bad(
        capsys, "rights", "export", "--child", "kid", "--out", str(tmp_path / "no" / "x.json"),
        *common,
    )  # fmt: skip
    assert entries(family, "rights.export") == []
    assert not (tmp_path / "g.json").exists()


def test_console_script_refusal_without_reason(requests: tuple[str, dict[str, int]]) -> None:
    """The real entry point in a fresh process: one line on stderr, exit 2, no traceback."""
    url, ids = requests
    r = subprocess.run(
        [
            sys.executable, "-m", "qinglang.cli", "rights", "transition", str(ids["deletion"]),
            "--platform", "video", "--status", "refused", "--by", "dpo", "--db", url,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "written reason" in r.stderr
    assert status_of(url, ids["deletion"]) == "received"
