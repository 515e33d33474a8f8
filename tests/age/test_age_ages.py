"""Age arithmetic: leap days, local midnight in Asia/Shanghai, and a naive reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.age import SHANGHAI, age_at, age_on

UTC_TZ = ZoneInfo("UTC")


def reference_age(birth: date, on: date, counts_from_day_after: bool = False) -> int:
    """Count birthdays one at a time (Feb 29 -> Mar 1 in common years)."""
    age = 0
    while True:
        year = birth.year + age + 1
        try:
            birthday = date(year, birth.month, birth.day)
        except ValueError:
            birthday = date(year, 3, 1)
        starts = birthday + timedelta(days=1) if counts_from_day_after else birthday
        if starts > on:
            return age
        age += 1


def birthday_in(birth: date, year: int) -> date:
    try:
        return birth.replace(year=year)
    except ValueError:
        return date(year, 3, 1)


dates = st.dates(date(1900, 1, 1), date(2200, 12, 31))


def z(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- leap days -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "age", "age_day_after"),
    [
        (date(2026, 2, 28), 13, 13),
        (date(2026, 3, 1), 14, 13),
        (date(2026, 3, 2), 14, 14),
        (date(2028, 2, 28), 15, 15),
        (date(2028, 2, 29), 16, 15),
        (date(2028, 3, 1), 16, 16),
        (date(2012, 2, 29), 0, 0),
        (date(2013, 2, 28), 0, 0),
        (date(2013, 3, 1), 1, 0),
    ],
)
def test_leap_day_birthday(on: date, age: int, age_day_after: int) -> None:
    birth = date(2012, 2, 29)
    assert age_on(birth, on) == age
    assert age_on(birth, on, counts_from_day_after=True) == age_day_after


def test_ordinary_birthday_and_day_after_convention() -> None:
    birth = date(2008, 6, 1)
    assert age_on(birth, date(2026, 5, 31)) == 17
    assert age_on(birth, date(2026, 6, 1)) == 18
    assert age_on(birth, date(2026, 6, 1), counts_from_day_after=True) == 17
    assert age_on(birth, date(2026, 6, 2), counts_from_day_after=True) == 18


# --- midnight in Asia/Shanghai -------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "before", "after"),
    [(date(2012, 3, 15), 13, 14), (date(2008, 3, 15), 17, 18)],
)
def test_birthday_starts_at_shanghai_midnight(birth: date, before: int, after: int) -> None:
    assert age_at(birth, z("2026-03-14T15:59:59+00:00")) == before
    assert age_at(birth, z("2026-03-14T16:00:00+00:00")) == after
    # Same instants expressed in Shanghai time.
    assert age_at(birth, datetime(2026, 3, 14, 23, 59, 59, tzinfo=SHANGHAI)) == before
    assert age_at(birth, datetime(2026, 3, 15, 0, 0, 0, tzinfo=SHANGHAI)) == after
    # In UTC the birthday has not started yet at 16:00Z.
    assert age_at(birth, z("2026-03-14T16:00:00+00:00"), UTC_TZ) == before
    assert age_at(birth, z("2026-03-15T00:00:00+00:00"), UTC_TZ) == after


def test_day_after_convention_at_shanghai_midnight() -> None:
    birth = date(2008, 3, 15)
    assert age_at(birth, z("2026-03-15T15:59:59+00:00"), counts_from_day_after=True) == 17
    assert age_at(birth, z("2026-03-15T16:00:00+00:00"), counts_from_day_after=True) == 18


def test_utc_evening_is_next_day_in_shanghai() -> None:
    assert age_at(date(2006, 6, 1), z("2024-05-31T16:00:00+00:00")) == 18
    assert age_at(date(2006, 6, 1), z("2024-05-31T15:59:59.999999+00:00")) == 17


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        age_at(date(2010, 1, 1), datetime(2026, 1, 1, 12, 0))


def test_date_before_birth_is_rejected() -> None:
    with pytest.raises(ValueError, match="before the birth date"):
        age_on(date(2010, 1, 2), date(2010, 1, 1))


def test_age_on_rejects_datetimes() -> None:
    with pytest.raises(TypeError, match="age_at"):
        age_on(date(2010, 1, 1), datetime(2026, 1, 1, tzinfo=UTC))


# --- properties ----------------------------------------------------------------------------


@given(dates, dates, st.booleans())
def test_matches_reference(a: date, b: date, day_after: bool) -> None:
    birth, on = min(a, b), max(a, b)
    assert age_on(birth, on, counts_from_day_after=day_after) == reference_age(birth, on, day_after)


@given(dates, dates, dates, st.booleans())
def test_monotonic_in_time(a: date, b: date, c: date, day_after: bool) -> None:
    birth, d1, d2 = sorted((a, b, c))
    assert age_on(birth, d1, counts_from_day_after=day_after) <= age_on(
        birth, d2, counts_from_day_after=day_after
    )


@given(dates, st.integers(1, 120), st.booleans())
def test_increases_by_exactly_one_on_each_birthday(
    birth: date, years: int, day_after: bool
) -> None:
    starts = birthday_in(birth, birth.year + years) + timedelta(days=1 if day_after else 0)
    before = age_on(birth, starts - timedelta(days=1), counts_from_day_after=day_after)
    after = age_on(birth, starts, counts_from_day_after=day_after)
    assert (before, after) == (years - 1, years)


@given(
    dates,
    st.datetimes(datetime(1900, 1, 2), datetime(2200, 12, 30), timezones=st.timezones()),
    st.timezones(),
)
def test_age_at_uses_local_date_in_zone(birth: date, instant: datetime, tz: ZoneInfo) -> None:
    local = instant.astimezone(tz).date()
    if local < birth:
        with pytest.raises(ValueError):
            age_at(birth, instant, tz)
    else:
        assert age_at(birth, instant, tz) == reference_age(birth, local)
