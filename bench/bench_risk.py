"""Benchmark ``qinglang.risk``: throughput, the case scenario, and false alarms on an ordinary day.

One process pinned to one core, fixed seeds. Measured:

1. throughput: the message events of a simulated day (``qinglang.risk.simulate.ordinary_day``,
   100,000 messages among minors and adults, mostly Chinese) fed to a fresh ``RiskEngine`` with
   an in-memory directory; every message goes through the detection normaliser and the cue
   detector. Best of ``--repeats`` runs, gc paused while timed. Also the whole stream of the day
   (messages plus follows, recommendations, late and duplicate events);
2. the case (``case_scenario``): an adult shown 30 children's videos follows all 30 in a day and
   messages 12 with age and location questions: how many of his messages (and children) the
   engine read before the first alert; and the same pattern from a teacher with guardian-approved
   contact (``trusted_scenario``), which must raise nothing;
3. false alarms: the share of senders alerted over the full 100,000-message day;
4. the labelled scenarios of ``tests/risk/data`` (zh, en): detection of grooming that reached the
   isolation stage or later, and alerts on benign conversations.

Targets (issue 5): >= 20,000 message events/s on one core; alert before the 5th child is
messaged; no alert for the trusted contact; <= 0.1% of senders alerted. Timing targets are
reported, not enforced; the exit status is 1 only when a correctness check fails (the case raises
no alert, or the trusted contact raises one).

    .venv/bin/python bench/bench_risk.py                  # full size, best of 3
    .venv/bin/python bench/bench_risk.py --messages 20000 --repeats 1   # quick run
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from qinglang.policy import load_pack
from qinglang.risk import Event, Link, MemoryDirectory, RiskEngine
from qinglang.risk.simulate import START, case_scenario, ordinary_day, trusted_scenario

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "risk" / "data"
TARGET_EPS = 20_000
TARGET_CHILD = 5
TARGET_FALSE = 0.001
LINKS: dict[str, Link | None] = {
    "stranger": None,
    "mutual": Link(mutual=True),
    "guardian": Link(guardian=True),
    "approved": Link(approved=True),
}


def _pin() -> str:
    try:
        core = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {core})
        return f"core {core}"
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return "not pinned"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _timed(policy: Any, directory: MemoryDirectory, events: list[Event], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        eng = RiskEngine(policy, directory)
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            eng.process_many(events)
            best = min(best, time.perf_counter() - t0)
        finally:
            gc.enable()
    return best


def _case(policy: Any) -> tuple[int | None, int | None, str]:
    sc = case_scenario()
    eng = RiskEngine(policy, sc.directory)
    messages = 0
    children: list[str] = []
    for e in sc.events:
        if e.kind == "message" and e.actor == sc.sender:
            messages += 1
            if e.target not in children:
                children.append(e.target or "")
        alerts = eng.process(e)
        if alerts:
            return messages, len(children), alerts[0].level
    return None, None, ""


def _scenarios(policy: Any, name: str) -> tuple[int, int, int, int]:
    rows = [json.loads(x) for x in (DATA / name).read_text("utf-8").splitlines() if x.strip()]
    found = later = false = benign = 0
    for sc in rows:
        d = MemoryDirectory()
        d.add("s", sc["sender_age"])
        d.add("r", sc["recipient_age"])
        link = LINKS[sc["relation"]]
        if link is not None:
            d.relate("s", "r", link)
        eng = RiskEngine(policy, d)
        alerted = False
        for i, (who, text) in enumerate(sc["messages"]):
            a, b = ("s", "r") if who == "s" else ("r", "s")
            event = Event(f"{i}", "message", START + timedelta(minutes=i), a, b, text)
            alerted |= any(x.sender == "s" for x in eng.process(event))
        if sc["label"] == "grooming" and sc["stage"] not in ("contact", "trust"):
            later += 1
            found += alerted
        elif sc["label"] == "benign":
            benign += 1
            false += alerted
    return found, later, false, benign


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; 1 if a correctness check failed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=100_000, help="messages in the simulated day")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs (best is kept)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    pinned = _pin()
    print(
        f"qinglang.risk benchmark — {platform.python_implementation()} {platform.python_version()}"
        f", {pinned}, load {os.getloadavg()[0]:.2f}"
    )
    policy = load_pack("cn")
    failed = False

    t0 = time.perf_counter()
    day = ordinary_day(args.messages, seed=args.seed)
    messages = [e for e in day.events if e.kind == "message"]
    print(
        f"simulated day: {len(day.events):,} events, {len(messages):,} messages, "
        f"{len(day.directory):,} accounts ({time.perf_counter() - t0:.1f} s to generate)"
    )

    # 1. throughput
    best = _timed(policy, day.directory, messages, args.repeats)
    eps = len(messages) / best
    best_all = _timed(policy, day.directory, day.events, args.repeats)
    print()
    print(f"{'measure':44} {'value':>24} {'target':>12}  verdict")
    print(
        f"{'message events/s (normaliser + cues on)':44} {eps:>24,.0f} {'>= 20,000':>12}  "
        f"{_verdict(eps >= TARGET_EPS)}"
    )
    print(
        f"{'all events/s (day incl. follows, impressions)':44} "
        f"{len(day.events) / best_all:>24,.0f} {'':>12}"
    )
    print(f"{'µs per message event':44} {1e6 / eps:>24.1f}")

    # 2. the case
    read, children, level = _case(policy)
    ok = read is not None and children is not None and children < TARGET_CHILD
    failed |= read is None
    value = "no alert" if read is None else f"{level} at msg {read}, child {children}"
    print(
        f"{'case: his messages read before the alert':44} {value:>24} {'child < 5':>12}  "
        f"{_verdict(ok)}"
    )
    trusted = trusted_scenario()
    t_alerts = RiskEngine(policy, trusted.directory).process_many(trusted.events)
    failed |= bool(t_alerts)
    print(
        f"{'case: teacher with approved contact, alerts':44} {len(t_alerts):>24} {'0':>12}  "
        f"{_verdict(not t_alerts)}"
    )

    # 3. false alarms
    eng = RiskEngine(policy, day.directory)
    alerts = eng.process_many(day.events)
    senders = {e.actor for e in messages}
    alerted = {a.sender for a in alerts}
    rate = len(alerted) / len(senders)
    print(
        f"{'false alarms: senders alerted / senders':44} "
        f"{f'{len(alerted)}/{len(senders):,}':>24} {'<= 0.1%':>12}  "
        f"{_verdict(rate <= TARGET_FALSE)}"
    )
    print(f"{'false-alarm rate':44} {rate:>24.4%}")
    s = eng.stats
    print(
        f"{'events received / applied / dup / stale':44} "
        f"{f'{s.received}/{s.applied}/{s.duplicates}/{s.stale}':>24}"
    )
    print(f"{'state held: accounts / conversations':44} {f'{s.senders}/{s.conversations}':>24}")

    # 4. labelled scenarios
    for name in ("zh_scenarios.jsonl", "en_scenarios.jsonl"):
        if (DATA / name).exists():
            found, later, false, benign = _scenarios(policy, name)
            lang = name[:2]
            print(
                f"{f'{lang} scenarios: grooming detected (isolation+)':44} "
                f"{f'{found}/{later}':>24} {'':>12}"
            )
            print(f"{f'{lang} scenarios: benign alerted':44} {f'{false}/{benign}':>24}")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {rss:.0f} MB, load {os.getloadavg()[0]:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
