"""Helpers for the risk tests: the cn pack, small worlds of accounts, events, and scenario files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from qinglang.policy import Policy, load_pack
from qinglang.risk import Alert, Event, Link, MemoryDirectory, RiskEngine
from qinglang.risk.simulate import START

CN: Policy = load_pack("cn")
DATA = Path(__file__).parent / "data"
LINKS: dict[str, Link | None] = {
    "stranger": None,
    "mutual": Link(mutual=True),
    "guardian": Link(guardian=True),
    "approved": Link(approved=True),
}


class Clock:
    """Event ids and times for hand-written streams: each call is one minute later."""

    def __init__(self, start: datetime = START, prefix: str = "e") -> None:
        self.t = start
        self.n = 0
        self.prefix = prefix

    def __call__(
        self,
        kind: str,
        actor: str,
        target: str | None = None,
        text: str | None = None,
        *,
        owner: str | None = None,
        amount: int | None = None,
        at: datetime | None = None,
        step: timedelta = timedelta(minutes=1),
    ) -> Event:
        self.n += 1
        if at is None:
            self.t += step
            at = self.t
        item = None if owner is None else f"v-{owner}"
        surface = None if owner is None else "recommended"
        return Event(
            f"{self.prefix}{self.n:05d}",
            kind,
            at,
            actor,
            target,
            text,
            item,
            owner,
            surface,
            amount,
        )


def world(**ages: int | None) -> MemoryDirectory:
    """A directory of accounts by age (None: unknown age)."""
    d = MemoryDirectory()
    for name, age in ages.items():
        d.add(name, age)
    return d


def engine(d: MemoryDirectory, policy: Policy = CN) -> RiskEngine:
    """A fresh engine on the cn pack."""
    return RiskEngine(policy, d)


@dataclass
class Outcome:
    """What one labelled scenario did: did the sender alert, and with what risk."""

    id: str
    label: str
    stage: str
    alerted: bool
    score: float
    alerts: list[Alert]


def load_scenarios(name: str) -> list[dict[str, Any]]:
    """The labelled scenarios of a JSONL file in tests/risk/data."""
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run_scenario(sc: dict[str, Any], policy: Policy = CN) -> Outcome:
    """Play one scenario (``s`` the sender under test, ``r`` the other party) through an engine."""
    d = world(s=sc["sender_age"], r=sc["recipient_age"])
    link = LINKS[sc["relation"]]
    if link is not None:
        d.relate("s", "r", link)
    eng = engine(d, policy)
    clock = Clock(prefix=f"{sc['id']}-")
    alerts: list[Alert] = []
    for who, text in sc["messages"]:
        a, b = ("s", "r") if who == "s" else ("r", "s")
        alerts += eng.process(clock("message", a, b, text))
    mine = [a for a in alerts if a.sender == "s"]
    return Outcome(sc["id"], sc["label"], sc["stage"], bool(mine), eng.sender_risk("s").score, mine)
