"""Human review of risk alerts: priority and SLA from the pack, minimised evidence, the actions a
reviewer may take, and the documents they produce (a report to the police or a regulator, a
notification to a guardian).

Pure: alerts, events and policy in; values, texts and documents out. Storage, HTTP and the CLI
(``qinglang.store.review``, ``/v1/review``, ``qinglang review``) are shells around it.
"""

from qinglang.review.actions import (
    ACTION_KINDS,
    AUTHORITIES,
    ENFORCEMENT,
    ActionError,
    next_status,
)
from qinglang.review.evidence import build_evidence, excerpt
from qinglang.review.priority import due_at, is_overdue, priority_of
from qinglang.review.report import authority_report, guardian_message

__all__ = [
    "ACTION_KINDS",
    "AUTHORITIES",
    "ENFORCEMENT",
    "ActionError",
    "authority_report",
    "build_evidence",
    "due_at",
    "excerpt",
    "guardian_message",
    "is_overdue",
    "next_status",
    "priority_of",
]
