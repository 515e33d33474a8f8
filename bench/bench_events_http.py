"""Benchmark event intake over HTTP: events/s through POST /v1/events, and whether the risk
consumer keeps up.

One run, fixed seed. The script:

1. makes a temporary directory with an SQLite database and starts `qinglang serve` (one worker
   by default, `--workers N`) on a free port of 127.0.0.1 (never any other address), with a
   throwaway admin token; the server runs its background risk consumer, as in production;
2. registers a platform and loads, over HTTP, `--accounts` accounts (a quarter of them minors);
3. pre-generates `--events` message events (with a few grooming patterns among them, so the
   consumer raises alerts) in batches of `--batch` (1,000 to 10,000) and checks the contract on
   the first batch: every event accepted; re-posting it gives only duplicates;
4. posts the batches with `--connections` concurrent connections: `wrk` (a Lua script cycling
   through the pre-formatted bodies) when it is installed, else an asyncio + httpx loop; events/s
   is stored events over wall time, from the first request sent until the server has stored
   them all (the httpx loop counts the `accepted` of each answer; with wrk the script polls
   `GET /v1/events/status`, then interrupts wrk);
5. samples the consumer's lag (`GET /v1/events/status`) during intake, then polls until the
   consumer has processed everything (or `--drain` seconds passed) and reports the lag when
   intake ended, the time it took to catch up and its rate; then counts the alerts raised
   (`GET /v1/review/alerts`). With `--rate R` the python loader paces intake at R events/s,
   which shows whether the consumer keeps up with a sustained load (lag stays bounded);
6. prints a table and PASS/FAIL against the target: >= 5,000 events/s through the bulk endpoint.

The load generator shares the machine's cores with the server and the consumer thread: the CPU
time of each is printed. The server is always stopped (SIGTERM to its process group, then SIGKILL)
and the temporary directory removed.

Exit status: 0 when every correctness check passed and no request failed, 1 otherwise. A missed
throughput target is reported, not enforced (the machine is shared).

    .venv/bin/python bench/bench_events_http.py                  # 200,000 events, batches of 5,000
    .venv/bin/python bench/bench_events_http.py --events 50000   # quick run
    .venv/bin/python bench/bench_events_http.py --batch 1000 --loader python
    .venv/bin/python bench/bench_events_http.py --rate 5000   # paced: does the consumer keep up?
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from qinglang.store import DataKey

TARGET = 5_000.0  # events/s through the bulk endpoint
HOST = "127.0.0.1"  # loopback only, by design
TEXTS = (
    "今天作业好多啊",
    "周末一起打游戏吗",
    "哈哈哈这个视频太好笑了",
    "明天几点集合？",
    "see you tomorrow",
    "你看了那个新番吗",
    "老师说下周考试",
    "我妈不让我玩手机了",
)
GROOMING = (
    "你好呀，你几岁了？",
    "你在哪个学校上学？",
    "别告诉你爸妈，我们的秘密",
    "我给你买皮肤吧",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    args: argparse.Namespace, workdir: Path
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """Start `qinglang serve`; yield (base URL, admin token, process); always stop it."""
    port = _free_port()
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "QINGLANG_ADMIN_TOKEN": token,
        "QINGLANG_DATA_KEY": DataKey.generate().to_b64(),
    }
    db = f"sqlite:///{workdir / 'bench.db'}"
    cmd = [
        sys.executable, "-c", "from qinglang.cli import main; main()", "serve",
        "--host", HOST, "--port", str(port), "--db", db, "--workers", str(args.workers),
    ]  # fmt: skip
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(workdir / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start in 60 s")
        yield base, token, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids.append(int(line))
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class World:
    minors: list[str]
    adults: list[str]


def setup(client: httpx.Client, args: argparse.Namespace, rng: random.Random) -> World:
    """Accounts: a quarter minors (8 to 17), the rest adults; loaded over HTTP."""
    today = date.today()
    minors, adults = [], []
    for i in range(args.accounts):
        name = f"u{i:05d}"
        minor = i % 4 == 0
        age = rng.randint(8, 17) if minor else rng.randint(18, 60)
        birth = today - timedelta(days=int(365.25 * age) + rng.randint(10, 300))
        r = client.put(
            f"/v1/accounts/{name}", json={"birth_date": birth.isoformat(), "age_source": "verified"}
        )
        r.raise_for_status()
        (minors if r.json()["is_minor"] else adults).append(name)
    return World(minors, adults)


def make_batches(args: argparse.Namespace, world: World, rng: random.Random) -> list[bytes]:
    """Message events in batches (pre-serialised request bodies). Everyone chats within a small
    circle of their own age group; `--groomers` adults also message random minors with grooming
    cues, which the consumer should flag."""
    circles: dict[str, list[str]] = {}
    for group in (world.minors, world.adults):
        for name in group:
            circles[name] = rng.sample([x for x in group if x != name], min(6, len(group) - 1))
    everyone = world.minors + world.adults
    t = datetime.now(UTC) - timedelta(hours=2)
    n = 0
    bodies: list[bytes] = []
    groomers = rng.sample(world.adults, min(args.groomers, len(world.adults)))
    while n < args.events:
        events: list[dict[str, Any]] = []
        for _ in range(min(args.batch, args.events - n)):
            t += timedelta(milliseconds=20)
            if groomers and rng.random() < 0.002:
                sender, recipient = rng.choice(groomers), rng.choice(world.minors)
                text = rng.choice(GROOMING)
            else:
                sender = rng.choice(everyone)
                recipient = rng.choice(circles[sender])
                text = rng.choice(TEXTS)
            events.append(
                {
                    "id": f"m{n}",
                    "kind": "message",
                    "at": t.isoformat(),
                    "actor": sender,
                    "target": recipient,
                    "text": text,
                }
            )
            n += 1
        bodies.append(json.dumps({"events": events}, ensure_ascii=False).encode())
    return bodies


async def post_httpx(
    base: str, key: str, bodies: list[bytes], connections: int, rate: float, lags: list[int]
) -> tuple[int, int, float]:
    """Post every body with `connections` concurrent clients, at most `rate` events/s when
    given (0: as fast as possible), sampling the consumer's lag into `lags` every half second;
    returns (accepted, failed requests, seconds)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    accepted = failed = sent = 0
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    per_body = len(json.loads(bodies[0])["events"]) if bodies else 0
    done = asyncio.Event()

    async def worker(client: httpx.AsyncClient, start: float) -> None:
        nonlocal accepted, failed, sent
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if rate > 0:  # pace: the n-th body goes out no earlier than n * per_body / rate
                await asyncio.sleep(max(0.0, start + sent * per_body / rate - time.perf_counter()))
            sent += 1
            r = await client.post("/v1/events", content=body, headers=headers)
            if r.status_code == 200:
                accepted += int(r.json()["accepted"])
            else:
                failed += 1

    async def monitor(client: httpx.AsyncClient) -> None:
        while not done.is_set():
            lags.append(int((await client.get("/v1/events/status", headers=headers)).json()["lag"]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.5)

    limits = httpx.Limits(max_connections=connections + 1)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        start = time.perf_counter()
        watch = asyncio.create_task(monitor(client))
        await asyncio.gather(*(worker(client, start) for _ in range(connections)))
        seconds = time.perf_counter() - start
        done.set()
        await watch
        return accepted, failed, seconds


WRK_LUA = """
local bodies = {}
local n = 0
local sent = 0
function init(args)
  local i = 1
  while true do
    local f = io.open(args[1] .. "/body" .. i .. ".json", "rb")
    if f == nil then break end
    bodies[i] = f:read("*a")
    f:close()
    i = i + 1
  end
  n = #bodies
end
request = function()
  sent = (sent % n) + 1
  return wrk.format("POST", "/v1/events", nil, bodies[sent])
end
"""


def post_wrk(
    client: httpx.Client,
    bodies: list[bytes],
    connections: int,
    workdir: Path,
    timeout: float,
    lags: list[int],
) -> tuple[int, int, float]:
    """Post the bodies with wrk (one thread, `connections` connections, cycling through them);
    the intake time is measured here, from the start until the server has stored every event
    (polled), and wrk is then interrupted. Requests that wrap around repeat a body and come back
    as duplicates. Returns (events stored, non-2xx answers, seconds)."""
    for i, b in enumerate(bodies, 1):
        (workdir / f"body{i}.json").write_bytes(b)
    expected = sum(len(json.loads(b)["events"]) for b in bodies)
    script = workdir / "events.lua"
    script.write_text(WRK_LUA)
    key = client.headers["Authorization"].removeprefix("Bearer ")
    stored0 = client.get("/v1/events/status").json()["stored"]
    cmd = [
        "wrk", "-t1", f"-c{connections}", f"-d{int(timeout)}s", "--timeout", "120s",
        "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json",
        "-s", str(script), str(client.base_url).rstrip("/"), "--", str(workdir),
    ]  # fmt: skip
    start = time.perf_counter()
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stored = 0
    try:
        while time.perf_counter() - start < timeout and wrk.poll() is None:
            status = client.get("/v1/events/status").json()
            stored = status["stored"] - stored0
            lags.append(int(status["lag"]))
            if stored >= expected:
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
    finally:
        if wrk.poll() is None:
            wrk.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
        try:
            out, _ = wrk.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            wrk.kill()
            out, _ = wrk.communicate()
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out or "")
    failed = int(bad.group(1)) if bad else 0
    if stored < expected:
        failed = max(failed, 1)
    return stored, failed, seconds


def _median(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--batch", type=int, default=5_000, help="events per request (1,000-10,000)"
    )
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--groomers", type=int, default=5)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--drain", type=float, default=300.0, help="seconds to wait for the consumer"
    )
    parser.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for intake")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="pace intake at this many events/s (python loader)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not 1_000 <= args.batch <= 10_000:
        parser.error("--batch must be 1,000 to 10,000")
    if args.rate > 0 and args.loader == "wrk":
        parser.error("--rate paces the python loader only")
    rng = random.Random(args.seed)
    loader = args.loader
    if loader == "auto":
        loader = "wrk" if shutil.which("wrk") and args.rate <= 0 else "python"
    ok = True
    workdir = Path(tempfile.mkdtemp(prefix="ql-bench-events-"))
    try:
        with server(args, workdir) as (base, token, proc):
            admin = {"Authorization": f"Bearer {token}"}
            r = httpx.post(
                f"{base}/v1/platforms", json={"slug": "bench", "name": "Bench"}, headers=admin
            )
            r.raise_for_status()
            key = r.json()["api_key"]
            client = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
            )
            world = setup(client, args, rng)
            bodies = make_batches(args, world, rng)
            # Contract check on the first batch, then it is part of the load like the others.
            first = client.post(
                "/v1/events", content=bodies[0], headers={"Content-Type": "application/json"}
            ).json()
            n0 = len(json.loads(bodies[0])["events"])
            again = client.post(
                "/v1/events", content=bodies[0], headers={"Content-Type": "application/json"}
            ).json()
            contract = (
                first["accepted"] == n0 and len(again["duplicates"]) == n0 and not again["rejected"]
            )
            ok &= contract
            print(f"load average before the run: {os.getloadavg()[0]:.2f}; loader: {loader}")
            cpu0 = _cpu_seconds(proc.pid)
            own0 = time.process_time()
            lags: list[int] = []
            if loader == "wrk":
                accepted, failed, seconds = post_wrk(
                    client, bodies[1:], args.connections, workdir, args.timeout, lags
                )
            else:
                accepted, failed, seconds = asyncio.run(
                    post_httpx(base, key, bodies[1:], args.connections, args.rate, lags)
                )
            intake_cpu = _cpu_seconds(proc.pid) - cpu0
            loader_cpu = time.process_time() - own0
            ok &= failed == 0
            rate = accepted / seconds if seconds else 0.0
            status = client.get("/v1/events/status").json()
            lag_at_end = status["lag"]
            processed_at_end = status["processed"]
            t0 = time.perf_counter()
            while status["lag"] > 0 and time.perf_counter() - t0 < args.drain:
                time.sleep(0.5)
                status = client.get("/v1/events/status").json()
            drain_s = time.perf_counter() - t0
            caught_up = status["lag"] == 0
            total_s = seconds + drain_s
            consumer_rate = status["processed"] / total_s if total_s else 0.0
            alerts = client.get("/v1/review/alerts").json()["total"]
            server_cpu = _cpu_seconds(proc.pid) - cpu0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        (
            "events posted (after the contract batch)",
            f"{accepted:,} in {len(bodies) - 1} requests of {args.batch:,}",
        ),
        ("wall time of intake", f"{seconds:.2f} s"),
        ("events/s through POST /v1/events", f"{rate:,.0f}"),
        ("failed requests", str(failed)),
        ("consumer processed when intake ended", f"{processed_at_end:,} (lag {lag_at_end:,})"),
        ("consumer lag during intake (median / max)", f"{_median(lags):,} / {max(lags or [0]):,}"),
        ("consumer caught up", f"{'yes' if caught_up else 'NO'} after {drain_s:.1f} s more"),
        ("consumer events/s (processed / (intake + drain))", f"{consumer_rate:,.0f}"),
        ("alerts raised", str(alerts)),
        ("server CPU s (intake phase / whole run)", f"{intake_cpu:.1f} / {server_cpu:.1f}"),
        ("load generator CPU s", f"{loader_cpu:.1f}"),
        ("contract check (first batch, re-post)", "ok" if contract else "FAILED"),
    ]
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    verdict = "PASS" if rate >= TARGET else "FAIL"
    print(f"{verdict}: {rate:,.0f} events/s against a target of {TARGET:,.0f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
