"""Age in completed years (周岁) on a date or at an instant in a given time zone.

Conventions:

- Ages are completed years by the Gregorian calendar.
- A 29 February birthday falls on 1 March in common years (so someone born 2012-02-29 is 13 on
  2026-02-28 and 14 on 2026-03-01).
- By default the new age starts on the birthday itself. With ``counts_from_day_after=True`` it
  starts the day after (the birthday as computed above), as some legal texts count 周岁
  ("从周岁生日的第二天起算"). Which convention applies is a policy-pack setting, not decided here.
- An instant is converted to a local date in the given zone first (default Asia/Shanghai), so
  2024-05-31T16:00Z is already 1 June.

>>> age_on(date(2012, 2, 29), date(2026, 2, 28)), age_on(date(2012, 2, 29), date(2026, 3, 1))
(13, 14)
>>> age_on(date(2008, 6, 1), date(2026, 6, 1), counts_from_day_after=True)
17
>>> age_at(date(2008, 6, 1), datetime.fromisoformat("2026-05-31T16:00:00+00:00"))
18
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["SHANGHAI", "age_at", "age_on"]

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")


def age_on(birth: date, on: date, *, counts_from_day_after: bool = False) -> int:
    """Return the age in completed years on date `on` of someone born on `birth`."""
    if isinstance(on, datetime) or isinstance(birth, datetime):
        raise TypeError("age_on takes dates; use age_at for an instant (an aware datetime)")
    if on < birth:
        raise ValueError(f"date {on.isoformat()} is before the birth date {birth.isoformat()}")
    month, day = birth.month, birth.day
    if month == 2 and day == 29 and not _is_leap(on.year):
        month, day = 3, 1
    years = on.year - birth.year
    today = (on.month, on.day)
    if today < (month, day) or (counts_from_day_after and today == (month, day)):
        years -= 1
    return max(years, 0)


def age_at(
    birth: date,
    instant: datetime,
    tz: ZoneInfo = SHANGHAI,
    *,
    counts_from_day_after: bool = False,
) -> int:
    """Return the age in completed years at an aware `instant`, taking the local date in `tz`."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(
            f"age_at needs an aware datetime (with tzinfo), got naive {instant.isoformat()}; "
            "attach the zone it was recorded in, e.g. instant.replace(tzinfo=timezone.utc)"
        )
    local = instant.astimezone(tz).date()
    return age_on(birth, local, counts_from_day_after=counts_from_day_after)


def _is_leap(year: int) -> bool:
    """Return whether `year` is a Gregorian leap year."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
