"""`qinglang audit measure|pia|attest` as a user runs them (mounted on a local Typer app, as the
main CLI mounts them), on SQLite and PostgreSQL: measures opened from a failed run, refused
closing until a passing run, the export files, an impact assessment drafted, edited and saved,
an attested document uploaded; bad input is one line with exit code 2."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from qinglang.commands import audit_plan
from qinglang.commands.common import BadInput
from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
from qinglang.store.crypto import DataKey
from qinglang.store.models import AuditRun
from tests.audit.test_measures import CATALOGUE

APP = typer.Typer()
APP.add_typer(audit_plan.measure_app, name="measure")
APP.add_typer(audit_plan.pia_app, name="pia")
APP.add_typer(audit_plan.attest_app, name="attest")
NOW = datetime.now(UTC)


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Env:
    url: str
    key: str

    def run(self, *args: str) -> Result:
        """Run a command like `qinglang.cli.main` does: BadInput → exit 2, one line."""
        r = CliRunner().invoke(
            APP, [*args, "--db", self.url], env={"QINGLANG_DATA_KEY": self.key, "COLUMNS": "200"}
        )
        if isinstance(r.exception, BadInput):
            return Result(2, r.stdout, f"error: {r.exception}")
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Result(r.exit_code, r.stdout, r.stderr)

    def insert_run(self, statuses: dict[str, str], at: datetime) -> int:
        engine = make_engine(self.url, data_key=DataKey.from_b64(self.key))
        try:
            with transaction(session_factory(engine)) as s:
                p = repo.get_platform_by_slug(s, "video")
                assert p is not None
                run = AuditRun(
                    platform_id=p.id, period="2026", start=date(2026, 1, 1), end=date(2026, 12, 31),
                    as_of=at, passed=0, failed=0, not_evidenced=0, statuses=statuses,
                    created_by="auditor", created_at=at,
                )  # fmt: skip
                s.add(run)
                s.flush()
                return run.id
        finally:
            engine.dispose()


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Env:
    """One platform, "video"; the hand-built catalogue instead of the shipped one."""
    monkeypatch.setattr(audit_plan, "catalogue", lambda: CATALOGUE)
    key = DataKey.generate()
    engine = make_engine(db_url, data_key=key)
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as s:
            repo.create_platform(s, "video", "Video")
    finally:
        engine.dispose()
    return Env(db_url, key.to_b64())


def one_line_exit_2(r: Result, needle: str) -> None:
    assert r.code == 2, (r.out, r.err)
    assert needle in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_measures_from_a_run_to_closed_and_exported(env: Env, tmp_path: Path) -> None:
    failed = env.insert_run(
        {"REG-01": "fail", "GOV-01": "fail", "USE-01": "pass"}, NOW - timedelta(days=2)
    )
    r = env.run("measure", "from-run", str(failed), "--owner", "合规部", "--due", "2026-01-31",
                "--actor", "officer")  # fmt: skip
    assert r.code == 0, r.err
    assert "M-0001 opened for REG-01 (registration)" in r.out
    assert "M-0002 opened for GOV-01 (governance)" in r.out
    again = env.run("measure", "from-run", str(failed), "--owner", "x", "--due", "2026-01-31",
                    "--actor", "officer")  # fmt: skip
    assert "nothing opened" in again.out

    r = env.run("measure", "add", "--area", "contact", "--description", "陌生人私信默认关闭",
                "--owner", "产品部", "--due", "2099-01-01", "--requirement", "CON-01",
                "--actor", "officer", "--json")  # fmt: skip
    assert r.code == 0, r.err
    assert json.loads(r.out)["code"] == "M-0003"

    listed = json.loads(env.run("measure", "list", "--json").out)
    assert [m["code"] for m in listed["items"]] == ["M-0001", "M-0002", "M-0003"]
    late = json.loads(env.run("measure", "list", "--overdue", "--json").out)
    assert [m["code"] for m in late["items"]] == ["M-0001", "M-0002"]
    table = env.run("measure", "list")
    assert "OVERDUE" in table.out and "M-0003" in table.out

    for status in ("in_progress", "done"):
        assert env.run("measure", "set-status", "M-0001", status, "--actor", "owner").code == 0
    blocked = env.run("measure", "set-status", "M-0001", "closed", "--actor", "officer")
    one_line_exit_2(blocked, "M-0001 cannot close: requirements not passing")
    assert "REG-01" in blocked.err
    env.insert_run({"REG-01": "pass", "GOV-01": "fail"}, datetime.now(UTC) + timedelta(seconds=1))
    assert env.run("measure", "add-evidence", "M-0001", "flow-v2.pdf", "--actor", "owner").code == 0
    closed = env.run("measure", "set-status", "M-0001", "closed", "--actor", "officer",
                     "--note", "verified by run")  # fmt: skip
    assert closed.code == 0, closed.err
    assert "M-0001 is now closed" in closed.out
    shown = json.loads(env.run("measure", "show", "M-0001", "--json").out)
    assert shown["status"] == "closed" and shown["evidence"] == ["flow-v2.pdf"]
    assert [h["status"] for h in shown["history"]][-1] == "closed"
    text = env.run("measure", "show", "M-0002")
    assert "blocking now: GOV-01" in text.out

    out_dir = tmp_path / "export"
    r = env.run("measure", "export", "--out", str(out_dir))
    assert r.code == 0, r.err
    assert "3 measures" in r.out
    data = json.loads((out_dir / "measures.json").read_text("utf-8"))
    assert data["platform"]["slug"] == "video" and len(data["measures"]) == 3
    assert data["measures"][0]["requirements"][0]["text_en"] == "Requirement REG-01"
    rows = list(csv.reader((out_dir / "measures.csv").open(encoding="utf-8")))
    assert rows[0][0] == "code" and [r[0] for r in rows[1:]] == ["M-0001", "M-0002", "M-0003"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("measure", "add", "--area", "weather", "--description", "d", "--owner", "o",
          "--due", "2026-01-01", "--actor", "a"), "area: expected one of"),
        (("measure", "add", "--area", "use", "--description", "d", "--owner", "o",
          "--due", "2026-01-01", "--requirement", "NOPE", "--actor", "a"),
         "requirement_ids: unknown requirement 'NOPE'"),
        (("measure", "add", "--area", "use", "--description", "d", "--owner", "o",
          "--due", "soon", "--actor", "a"), "--due: expected a date YYYY-MM-DD"),
        (("measure", "show", "M-0099"), "no measure 'M-0099' on platform video"),
        (("measure", "from-run", "999", "--owner", "o", "--due", "2026-01-01", "--actor", "a"),
         "run_id: no audit run 999"),
        (("pia", "show", "7"), "no impact assessment version 7 on video"),
        (("attest", "add", "REG-01", "missing.pdf", "--title", "t", "--owner", "o",
          "--date", "2026-01-01", "--actor", "a"), "no file missing.pdf"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(env: Env, args: tuple[str, ...], needle: str) -> None:
    one_line_exit_2(env.run(*args), needle)


def test_transition_refused(env: Env) -> None:
    env.run("measure", "add", "--area", "use", "--description", "d", "--owner", "o",
            "--due", "2026-01-01", "--actor", "a")  # fmt: skip
    r = env.run("measure", "set-status", "M-0001", "closed", "--actor", "a")
    one_line_exit_2(r, "status: cannot go from open to closed")


def test_impact_assessment_draft_edit_save(env: Env, tmp_path: Path) -> None:
    printed = env.run("pia", "draft")
    assert printed.code == 0, printed.err
    body = json.loads(printed.out)
    assert body["platform"]["slug"] == "video" and body["safeguards"]["encryption_at_rest"]
    path = tmp_path / "pia.json"
    r = env.run("pia", "draft", "--out", str(path))
    assert r.code == 0 and "draft written" in r.out
    one_line_exit_2(
        env.run("pia", "save", str(path), "--actor", "dpo"), "impact.text: must be written"
    )
    body = json.loads(path.read_text("utf-8"))
    body["impact"]["text"] = "影响有限"
    body["risks"]["text"] = "无"
    body["conclusion"]["text"] = "可接受"
    body["sign_off"].update(owner="DPO", date="2026-11-20")
    path.write_text(json.dumps(body, ensure_ascii=False), "utf-8")
    saved = env.run("pia", "save", str(path), "--actor", "dpo")
    assert saved.code == 0, saved.err
    assert "version 1 saved" in saved.out and "kept until" in saved.out
    assert "version 2 saved" in env.run("pia", "save", str(path), "--actor", "dpo").out
    listed = json.loads(env.run("pia", "list", "--json").out)
    assert [a["version"] for a in listed["items"]] == [2, 1]
    shown = json.loads(env.run("pia", "show", "1").out)
    assert shown["version"] == 1 and shown["body"]["conclusion"]["text"] == "可接受"
    assert json.loads(env.run("pia", "show").out)["version"] == 2
    path.write_text("{not json", "utf-8")
    one_line_exit_2(env.run("pia", "save", str(path), "--actor", "dpo"), "not JSON")


def test_attest_add_and_list(env: Env, tmp_path: Path) -> None:
    doc = tmp_path / "任命书.pdf"
    doc.write_bytes(b"%PDF-1.7 appointment")
    r = env.run("attest", "add", "GOV-01", str(doc), "--title", "网络安全负责人任命书",
                "--owner", "法务部", "--date", "2026-10-01", "--actor", "officer",
                "--json")  # fmt: skip
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["media_type"] == "application/pdf" and got["requirement_id"] == "GOV-01"
    listed = json.loads(env.run("attest", "list", "--json").out)
    assert [a["title"] for a in listed["items"]] == ["网络安全负责人任命书"]
    assert env.run("attest", "list", "--requirement", "REG-01", "--json").out.count('"id"') == 0
    wrong = env.run("attest", "add", "REG-01", str(doc), "--title", "t", "--owner", "o",
                    "--date", "2026-10-01", "--actor", "a")  # fmt: skip
    one_line_exit_2(wrong, "requirement_id: REG-01 is checked automated, not attested")
    future = (NOW + timedelta(days=3)).date().isoformat()
    late = env.run("attest", "add", "GOV-01", str(doc), "--title", "t", "--owner", "o",
                   "--date", future, "--actor", "a")  # fmt: skip
    one_line_exit_2(late, "is in the future")
