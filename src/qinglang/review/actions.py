"""What a reviewer may do with an alert, and how each action moves its status.

Statuses: ``open`` (queued) → ``in_review`` (assigned) → ``actioned`` (at least one enforcement
action taken; more may follow) or ``dismissed`` (closed with a written reason; automatic
restrictions from the alert are lifted). A dismissed alert takes no further action; an actioned
alert cannot be dismissed (lift the restriction instead, with a reason).
"""

from __future__ import annotations

from typing import Final

ACTION_KINDS: Final = (
    "dismiss",
    "restrict",
    "suspend",
    "remove_content",
    "notify_guardians",
    "report",
)
ENFORCEMENT: Final = frozenset(ACTION_KINDS) - {"dismiss"}
"""Actions that act on the sender or for the minors (the alert becomes `actioned`)."""
AUTHORITIES: Final = {
    "police": ("公安机关", "public security (police)"),
    "cac": ("网信部门", "cyberspace administration (CAC)"),
}
"""Who a report goes to (未成年人保护法 art. 80 para. 2 and 3)."""
MIN_REASON: Final = 3
"""A dismissal reason shorter than this (characters, trimmed) is refused."""


class ActionError(ValueError):
    """An action that cannot be taken; `field` names the request field, `status` the HTTP code."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


def next_status(current: str, kind: str) -> str:
    """The alert's status after action `kind` (or `assign`); ActionError when not allowed."""
    if kind != "assign" and kind not in ACTION_KINDS:
        raise ActionError("kind", f"must be one of {', '.join(ACTION_KINDS)}")
    if current == "dismissed":
        raise ActionError("kind", "the alert was dismissed; no further action is taken", 409)
    if kind == "assign":
        return "in_review" if current == "open" else current
    if kind == "dismiss":
        if current == "actioned":
            raise ActionError(
                "kind",
                "the alert was actioned and cannot be dismissed; lift its restriction instead",
                409,
            )
        return "dismissed"
    return "actioned"


def check_reason(kind: str, reason: str | None) -> str | None:
    """The trimmed reason; a dismissal must give one."""
    text = None if reason is None else reason.strip()
    if kind == "dismiss" and (text is None or len(text) < MIN_REASON):
        raise ActionError(
            "reason", f"a dismissal needs a reason (at least {MIN_REASON} characters)"
        )
    return text or None
