"""`qinglang ledger` as a user runs it: tampering found at the right position, proof bundles
exported and checked (by qinglang and by the standalone checker listed in docs/ledger.md)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, text

from qinglang.consent.canonical import canonical_json
from qinglang.consent.ledger import body_digest, check_bundle, link_hash, make_body
from qinglang.store import ledger, repo
from qinglang.store.db import session_factory, transaction, upgrade, writer
from qinglang.store.models import LedgerEntry

DOC = Path(__file__).resolve().parents[1] / "docs" / "ledger.md"
N = 20


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


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qinglang.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """A migrated database with platform `demo` (a chain of 20: subjects -, c1, c2 in turn)
    and platform `quiet` (no entries)."""
    upgrade(db_engine)
    sessions = session_factory(writer(db_engine))
    with transaction(sessions) as session:
        pid = repo.create_platform(session, "demo", "Demo").id
        repo.create_platform(session, "quiet", "Quiet")
    subjects = (None, "c1", "c2")
    for i in range(1, N + 1):
        with transaction(sessions) as session:
            ledger.append(session, pid, "consent.granted", subjects[i % 3], {"i": i})
    return db_engine


def demo_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(text("SELECT id FROM platforms WHERE slug = 'demo'")).one()[0]
        )


# --- tampering with the database directly ------------------------------------------------


def _get(c: Connection, p: int, seq: int, column: str) -> Any:
    sql = f"SELECT {column} FROM ledger_entries WHERE platform_id = :p AND seq = :s"
    return c.execute(text(sql), {"p": p, "s": seq}).scalar_one()


def _set(c: Connection, p: int, seq: int, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    sql = f"UPDATE ledger_entries SET {sets} WHERE platform_id = :p AND seq = :s"
    c.execute(text(sql), {"p": p, "s": seq, **values})


def _delete(c: Connection, p: int, where: str) -> None:
    c.execute(text(f"DELETE FROM ledger_entries WHERE platform_id = :p AND {where}"), {"p": p})


def _edited_body(c: Connection, p: int, seq: int) -> str:
    body = json.loads(_get(c, p, seq, "body"))
    body["data"]["i"] = 999
    return canonical_json(body)


def edit_body(c: Connection, p: int, seq: int, rehash: bool) -> None:
    body = _edited_body(c, p, seq)
    h = link_hash(_get(c, p, seq, "prev_hash"), body_digest(body))
    _set(c, p, seq, body=body, **({"hash": h} if rehash else {}))


def _shift_from(c: Connection, p: int, seq: int) -> None:
    """Renumber entries from `seq` on one up (in two steps: (platform, seq) is unique)."""
    sql = "UPDATE ledger_entries SET seq = {} WHERE platform_id = :p AND {}"
    c.execute(text(sql.format("-seq - 1", f"seq >= {seq}")), {"p": p})
    c.execute(text(sql.format("-seq", "seq < 0")), {"p": p})


def insert_entry(c: Connection, p: int, seq: int, prev_from: int, shift: bool) -> None:
    """A forged, self-consistent entry at `seq` linked to entry `prev_from`."""
    if shift:
        _shift_from(c, p, seq)
    prev = _get(c, p, prev_from, "hash")
    at = datetime.now(UTC)
    body = make_body(p, seq, "consent.granted", "c9", at, {"forged": True})
    values = {"kind": "consent.granted", "subject": "c9", "at": at, "body": body}
    h = link_hash(prev, body_digest(body))
    c.execute(
        insert(LedgerEntry.__table__).values(
            platform_id=p, seq=seq, prev_hash=prev, hash=h, **values
        )
    )


def swap(c: Connection, p: int, i: int, j: int) -> None:
    """Exchange the seq values of entries i and j (through -i: (platform, seq) is unique)."""
    sql = "UPDATE ledger_entries SET seq = :new WHERE platform_id = :p AND seq = :old"
    for old, new in ((i, -i), (j, i), (-i, j)):
        c.execute(text(sql), {"p": p, "old": old, "new": new})


def _head(c: Connection, p: int, sql: str) -> None:
    c.execute(text(sql), {"p": p})


Tamper = Callable[[Connection, int], None]
TAMPERS: dict[str, tuple[Tamper, int]] = {
    "update body": (lambda c, p: edit_body(c, p, 7, rehash=False), 7),
    "update body and rehash it": (lambda c, p: edit_body(c, p, 7, rehash=True), 8),
    "update last body and rehash it": (lambda c, p: edit_body(c, p, N, rehash=True), N),
    "update hash": (lambda c, p: _set(c, p, 12, hash="ab" * 32), 12),
    "update previous hash": (lambda c, p: _set(c, p, 3, prev_hash="ab" * 32), 3),
    "update subject column": (lambda c, p: _set(c, p, 5, subject="c9"), 5),
    "delete middle entry": (lambda c, p: _delete(c, p, "seq = 10"), 10),
    "insert linked entry": (lambda c, p: insert_entry(c, p, 6, 5, shift=True), 7),
    "insert unlinked entry": (lambda c, p: insert_entry(c, p, 6, 2, shift=True), 6),
    "insert entry after the head": (lambda c, p: insert_entry(c, p, N + 1, N, shift=False), N + 1),
    "reorder two entries": (lambda c, p: swap(c, p, 5, 9), 5),
    "truncate tail": (lambda c, p: _delete(c, p, f"seq > {N - 3}"), N - 2),
    "truncate last entry": (lambda c, p: _delete(c, p, f"seq = {N}"), N),
    "update head hash": (
        lambda c, p: _head(
            c, p, f"UPDATE ledger_heads SET hash = '{'ab' * 32}' WHERE platform_id = :p"
        ),
        N,
    ),
    "delete head": (lambda c, p: _head(c, p, "DELETE FROM ledger_heads WHERE platform_id = :p"), 1),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampering_is_found_at_its_position(
    engine: Engine, db_url: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper, expected = TAMPERS[name]
    pid = demo_id(engine)
    with engine.begin() as connection:
        tamper(connection, pid)
    with transaction(session_factory(ledger.snapshot_engine(engine))) as session:
        brk = ledger.verify(session, pid)
    assert brk is not None and brk.position == expected, brk
    code, out, err = cli(capsys, "ledger", "verify", "--db", db_url)
    assert code == 1, out + err
    assert out == f"demo: BROKEN at position {expected}: {brk.reason}\nquiet: intact, no entries\n"


def test_one_platform_broken_another_intact_and_no_export(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    with engine.begin() as connection:
        edit_body(connection, demo_id(engine), 7, rehash=False)
    broken = run("ledger", "verify", "--db", db_url, "--platform", "demo")
    reason = "entry was changed (its hash does not match its body)"
    assert (broken.returncode, broken.stdout) == (1, f"demo: BROKEN at position 7: {reason}\n")
    intact = run("ledger", "verify", "--db", db_url, "--platform", "quiet")
    assert (intact.returncode, intact.stdout) == (0, "quiet: intact, no entries\n")
    out = tmp_path / "bundle.json"
    args = ["--platform", "demo", "--child", "c1", "--out", str(out)]
    refused = run("ledger", "export", "--db", db_url, *args)
    assert refused.returncode == 1
    assert refused.stdout == f"demo: BROKEN at position 7: {reason}; no bundle\n"
    assert not out.exists()


def test_intact_chains_verify(engine: Engine, db_url: str) -> None:
    r = run("ledger", "verify", "--db", db_url)
    assert r.returncode == 0, r.stderr
    with engine.connect() as connection:
        head = connection.execute(text("SELECT seq, hash FROM ledger_heads")).one()
    assert (
        r.stdout == f"demo: intact, {N} entries, head {N} {head.hash}\nquiet: intact, no entries\n"
    )
    assert r.stderr == ""


@pytest.mark.parametrize("broken", [False, True])
def test_progress_bar_on_a_terminal_does_not_change_the_result(
    engine: Engine,
    db_url: str,
    broken: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from rich.console import Console

    from qinglang.commands import ledger as command

    screen = io.StringIO()
    monkeypatch.setattr(command, "err", Console(file=screen, force_terminal=True, width=80))
    monkeypatch.setattr(command, "PROGRESS_FROM", 1)
    if broken:
        with engine.begin() as connection:
            _delete(connection, demo_id(engine), "seq = 3")
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db_url, "--platform", "demo")
    if broken:
        assert (code, out) == (
            1,
            "demo: BROKEN at position 3: entry 3 is missing (found sequence 4 next)\n",
        )
    else:
        assert code == 0 and out.startswith(f"demo: intact, {N} entries, head {N} ")
    assert "\x1b[" in screen.getvalue()  # the bar was drawn (and cleared: transient)


def test_verify_bad_arguments_exit_2_with_one_line(
    engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (["--db", db_url, "--platform", "nope"], "error: no platform 'nope'"),
        (
            ["--db", f"sqlite:///{tmp_path / 'absent.db'}"],
            f"error: no database file at {tmp_path / 'absent.db'}",
        ),
        (
            ["--db", "postgresql+psycopg://127.0.0.1:1/test"],
            "error: cannot open database postgresql+psycopg://127.0.0.1:1/test: OperationalError",
        ),
        (["--db", "nonsense"], "error: not a database URL: 'nonsense'"),
    ]
    (tmp_path / "empty.db").write_bytes(b"")
    cases.append(
        (
            ["--db", f"sqlite:///{tmp_path / 'empty.db'}"],
            "has no ledger tables (not a migrated qinglang database)",
        )
    )
    for args, message in cases:
        code, out, err = cli(capsys, "ledger", "verify", *args)
        assert code == 2, (args, out, err)
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "absent.db").exists()
    assert not (tmp_path / "empty.db.key").exists()


def test_verify_without_platforms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'q.db'}"
    upgrade(db)
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db)
    assert (code, out) == (0, "no platforms: nothing to verify\n")


# --- proof bundles -----------------------------------------------------------------------


def doc_block(marker: str) -> str:
    """The fenced code block that follows `<!-- marker -->` in docs/ledger.md."""
    found = re.search(rf"<!-- {marker} -->\n```\w+\n(.*?)\n```", DOC.read_text("utf-8"), re.S)
    assert found is not None, marker
    return found.group(1) + "\n"


@pytest.fixture(scope="module")
def doc_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("doc") / "check_bundle.py"
    path.write_text(doc_block("standalone-checker"), "utf-8")
    return path


def run_doc_checker(checker: Path, bundle: Path, *anchors: str) -> subprocess.CompletedProcess[str]:
    # -I -S: no site-packages, so only the standard library is importable.
    return subprocess.run(
        [sys.executable, "-I", "-S", str(checker), str(bundle), *anchors],
        capture_output=True,
        text=True,
        check=False,
    )


def test_doc_checker_is_short_and_uses_the_standard_library_only() -> None:
    code = doc_block("standalone-checker")
    assert len(code.splitlines()) <= 40
    modules = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module or "" for node in ast.walk(ast.parse(code)) if isinstance(node, ast.ImportFrom)
    }
    assert modules and modules <= set(sys.stdlib_module_names)


def test_doc_example_bundle_is_valid(doc_checker: Path, tmp_path: Path) -> None:
    example = doc_block("example-bundle")
    assert check_bundle(json.loads(example)) is None
    (tmp_path / "example.json").write_text(example, "utf-8")
    r = run_doc_checker(doc_checker, tmp_path / "example.json")
    assert r.returncode == 0 and r.stdout.startswith("OK: child-42, head 3 "), r.stderr
    r = run("ledger", "check", str(tmp_path / "example.json"))
    assert r.returncode == 0 and "valid: 1 entry about child-42 on demo" in r.stdout


@pytest.fixture
def bundle_path(
    engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    """c1's bundle, exported by the CLI (run in this process)."""
    out = tmp_path / "c1.json"
    args = ["--db", db_url, "--platform", "demo", "--child", "c1", "--out", str(out)]
    code, stdout, stderr = cli(capsys, "ledger", "export", *args)
    assert code == 0, stderr
    with engine.connect() as connection:
        head = connection.execute(text("SELECT hash FROM ledger_heads")).scalar_one()
    assert stdout == f"wrote {out}: 7 of {N} entries about c1 on demo in full, head {N} {head}\n"
    return out


def test_export_then_check(bundle_path: Path, doc_checker: Path) -> None:
    bundle = json.loads(bundle_path.read_text("utf-8"))
    assert (bundle["format"], bundle["version"], bundle["child"]) == (
        "qinglang.ledger.proof",
        1,
        "c1",
    )
    assert [e["seq"] for e in bundle["entries"] if "body" in e] == list(range(1, N + 1, 3))
    assert '\\"c2\\"' not in bundle_path.read_text("utf-8")
    r = run("ledger", "check", str(bundle_path))  # end to end, in its own process
    head = bundle["head"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == (
        f"{bundle_path}: valid: 7 entries about c1 on demo, chain of {N} entries to head "
        f"{head['hash']}\n"
    )
    ok = run_doc_checker(doc_checker, bundle_path)
    assert (ok.returncode, ok.stdout) == (0, f"OK: c1, head {N} {head['hash']}\n"), ok.stderr


def _reword(bundle: dict[str, Any]) -> None:
    entry = bundle["entries"][3]
    entry["body"] = entry["body"].replace('"consent.granted"', '"consent.refused"')


BUNDLE_TAMPERS: dict[str, tuple[Callable[[dict[str, Any]], None], int]] = {
    "changed body": (_reword, 4),
    "changed digest": (lambda b: b["entries"][5].update(digest="ab" * 32), 6),
    "removed entry": (lambda b: b["entries"].pop(5), 6),
    "removed digest": (lambda b: b["entries"][5].pop("digest"), 6),
    "changed head hash": (lambda b: b["head"].update(hash="ab" * 32), N),
    "changed head seq": (lambda b: b["head"].update(seq=N + 1), N + 1),
    "dropped last entry": (lambda b: b["entries"].pop(), N),
    "claimed for another child": (lambda b: b.update(child="c2"), 1),
}


@pytest.mark.parametrize("name", list(BUNDLE_TAMPERS))
def test_bundle_tampering_is_found_at_its_position(
    bundle_path: Path, doc_checker: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    change, expected = BUNDLE_TAMPERS[name]
    bundle = json.loads(bundle_path.read_text("utf-8"))
    change(bundle)
    bundle_path.write_text(json.dumps(bundle), "utf-8")
    brk = check_bundle(bundle)
    assert brk is not None and brk.position == expected, brk
    code, out, _ = cli(capsys, "ledger", "check", str(bundle_path))
    assert (code, out) == (1, f"{bundle_path}: BROKEN at position {expected}: {brk.reason}\n")
    if name == "removed digest":
        return  # the short checker stops with a KeyError traceback (exit 1), see the doc
    doc = run_doc_checker(doc_checker, bundle_path)
    assert doc.returncode == 1 and f"BROKEN at position {expected}:" in doc.stderr, doc.stderr


def test_check_with_anchors(
    bundle_path: Path, doc_checker: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = json.loads(bundle_path.read_text("utf-8"))
    at5, head = bundle["entries"][4]["hash"], bundle["head"]["hash"]
    check = ["ledger", "check", str(bundle_path)]
    code, out, _ = cli(capsys, *check, "--anchor", f"5:{at5}", "--anchor", f"{N}:{head}")
    assert code == 0 and out.endswith(", 2 anchor(s) matched\n")
    code, out, _ = cli(capsys, *check, "--anchor", f"6:{at5}")
    assert code == 1 and "BROKEN at position 6: hash differs from the anchor" in out
    code, out, _ = cli(capsys, *check, "--anchor", f"{N + 5}:{at5}")
    assert code == 1 and f"position {N + 5}: anchor at {N + 5} is past" in out
    assert run_doc_checker(doc_checker, bundle_path, f"5:{at5}").returncode == 0
    assert run_doc_checker(doc_checker, bundle_path, f"6:{at5}").returncode == 1
    assert run_doc_checker(doc_checker, bundle_path, f"{N + 5}:{at5}").returncode == 1


def test_check_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "text.json").write_text("not json", "utf-8")
    (tmp_path / "other.json").write_text('{"format": "something else"}', "utf-8")
    cases = [
        ([str(tmp_path / "absent.json")], "error: cannot read"),
        ([str(tmp_path / "text.json")], "is not JSON"),
        ([str(tmp_path / "other.json")], "not a ledger proof bundle"),
        ([str(tmp_path / "other.json"), "--anchor", "5:zz"], "--anchor must be SEQ:HASH"),
    ]
    for args, message in cases:
        code, _, err = cli(capsys, "ledger", "check", *args)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_export_bad_input_exits_2(
    engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "b.json")
    export = ["ledger", "export", "--db", db_url]
    cases = [
        ([*export, "--platform", "demo", "--child", "nobody", "--out", out], "no ledger entries"),
        ([*export, "--platform", "nope", "--child", "c1", "--out", out], "no platform 'nope'"),
        (
            [*export, "--platform", "demo", "--child", "c1", "--out", str(tmp_path / "x" / "b")],
            "no directory",
        ),
    ]
    for args, message in cases:
        code, _, err = cli(capsys, *args)
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "b.json").exists()
