"""NATS JetStream intake (qinglang.jobs.stream, `qinglang stream`): partitioning by sender, and
two worker processes that lose no event and store none twice across a kill and a restart.

The scenario tests need the NATS server (``nats://127.0.0.1:4222`` or env
``QINGLANG_TEST_NATS_URL``) with JetStream; they skip when it is unreachable, or fail under
``QINGLANG_REQUIRE_SERVICES=1``. Each test uses its own stream and subject prefix (a uuid) and
deletes the stream afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from qinglang.jobs.stream import (
    connect,
    consumer_name,
    ensure_stream,
    partition_of,
    partitions_for,
    publish_events,
    subject_for,
)
from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
from qinglang.store.crypto import DataKey
from qinglang.store.models import StoredEvent
from tests.conftest import services_required

NATS_URL = os.environ.get("QINGLANG_TEST_NATS_URL", "nats://127.0.0.1:4222")
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
P = 8
SENDERS = 50
PER_SENDER = 40
CLI = "from qinglang.cli import main; main()"


# ---------------------------------------------------------------- partitioning (no services)


def test_partition_is_crc32_of_the_sender_and_fixed() -> None:
    assert partition_of("alice", 8) == zlib.crc32(b"alice") % 8
    # Literal values: a change of hash would move every sender to another worker.
    assert [partition_of(f"s{i:02d}", 8) for i in range(10)] == [4, 2, 0, 6, 5, 3, 1, 7, 6, 0]
    assert partition_of("user-42", 8) == 3
    assert partition_of("小明", 16) == zlib.crc32("小明".encode()) % 16


def test_partition_does_not_depend_on_the_process_hash_seed() -> None:
    code = (
        "from qinglang.jobs.stream import partition_of;"
        "print([partition_of(f'u{i}', 8) for i in range(200)])"
    )
    seen = set()
    for seed in ("1", "2", "random"):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        seen.add(proc.stdout)
    assert len(seen) == 1
    assert seen.pop().strip() == str([partition_of(f"u{i}", 8) for i in range(200)])


@given(st.integers(1, 64).flatmap(lambda p: st.tuples(st.just(p), st.integers(1, p))))
def test_every_partition_has_exactly_one_worker(pw: tuple[int, int]) -> None:
    partitions, workers = pw
    owners: dict[int, list[int]] = defaultdict(list)
    for w in range(workers):
        owned = partitions_for(w, workers, partitions)
        assert owned, "no worker is idle when workers <= partitions"
        for k in owned:
            owners[k].append(w)
    assert sorted(owners) == list(range(partitions))
    assert all(len(ws) == 1 for ws in owners.values())


@given(st.text(min_size=1, max_size=40), st.integers(1, 64), st.integers(1, 64))
def test_a_sender_goes_to_one_worker(actor: str, partitions: int, workers: int) -> None:
    workers = min(workers, partitions)
    k = partition_of(actor, partitions)
    assert 0 <= k < partitions
    holders = [w for w in range(workers) if k in partitions_for(w, workers, partitions)]
    assert len(holders) == 1


def test_partitions_for_refuses_bad_arguments() -> None:
    for args in ((2, 2, 8), (-1, 2, 8), (0, 9, 8), (0, 0, 8), (0, 1, 0)):
        with pytest.raises(ValueError):
            partitions_for(*args)


def test_names() -> None:
    assert subject_for("video", 3) == "qinglang.events.video.p3"
    assert subject_for("video", 3, "t1.events") == "t1.events.video.p3"
    assert consumer_name("video", 3) == "qinglang-video-p3"
    for bad in ("a.b", "a*", "a>", "", "a b"):
        with pytest.raises(ValueError):
            subject_for(bad, 0)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, "stream", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cases = [
        ("work", "--platform", "video", "--worker", "2", "--workers", "2"),
        ("work", "--platform", "a.b", "--worker", "0", "--workers", "1"),
        ("publish", str(tmp_path / "missing.jsonl"), "--platform", "video"),
        ("publish", str(tmp_path / "x.jsonl"), "--platform", "video", "--prefix", "a.>"),
    ]
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_events()[0]) + "\n", encoding="utf-8")
    cases.append(("publish", str(good), "--platform", "video", "--nats", "nats://127.0.0.1:9"))
    for args in cases:
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)


# ---------------------------------------------------------------- with the NATS server


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@dataclass
class Names:
    url: str
    stream: str
    prefix: str


@pytest.fixture
def nats_names() -> Iterator[Names]:
    """A reachable JetStream server and a fresh stream name and subject prefix (deleted after)."""

    async def probe() -> None:
        nc = await connect(NATS_URL, timeout=3)
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        _run(probe())
    except Exception as exc:
        reason = f"NATS JetStream not reachable at {NATS_URL}: {type(exc).__name__}: {exc}"
        if services_required():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:12]
    names = Names(NATS_URL, f"QLTEST_{tag}", f"qltest{tag}.events")
    try:
        yield names
    finally:

        async def drop() -> None:
            nc = await connect(NATS_URL)
            try:
                await nc.jetstream().delete_stream(names.stream)
            except Exception:
                pass
            finally:
                await nc.close()

        _run(drop())


def _seed(db_url: str) -> str:
    key = DataKey.generate()
    engine = make_engine(db_url, data_key=key)
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as s:
            repo.create_platform(s, "video", "Video")
    finally:
        engine.dispose()
    return key.to_b64()


def _events() -> list[dict[str, Any]]:
    out = []
    for n in range(SENDERS * PER_SENDER):
        sender = n % SENDERS
        out.append(
            {
                "id": f"e{n:05d}",
                "kind": "message",
                "at": (T0 + timedelta(seconds=n)).isoformat(),
                "actor": f"s{sender:02d}",
                "target": f"r{(sender + n) % 97:02d}",
                "text": f"你好 {n}",
            }
        )
    return out


def _invalid() -> list[dict[str, Any]]:
    return [
        {"id": f"bad{i}", "kind": "wink", "at": T0.isoformat(), "actor": f"s{i:02d}"}
        for i in range(5)
    ]


async def _consumers(names: Names) -> tuple[int, list[tuple[int, int]]]:

    nc = await connect(names.url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(names.stream)
        rows = []
        for k in range(P):
            try:
                ci = await js.consumer_info(names.stream, consumer_name("video", k))
            except Exception:
                rows.append((-1, -1))
                continue
            rows.append((ci.num_pending or 0, ci.num_ack_pending or 0))
        return int(info.state.messages), rows
    finally:
        await nc.close()


def _worker(
    names: Names, db_url: str, key: str, index: int, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "stream",
            "work",
            "--platform",
            "video",
            "--worker",
            str(index),
            "--workers",
            "2",
            "--partitions",
            str(P),
            "--nats",
            names.url,
            "--db",
            db_url,
            "--stream",
            names.stream,
            "--prefix",
            names.prefix,
            "--ack-wait",
            "2",
            "--log",
            str(log),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", "QINGLANG_DATA_KEY": key},
    )


def _records(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text("utf-8").splitlines() if line.strip()]


def _stored_count(log: Path) -> int:
    return sum(len(r.get("stored", [])) for r in _records(log))


def _wait(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.services
def test_two_workers_lose_nothing_and_store_nothing_twice_across_kill_and_restart(
    nats_names: Names, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = nats_names
    key = _seed(db_url)
    events = _events()
    bad = _invalid()

    async def publish() -> tuple[int, int]:

        nc = await connect(names.url)
        try:
            js = nc.jetstream()
            await ensure_stream(js, name=names.stream, prefix=names.prefix)
            await ensure_stream(js, name=names.stream, prefix=names.prefix)  # idempotent
            first = await publish_events(
                js, "video", events + bad, P, prefix=names.prefix, stream=names.stream
            )
            # A publisher retrying: the stream's de-duplication window drops the repeats.
            again = await publish_events(
                js, "video", events[:100], P, prefix=names.prefix, stream=names.stream
            )
            assert first.duplicates == 0
            return first.published, again.duplicates
        finally:
            await nc.close()

    published, repeated = _run(publish())
    assert published == len(events) + len(bad)
    assert repeated == 100
    messages, _ = _run(_consumers(names))
    assert messages == len(events) + len(bad)

    share = {
        w: sum(1 for e in events if partition_of(e["actor"], P) in partitions_for(w, 2, P))
        for w in (0, 1)
    }
    logs = {0: tmp_path / "w0.jsonl", 1: tmp_path / "w1.jsonl"}
    started = time.monotonic()
    # Worker 0 is slowed down and SIGKILLed mid-way; worker 1 dies after its third commit,
    # before acknowledging that batch (the window a crash can hit between commit and ack).
    w0 = _worker(names, db_url, key, 0, logs[0], "--batch", "25", "--pause", "0.05")
    w1 = _worker(names, db_url, key, 1, logs[1], "--batch", "25", "--crash-after", "3")
    procs = [w0, w1]
    try:
        _wait(lambda: _stored_count(logs[0]) >= 150, 60, "worker 0 to store 150 events")
        w0.send_signal(signal.SIGKILL)
        w0.wait(10)
        at_kill = _stored_count(logs[0])
        assert 150 <= at_kill < share[0], (at_kill, share[0])
        assert w1.wait(60) == 75, w1.stderr.read().decode() if w1.stderr else ""
        assert _stored_count(logs[1]) < share[1]
        # Mid-way: some batches were acknowledged (and left the work queue), not all.
        left, _ = _run(_consumers(names))
        assert 0 < left < len(events) + len(bad) - 50, left

        w0 = _worker(names, db_url, key, 0, logs[0], "--batch", "100")
        w1 = _worker(names, db_url, key, 1, logs[1], "--batch", "100")
        procs = [w0, w1]

        def drained() -> bool:
            messages, rows = _run(_consumers(names))
            return messages == 0 and all(r == (0, 0) for r in rows)

        _wait(drained, 90, "the stream to drain")
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(30) == 0, p.stderr.read().decode() if p.stderr else ""
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    elapsed = time.monotonic() - started

    # The database: every event exactly once, the invalid ones not at all.
    engine = make_engine(db_url, data_key=DataKey.from_b64(key))
    try:
        with transaction(session_factory(engine)) as s:
            total = s.scalar(select(func.count()).select_from(StoredEvent))
            distinct = s.scalar(select(func.count(func.distinct(StoredEvent.event_id))))
            ids = set(s.scalars(select(StoredEvent.event_id)))
            seqs = list(s.scalars(select(StoredEvent.seq).order_by(StoredEvent.seq)))
    finally:
        engine.dispose()
    assert total == distinct == len(events)
    assert ids == {e["id"] for e in events}
    assert seqs == list(range(1, len(events) + 1))

    # The workers' logs: who stored what.
    actor_of = {e["id"]: e["actor"] for e in events}
    stored_by: dict[str, list[int]] = defaultdict(list)
    handled_by: dict[str, set[int]] = defaultdict(set)
    duplicates = 0
    invalid: list[str] = []
    summaries = 0
    for w, log in logs.items():
        for r in _records(log):
            assert r["worker"] == w
            if "summary" in r:
                summaries += 1
                continue
            assert r["partition"] in partitions_for(w, 2, P)
            for i in r["stored"]:
                stored_by[i].append(w)
                handled_by[actor_of[i]].add(w)
            for i in r["duplicates"]:
                duplicates += 1
                handled_by[actor_of[i]].add(w)
            invalid.extend(r["invalid"])
    assert summaries == 2  # the two restarted workers stopped cleanly on SIGTERM
    # Logged as stored once at most (a kill between commit and log leaves one unlogged, and its
    # redelivery is then logged as a duplicate), and every event logged by someone.
    assert all(len(ws) == 1 for ws in stored_by.values())
    assert set(stored_by) <= set(actor_of)
    handled = set(stored_by)
    for r in _records(logs[0]) + _records(logs[1]):
        handled.update(r.get("duplicates", []))
    assert handled == set(actor_of)
    # The batch committed but not acknowledged by the crashing worker came back: a duplicate.
    assert duplicates >= 1
    # Each sender's events were handled by one worker only.
    assert len(handled_by) == SENDERS
    assert all(len(ws) == 1 for ws in handled_by.values()), {
        a: ws for a, ws in handled_by.items() if len(ws) > 1
    }
    # The invalid events were terminated (each at least once), never stored.
    assert {i.split(":", 1)[1] for i in invalid} == {b["id"] for b in bad}
    # The risk consumer, unchanged, feeds the stored events to the engine (one lease).
    monkeypatch.setenv("QINGLANG_DATA_KEY", key)
    from qinglang.api.service import Service, Settings
    from qinglang.risk.consumer import Consumer
    from qinglang.store.events import consumer_status

    service = Service(Settings(db_url=db_url))
    try:
        consumer = Consumer(service.sessions, service.write_sessions, service.policy_for)
        assert consumer.run_once().events == len(events)
        consumer.release()
        with service.tx() as s:
            video = repo.get_platform_by_slug(s, "video")
            assert video is not None
            assert consumer_status(s, video.id)["lag"] == 0
    finally:
        service.engine.dispose()
    print(f"stream scenario on {db_url.split(':')[0]}: {elapsed:.1f} s")


@pytest.mark.services
def test_cli_publish_reports_bad_lines_and_publishes_the_rest(
    nats_names: Names, tmp_path: Path
) -> None:
    source = tmp_path / "events.jsonl"
    good = _events()[:30]
    lines = [json.dumps(e, ensure_ascii=False) for e in good]
    lines.insert(3, "{not json")
    lines.insert(7, json.dumps({"id": "x", "kind": "wink", "at": T0.isoformat(), "actor": "a"}))
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ("--platform", "video", "--nats", nats_names.url, "--stream", nats_names.stream)
    proc = _cli("publish", str(source), *args, "--prefix", nats_names.prefix)
    assert proc.returncode == 2, proc.stderr
    assert "line 4: not valid JSON" in proc.stderr
    assert "line 8: kind:" in proc.stderr
    assert "30 events published" in proc.stderr
    messages, _ = _run(_consumers(nats_names))
    assert messages == 30
