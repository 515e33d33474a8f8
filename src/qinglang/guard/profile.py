"""Protection profile: what applies to one account, from its age, age source, pack and guardian.

A profile is built once per account (and rebuilt when its age, settings or pack change) so that
decisions on the hot path are dictionary look-ups over precomputed, shared `Decision` objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Literal, get_args

from qinglang.age import AgeSource, age_at, band_for
from qinglang.guard.consents import STRANGER_MESSAGES, UNTRACKED, ConsentState, ConsentView
from qinglang.guard.decision import ALLOW, Decision, decide
from qinglang.policy import AUDIENCES, Policy, PolicyError, Rule, RuleValue, is_looser
from qinglang.policy.loader import window_minutes

ContactAction = Literal["follow", "dm", "comment", "mention", "friend_request", "gift"]
CONTACT_ACTIONS: tuple[str, ...] = get_args(ContactAction)
"""Actions one account can take towards another."""

_CONTACT_TOPIC = {
    "follow": "contact.follow_from_non_friends",
    "dm": "contact.dm_from_non_friends",
    "comment": "contact.comment_from_non_friends",
    "mention": "contact.mention_from_non_friends",
    "friend_request": "contact.friend_request_from_non_friends",
    "gift": "contact.gift_from_non_friends",
}

PUBLIC = AUDIENCES.index("public")


class SettingsError(ValueError):
    """Guardian settings that name an unknown setting, a bad value or loosen a legal floor."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


def apply_settings(table: Mapping[str, Rule], settings: Mapping[str, RuleValue]) -> dict[str, Rule]:
    """Topic → rule after guardian settings; a floor may be tightened, never loosened."""
    out = dict(table)
    for topic, value in settings.items():
        rule = table.get(topic)
        if rule is None:
            raise SettingsError(f"setting {topic!r} does not apply to this account", topic)
        try:
            changed = Rule.model_validate({**rule.model_dump(), "value": value})
        except ValueError as exc:
            raise SettingsError(
                f"setting {topic!r}: invalid value {value!r}: {exc}", topic
            ) from None
        if rule.binding and is_looser(rule, value):
            raise SettingsError(
                f"setting {topic!r} would loosen legal floor {rule.id} "
                f"({rule.citation.short()}): {rule.value!r} → {value!r}",
                topic,
            )
        out[topic] = changed
    return out


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature of the account as the profile sets it: state, limit and the rule behind it."""

    state: str
    """on, off, needs_guardian or limited"""
    rule_id: str | None = None
    limit: Any = None


@dataclass(frozen=True, slots=True, eq=False)
class Profile:
    """Everything the guard needs about one account, precomputed."""

    account_id: str
    policy: Policy
    age: int | None
    age_source: AgeSource | None
    band: str | None
    is_child: bool
    is_minor: bool
    rules: Mapping[str, Rule]
    """Topic → effective rule (pack, overlay and guardian settings applied)."""
    settings: Mapping[str, RuleValue]
    stranger_contact: Mapping[str, Decision] = field(repr=False)
    """Action → decision for a non-friend who is not blocked and not approved."""
    blocked_contact: Decision = field(repr=False)
    gift_sending: Decision = field(repr=False)
    """Decision for this account sending a gift (payments may be off for its age)."""
    audiences: Mapping[str, int] = field(repr=False)
    """location / face / school / minor_pi → widest audience level allowed."""
    consents: ConsentView = field(default=UNTRACKED, repr=False)
    """The account's valid consents (UNTRACKED when the caller keeps no consent records)."""
    consent_states: Mapping[tuple[str, str], ConsentState] = field(default_factory=dict, repr=False)
    """Purpose × category → consent state, precomputed from `consents` for collection."""
    collection_memo: dict[tuple[str, str, ConsentState | None], Decision] = field(
        default_factory=dict, repr=False
    )
    """Collection decisions already made for this profile (bounded; see collection.py)."""
    restricted_contact: Decision | None = field(default=None, repr=False)
    """While this account is restricted from contacting minors (risk review): the decision for
    any contact it attempts towards a minor."""

    @property
    def needs_guardian_consent(self) -> bool:
        """Processing this account's personal information needs the guardian's consent."""
        r = self.rules.get("collection.guardian_consent_required")
        return r is not None and r.value is True

    def rule(self, topic: str) -> Rule | None:
        """The effective rule for a topic, or None when none applies to this account."""
        return self.rules.get(topic)

    def features(self) -> dict[str, Feature]:
        """The account's features as the profile sets them, for people and reports."""
        out: dict[str, Feature] = {}
        for action in CONTACT_ACTIONS:
            r = self.rules.get(_CONTACT_TOPIC[action])
            d = self.stranger_contact[action]
            state = {"allow": "on", "deny": "off"}.get(d.outcome.value, d.outcome.value)
            out[f"{action}_from_non_friends"] = Feature(state, r.id if r else None)
        disc = self.rules.get("exposure.account_discoverable")
        out["discoverable"] = Feature(
            "off" if disc is not None and disc.value is False else "on", disc.id if disc else None
        )
        for attr in ("location", "face", "school"):
            r = self.rules.get(f"exposure.{attr}_audience")
            out[f"{attr}_display"] = Feature(
                "limited" if r else "on", r.id if r else None, r.value if r else "public"
            )
        out["face_collection"] = self._face_collection()
        out["live_streaming"] = self._live()
        out["payments"] = self._payments()
        out["playtime"] = self._playtime()
        return out

    def _face_collection(self) -> Feature:
        r = self.rules.get("collection.guardian_consent_required")
        if r is not None and r.value is True:
            return Feature("needs_guardian", r.id)
        sep = self.rules.get("collection.separate_consent_required")
        return Feature("needs_consent" if sep and sep.value else "on", sep.id if sep else None)

    def _live(self) -> Feature:
        r = self.rules.get("live.publisher_allowed")
        if r is not None and r.value is False:
            return Feature("off", r.id)
        real = self.rules.get("live.publisher_requires_verified_identity")
        if real is not None and real.value is True and self.age_source is not AgeSource.VERIFIED:
            return Feature("needs_verification", real.id)
        g = self.rules.get("live.publisher_needs_guardian")
        if g is not None and g.value is True:
            return Feature("needs_guardian", g.id)
        return Feature("on")

    def _payments(self) -> Feature:
        r = self.rules.get("spending.allowed")
        if r is not None and r.value is False:
            return Feature("off", r.id)
        caps = {
            k: self.rules[t].value
            for k, t in (
                ("single_cap_fen", "spending.single_cap_fen"),
                ("daily_cap_fen", "spending.daily_cap_fen"),
                ("monthly_cap_fen", "spending.monthly_cap_fen"),
            )
            if t in self.rules
        }
        return Feature("limited" if caps else "on", r.id if r else None, caps or None)

    def _playtime(self) -> Feature:
        r = self.rules.get("playtime.daily_minutes")
        if r is None:
            return Feature("on")
        limit = {
            "daily_minutes": r.value,
            "night_windows": self.rules["playtime.night_windows"].value
            if "playtime.night_windows" in self.rules
            else None,
            "game_windows": self.rules["game.allowed_windows"].value
            if "game.allowed_windows" in self.rules
            else None,
            "game_days": self.rules["game.allowed_days"].value
            if "game.allowed_days" in self.rules
            else None,
        }
        return Feature("limited", r.id, limit)


def _threshold(policy: Policy, topic: str) -> int:
    v = policy.require(topic).value
    if not isinstance(v, int):
        raise PolicyError(f"pack {policy.meta.id}: {topic} must be a whole number of years")
    return v


def build_profile(
    policy: Policy,
    account_id: str,
    birth_date: date | None,
    age_source: AgeSource | str | None,
    at: datetime,
    settings: Mapping[str, RuleValue] | None = None,
    consents: ConsentView = UNTRACKED,
    restricted: bool = False,
) -> Profile:
    """Build an account's protection profile at an instant (age counted in the pack's zone).

    With tracked `consents`, a child (guardian consent required) whose guardian has not validly
    consented to messages from non-friends gets none, whatever the settings say. A `restricted`
    account (risk review) gets the pack's `contact.restricted_sender` outcome towards minors
    (guardian settings do not reach it).
    """
    counting = policy.rule("age.counting", None)
    day_after = counting is not None and counting.value == "day_after_birthday"
    age = (
        None
        if birth_date is None
        else age_at(birth_date, at, policy.tz, counts_from_day_after=day_after)
    )
    source = None if age_source is None else AgeSource(age_source)
    child_below = _threshold(policy, "age.child_below")
    minor_below = _threshold(policy, "age.minor_below")
    is_child = age is not None and age < child_below
    is_minor = age is not None and age < minor_below
    settings = dict(settings or {})
    rules = apply_settings(policy.table(age), settings)

    content_band = band_for(age, policy.bands("content")) if "content" in policy.bandsets else None
    band = None if content_band is None else content_band.id

    stranger: dict[str, Decision] = {}
    for action, topic in _CONTACT_TOPIC.items():
        r = rules.get(topic)
        stranger[action] = ALLOW if r is None or r.value == "allow" else decide(str(r.value), r)
    guardian_rule = rules.get("collection.guardian_consent_required")
    if (
        consents.tracked
        and guardian_rule is not None
        and guardian_rule.value is True
        and stranger["dm"].outcome.value != "deny"
        and not consents.allows(*STRANGER_MESSAGES)
    ):
        stranger["dm"] = decide("deny", guardian_rule, limits={"needs": "guardian_consent"})
    blocked_rule = rules.get("contact.blocked_outcome")
    blocked = decide(str(blocked_rule.value), blocked_rule) if blocked_rule else decide("deny")
    pay = rules.get("spending.allowed")
    gift_sending = decide("deny", pay) if pay is not None and pay.value is False else ALLOW
    audiences = {
        name: AUDIENCES.index(str(rules[f"exposure.{name}_audience"].value))
        if f"exposure.{name}_audience" in rules
        else PUBLIC
        for name in ("location", "face", "school", "minor_pi")
    }
    restricted_contact: Decision | None = None
    if restricted:
        r = policy.rule("contact.restricted_sender", age)
        restricted_contact = decide(str(r.value), r) if r is not None else decide("deny")
        if restricted_contact.outcome.value == "allow":
            restricted_contact = None
    return Profile(
        account_id=account_id,
        policy=policy,
        age=age,
        age_source=source,
        band=band,
        is_child=is_child,
        is_minor=is_minor,
        rules=rules,
        settings=settings,
        stranger_contact=stranger,
        blocked_contact=blocked,
        gift_sending=gift_sending,
        audiences=audiences,
        consents=consents,
        consent_states=consents.states(),
        restricted_contact=restricted_contact,
    )


def minutes_of(profile: Profile, topic: str) -> frozenset[int]:
    """Minutes of the day covered by a window rule of this profile (empty if none applies)."""
    r = profile.rules.get(topic)
    if r is None or not isinstance(r.value, list):
        return frozenset()
    return _cached_minutes(tuple(r.value))


@lru_cache(maxsize=256)
def _cached_minutes(windows: tuple[str, ...]) -> frozenset[int]:
    return window_minutes(windows)
