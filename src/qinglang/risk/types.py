"""What the risk engine knows about accounts, and what it produces: signals, risks, alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What the engine needs to know about an account (from its protection profile)."""

    age: int | None
    """None: unknown age."""
    is_minor: bool
    restricted: bool = False
    """A reviewer (or the automatic protection) restricted this account from contacting minors."""


UNKNOWN = AccountFacts(age=None, is_minor=False)


@dataclass(frozen=True, slots=True)
class Link:
    """How two accounts are related, as the engine needs it."""

    mutual: bool = False
    """Each follows the other (friends)."""
    approved: bool = False
    """The minor's guardian approved contact from the other account (a teacher, a relative)."""
    guardian: bool = False
    """One is a verified guardian of the other."""


STRANGERS = Link()


class Directory(Protocol):
    """Where the engine looks accounts and relations up (the shell backs it with storage)."""

    def facts(self, account: str) -> AccountFacts:
        """Facts about an account; UNKNOWN for an account the platform never registered."""
        ...

    def link(self, a: str, b: str) -> Link:
        """How a and b are related (symmetric)."""
        ...


@dataclass(frozen=True, slots=True)
class Signal:
    """One reason for risk: a named signal, its weight in the score, and the evidence."""

    name: str
    """Stable id, e.g. fanout_minors, chain_shown_follow_message, cue.asks_age."""
    weight: float
    explanation_en: str
    explanation_zh: str
    event_ids: tuple[str, ...] = ()
    excerpt: str | None = None
    """A short excerpt of the message that produced it (minimised evidence), if any."""


@dataclass(frozen=True, slots=True)
class Risk:
    """A risk score in [0, 1] with the signals that produced it."""

    score: float
    signals: tuple[Signal, ...] = ()


@dataclass(frozen=True, slots=True)
class Alert:
    """A sender whose risk crossed a threshold of the pack: for review, or for review and an
    automatic protective restriction."""

    id: str
    """Deterministic: the same event stream raises the same alert ids."""
    sender: str
    level: str
    """review or restrict"""
    score: float
    at: datetime
    signals: tuple[Signal, ...]
    minors: tuple[str, ...]
    """Minors involved (account ids)."""
    event_ids: tuple[str, ...] = field(default=())
    rule_id: str = ""
    """The pack rule whose threshold was crossed."""
