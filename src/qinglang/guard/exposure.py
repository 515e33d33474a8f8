"""Exposure decisions: may an item be recommended, searched or trend for a viewer; may an
account's location, face or school be shown; and the batch filter over a candidate list.

Audience levels (narrowest first): nobody < owner (the account and its guardians) < friends
< followers < public. A viewer's level towards an owner is the narrowest that includes them; an
item or attribute is visible when the viewer's level is within the allowed audience.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from qinglang.guard.consents import PUBLISH, RECOMMEND
from qinglang.guard.decision import ALLOW, Decision, decide
from qinglang.guard.profile import Profile
from qinglang.policy import AUDIENCES, Policy

NOBODY, OWNER, FRIENDS, FOLLOWERS, PUBLIC = range(len(AUDIENCES))
PUSH_WITHOUT_RECOMMEND_CONSENT = FOLLOWERS
"""How far the platform may push a child's content without the guardian's consent to recommend
it to other users: to the people who chose to follow the child (the audit judges the same)."""
Surface = Literal["recommend", "search", "trending", "profile"]
Attribute = Literal["location", "face", "school"]
SURFACES: tuple[str, ...] = get_args(Surface)
ATTRIBUTES: tuple[str, ...] = get_args(Attribute)


class UnknownSurface(ValueError):
    """A surface or attribute name the guard does not know."""


def audience_level(name: str) -> int:
    """Numeric level of an audience name (nobody … public)."""
    try:
        return AUDIENCES.index(name)
    except ValueError:
        raise UnknownSurface(
            f"unknown audience {name!r}; expected one of {list(AUDIENCES)}"
        ) from None


@dataclass(frozen=True, slots=True)
class ItemFlags:
    """What is known about a content item that matters for exposure."""

    owner_id: str
    minor_pi_audience: int | None = None
    """Set when the item shows a minor's personal information: the widest audience allowed."""
    unsuitable_below: int | None = None
    """Set when the item may harm minors: viewers under this age may not be shown it."""
    commercial: bool = False
    push_audience: int | None = None
    """Set for content showing a child whose consents are tracked: the widest audience the
    platform may push it to (recommend, search, trending), from the guardian's consent."""


@dataclass(slots=True)
class Viewer:
    """A viewer and their social graph, as the exposure filter needs it."""

    profile: Profile
    friends: Collection[str] = frozenset()
    following: Collection[str] = frozenset()
    wards: Collection[str] = frozenset()
    """Accounts this viewer is a verified guardian of."""

    def level_towards(self, owner_id: str) -> int:
        """The narrowest audience level that includes this viewer for that owner."""
        if owner_id == self.profile.account_id or owner_id in self.wards:
            return OWNER
        if owner_id in self.friends:
            return FRIENDS
        if owner_id in self.following:
            return FOLLOWERS
        return PUBLIC


@dataclass(slots=True)
class ExposureIndex:
    """Flagged items by id; items not in the index carry no restriction."""

    policy: Policy
    flags: dict[str, ItemFlags] = field(default_factory=dict)

    @staticmethod
    def default_minor_pi_level(owner: Profile) -> int:
        """Audience of content showing a minor when the guardian consented to nothing wider.

        The owner's own (guardian-tightened) value when the owner is the minor; the pack's
        value for minors when an adult posts content showing a minor.
        """
        if owner.is_minor:
            return owner.audiences["minor_pi"]
        rule = owner.policy.require("exposure.minor_pi_audience", 0)
        return AUDIENCES.index(str(rule.value))

    def flag_minor_pi(self, item_id: str, owner: Profile, consented_audience: str | None) -> None:
        """Record that an item shows a minor's personal information, with the consented audience."""
        level, push = self.consented_levels(
            owner, None if consented_audience is None else audience_level(consented_audience)
        )
        old = self.flags.get(item_id, ItemFlags(owner.account_id))
        self.flags[item_id] = ItemFlags(
            owner.account_id, level, old.unsuitable_below, old.commercial, push
        )

    @staticmethod
    def consented_levels(owner: Profile, item_audience: int | None) -> tuple[int, int | None]:
        """(audience, push audience) of content showing the owner, from the owner's consents.

        For a child whose consents are tracked, the guardian's valid consent to publish the
        content bounds who may see it (without one, the pack's default), and the consent to
        recommend it to other users bounds where the platform may push it (without one, no
        further than followers). `item_audience` (the item's own
        setting) can narrow both, never widen them. Otherwise the item's setting or the default.
        """
        default = ExposureIndex.default_minor_pi_level(owner)
        if not (owner.consents.tracked and owner.needs_guardian_consent):
            return (default if item_audience is None else item_audience), None
        pub = owner.consents.grant(*PUBLISH)
        rec = owner.consents.grant(*RECOMMEND)
        level = pub.audience if pub is not None and pub.audience is not None else default
        if item_audience is not None:
            level = min(level, item_audience)
        if rec is not None and rec.audience is not None:
            return level, min(level, rec.audience)
        # Without consent to recommend it to other users, the platform pushes the content no
        # further than the people who chose to follow the child.
        return level, min(level, PUSH_WITHOUT_RECOMMEND_CONSENT)

    def put(self, item_id: str, flags: ItemFlags) -> None:
        """Set an item's flags."""
        self.flags[item_id] = flags


def _minor_rule_decision(viewer: Profile, topic: str) -> Decision | None:
    r = viewer.rules.get(topic)
    if r is not None and r.value is False:
        return decide("deny", r)
    return None


def exposure_decision(viewer: Viewer, flags: ItemFlags | None, surface: str) -> Decision:
    """May this item be shown to this viewer on this surface (recommend/search/trending/profile)."""
    if surface not in SURFACES:
        raise UnknownSurface(f"unknown surface {surface!r}; expected one of {', '.join(SURFACES)}")
    if flags is None:
        return ALLOW
    p = viewer.profile
    if flags.minor_pi_audience is not None:
        cap = flags.minor_pi_audience
        if surface != "profile" and flags.push_audience is not None:
            cap = min(cap, flags.push_audience)
        level = PUBLIC if surface == "trending" else viewer.level_towards(flags.owner_id)
        if level > cap:
            r = p.policy.require("exposure.minor_pi_audience", 0)
            return decide("deny", r, limits={"audience": AUDIENCES[cap]})
    if flags.unsuitable_below is not None and (p.age is None or p.age < flags.unsuitable_below):
        d = _minor_rule_decision(p, "exposure.unsuitable_allowed")
        if d is not None:
            return d
    if flags.commercial and surface in ("recommend", "trending"):
        d = _minor_rule_decision(p, "exposure.automated_marketing_allowed")
        if d is not None:
            return d
    return ALLOW


def filter_candidates(
    viewer: Viewer, candidates: Sequence[str], index: ExposureIndex, surface: str = "recommend"
) -> list[str]:
    """The candidates this viewer may be shown, order kept (fast path: no flagged candidate)."""
    flags = index.flags
    hits = flags.keys() & candidates if flags else ()
    if not hits:
        return list(candidates)
    denied = {c for c in hits if not exposure_decision(viewer, flags[c], surface).allowed}
    if not denied:
        return list(candidates)
    return [c for c in candidates if c not in denied]


def explain_filtered(
    viewer: Viewer, candidates: Iterable[str], index: ExposureIndex, surface: str = "recommend"
) -> dict[str, Decision]:
    """The decision for each candidate that the filter removes, by item id."""
    out: dict[str, Decision] = {}
    for c in candidates:
        f = index.flags.get(c)
        if f is not None:
            d = exposure_decision(viewer, f, surface)
            if not d.allowed:
                out[c] = d
    return out


def attribute_decision(owner: Profile, attribute: str, level: int) -> Decision:
    """May the owner's location, face or school be shown to a viewer at this audience level."""
    if attribute not in ATTRIBUTES:
        raise UnknownSurface(
            f"unknown attribute {attribute!r}; expected one of {', '.join(ATTRIBUTES)}"
        )
    if level <= owner.audiences[attribute]:
        return ALLOW
    r = owner.rules[f"exposure.{attribute}_audience"]
    return decide("deny", r, limits={"audience": r.value})


def account_decision(owner: Profile, level: int) -> Decision:
    """May the owner's account be recommended or shown in search to a viewer at this level."""
    r = owner.rules.get("exposure.account_discoverable")
    if r is None or r.value is not False or level <= FRIENDS:
        return ALLOW
    return decide("deny", r)
