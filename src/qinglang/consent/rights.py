"""Data-rights requests, pure part: kinds, statuses and transitions, who may ask, due dates,
corrections and pseudonymous references to other accounts.

A guardian with an active verified link to the child, or the person themself from the pack's
``consent.self_from_age`` (14 in ``cn``), may ask to access and copy, correct, delete, withdraw
consent or cancel the account. Each request is due ``rights.response_days`` after it was
received; a refusal carries a written reason (未成年人网络保护条例 art. 34).

Statuses: ``received → in_progress → completed | refused``; a received request may also be
completed or refused directly. Completed and refused requests are closed for good.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from qinglang.guard import SettingsError, build_profile
from qinglang.policy import Policy, PolicyError, Rule

KINDS: Final = ("access", "correction", "deletion", "withdrawal", "cancellation")
STATUSES: Final = ("received", "in_progress", "completed", "refused")
REQUESTERS: Final = ("guardian", "self")
OPEN: Final = frozenset({"received", "in_progress"})
CLOSED: Final = frozenset({"completed", "refused"})
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "received": frozenset({"in_progress", "completed", "refused"}),
    "in_progress": frozenset({"completed", "refused"}),
    "completed": frozenset(),
    "refused": frozenset(),
}
CORRECTABLE: Final = ("birth_date", "sex", "settings")
"""Fields a correction request may change."""
SEXES: Final = ("M", "F")
MAX_REASON: Final = 4000

EXPORT_FORMAT: Final = "qinglang.access-export"
EXPORT_VERSION: Final = 1
"""Version of the access export's layout; bumped when a field changes meaning or moves."""

PSEUDONYM_PREFIX: Final = "acct_"


class RightsError(ValueError):
    """A request that cannot be made or moved as asked.

    `field` names the request field, `status` is the HTTP status an API answers with, and
    `rule` is the pack rule behind the refusal, when there is one.
    """

    def __init__(
        self, message: str, field: str, status: int = 422, rule: Rule | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.status = status
        self.rule = rule


def _whole_days(policy: Policy, topic: str) -> tuple[int, Rule]:
    rule = policy.require(topic)
    v = rule.value
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise PolicyError(f"pack {policy.meta.id}: {topic} must be a whole number of days", rule.id)
    return v, rule


def response_days(policy: Policy) -> int:
    """Days within which a request is to be answered (pack rule ``rights.response_days``)."""
    return _whole_days(policy, "rights.response_days")[0]


def due_date(received_at: datetime, policy: Policy) -> datetime:
    """When a request received at `received_at` is due."""
    if received_at.tzinfo is None:
        raise ValueError("due_date needs an aware datetime")
    return received_at + timedelta(days=response_days(policy))


def is_overdue(status: str, due_at: datetime, at: datetime) -> bool:
    """Whether a request is still open after its due date."""
    return status in OPEN and at > due_at


def check_kind(kind: str) -> None:
    """Raise RightsError (field ``kind``) unless `kind` is a known request kind."""
    if kind not in KINDS:
        raise RightsError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", "kind")


def check_transition(current: str, new: str, reason: str | None) -> str | None:
    """Check a status change; return the refusal reason, stripped (None unless refused).

    A move the state machine does not allow is a 409 on ``status``; a refusal without a
    written reason is a 422 on ``reason`` (条例 art. 34: refusals are written, with reasons).
    """
    if new not in STATUSES:
        raise RightsError(f"status must be one of {', '.join(STATUSES)}, got {new!r}", "status")
    allowed = TRANSITIONS.get(current, frozenset())
    if new not in allowed:
        if current in CLOSED:
            why = f"the request is already {current}"
        else:
            why = f"from {current} a request can go to {', '.join(sorted(allowed))}"
        raise RightsError(f"cannot move from {current} to {new}: {why}", "status", 409)
    if new != "refused":
        if reason is not None and reason.strip():
            raise RightsError("a reason is given only with status refused", "reason")
        return None
    text = (reason or "").strip()
    if not text:
        raise RightsError(
            "a refusal needs a written reason for the requester (未成年人网络保护条例 art. 34)",
            "reason",
        )
    if len(text) > MAX_REASON:
        raise RightsError(f"reason is longer than {MAX_REASON} characters", "reason")
    return text


def profile_age(
    policy: Policy, birth_date: date | None, age_source: str | None, at: datetime
) -> int | None:
    """The age the account's protection profile gives at `at` (None when unknown)."""
    return build_profile(policy, "", birth_date, age_source, at).age


def check_requester(
    policy: Policy, requester: str, *, age: int | None, guardian_linked: bool | None
) -> None:
    """Raise RightsError unless this requester may ask about the account.

    A guardian needs an active verified link (`guardian_linked`); the person themself needs a
    known age of at least ``consent.self_from_age``.
    """
    if requester not in REQUESTERS:
        raise RightsError(
            f"requester must be one of {', '.join(REQUESTERS)}, got {requester!r}", "requester"
        )
    if requester == "guardian":
        if guardian_linked is None:
            raise RightsError("a guardian request names the guardian", "guardian")
        if not guardian_linked:
            raise RightsError(
                "the guardian has no active verified link to this account", "guardian", 403
            )
        return
    if guardian_linked is not None:
        raise RightsError("a request by the person themself names no guardian", "guardian")
    rule = policy.require("consent.self_from_age")
    threshold = rule.value
    if not isinstance(threshold, int) or isinstance(threshold, bool):
        raise PolicyError(f"pack {policy.meta.id}: consent.self_from_age must be whole years")
    if age is None:
        raise RightsError(
            "the account's age is unknown, so it cannot ask for itself; its guardian can",
            "requester",
            403,
            rule,
        )
    if age < threshold:
        raise RightsError(
            f"a person under {threshold} exercises these rights through a guardian "
            f"({rule.id}: {rule.citation.short()})",
            "requester",
            403,
            rule,
        )


@dataclass(frozen=True, slots=True)
class Correction:
    """The changes of a correction request; a field is set only when it is to change."""

    fields: tuple[str, ...]
    birth_date: date | None = None
    sex: str | None = None
    settings: dict[str, Any] | None = None


def parse_correction(details: Mapping[str, Any] | None, at: datetime) -> Correction:
    """Validate a correction's details (field → new value); errors name ``details.<field>``."""
    if not details:
        raise RightsError(
            f"a correction names at least one field to change: {', '.join(CORRECTABLE)}",
            "details",
        )
    unknown = sorted(k for k in details if k not in CORRECTABLE)
    if unknown:
        raise RightsError(
            f"{unknown[0]!r} cannot be corrected here; correctable: {', '.join(CORRECTABLE)}",
            f"details.{unknown[0]}",
        )
    birth: date | None = None
    if "birth_date" in details:
        raw = details["birth_date"]
        try:
            birth = date.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            birth = None
        if birth is None:
            raise RightsError("birth_date must be a date (YYYY-MM-DD)", "details.birth_date")
        if birth > at.date() or birth.year < 1900:
            raise RightsError("birth_date is in the future or before 1900", "details.birth_date")
    sex = details.get("sex")
    if "sex" in details and sex not in SEXES:
        raise RightsError(f"sex must be one of {', '.join(SEXES)}", "details.sex")
    settings = details.get("settings")
    if "settings" in details and not isinstance(settings, dict):
        raise RightsError("settings must be an object of setting → value", "details.settings")
    return Correction(
        fields=tuple(f for f in CORRECTABLE if f in details),
        birth_date=birth,
        sex=sex,
        settings=None if settings is None else dict(settings),
    )


def check_corrected_settings(
    policy: Policy,
    birth_date: date | None,
    age_source: str | None,
    settings: Mapping[str, Any],
    at: datetime,
) -> None:
    """Raise RightsError if the settings after a correction would loosen a floor or not apply."""
    try:
        build_profile(policy, "", birth_date, age_source, at, settings)
    except SettingsError as exc:
        raise RightsError(str(exc), f"details.settings.{exc.setting}") from None


def pseudonym(salt: str, platform_id: int, account_id: int) -> str:
    """A stable reference to another account that reveals nothing about it without the salt.

    HMAC-SHA256 keyed with a secret per-platform salt over ``platform:account``; without the
    salt, the small integer ids behind it cannot be recovered by trying them all.
    """
    mac = hmac.new(salt.encode("utf-8"), f"{platform_id}:{account_id}".encode(), hashlib.sha256)
    return PSEUDONYM_PREFIX + mac.hexdigest()[:24]
