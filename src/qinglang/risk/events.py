"""Platform events the risk engine reads, and their validation.

An event is one thing an account did: followed or unfollowed someone, sent a message, was shown
a content item (recommended, searched, viewed), sent a gift or tip, viewed a profile, blocked or
reported someone. Events carry the platform's own id, which makes intake idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

EventKind = Literal[
    "follow", "unfollow", "message", "impression", "gift", "profile_view", "block", "report"
]
EVENT_KINDS: Final[tuple[str, ...]] = get_args(EventKind)
ImpressionSurface = Literal["recommended", "searched", "viewed"]
IMPRESSION_SURFACES: Final[tuple[str, ...]] = get_args(ImpressionSurface)

MAX_ID: Final = 200
MAX_TEXT_CHARS: Final = 20_000
"""Longer message texts are refused (the platform should split or truncate them)."""

# Which fields each kind needs besides id, kind, at and actor.
_NEEDS: Final[Mapping[str, tuple[str, ...]]] = {
    "follow": ("target",),
    "unfollow": ("target",),
    "message": ("target", "text"),
    "impression": ("item", "owner", "surface"),
    "gift": ("target", "amount_fen"),
    "profile_view": ("target",),
    "block": ("target",),
    "report": ("target",),
}


class EventError(ValueError):
    """An event that cannot be accepted; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Event:
    """One validated platform event."""

    id: str
    kind: str
    at: datetime
    """Aware, in UTC."""
    actor: str
    """The account that acted (sender, follower, viewer, gifter, blocker, reporter)."""
    target: str | None = None
    """The account acted upon (recipient, followee, ...); for an impression, None."""
    text: str | None = None
    item: str | None = None
    """For an impression: the content item shown."""
    owner: str | None = None
    """For an impression: the account that owns the item shown."""
    surface: str | None = None
    amount_fen: int | None = None
    delivered: bool | None = None
    """For a message: False when the platform blocked it (an attempt); None or True: delivered."""

    @property
    def counterpart(self) -> str | None:
        """The other account involved: the target, or the owner of an impression's item."""
        return self.target if self.target is not None else self.owner


def _id(raw: Mapping[str, Any], field: str, required: bool) -> str | None:
    v = raw.get(field)
    if v is None:
        if required:
            raise EventError(field, "is required")
        return None
    if not isinstance(v, str) or not 1 <= len(v) <= MAX_ID:
        raise EventError(field, f"must be a string of 1 to {MAX_ID} characters")
    return v


def _instant(v: Any) -> datetime:
    if isinstance(v, datetime):
        at = v
    elif isinstance(v, str):
        try:
            at = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise EventError("at", f"not an ISO 8601 instant: {v[:40]!r}") from None
    elif isinstance(v, int | float) and not isinstance(v, bool):
        try:
            at = datetime.fromtimestamp(v, UTC)
        except (OverflowError, OSError, ValueError):
            raise EventError("at", "epoch seconds out of range") from None
    else:
        raise EventError("at", "is required (ISO 8601 with offset, or epoch seconds)")
    if at.tzinfo is None or at.utcoffset() is None:
        raise EventError("at", "needs a UTC offset")
    return at.astimezone(UTC)


def parse_event(raw: Any) -> Event:
    """Validate one event object; EventError names the first bad field."""
    if not isinstance(raw, Mapping):
        raise EventError("event", "must be a JSON object")
    unknown = set(raw) - {
        "id",
        "kind",
        "at",
        "actor",
        "target",
        "text",
        "item",
        "owner",
        "surface",
        "amount_fen",
        "delivered",
    }
    if unknown:
        raise EventError(sorted(unknown)[0], "unknown field")
    event_id = _id(raw, "id", True)
    kind = raw.get("kind")
    if kind not in EVENT_KINDS:
        raise EventError("kind", f"must be one of {', '.join(EVENT_KINDS)}")
    at = _instant(raw.get("at"))
    actor = _id(raw, "actor", True)
    needs = _NEEDS[kind]
    target = _id(raw, "target", "target" in needs)
    item = _id(raw, "item", "item" in needs)
    owner = _id(raw, "owner", "owner" in needs)
    text = raw.get("text")
    if "text" in needs or text is not None:
        if not isinstance(text, str):
            raise EventError("text", "must be a string")
        if len(text) > MAX_TEXT_CHARS:
            raise EventError("text", f"longer than {MAX_TEXT_CHARS} characters")
    surface = raw.get("surface")
    if ("surface" in needs or surface is not None) and surface not in IMPRESSION_SURFACES:
        raise EventError("surface", f"must be one of {', '.join(IMPRESSION_SURFACES)}")
    amount = raw.get("amount_fen")
    bad_amount = not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0
    if ("amount_fen" in needs or amount is not None) and bad_amount:
        raise EventError("amount_fen", "must be a positive whole number of fen")
    delivered = raw.get("delivered")
    if delivered is not None and (kind != "message" or not isinstance(delivered, bool)):
        raise EventError("delivered", "is true or false, for a message only")
    if target is not None and target == actor:
        raise EventError("target", "must differ from actor")
    assert event_id is not None and actor is not None
    return Event(
        event_id,
        kind,
        at,
        actor,
        target,
        text,
        item,
        owner,
        surface,
        amount if isinstance(amount, int) else None,
        delivered,
    )


def event_to_dict(e: Event) -> dict[str, Any]:
    """The JSON form of an event (the inverse of parse_event; None fields left out)."""
    out: dict[str, Any] = {"id": e.id, "kind": e.kind, "at": e.at.isoformat(), "actor": e.actor}
    for name in ("target", "text", "item", "owner", "surface", "amount_fen", "delivered"):
        v = getattr(e, name)
        if v is not None:
            out[name] = v
    return out
