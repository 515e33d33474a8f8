"""Rectification measures, pure: codes, validation, status transitions, what blocks closing.

A measure answers one or more requirements of the catalogue. Its status moves
open → in_progress → done (its owner says the work is done) → closed; done may go back to
in_progress (reopened). It closes only when every linked automated or configuration
requirement passed in the latest audit run after it was created, and every linked attested
requirement is evidenced (its status there is ``pass`` too): see :func:`blocking_requirements`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Final

from qinglang.audit.model import AREAS, Requirement, Status

MEASURE_STATUSES: Final = ("open", "in_progress", "done", "closed")
"""Statuses of a measure, in order (the same as the store's check constraint)."""
OPEN_STATUSES: Final = ("open", "in_progress", "done")
"""Statuses of a measure that still needs work or checking (not closed)."""
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "open": frozenset({"in_progress"}),
    "in_progress": frozenset({"done"}),
    "done": frozenset({"in_progress", "closed"}),
    "closed": frozenset(),
}
"""Allowed moves: open → in_progress → done → closed, and done → in_progress (reopened)."""
CODE_PREFIX: Final = "M-"
CODE_DIGITS: Final = 4
MAX_DESCRIPTION: Final = 2000
MAX_OWNER: Final = 128
MAX_EVIDENCE: Final = 500
"""Longest evidence reference (a file name, URL or document id)."""
_CODE = re.compile(r"^M-(\d{4,})$")


class MeasureError(ValueError):
    """A measure that cannot be recorded or changed; `field` names the offending part."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.message = message
        self.field = field


def format_code(number: int) -> str:
    """The code of the platform's `number`-th measure: M-0001, M-0002, … (wider past 9999)."""
    if number < 1:
        raise ValueError(f"a measure number starts at 1, got {number}")
    return f"{CODE_PREFIX}{number:0{CODE_DIGITS}d}"


def code_number(code: str) -> int | None:
    """The number in a measure code (None when it is not one)."""
    m = _CODE.match(code)
    return None if m is None else int(m.group(1))


def next_code(existing: Iterable[str]) -> str:
    """The code after the highest of the platform's existing codes."""
    numbers = [n for n in (code_number(c) for c in existing) if n is not None]
    return format_code(max(numbers, default=0) + 1)


def _text(value: str, field: str, limit: int) -> str:
    cleaned = value.strip()
    if not 1 <= len(cleaned) <= limit:
        raise MeasureError(f"give 1 to {limit} characters", field)
    return cleaned


def check_area(area: str) -> str:
    """The area, if it is one of the catalogue's areas."""
    if area not in AREAS:
        raise MeasureError(f"expected one of {', '.join(AREAS)}, got {area!r}", "area")
    return area


def check_description(description: str) -> str:
    """The description, stripped, 1 to 2000 characters."""
    return _text(description, "description", MAX_DESCRIPTION)


def check_owner(owner: str) -> str:
    """The owner, stripped, 1 to 128 characters."""
    return _text(owner, "owner", MAX_OWNER)


def check_evidence(reference: str) -> str:
    """An evidence reference, stripped, 1 to 500 characters."""
    return _text(reference, "evidence", MAX_EVIDENCE)


def check_requirements(ids: Iterable[str], catalogue: Sequence[Requirement]) -> list[str]:
    """The requirement ids, de-duplicated in order, each of them in the catalogue."""
    known = {r.id for r in catalogue}
    out: list[str] = []
    for rid in ids:
        rid = rid.strip()
        if rid not in known:
            raise MeasureError(f"unknown requirement {rid!r}", "requirement_ids")
        if rid not in out:
            out.append(rid)
    return out


def check_status(status: str) -> str:
    """The status, if it is a measure status."""
    if status not in MEASURE_STATUSES:
        raise MeasureError(
            f"expected one of {', '.join(MEASURE_STATUSES)}, got {status!r}", "status"
        )
    return status


def can_move(current: str, new: str) -> bool:
    """Whether a measure may go from `current` to `new`."""
    return new in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, new: str) -> None:
    """Raise MeasureError (field ``status``) unless `current` → `new` is allowed."""
    check_status(new)
    if not can_move(current, new):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none (closed)"
        raise MeasureError(
            f"cannot go from {current} to {new}; allowed from {current}: {allowed}", "status"
        )


def blocking_requirements(
    measure_requirement_ids: Iterable[str],
    catalogue: Sequence[Requirement],
    latest_statuses: Mapping[str, str] | None,
) -> list[str]:
    """Linked requirements that keep the measure from closing, in the measure's order.

    Every linked requirement (automated, configuration or attested) must be ``pass`` in the
    latest audit run after the measure was created; with no such run (None), each blocks.
    Ids not in the catalogue block too (the catalogue changed since the measure was made).
    """
    known = {r.id for r in catalogue}
    statuses = latest_statuses or {}
    out: list[str] = []
    for rid in measure_requirement_ids:
        if rid in out:
            continue
        if rid not in known or statuses.get(rid) != Status.PASS.value:
            out.append(rid)
    return out


def is_overdue(due_date: date, status: str, today: date) -> bool:
    """Whether a measure not closed is past its due date (done but not yet confirmed by a
    passing audit run still counts: the rectification is not verified)."""
    return status != "closed" and due_date < today


def days_overdue(due_date: date, status: str, today: date) -> int:
    """Days since the due date of an overdue measure (0 when it is not overdue)."""
    return (today - due_date).days if is_overdue(due_date, status, today) else 0
