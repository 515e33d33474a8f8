"""Where an age comes from, how much that source counts, and which of several claims to believe.

Sources rank ``verified`` > ``guardian_declared`` > ``self_declared`` > ``inferred``. Among
claims, `best_claim` takes the highest-ranked source; among those, the most recently observed
(a claim without ``observed_at`` counts as oldest); among those, the younger birth date, because
treating the user as younger is the more protective error.

>>> from datetime import date
>>> claims = [
...     AgeClaim(date(2000, 1, 1), AgeSource.SELF_DECLARED),
...     AgeClaim(date(2011, 5, 2), AgeSource.GUARDIAN_DECLARED),
...     AgeClaim(date(2010, 5, 2), AgeSource.INFERRED),
... ]
>>> best_claim(claims).birth_date
datetime.date(2011, 5, 2)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final

__all__ = ["AgeClaim", "AgeSource", "best_claim"]


class AgeSource(StrEnum):
    """How an age (birth date) was obtained."""

    VERIFIED = "verified"
    GUARDIAN_DECLARED = "guardian_declared"
    SELF_DECLARED = "self_declared"
    INFERRED = "inferred"

    @property
    def rank(self) -> int:
        """Trust rank: higher is more trusted (verified 3 … inferred 0)."""
        return _RANK[self]


_RANK: Final[dict[AgeSource, int]] = {
    AgeSource.VERIFIED: 3,
    AgeSource.GUARDIAN_DECLARED: 2,
    AgeSource.SELF_DECLARED: 1,
    AgeSource.INFERRED: 0,
}

_OLDEST: Final = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AgeClaim:
    """One statement of a user's birth date, with its source, when it was seen and confidence."""

    birth_date: date
    source: AgeSource
    observed_at: datetime | None = None
    confidence: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.birth_date, datetime):
            raise TypeError("birth_date must be a date, not a datetime")
        object.__setattr__(self, "source", AgeSource(self.source))
        if self.observed_at is not None and self.observed_at.utcoffset() is None:
            raise ValueError("observed_at must be an aware datetime (with tzinfo)")
        if self.confidence is not None and not (
            math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0
        ):
            raise ValueError(f"confidence must be between 0 and 1, got {self.confidence}")


def best_claim(claims: Iterable[AgeClaim]) -> AgeClaim | None:
    """Return the claim to act on: best source, then most recent, then youngest; None if empty."""
    return max(claims, key=_claim_key, default=None)


def _claim_key(claim: AgeClaim) -> tuple[int, datetime, date]:
    """Sort key for `best_claim`: larger is preferred."""
    observed = claim.observed_at if claim.observed_at is not None else _OLDEST
    return (claim.source.rank, observed, claim.birth_date)
