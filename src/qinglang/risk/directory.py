"""An in-memory `Directory`: account facts and relations held in dictionaries.

For tests, simulations, benchmarks and small deployments; the shell backs the engine with
storage instead. Unknown accounts are `UNKNOWN`, unknown pairs are `STRANGERS`.
"""

from __future__ import annotations

from qinglang.risk.types import STRANGERS, UNKNOWN, AccountFacts, Link


class MemoryDirectory:
    """Account facts and links in dictionaries (links are symmetric)."""

    __slots__ = ("_facts", "_links")

    def __init__(self) -> None:
        self._facts: dict[str, AccountFacts] = {}
        self._links: dict[tuple[str, str], Link] = {}

    def add(self, account: str, age: int | None, minor_below: int = 18) -> AccountFacts:
        """Register an account by age (None: unknown); returns its facts."""
        facts = AccountFacts(age=age, is_minor=age is not None and age < minor_below)
        self._facts[account] = facts
        return facts

    def set_facts(self, account: str, facts: AccountFacts) -> None:
        """Replace the facts of an account (e.g. after a restriction)."""
        self._facts[account] = facts

    def restrict(self, account: str, restricted: bool = True) -> None:
        """Mark an account as restricted from contacting minors (or lift it)."""
        f = self._facts.get(account, UNKNOWN)
        self._facts[account] = AccountFacts(f.age, f.is_minor, restricted)

    def relate(self, a: str, b: str, link: Link) -> None:
        """Set how a and b are related (both directions)."""
        self._links[(a, b) if a <= b else (b, a)] = link

    def facts(self, account: str) -> AccountFacts:
        """Facts about an account; UNKNOWN for an account never registered."""
        return self._facts.get(account, UNKNOWN)

    def link(self, a: str, b: str) -> Link:
        """How a and b are related (symmetric); STRANGERS when never related."""
        return self._links.get((a, b) if a <= b else (b, a), STRANGERS)

    def accounts(self) -> list[str]:
        """The registered accounts, in the order they were added."""
        return list(self._facts)

    def __len__(self) -> int:
        return len(self._facts)
