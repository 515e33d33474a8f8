"""Contact decisions: may one account follow, message, comment on, mention, befriend or tip
another."""

from __future__ import annotations

from dataclasses import dataclass

from qinglang.guard.decision import ALLOW, Decision
from qinglang.guard.profile import CONTACT_ACTIONS, Profile


@dataclass(frozen=True, slots=True)
class Relation:
    """What links the sender to the recipient."""

    mutual: bool = False
    """Each follows the other (friends)."""
    approved_contact: bool = False
    """The recipient's guardian approved contact from this sender."""
    blocked: bool = False
    """Either side blocked the other."""
    guardian: bool = False
    """The sender is a verified guardian of the recipient."""


STRANGERS = Relation()


class UnknownAction(ValueError):
    """An action that is not one of `CONTACT_ACTIONS`."""


def contact_decision(
    action: str, sender: Profile, recipient: Profile, relation: Relation
) -> Decision:
    """May `sender` take `action` towards `recipient`, given how they are related."""
    stranger = recipient.stranger_contact.get(action)
    if stranger is None:
        raise UnknownAction(
            f"unknown contact action {action!r}; expected one of {', '.join(CONTACT_ACTIONS)}"
        )
    if sender.restricted_contact is not None and recipient.is_minor:
        return sender.restricted_contact
    if relation.blocked:
        return recipient.blocked_contact
    if action == "gift" and not sender.gift_sending.allowed:
        return sender.gift_sending
    if relation.mutual or relation.approved_contact or relation.guardian:
        return ALLOW
    return stranger
