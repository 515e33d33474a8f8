"""Consents as the guard reads them: an immutable snapshot of one account's valid consents.

The consent package keeps the records (notices, ledger); the shell builds a `ConsentView` from
them and hands it to `build_profile`. A view carries the account's consent version: the shell
caches profiles by it, and every consent change bumps it in the same transaction, so no cached
profile outlives a withdrawal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Purpose × category pairs the decisions read (notice items use these purpose ids).
PUBLISH = ("publish_content", "child_content")
"""Showing content that shows the child to others (profile pages, followers)."""
RECOMMEND = ("recommend_content", "child_content")
"""Recommending that content to other users (recommend, search, trending)."""
STRANGER_MESSAGES = ("messages_from_non_friends", "messages")
"""Receiving direct messages from accounts that are not friends."""


@dataclass(frozen=True, slots=True)
class ConsentState:
    """Consents on record for one category and purpose, as a collection decision needs them."""

    guardian: bool = False
    """The guardian consented (needed under the child age)."""
    separate: bool = False
    """Separate consent (单独同意) was given for this sensitive category: by the person, or by the
    guardian for a child."""


NO_CONSENT = ConsentState()
BY_GUARDIAN = ConsentState(guardian=True, separate=True)
BY_SELF = ConsentState(guardian=False, separate=True)


@dataclass(frozen=True, slots=True)
class Grant:
    """A valid consent: who gave it and, for disclosure purposes, the widest audience."""

    given_by: str
    """guardian or self"""
    audience: int | None = None
    """Audience level (qinglang.policy.AUDIENCES index) for purposes that disclose content."""


@dataclass(frozen=True, slots=True)
class ConsentView:
    """One account's consents at one version: valid grants, and stale pairs for explanations."""

    version: int
    grants: Mapping[tuple[str, str], Grant] = field(default_factory=dict)
    stale: frozenset[tuple[str, str]] = frozenset()
    tracked: bool = True
    """False for callers that keep no consent records: decisions then ignore consent."""

    def grant(self, purpose: str, category: str) -> Grant | None:
        """The valid grant for a purpose and category (None if refused, withdrawn or stale)."""
        return self.grants.get((purpose, category))

    def states(self) -> dict[tuple[str, str], ConsentState]:
        """Purpose × category → consent state for collection decisions. Each stored consent is
        given for one purpose and one category, so a valid one is separate consent by
        construction; it is the guardian's when the guardian gave it."""
        return {
            pair: BY_GUARDIAN if g.given_by == "guardian" else BY_SELF
            for pair, g in self.grants.items()
        }

    def allows(self, purpose: str, category: str) -> bool:
        """Whether a valid consent covers this purpose and category."""
        return (purpose, category) in self.grants


UNTRACKED = ConsentView(version=-1, tracked=False)
"""For pure-core use without consent records: consent never changes a decision."""
