"""Priority and SLA of an alert, from the pack's review rules.

An alert at the ``restrict`` level (an automatic protective restriction applies) is ``urgent``;
a ``review`` alert is ``high`` when its score reaches ``review.priority_high_score`` or it
involves at least ``review.priority_high_minors`` minors, ``normal`` otherwise. The review is due
``review.sla_hours.<priority>`` hours after the alert was queued.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from qinglang.policy import Policy, PolicyError
from qinglang.risk.types import Alert

PRIORITIES: Final = ("urgent", "high", "normal")
OPEN_STATUSES: Final = ("open", "in_review")


def _number(policy: Policy, topic: str) -> float:
    value = policy.require(topic).value
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PolicyError(f"pack {policy.meta.id}: {topic} must be a number", topic)
    return float(value)


def priority_of(alert: Alert, policy: Policy) -> str:
    """urgent, high or normal for this alert under the pack's review rules."""
    if alert.level == "restrict":
        return "urgent"
    if alert.score >= _number(policy, "review.priority_high_score"):
        return "high"
    if len(alert.minors) >= _number(policy, "review.priority_high_minors"):
        return "high"
    return "normal"


def due_at(queued_at: datetime, priority: str, policy: Policy) -> datetime:
    """When the review of an alert of this priority queued at `queued_at` is due."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    hours = _number(policy, f"review.sla_hours.{priority}")
    return queued_at + timedelta(hours=hours)


def is_overdue(status: str, due: datetime, now: datetime) -> bool:
    """An alert still waiting for a decision after its due time."""
    return status in OPEN_STATUSES and now > due
