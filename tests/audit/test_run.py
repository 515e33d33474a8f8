"""`qinglang.audit.run`: the period forms (year, month, quarter, half, day range), their errors,
and the default as-of instant (the period's end, or local midnight today while it runs)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.audit.run import PeriodError, default_as_of, parse_period
from qinglang.policy import load_policy

POLICY = load_policy("cn")


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
        (" 2026 ", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026-05", date(2026, 5, 1), date(2026, 5, 31)),
        ("2026-04", date(2026, 4, 1), date(2026, 4, 30)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ("2000-02", date(2000, 2, 1), date(2000, 2, 29)),
        ("2100-02", date(2100, 2, 1), date(2100, 2, 28)),
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026-Q2", date(2026, 4, 1), date(2026, 6, 30)),
        ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
        ("2028-Q1", date(2028, 1, 1), date(2028, 3, 31)),
        ("2026-H1", date(2026, 1, 1), date(2026, 6, 30)),
        ("2026-H2", date(2026, 7, 1), date(2026, 12, 31)),
        ("2026-01-01..2026-06-30", date(2026, 1, 1), date(2026, 6, 30)),
        ("2026-03-05..2026-03-05", date(2026, 3, 5), date(2026, 3, 5)),
        ("2028-02-28..2028-02-29", date(2028, 2, 28), date(2028, 2, 29)),
        ("2026-01-01 .. 2026-01-31", date(2026, 1, 1), date(2026, 1, 31)),
    ],
)
def test_parse_period_forms(text: str, first: date, last: date) -> None:
    assert parse_period(text) == (first, last)


@pytest.mark.parametrize(
    "text",
    [
        "2026-13",
        "2026-00",
        "2026-Q5",
        "2026-Q0",
        "2026-H3",
        "2026-H0",
        "2026-06-30..2026-01-01",
        "2026-02-29..2026-03-01",
        "2027-02-29..2027-03-01",
        "2026-01-01..",
        "..2026-01-01",
        "2026-01-01..garbage",
        "garbage",
        "",
        "   ",
        "26",
        "2026-5",
        "2026-q2",
        "2026/05",
        "2026-05-01",
        "2026 Q2",
    ],
)
def test_parse_period_errors(text: str) -> None:
    with pytest.raises(PeriodError):
        parse_period(text)


def test_period_error_is_a_value_error_and_says_which_period() -> None:
    with pytest.raises(ValueError, match="2026-13"):
        parse_period("2026-13")
    with pytest.raises(PeriodError, match="ends before it starts"):
        parse_period("2026-06-30..2026-01-01")


DAYS = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))


@given(a=DAYS, b=DAYS)
def test_day_ranges_round_trip(a: date, b: date) -> None:
    first, last = min(a, b), max(a, b)
    assert parse_period(f"{first.isoformat()}..{last.isoformat()}") == (first, last)
    if a != b:
        with pytest.raises(PeriodError):
            parse_period(f"{last.isoformat()}..{first.isoformat()}")


def test_a_period_ending_on_the_last_representable_day_is_refused() -> None:
    for text in ("9999", "9999-12", "9999-Q4", "9999-H2", "9999-12-01..9999-12-31"):
        with pytest.raises(PeriodError, match="must end before"):
            parse_period(text)


@given(year=st.integers(min_value=1000, max_value=9999), month=st.integers(1, 12))
def test_months_cover_exactly_their_days(year: int, month: int) -> None:
    if (year, month) == (9999, 12):
        return  # refused: see the test above
    first, last = parse_period(f"{year:04d}-{month:02d}")
    assert first == date(year, month, 1)
    assert (last + timedelta(days=1)).day == 1
    assert last.month == month and last.year == year


@given(year=st.integers(min_value=1000, max_value=9998))
def test_quarters_and_halves_tile_the_year(year: int) -> None:
    whole = parse_period(str(year))
    quarters = [parse_period(f"{year}-Q{q}") for q in range(1, 5)]
    halves = [parse_period(f"{year}-H{h}") for h in (1, 2)]
    for parts in (quarters, halves):
        assert parts[0][0] == whole[0] and parts[-1][1] == whole[1]
        for (_, end), (start, _) in pairwise(parts):
            assert start == end + timedelta(days=1)


def test_default_as_of_is_the_end_of_a_past_period() -> None:
    now = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)
    # 2026-03-31 ends at local midnight, 2026-04-01T00:00+08:00
    assert default_as_of(POLICY, date(2026, 3, 31), now) == datetime(2026, 3, 31, 16, tzinfo=UTC)
    assert default_as_of(POLICY, date(2025, 12, 31), now) == datetime(2025, 12, 31, 16, tzinfo=UTC)


def test_default_as_of_is_local_midnight_today_while_the_period_runs() -> None:
    # 20:00Z on the 28th is 04:00 on the 29th in Shanghai: today (local) began at 16:00Z the 28th
    now = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)
    expected = datetime(2026, 11, 28, 16, tzinfo=UTC)
    assert default_as_of(POLICY, date(2026, 12, 31), now) == expected
    # a period that has not started yet is read as of today too
    assert default_as_of(POLICY, date(2027, 12, 31), now) == expected
    # 10:00Z on the 28th is 18:00 the 28th in Shanghai: today began at 16:00Z the 27th
    morning = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert default_as_of(POLICY, date(2026, 12, 31), morning) == datetime(
        2026, 11, 27, 16, tzinfo=UTC
    )


def test_default_as_of_on_the_last_day_is_that_days_start() -> None:
    # the period's last day is today (local): the records are read up to its start
    now = datetime(2026, 12, 31, 3, 0, tzinfo=UTC)  # 11:00 on 31 December in Shanghai
    assert default_as_of(POLICY, date(2026, 12, 31), now) == datetime(2026, 12, 30, 16, tzinfo=UTC)
    # the day after the period: its end
    after = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # 01:00 on 1 January in Shanghai
    assert default_as_of(POLICY, date(2026, 12, 31), after) == datetime(
        2026, 12, 31, 16, tzinfo=UTC
    )


@given(
    last=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_default_as_of_is_a_local_midnight_never_after_now(last: date, now: datetime) -> None:
    at = default_as_of(POLICY, last, now)
    assert at.tzinfo is not None and at.utcoffset() == timedelta(0)
    local = at.astimezone(POLICY.tz)
    assert (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)
    assert at <= now
    assert local.date() <= last + timedelta(days=1)
