"""Game windows and minor-mode time limits, against the real holiday calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang.guard import BadPlaytimeRequest, CalendarRangeError, Outcome, playtime_decision

from .conftest import SH, MakeProfile


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def test_friday_2030_allowed(person: MakeProfile) -> None:
    d = playtime_decision(person("kid", 12), "game", at("2026-10-09T20:30"), 0)
    assert d.outcome is Outcome.LIMIT
    assert d.limits["minutes_left"] == 30
    assert d.limits["session_ends_at"] == "2026-10-09T21:00:00+08:00"


def test_makeup_working_saturday_blocked(person: MakeProfile) -> None:
    # 2026-10-10 is a Saturday worked in exchange for the National Day holiday.
    d = playtime_decision(person("kid", 12), "game", at("2026-10-10T20:30"), 0)
    assert d.outcome is Outcome.DENY
    assert "cn.game.makeup_workday" in d.rule_ids
    assert d.limits["next_allowed_start"] == "2026-10-11T20:00:00+08:00"


def test_2100_exactly_blocked(person: MakeProfile) -> None:
    kid = person("kid", 12)
    assert playtime_decision(kid, "game", at("2026-10-09T20:59:59"), 0).allowed
    d = playtime_decision(kid, "game", at("2026-10-09T21:00:00"), 0)
    assert d.outcome is Outcome.DENY and d.rule_ids == ["cn.game.window"]


def test_statutory_holiday_2010_allowed(person: MakeProfile) -> None:
    # 2026-10-01 is a Thursday and a statutory holiday (National Day).
    d = playtime_decision(person("kid", 12), "game", at("2026-10-01T20:10"), 0)
    assert d.outcome is Outcome.LIMIT and d.limits["minutes_left"] == 50


def test_ordinary_thursday_blocked_with_next_window(person: MakeProfile) -> None:
    d = playtime_decision(person("kid", 12), "game", at("2026-10-08T20:30"), 0)
    assert d.outcome is Outcome.DENY and d.rule_ids == ["cn.game.days"]
    assert d.limits["next_allowed_start"] == "2026-10-09T20:00:00+08:00"


def test_instant_is_read_in_shanghai(person: MakeProfile) -> None:
    # 12:30 UTC is 20:30 in Shanghai on the Friday.
    utc = datetime(2026, 10, 9, 12, 30, tzinfo=UTC)
    assert playtime_decision(person("kid", 12), "game", utc, 0).allowed


def test_adults_are_not_limited(person: MakeProfile) -> None:
    assert (
        playtime_decision(person("adult", 30), "game", at("2026-10-08T03:00"), 500).outcome
        is Outcome.ALLOW
    )


def test_guardian_budget_shortens_the_window(person: MakeProfile) -> None:
    kid = person("kid", 12, {"playtime.daily_minutes": 20})
    d = playtime_decision(kid, "game", at("2026-10-09T20:05"), 5)
    assert d.limits["minutes_left"] == 15
    spent = playtime_decision(kid, "game", at("2026-10-09T20:30"), 20)
    assert spent.outcome is Outcome.DENY and "cn.mode.daily_minutes.under16" in spent.rule_ids


def test_general_app_daily_budget_and_night(person: MakeProfile) -> None:
    teen = person("teen", 16)
    d = playtime_decision(teen, "general", at("2026-10-08T15:00"), 100)
    assert d.outcome is Outcome.LIMIT and d.limits["minutes_left"] == 20
    assert d.limits["break_reminder_minutes"] == 30
    late = playtime_decision(teen, "general", at("2026-10-08T21:50"), 0)
    assert late.limits["minutes_left"] == 10  # the night window starts at 22:00
    night = playtime_decision(teen, "general", at("2026-10-08T23:00"), 0)
    assert night.outcome is Outcome.DENY and night.rule_ids == ["cn.mode.night"]
    assert night.limits["next_allowed_start"] == "2026-10-09T06:00:00+08:00"
    used_up = playtime_decision(teen, "general", at("2026-10-08T15:00"), 120)
    assert used_up.outcome is Outcome.DENY
    assert used_up.limits["next_allowed_start"] == "2026-10-09T06:00:00+08:00"


def test_date_outside_calendar_is_a_clear_error(person: MakeProfile) -> None:
    with pytest.raises(CalendarRangeError, match="outside the holiday calendar"):
        playtime_decision(person("kid", 12), "game", at("2031-05-02T20:30"), 0)


@pytest.mark.parametrize(
    ("kind", "instant", "used", "field"),
    [
        ("chess", at("2026-10-09T20:30"), 0, "kind"),
        ("game", datetime(2026, 10, 9, 20, 30), 0, "at"),
        ("game", at("2026-10-09T20:30"), -1, "minutes_used_today"),
    ],
)
def test_bad_requests_name_the_field(
    person: MakeProfile, kind: str, instant: datetime, used: int, field: str
) -> None:
    with pytest.raises(BadPlaytimeRequest) as exc:
        playtime_decision(person("kid", 12), kind, instant, used)
    assert exc.value.field == field


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 364 * 24 * 60 - 1))
def test_games_only_inside_allowed_window_on_allowed_days(person: MakeProfile, minute: int) -> None:
    t = at("2026-01-01T00:00") + timedelta(minutes=minute)
    d = playtime_decision(person("kid", 12), "game", t, 0)
    is_holiday, name = chinese_calendar.get_holiday_detail(t.date())
    statutory = is_holiday and name is not None
    makeup = not is_holiday and t.weekday() >= 5
    allowed_day = statutory or (t.weekday() in (4, 5, 6) and not makeup)
    assert d.allowed == (allowed_day and t.hour == 20)
    if d.allowed:
        assert 0 < d.limits["seconds_left"] <= 3600
    else:
        nxt = d.limits["next_allowed_start"]
        if nxt is not None:
            start = datetime.fromisoformat(nxt)
            assert start > t and start.hour == 20 and start.minute == 0
            assert playtime_decision(person("kid", 12), "game", start, 0).allowed


def test_games_need_a_verified_real_name(person: MakeProfile) -> None:
    for source in ("self_declared", "guardian_declared", "inferred"):
        d = playtime_decision(person("p", 30, source=source), "game", at("2026-10-09T20:30"), 0)
        assert d.outcome is Outcome.DENY and d.rule_ids == ["cn.game.real_name"]
    unknown = playtime_decision(
        person("anon", None, source=None), "game", at("2026-10-09T20:30"), 0
    )
    assert unknown.rule_ids == ["cn.game.real_name"]
    # general apps do not require it
    assert playtime_decision(
        person("p", 30, source="self_declared"), "general", at("2026-10-09T20:30"), 0
    ).allowed
