"""Collection decisions: may a category of personal information be collected for a purpose.

Consent state is an input here; the consent ledger that proves it is its own package.
"""

from __future__ import annotations

from typing import Literal, get_args

from qinglang.guard.consents import NO_CONSENT, ConsentState
from qinglang.guard.decision import ALLOW, Decision, decide
from qinglang.guard.profile import Profile

Category = Literal[
    "location",
    "face",
    "biometric",
    "contacts",
    "voice",
    "identity_number",
    "financial",
    "health",
    "browsing",
    "other",
]
CATEGORIES: tuple[str, ...] = get_args(Category)


class UnknownCategory(ValueError):
    """A personal-information category the guard does not know."""


def consent_state(profile: Profile, category: str, purpose: str) -> ConsentState:
    """The consent state for a category and purpose from the profile's consent snapshot.

    Each stored consent is given for one purpose and one category, so a valid one is separate
    consent by construction; it counts as the guardian's when the guardian gave it.
    """
    return profile.consent_states.get((purpose, category), NO_CONSENT)


MEMO_SIZE = 64
"""Decisions kept per profile (purposes are the platform's strings: the memo is bounded)."""


def collection_decision(
    profile: Profile, category: str, purpose: str, consent: ConsentState | None = None
) -> Decision:
    """May `category` be collected from this account for `purpose`, given the consents on record
    (`consent`, or when None the profile's consent snapshot).

    Decisions are memoised per profile by (category, purpose, consent): a profile is rebuilt
    whenever its rules, settings or consents change, so the memo never outlives them.
    """
    memo = profile.collection_memo
    key = (category, purpose, consent)
    hit = memo.get(key)
    if hit is not None:
        return hit
    if consent is None:
        consent = consent_state(profile, category, purpose)
    d = _collection(profile, category, purpose, consent)
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = d
    return d


def _collection(profile: Profile, category: str, purpose: str, consent: ConsentState) -> Decision:
    if category not in CATEGORIES:
        raise UnknownCategory(
            f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}"
        )
    rules = profile.rules
    forbidden = rules.get("collection.forbidden_purposes")
    if forbidden is not None and isinstance(forbidden.value, list) and purpose in forbidden.value:
        return decide("deny", forbidden)
    sens = rules.get("collection.sensitive_categories")
    sensitive = sens is not None and isinstance(sens.value, list) and category in sens.value
    sep = rules.get("collection.separate_consent_required")
    missing = []
    guardian = rules.get("collection.guardian_consent_required")
    if guardian is not None and guardian.value is True:
        if not consent.guardian:
            missing.append(guardian)
        if sensitive and sep is not None and sep.value is True and not consent.separate:
            missing.append(sep)
        return decide("needs_guardian", *missing) if missing else ALLOW
    if sensitive and sep is not None and sep.value is True and not consent.separate:
        return decide("deny", sep, limits={"needs": "separate_consent"})
    return ALLOW
