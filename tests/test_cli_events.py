"""`qinglang events` and `qinglang review` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qinglang.policy import load_policy
from qinglang.risk.types import Alert as RiskAlert
from qinglang.risk.types import Signal
from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
from qinglang.store import review as store_review
from qinglang.store.crypto import DataKey
from qinglang.store.models import LedgerEntry, StoredEvent

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def run(*args: str, key: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from qinglang.cli import main; main()", *args],
        input=stdin,
        capture_output=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", "QINGLANG_DATA_KEY": key},
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


@pytest.fixture
def seeded(db_url: str) -> tuple[str, str]:
    """A migrated database with platform 'video', a man and a girl; returns (url, key)."""
    key = DataKey.generate()
    engine = make_engine(db_url, data_key=key)
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as s:
            p = repo.create_platform(s, "video", "Video")
            repo.upsert_account(s, p.id, "man", birth_date=date(1980, 1, 1))
            girl = repo.upsert_account(s, p.id, "girl", birth_date=date(2016, 1, 1))
            repo.upsert_account(s, p.id, "boy", birth_date=date(2015, 6, 1))
            mum = repo.upsert_guardian(s, p.id, "mum")
            repo.link_guardian(s, mum.id, girl.id, method="signed_form", verified_by="ops")
    finally:
        engine.dispose()
    return db_url, key.to_b64()


def line(i: int, **extra: object) -> bytes:
    body: dict[str, object] = {
        "id": f"e{i}",
        "kind": "message",
        "at": (T0 + timedelta(seconds=i)).isoformat(),
        "actor": "man",
        "target": "girl",
        "text": f"你好 {i}",
    }
    body.update(extra)
    return json.dumps(body, ensure_ascii=False).encode() + b"\n"


def count_events(url: str, key: str) -> int:
    engine = make_engine(url, data_key=DataKey.from_b64(key))
    try:
        with transaction(session_factory(engine)) as s:
            return int(s.scalar(select(func.count()).select_from(StoredEvent)) or 0)
    finally:
        engine.dispose()


def test_ingest_reports_bad_lines_and_keeps_the_rest(
    seeded: tuple[str, str], tmp_path: Path
) -> None:
    url, key = seeded
    broken = line(2, text="bad").replace(b"bad", b"b\xffd")
    data = b"".join(
        [
            line(1),
            broken,
            b"{not json\n",
            b"\n",
            line(3, kind="wave"),
            line(4, text="x" * 300_000),
            line(1),  # duplicate
            line(5, at=(T0 - timedelta(days=9)).isoformat(), actor="unregistered"),
            b'["an", "array"]\n',
        ]
    )
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    r = run("events", "ingest", str(path), "--db", url, "--batch", "2", key=key)
    assert r.returncode == 2, r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert errors == [
        f"error: line 2: invalid UTF-8 at byte {broken.index(bytes([0xFF]))}",
        errors[1],
        "error: line 5: kind: must be one of follow, unfollow, message, impression, gift, "
        "profile_view, block, report",
        errors[3],
        "error: line 9: event: must be a JSON object",
    ]
    assert errors[1].startswith("error: line 3: not valid JSON")
    assert errors[3].startswith("error: line 6: ") and "over the 262,144-byte limit" in errors[3]
    assert "8 events read, 2 stored, 1 duplicates, 5 rejected" in r.stderr
    assert count_events(url, key) == 2
    again = run("events", "ingest", "-", "--db", url, key=key, stdin=line(1) + line(6))
    assert again.returncode == 0, again.stderr
    assert "2 events read, 1 stored, 1 duplicates, 0 rejected" in again.stderr
    status = run("events", "status", "--db", url, "--json", key=key)
    assert json.loads(status.stdout)["stored"] == 3


def test_ingest_one_line_errors(seeded: tuple[str, str], tmp_path: Path) -> None:
    url, key = seeded
    r = run("events", "ingest", str(tmp_path / "missing.jsonl"), "--db", url, key=key)
    assert r.returncode == 2 and "cannot read" in r.stderr
    path = tmp_path / "e.jsonl"
    path.write_bytes(line(1))
    r = run("events", "ingest", str(path), "--db", url, "--platform", "nope", key=key)
    assert r.returncode == 2 and "no platform 'nope'" in r.stderr


def test_consume_raises_the_alert(seeded: tuple[str, str]) -> None:
    url, key = seeded
    from tests.api.test_events_api import case_events

    lines = b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in case_events())
    assert run("events", "ingest", "-", "--db", url, key=key, stdin=lines).returncode == 0
    r = run("events", "consume", "--db", url, key=key)
    assert r.returncode == 0, r.stderr
    assert "8 events processed, 1 alerts, 1 automatic restrictions" in r.stdout
    status = json.loads(run("events", "status", "--db", url, "--json", key=key).stdout)
    assert status["lag"] == 0 and status["lease_holder"] is None  # released on exit
    listed = json.loads(run("review", "list", "--db", url, "--json", key=key).stdout)
    assert [(a["sender"], a["level"]) for a in listed["items"]] == [("man", "restrict")]


def queue(url: str, key: str) -> None:
    """One restrict-level alert on 'man' with its automatic restriction."""
    policy = load_policy("cn")
    engine = make_engine(url, data_key=DataKey.from_b64(key))
    try:
        with transaction(session_factory(engine)) as s:
            p = repo.get_platform_by_slug(s, "video")
            assert p is not None
            alert = RiskAlert(
                "al-1",
                "man",
                "restrict",
                0.92,
                T0,
                (Signal("cue.asks_age", 0.3, "asks age", "询问年龄", ("e1",), "你几岁了"),),
                ("girl",),
                ("e1",),
                "cn.risk.restrict",
            )
            evidence = {
                "alert": "al-1",
                "sender": {"account": "man", "age": 46},
                "level": "restrict",
                "score": 0.92,
                "rule_id": "cn.risk.restrict",
                "signals": [
                    {
                        "name": "cue.asks_age",
                        "weight": 0.3,
                        "explanation_zh": "询问年龄",
                        "explanation_en": "asks age",
                        "event_ids": ["e1"],
                        "excerpt": "你几岁了",
                    }
                ],
                "minors": [{"account": "girl", "age": 10}],
                "timeline": [],
            }
            row = store_review.queue_alert(s, p.id, alert, evidence, policy, datetime.now(UTC))
            assert row is not None
            store_review.auto_restrict(s, row, policy, datetime.now(UTC))
    finally:
        engine.dispose()


def test_review_commands(seeded: tuple[str, str], tmp_path: Path) -> None:
    url, key = seeded
    queue(url, key)
    listed = run("review", "list", "--db", url, "--json", key=key)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert [(a["id"], a["priority"], a["status"]) for a in items] == [("al-1", "urgent", "open")]
    table = run("review", "list", "--db", url, "--status", "open", key=key)
    assert "al-1" in table.stdout and "urgent" in table.stdout

    shown = run("review", "show", "al-1", "--db", url, "--reviewer", "rev1", key=key)
    assert shown.returncode == 0, shown.stderr
    assert "你几岁了" in shown.stdout and "girl (10)" in shown.stdout
    assert "staff.read" in shown.stdout

    bad = run("review", "act", "al-1", "dismiss", "--db", url, "--reviewer", "rev1", key=key)
    assert bad.returncode == 2 and "reason" in bad.stderr

    doc = tmp_path / "report.md"
    r = run(
        "review", "act", "al-1", "report", "--db", url, "--reviewer", "rev1",
        "--authority", "police", "--reference", "JZ-9", "--out", str(doc), key=key,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "review.report" in r.stdout
    text = doc.read_text("utf-8")
    assert "公安机关" in text and "JZ-9" in text and "你几岁了" in text
    assert oct(doc.stat().st_mode & 0o777) == "0o600"

    r = run("review", "act", "al-1", "notify_guardians", "--db", url, "--reviewer", "rev1", key=key)
    assert "to guardian mum of girl" in r.stdout
    r = run("review", "act", "al-1", "restrict", "--db", url, "--reviewer", "rev1",
            "--until", "2099-01-01T00:00+08:00", "--json", key=key)  # fmt: skip
    restriction = json.loads(r.stdout)["restriction"]
    assert restriction["until"].startswith("2098-12-31T16:00")
    r = run("review", "lift", str(restriction["id"]), "--db", url, "--reviewer", "rev1",
            "--reason", "appeal upheld", key=key)  # fmt: skip
    assert r.returncode == 0 and "lifted by rev1" in r.stdout

    engine = make_engine(url, data_key=DataKey.from_b64(key))
    try:
        with transaction(session_factory(engine)) as s:
            kinds = list(s.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.seq)))
    finally:
        engine.dispose()
    assert kinds == [
        "review.auto_restrict",
        "staff.read",
        "review.report",
        "review.notify_guardians",
        "review.restrict",
        "review.lift",
    ]
