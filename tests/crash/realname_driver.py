"""The real-name outbox across a client crash: queue reports, upload, SIGKILL, restart, check.

One run (:func:`run`):

1. starts the emulator of the national real-name system on a free port of 127.0.0.1, with one
   verified identity, and a database (SQLite file or a PostgreSQL URL) with a platform whose
   real-name access points at it;
2. opens and closes ``reports / 2`` game sessions of that player through the store, which queues
   ``reports`` login/logout reports in the outbox (each in the transaction of its session);
3. runs ``qinglang realname flush`` as a separate process and SIGKILLs it once the emulator has
   accepted ``kill_after`` reports (mid-upload), then runs it again until it exits (it waits for
   the dead process's lease to expire);
4. checks (:class:`Result`): every queued report reached the emulator; duplicates are at most
   the batch in flight at the kill; every request carried at most 128 items; no sliding second
   saw more loginout requests than the endpoint's QPS (10); the emulator answered no 1006; the
   outbox is empty.

Nothing here depends on pytest: ``tests/crash/test_realname_crash.py`` and
``bench/bench_realname.py`` both use it. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from qinglang.realname.emulator import (
    AcceptedItem,
    EmulatorConfig,
    Identity,
    Registry,
    RunningEmulator,
)
from qinglang.realname.protocol import load_protocol

APP_ID = "c" * 32
BIZ_ID = "1101999999"
SECRET = "2836e95fcd10e04b0069bb1ee659955b"
SLUG = "outbox"
NUMBER = "110101201003070011"
"""A verified player of 16 (born 2010-03-07; checksum-valid)."""


@dataclass
class Result:
    """What a run saw, and the checks on it."""

    queued: int
    received: int
    distinct: int
    duplicates: int
    requests: int
    largest_batch: int
    max_per_second: int
    busy_errors: int
    other_errors: dict[str, int]
    waiting_after: int
    killed_after: int
    seconds: float
    upload_seconds: float
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return dict(self.__dict__)


def _batches(items: list[AcceptedItem]) -> list[list[AcceptedItem]]:
    """Accepted items grouped per request (numbering restarts at 1 in every request)."""
    out: list[list[AcceptedItem]] = []
    for it in items:
        if it.no == 1 or not out:
            out.append([])
        out[-1].append(it)
    return out


def _max_per_second(arrivals: list[int]) -> int:
    """The most requests inside any window of 1,000 ms (arrival times in ms, sorted)."""
    best, lo = 0, 0
    for hi, t in enumerate(arrivals):
        while arrivals[lo] <= t - 1000:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _flush(db_url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "qinglang.cli", "realname", "flush", "--platform", SLUG]
    return subprocess.Popen(
        [*cmd, "--db", db_url, "--wait", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _prepare(db_url: str, reports: int, pi: str, url: str) -> None:
    from qinglang.api.service import Service, Settings
    from qinglang.store import realname as store
    from qinglang.store import repo

    service = Service(Settings(db_url=db_url))
    try:
        with service.tx(write=True) as s:
            p = repo.create_platform(s, SLUG, "Outbox")
            store.configure(s, p.id, base_url=url, app_id=APP_ID, biz_id=BIZ_ID, secret=SECRET)
            acc = repo.upsert_account(s, p.id, "player", birth_date=date(2010, 3, 7))
            start = datetime.now(UTC) - timedelta(days=1)
            for i in range(reports // 2):
                at = start + timedelta(seconds=i)
                gs = store.start_session(s, acc, at, pi=pi, di=None)
                store.end_session(s, gs, at + timedelta(milliseconds=500), pi=pi)
    finally:
        service.engine.dispose()


def _waiting(db_url: str) -> int:
    from qinglang.api.service import Service, Settings
    from qinglang.store import realname as store
    from qinglang.store import repo

    service = Service(Settings(db_url=db_url))
    try:
        with service.tx() as s:
            p = repo.get_platform_by_slug(s, SLUG)
            assert p is not None
            return store.outbox_counts(s, p.id)["waiting"]
    finally:
        service.engine.dispose()


def run(
    db_url: str, *, reports: int = 10_000, kill_after: int = 3_000, timeout: float = 300
) -> Result:
    """One run as described in the module docstring (QINGLANG_DATA_KEY must be set)."""
    started = time.monotonic()
    registry = Registry([Identity("测试", NUMBER, "ok")])
    config = EmulatorConfig(APP_ID, BIZ_ID, SECRET, registry)
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), env.get("PYTHONPATH", "")])
    with RunningEmulator(config) as running:
        emu = running.emulator
        pi = emu.pi_for(NUMBER)
        _prepare(db_url, reports, pi, running.url)
        upload_started = time.monotonic()
        first = _flush(db_url, env)
        deadline = time.monotonic() + timeout
        while len(emu.accepted) < kill_after and first.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        killed_after = len(emu.accepted)
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        second = _flush(db_url, env)
        try:
            _, err = second.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
            _, err = second.communicate()
        upload_seconds = time.monotonic() - upload_started
        items = emu.accepted
        errors = emu.error_counts()
    batches = _batches(items)
    arrivals = sorted(b[0].arrived_ms for b in batches)
    keys = Counter(it.key for it in items)
    limit = load_protocol().endpoints["loginout"].qps
    result = Result(
        queued=reports,
        received=len(items),
        distinct=len(keys),
        duplicates=len(items) - len(keys),
        requests=len(batches),
        largest_batch=max((len(b) for b in batches), default=0),
        max_per_second=_max_per_second(arrivals),
        busy_errors=errors.get("SYS REQ BUSY ERROR", 0),
        other_errors={k: v for k, v in errors.items() if k != "SYS REQ BUSY ERROR"},
        waiting_after=_waiting(db_url),
        killed_after=killed_after,
        seconds=time.monotonic() - started,
        upload_seconds=upload_seconds,
    )
    if second.returncode != 0:
        result.problems.append(f"restarted flush exited {second.returncode}: {err.decode()[-500:]}")
    if result.distinct != reports:
        result.problems.append(f"{reports - result.distinct} reports never arrived")
    if result.duplicates > load_protocol().max_batch:
        result.problems.append(f"{result.duplicates} duplicates: more than one batch in flight")
    if result.largest_batch > load_protocol().max_batch:
        result.problems.append(f"a request carried {result.largest_batch} items")
    if result.max_per_second > limit:
        result.problems.append(f"{result.max_per_second} loginout requests in one second")
    if result.busy_errors:
        result.problems.append(f"the emulator answered 1006 {result.busy_errors} times")
    if result.waiting_after:
        result.problems.append(f"{result.waiting_after} reports still waiting")
    if not 0 < killed_after < reports:
        result.problems.append(f"the kill came at {killed_after} of {reports}: not mid-upload")
    return result
