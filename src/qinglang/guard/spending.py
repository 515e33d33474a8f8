"""Spending decisions: may an account pay an amount now, given today's and this month's totals.

Amounts are integers in the currency's minor unit (CNY fen), never floats.
"""

from __future__ import annotations

from typing import Literal, get_args

from qinglang.guard.decision import ALLOW, Decision, decide
from qinglang.guard.profile import Profile
from qinglang.policy import Rule

Purpose = Literal["purchase", "top_up", "gift", "tip", "fan_funding", "vote_ranking"]
PURPOSES: tuple[str, ...] = get_args(Purpose)
_FAN = ("fan_funding", "vote_ranking")


class BadAmount(ValueError):
    """A negative or zero amount, or a negative running total."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _cap(rule: Rule | None) -> int | None:
    if rule is None or rule.value is None:
        return None
    assert isinstance(rule.value, int)
    return rule.value


def spending_decision(
    profile: Profile, amount: int, today_total: int, month_total: int, purpose: str = "purchase"
) -> Decision:
    """May this account pay `amount` now; the answer says what remains for the day and month."""
    if amount <= 0:
        raise BadAmount(f"amount must be a positive whole number of fen, got {amount}", "amount")
    if today_total < 0:
        raise BadAmount("today_total must not be negative", "today_total")
    if month_total < 0:
        raise BadAmount("month_total must not be negative", "month_total")
    if purpose not in PURPOSES:
        raise BadAmount(
            f"unknown purpose {purpose!r}; expected one of {', '.join(PURPOSES)}", "purpose"
        )
    rules = profile.rules
    allowed = rules.get("spending.allowed")
    if allowed is not None and allowed.value is False:
        return decide("deny", allowed, limits={"max_payable_fen": 0})
    fan = rules.get("spending.fan_funding_allowed")
    if purpose in _FAN and fan is not None and fan.value is False:
        return decide("deny", fan)
    single_r = rules.get("spending.single_cap_fen")
    daily_r = rules.get("spending.daily_cap_fen")
    monthly_r = rules.get("spending.monthly_cap_fen")
    single, daily, monthly = _cap(single_r), _cap(daily_r), _cap(monthly_r)
    if single is None and daily is None and monthly is None:
        return ALLOW
    daily_left = None if daily is None else max(daily - today_total, 0)
    monthly_left = None if monthly is None else max(monthly - month_total, 0)
    bounds = [b for b in (single, daily_left, monthly_left) if b is not None]
    limits = {
        "single_cap_fen": single,
        "daily_remaining_fen": daily_left,
        "monthly_remaining_fen": monthly_left,
        "max_payable_fen": min(bounds),
    }
    broken = [
        r
        for r, bound in ((single_r, single), (daily_r, daily_left), (monthly_r, monthly_left))
        if r is not None and bound is not None and amount > bound
    ]
    if broken:
        return decide("deny", *broken, limits=limits)
    after = {
        **limits,
        "daily_remaining_after_fen": None if daily_left is None else daily_left - amount,
        "monthly_remaining_after_fen": None if monthly_left is None else monthly_left - amount,
    }
    applied = ((single_r, single), (daily_r, daily), (monthly_r, monthly))
    return decide(
        "limit", *(r for r, cap in applied if r is not None and cap is not None), limits=after
    )
