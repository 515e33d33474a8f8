"""What the detector reports: a `Finding` per piece of personal information, in original offsets.

A finding says where the information is (``start``/``end`` in the text as it was handed in, end
exclusive), what it is (one of `CATEGORIES`), its normalised value, how sure the recogniser is,
whether it reveals or suggests that the subject is a minor (`MinorSignal`), and which recogniser
found it and why (``recognizer``, ``explanation``) so that a reviewer can see the reason.

>>> f = Finding(2, 13, "phone", "+8613812345678", 0.95, None, "cn_phone", "CN mobile")
>>> f.to_dict()["value"], f.to_dict()["minor_signal"]
('+8613812345678', None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

__all__ = [
    "CATEGORIES",
    "MODEL_CATEGORIES",
    "STRUCTURED_CATEGORIES",
    "Category",
    "Finding",
    "MinorSignal",
]

Category: TypeAlias = Literal[
    "phone",
    "id_number",
    "passport",
    "travel_permit",
    "bank_card",
    "email",
    "qq",
    "wechat",
    "ip_address",
    "gps",
    "licence_plate",
    "birthday",
    "age",
    "grade_class",
    "person_name",
    "address",
    "school",
]

MODEL_CATEGORIES: Final[tuple[str, ...]] = ("person_name", "address", "school")
"""Categories that need the statistical model (rules add some address and school parts)."""

STRUCTURED_CATEGORIES: Final[tuple[str, ...]] = tuple(
    c for c in get_args(Category) if c not in MODEL_CATEGORIES
)
"""Categories of the fast path: patterns, checksums and context words, no statistical model."""

CATEGORIES: Final[tuple[str, ...]] = STRUCTURED_CATEGORIES + MODEL_CATEGORIES
"""Every category name a finding may carry (documented in docs/detect.md)."""

_CATEGORY_SET: Final = frozenset(CATEGORIES)
_set: Final = object.__setattr__


@dataclass(frozen=True, slots=True)
class MinorSignal:
    """The finding reveals or suggests that its subject is a minor; `age` when it is known."""

    age: int | None
    reason: str

    def to_dict(self) -> dict[str, int | str | None]:
        """Return ``{"age": ..., "reason": ...}``."""
        return {"age": self.age, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal information: where (original offsets), what, value, how sure, why."""

    start: int
    end: int
    category: str
    value: str
    confidence: float
    minor_signal: MinorSignal | None = None
    recognizer: str = ""
    explanation: str = ""

    def __init__(
        self,
        start: int,
        end: int,
        category: str,
        value: str,
        confidence: float,
        minor_signal: MinorSignal | None = None,
        recognizer: str = "",
        explanation: str = "",
    ) -> None:
        # the dataclass's own __init__, checked first (scans make many findings: this is faster
        # than a __post_init__ reading the fields back)
        if category not in _CATEGORY_SET:
            raise ValueError(f"unknown category {category!r}")
        if not 0 <= start <= end:
            raise ValueError(f"bad span [{start}, {end})")
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence {confidence} is not within 0..1")
        _set(self, "start", start)
        _set(self, "end", end)
        _set(self, "category", category)
        _set(self, "value", value)
        _set(self, "confidence", confidence)
        _set(self, "minor_signal", minor_signal)
        _set(self, "recognizer", recognizer)
        _set(self, "explanation", explanation)

    def to_dict(self) -> dict[str, object]:
        """Return the public form: start, end, category, value, confidence, minor_signal."""
        return {
            "start": self.start,
            "end": self.end,
            "category": self.category,
            "value": self.value,
            "confidence": self.confidence,
            "minor_signal": None if self.minor_signal is None else self.minor_signal.to_dict(),
        }
