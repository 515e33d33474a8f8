"""The stream workers with ``--risk``: each worker runs the risk engine over its own partitions.

Two worker processes take the case's grooming pattern and other senders' noise from NATS
JetStream; the offender's alert is queued once, by the worker that owns his partition. That
worker is killed and restarted: its engine state is rebuilt from the stored events of its
partitions (within the horizon) and no alert is queued again, not even after a further cue
message from him. Needs the NATS server, like tests/jobs/test_stream.py (same skip/fail rules,
a unique stream and subject prefix per test); the database is an SQLite file in tmp_path.
"""

from __future__ import annotations

import signal
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from qinglang.jobs.stream import (
    connect,
    ensure_stream,
    partition_of,
    partitions_for,
    publish_events,
)
from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
from qinglang.store.crypto import DataKey
from qinglang.store.models import Alert, StoredEvent
from tests.api.test_events_api import T0 as CASE_T0
from tests.api.test_events_api import case_events
from tests.jobs.test_stream import (
    Names,
    P,
    _consumers,
    _records,
    _run,
    _wait,
    _worker,
    nats_names,  # noqa: F401  (the fixture)
)

OFFENDER = "man"
NOISE = [f"n{i:02d}" for i in range(12)]
ADULTS = [f"a{i:02d}" for i in range(6)]


def _seed(db_url: str) -> str:
    key = DataKey.generate()
    engine = make_engine(db_url, data_key=key)
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as s:
            p = repo.create_platform(s, "video", "Video")
            repo.upsert_account(
                s, p.id, OFFENDER, birth_date=date(1980, 1, 1), age_source="verified"
            )
            repo.upsert_account(s, p.id, "girl", birth_date=date(2016, 1, 1))
            repo.upsert_account(s, p.id, "boy", birth_date=date(2015, 6, 1))
            for a in NOISE + ADULTS:
                repo.upsert_account(s, p.id, a, birth_date=date(1990, 1, 1), age_source="verified")
    finally:
        engine.dispose()
    return key.to_b64()


def _noise() -> list[dict[str, Any]]:
    out = []
    for n in range(120):
        sender = NOISE[n % len(NOISE)]
        out.append(
            {
                "id": f"noise{n:04d}",
                "kind": "message",
                "at": (CASE_T0 + timedelta(seconds=7 * n)).isoformat(),
                "actor": sender,
                "target": ADULTS[n % len(ADULTS)],
                "text": f"周末一起打球吗 {n}",
            }
        )
    return out


def _publish(names: Names, events: list[dict[str, Any]]) -> None:
    async def go() -> None:
        nc = await connect(names.url)
        try:
            js = nc.jetstream()
            await ensure_stream(js, name=names.stream, prefix=names.prefix)
            report = await publish_events(
                js, "video", events, P, prefix=names.prefix, stream=names.stream
            )
            assert report.published == len(events) and report.duplicates == 0
        finally:
            await nc.close()

    _run(go())


def _drained(names: Names) -> bool:
    messages, rows = _run(_consumers(names))
    return messages == 0 and all(r == (0, 0) for r in rows)


def _db(db_url: str, key: str) -> tuple[list[tuple[str, str, str]], set[str]]:
    engine = make_engine(db_url, data_key=DataKey.from_b64(key))
    try:
        with transaction(session_factory(engine)) as s:
            alerts = [
                (a, b, c)
                for a, b, c in s.execute(select(Alert.alert_id, Alert.sender, Alert.level))
            ]
            stored = set(s.scalars(select(StoredEvent.event_id)))
    finally:
        engine.dispose()
    return alerts, stored


@pytest.mark.services
def test_risk_runs_on_the_worker_owning_the_sender_across_kill_and_restart(
    nats_names: Names,  # noqa: F811
    tmp_path: Path,
) -> None:
    names = nats_names
    db_url = f"sqlite:///{tmp_path / 'risk.db'}"
    key = _seed(db_url)
    case = case_events(OFFENDER)
    noise = _noise()
    events = case + noise
    owner = next(w for w in (0, 1) if partition_of(OFFENDER, P) in partitions_for(w, 2, P))
    other = 1 - owner
    owned = {w: set(partitions_for(w, 2, P)) for w in (0, 1)}
    # Noise from senders on both workers, so the other worker judges events too.
    assert {partition_of(a, P) in owned[other] for a in NOISE} == {True, False}

    logs = {w: tmp_path / f"w{w}.jsonl" for w in (0, 1)}
    procs = {w: _worker(names, db_url, key, w, logs[w], "--risk", "--batch", "5") for w in (0, 1)}
    started = time.monotonic()
    try:
        _publish(names, events)
        _wait(lambda: _drained(names), 60, "the stream to drain")
        alerts, stored = _db(db_url, key)
        assert stored == {e["id"] for e in events}
        assert alerts, "the case raised no alert"
        assert {sender for _, sender, _ in alerts} == {OFFENDER}
        # Every alert queued once, by the worker owning the offender's partition.
        logged = {w: [a for r in _records(logs[w]) for a in r.get("alerts", [])] for w in (0, 1)}
        assert logged[other] == []
        assert sorted(logged[owner]) == sorted(a for a, _, _ in alerts)
        assert len(set(logged[owner])) == len(logged[owner])
        levels = sorted(level for _, _, level in alerts)
        assert len(levels) == len(set(levels))  # at most one alert per level
        assert "restrict" in levels

        # Kill the owner after the alert; restart it: the state is rebuilt by a replay of the
        # stored events of its partitions (the offender's among them), nothing is raised again.
        procs[owner].send_signal(signal.SIGKILL)
        procs[owner].wait(10)
        before = len(_records(logs[owner]))
        procs[owner] = _worker(names, db_url, key, owner, logs[owner], "--risk", "--batch", "5")

        def replay_record() -> dict[str, Any] | None:
            found = [r for r in _records(logs[owner])[before:] if "replayed" in r]
            return found[0] if found else None

        _wait(lambda: replay_record() is not None, 60, "the restarted worker's replay")
        record = replay_record()
        assert record is not None
        mine = [e for e in events if partition_of(e["actor"], P) in owned[owner]]
        assert record["replayed"] == len(mine)
        assert any(e["actor"] == OFFENDER for e in mine)

        # A further cue message from him counts towards his rebuilt state: no new alert
        # (his alert level is already raised in the replayed state).
        cue = {
            "id": f"{OFFENDER}-after-restart",
            "kind": "message",
            "at": (CASE_T0 + timedelta(minutes=40)).isoformat(),
            "actor": OFFENDER,
            "target": "girl",
            "text": "别告诉你爸妈，周末我们见面吧，我给你买皮肤",
        }
        _publish(names, [cue])
        _wait(lambda: _drained(names), 60, "the stream to drain again")
        after, stored_after = _db(db_url, key)
        assert cue["id"] in stored_after
        assert sorted(after) == sorted(alerts)
        late = [a for r in _records(logs[owner])[before:] for a in r.get("alerts", [])]
        assert late == []
        assert any(cue["id"] in r.get("stored", []) for r in _records(logs[owner])[before:])

        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            assert p.wait(30) == 0, p.stderr.read().decode() if p.stderr else ""
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
    print(f"stream risk scenario: {time.monotonic() - started:.1f} s")
