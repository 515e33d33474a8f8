"""Chinese resident identity numbers (居民身份证号码, GB 11643-1999): validate and read them.

An identity number is the usual evidence of a user's age in China; this module checks one and
extracts the birth date, sex and region, with errors that say precisely what is wrong in English
and Chinese. It is on the hot path of age checks, so the valid path raises no exceptions and
uses precomputed tables.

Structure (18 characters)::

    1 1 0 1 0 5 | 1 9 4 9 1 2 3 1 | 0 0 2 | X
    region code | birth date       | seq.  | check character
    (6 digits)  | YYYYMMDD         | 3 dig.| 0-9 or X

- Region code: the GB/T 2260 administrative-division code where the number was issued. It must
  have named a county-level division in the birth year (see `qinglang.age.regions`).
- Birth date: a real calendar date, not after today's date in Asia/Shanghai.
- Sequence: disambiguates people with the same region and birth date; odd for men, even for
  women.
- Check character (ISO 7064 MOD 11-2): S = sum(a_i * W_i) over the first 17 digits with
  W = 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2; S mod 11 = 0..10 maps to ``1 0 X 9 8 7 6 5 4 3 2``.

Legacy numbers (15 digits, issued before 1999): a 6-digit region code, the birth date as
``YYMMDD`` in 19YY, a 3-digit sequence and no check character. They are accepted and reported
in 18-digit form with ``legacy=True``.

Checks run in this order and the first failure is reported: length, characters, date, region,
checksum (each has its own exception class and ``reason``).

Differences from python-stdnum's ``stdnum.cn.ric`` (deliberate):

- A birth date after today (in Asia/Shanghai) is rejected; stdnum accepts future dates.
- Legacy 15-digit numbers are accepted; stdnum rejects them (length).
- `compact` removes spaces and hyphens anywhere; stdnum only strips surrounding whitespace.
- A known province with an unknown county code is reported as an invalid region; stdnum 2.2
  raises ``KeyError`` from ``is_valid``/``validate`` for such numbers.

>>> rid = validate("11010519491231002X")
>>> rid.birth_date, rid.sex, rid.region, rid.legacy
(datetime.date(1949, 12, 31), 'F', '北京市朝阳区', False)
>>> validate("110105 491231 002").number
'11010519491231002X'
>>> is_valid("110105194912310021")
False
>>> validate("110105194912310021")
Traceback (most recent call last):
    ...
qinglang.age.ric.InvalidChecksum: check character should be X, got 1
>>> to_18("110105491231002")
'11010519491231002X'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Final, Literal

from qinglang.age.ages import SHANGHAI
from qinglang.age.regions import region_name

__all__ = [
    "InvalidCharacters",
    "InvalidChecksum",
    "InvalidDate",
    "InvalidIdentityNumber",
    "InvalidLength",
    "InvalidRegion",
    "Reason",
    "ResidentId",
    "compact",
    "is_valid",
    "to_18",
    "validate",
]

Reason = Literal["length", "characters", "date", "region", "checksum"]
Sex = Literal["M", "F"]

WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS: Final = "10X98765432"  # indexed by S mod 11

# W_i = 2**(18 - i) mod 11 and 13 ≡ 2 (mod 11), so S ≡ 2 * int(first_17, 13) (mod 11): one C-level
# int() replaces the weighted sum. Index this table by int(first_17, 13) % 11.
_CHECK_BY_BASE13: Final = tuple(CHECK_CHARS[(2 * k) % 11] for k in range(11))


def _month_day_table() -> dict[str, tuple[int, int, bool]]:
    """Map every "MMDD" that exists in some year to (month, day, needs a leap year)."""
    table: dict[str, tuple[int, int, bool]] = {}
    for month in range(1, 13):
        days = (date(2000 + month // 12, month % 12 + 1, 1) - date(2000, month, 1)).days
        for day in range(1, days + 1):
            table[f"{month:02d}{day:02d}"] = (month, day, month == 2 and day == 29)
    return table


_MONTH_DAY: Final = _month_day_table()
_DIGITS: Final = frozenset("0123456789")
_SEX: Final[dict[str, Sex]] = {d: "M" if int(d) % 2 else "F" for d in "0123456789"}


def _date_key(d: date) -> str:
    """Return ``d`` as a YYYYMMDD string, comparable as text."""
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def _shanghai_today() -> date:
    """Return the current date in Asia/Shanghai."""
    return datetime.now(SHANGHAI).date()


# Any birth date on or before the Shanghai date at import can never become a future date, so the
# clock is only read for dates after it (rare: recent newborns or invalid input).
_PAST_BOUND: Final = _date_key(_shanghai_today())


class InvalidIdentityNumber(ValueError):
    """A resident identity number failed validation; `reason` says which check failed."""

    reason: ClassVar[Reason]

    def __init__(self, message_en: str, message_zh: str) -> None:
        super().__init__(message_en, message_zh)
        self.message_en = message_en
        self.message_zh = message_zh

    def __str__(self) -> str:
        return self.message_en


class InvalidLength(InvalidIdentityNumber):
    """Not 15 or 18 characters after compacting."""

    reason = "length"


class InvalidCharacters(InvalidIdentityNumber):
    """A character other than a digit (or a final X on 18-character numbers)."""

    reason = "characters"


class InvalidDate(InvalidIdentityNumber):
    """The birth date is not a real calendar date, or is after today in Asia/Shanghai."""

    reason = "date"


class InvalidRegion(InvalidIdentityNumber):
    """The region code named no county-level division in the birth year."""

    reason = "region"


class InvalidChecksum(InvalidIdentityNumber):
    """The check character does not match the first 17 digits."""

    reason = "checksum"


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A validated resident identity number and what it says about its holder."""

    number: str  # 18-digit form
    birth_date: date
    sex: Sex
    region_code: str
    region: str  # province + county name
    legacy: bool  # given as a 15-digit number


def compact(number: str) -> str:
    """Remove spaces, hyphens and surrounding whitespace, and upper-case (a final x becomes X)."""
    return number.replace(" ", "").replace("-", "").strip().upper()


def is_valid(number: str, *, today: date | None = None) -> bool:
    """Return whether `number` is a valid 15- or 18-digit identity number (no exceptions)."""
    if len(number) == 18:  # fast path: an already compact 18-character number
        head = number[:17]
        if head.isascii() and head.isdigit():
            check = _CHECK_BY_BASE13[int(head, 13) % 11]
            last = number[17]
            if last != check and (last != "x" or check != "X"):
                return False
            return _is_plausible(number[:6], number[6:14], today)
    n = compact(number)
    if len(n) == 18:
        head = n[:17]
        if not (head.isascii() and head.isdigit()):
            return False
        if n[17] != _CHECK_BY_BASE13[int(head, 13) % 11]:
            return False
        return _is_plausible(n[:6], n[6:14], today)
    if len(n) == 15 and n.isascii() and n.isdigit():
        return _is_plausible(n[:6], "19" + n[6:12], today)
    return False


def _is_plausible(region_code: str, birth: str, today: date | None) -> bool:
    """Return whether YYYYMMDD `birth` is a real, non-future date and the region existed then."""
    month_day = _MONTH_DAY.get(birth[4:])
    if month_day is None:
        return False
    year = int(birth[:4])
    if year == 0 or (month_day[2] and not _is_leap(year)):
        return False
    if _after_today(birth, today) is not None:
        return False
    return region_name(region_code, year) is not None


def _after_today(birth: str, today: date | None) -> date | None:
    """Return the reference date if YYYYMMDD `birth` is after it, else None."""
    if today is None:
        if birth <= _PAST_BOUND:  # cannot be in the future: skip reading the clock
            return None
        today = _shanghai_today()
    return today if birth > _date_key(today) else None


def validate(number: str, *, today: date | None = None) -> ResidentId:
    """Validate a 15- or 18-digit identity number and return what it says; raise on failure."""
    n = compact(number)
    length = len(n)
    if length == 18:
        if not (n[:17].isascii() and n[:17].isdigit() and (n[17] in _DIGITS or n[17] == "X")):
            bad, position = _first_bad_character(n, last_may_be_x=True)
            raise InvalidCharacters(
                f"expected 17 digits and a final digit or X; found {bad!r} at position {position}",
                f"前17位应为数字，最后一位应为数字或X；第{position}位为“{bad}”",
            )
        birth = n[6:14]
    elif length == 15:
        if not (n.isascii() and n.isdigit()):
            bad, position = _first_bad_character(n, last_may_be_x=False)
            raise InvalidCharacters(
                f"expected 15 digits; found {bad!r} at position {position}",
                f"15位号码应全为数字；第{position}位为“{bad}”",
            )
        birth = "19" + n[6:12]
    else:
        raise InvalidLength(
            f"expected 15 or 18 characters, got {length}",
            f"应为15位或18位，实际{length}位",
        )

    month_day = _MONTH_DAY.get(birth[4:])
    year = int(birth[:4])
    if month_day is None or year == 0 or (month_day[2] and not _is_leap(year)):
        shown = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
        raise InvalidDate(
            f"birth date {shown} is not a real calendar date",
            f"出生日期{shown}不是有效的日期",
        )
    birth_date = date(year, month_day[0], month_day[1])
    reference = _after_today(birth, today)
    if reference is not None:
        shown = birth_date.isoformat()
        raise InvalidDate(
            f"birth date {shown} is after today ({reference.isoformat()}, Asia/Shanghai)",
            f"出生日期{shown}晚于今天（北京时间{reference.isoformat()}）",
        )

    region_code = n[:6]
    region = region_name(region_code, year)
    if region is None:
        raise InvalidRegion(
            f"region code {region_code} was not an administrative division in {year}",
            f"地区码{region_code}在{year}年不是有效的行政区划代码",
        )

    if length == 18:
        expected = _CHECK_BY_BASE13[int(n[:17], 13) % 11]
        if n[17] != expected:
            raise InvalidChecksum(
                f"check character should be {expected}, got {n[17]}",
                f"校验码应为{expected}，实际为{n[17]}",
            )
        return ResidentId(n, birth_date, _SEX[n[16]], region_code, region, False)
    head = region_code + birth + n[12:15]
    number18 = head + _CHECK_BY_BASE13[int(head, 13) % 11]
    return ResidentId(number18, birth_date, _SEX[n[14]], region_code, region, True)


def to_18(number15: str) -> str:
    """Return the 18-digit form of a valid identity number (converting a legacy 15-digit one)."""
    return validate(number15).number


def _first_bad_character(n: str, *, last_may_be_x: bool) -> tuple[str, int]:
    """Return the first disallowed character of `n` and its 1-based position."""
    for position, ch in enumerate(n, start=1):
        if ch not in _DIGITS and not (last_may_be_x and position == len(n) and ch == "X"):
            return ch, position
    raise AssertionError(f"no disallowed character in {n!r}")  # pragma: no cover


def _is_leap(year: int) -> bool:
    """Return whether `year` is a Gregorian leap year."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
