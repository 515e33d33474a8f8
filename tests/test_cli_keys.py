"""`qinglang keys` as an operator runs it on an SQLite file: status, rotate, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from qinglang.store import (
    id_number_digest,
    make_engine,
    repo,
    session_factory,
    transaction,
    upgrade,
)
from qinglang.store.crypto import (
    ENV_DATA_KEY,
    ENV_DIGEST_KEY,
    ENV_PREVIOUS_DATA_KEYS,
    DataKey,
    keyring_of,
    read_key_file,
)

NUMBER = "11010520120501123X"
KEY_ENV = (ENV_DATA_KEY, ENV_PREVIOUS_DATA_KEYS, ENV_DIGEST_KEY)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    return subprocess.run(
        [sys.executable, "-m", "qinglang.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**base, "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An SQLite file with five accounts and a guardian, keyed by its `<db>.key` file."""
    for name in KEY_ENV:
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'q.db'}"
    engine = make_engine(url)
    upgrade(engine)
    ring = keyring_of(engine)
    assert ring is not None
    with transaction(session_factory(engine)) as s:
        platform = repo.create_platform(s, "p", "P")
        for i in range(5):
            repo.upsert_account(s, platform.id, f"a{i}", birth_date=date(2012, 5, 1 + i))
        repo.upsert_account(s, platform.id, "id", id_number_hash=id_number_digest(ring, NUMBER))
        repo.upsert_guardian(s, platform.id, "g", display_name="王芳")
    engine.dispose()
    yield url


def status(url: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    r = run("keys", "status", "--db", url, "--json", env=env)
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def check_reads(url: str) -> None:
    engine = make_engine(url)
    try:
        ring = keyring_of(engine)
        assert ring is not None
        with session_factory(engine)() as s:
            platform = repo.get_platform_by_slug(s, "p")
            assert platform is not None
            account = repo.get_account(s, platform.id, "a4")
            assert account is not None and account.birth_date == date(2012, 5, 5)
            guardian = repo.get_guardian(s, platform.id, "g")
            assert guardian is not None and guardian.display_name == "王芳"
            found = repo.accounts_with_id_number_hash(
                s, platform.id, id_number_digest(ring, NUMBER)
            )
            assert [a.external_id for a in found] == ["id"]
    finally:
        engine.dispose()


def test_status_and_rotate_on_a_key_file(database: str, tmp_path: Path) -> None:
    before = status(database)
    old_id = before["primary"]
    assert before["keys_from"] == "key_file" and before["previous"] == []
    assert before["columns"]["accounts.birth_date"] == {old_id: 5}
    assert before["columns"]["guardians.display_name"] == {old_id: 1}

    human = run("keys", "status", "--db", database)
    assert human.returncode == 0 and old_id in human.stdout and "primary" in human.stdout

    r = run("keys", "rotate", "--db", database, "--batch-size", "2")
    assert r.returncode == 0, r.stderr
    after = status(database)
    new_id = after["primary"]
    assert new_id != old_id
    assert f"re-encrypted 6 value(s) under key id {new_id}" in r.stdout
    assert f"retired key id(s): {old_id}" in r.stdout
    assert after["previous"] == []
    assert after["digest_key_id"] == before["digest_key_id"]
    assert after["columns"]["accounts.birth_date"] == {new_id: 5}
    assert after["columns"]["guardians.display_name"] == {new_id: 1}
    assert read_key_file(tmp_path / "q.db.key").primary.key_id == new_id
    check_reads(database)

    again = run("keys", "rotate", "--db", database)
    assert again.returncode == 0, again.stderr
    assert status(database)["primary"] not in (old_id, new_id)
    check_reads(database)


def test_rotate_with_environment_keys_prints_the_new_environment(database: str) -> None:
    """With QINGLANG_DATA_KEY set (the PostgreSQL way), the key file is not used."""
    key_file = Path(database.removeprefix("sqlite:///") + ".key")
    old = read_key_file(key_file).primary
    file_before = key_file.read_text()
    env = {ENV_DATA_KEY: old.to_b64()}
    r = run("keys", "rotate", "--db", database, env=env)
    assert r.returncode == 0, r.stderr
    printed = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    new = DataKey.from_b64(printed[ENV_DATA_KEY])
    assert printed[ENV_PREVIOUS_DATA_KEYS] == old.to_b64()
    assert printed[ENV_DIGEST_KEY] == old.digest_key.to_b64()
    assert "restart" in r.stdout
    assert key_file.read_text() == file_before  # untouched

    during = {k: printed[k] for k in KEY_ENV}
    assert status(database, during)["columns"]["accounts.birth_date"] == {new.key_id: 5}
    finish = run("keys", "rotate", "--db", database, env=during)
    assert finish.returncode == 0, finish.stderr
    assert f"remove them from {ENV_PREVIOUS_DATA_KEYS}" in finish.stdout

    final = {ENV_DATA_KEY: printed[ENV_DATA_KEY], ENV_DIGEST_KEY: printed[ENV_DIGEST_KEY]}
    digest = run("keys", "digest-key", "--db", database, env=final)
    assert digest.stdout.strip() == f"{ENV_DIGEST_KEY}={old.digest_key.to_b64()}"


def test_generate_prints_a_usable_key() -> None:
    r = run("keys", "generate")
    assert r.returncode == 0
    key = DataKey.from_b64(r.stdout)
    assert key.key_id in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--new-key", "garbage"], "--new-key: "),
        (["--batch-size", "0"], "batch-size"),
        (["--db", "sqlite:///{tmp}/missing.db"], "no database file"),
        (["--db", "not a url"], "--db: not a database URL"),
        (["--db", "sqlite://"], "in-memory"),
    ],
)
def test_rotate_bad_input_is_one_line_exit_2(
    database: str, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.format(tmp=tmp_path) for a in args]
    if "--db" not in args:
        args += ["--db", database]
    r = run("keys", "rotate", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_previous_keys_without_digest_key_is_a_one_line_error(database: str) -> None:
    env = {
        ENV_DATA_KEY: DataKey.generate().to_b64(),
        ENV_PREVIOUS_DATA_KEYS: DataKey.generate().to_b64(),
    }
    r = run("keys", "status", "--db", database, env=env)
    assert r.returncode == 2
    assert ENV_DIGEST_KEY in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_keys_unknown_to_the_configuration_stop_the_rotation(database: str) -> None:
    r = run("keys", "rotate", "--db", database, env={ENV_DATA_KEY: DataKey.generate().to_b64()})
    assert r.returncode == 2
    assert "no configured key opens" in r.stderr
    check_reads(database)


def test_rotate_without_a_key_file(tmp_path: Path) -> None:
    database = tmp_path / "bare.db"
    database.touch()
    r = run("keys", "rotate", "--db", f"sqlite:///{database}")
    assert r.returncode == 2 and "no key file" in r.stderr
    assert not (tmp_path / "bare.db.key").exists()
