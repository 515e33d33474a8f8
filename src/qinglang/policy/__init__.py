"""Policy packs: versioned rules with ids, citations and messages, loaded from TOML."""

from qinglang.policy.loader import (
    Policy,
    PolicyError,
    available_packs,
    is_looser,
    load_pack,
    load_policy,
    parse_overlay,
    parse_pack,
    window_minutes,
)
from qinglang.policy.schema import AUDIENCES, Band, Citation, Rule, RuleValue

__all__ = [
    "AUDIENCES",
    "Band",
    "Citation",
    "Policy",
    "PolicyError",
    "Rule",
    "RuleValue",
    "available_packs",
    "is_looser",
    "load_pack",
    "load_policy",
    "parse_overlay",
    "parse_pack",
    "window_minutes",
]
