"""Crash safety of event intake: clients post batches while the server is SIGKILLed twice.

Every batch is stored whole or not at all, every acknowledged batch is stored, a retry after a
lost answer stores nothing twice, and sequence numbers have no gap — on SQLite (one worker) and
PostgreSQL (two workers). Uses the server harness of tests/crash.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from qinglang.store import make_engine, session_factory, transaction
from qinglang.store.crypto import DataKey
from qinglang.store.models import EventHead, StoredEvent
from tests.crash.crash_driver import ADMIN, Server, free_port, server_env

CLIENTS = 3
BATCH = 2_000
KILL_AT = (2.0, 5.0)
LOAD_SECONDS = 8.0
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def batch(client: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{client}-b{n}-{i}",
            "kind": "message",
            "at": (T0 + timedelta(seconds=i)).isoformat(),
            "actor": f"u{client}",
            "target": f"u{(client + i) % 50 + 10}",
            "text": f"消息 {n}/{i}",
        }
        for i in range(BATCH)
    ]


async def writer(
    base: str, key: str, client: int, stop_at: float, acked: dict[str, int], sent: set[str]
) -> None:
    """Post batches; on an error or a 5xx, retry the same batch until it is answered."""
    n = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while time.monotonic() < stop_at:
            events = batch(client, n)
            name = f"c{client}-b{n}"
            sent.add(name)
            while True:
                try:
                    r = await http.post(
                        "/v1/events",
                        json={"events": events},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
                    continue
                if r.status_code >= 500:
                    await asyncio.sleep(0.2)
                    continue
                assert r.status_code == 200, r.text
                body = r.json()
                assert not body["rejected"]
                acked[name] = body["accepted"] + len(body["duplicates"])
                break
            n += 1


async def killer(server: Server) -> None:
    start = time.monotonic()
    for at in KILL_AT:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        server.kill()
        await asyncio.sleep(0.3)
        server.start()
        await server.wait_healthy()


def test_batches_survive_server_kills_whole_or_not_at_all(db_url: str, tmp_path: Path) -> None:
    postgres = make_url(db_url).get_backend_name() == "postgresql"
    key_b64 = DataKey.generate().to_b64()
    server = Server(
        db_url, free_port(), 2 if postgres else 1, tmp_path, server_env(db_url, key_b64)
    )
    acked: dict[str, int] = {}
    sent: set[str] = set()
    try:
        server.start()
        asyncio.run(server.wait_healthy())
        r = httpx.post(
            server.base + "/v1/platforms",
            json={"slug": "crash", "name": "Crash"},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]

        async def load() -> None:
            stop_at = time.monotonic() + LOAD_SECONDS
            await asyncio.gather(
                killer(server),
                *(writer(server.base, key, c, stop_at, acked, sent) for c in range(CLIENTS)),
            )

        asyncio.run(load())
    finally:
        server.stop()
    assert server.starts == 1 + len(KILL_AT)
    engine = make_engine(db_url, data_key=DataKey.from_b64(key_b64))
    try:
        with transaction(session_factory(engine)) as s:
            ids = list(s.scalars(select(StoredEvent.event_id)))
            seqs = sorted(s.scalars(select(StoredEvent.seq)))
            head = s.scalar(select(EventHead.seq))
            total = s.scalar(select(func.count()).select_from(StoredEvent))
    finally:
        engine.dispose()
    per_batch: dict[str, int] = {}
    for event_id in ids:
        name = event_id.rsplit("-", 1)[0]
        per_batch[name] = per_batch.get(name, 0) + 1
    assert acked, "no batch was acknowledged"
    assert all(n == BATCH for n in per_batch.values()), "a batch was half-written"
    assert all(per_batch.get(name) == BATCH for name in acked), "an acknowledged batch was lost"
    assert set(per_batch) <= sent
    assert all(n == BATCH for n in acked.values())
    assert len(ids) == len(set(ids)) == total
    assert seqs == list(range(1, len(seqs) + 1)) and head == len(seqs), "sequence gap"
    print(f"{len(acked)} batches acknowledged of {len(sent)} sent, {total:,} events stored")
