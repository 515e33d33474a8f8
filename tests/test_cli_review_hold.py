"""`qinglang review hold/release` and `qinglang retention run` as a user runs them, on SQLite and
PostgreSQL: a held alert's evidence survives retention (reported as legal_hold) and goes at the
first run after the hold is released; bad input is one line with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from qinglang.policy import load_policy
from qinglang.risk.types import Alert as RiskAlert
from qinglang.risk.types import Signal
from qinglang.store import events as store_events
from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
from qinglang.store import review as store_review
from qinglang.store.crypto import DataKey
from qinglang.store.models import LedgerEntry, RiskConsumer, StoredEvent

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=400)


def run(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qinglang.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "250", "QINGLANG_DATA_KEY": key},
    )


@pytest.fixture
def seeded(db_url: str) -> tuple[str, str]:
    """Two processed message events received 400 days ago, and a dismissed alert whose evidence
    is the first; returns (url, data key)."""
    key = DataKey.generate()
    policy = load_policy("cn")
    engine = make_engine(db_url, data_key=key)
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as s:
            p = repo.create_platform(s, "video", "Video")
            repo.upsert_account(s, p.id, "girl", birth_date=date(2016, 1, 1))
            raws = [
                {"id": eid, "kind": "message", "at": OLD.isoformat(), "actor": "man"}
                | {"target": "girl", "text": "你几岁了"}
                for eid in ("e1", "e2")
            ]
            assert store_events.ingest(s, p.id, raws, now=OLD).accepted == 2
            s.add(RiskConsumer(platform_id=p.id, checkpoint=2))
            signal = Signal("cue.asks_age", 0.3, "asks age", "询问年龄", ("e1",), "你几岁了")
            alert = RiskAlert(
                "al-1", "man", "review", 0.5, OLD, (signal,), ("girl",), ("e1",), "cn.risk.review"
            )
            evidence = {"signals": [{"name": "cue.asks_age", "event_ids": ["e1"]}], "timeline": []}
            row = store_review.queue_alert(s, p.id, alert, evidence, policy, OLD)
            assert row is not None
            store_review.act(s, p, policy, row, "dismiss", "rev1", "not grooming", now=OLD)
    finally:
        engine.dispose()
    return db_url, key.to_b64()


def _events(url: str, key: str) -> set[str]:
    engine = make_engine(url, data_key=DataKey.from_b64(key))
    try:
        with session_factory(engine)() as s:
            return set(s.scalars(select(StoredEvent.event_id)))
    finally:
        engine.dispose()


def _kinds(url: str, key: str) -> list[str]:
    engine = make_engine(url, data_key=DataKey.from_b64(key))
    try:
        with session_factory(engine)() as s:
            return list(s.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.seq)))
    finally:
        engine.dispose()


def _one_line_exit_2(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_hold_keeps_evidence_through_retention_until_released(seeded: tuple[str, str]) -> None:
    url, key = seeded
    db = ("--db", url)
    held = run("review", "hold", "al-1", *db, "--reviewer", "lead", "--reason", "police JZ-3",
               key=key)  # fmt: skip
    assert held.returncode == 0, held.stderr
    assert "under legal hold by lead" in held.stdout and "review.hold" in held.stdout
    again = run("review", "hold", "al-1", *db, "--reviewer", "lead", "--reason", "once more",
                key=key)  # fmt: skip
    _one_line_exit_2(again, "hold: the alert is already under legal hold")

    first = run("retention", "run", *db, "--platform", "video", key=key)
    assert first.returncode == 0, first.stderr
    assert "legal_hold" in first.stdout and "legal hold" in first.stdout
    assert _events(url, key) == {"e1"}  # e2 was evidence of nothing

    shown = run("review", "list", *db, "--json", key=key)
    hold = json.loads(shown.stdout)["items"][0]["hold"]
    assert hold["active"] is True and hold["reason"] == "police JZ-3"

    released = run("review", "release", "al-1", *db, "--reviewer", "lead2",
                   "--reason", "case closed", "--json", key=key)  # fmt: skip
    assert released.returncode == 0, released.stderr
    out = json.loads(released.stdout)
    assert out["hold"]["active"] is False and out["action"]["kind"] == "release"

    second = run("retention", "run", *db, "--platform", "video", "--json", key=key)
    assert second.returncode == 0, second.stderr
    events = next(
        c for c in json.loads(second.stdout)[0]["categories"] if c["category"] == "events"
    )
    assert events["count"] == 1 and events["held"] == {}
    assert _events(url, key) == set()
    kinds = [k for k in _kinds(url, key) if k.startswith(("review.", "retention."))]
    assert kinds == [
        "review.dismiss",
        "review.hold",
        "retention.run",
        "review.release",
        "retention.run",
    ]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("hold", "al-1", "--reviewer", "lead", "--reason", "x"), "--reason: give a reason"),
        (("hold", "al-9", "--reviewer", "lead", "--reason", "keep it"), "no alert 'al-9'"),
        (("hold", "al-1", "--reviewer", " ", "--reason", "keep it"), "--reviewer: give a name"),
        (
            ("release", "al-1", "--reviewer", "lead", "--reason", "done now"),
            "hold: the alert is not",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(
    seeded: tuple[str, str], args: tuple[str, ...], needle: str
) -> None:
    url, key = seeded
    _one_line_exit_2(run("review", *args, "--db", url, key=key), needle)
