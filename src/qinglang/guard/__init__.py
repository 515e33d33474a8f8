"""Decisions the platform asks for at the moment of action: contact, exposure, collection,
spending and playtime. Pure functions over profiles and relationships; no I/O."""

from qinglang.guard.calendar import CalendarRangeError, DayKind, day_kind
from qinglang.guard.collection import (
    CATEGORIES,
    UnknownCategory,
    collection_decision,
    consent_state,
)
from qinglang.guard.consents import UNTRACKED, ConsentState, ConsentView, Grant
from qinglang.guard.contact import STRANGERS, Relation, UnknownAction, contact_decision
from qinglang.guard.decision import ALLOW, Decision, Outcome, Reason, decide
from qinglang.guard.exposure import (
    ATTRIBUTES,
    SURFACES,
    ExposureIndex,
    ItemFlags,
    UnknownSurface,
    Viewer,
    account_decision,
    attribute_decision,
    audience_level,
    explain_filtered,
    exposure_decision,
    filter_candidates,
)
from qinglang.guard.playtime import KINDS, BadPlaytimeRequest, playtime_decision
from qinglang.guard.profile import (
    CONTACT_ACTIONS,
    Feature,
    Profile,
    SettingsError,
    apply_settings,
    build_profile,
)
from qinglang.guard.spending import PURPOSES, BadAmount, spending_decision

__all__ = [
    "ALLOW",
    "ATTRIBUTES",
    "CATEGORIES",
    "CONTACT_ACTIONS",
    "KINDS",
    "PURPOSES",
    "STRANGERS",
    "SURFACES",
    "UNTRACKED",
    "BadAmount",
    "BadPlaytimeRequest",
    "CalendarRangeError",
    "ConsentState",
    "ConsentView",
    "DayKind",
    "Decision",
    "ExposureIndex",
    "Feature",
    "Grant",
    "ItemFlags",
    "Outcome",
    "Profile",
    "Reason",
    "Relation",
    "SettingsError",
    "UnknownAction",
    "UnknownCategory",
    "UnknownSurface",
    "Viewer",
    "account_decision",
    "apply_settings",
    "attribute_decision",
    "audience_level",
    "build_profile",
    "collection_decision",
    "consent_state",
    "contact_decision",
    "day_kind",
    "decide",
    "explain_filtered",
    "exposure_decision",
    "filter_candidates",
    "playtime_decision",
    "spending_decision",
]
