"""`qinglang retention run` as a user runs it, on SQLite and PostgreSQL: dry run, real run,
one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
from qinglang.store.crypto import DataKey
from qinglang.store.models import DecisionLog, LedgerEntry

AT = datetime(2031, 1, 10, 8, 0, tzinfo=UTC)


def run(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qinglang.cli import main; main()", "retention", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", "QINGLANG_DATA_KEY": key},
    )


@pytest.fixture
def seeded(db_url: str) -> tuple[str, str]:
    """A migrated database with one overdue and one recent decision log and a cancelled account;
    returns (url, data key)."""
    key = DataKey.generate()
    engine = make_engine(db_url, data_key=key)
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as s:
            p = repo.create_platform(s, "video", "Video")
            repo.create_platform(s, "quiet", "Quiet")
            kid = repo.upsert_account(s, p.id, "kid", birth_date=date(2020, 1, 1))
            for days in (2000, 10):
                repo.log_decision(
                    s,
                    p,
                    kind="contact",
                    action="dm",
                    outcome="deny",
                    rule_ids=[],
                    subject_account_id=kid.id,
                    at=AT - timedelta(days=days),
                    always=True,
                )
            gone = repo.upsert_account(s, p.id, "gone", birth_date=date(2019, 1, 1))
            gone.cancelled_at = AT - timedelta(days=60)
    finally:
        engine.dispose()
    return db_url, key.to_b64()


def _counts(url: str, key: str) -> tuple[int, int]:
    engine = make_engine(url, data_key=DataKey.from_b64(key))
    try:
        with session_factory(engine)() as s:
            logs = s.execute(select(func.count()).select_from(DecisionLog)).scalar_one()
            entries = s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
            return int(logs), int(entries)
    finally:
        engine.dispose()


def test_dry_run_then_run(seeded: tuple[str, str]) -> None:
    url, key = seeded
    at = AT.isoformat()
    dry = run("run", "--db", url, "--platform", "video", "--at", at, "--dry-run", "--json", key=key)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert [r["platform"] for r in report] == ["video"]
    counts = {c["category"]: c["count"] for c in report[0]["categories"]}
    assert counts["decision_logs"] == 1 and counts["cancelled_accounts"] == 1
    assert report[0]["dry_run"] is True and report[0]["ledger_seq"] is None
    assert _counts(url, key) == (2, 0)

    human = run("run", "--db", url, "--at", at, key=key)
    assert human.returncode == 0, human.stderr
    assert "decision_logs" in human.stdout and "cn.retention.decision_logs" in human.stdout
    assert "video: 2 rows purged; ledger entry 1" in human.stdout
    assert "quiet: 0 rows purged; ledger entry 1" in human.stdout
    assert _counts(url, key) == (1, 2)  # one log left; one retention.run entry per platform

    again = run("run", "--db", url, "--platform", "video", "--at", at, "--json", key=key)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)[0]["total"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--at", "yesterday"), "--at: not an ISO instant"),
        (("--at", "2031-01-10T08:00"), "--at: give a time zone"),
        (("--platform", "nope"), "no platform 'nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    seeded: tuple[str, str], args: tuple[str, ...], needle: str
) -> None:
    url, key = seeded
    r = run("run", "--db", url, *args, key=key)
    assert r.returncode == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
