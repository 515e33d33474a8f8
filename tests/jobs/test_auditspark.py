"""`qinglang.jobs.auditspark`: the audit's per-minor evidence read on Spark ``local[2]``, one task
per slice, adds up to exactly what one pass in the driver reads (SQLite and PostgreSQL); the
command line's `audit run --spark` writes the same bundle byte for byte; executors that cannot
connect or have no data key make the run fail with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from qinglang.audit import run as audit_run
from qinglang.jobs import auditspark
from qinglang.jobs.auditspark import AuditSparkError, executor_url, spark_reader
from qinglang.policy import load_policy
from qinglang.store import audit as store_audit
from qinglang.store.crypto import DataKey, DataKeyError
from qinglang.store.models import Platform
from tests.audit.test_slices import AS_OF, W, build_world
from tests.jobs.test_scanspark import _java

POLICY = load_policy("cn")
ROWS = 25
"""Rows per slice: a few dozen Spark tasks over the test's world."""
KEY = DataKey.generate()
"""One data key for the module, given to the Spark executors in their environment."""


@pytest.fixture
def data_key() -> DataKey:
    """The module's key (the executors have it), not a fresh one per test."""
    return KEY


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    if not _java():
        pytest.skip("Spark needs Java (none on PATH or in JAVA_HOME)")
    from qinglang.jobs.agescan import spark_session

    # The executors get the key as a deployment gives it (the JVM, and the Python workers it
    # starts, may predate this module in this process: its environment is not theirs).
    session = spark_session(
        "local[2]",
        {
            "spark.driver.memory": "1g",
            "spark.default.parallelism": "2",
            "spark.executorEnv.QINGLANG_DATA_KEY": KEY.to_b64(),
        },
        app="qinglang-audit-test",
    )
    try:
        yield session
    finally:
        session.stop()


def _one_pass(
    sm: sessionmaker[Session], platform_id: int, w: store_audit.Window
) -> store_audit.PerMinor:
    with sm() as s:
        platform = s.get(Platform, platform_id)
        assert platform is not None
        return audit_run.in_one_pass(s, platform, POLICY, w)


def _read(
    sm: sessionmaker[Session], platform_id: int, w: store_audit.Window, reader: Any
) -> store_audit.PerMinor:
    with sm() as s:
        platform = s.get(Platform, platform_id)
        assert platform is not None
        return reader(s, platform, POLICY, w)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- on Spark


def test_spark_slices_add_up_to_one_pass(
    spark: Any, session_maker: sessionmaker[Session], db_url: str
) -> None:
    rows = ROWS
    platform_id, w = build_world(session_maker, seed=11).platform_id, W
    expected = _one_pass(session_maker, platform_id, w)
    assert expected.processing.child_records > 0
    assert expected.contacts.delivered_against_rule > 0
    assert expected.exposure.beyond > 0
    seen: list[tuple[int, int]] = []
    got = _read(
        session_maker,
        platform_id,
        w,
        spark_reader(spark, db_url, rows, progress=lambda d, t: seen.append((d, t))),
    )
    assert got == expected
    with session_maker() as s:
        planned = len(store_audit.plan_slices(s, platform_id, w, rows))
    assert planned > 1
    assert seen[0] == (0, planned) and seen[-1] == (planned, planned)


def test_spark_samples_truncated_in_slice_order(
    spark: Any,
    session_maker: sessionmaker[Session],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The executors run with the module's SAMPLE (200); the driver's additions cut at its own,
    # so a smaller one here must still give the first rows in table order.
    platform_id, w = build_world(session_maker, seed=12).platform_id, W
    monkeypatch.setattr(store_audit, "SAMPLE", 2)
    expected = _one_pass(session_maker, platform_id, w)
    got = _read(session_maker, platform_id, w, spark_reader(spark, db_url, ROWS))
    assert got.processing.sample == expected.processing.sample
    assert got.contacts.sample == expected.contacts.sample
    assert got.exposure.sample == expected.exposure.sample


def test_an_unreachable_database_fails_naming_the_slice(
    spark: Any, session_maker: sessionmaker[Session]
) -> None:
    platform_id, w = build_world(session_maker, seed=13).platform_id, W
    bad = "postgresql+psycopg://127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(AuditSparkError, match=r"^slice processing \[\d+, \d+\): OperationalError"):
        _read(session_maker, platform_id, w, spark_reader(spark, bad, 1000))


# ---------------------------------------------------------------- the executors' side


@pytest.mark.services
def test_an_executor_without_the_data_key_says_how_to_give_it(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QINGLANG_DATA_KEY", raising=False)
    monkeypatch.setattr(auditspark, "_ENGINES", {})
    w = store_audit.window(POLICY, date(2026, 1, 1), date(2026, 12, 31), datetime.now(UTC))
    task = auditspark._SliceTask(postgres_schema_url, 1, POLICY, w)
    index, outcome = task((4, store_audit.Slice("processing", 1, 10)))
    assert index == 4
    assert isinstance(outcome, str)
    assert outcome.startswith("slice processing [1, 10): DataKeyError: no data key on the executor")
    assert "spark.executorEnv.QINGLANG_DATA_KEY" in outcome


def test_an_sqlite_executor_uses_the_key_file_and_never_makes_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QINGLANG_DATA_KEY", raising=False)
    monkeypatch.setattr(auditspark, "_ENGINES", {})
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with pytest.raises(DataKeyError, match=r"no .*q\.db\.key"):
        auditspark._engine(url)
    assert not (tmp_path / "q.db.key").exists()


def test_executor_url_makes_sqlite_paths_absolute_and_keeps_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert executor_url("sqlite:///./q.db") == f"sqlite:///{tmp_path / 'q.db'}"
    pg = "postgresql+psycopg://u:s3cret@db:5432/q?options=-csearch_path%3Dx"
    assert executor_url(pg) == pg
    for memory in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        with pytest.raises(AuditSparkError, match="in-memory"):
            executor_url(memory)


def test_slice_rows_below_one_is_refused() -> None:
    with pytest.raises(AuditSparkError, match="at least 1"):
        spark_reader("local[1]", "sqlite:////tmp/x.db", 0)


# ---------------------------------------------------------------- the command line


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qinglang.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--spark-conf", "a=b"), "--spark-conf applies with --spark only"),
        (("--spark", "local[1]", "--spark-conf", "novalue"), "--spark-conf: expected KEY=VALUE"),
        (("--spark", "nonsense://x"), "--spark: cannot start Spark on nonsense://x"),
    ],
)
def test_cli_bad_spark_options_are_one_line(
    tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    pytest.importorskip("pyspark")
    from qinglang.audit.bundle import generate_key

    key = tmp_path / "k.pem"
    generate_key(key)
    db = f"sqlite:///{tmp_path / 'q.db'}"
    assert _cli("platform", "create", "video", "Video", "--db", db).returncode == 0
    r = _cli(
        "audit", "run", "--period", "2026", "--out", str(tmp_path / "b"), "--key", str(key),
        "--db", db, *extra,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[-1].endswith(message) or message in lines[-1], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


def test_cli_audit_on_spark_writes_the_same_bundle(
    tmp_path: Path, session_maker: sessionmaker[Session], db_url: str
) -> None:
    pytest.importorskip("pyspark")
    if not _java():
        pytest.skip("Spark needs Java (none on PATH or in JAVA_HOME)")
    from qinglang.audit.bundle import generate_key

    build_world(session_maker, seed=15)
    key = tmp_path / "k.pem"
    generate_key(key)
    env = {"QINGLANG_DATA_KEY": KEY.to_b64()}
    common: tuple[str, ...] = (
        "--period",
        "2026-H1",
        "--as-of",
        AS_OF.isoformat(),
        "--key",
        str(key),
    )
    common += ("--platform", "p15")
    one = _cli("audit", "run", *common, "--out", str(tmp_path / "one"), "--db", db_url, env=env)
    assert one.returncode == 0, one.stderr
    on_spark = _cli(
        "audit", "run", *common, "--out", str(tmp_path / "spark"), "--db", db_url,
        "--spark", "local[2]", "--slice-rows", "25", "--spark-conf", "spark.driver.memory=1g",
        env=env,
    )  # fmt: skip
    assert on_spark.returncode == 0, on_spark.stderr
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    assert files
    for rel in files:
        a, b = tmp_path / "one" / rel, tmp_path / "spark" / rel
        assert b.exists(), rel
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), rel
