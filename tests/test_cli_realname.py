"""`qinglang realname emulate`: what it prints, its one-line bad-input errors (exit 2), and a
real run served over loopback until interrupted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from qinglang.commands import realname
from qinglang.commands.common import BadInput
from qinglang.realname import protocol as p
from qinglang.realname.emulator import TEST_CASES, Emulator

SECRET = "2836e95fcd10e04b0069bb1ee659955b"
OK_ID = "110101198001010010"

# `qinglang realname …` through cli.main(), as a user runs it
ENTRY = """
import sys
from qinglang import cli
sys.argv = ["qinglang", "realname", *sys.argv[1:]]
cli.main()
"""


class Served:
    """What `_serve` was given instead of serving."""

    emulator: Emulator | None = None
    port: int | None = None


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    record = Served()

    def fake_serve(emulator: Emulator, sock: Any) -> None:
        record.emulator = emulator
        record.port = sock.getsockname()[1]
        sock.close()

    monkeypatch.setattr(realname, "_serve", fake_serve)
    return record


def invoke(*args: str) -> tuple[int, str]:
    """(exit code, stdout) of the sub-app run in-process; BadInput counts as exit 2."""
    result = CliRunner().invoke(realname.app, list(args))
    if isinstance(result.exception, BadInput):
        return 2, str(result.exception)
    return result.exit_code, result.output


def test_emulate_prints_url_ids_secret_and_test_codes(served: Served) -> None:
    code, output = invoke("emulate", "--port", "0", "--test-cases", "--qps-loginout", "3")
    assert code == 0, output
    assert served.emulator is not None
    config = served.emulator.config
    assert f"http://127.0.0.1:{served.port}" in output
    assert f"app id: {config.app_id}" in output
    assert f"biz id: {config.biz_id}" in output
    assert re.search(r"secret: [0-9a-f]{32}\n", output)
    assert f"secret: {config.secret}" in output
    assert "qps: check 100, query 300, loginout 3" in output
    assert config.test_codes is not None and sorted(config.test_codes.values()) == list(range(1, 9))
    for test_code, case in config.test_codes.items():
        _, zh, en = TEST_CASES[case]
        assert f"{test_code}  case {case}" in output
        assert zh in output and en in output
    assert "registry: 3 identities (demo)" in output
    assert "/_emulator/state" in output


def test_emulate_with_given_values_and_registry(served: Served, tmp_path: Path) -> None:
    reg = tmp_path / "ids.json"
    reg.write_text(json.dumps({"identities": [{"name": "张三", "id_num": OK_ID}]}), "utf-8")
    code, output = invoke(
        "emulate",
        "--port",
        "0",
        "--app-id",
        "my-app",
        "--biz-id",
        "my-biz",
        "--secret",
        SECRET.upper(),
        "--registry",
        str(reg),
        "--qps-check",
        "7",
    )
    assert code == 0, output
    assert served.emulator is not None
    config = served.emulator.config
    assert (config.app_id, config.biz_id, config.secret) == ("my-app", "my-biz", SECRET.upper())
    assert config.qps_for("check") == 7 and config.test_codes is None
    assert "test codes" not in output
    assert f"registry: 1 identities ({reg})" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret", "xyz"], "--secret"),
        (["--secret", "00" * 15], "--secret"),
        (["--registry", "/nonexistent/ids.json"], "cannot read registry"),
        (["--port", "70000"], "--port must be 0..65535"),
        (["--port", "-1"], "--port must be 0..65535"),
        (["--qps-query", "0"], "--qps-query must be at least 1"),
        (["--host", "256.0.0.1", "--port", "0"], "cannot listen on 256.0.0.1:0"),
    ],
)
def test_emulate_bad_input(served: Served, args: list[str], message: str) -> None:
    code, output = invoke("emulate", *args)
    assert code == 2
    assert message in output
    assert served.emulator is None


def test_emulate_bad_registry_content(served: Served, tmp_path: Path) -> None:
    reg = tmp_path / "ids.toml"
    reg.write_text('[[identities]]\nname = "a"\nid_num = "123"\n', "utf-8")
    code, output = invoke("emulate", "--registry", str(reg))
    assert code == 2 and "invalid identity number" in output


def test_emulate_port_in_use(served: Served) -> None:
    from qinglang.realname.emulator import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        code, output = invoke("emulate", "--port", str(port))
    finally:
        sock.close()
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in output


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_bad_input_is_one_line_on_stderr_with_exit_code_2() -> None:
    res = run("emulate", "--secret", "nothex")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--secret" in lines[0]
    assert res.stdout == ""


def test_emulate_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "emulate", "--port", "0", "--test-cases"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("serving until interrupted"):
                break
        text = "\n".join(lines)
        fields = dict(re.findall(r"^(app id|biz id|secret): (\S+)$", text, re.M))
        url = re.search(r"(http://127\.0\.0\.1:\d+)$", lines[0])
        assert url and len(fields) == 3, text
        codes = dict(re.findall(r"^  (\S+)  case (\d)", text, re.M))
        assert sorted(codes.values()) == [str(i) for i in range(1, 9)]
        case1 = next(c for c, n in codes.items() if n == "1")

        payload = {"ai": "a" * 32, "name": "张三", "idNum": OK_ID}
        body = p.encrypt_body(fields["secret"], payload)
        headers = {
            "appId": fields["app id"],
            "bizId": fields["biz id"],
            "timestamps": str(int(time.time() * 1000)),
        }
        headers["sign"] = p.sign(fields["secret"], headers, body)
        with httpx.Client(base_url=url.group(1), timeout=10) as client:
            for path in ("/idcard/authentication/check", f"/test/authentication/check/{case1}"):
                r = client.post(path, content=body, headers=headers)
                errcode, _, data = p.parse_response(r.content)
                assert errcode == 0 and p.check_result(data).status == p.CheckStatus.OK
            state = client.get("/_emulator/state").json()
        assert state["requests"] == {"check": 2}
        assert state["test_cases"]["1"]["passed"] is True
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- configure, status, flush

APP = "c" * 32
BIZ = "1101999999"


def run_cli(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    """`qinglang realname …` in a subprocess with the database's data key."""
    env = {**os.environ, "COLUMNS": "200", "QINGLANG_DATA_KEY": key}
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, env=env, check=False
    )


@pytest.fixture
def seeded(db_url: str) -> tuple[str, str]:
    """Platform 'game' with two finished sessions of a verified player (4 reports) and one
    report whose pi the system does not know (rejected)."""
    from datetime import UTC, date, datetime, timedelta

    from qinglang.realname.emulator import derive_pi
    from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
    from qinglang.store import realname as store
    from qinglang.store.crypto import DataKey

    key = DataKey.generate()
    engine = make_engine(db_url, data_key=key)
    pi = derive_pi(APP, OK_ID)
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as s:
            plat = repo.create_platform(s, "game", "Game")
            acc = repo.upsert_account(s, plat.id, "player", birth_date=date(1980, 1, 1))
            at = datetime.now(UTC) - timedelta(hours=1)
            for i in range(2):
                gs = store.start_session(s, acc, at + timedelta(minutes=i), pi=pi, di=None)
                store.end_session(s, gs, at + timedelta(minutes=i, seconds=30), pi=pi)
            store.start_session(s, acc, at, pi="z" * 38, di=None)
    finally:
        engine.dispose()
    return db_url, key.to_b64()


def test_configure_status_and_flush(seeded: tuple[str, str]) -> None:
    from qinglang.realname.emulator import EmulatorConfig, Identity, Registry, RunningEmulator

    url, key = seeded
    status = run_cli("status", "--platform", "game", "--db", url, "--json", key=key)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == {
        "platform": "game",
        "configured": False,
        "waiting": 5,
        "rejected": 0,
    }
    nothing = run_cli("flush", "--platform", "game", "--db", url, key=key)
    assert nothing.returncode == 2 and "not configured" in nothing.stderr
    config = EmulatorConfig(APP, BIZ, SECRET, Registry([Identity("张三", OK_ID, "ok")]))
    with RunningEmulator(config) as emu:
        conf = run_cli(
            "configure", "--platform", "game", "--db", url, "--url", emu.url,
            "--app-id", APP, "--biz-id", BIZ, "--secret", SECRET, key=key,
        )  # fmt: skip
        assert conf.returncode == 0, conf.stderr
        assert SECRET not in conf.stdout
        flushed = run_cli("flush", "--platform", "game", "--db", url, key=key)
        assert flushed.returncode == 0, flushed.stderr
        assert "5 reports sent in 1 batches (4 accepted, 1 rejected); 0 waiting" in flushed.stdout
        assert "1 × BUS COLL PLAYERID INVALID" in flushed.stderr
        assert len(emu.emulator.accepted) == 4
    after = run_cli("status", "--platform", "game", "--db", url, "--json", key=key)
    assert json.loads(after.stdout)["rejected"] == 1


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--secret", "xyz"), ("--url", "ftp://x"), ("--test-code", "nope=1")],
)
def test_configure_bad_input_is_one_line_exit_2(
    seeded: tuple[str, str], flag: str, value: str
) -> None:
    url, key = seeded
    args = {"--url": "http://127.0.0.1:1", "--secret": SECRET, "--app-id": "a", "--biz-id": "b"}
    args[flag] = value
    r = run_cli(
        "configure", "--platform", "game", "--db", url, *[a for kv in args.items() for a in kv],
        key=key,
    )  # fmt: skip
    assert r.returncode == 2
    assert flag in r.stderr and len(r.stderr.strip().splitlines()) == 1
