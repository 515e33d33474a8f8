"""Statutory holidays and make-up working days in mainland China, from `chinese-calendar`.

The package is maintained from the State Council's yearly notices. A date outside the years it
covers is an error (`CalendarRangeError`), never a guess.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from functools import lru_cache

import chinese_calendar


class DayKind(StrEnum):
    """How the calendar classifies a day."""

    HOLIDAY = "holiday"
    """A statutory holiday (法定节假日), including the weekend days folded into it."""
    MAKEUP_WORKDAY = "makeup_workday"
    """A weekend day worked in exchange for a holiday (调休上班)."""
    WORKDAY = "workday"
    WEEKEND = "weekend"


class CalendarRangeError(ValueError):
    """The date is outside the years the holiday calendar covers."""


def covered_years() -> tuple[int, int]:
    """First and last year the installed calendar covers."""
    years = [d.year for d in chinese_calendar.holidays] + [
        d.year for d in chinese_calendar.workdays
    ]
    return min(years), max(years)


@lru_cache(maxsize=4096)
def day_kind(day: date) -> DayKind:
    """Classify a date; raises `CalendarRangeError` outside the covered years."""
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        lo, hi = covered_years()
        raise CalendarRangeError(
            f"{day.isoformat()} is outside the holiday calendar ({lo}-{hi}); "
            "upgrade the chinesecalendar package"
        ) from None
    weekend = day.weekday() >= 5
    if is_holiday and name is not None:
        return DayKind.HOLIDAY
    if not is_holiday and weekend:
        return DayKind.MAKEUP_WORKDAY
    return DayKind.WEEKEND if weekend else DayKind.WORKDAY
