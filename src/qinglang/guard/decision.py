"""The answer to every question the platform asks: an outcome, the rules behind it, and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from qinglang.policy import Citation, Rule

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Outcome(StrEnum):
    """What the platform should do: allow, deny, ask the guardian, or allow within limits."""

    ALLOW = "allow"
    DENY = "deny"
    NEEDS_GUARDIAN = "needs_guardian"
    LIMIT = "limit"


@dataclass(frozen=True, slots=True)
class Reason:
    """A rule that produced a decision, with its citation and bilingual message."""

    rule_id: str
    citation: str
    message_zh: str
    message_en: str

    def to_dict(self) -> dict[str, str]:
        """Plain form for JSON."""
        return {
            "rule_id": self.rule_id,
            "citation": self.citation,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


def reason(rule: Rule) -> Reason:
    """The (shared, cached) reason for a rule."""
    return _reason(rule.id, rule.citation, rule.message_zh, rule.message_en)


@lru_cache(maxsize=4096)
def _reason(rule_id: str, citation: Citation, message_zh: str, message_en: str) -> Reason:
    return Reason(rule_id, citation.short(), message_zh, message_en)


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome + the rules that produced it + the limits that apply (minutes left, caps …)."""

    outcome: Outcome
    reasons: tuple[Reason, ...] = ()
    limits: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @property
    def allowed(self) -> bool:
        """True when the action may go ahead now (allow, or allow within limits)."""
        return self.outcome is Outcome.ALLOW or self.outcome is Outcome.LIMIT

    @property
    def rule_ids(self) -> list[str]:
        """Ids of the rules behind this decision."""
        return [r.rule_id for r in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        """Plain form for JSON."""
        return {
            "outcome": self.outcome.value,
            "reasons": [r.to_dict() for r in self.reasons],
            "limits": dict(self.limits),
        }


ALLOW = Decision(Outcome.ALLOW)


def decide(
    outcome: str | Outcome, *rules: Rule, limits: Mapping[str, Any] | None = None
) -> Decision:
    """Build a decision from an outcome and the rules behind it."""
    return Decision(
        Outcome(outcome),
        tuple(reason(r) for r in rules),
        MappingProxyType(dict(limits)) if limits else _EMPTY,
    )
