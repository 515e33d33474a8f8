"""Shared helpers and Hypothesis strategies for the qinglang.age tests."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from stdnum.cn import ric as stdnum_ric

from qinglang.age import regions

# Written from the spec, independently of qinglang.age.ric's base-13 shortcut.
SPEC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SPEC_CHECK = "10X98765432"


def spec_check_char(first17: str) -> str:
    """Check character by the literal GB 11643 weighted sum."""
    total = sum(int(d) * w for d, w in zip(first17, SPEC_WEIGHTS, strict=True))
    return SPEC_CHECK[total % 11]


def make18(region: str, birth: date, seq: int) -> str:
    """Build a well-formed 18-digit number."""
    head = f"{region}{birth:%Y%m%d}{seq:03d}"
    return head + spec_check_char(head)


def make15(region: str, birth: date, seq: int) -> str:
    """Build a legacy 15-digit number (birth must be in 19xx)."""
    return f"{region}{birth:%y%m%d}{seq:03d}"


def shanghai_today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def stdnum_is_valid(number: str) -> bool:
    """python-stdnum's verdict; its KeyError for a known province with an unknown county
    (stdnum 2.2) is a rejection too."""
    try:
        return bool(stdnum_ric.is_valid(number))
    except KeyError:
        return False


TABLE = regions._load()
CODES = sorted(TABLE)


def _spans(lo: int, hi: int) -> list[tuple[str, int, int]]:
    """(code, first year, last year) for every table entry overlapping [lo, hi]."""
    return [
        (code, max(lo, first), min(hi, last))
        for code, entries in TABLE.items()
        for first, last, _ in entries
        if max(lo, first) <= min(hi, last)
    ]


SPANS_18 = _spans(1900, shanghai_today().year)
SPANS_15 = _spans(1900, 1999)


@st.composite
def valid_parts(draw: st.DrawFn, *, legacy: bool = False) -> tuple[str, date, int]:
    """(region code, birth date, sequence): a real past date in a year the region existed."""
    code, lo, hi = draw(st.sampled_from(SPANS_15 if legacy else SPANS_18))
    year = draw(st.integers(lo, hi))
    birth = draw(st.dates(date(year, 1, 1), min(date(year, 12, 31), shanghai_today())))
    return code, birth, draw(st.integers(0, 999))


@st.composite
def valid18(draw: st.DrawFn) -> str:
    return make18(*draw(valid_parts()))


DIGITS_X = "0123456789X"


@st.composite
def checksum_correct18(draw: st.DrawFn) -> str:
    """Known-ish region, arbitrary 8 date digits (often impossible or future), correct check."""
    code = draw(st.one_of(st.sampled_from(CODES), st.text("0123456789", min_size=6, max_size=6)))
    rest = draw(st.text("0123456789", min_size=11, max_size=11))
    head = code + rest
    return head + spec_check_char(head)


@st.composite
def near_miss18(draw: st.DrawFn) -> str:
    """A valid number with one digit changed, two adjacent swapped, or the check char replaced."""
    n = draw(valid18())
    kind = draw(st.sampled_from(["digit", "swap", "check"]))
    if kind == "digit":
        i = draw(st.integers(0, 16))
        return n[:i] + draw(st.sampled_from("0123456789")) + n[i + 1 :]
    if kind == "swap":
        i = draw(st.integers(0, 15))
        return n[:i] + n[i + 1] + n[i] + n[i + 2 :]
    return n[:17] + draw(st.sampled_from(DIGITS_X))


any18 = st.one_of(
    st.text(DIGITS_X, min_size=18, max_size=18),
    checksum_correct18(),
    near_miss18(),
    valid18(),
)
