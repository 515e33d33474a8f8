"""Age bands from policy packs: find the band an age falls in, the narrowest when they overlap.

A band covers ``min_age <= age < max_age`` (``max_age=None``: no upper bound). Bands are defined
by policy packs; this module only looks them up. When several bands contain an age, the narrowest
wins: a closed band with the smallest span, else the open band with the highest ``min_age`` (an
open band is wider than any closed one, and ``[60, ∞)`` is narrower than ``[0, ∞)``). Among equally
narrow bands the first given wins.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Band:
...     id: str
...     min_age: int
...     max_age: int | None
>>> bands = [Band("minor", 0, 18), Band("child", 0, 14), Band("adult", 18, None)]
>>> band_for(13, bands).id, band_for(14, bands).id, band_for(18, bands).id
('child', 'minor', 'adult')
>>> BandIndex(bands).lookup(16).id
'minor'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final, Generic, Protocol, TypeVar

__all__ = ["MAX_INDEXED_AGE", "BandIndex", "BandLike", "band_for"]

MAX_INDEXED_AGE: Final = 150


class BandLike(Protocol):
    """An age band as policy packs define it (read-only attributes)."""

    @property
    def id(self) -> str:
        """Identifier of the band, e.g. "under_14"."""
        ...

    @property
    def min_age(self) -> int:
        """Lowest age in the band (inclusive)."""
        ...

    @property
    def max_age(self) -> int | None:
        """Age at which the band ends (exclusive); None for no upper bound."""
        ...


B = TypeVar("B", bound=BandLike)


def band_for(age: int | None, bands: Sequence[B]) -> B | None:
    """Return the narrowest band containing `age` (first wins ties), or None."""
    if age is None:
        return None
    best: B | None = None
    best_width = (math.inf, math.inf)
    for band in bands:
        lower, upper = band.min_age, band.max_age
        if lower <= age and (upper is None or age < upper):
            # (0, span) for a closed band; (1, -min_age) for an open one: smaller is narrower.
            width = (0.0, float(upper - lower)) if upper is not None else (1.0, float(-lower))
            if width < best_width:
                best, best_width = band, width
    return best


class BandIndex(Generic[B]):
    """Bands precomputed by age so that `lookup` is O(1) for ages 0..MAX_INDEXED_AGE."""

    __slots__ = ("_bands", "_by_age")

    def __init__(self, bands: Iterable[B]) -> None:
        self._bands: tuple[B, ...] = tuple(bands)
        self._by_age: tuple[B | None, ...] = tuple(
            band_for(age, self._bands) for age in range(MAX_INDEXED_AGE + 1)
        )

    @property
    def bands(self) -> tuple[B, ...]:
        """The bands, in the order given."""
        return self._bands

    def lookup(self, age: int | None) -> B | None:
        """Return the narrowest band containing `age`, or None (same answer as `band_for`)."""
        if age is not None and 0 <= age <= MAX_INDEXED_AGE:
            return self._by_age[age]
        return band_for(age, self._bands)
