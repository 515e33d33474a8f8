"""Load test of the HTTP API on loopback: decisions and event batches together, bounded in time,
on SQLite and on PostgreSQL in one run (issue 10).

For each backend the script starts `qinglang serve --workers N` on a free port of 127.0.0.1 (with
its background risk consumer, as in production), loads a world over HTTP (accounts,
relationships, flags: bench/bench_http.py's generator), then for `--seconds` keeps
`--connections` connections busy with a mix of decision requests (contact 40%, spending 20%,
playtime 20%, exposure batch 20%) and `POST /v1/events` batches of `--batch` message, follow and
impression events (`--event-share` of the requests, fresh ids throughout). An asyncio + httpx
loop records every request's latency by kind. It prints, per backend, decisions/s and events/s,
p50 / p95 / p99 / max latency per kind, non-2xx answers and socket errors; then how far the risk
consumer lagged behind intake when the load stopped.

The load generator shares the machine's cores with the server (2 here): its CPU is printed.
Exit status 0 when no request failed on any backend, 1 otherwise; speed is reported, not
enforced (the machine is shared).

    .venv/bin/python bench/bench_load.py                  # 20 s per backend
    .venv/bin/python bench/bench_load.py --seconds 5 --backends sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_http as bh

from qinglang.policy import load_policy

EVENTS_PATH = "/v1/events"


@dataclass
class Outcome:
    """One backend's run."""

    backend: str
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    sockets: Counter[str] = field(default_factory=Counter)
    events_accepted: int = 0
    first_error: str = ""
    loader_cpu: float = 0.0
    server_cpu: float = 0.0
    lag: int | None = None

    @property
    def decisions(self) -> int:
        """Decision requests answered."""
        return sum(len(v) for k, v in self.latencies.items() if k != "events")

    @property
    def failed(self) -> int:
        """Non-2xx answers and socket errors."""
        return sum(self.statuses.values()) + sum(self.sockets.values())


def event_batches(
    world: bh.World, rng: random.Random, batches: int, size: int, now: datetime
) -> list[dict[str, Any]]:
    """`batches` bodies of `size` events each, ids unique over the whole run."""
    names = [a.ext for a in world.accounts]
    items = world.items or [f"v{i}" for i in range(1000)]
    out = []
    n = 0
    for _ in range(batches):
        events = []
        for _ in range(size):
            n += 1
            actor, target = rng.sample(names, 2)
            at = (now - timedelta(seconds=rng.randrange(3600))).isoformat()
            kind = rng.choices(("message", "follow", "impression"), (0.6, 0.2, 0.2))[0]
            e: dict[str, Any] = {"id": f"load-{n}", "kind": kind, "at": at, "actor": actor}
            if kind == "message":
                e |= {"target": target, "text": rng.choice(("你好", "明天见", "hi", "作业呢"))}
            elif kind == "follow":
                e["target"] = target
            else:
                e |= {"item": str(rng.choice(items)), "owner": target, "surface": "recommended"}
            events.append(e)
        out.append({"events": events})
    return out


async def drive(
    base: str,
    key: str,
    decisions: list[tuple[str, bytes]],
    events: list[bytes],
    share: float,
    seconds: float,
    connections: int,
    out: Outcome,
) -> None:
    """Keep `connections` requests in flight for `seconds`; record latencies per kind."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    counter = iter(range(10**9))
    next_event = iter(range(10**9))

    async def worker(client: httpx.AsyncClient, k: int, deadline: float) -> None:
        rng = random.Random(k)
        while time.perf_counter() < deadline:
            i = next(counter)
            if rng.random() < share:
                j = next(next_event)
                kind, path, payload = "events", EVENTS_PATH, events[j % len(events)]
            else:
                kind, payload = decisions[i % len(decisions)]
                path = bh.PATHS[kind]
            t0 = time.perf_counter()
            try:
                r = await client.post(path, content=payload, headers=headers)
            except httpx.HTTPError as exc:
                out.sockets[type(exc).__name__] += 1
                continue
            out.latencies[kind].append(time.perf_counter() - t0)
            if not 200 <= r.status_code < 300:
                out.statuses[f"{kind} {r.status_code}"] += 1
                out.first_error = out.first_error or r.text[:300]
            elif kind == "events":
                out.events_accepted += int(r.json().get("accepted", 0))

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as client:
        t0 = time.perf_counter()
        deadline = t0 + seconds
        await asyncio.gather(*(worker(client, k, deadline) for k in range(connections)))
        out.seconds = time.perf_counter() - t0


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] * 1e3


def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> Outcome:
    """One backend: serve, load the world, drive the mix, read the consumer's lag."""
    policy = load_policy("cn")
    now = datetime.now(UTC)
    today = now.astimezone(policy.tz).date()
    rng = random.Random(args.seed)
    world = bh.make_world(args, rng, today)
    decisions = [
        (k, json.dumps(b, separators=(",", ":")).encode())
        for k, b in bh.make_bodies(world, rng, args.bodies, bh.MIX, now, policy.tz)
    ]
    events = [
        json.dumps(b, separators=(",", ":"), ensure_ascii=False).encode()
        for b in event_batches(world, rng, args.event_batches, args.batch, now)
    ]
    out = Outcome(backend)
    schema = None
    db_url = f"sqlite:///{tmp / f'{backend}.db'}"
    if backend == "postgresql":
        schema = f"qlload_{secrets.token_hex(6)}"
        bh._pg_exec(args.postgres, f'CREATE SCHEMA "{schema}"')
        db_url = str(
            make_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
        )
    try:
        admin = secrets.token_urlsafe(24)
        port = bh.free_port()
        base = f"http://{bh.HOST}:{port}"
        log = tmp / f"{backend}-server.log"
        with bh.server(db_url, port, args.workers, admin, log) as pid:
            bh.wait_healthy(base, pid, log)
            key, timings = bh.load_world(base, admin, world, args.sample_rate)
            print(f"[{backend}] loaded over HTTP: {timings}")
            pids = bh.process_tree(pid)
            cpu0, me0 = bh.cpu_seconds(pids), time.process_time()
            asyncio.run(
                drive(
                    base,
                    key,
                    decisions,
                    events,
                    args.event_share,
                    args.seconds,
                    args.connections,
                    out,
                )
            )
            cpu1, me1 = bh.cpu_seconds(pids), time.process_time()
            out.server_cpu, out.loader_cpu = sum(bh.cpu_delta(cpu0, cpu1)), me1 - me0
            status = httpx.get(
                f"{base}/v1/events/status", headers={"Authorization": f"Bearer {key}"}
            )
            if status.status_code == 200:
                body = status.json()
                out.lag = body.get("lag")
            if out.failed:
                print(bh.server_errors(log))
    finally:
        if schema is not None:
            bh._pg_exec(args.postgres, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return out


def report(results: list[Outcome]) -> None:
    """Print throughput and latency percentiles per backend and kind."""
    print()
    print(
        f"{'backend':<11} {'kind':<15} {'requests':>9} {'per s':>8} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    )
    for r in results:
        for kind in sorted(r.latencies):
            v = r.latencies[kind]
            print(
                f"{r.backend:<11} {kind:<15} {len(v):>9,} {len(v) / r.seconds:>8,.0f} "
                f"{_pct(v, 50):>7.2f} {_pct(v, 95):>7.2f} {_pct(v, 99):>7.2f} "
                f"{max(v) * 1e3 if v else float('nan'):>7.1f}"
            )
        print(
            f"{r.backend:<11} decisions/s {r.decisions / r.seconds:,.0f}; events/s "
            f"{r.events_accepted / r.seconds:,.0f} ({r.events_accepted:,} stored); failed "
            f"{r.failed} {dict(r.statuses) or ''}{dict(r.sockets) or ''}; server CPU "
            f"{r.server_cpu / r.seconds:.2f} cores, load generator {r.loader_cpu / r.seconds:.2f}; "
            f"risk consumer lag at the end {r.lag if r.lag is not None else '?'} events"
        )
        if r.first_error:
            print(f"{r.backend:<11} first error: {r.first_error}")


def main(argv: list[str] | None = None) -> int:
    """Run the load test on each backend and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument(
        "--postgres",
        default=os.environ.get(
            "QINGLANG_TEST_POSTGRES", "postgresql+psycopg://127.0.0.1:5432/test"
        ),
    )
    ap.add_argument("--accounts", type=int, default=2_000)
    ap.add_argument("--events", type=int, default=5_000, help="relationship events in the world")
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--flagged", type=int, default=500)
    ap.add_argument("--bodies", type=int, default=4_000, help="distinct decision bodies")
    ap.add_argument("--batch", type=int, default=100, help="events per POST /v1/events")
    ap.add_argument("--event-batches", type=int, default=2_000, help="distinct event batches")
    ap.add_argument(
        "--event-share", type=float, default=0.1, help="share of requests that post events"
    )
    ap.add_argument("--sample-rate", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=20261128)
    args = ap.parse_args(argv)
    if not 0 < args.seconds <= 600 or not 1 <= args.connections <= 256:
        ap.error("need 0 < --seconds <= 600 and 1 <= --connections <= 256")
    if not 0 <= args.event_share <= 1 or not 1 <= args.batch <= 10_000:
        ap.error("need 0 <= --event-share <= 1 and 1 <= --batch <= 10000")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(backends) <= {"sqlite", "postgresql"}:
        ap.error("--backends: sqlite and/or postgresql")
    load = os.getloadavg()
    print(
        f"qinglang load test: {os.cpu_count()} cores, load average {load[0]:.2f}; "
        f"{args.workers} workers, {args.connections} connections, {args.seconds:g} s per backend, "
        f"{args.event_share:.0%} of requests post {args.batch} events"
    )
    tmp = Path(tempfile.mkdtemp(prefix="qinglang-load-"))
    results = []
    try:
        for backend in backends:
            results.append(run_backend(backend, args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results)
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
