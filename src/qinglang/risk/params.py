"""The numbers of the risk engine, read once from the policy pack (topics ``risk.*``).

Code holds the logic, the pack holds every threshold, window and weight, each a rule with an id,
a citation and messages in Chinese and English. `RiskParams.from_policy` fails with a
`PolicyError` naming the topic when a pack lacks one.
"""

from __future__ import annotations

from dataclasses import dataclass

from qinglang.policy import Policy, PolicyError, Rule
from qinglang.risk.stages import STAGE_ORDER

CUE_CLASSES: tuple[str, ...] = (
    "asks_age",
    "asks_school",
    "asks_location",
    "flattery",
    "affection",
    "gifts",
    "asks_alone",
    "isolation",
    "secrecy",
    "age_risk",
    "move_platform",
    "asks_images",
    "sexual",
    "meeting",
)
"""Cue classes that carry a weight (``risk.cue.<id>``); the lexicon may add context classes."""


def _number(policy: Policy, topic: str) -> float:
    rule = policy.require(topic)
    v = rule.value
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise PolicyError(f"rule {rule.id} ({topic}) needs a number", rule.id)
    return float(v)


def _unit(policy: Policy, topic: str) -> float:
    v = _number(policy, topic)
    if not 0.0 <= v <= 1.0:
        rule = policy.require(topic)
        raise PolicyError(f"rule {rule.id} ({topic}) must lie in [0, 1], not {v}", rule.id)
    return v


@dataclass(frozen=True, slots=True)
class RiskParams:
    """Every threshold, window (seconds) and weight of the engine, with the rules behind them."""

    review: float
    restrict: float
    fanout_window: float
    fanout_start: int
    fanout_full: int
    fanout_weight: float
    follow_start: int
    follow_full: int
    follow_weight: float
    chain_window: float
    chain_weight: float
    chain_max: float
    cue_fanout_start: int
    cue_fanout_full: int
    cue_fanout_weight: float
    cue_fanout_min_score: float
    restricted_weight: float
    blocked_weight: float
    reported_weight: float
    conversation_window: float
    cue_weights: dict[str, float]
    stage_weights: dict[str, float]
    stage_unordered: float
    stage_unprepared: float
    stage_max: float
    age_gap_years: int
    age_gap_weight: float
    factor_mutual: float
    factor_trusted: float
    factor_minor_sender: float
    factor_adult_recipient: float
    factor_no_minor_context: float
    minor_below: int
    rules: dict[str, Rule]
    """Topic (without the ``risk.`` prefix) → the rule that set it, for explanations."""

    @property
    def horizon(self) -> float:
        """The longest window (seconds): state older than this can no longer count."""
        return max(self.fanout_window, self.chain_window, self.conversation_window)

    def rule(self, topic: str) -> Rule:
        """The pack rule behind a parameter, by topic without the ``risk.`` prefix."""
        return self.rules[topic]

    @classmethod
    def from_policy(cls, policy: Policy) -> RiskParams:
        """Read the ``risk.*`` rules of a pack (and ``age.minor_below``)."""
        rules = {t[5:]: policy.require(t) for t in policy.topics if t.startswith("risk.")}

        def n(topic: str) -> float:
            return _number(policy, "risk." + topic)

        def u(topic: str) -> float:
            return _unit(policy, "risk." + topic)

        def count(topic: str) -> int:
            v = n(topic)
            if v != int(v) or v < 1:
                rule = policy.require("risk." + topic)
                raise PolicyError(f"rule {rule.id} needs a whole number of at least 1", rule.id)
            return int(v)

        params = cls(
            review=u("alert.review_threshold"),
            restrict=u("alert.restrict_threshold"),
            fanout_window=n("fanout.window_hours") * 3600.0,
            fanout_start=count("fanout.start_minors"),
            fanout_full=count("fanout.full_minors"),
            fanout_weight=u("fanout.weight"),
            follow_start=count("follow.start_minors"),
            follow_full=count("follow.full_minors"),
            follow_weight=u("follow.weight"),
            chain_window=n("chain.window_hours") * 3600.0,
            chain_weight=u("chain.weight"),
            chain_max=u("chain.max_weight"),
            cue_fanout_start=count("cue_fanout.start_minors"),
            cue_fanout_full=count("cue_fanout.full_minors"),
            cue_fanout_weight=u("cue_fanout.weight"),
            cue_fanout_min_score=u("cue_fanout.min_score"),
            restricted_weight=u("restricted.weight"),
            blocked_weight=u("blocked.weight"),
            reported_weight=u("reported.weight"),
            conversation_window=n("conversation.window_days") * 86400.0,
            cue_weights={c: u(f"cue.{c}") for c in CUE_CLASSES},
            stage_weights={s: u(f"stage.{s}") for s in STAGE_ORDER},
            stage_unordered=u("stage.unordered_factor"),
            stage_unprepared=u("stage.unprepared_factor"),
            stage_max=u("stage.max_weight"),
            age_gap_years=count("age_gap.years"),
            age_gap_weight=u("age_gap.weight"),
            factor_mutual=u("factor.mutual"),
            factor_trusted=u("factor.trusted"),
            factor_minor_sender=u("factor.minor_sender"),
            factor_adult_recipient=u("factor.adult_recipient"),
            factor_no_minor_context=u("factor.no_minor_context"),
            minor_below=int(_number(policy, "age.minor_below")),
            rules=rules,
        )
        if params.restrict < params.review:
            raise PolicyError(
                "risk.alert.restrict_threshold must not be below risk.alert.review_threshold",
                rules["alert.restrict_threshold"].id,
            )
        for a, b in (
            ("fanout_start", "fanout_full"),
            ("follow_start", "follow_full"),
            ("cue_fanout_start", "cue_fanout_full"),
        ):
            if getattr(params, a) > getattr(params, b):
                topic = a.replace("_start", "").replace("_", ".") + ".start_minors"
                raise PolicyError(f"risk.{topic} exceeds its full count", rules[topic].id)
        for w in ("fanout_window", "chain_window", "conversation_window"):
            if getattr(params, w) <= 0:
                raise PolicyError(f"risk window {w} must be positive")
        return params
