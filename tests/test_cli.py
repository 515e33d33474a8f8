"""The command line as a user runs it: exit codes, one-line errors, serve answering on a port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qinglang.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_check_id_valid() -> None:
    r = run("check-id", "11010519491231002X", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["birth_date"] == "1949-12-31" and info["sex"] == "F" and info["age"] >= 76


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("11010519491231002", "length"),
        ("110105194912310021", "checksum"),
        ("000000194912310021", "region"),
    ],
)
def test_check_id_invalid_exits_1_with_reason(number: str, reason: str) -> None:
    r = run("check-id", number, "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["reason"] == reason
    human = run("check-id", number)
    assert human.returncode == 1 and reason in human.stdout


def test_decide_contact_the_case() -> None:
    r = run("decide", "contact", "dm", "--sender-age", "41", "--recipient-age", "10", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["outcome"] == "deny" and d["reasons"][0]["rule_id"] == "cn.contact.dm.child"
    ok = run(
        "decide",
        "contact",
        "dm",
        "--sender-age",
        "41",
        "--recipient-age",
        "10",
        "--approved",
        "--json",
    )
    assert json.loads(ok.stdout)["outcome"] == "allow"


def test_decide_playtime_and_spending() -> None:
    r = run("decide", "playtime", "game", "--age", "12", "--at", "2026-10-10T20:30+08:00", "--json")
    assert json.loads(r.stdout)["reasons"][0]["rule_id"] == "cn.game.makeup_workday"
    r = run("decide", "spending", "3000", "--age", "12", "--month", "18000", "--json")
    assert json.loads(r.stdout)["limits"]["max_payable_fen"] == 2000


def test_policy_show_lists_rules_with_citations() -> None:
    r = run("policy", "show", "cn")
    assert r.returncode == 0
    assert "cn.game.window" in r.stdout and "未成年人保护法" in r.stdout
    rules = json.loads(run("policy", "show", "cn", "--json").stdout)
    assert {x["id"] for x in rules} >= {"cn.age.child", "cn.spend.single.8to15"}


@pytest.mark.parametrize(
    "args",
    [
        ("decide", "playtime", "game", "--age", "x"),
        ("decide", "playtime", "game", "--age", "12", "--at", "2026-10-10T20:30"),
        ("decide", "contact", "poke", "--sender-age", "3"),
        ("decide", "spending", "0", "--age", "12"),
        ("policy", "show", "atlantis"),
        ("no-such-command",),
    ],
)
def test_bad_input_exits_2_with_one_line(args: tuple[str, ...]) -> None:
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_answers_and_platform_create_issues_a_working_key(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'q.db'}"
    created = run("platform", "create", "acme", "Acme", "--db", db)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ql_")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qinglang.cli", "serve", "--port", str(port), "--db", db],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        h = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{base}/v1/policy", headers=h).status_code == 200
        assert httpx.get(f"{base}/v1/policy").status_code == 401
        assert "/v1/decide/contact" in httpx.get(f"{base}/openapi.json").json()["paths"]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert (tmp_path / "q.db.key").exists()
