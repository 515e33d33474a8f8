"""Playtime decisions: may an account use a service kind (game or general app) at an instant.

Games for minors: only on allowed days (a statutory holiday counts; a make-up working day does
not), only inside the allowed window, never in the night window. General apps in minor mode: a
daily budget and a night window. The answer gives the minutes left and the next allowed start.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal, get_args

from qinglang.age import AgeSource
from qinglang.guard.calendar import CalendarRangeError, DayKind, day_kind
from qinglang.guard.decision import ALLOW, Decision, decide
from qinglang.guard.profile import Profile, minutes_of
from qinglang.policy import Rule

ServiceKind = Literal["game", "general"]
KINDS: tuple[str, ...] = get_args(ServiceKind)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEARCH_DAYS = 31
_WHOLE_DAY: frozenset[int] = frozenset(range(1440))
"""How far ahead to look for the next allowed window."""


class BadPlaytimeRequest(ValueError):
    """A naive instant, a negative minute count or an unknown service kind."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _day_allowed(profile: Profile, day: date) -> tuple[bool, Rule | None]:
    """Whether games are allowed on this day, and the rule that decides it."""
    days_rule = profile.rules.get("game.allowed_days")
    if days_rule is None or not isinstance(days_rule.value, list):
        return True, None
    allowed = days_rule.value
    kind = day_kind(day)
    if kind is DayKind.HOLIDAY and "holiday" in allowed:
        return True, days_rule
    if kind is DayKind.MAKEUP_WORKDAY:
        makeup = profile.rules.get("game.makeup_day_is_workday")
        if makeup is not None and makeup.value is True:
            return False, makeup
    return _WEEKDAYS[day.weekday()] in allowed, days_rule


def _runs(minutes: frozenset[int]) -> list[tuple[int, int]]:
    """Contiguous [start, end) runs of minutes within one day."""
    out: list[tuple[int, int]] = []
    for m in sorted(minutes):
        if out and out[-1][1] == m:
            out[-1] = (out[-1][0], m + 1)
        else:
            out.append((m, m + 1))
    return out


def _allowed_minutes(profile: Profile, kind: str) -> frozenset[int]:
    """Minutes of the day in which a session of this kind may run (cached per rule values)."""
    if kind == "game":
        return _minutes_left_over(
            minutes_of(profile, "game.allowed_windows") or _WHOLE_DAY,
            minutes_of(profile, "game.night_windows")
            | minutes_of(profile, "playtime.night_windows"),
        )
    return _minutes_left_over(_WHOLE_DAY, minutes_of(profile, "playtime.night_windows"))


@lru_cache(maxsize=256)
def _minutes_left_over(window: frozenset[int], closed: frozenset[int]) -> frozenset[int]:
    return window - closed


@lru_cache(maxsize=256)
def _runs_of(minutes: frozenset[int]) -> tuple[tuple[int, int], ...]:
    return tuple(_runs(minutes))


def _next_start(profile: Profile, kind: str, local: datetime, fresh_day: bool) -> datetime | None:
    """The next instant a session may start (None if beyond the calendar or search horizon)."""
    runs = _runs_of(_allowed_minutes(profile, kind))
    now_min = local.hour * 60 + local.minute
    for offset in range(SEARCH_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        if offset == 0 and fresh_day:
            continue
        try:
            ok = _day_allowed(profile, day)[0] if kind == "game" else True
        except CalendarRangeError:
            return None
        if not ok:
            continue
        for start, _end in runs:
            if offset == 0 and start <= now_min:
                continue
            midnight = datetime(day.year, day.month, day.day, tzinfo=local.tzinfo)
            return midnight + timedelta(minutes=start)
    return None


def playtime_decision(
    profile: Profile, kind: str, at: datetime, minutes_used_today: int
) -> Decision:
    """May this account use service `kind` at `at`, having used `minutes_used_today` today."""
    if kind not in KINDS:
        raise BadPlaytimeRequest(f"unknown service kind {kind!r}; expected game or general", "kind")
    if at.tzinfo is None or at.utcoffset() is None:
        raise BadPlaytimeRequest("the instant needs a time zone (e.g. +08:00 or Z)", "at")
    if minutes_used_today < 0:
        raise BadPlaytimeRequest("minutes used today must not be negative", "minutes_used_today")
    if kind == "game":
        real_name = profile.rules.get("game.real_name_required")
        if (
            real_name is not None
            and real_name.value is True
            and profile.age_source is not AgeSource.VERIFIED
        ):
            return decide("deny", real_name, limits={"needs": "real_name_verification"})
    if not profile.is_minor:
        return ALLOW
    local = at.astimezone(profile.policy.tz)
    today = local.date()
    minute = local.hour * 60 + local.minute
    day_kind(today)  # fails clearly outside the calendar, for both kinds
    blocking: list[Rule] = []
    if kind == "game":
        ok, day_rule = _day_allowed(profile, today)
        if not ok and day_rule is not None:
            blocking.append(day_rule)
        for topic in ("game.night_windows", "game.allowed_windows"):
            mins = minutes_of(profile, topic)
            if not mins:
                continue
            inside = minute in mins
            if (topic == "game.night_windows") == inside:
                blocking.append(profile.rules[topic])
    if minute in minutes_of(profile, "playtime.night_windows"):
        blocking.append(profile.rules["playtime.night_windows"])
    daily = profile.rules.get("playtime.daily_minutes")
    budget_left = None
    if daily is not None and isinstance(daily.value, int):
        budget_left = daily.value - minutes_used_today
        if budget_left <= 0:
            blocking.append(daily)
    limits: dict[str, object] = {"timezone": str(profile.policy.tz)}
    if blocking:
        nxt = _next_start(
            profile, kind, local, fresh_day=budget_left is not None and budget_left <= 0
        )
        limits.update(minutes_left=0, next_allowed_start=nxt.isoformat() if nxt else None)
        return decide("deny", *blocking, limits=limits)
    allowed = _allowed_minutes(profile, kind)
    end = minute
    while end in allowed and end < 1440:
        end += 1
    if end == 1440 and 0 in allowed and kind == "general":
        end += next((i for i in range(1440) if i not in allowed), 1440)
    seconds_in_window = (end - minute) * 60 - local.second
    seconds_left = seconds_in_window
    if budget_left is not None:
        seconds_left = min(seconds_left, budget_left * 60)
    limits.update(
        minutes_left=seconds_left // 60,
        seconds_left=seconds_left,
        session_ends_at=(local + timedelta(seconds=seconds_left)).isoformat(),
    )
    rules = [
        r
        for r in (daily, profile.rules.get("game.allowed_windows") if kind == "game" else None)
        if r
    ]
    brk = profile.rules.get("playtime.break_reminder_minutes")
    if brk is not None:
        limits["break_reminder_minutes"] = brk.value
        rules.append(brk)
    return decide("limit", *rules, limits=limits)
