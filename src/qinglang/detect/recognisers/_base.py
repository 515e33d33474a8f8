"""Helpers shared by the built-in recognisers: findings in original offsets, context, numerals."""

from __future__ import annotations

import re
import string
from datetime import date
from typing import Final

from qinglang.age import age_on
from qinglang.detect.findings import Finding, MinorSignal
from qinglang.detect.normalise import Normalised

__all__ = [
    "CN_NUMERAL",
    "DIGITS",
    "EN_NUMBER_WORDS",
    "LETTERS",
    "birth_signal",
    "clip",
    "cn_int",
    "context",
    "finding",
    "year_signal",
]

DIGITS: Final = "0123456789"
LETTERS: Final = string.ascii_letters
CN_NUMERAL: Final = "零〇一二两三四五六七八九十百壹贰叁肆伍陆柒捌玖拾佰幺"
_CN_VALUES: Final = {
    **dict.fromkeys("零〇", 0),
    **dict.fromkeys("一壹幺", 1),
    **dict.fromkeys("二两贰", 2),
    **dict.fromkeys("三叁", 3),
    **dict.fromkeys("四肆", 4),
    **dict.fromkeys("五伍", 5),
    **dict.fromkeys("六陆", 6),
    **dict.fromkeys("七柒", 7),
    **dict.fromkeys("八捌", 8),
    **dict.fromkeys("九玖", 9),
}
EN_NUMBER_WORDS: Final = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}


def cn_int(s: str) -> int | None:
    """Read 12, 十二, 二十三, 拾贰, 一百零二 or 二〇一二 (digit by digit) as an int; None if not."""
    s = s.strip()
    if not s:
        return None
    if s.isascii():
        return int(s) if s.isdigit() else EN_NUMBER_WORDS.get(s.lower())
    total = 0
    pending: int | None = None
    positional = False
    for ch in s:
        if ch in "十拾":
            total += (1 if pending is None else pending) * 10
            pending, positional = None, True
        elif ch in "百佰":
            total += (1 if pending is None else pending) * 100
            pending, positional = None, True
        elif ch in _CN_VALUES:
            v = _CN_VALUES[ch]
            pending = v if pending is None or positional else pending * 10 + v
        elif "0" <= ch <= "9":
            pending = int(ch) if pending is None else pending * 10 + int(ch)
        else:
            return None
    return total + (pending or 0)


def finding(
    norm: Normalised,
    start: int,
    end: int,
    category: str,
    value: str,
    confidence: float,
    recognizer: str,
    explanation: str,
    minor_signal: MinorSignal | None = None,
) -> Finding:
    """A finding for the normalised span [start, end), with offsets mapped to the original."""
    if not norm.identity:
        start, end = norm.to_original(start, end)
    elif not 0 <= start <= end <= len(norm.text):
        norm.to_original(start, end)  # raises: the span is outside the text
    return Finding(start, end, category, value, confidence, minor_signal, recognizer, explanation)


def clip(text: str, start: int, window: int) -> int:
    """Start of the `window` characters before `start`, not reaching back past a NUL."""
    lo = max(0, start - window)
    nul = text.rfind("\x00", lo, start)
    return lo if nul < 0 else nul + 1


def context(norm: Normalised, pattern: re.Pattern[str], start: int, window: int) -> str | None:
    """The context word of `pattern` within `window` characters before `start`, if any."""
    m = pattern.search(norm.text, clip(norm.text, start, window), start)
    return None if m is None else m.group()


def birth_signal(birth: date, today: date, minor_below: int, what: str) -> MinorSignal | None:
    """A minor signal for someone born on `birth`, if under `minor_below` on `today`."""
    if birth > today:
        return None
    age = age_on(birth, today)
    if age >= minor_below:
        return None
    return MinorSignal(age, f"{what}: born {birth.isoformat()}, {age} years old")


def year_signal(year: int, today: date, minor_below: int, what: str) -> MinorSignal | None:
    """A minor signal for someone born in `year` (age not exact), if possibly under the limit."""
    if year > today.year:
        return None
    oldest = today.year - year
    youngest = max(oldest - 1, 0)
    if youngest >= minor_below:
        return None
    return MinorSignal(None, f"{what}: born in {year}, {youngest} or {oldest} years old")
