"""Benchmark the HTTP API over loopback: decision requests per second and latency percentiles.

One run, fixed seed. The script:

1. makes a temporary directory with an SQLite database and starts `qinglang serve --workers N`
   on a free port of 127.0.0.1 (never any other address), with a throwaway admin token;
2. registers a platform over HTTP and loads, over HTTP, accounts aged 6..60 (mostly verified
   birth dates, a few with no age facts), ~5,000 relationship events (mutual and one-way follows,
   blocks, guardian-approved contacts) and flags on part of a content catalogue;
3. checks a sample of requests against qinglang's own guard functions run in this process
   (same pack, same profiles, relations from the generated graph): every answer must be 200 and
   the same decision, and a stranger adult -> child DM must be "deny";
4. warms both workers up, then drives load for `--seconds` with `--connections` open
   connections: phase "contact" posts pre-generated bodies to /v1/decide/contact only; phase
   "mix" cycles through contact (40%), spending (20%), playtime (20%) and exposure/batch (20%,
   20 candidates each). The load generator is `wrk` (Lua script cycling through the
   pre-formatted requests; percentiles from wrk's latency histogram) when it is installed, else
   an asyncio + httpx loop with fixed concurrency that records every latency;
5. prints a table (requests/s, p50, p99, max, non-2xx and socket errors, CPU used by the server
   and by the load generator) and PASS/FAIL against the targets: >= 1,500 requests/s with two
   workers and p99 < 25 ms.

The load generator shares the machine's cores with the server: with two cores, every CPU second
the generator spends is one the workers don't get. The load average before the run and the CPU
split are printed for that reason. The server is always stopped (SIGTERM to its process group,
then SIGKILL) and the temporary directory removed.

Exit status: 0 when every correctness check passed and no request failed, 1 otherwise. Missed
timing targets are reported, not enforced (the machine is shared).

    .venv/bin/python bench/bench_http.py                    # 20 s per phase, 8 connections
    .venv/bin/python bench/bench_http.py --seconds 5        # quick run
    .venv/bin/python bench/bench_http.py --loader python    # force the httpx generator
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
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from qinglang.guard import (
    ConsentView,
    ExposureIndex,
    ItemFlags,
    Profile,
    Relation,
    Viewer,
    audience_level,
    build_profile,
    contact_decision,
    filter_candidates,
    playtime_decision,
    spending_decision,
)
from qinglang.policy import Policy, load_policy
from qinglang.store import DataKey

DATA_KEY = DataKey.generate().to_b64()
"""Encryption key for the benchmark's database (PostgreSQL needs one given; SQLite too, here)."""

RPS_TARGET = 1_500.0  # decision requests/s with two workers
P99_TARGET_MS = 25.0
HOST = "127.0.0.1"  # loopback only, by design

ACTIONS = ("follow", "dm", "comment", "mention", "friend_request", "gift")
SPEND_PURPOSES = ("purchase", "top_up", "gift", "tip", "fan_funding", "vote_ranking")
SURFACES = ("recommend", "search", "trending", "profile")
AUDIENCES = ("owner", "friends", "followers", "public")
MIX = (("contact", 0.4), ("spending", 0.2), ("playtime", 0.2), ("exposure_batch", 0.2))
PATHS = {
    "contact": "/v1/decide/contact",
    "spending": "/v1/decide/spending",
    "playtime": "/v1/decide/playtime",
    "exposure_batch": "/v1/decide/exposure/batch",
}


# ----------------------------------------------------------------------------- world


NO_CONSENTS = ConsentView(version=0)


@dataclass
class Account:
    ext: str
    birth_date: date | None
    age_source: str | None


@dataclass
class World:
    """Everything loaded into the server, kept here to compute the expected answers."""

    accounts: list[Account]
    follows: set[tuple[str, str]] = field(default_factory=set)
    blocks: set[tuple[str, str]] = field(default_factory=set)
    approvals: set[tuple[str, str]] = field(default_factory=set)  # (child, approved contact)
    events: list[dict[str, str]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)

    def relation(self, sender: str, recipient: str) -> Relation:
        """Relation of sender to recipient, as the API derives it from the stored edges."""
        return Relation(
            mutual=(sender, recipient) in self.follows and (recipient, sender) in self.follows,
            approved_contact=(recipient, sender) in self.approvals,
            blocked=(sender, recipient) in self.blocks or (recipient, sender) in self.blocks,
        )


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return date(d.year - years, 3, 1)


def make_world(args: argparse.Namespace, rng: random.Random, today: date) -> World:
    """Accounts aged 6..60, a relationship graph and content flags (deterministic for a seed)."""
    accounts: list[Account] = []
    for i in range(args.accounts):
        ext = f"u{i:05d}"
        roll = rng.random()
        if roll < 0.02:
            accounts.append(Account(ext, None, None))
            continue
        age = rng.randint(6, 60)
        # A birth date that makes the account `age` today, avoiding today's birthday.
        oldest = _years_before(today, age + 1) + timedelta(days=2)
        birth = oldest + timedelta(days=rng.randint(0, 360))
        source = (
            "verified" if roll < 0.82 else "guardian_declared" if roll < 0.92 else "self_declared"
        )
        accounts.append(Account(ext, birth, source))
    world = World(accounts)
    ids = [a.ext for a in accounts]
    ages = {a.ext: _age(a.birth_date, today) for a in accounts}
    children = [x for x in ids if ages[x] is not None and ages[x] < 14]
    adults = [x for x in ids if ages[x] is not None and ages[x] >= 18]

    def pair(pool_a: Sequence[str], pool_b: Sequence[str]) -> tuple[str, str]:
        while True:
            a, b = rng.choice(pool_a), rng.choice(pool_b)
            if a != b:
                return a, b

    target = args.events
    seen: set[tuple[str, str, str]] = set()

    def add(kind: str, src: str, dst: str) -> None:
        if (kind, src, dst) in seen:
            return
        seen.add((kind, src, dst))
        world.events.append({"type": kind, "src": src, "dst": dst})
        edges = {"follow": world.follows, "block": world.blocks, "approve_contact": world.approvals}
        edges[kind].add((src, dst))

    while len(world.events) < target * 0.60:  # mutual follows (friends)
        a, b = pair(ids, ids)
        add("follow", a, b)
        add("follow", b, a)
    while len(world.events) < target * 0.80:  # one-way follows
        add("follow", *pair(ids, ids))
    while len(world.events) < target * 0.90:  # blocks
        add("block", *pair(ids, ids))
    while len(world.events) < target:  # a child's guardian approved an adult contact
        add("approve_contact", *pair(children, adults))

    world.items = [f"i{i:06d}" for i in range(args.items)]
    for item in rng.sample(world.items, min(args.flagged, len(world.items))):
        owner = rng.choice(ids)
        roll = rng.random()
        if roll < 0.4:
            flag: dict[str, Any] = {"item": item, "owner": owner, "kind": "unsuitable_for_minors"}
            if rng.random() < 0.5:
                flag["min_age"] = rng.choice((12, 14, 16))
        elif roll < 0.7:
            flag = {"item": item, "owner": owner, "kind": rng.choice(("minor_pi", "shows_minor"))}
            if rng.random() < 0.7:
                flag["audience"] = rng.choice(AUDIENCES)
        else:
            flag = {"item": item, "owner": owner, "kind": "commercial"}
        world.flags.append(flag)
    return world


def _age(birth: date | None, today: date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def account_body(a: Account) -> dict[str, Any]:
    if a.birth_date is None:
        return {}
    return {"birth_date": a.birth_date.isoformat(), "age_source": a.age_source}


# ----------------------------------------------------------------------------- request bodies


def contact_body(world: World, rng: random.Random) -> dict[str, Any]:
    """Half over an existing edge (either direction), half between random accounts."""
    if rng.random() < 0.5 and world.events:
        e = rng.choice(world.events)
        a, b = (e["src"], e["dst"]) if rng.random() < 0.5 else (e["dst"], e["src"])
    else:
        a, b = (x.ext for x in rng.sample(world.accounts, 2))
    return {"action": rng.choice(ACTIONS), "sender": a, "recipient": b}


def spending_body(world: World, rng: random.Random) -> dict[str, Any]:
    return {
        "account": rng.choice(world.accounts).ext,
        "amount_fen": rng.choice((100, 500, 1_000, 5_000, 10_000, 20_000, 50_000)),
        "today_total_fen": rng.choice((0, 0, 1_000, 5_000, 20_000)),
        "month_total_fen": rng.choice((0, 0, 10_000, 20_000, 40_000)),
        "purpose": rng.choice(SPEND_PURPOSES),
    }


def playtime_body(world: World, rng: random.Random, now: datetime, tz: tzinfo) -> dict[str, Any]:
    """An explicit instant within the last 36 hours (Beijing time), so answers are reproducible."""
    at = (now - timedelta(minutes=rng.randint(0, 36 * 60))).replace(second=0, microsecond=0)
    return {
        "account": rng.choice(world.accounts).ext,
        "kind": rng.choice(("game", "general")),
        "at": at.astimezone(tz).isoformat(),
        "minutes_used_today": rng.choice((0, 0, 30, 60, 90, 120, 200)),
    }


def exposure_body(world: World, rng: random.Random) -> dict[str, Any]:
    """20 candidates: 15 from the whole catalogue, 5 from its flagged part, shuffled."""
    flagged = [f["item"] for f in world.flags] or world.items
    cands = list(dict.fromkeys(rng.sample(world.items, 15) + rng.sample(flagged, 5)))
    rng.shuffle(cands)
    return {
        "viewer": rng.choice(world.accounts).ext,
        "surface": rng.choice(SURFACES),
        "candidates": cands,
    }


def make_bodies(
    world: World,
    rng: random.Random,
    n: int,
    kinds: Sequence[tuple[str, float]],
    now: datetime,
    tz: tzinfo,
) -> list[tuple[str, dict[str, Any]]]:
    names = [k for k, _ in kinds]
    weights = [w for _, w in kinds]
    out: list[tuple[str, dict[str, Any]]] = []
    for _ in range(n):
        kind = rng.choices(names, weights)[0]
        if kind == "contact":
            body = contact_body(world, rng)
        elif kind == "spending":
            body = spending_body(world, rng)
        elif kind == "playtime":
            body = playtime_body(world, rng, now, tz)
        else:
            body = exposure_body(world, rng)
        out.append((kind, body))
    return out


# ----------------------------------------------------------------------------- expected answers


class Reference:
    """The answers the API should give, computed in-process with qinglang.guard."""

    def __init__(self, policy: Policy, world: World) -> None:
        self.policy = policy
        self.world = world
        self.by_id = {a.ext: a for a in world.accounts}
        self.index = ExposureIndex(policy)
        minor_age = int(policy.require("age.minor_below").value)  # type: ignore[arg-type]
        now = datetime.now(UTC)
        for f in world.flags:
            if f["kind"] in ("minor_pi", "shows_minor"):
                item_level = audience_level(f["audience"]) if "audience" in f else None
                level, push = ExposureIndex.consented_levels(
                    self.profile(f["owner"], now), item_level
                )
                flags = ItemFlags(f["owner"], minor_pi_audience=level, push_audience=push)
            elif f["kind"] == "unsuitable_for_minors":
                flags = ItemFlags(f["owner"], unsuitable_below=f.get("min_age", minor_age))
            else:
                flags = ItemFlags(f["owner"], commercial=True)
            self.index.put(f["item"], flags)

    def profile(self, ext: str, at: datetime) -> Profile:
        a = self.by_id[ext]
        # The API keeps consent records; this world records none (a tracked, empty snapshot).
        return build_profile(self.policy, ext, a.birth_date, a.age_source, at, consents=NO_CONSENTS)

    def answer(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        if kind == "contact":
            d = contact_decision(
                body["action"],
                self.profile(body["sender"], now),
                self.profile(body["recipient"], now),
                self.world.relation(body["sender"], body["recipient"]),
            )
        elif kind == "spending":
            d = spending_decision(
                self.profile(body["account"], now),
                body["amount_fen"],
                body["today_total_fen"],
                body["month_total_fen"],
                body["purpose"],
            )
        elif kind == "playtime":
            at = datetime.fromisoformat(body["at"])
            d = playtime_decision(
                self.profile(body["account"], at), body["kind"], at, body["minutes_used_today"]
            )
        else:
            return self.exposure(body, now)
        return json.loads(json.dumps(d.to_dict(), default=str))

    def exposure(self, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        viewer = body["viewer"]
        follows = self.world.follows
        friends, following = set(), set()
        for c in body["candidates"]:
            flags = self.index.flags.get(c)
            if flags is None or flags.owner_id == viewer:
                continue
            owner = flags.owner_id
            if (viewer, owner) in follows and (owner, viewer) in follows:
                friends.add(owner)
            elif (viewer, owner) in follows:
                following.add(owner)
        v = Viewer(self.profile(viewer, now), friends, following)
        kept = filter_candidates(v, body["candidates"], self.index, body["surface"])
        return {"allowed": kept, "removed": len(body["candidates"]) - len(kept)}


# ----------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def qinglang_command() -> list[str]:
    script = Path(sys.executable).with_name("qinglang")
    return [str(script)] if script.exists() else [sys.executable, "-m", "qinglang.cli"]


@contextlib.contextmanager
def server(db_url: str, port: int, workers: int, admin: str, log: Path) -> Iterator[int]:
    """Run `qinglang serve` in its own process group; yield its pid; always stop it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QINGLANG_")}
    env["QINGLANG_ADMIN_TOKEN"] = admin
    env["QINGLANG_DATA_KEY"] = DATA_KEY
    cmd = [
        *qinglang_command(),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--db",
        db_url,
        "--workers",
        str(workers),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log.parent,
            start_new_session=True,
        )
    try:
        yield proc.pid
    finally:
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        # Workers that outlived the parent are still in its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def wait_healthy(base: str, pid: int, log: Path, timeout: float = 30.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if not _alive(pid):
            raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/healthz", timeout=1.0).status_code == 200:
                return time.perf_counter() - t0
        time.sleep(0.1)
    raise RuntimeError(
        f"no /healthz after {timeout:.0f} s:\n{log.read_text(errors='replace')[-2000:]}"
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        return True


def process_tree(root: int) -> list[int]:
    """The root and its descendants (Linux /proc; [root] elsewhere)."""
    if not Path("/proc").is_dir():
        return [root]
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parent.items() if pp in frontier]
        tree += frontier
    return tree


def machine_cpu() -> tuple[int, int, int]:
    """Jiffies of all cores from /proc/stat: (total, idle + iowait, steal); zeros elsewhere."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return (0, 0, 0)
    return (sum(fields), fields[3] + fields[4], fields[7])


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes (Linux /proc; absent if unreadable)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> list[float]:
    """CPU seconds used by each process between two readings, largest first."""
    return sorted((after[p] - before.get(p, 0.0) for p in after), reverse=True)


# ----------------------------------------------------------------------------- loading data


def load_world(base: str, admin: str, world: World, sample_rate: float) -> tuple[str, str]:
    """Register a platform and load the world over HTTP; return (api key, timings text)."""
    timings = []
    with httpx.Client(base_url=base, timeout=60.0) as c:
        r = c.post(
            "/v1/platforms",
            json={"slug": "bench-http", "name": "HTTP bench", "decision_sample_rate": sample_rate},
            headers={"Authorization": f"Bearer {admin}"},
        )
        _expect(r, 201, "register platform")
        key = r.json()["api_key"]
        c.headers["Authorization"] = f"Bearer {key}"
        t0 = time.perf_counter()
        for a in world.accounts:
            _expect(c.put(f"/v1/accounts/{a.ext}", json=account_body(a)), 200, f"account {a.ext}")
        timings.append(f"{len(world.accounts):,} accounts in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        for i in range(0, len(world.events), 1_000):
            r = c.post("/v1/relationships", json={"events": world.events[i : i + 1_000]})
            _expect(r, 200, "relationships")
        timings.append(
            f"{len(world.events):,} relationship events in {time.perf_counter() - t0:.1f} s"
        )
        t0 = time.perf_counter()
        for i in range(0, len(world.flags), 1_000):
            _expect(
                c.post("/v1/content/flags", json={"flags": world.flags[i : i + 1_000]}),
                200,
                "content flags",
            )
        timings.append(f"{len(world.flags):,} content flags in {time.perf_counter() - t0:.1f} s")
    return key, "; ".join(timings)


def _expect(r: httpx.Response, status: int, what: str) -> None:
    if r.status_code != status:
        raise RuntimeError(f"{what}: HTTP {r.status_code}: {r.text[:500]}")


# ----------------------------------------------------------------------------- correctness


def check_sample(
    base: str, key: str, ref: Reference, bodies: Sequence[tuple[str, dict[str, Any]]]
) -> list[str]:
    """Post each body once; return a line per wrong status or wrong decision."""
    problems: list[str] = []
    outcomes: Counter[str] = Counter()
    with httpx.Client(base_url=base, timeout=30.0, headers={"Authorization": f"Bearer {key}"}) as c:
        for kind, body in bodies:
            r = c.post(PATHS[kind], json=body)
            if r.status_code != 200:
                problems.append(f"{kind} {body}: HTTP {r.status_code} {r.text[:200]}")
                continue
            got, want = r.json(), ref.answer(kind, body)
            outcomes[f"{kind}:{got.get('outcome', 'filtered')}"] += 1
            if got != want:
                problems.append(f"{kind} {body}:\n      got  {got}\n      want {want}")
    print("   sample outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    return problems


def spot_checks(base: str, key: str, world: World, today: date) -> list[str]:
    """Hand-picked answers that must hold whatever the pack's details."""
    ages = {a.ext: _age(a.birth_date, today) for a in world.accounts if a.age_source == "verified"}
    child = next(x for x, age in ages.items() if age is not None and 6 < age < 13)
    strangers = [
        x
        for x, age in ages.items()
        if age is not None and 19 < age < 59 and world.relation(x, child) == Relation()
    ]
    adult = strangers[0]
    friends = [
        x
        for x, age in ages.items()
        if age is not None
        and age >= 19
        and world.relation(x, child).mutual
        and not world.relation(x, child).blocked
    ]
    cases = [("stranger adult -> child dm", adult, child, "deny")]
    cases.append(("adult -> stranger adult dm", adult, strangers[1], "allow"))
    if friends:
        cases.append(("friend adult -> child dm", friends[0], child, "allow"))
    problems = []
    with httpx.Client(base_url=base, timeout=30.0, headers={"Authorization": f"Bearer {key}"}) as c:
        for name, s, r_, want in cases:
            r = c.post(PATHS["contact"], json={"action": "dm", "sender": s, "recipient": r_})
            got = r.json().get("outcome") if r.status_code == 200 else f"HTTP {r.status_code}"
            mark = "ok" if got == want else "WRONG"
            print(f"   {name:<30} {s} -> {r_}: {got!s:<6} (want {want}) {mark}")
            if got != want:
                problems.append(f"{name}: got {got}, want {want}")
        r = c.post(PATHS["contact"], json={"action": "dm", "sender": adult, "recipient": "nobody"})
        mark = "ok" if r.status_code == 404 else "WRONG"
        print(f"   {'unknown recipient':<30} -> HTTP {r.status_code} (want 404) {mark}")
        if r.status_code != 404:
            problems.append(f"unknown recipient: HTTP {r.status_code}, want 404")
        r = httpx.post(
            base + PATHS["contact"],
            json={"action": "dm", "sender": adult, "recipient": child},
            headers={"Authorization": "Bearer ql_0_x"},
        )
        mark = "ok" if r.status_code == 401 else "WRONG"
        print(f"   {'bad API key':<30} -> HTTP {r.status_code} (want 401) {mark}")
        if r.status_code != 401:
            problems.append(f"bad API key: HTTP {r.status_code}, want 401")
    return problems


# ----------------------------------------------------------------------------- load generators


@dataclass
class Result:
    phase: str
    loader: str
    connections: int
    seconds: float
    requests: int
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: float = 0.0  # CPU seconds, all server processes
    process_cpu: list[float] = field(default_factory=list)  # CPU seconds per server process
    loader_cpu: float = 0.0
    machine: tuple[int, int, int] = (0, 0, 0)  # /proc/stat jiffies over the phase
    statuses: dict[str, int] = field(default_factory=dict)  # non-2xx status -> count
    socket_detail: dict[str, int] = field(default_factory=dict)  # kind -> count
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def uneven(self, workers: int) -> bool:
        """Whether the connections landed mostly on fewer workers than there are."""
        busy = [c / self.seconds for c in self.process_cpu if c / self.seconds >= 0.05]
        return workers > 1 and bool(busy) and (len(busy) < workers or min(busy) < 0.5 * max(busy))

    @property
    def passed(self) -> bool:
        return (
            self.rps >= RPS_TARGET
            and self.p99_ms < P99_TARGET_MS
            and self.non_2xx == 0
            and self.socket_errors == 0
        )


WRK_LUA = r"""
-- Cycles through pre-formatted requests read from a file of "path<TAB>json body" lines.
local reqs, n, i = {}, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  local headers = {["Authorization"] = "Bearer " .. args[2],
                   ["Content-Type"] = "application/json"}
  for line in io.lines(args[1]) do
    local path, body = line:match("^([^\t]+)\t(.*)$")
    n = n + 1
    reqs[n] = wrk.format("POST", path, headers, body)
  end
  i = ((tid or 1) - 1) * 7919 % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

-- Non-2xx answers: "status status ..." and the first such body, per thread.
bad, first_bad = "", ""
function response(status, headers, body)
  if status < 200 or status > 299 then
    if #bad < 600 then bad = bad .. status .. " " end
    if first_bad == "" then first_bad = body:sub(1, 300) end
  end
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local b, f = t:get("bad"), t:get("first_bad")
    if b ~= "" then io.write("QLBAD ", b, "\n", "QLBODY ", (f:gsub("\n", " ")), "\n") end
  end
  local e = summary.errors
  io.write(string.format(
    'QLJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def run_wrk(
    phase: str,
    base: str,
    key: str,
    bodies: Sequence[tuple[str, dict[str, Any]]],
    seconds: float,
    connections: int,
    threads: int,
    tmp: Path,
    server_pids: Sequence[int],
) -> Result:
    script, data = tmp / "bench.lua", tmp / f"{phase}.tsv"
    script.write_text(WRK_LUA, encoding="utf-8")
    with data.open("w", encoding="utf-8") as f:
        for kind, body in bodies:
            f.write(f"{PATHS[kind]}\t{json.dumps(body, separators=(',', ':'))}\n")
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        base,
        "--",
        str(data),
        key,
    ]
    cpu0, kids0, m0 = cpu_seconds(server_pids), _children_cpu(), machine_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    cpu1, kids1, m1 = cpu_seconds(server_pids), _children_cpu(), machine_cpu()
    line = next((x for x in proc.stdout.splitlines() if x.startswith("QLJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    s = json.loads(line[len("QLJSON ") :])
    statuses = Counter(
        code for x in proc.stdout.splitlines() if x.startswith("QLBAD ") for code in x.split()[1:]
    )
    bodies_seen = [x[len("QLBODY ") :] for x in proc.stdout.splitlines() if x.startswith("QLBODY ")]
    sockets = {k: s[k] for k in ("connect", "read", "write", "timeout") if s[k]}
    return Result(
        phase=phase,
        loader=f"wrk -t{threads}",
        connections=connections,
        seconds=s["duration_us"] / 1e6,
        requests=s["requests"],
        non_2xx=s["status"],
        socket_errors=s["connect"] + s["read"] + s["write"] + s["timeout"],
        p50_ms=s["p50_us"] / 1e3,
        p99_ms=s["p99_us"] / 1e3,
        max_ms=s["max_us"] / 1e3,
        server_cpu=sum(cpu_delta(cpu0, cpu1)),
        process_cpu=cpu_delta(cpu0, cpu1),
        loader_cpu=kids1 - kids0,
        machine=(m1[0] - m0[0], m1[1] - m0[1], m1[2] - m0[2]),
        statuses=dict(statuses),
        socket_detail=sockets,
        first_error=bodies_seen[0] if bodies_seen else "",
    )


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_python(
    phase: str,
    base: str,
    key: str,
    bodies: Sequence[tuple[str, dict[str, Any]]],
    seconds: float,
    connections: int,
    server_pids: Sequence[int],
) -> Result:
    payloads = [(PATHS[k], json.dumps(b, separators=(",", ":")).encode()) for k, b in bodies]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: Counter[str] = Counter()  # non-2xx only
    sockets: Counter[str] = Counter()
    first_error: list[str] = []

    async def worker(client: httpx.AsyncClient, start: int, deadline: float) -> None:
        i = start
        while time.perf_counter() < deadline:
            path, payload = payloads[i % len(payloads)]
            i += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(path, content=payload, headers=headers)
            except httpx.HTTPError as exc:
                sockets[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - t0)
            if not 200 <= r.status_code < 300:
                statuses[str(r.status_code)] += 1
                if not first_error:
                    first_error.append(r.text[:300])

    async def main() -> float:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5.0) as client:
            t0 = time.perf_counter()
            deadline = t0 + seconds
            step = len(payloads) // connections or 1
            await asyncio.gather(*(worker(client, k * step, deadline) for k in range(connections)))
            return time.perf_counter() - t0

    cpu0, me0, m0 = cpu_seconds(server_pids), time.process_time(), machine_cpu()
    elapsed = asyncio.run(main())
    cpu1, me1, m1 = cpu_seconds(server_pids), time.process_time(), machine_cpu()
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(p / 100 * n))] * 1e3 if n else float("nan")

    return Result(
        phase=phase,
        loader="python httpx",
        connections=connections,
        seconds=elapsed,
        requests=n,
        non_2xx=sum(statuses.values()),
        socket_errors=sum(sockets.values()),
        p50_ms=pct(50),
        p99_ms=pct(99),
        max_ms=latencies[-1] * 1e3 if n else float("nan"),
        server_cpu=sum(cpu_delta(cpu0, cpu1)),
        process_cpu=cpu_delta(cpu0, cpu1),
        loader_cpu=me1 - me0,
        machine=(m1[0] - m0[0], m1[1] - m0[1], m1[2] - m0[2]),
        statuses=dict(statuses),
        socket_detail=dict(sockets),
        first_error=first_error[0] if first_error else "",
    )


# ----------------------------------------------------------------------------- main


def print_table(results: Sequence[Result], cores: int, workers: int) -> None:
    head = (
        f"{'phase':<8} {'loader':<13} {'conn':>4} {'secs':>5} {'requests':>9} {'req/s':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'non2xx':>6} {'sockerr':>7} "
        f"{'srv CPU':>7} {'gen CPU':>7}  result"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        verdict = "PASS" if r.passed else "FAIL"
        why = []
        if r.rps < RPS_TARGET:
            why.append(f"req/s < {RPS_TARGET:,.0f}")
        if r.p99_ms >= P99_TARGET_MS:
            why.append(f"p99 >= {P99_TARGET_MS:g} ms")
        if r.non_2xx or r.socket_errors:
            why.append("errors")
        srv, gen = r.server_cpu / r.seconds, r.loader_cpu / r.seconds
        print(
            f"{r.phase:<8} {r.loader:<13} {r.connections:>4} {r.seconds:>5.1f} {r.requests:>9,} "
            f"{r.rps:>8,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.max_ms:>7.1f} {r.non_2xx:>6} "
            f"{r.socket_errors:>7} {srv:>6.0%} {gen:>6.0%}"
            f"   {verdict}{' (' + ', '.join(why) + ')' if why else ''}"
        )
    print(
        f"targets: >= {RPS_TARGET:,.0f} req/s and p99 < {P99_TARGET_MS:g} ms, no errors. "
        f"CPU columns: share of one core over the phase ({cores} cores in all, "
        f"max {cores * 100}% together)."
    )
    for r in results:
        total, idle, steal = r.machine
        if total:
            print(
                f"machine CPU during {r.phase}: {1 - idle / total:.0%} busy, "
                f"{steal / total:.0%} stolen by the hypervisor (all processes, all cores); "
                "server processes: "
                + ", ".join(f"{c / r.seconds:.0%}" for c in r.process_cpu if c / r.seconds >= 0.005)
                + " of a core"
            )
        if r.uneven(workers):
            print(
                f"   WARNING: during {r.phase} the kept-alive connections landed unevenly on the "
                "workers (uvicorn's workers share one listening socket), so this rate "
                f"understates {workers} workers; run again"
            )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each timed phase")
    ap.add_argument(
        "--postgres",
        metavar="URL",
        help="run on PostgreSQL (e.g. postgresql+psycopg://127.0.0.1:5432/test; a fresh schema "
        "is created and dropped) instead of a temporary SQLite file",
    )
    ap.add_argument("--warmup", type=float, default=3.0, help="untimed warm-up (seconds)")
    ap.add_argument("--connections", type=int, default=8, help="open connections (1..256)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--accounts", type=int, default=2_000)
    ap.add_argument("--events", type=int, default=5_000, help="relationship events")
    ap.add_argument("--items", type=int, default=5_000, help="content catalogue size")
    ap.add_argument("--flagged", type=int, default=500, help="flagged items in the catalogue")
    ap.add_argument("--bodies", type=int, default=4_000, help="distinct request bodies per phase")
    ap.add_argument("--check", type=int, default=300, help="requests checked per phase")
    ap.add_argument("--sample-rate", type=float, default=0.01, help="decision log sample rate")
    ap.add_argument("--seed", type=int, default=20260301)
    args = ap.parse_args(argv)
    if not 1 <= args.connections <= 256 or args.threads < 1 or args.threads > args.connections:
        ap.error("need 1 <= --threads <= --connections <= 256")
    if args.seconds <= 0 or args.seconds > 600:
        ap.error("--seconds must be in (0, 600]")
    if args.accounts < 100:
        ap.error("--accounts must be at least 100")
    loader = args.loader
    if loader == "auto":
        loader = "wrk" if shutil.which("wrk") else "python"
    elif loader == "wrk" and not shutil.which("wrk"):
        ap.error("wrk is not installed (apt-get install wrk), use --loader python")

    policy = load_policy("cn")
    now = datetime.now(UTC)
    today = now.astimezone(policy.tz).date()
    rng = random.Random(args.seed)
    load1, load5, load15 = os.getloadavg()
    cores = os.cpu_count() or 1
    print(
        f"qinglang HTTP bench: {cores} cores, load average before the run "
        f"{load1:.2f} {load5:.2f} {load15:.2f}; python {sys.version.split()[0]}; "
        f"{args.workers} workers; loader {loader}"
        + (f" ({_wrk_version()})" if loader == "wrk" else " (asyncio + httpx)")
    )

    world = make_world(args, rng, today)
    contact_bodies = make_bodies(world, rng, args.bodies, (("contact", 1.0),), now, policy.tz)
    mix_bodies = make_bodies(world, rng, args.bodies, MIX, now, policy.tz)
    ref = Reference(policy, world)

    tmp = Path(tempfile.mkdtemp(prefix="qinglang-bench-http-"))
    results: list[Result] = []
    problems: list[str] = []
    try:
        db_url = f"sqlite:///{tmp / 'bench.db'}"
        if args.postgres:
            schema = f"qlbench_{secrets.token_hex(6)}"
            _pg_exec(args.postgres, f'CREATE SCHEMA "{schema}"')
            db_url = str(
                make_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
            )
        admin = secrets.token_urlsafe(24)
        port = free_port()
        base = f"http://{HOST}:{port}"
        log = tmp / "server.log"
        with server(db_url, port, args.workers, admin, log) as pid:
            startup = wait_healthy(base, pid, log)
            print(f"server pid {pid} on {base}, healthy after {startup:.1f} s")
            key, timings = load_world(base, admin, world, args.sample_rate)
            print(f"loaded over HTTP: {timings}")

            print("\n== correctness (sequential requests, compared with qinglang.guard) ==")
            problems += spot_checks(base, key, world, today)
            sample = contact_bodies[: args.check] + mix_bodies[: args.check]
            problems += check_sample(base, key, ref, sample)
            print(f"   {len(sample)} sampled requests: {len(problems)} problem(s)")
            for p in problems[:10]:
                print("   PROBLEM:", p)

            pids = process_tree(pid)
            print(f"\n== load: {args.seconds:g} s per phase, {args.connections} connections ==")
            phases = [
                ("warmup", mix_bodies, args.warmup),
                ("contact", contact_bodies, args.seconds),
                ("mix", mix_bodies, args.seconds),
            ]
            for phase, bodies, seconds in phases:
                if seconds <= 0:
                    continue
                for attempt in range(1, 4):
                    if loader == "wrk":
                        res = run_wrk(
                            phase,
                            base,
                            key,
                            bodies,
                            seconds,
                            args.connections,
                            args.threads,
                            tmp,
                            pids,
                        )
                    else:
                        res = run_python(phase, base, key, bodies, seconds, args.connections, pids)
                    print(f"   {phase}: {res.requests:,} requests, {res.rps:,.0f}/s")
                    # uvicorn's workers share one listening socket: all connections opened at
                    # once can be accepted by one worker. Such a phase measures one worker.
                    if phase == "warmup" or not res.uneven(args.workers) or attempt == 3:
                        break
                    print(
                        f"   {phase}: connections landed on one worker (server processes "
                        + ", ".join(f"{c / res.seconds:.0%}" for c in res.process_cpu[:2])
                        + " of a core); repeating the phase"
                    )
                if phase != "warmup":
                    results.append(res)
                if res.non_2xx or res.socket_errors:
                    problems.append(
                        f"{phase}: {res.non_2xx} non-2xx {res.statuses}, {res.socket_errors} "
                        f"socket errors {res.socket_detail}; first error body: "
                        f"{res.first_error or '-'}"
                    )
            if not _alive(pid):
                problems.append("server died during the run")
            logged = _count(db_url, "decision_logs")
            total = sum(r.requests for r in results)
        print()
        print_table(results, cores, args.workers)
        print(
            f"decision log rows: {logged:,} (sample rate {args.sample_rate:g}; "
            f"~{args.sample_rate * total:,.0f} expected from the timed phases; warm-up and "
            "checks add a few)"
        )
        for p in problems:
            print("PROBLEM:", p)
        if problems:
            print(f"\nserver log, errors:\n{server_errors(log)}")
        print("correctness:", "ok" if not problems else f"{len(problems)} problem(s)")
        return 0 if not problems else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if args.postgres:
            _pg_exec(args.postgres, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def server_errors(path: Path) -> str:
    """Each distinct traceback in the server log, once: how often, its chain of qinglang frames
    (file:line function), the exception and any [SQL: ...] line; the log's tail if none."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "   (no server log)"
    found: Counter[str] = Counter()
    frames: list[str] = []
    in_tb = False
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            in_tb, frames = True, []
        elif in_tb and line.lstrip().startswith('File "') and "/qinglang/" in line:
            # File ".../src/qinglang/api/service.py", line 140, in log
            m = re.search(r'/qinglang/([^"]+)", line (\d+), in (.+)$', line)
            if m:
                frames.append(f"{m[1]}:{m[2]} {m[3]}")
        elif in_tb and line and not line[0].isspace():
            sql = next((x for x in lines[i + 1 : i + 3] if x.startswith("[SQL:")), "")
            text = line if not frames else " -> ".join(frames) + "\n      " + line
            found[text + (f"\n      {sql[:160]}" if sql else "")] += 1
            in_tb = False
    if not found:
        return "\n".join("   " + x for x in lines[-20:])
    return "\n".join(f"   {n}x {text}" for text, n in found.most_common())


def _count(db_url: str, table: str) -> int:
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as c:
            return int(c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def _pg_exec(url: str, sql: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as c:
            c.execute(text(sql))
    finally:
        engine.dispose()


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).split("Copyright")[0].strip()


if __name__ == "__main__":
    sys.exit(main())
