"""The stream workers with ``--risk``: each worker runs the risk engine over its own partitions.

Two worker processes take the case's grooming pattern and other senders' noise from NATS
JetStream; the offender's alert is queued once, by the worker that owns his partition. That
worker is killed and restarted: its engine state is rebuilt from the stored events of its
partitions (within the horizon) and no alert is queued again, not even after a further cue
message from him. Needs the NATS server, like tests/jobs/test_stream.py (same skip/fail rules,
a unique stream and subject prefix per test); the database is an SQLite file in tmp_path.

Reviewers' dismissals reach the workers' engines as they reach the DB-lease Consumer's: a
running worker applies a dismissal before judging its next batch (the dismissed sender's
alerts re-arm above the dismissed score only), and a restarted worker's replay applies the
dismissals in time order with the events; the alerts queued are those the Consumer queues for
the same events and dismissals without any restart. Those tests run on SQLite and PostgreSQL.
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


# ---------------------------------------------------------------- reviewers' dismissals

OTHER = "uncle"
"""A second offender, whose partition belongs to the other worker than OFFENDER's."""


def _message(event_id: str, minutes: int, actor: str, target: str, text: str) -> dict[str, Any]:
    at = (CASE_T0 + timedelta(minutes=minutes)).isoformat()
    return {"id": event_id, "kind": "message", "at": at, "actor": actor, "target": target} | {
        "text": text
    }


def _same(n: int, minutes: int) -> dict[str, Any]:
    """More of the offender's activity that does not raise his score: a message to an adult."""
    return _message(f"{OFFENDER}-same{n}", minutes, OFFENDER, ADULTS[0], "周末一起打球吗")


CLIMB = {1: ("boy", "你爸妈什么时候不在家？"), 2: ("boy", "你住哪里？我可以去找你玩")}


def _climb(n: int, minutes: int) -> dict[str, Any]:
    """A probing message from the offender: his score climbs, still below the restrict level."""
    target, text = CLIMB[n]
    return _message(f"{OFFENDER}-climb{n}", minutes, OFFENDER, target, text)


def _dismiss(db_url: str, key: str, sender: str, minutes: int) -> str:
    """A reviewer dismisses the sender's open alert at CASE_T0 + `minutes`; its alert id."""
    from qinglang.policy import load_policy
    from qinglang.store import review as store_review
    from qinglang.store.db import writer
    from qinglang.store.models import Platform

    engine = make_engine(db_url, data_key=DataKey.from_b64(key))
    try:
        with transaction(session_factory(writer(engine))) as s:
            alert = s.scalars(
                select(Alert).where(Alert.status == "open", Alert.sender == sender)
            ).one()
            platform = s.get(Platform, alert.platform_id)
            assert platform is not None
            at = CASE_T0 + timedelta(minutes=minutes)
            reason = "家长确认是亲戚 / a relative"
            store_review.act(
                s, platform, load_policy("cn"), alert, "dismiss", "rev-1", reason, now=at
            )
            return alert.alert_id
    finally:
        engine.dispose()


def _service(db_url: str, key: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from qinglang.api.service import Service, Settings

    monkeypatch.setenv("QINGLANG_DATA_KEY", key)
    return Service(Settings(db_url=db_url))


def _ingest(service: Any, raws: list[dict[str, Any]]) -> None:
    from qinglang.store import events as store_events

    with service.tx(write=True) as s:
        video = repo.get_platform_by_slug(s, "video")
        assert video is not None
        result = store_events.ingest(s, video.id, raws)
    assert result.accepted == len(raws), result.rejected


def _consumer_alerts(
    tmp_path: Path, steps: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, str, str]]:
    """The alerts the DB-lease Consumer queues, without any restart, for the same steps:
    ("events", raws) ingests and runs a pass, ("dismiss", (sender, minutes)) dismisses."""
    from qinglang.risk.consumer import Consumer

    url = f"sqlite:///{tmp_path / 'consumer.db'}"
    key = _seed(url)
    service = _service(url, key, monkeypatch)
    try:
        consumer = Consumer(service.sessions, service.write_sessions, service.policy_for)
        for kind, arg in steps:
            if kind == "events":
                _ingest(service, arg)
                assert consumer.run_once().events == len(arg)
            else:
                _dismiss(url, key, *arg)
        consumer.release()
    finally:
        service.engine.dispose()
    alerts, _ = _db(url, key)
    return sorted(alerts)


@pytest.mark.services
def test_dismissals_reach_the_running_worker_and_its_replay_as_in_the_consumer(
    nats_names: Names,  # noqa: F811
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = nats_names
    key = _seed(db_url)
    case = case_events(OFFENDER, strong=False)  # a review alert, no restriction
    noise = _noise()
    owner = next(w for w in (0, 1) if partition_of(OFFENDER, P) in partitions_for(w, 2, P))
    other = 1 - owner
    mine = [e for e in case + noise if partition_of(e["actor"], P) in partitions_for(owner, 2, P)]
    steps: list[tuple[str, Any]] = []

    def publish(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        """Publish, wait until stored and judged; the alerts queued since."""
        before, _ = _db(db_url, key)
        _publish(names, events)
        _wait(lambda: _drained(names), 120, "the stream to drain")
        after, stored = _db(db_url, key)
        assert {e["id"] for e in events} <= stored
        steps.append(("events", events))
        return sorted(set(after) - set(before))

    def dismiss(minutes: int) -> str:
        steps.append(("dismiss", (OFFENDER, minutes)))
        return _dismiss(db_url, key, OFFENDER, minutes)

    logs = {w: tmp_path / f"w{w}.jsonl" for w in (0, 1)}
    procs = {w: _worker(names, db_url, key, w, logs[w], "--risk", "--batch", "5") for w in (0, 1)}
    try:
        first = publish(case + noise)
        assert [(sender, level) for _, sender, level in first] == [(OFFENDER, "review")]
        assert dismiss(20) == first[0][0]

        # (a) The running worker applies the dismissal before its next batch: the same level
        # of activity raises nothing, a higher score raises the alert again.
        assert publish([_same(1, 25)]) == []
        again = publish([_climb(1, 30)])
        assert [(sender, level) for _, sender, level in again] == [(OFFENDER, "review")]
        assert again[0][0] != first[0][0]

        # (b) The reviewer dismisses that one too; the owner is killed and restarted: its
        # replay applies both dismissals where they fell, so it judges the further activity
        # as it would have without the restart.
        assert dismiss(35) == again[0][0]
        procs[owner].send_signal(signal.SIGKILL)
        procs[owner].wait(10)
        before = len(_records(logs[owner]))
        procs[owner] = _worker(names, db_url, key, owner, logs[owner], "--risk", "--batch", "5")

        def replays() -> list[int]:
            return [r["replayed"] for r in _records(logs[owner])[before:] if "replayed" in r]

        _wait(lambda: bool(replays()), 120, "the restarted worker's replay")
        assert replays() == [len(mine) + 2]
        assert publish([_same(2, 40)]) == []
        late = publish([_climb(2, 45)])
        assert [(sender, level) for _, sender, level in late] == [(OFFENDER, "review")]

        logged = {w: [a for r in _records(logs[w]) for a in r.get("alerts", [])] for w in (0, 1)}
        assert logged[other] == []
        assert sorted(logged[owner]) == sorted(a for a, _, _ in first + again + late)
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            assert p.wait(30) == 0, p.stderr.read().decode() if p.stderr else ""
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
    # The Consumer, fed the same events and dismissals without a restart, queues the same
    # alerts (alert ids are derived from sender, level and event).
    final, _ = _db(db_url, key)
    assert sorted(final) == _consumer_alerts(tmp_path, steps, monkeypatch)


def test_a_worker_applies_its_own_senders_dismissals_once_in_replay_and_batches(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, no NATS: the worker's rebuild and batches, with a recording engine."""
    import qinglang.risk.consumer as risk_consumer
    from qinglang.jobs.stream import StreamWorker
    from qinglang.risk.consumer import Consumer
    from qinglang.risk.engine import RiskEngine

    key = _seed(db_url)
    owner = next(w for w in (0, 1) if partition_of(OFFENDER, P) in partitions_for(w, 2, P))
    assert partition_of(OTHER, P) not in partitions_for(owner, 2, P)
    service = _service(db_url, key, monkeypatch)
    made: list[Any] = []

    class Spy(RiskEngine):
        """The engine, recording the senders it was told to acknowledge."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.acks: list[str] = []
            made.append(self)

        def acknowledge(self, sender: str) -> None:
            self.acks.append(sender)
            super().acknowledge(sender)

    try:
        with service.tx(write=True) as s:
            video = repo.get_platform_by_slug(s, "video")
            assert video is not None
            repo.upsert_account(
                s, video.id, OTHER, birth_date=date(1975, 1, 1), age_source="verified"
            )
        # Both offenders' review alerts, queued by the Consumer, then dismissed.
        _ingest(service, case_events(OFFENDER, strong=False) + case_events(OTHER, strong=False))
        consumer = Consumer(service.sessions, service.write_sessions, service.policy_for)
        assert consumer.run_once().alerts == 2
        consumer.release()
        _dismiss(db_url, key, OTHER, 20)
        _dismiss(db_url, key, OFFENDER, 20)

        monkeypatch.setattr(risk_consumer, "default_engine_factory", Spy)
        worker = StreamWorker(
            db_url, "video", partitions_for(owner, 2, P), partition_count=P, service=service
        )
        worker._platform_id = worker._open()
        worker._start_risk()
        (engine,) = made
        assert engine.acks == [OFFENDER]  # the other worker's sender is not ours
        assert worker.stats.replayed == len(case_events(OFFENDER, strong=False))

        def judge(*events: dict[str, Any]) -> list[str]:
            result, queued = worker._store_and_judge(list(events))
            assert result.accepted == len(events)
            return list(queued)

        assert judge(_same(1, 25)) == []
        assert len(judge(_climb(1, 30))) == 1  # re-armed by the replayed dismissal
        assert engine.acks == [OFFENDER]  # the replayed dismissal is not applied again

        # The state is dropped (as after a failed batch) and rebuilt before the next batch: the
        # dismissal is replayed where it fell, between the case and the later messages, so the
        # review level raised since stays raised and a further climb raises nothing, as in the
        # running engine (acknowledged after the replayed events, it would raise an alert).
        worker._risk = None
        assert judge(_climb(2, 45)) == []
        assert len(made) == 2
        rebuilt = made[1]
        assert rebuilt.acks == [OFFENDER]

        # A new dismissal reaches the engine before the next batch, once.
        _dismiss(db_url, key, OFFENDER, 50)
        assert judge(_same(2, 55)) == []
        assert rebuilt.acks == [OFFENDER, OFFENDER]
        assert judge(_same(3, 56)) == []
        assert rebuilt.acks == [OFFENDER, OFFENDER]
        assert engine.acks == [OFFENDER]
    finally:
        service.engine.dispose()
