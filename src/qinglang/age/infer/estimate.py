"""What age inference returns: an `AgeEstimate` with the `Signal` objects that produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AgeEstimate", "Signal"]


@dataclass(frozen=True, slots=True)
class Signal:
    """One piece of evidence about age: a weight (log-odds towards under 18) and its reasons."""

    name: str
    weight: float
    explanation_en: str
    explanation_zh: str
    evidence: str = ""
    age: int | None = None
    """The age the evidence states or implies, when it does."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "weight": round(self.weight, 4),
            "explanation_en": self.explanation_en,
            "explanation_zh": self.explanation_zh,
            "evidence": self.evidence,
            "age": self.age,
        }


@dataclass(frozen=True, slots=True)
class AgeEstimate:
    """Calibrated probabilities of being under 18 and under 14, a band, and the evidence."""

    user_id: str
    p_under18: float
    p_under14: float
    band: str | None
    """Id of the pack's content band of the most likely age, e.g. "12to15"; None if unknown."""
    suspected: bool
    """p_under18 reached the pack's suspect threshold (age.infer.suspect_under18)."""
    suspected_child: bool
    """p_under14 reached the pack's suspect threshold (age.infer.suspect_under14)."""
    signals: tuple[Signal, ...] = field(default_factory=tuple)
    model: str = "default"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "user_id": self.user_id,
            "p_under18": round(self.p_under18, 4),
            "p_under14": round(self.p_under14, 4),
            "band": self.band,
            "suspected": self.suspected,
            "suspected_child": self.suspected_child,
            "model": self.model,
            "signals": [s.to_dict() for s in self.signals],
        }
