"""`qinglang audit run|verify|keygen|import|requirements` as a user runs them (a subprocess), on
SQLite and PostgreSQL: a run writes a signed bundle that verifies offline, a tampered bundle does
not (exit 1, the file named); bad input is one line on stderr with exit code 2, no traceback."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qinglang.audit.bundle import generate_key
from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
from qinglang.store.crypto import DataKey
from qinglang.store.models import ProcessingRecord


def _cli(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    env.pop("QINGLANG_AUDIT_KEY", None)
    if key is not None:
        env["QINGLANG_DATA_KEY"] = key
    return subprocess.run(
        [sys.executable, "-c", "from qinglang.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def _one_line_exit_2(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in lines[0], r.stderr


@dataclass
class Env:
    url: str
    key: str
    tmp: Path
    signing: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _cli(*args, "--db", self.url, key=self.key)

    def audit(self, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("audit", "run", "--period", "2026", "--out", str(out), *extra)


def _make_env(url: str, tmp_path: Path) -> Env:
    key = DataKey.generate()
    engine = make_engine(url, data_key=key)
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as s:
            p = repo.create_platform(s, "video", "Video", decision_sample_rate=1.0)
            repo.upsert_account(s, p.id, "kid", birth_date=date(2016, 3, 1))
            repo.upsert_account(s, p.id, "man", birth_date=date(1980, 1, 1))
    finally:
        engine.dispose()
    signing = tmp_path / "keys" / "audit.pem"
    signing.parent.mkdir()
    generate_key(signing)
    return Env(url, key.to_b64(), tmp_path, signing)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Env:
    """One platform, "video", with two accounts; a signing key (SQLite and PostgreSQL)."""
    return _make_env(db_url, tmp_path)


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Env:
    """`env` on SQLite only, for input checks that do not depend on the database."""
    return _make_env(f"sqlite:///{tmp_path / 'qinglang.db'}", tmp_path)


# ---------------------------------------------------------------- audit run


@pytest.mark.parametrize(
    ("period", "needle"),
    [
        ("2026-13", "month must be in 1..12"),
        ("2026-Q5", "give YYYY"),
        ("2026-06-30..2026-01-01", "ends before it starts"),
        ("garbage", "give YYYY"),
    ],
)
def test_run_with_a_bad_period(tmp_path: Path, period: str, needle: str) -> None:
    r = _cli(
        "audit", "run", "--period", period, "--out", str(tmp_path / "out"),
        "--key", str(tmp_path / "k.pem"), "--db", f"sqlite:///{tmp_path / 'q.db'}",
    )  # fmt: skip
    _one_line_exit_2(r, "--period", needle)
    assert not (tmp_path / "out").exists()


def test_run_with_a_bad_out_or_key_is_one_line(sqlite_env: Env) -> None:
    env = sqlite_env
    key = ("--key", str(env.signing))
    full = env.tmp / "full"
    full.mkdir()
    (full / "old.txt").write_text("an earlier run", "utf-8")
    _one_line_exit_2(env.audit(full, *key), "--out", "not an empty directory")
    a_file = env.tmp / "a-file"
    a_file.write_text("x", "utf-8")
    _one_line_exit_2(env.audit(a_file, *key), "--out", "not an empty directory")
    out = env.tmp / "out"
    missing = env.tmp / "keys" / "missing.pem"
    _one_line_exit_2(env.audit(out, "--key", str(missing)), "--key", "no such file")
    _one_line_exit_2(env.audit(out), "--key", "QINGLANG_AUDIT_KEY")
    assert not out.exists()
    assert sorted(p.name for p in full.iterdir()) == ["old.txt"]


def test_run_with_bad_instants_is_one_line(env: Env) -> None:
    key = ("--key", str(env.signing))
    out = env.tmp / "out"
    as_of = ("--as-of", "2026-06-01T00:00:00Z")
    _one_line_exit_2(
        env.audit(out, *key, *as_of, "--since", "2026-07-01T00:00:00Z"),
        "--since",
        "before --as-of",
    )
    _one_line_exit_2(
        env.audit(out, *key, *as_of, "--since", "2026-06-01T08:00:00+08:00"), "--since"
    )
    _one_line_exit_2(env.audit(out, *key, "--as-of", "2026-06-01T00:00:00"), "--as-of", "offset")
    _one_line_exit_2(env.audit(out, *key, "--as-of", "yesterday"), "--as-of", "ISO 8601")
    assert not out.exists()
    assert not [p for p in env.tmp.iterdir() if p.name.startswith(".audit-")]


def test_run_into_a_missing_parent_directory_is_one_line(sqlite_env: Env) -> None:
    env = sqlite_env
    r = env.audit(env.tmp / "no" / "such" / "dir", "--key", str(env.signing))
    _one_line_exit_2(r, "--out")


def test_run_with_a_key_that_is_not_a_private_key_is_one_line(sqlite_env: Env) -> None:
    env = sqlite_env
    r = env.audit(env.tmp / "out", "--key", str(env.signing.with_suffix(".pub")))
    _one_line_exit_2(r, "--key")


# ---------------------------------------------------------------- a run, verified offline


def test_run_then_verify_then_tamper(env: Env) -> None:
    out = env.tmp / "bundle"
    as_of = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = env.audit(out, "--key", str(env.signing), "--as-of", as_of)
    assert r.returncode == 0, r.stderr
    assert "run 1:" in r.stdout and "manifest sha256" in r.stdout
    assert {"MANIFEST.json", "MANIFEST.sig", "public_key.pem", "report.pdf"} <= {
        p.name for p in out.iterdir()
    }
    result = json.loads((out / "result.json").read_text("utf-8"))
    assert len(result["findings"]) == 50

    ok = _cli("audit", "verify", str(out))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✓" in ok.stdout
    pub = str(env.signing.with_suffix(".pub"))
    assert _cli("audit", "verify", str(out), "--key", pub).returncode == 0
    doc = json.loads(_cli("audit", "verify", str(out), "--json").stdout)
    assert doc["ok"] is True and doc["problems"] == []
    assert doc["files_checked"] >= 5 and len(doc["key_fingerprint"]) == 64

    tampered = env.tmp / "tampered"
    shutil.copytree(out, tampered)
    with (tampered / "result.json").open("a", encoding="utf-8") as fh:
        fh.write(" ")
    bad = _cli("audit", "verify", str(tampered))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "result.json" in bad.stdout and "✓" not in bad.stdout
    assert "Traceback" not in bad.stderr
    doc = json.loads(_cli("audit", "verify", str(tampered), "--json").stdout)
    assert doc["ok"] is False
    assert {p["path"] for p in doc["problems"]} == {"result.json"}

    added = env.tmp / "added"
    shutil.copytree(out, added)
    (added / "evidence" / "extra.csv").write_text("a,b\n", "utf-8")
    bad = _cli("audit", "verify", str(added))
    assert bad.returncode == 1 and "extra.csv" in bad.stdout, bad.stdout + bad.stderr

    other = env.tmp / "keys" / "other.pem"
    generate_key(other)
    bad = _cli("audit", "verify", str(out), "--key", str(other.with_suffix(".pub")))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr


def test_verify_of_a_non_directory(tmp_path: Path) -> None:
    _one_line_exit_2(_cli("audit", "verify", str(tmp_path / "missing")), "not a directory")
    f = tmp_path / "file"
    f.write_text("x", "utf-8")
    _one_line_exit_2(_cli("audit", "verify", str(f)), "not a directory")


def test_verify_of_a_directory_without_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("<html></html>", "utf-8")
    r = _cli("audit", "verify", str(tmp_path))
    assert r.returncode in (1, 2), (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------- keygen, requirements


def test_keygen_writes_a_key_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    r = _cli("audit", "keygen", str(path))
    assert r.returncode == 0, r.stderr
    assert path.is_file() and path.with_suffix(".pub").is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    _one_line_exit_2(_cli("audit", "keygen", str(path)), "exists")
    assert path.read_bytes() == before
    _one_line_exit_2(_cli("audit", "keygen", str(tmp_path / "no" / "k.pem")))


def test_requirements_json_lists_the_catalogue() -> None:
    r = _cli("audit", "requirements", "--json")
    assert r.returncode == 0, r.stderr
    reqs = json.loads(r.stdout)
    assert len(reqs) == 50
    ids = [q["id"] for q in reqs]
    assert len(set(ids)) == 50
    assert {q["kind"] for q in reqs} <= {"automated", "configuration", "attested"}
    assert all(q["sources"] and q["text_zh"] and q["text_en"] for q in reqs)
    assert all(q["check"] for q in reqs if q["kind"] == "automated")


# ---------------------------------------------------------------- import


def test_import_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    db = ("--db", f"sqlite:///{tmp_path / 'q.db'}")
    _one_line_exit_2(_cli("audit", "import", str(tmp_path / "missing.jsonl"), *db), "no such file")


def test_import_bad_input_is_one_line(env: Env) -> None:
    latin = env.tmp / "latin1.jsonl"
    latin.write_bytes(
        b'{"type": "processing", "account": "kid", "purpose": "p", "category": "c", '
        b'"at": "2026-05-01T00:00:00Z"}\n{"type": "event", "id": "\xe9"}\n'
    )
    _one_line_exit_2(env.run("audit", "import", str(latin)), "not UTF-8")
    good = json.dumps(
        {"type": "processing", "account": "kid", "purpose": "p", "category": "c"}
        | {"at": "2026-05-01T00:00:00Z"}
    )
    bad = env.tmp / "bad.jsonl"
    bad.write_text(f"{good}\n\n{good.replace('kid', 'ghost')}\n", "utf-8")
    _one_line_exit_2(env.run("audit", "import", str(bad)), "line 3", "account", "ghost")
    # nothing of the bad files was stored: a good import afterwards stores its own line only
    ok = env.tmp / "ok.jsonl"
    follow = {"type": "event", "id": "e1", "kind": "follow", "at": 0, "actor": "man"}
    ok.write_text(f"{good}\n{json.dumps(follow | {'target': 'kid'})}\n", "utf-8")
    r = env.run("audit", "import", str(ok))
    assert r.returncode == 0, r.stderr
    assert "imported 1 processing records and 1 events (0 duplicates) from 2 lines" in r.stdout
    engine = make_engine(env.url, data_key=DataKey.from_b64(env.key))
    try:
        with session_factory(engine)() as s:
            assert s.scalar(select(func.count(ProcessingRecord.id))) == 1
    finally:
        engine.dispose()


def test_import_of_a_lone_surrogate_is_one_line(env: Env) -> None:
    f = env.tmp / "surrogate.jsonl"
    f.write_text(
        '{"type": "processing", "account": "kid", "purpose": "p", "category": "c\\udc80", '
        '"at": "2026-05-01T00:00:00Z"}\n',
        "utf-8",
    )
    _one_line_exit_2(env.run("audit", "import", str(f)), "line 1", "category")
