"""Signals of age: age statements, birthdays, school grades and classes, school names.

These are the findings that most often reveal that the subject is a minor: "我今年12岁",
"10后", "I'm 13", a birth date or year giving an age under the limit (``age.minor_below`` of the
policy pack), "初二3班", "五年级", "Grade 5", "Year 8". Ages are computed against the scan's
reference date (``Normalised.today``), so a text can be re-read as of the day it was written.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from datetime import date
from typing import Final

from qinglang.detect.findings import Finding, MinorSignal
from qinglang.detect.normalise import Normalised
from qinglang.detect.recognisers._base import (
    CN_NUMERAL,
    DIGITS,
    LETTERS,
    birth_signal,
    clip,
    cn_int,
    finding,
    year_signal,
)
from qinglang.detect.recognisers.location import name_before

__all__ = [
    "AgeRecognizer",
    "BirthdayRecognizer",
    "GradeClassRecognizer",
    "SchoolRecognizer",
]

_SPACE: Final = re.compile(r"\s")
_SPACES: Final = re.compile(r"\s+")

# ----------------------------------------------------------------------------- age statements

_LETTER: Final = "[A-Za-z]"

_AGE_NUMBER: Final = re.compile(
    rf"(?<![0-9.{CN_NUMERAL}])(?P<num>[0-9]{{1,3}}|[{CN_NUMERAL}]{{1,4}})\s?(?:周|虚|足|实)?$"
)
"""The numeral right before 岁, searched in a short window ending at it."""
_GENERATION: Final = re.compile(
    r"[0-9](?<![0-9]{2})[0-9]后(?![0-9面来续期台端天果悔代者方排门座边头半退人妈爸])"
)
_MINOR_STATEMENT: Final = re.compile(
    r"(?:我|本人|俺|孩子|他|她)(?:还|都|尚|也)?(?:未|没|没有)成年(?!人)"
)
_AGE_AFTER_SKIP: Final = (
    "以上",
    "以下",
    "以内",
    "之前",
    "之后",
    "以前",
    "以后",
    "前",
    "后",
    "时",
    "那年",
    "起",
    "开始",
    "至",
    "到",
    "-",
    "~",
    "的时候",
    "及以上",
    "及以下",
    "段",
    "儿童",
    "以",
)
_THRESHOLD_BEFORE: Final = frozenset({"不满", "未满", "年满", "已满", "超过", "低于", "高于"})
_UNDER: Final = frozenset({"不满", "未满", "低于"})
_RANGE_BEFORE: Final = frozenset("-~至到和或、/")
_SUBJECT_ZH: Final = re.compile(
    r"我|俺|本人|孩子|女儿|儿子|闺女|宝宝|娃|今年|现在|已经|刚|才|他|她|妹妹|弟弟|小朋友|同学"
)
_EN_NUM: Final = (
    r"(?:[0-9]{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen"
    r"|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty)"
)
_AGE_EN: Final = re.compile(
    r"[IiOoAaTt0-9]"
    r"(?:(?<=[0-9])(?<![A-Za-z0-9.].)[0-9]?\s*(?:(?P<b>-?\s*(?i:years?|yrs?)\s*-?\s*(?i:old))"
    r"|(?P<c>(?i:yo|y/o|y\.o\.)))(?![A-Za-z])"
    # the letters after one test: a digit (most candidates) fails the two above and this one
    r"|(?<=[IiOoAaTt])"
    r"(?:(?<=[Ii])(?<![A-Za-z].)(?i:'?m|\s+am)\s+(?i:only\s+|just\s+|now\s+|almost\s+"
    rf"|nearly\s+)?(?P<a>(?i:{_EN_NUM}))(?![0-9A-Za-z])"
    r"(?=\s*(?i:y(?:ears?|rs?)?\s*(?:old|o)\b|y/o)|\s*[.!?,;)~&]|\s*(?![^\x00])|\s+(?i:and|but|so|lol"
    r"|lmao|btw|too|now|yet|haha|rn|girl|boy|in|from|here)\b)"
    r"|(?<=[Oo])(?P<old>(?i:ld))(?![A-Za-z])"
    r"|(?<=[Aa])(?<![A-Za-z].)(?i:ged?)\s*:?\s*(?P<d>[0-9]{1,2})(?![0-9])"
    r"|(?<=[Tt])(?<![A-Za-z].)(?i:urn(?:ed|ing))\s+"
    rf"(?P<e>(?i:{_EN_NUM}))(?![A-Za-z0-9])))"
)
"""English age statements in one pass: I'm 13 · 13 years old · 13yo · aged 13 · turned 13."""
_AGE_EN_LETTER: Final = re.compile("[MmYyLlGgUu]")
"""A letter that every match of _AGE_EN holds: 'm, am, years, yrs, yo, old, aged, turned."""
_WORD_YEARS_OLD: Final = re.compile(
    rf"(?<![A-Za-z])(?P<b>(?i:{_EN_NUM[3:-1]}))\s*-?\s*(?i:years?|yrs?)\s*-?\s*(?i:old)$"
)
"""A number word before 'years old' (searched in a window ending at 'old')."""
_EN_CONF: Final = {"a": 0.85, "b": 0.9, "c": 0.9, "d": 0.65, "e": 0.7}


def _age_signal(age: int, minor_below: int, said: str) -> MinorSignal | None:
    if age >= minor_below:
        return None
    return MinorSignal(age, f"age statement {said!r}: {age} years old")


class AgeRecognizer:
    """Age statements (我今年12岁, 12周岁, 10后, 我还没成年, I'm 13, 13 years old, 13yo)."""

    name = "age"
    batch_safe = True
    triggers = ("岁成后" + LETTERS,)
    anchors = (
        ("岁", "", ""),
        (DIGITS, "后", ""),  # 10后
        ("成", "年", ""),  # 我还没成年
        # _AGE_EN: I'm 13, I am 13 (no letter before the I), 13yo, 13 years old, thirteen
        # years old, aged 13, turned 13
        ("Ii", "'Mm", rf"(?<!{_LETTER}[\s\S]{{2}})(?:(?<=')[Mm])?\s"),
        ("Ii", r"\s", rf"(?<!{_LETTER}[\s\S]{{2}})\s*[Aa][Mm]"),
        (DIGITS, "Yy", ""),
        (DIGITS, r"\s\-", r"[\s\-]*[Yy]"),
        ("Oo", "Ll", "[Dd](?![A-Za-z])"),
        ("Aa", "Gg", rf"(?<!{_LETTER}[\s\S]{{2}})[Ee]"),
        ("Tt", "Uu", rf"(?<!{_LETTER}[\s\S]{{2}})[Rr][Nn]"),
    )
    categories = frozenset({"age"})
    languages: frozenset[str] = frozenset()

    def __init__(self, *, minor_below: int) -> None:
        self.minor_below = minor_below

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Chinese statements when the text has Chinese, English ones when it has English."""
        text = norm.text
        out: list[Finding] = []
        if "zh" in norm.languages and ("岁" in text or "后" in text or "成年" in text):
            out.extend(self._zh(norm))
        if (
            "en" in norm.languages
            and _AGE_EN_LETTER.search(text) is not None
            and _AGE_EN.search(text) is not None
        ):
            out.extend(self._en(norm))
        return out

    def _zh(self, norm: Normalised) -> list[Finding]:
        out: list[Finding] = []
        text = norm.text
        if "后" in text:
            for m in _GENERATION.finditer(text):
                f = self._generation(norm, m)
                if f is not None:
                    out.append(f)
        if "成年" in text:
            for m in _MINOR_STATEMENT.finditer(text):
                signal = MinorSignal(None, f"states being a minor: {m.group()!r}")
                out.append(
                    finding(
                        norm,
                        m.start(),
                        m.end(),
                        "age",
                        "<18",
                        0.85,
                        self.name,
                        "minor statement",
                        signal,
                    )
                )
        pos = text.find("岁")
        while pos >= 0:
            f = self._years(norm, pos)
            if f is not None:
                out.append(f)
            pos = text.find("岁", pos + 1)
        return out

    def _years(self, norm: Normalised, pos: int) -> Finding | None:
        """An age statement ending with the 岁 at `pos`, if the numeral before it is one."""
        text = norm.text
        m = _AGE_NUMBER.search(text, max(0, pos - 7), pos)
        if m is None or text[pos + 1 : pos + 2] == "月":
            return None
        age = cn_int(m.group("num"))
        if age is None or not 0 < age <= 120:
            return None
        start, end = m.start(), pos + 1
        if text[end : end + 1] == "半":
            end += 1
        tail = text[end : end + 3]
        if tail.startswith(_AGE_AFTER_SKIP):
            return None  # a range or a rule ("12岁以下"), not someone's age
        if start > 0 and text[start - 1] in _RANGE_BEFORE:
            return None
        subject = _SUBJECT_ZH.search(text, clip(text, start, 8), start)
        threshold = text[max(0, start - 2) : start]
        if threshold in _THRESHOLD_BEFORE:
            if subject is None:
                return None  # "不满18岁不能申请": a rule, not someone's age
            if threshold in _UNDER:  # "我还不满18岁": younger than that
                said = text[start - 2 : end]
                signal = None
                if age <= self.minor_below:
                    signal = MinorSignal(None, f"age statement {said!r}: under {age}")
                why = f"age statement after {subject.group()!r}"
                return finding(norm, start - 2, end, "age", f"<{age}", 0.85, self.name, why, signal)
        conf = 0.9 if subject else 0.6
        said = text[start:end]
        why = "age statement" + (f" after {subject.group()!r}" if subject else "")
        signal = _age_signal(age, self.minor_below, said)
        return finding(norm, start, end, "age", str(age), conf, self.name, why, signal)

    def _generation(self, norm: Normalised, m: re.Match[str]) -> Finding | None:
        yy = int(m.group()[:2])
        if yy % 5:
            return None
        this_year = norm.today.year
        first = 2000 + yy if 2000 + yy <= this_year else 1900 + yy
        last = first + (9 if yy % 10 == 0 else 4)
        oldest = this_year - first
        youngest = max(this_year - last - 1, 0)
        said = m.group()
        signal = None
        if oldest < self.minor_below:
            signal = MinorSignal(
                None, f"{said}: born {first}–{last}, {youngest} to {oldest} years old"
            )
        why = f"generation {said!r} (born {first}–{last})"
        return finding(norm, m.start(), m.end(), "age", said, 0.75, self.name, why, signal)

    def _en(self, norm: Normalised) -> Iterator[Finding]:
        text = norm.text
        for m in _AGE_EN.finditer(text):
            key = m.lastgroup
            if key == "a":
                start, end = m.span("a")
                number = m.group("a")
            elif key in ("b", "c"):
                start, end = m.span()
                number = m.group()[: 2 if m.group()[1:2].isdigit() else 1]
            elif key == "old":
                w = _WORD_YEARS_OLD.search(text, max(0, m.start() - 24), m.end())
                if w is None:
                    continue
                key, (start, end), number = "b", w.span(), w.group("b")
            else:
                start, end = m.span()
                number = m.group(key or "d")
            age = cn_int(number)
            if age is None or not 0 < age <= 120:
                continue
            signal = _age_signal(age, self.minor_below, text[start:end])
            yield finding(
                norm,
                start,
                end,
                "age",
                str(age),
                _EN_CONF[key or "d"],
                self.name,
                "age statement",
                signal,
            )


# ----------------------------------------------------------------------------- birthdays

_MM: Final = r"(?:[0-9]{1,2}|十[一二]?|[一二三四五六七八九])"
_DD: Final = r"(?:[0-9]{1,2}|[二三]?十[一二三四五六七八九]?|[一二三四五六七八九])"
_DATE_ZH: Final = (
    rf"(?:(?:19|20)[0-9]{{2}}\s?(?:年\s?(?:{_MM}\s?月\s?(?:{_DD}\s?[日号]?)?)?"
    r"|[-/.]\s?[0-9]{1,2}\s?[-/.]\s?[0-9]{1,2})"
    r"|(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])(?![0-9])"
    rf"|{_MM}\s?月\s?{_DD}\s?[日号]?)"
)
_BIRTHDAY_ZH: Final = re.compile(
    r"(?P<ctx>生日|出生日期|出生年月日?|出生于|出生在|出生|生于|诞生于|生辰)"
    rf"(?:是|为|在|于|:|\s|的){{0,3}}(?P<date>{_DATE_ZH})"
)
"""A birth word, then the date."""
_BORN_AFTER_ZH: Final = re.compile(r"出生|生人|生的|出世|降生|生(?=[,.!?;，。！？\s]|(?![^\x00]))")
"""A birth word after a date ("2012年3月5日出生"); the date is searched before it."""
_DATE_BEFORE_ZH: Final = re.compile(rf"(?P<date>{_DATE_ZH})\s?$")
_BIRTH_YEAR_ZH: Final = re.compile(r"我是(?P<year>(?:19|20)[0-9]{2})年的")
_DATE_END: Final = "0123456789年月日号"
"""Characters that a Chinese date (_DATE_ZH) can end with, before white space, but numerals."""
_DAY_END: Final = "一二三四五六七八九十"
_AFTER_MONTH: Final = "(?:" + "|".join(f"(?<=月[\\s\\S]{{{d + 1}}})" for d in range(1, 5)) + ")"
"""After a numeral and the next character: a 月 one to four characters before the numeral."""
_BORN_WORD: Final = "(?:(?<=出)[生世]|(?<=生)|(?<=降)生)"
"""The rest of a _BORN_AFTER_ZH word after its first character."""
_MONTHS: Final = {
    m: i
    for i, names in enumerate(
        (
            "jan january",
            "feb february",
            "mar march",
            "apr april",
            "may",
            "jun june",
            "jul july",
            "aug august",
            "sep sept september",
            "oct october",
            "nov november",
            "dec december",
        ),
        start=1,
    )
    for m in names.split()
}
_MONTH_RE: Final = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_EN: Final = (
    r"(?:(?:19|20)[0-9]{2}[-/.][0-9]{1,2}[-/.][0-9]{1,2}"
    r"|[0-9]{1,2}[-/.][0-9]{1,2}[-/.](?:19|20)[0-9]{2}"
    rf"|(?:{_MONTH_RE})\.?\s+[0-9]{{1,2}}(?:st|nd|rd|th)?(?:,?\s+(?:19|20)[0-9]{{2}})?"
    rf"|[0-9]{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTH_RE})\.?(?:,?\s+(?:19|20)[0-9]{{2}})?"
    rf"|(?:{_MONTH_RE})\.?\s+(?:19|20)[0-9]{{2}}"
    r"|(?:19|20)[0-9]{2})(?![0-9])"
)
_BIRTHDAY_EN: Final = re.compile(
    r"[BbDd](?<![A-Za-z].)(?P<ctx>(?i:irthday|-?day|orn(?:\s+on|\s+in)?|ob|\.o\.b\.?"
    r"|ate\s+of\s+birth))(?![A-Za-z])"
    rf"(?i:\s+is|\s*:|\s*-|\s+was)?\s*(?P<date>(?i:{_DATE_EN}))"
)


_YMD_COMPACT: Final = re.compile(r"((?:19|20)[0-9]{2})([0-9]{2})([0-9]{2})")
_YMD_SEPARATED: Final = re.compile(r"((?:19|20)[0-9]{2})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})")
_YMD_ZH: Final = re.compile(r"(?:((?:19|20)[0-9]{2})年)?(?:([^年月]+)月(?:([^月日号]+)[日号]?)?)?")


def _zh_date(s: str) -> tuple[int | None, int | None, int | None]:
    """(year, month, day) of a Chinese-style date; missing parts None."""
    s = s.replace(" ", "")
    m = _YMD_COMPACT.fullmatch(s)
    if m:
        return int(m.group(1)), int(m.group(2)), int(m.group(3))
    m = _YMD_SEPARATED.fullmatch(s)
    if m:
        return int(m.group(1)), int(m.group(2)), int(m.group(3))
    m = _YMD_ZH.fullmatch(s)
    if m:
        year = int(m.group(1)) if m.group(1) else None
        month = cn_int(m.group(2)) if m.group(2) else None
        day = cn_int(m.group(3)) if m.group(3) else None
        return year, month, day
    return None, None, None


def _en_date(s: str) -> tuple[int | None, int | None, int | None]:
    """(year, month, day) of an English-style date (M/D/Y unless the first number is > 12)."""
    s = s.strip().lower()
    m = _YMD_SEPARATED.fullmatch(s)
    if m:
        return int(m.group(1)), int(m.group(2)), int(m.group(3))
    m = re.fullmatch(r"([0-9]{1,2})[-/.]([0-9]{1,2})[-/.]((?:19|20)[0-9]{2})", s)
    if m:
        a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return (y, b, a) if a > 12 else (y, a, b)
    year = re.search(r"(?:19|20)[0-9]{2}", s)
    month = next((v for k, v in _MONTHS.items() if re.search(rf"\b{k}\b", s)), None)
    day = re.search(r"(?<![0-9])([0-9]{1,2})(?:st|nd|rd|th)?(?![0-9])", s)
    return (
        int(year.group()) if year else None,
        month,
        int(day.group(1)) if day and month else None,
    )


def _valid_date(y: int | None, m: int | None, d: int | None) -> date | None:
    if y is None or m is None or d is None:
        return None
    try:
        return date(y, m, d)
    except ValueError:
        return None


class BirthdayRecognizer:
    """Birth dates and years after 生日/出生/born/DOB, or before 出生/生的; age → minor signal."""

    name = "birthday"
    batch_safe = True
    triggers = (DIGITS + "年月", "生诞是世" + LETTERS)  # 世: 出世
    anchors = (
        # _BIRTHDAY_ZH: a birth word (生日, 生于, 生辰, 诞生于; 出生…), at most three more of
        # its characters and three fillers, then the date's first character
        ("生", "日于辰", r"[\s\S]{0,4}[0-9一二三四五六七八九十]"),
        ("出", "生", r"[\s\S]{0,6}[0-9一二三四五六七八九十]"),
        # _BORN_AFTER_ZH: a date's last character, at most three white-space characters (one
        # in the date, one before the word, a newline that ``$`` lets through), the word
        (_DATE_END, "出生降", _BORN_WORD),
        (_DATE_END, r"\s", rf"\s{{0,2}}[出生降]{_BORN_WORD}"),
        # a date ends with a Chinese numeral only in its day, up to four characters after 月
        (_DAY_END, "出生降", rf"{_AFTER_MONTH}{_BORN_WORD}"),
        (_DAY_END, r"\s", rf"{_AFTER_MONTH}\s{{0,2}}[出生降]{_BORN_WORD}"),
        ("我", "是", "(?:19|20)[0-9]{2}年的"),  # _BIRTH_YEAR_ZH
        ("BbDd", "Ii", "(?i:rthday)"),  # _BIRTHDAY_EN
        ("BbDd", "Dd", "(?i:ay)"),
        ("BbDd", "-", "(?i:day)"),
        ("BbDd", "Oo", "(?i:rn|b)"),
        ("BbDd", ".", "(?i:o\\.b)"),
        ("BbDd", "Aa", r"(?i:te\s+of\s+birth)"),
    )
    categories = frozenset({"birthday"})
    languages: frozenset[str] = frozenset()

    def __init__(self, *, minor_below: int) -> None:
        self.minor_below = minor_below

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Dates with a birth context; value ISO (2012-05-03), year (2012) or --MM-DD."""
        text = norm.text
        out: list[Finding] = []
        if "zh" in norm.languages:
            out.extend(self._zh(norm))
        if "en" in norm.languages and _BIRTHDAY_EN.search(text) is not None:
            for m in _BIRTHDAY_EN.finditer(text):
                f = self._finding(norm, m.span("date"), _en_date(m.group("date")), m.group())
                if f is not None:
                    out.append(f)
        return out

    def _zh(self, norm: Normalised) -> list[Finding]:
        out: list[Finding] = []
        text = norm.text
        if "生" in text or "出世" in text:  # in every word of _BIRTHDAY_ZH and _BORN_AFTER_ZH
            out.extend(self._zh_words(norm))
        if "我是" in text:
            for m in _BIRTH_YEAR_ZH.finditer(text):
                ymd = (int(m.group("year")), None, None)
                f = self._finding(norm, m.span("year"), ymd, m.group())
                if f is not None:
                    out.append(f)
        return out

    def _zh_words(self, norm: Normalised) -> list[Finding]:
        """Dates after a birth word, and before one."""
        out: list[Finding] = []
        text = norm.text
        ends: list[int] = []  # of the birth-word-first findings, in order
        for m in _BIRTHDAY_ZH.finditer(text):
            f = self._finding(norm, m.span("date"), _zh_date(m.group("date")), m.group())
            if f is not None:
                ends.append(m.end())
                out.append(f)
        for m in _BORN_AFTER_ZH.finditer(text):
            # a date before the birth word is not read before the end of the last birth-word-
            # first finding of the same text (texts that scan_many joins end at a NUL)
            taken = -1
            if ends:
                stop = text.find("\x00", m.start())
                last = bisect_right(ends, len(text) if stop < 0 else stop) - 1
                if last >= 0 and ends[last] > text.rfind("\x00", 0, m.start()):
                    taken = ends[last]
            if m.start() < taken:
                continue
            d = _DATE_BEFORE_ZH.search(text, max(0, m.start() - 20), m.start())
            if d is not None and d.start() >= taken:
                said = text[d.start() : m.end()]
                f = self._finding(norm, d.span("date"), _zh_date(d.group("date")), said)
                if f is not None:
                    out.append(f)
        return out

    def _finding(
        self,
        norm: Normalised,
        span: tuple[int, int],
        ymd: tuple[int | None, int | None, int | None],
        said: str,
    ) -> Finding | None:
        y, mo, d = ymd
        today = norm.today
        born = _valid_date(y, mo, d)
        signal: MinorSignal | None
        if born is not None:
            if born > today:
                return None
            value = born.isoformat()
            signal = birth_signal(born, today, self.minor_below, "birth date")
            conf = 0.9
        elif y is not None and mo is None:
            if not 1900 <= y <= today.year:
                return None
            value = str(y)
            signal = year_signal(y, today, self.minor_below, "birth year")
            conf = 0.8
        elif y is None and mo is not None and d is not None and _valid_date(2000, mo, d):
            value = f"--{mo:02d}-{d:02d}"
            signal = None
            conf = 0.8
        else:
            return None
        start, end = span
        why = f"birth date in {said!r}"
        return finding(norm, start, end, "birthday", value, conf, self.name, why, signal)


# ----------------------------------------------------------------------------- grades, classes

_G: Final = r"(?:1[0-2]|[1-9]|十[一二]?|[一二三四五六七八九])"
_CLS: Final = r"(?:\s?\(?\s?(?:[0-9]{1,2}|[一二三四五六七八九十]{1,3})\s?\)?\s?班)"
_GRADE_NUMBER: Final = re.compile(rf"(?P<level>小学|初中|高中)?(?<![初高])(?P<g>{_G})\s?$")
"""The grade before 年级, searched in a short window ending at it."""
_CLASS_AFTER: Final = re.compile(_CLS)
_STAGE: Final = re.compile(rf"[初高](?P<g>[一二三123])(?:\s?年级)?(?P<c>{_CLS})?")
_KINDERGARTEN: Final = re.compile(r"幼儿园\s?(?:大班|中班|小班)")
_PUPIL: Final = re.compile(r"小学生|初中生|中学生|高中生")
_PUPIL_SUBJECT: Final = re.compile(
    r"(?:我|我是|孩子是|女儿是|儿子是|他是|她是|还是)(?:个|一名|一个)?$"
)
_ATTEND: Final = re.compile(r"(?:在读|读|上|念)(?:小学|初中|高中)(?![老教同])")
_STAGE_AFTER_OK: Final = re.compile(r"[的了生上下学时毕开期新党班(]|学生|新生|那年|年级")
_STAGE_BEFORE_OK: Final = re.compile(r"(?:读|上|念|在|是|今年|刚上|我|我们|就读|升|考上|进入)$")
_STAGE_BEFORE_BAD: Final = re.compile(r"(?:正月|大年|农历|腊月|月|年|初|高|最|很|更|比|提)$")
_STAGE_AFTER_BAD: Final = re.compile(r"十五|点|些|截|筹|倍|等|头|个|度|分|米|级|声|下来|出")
_GRADE_EN: Final = re.compile(
    r"[GgYyKkSs](?<![A-Za-z].)"
    r"(?:(?<=[Gg])(?P<grade>(?i:rade)(?P<ers>(?i:rs?))?)(?![A-Za-z])"
    r"|(?<=[Yy])(?i:ear)\s*(?P<year>1[0-3]|[1-9])(?![0-9A-Za-z%/.])"
    r"|(?<=[Kk])(?P<kg>(?i:indergarten(?:er)?))(?![A-Za-z])"
    r"|(?<=[Ss])(?P<school>(?i:chool)(?:(?i:er))?)(?![A-Za-z]))"
)
"""English grade words in one pass: grade · Year N · kindergarten · school (high school …)."""
_GRADE_NUM_AFTER: Final = re.compile(r"\s*(?P<n>1[0-2]|[1-9]|K)(?![0-9A-Za-z%/.])")
_ORDINAL_BEFORE: Final = re.compile(r"(?<![A-Za-z0-9])(?P<n>1[0-2]|[1-9])(?:st|nd|rd|th)[\s-]+$")
_HS_BEFORE: Final = re.compile(
    r"(?<![A-Za-z])(?i:(?:(?:freshman|sophomore|junior|senior)\s+in\s+)?"
    r"(?:high|middle|elementary|primary|junior\s+high))\s+$"
)
_HS_AFTER: Final = re.compile(r"\s+(?i:freshman|sophomore|junior|senior|student)(?![A-Za-z])")
_EN_BEFORE_OK: Final = re.compile(
    r"\b(?:in|i'?m|started|starting|start|my|is|am|was|finish\w*)\s+$", re.IGNORECASE
)
_LEVEL_OFFSET: Final = {"初": 6, "高": 9, "初中": 6, "高中": 9, "小学": 0}


def _grade_signal(grade: int | None, label: str, first_age: int = 6) -> MinorSignal:
    if grade is None:
        return MinorSignal(None, f"{label}: a school pupil")
    lo = first_age + grade - 1
    return MinorSignal(None, f"{label}: grade {grade}, usually {lo}–{lo + 1} years old")


class GradeClassRecognizer:
    """School grades and classes: 初二3班, 五年级2班, 高一, 幼儿园大班, Grade 5, Year 8."""

    name = "grade_class"
    batch_safe = True
    triggers = ("级初高园学gGyYkKsS",)
    anchors = (
        ("年", "级", ""),
        ("初高", "一二三123", ""),  # _STAGE
        ("幼", "儿", "园"),
        ("小初中高", "学中", "生"),  # _PUPIL
        ("读上念", "小初高", "[学中]"),  # _ATTEND
        ("Gg", "Rr", "(?i:ade)"),  # _GRADE_EN
        ("Yy", "Ee", "(?i:ar)"),
        ("Kk", "Ii", "(?i:ndergarten)"),
        ("Ss", "Cc", "(?i:hool)"),
    )
    categories = frozenset({"grade_class"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Grades reveal a pupil, so each finding carries a minor signal."""
        out: list[Finding] = []
        if "zh" in norm.languages:
            out.extend(self._zh(norm))
        if "en" in norm.languages and _GRADE_EN.search(norm.text) is not None:
            out.extend(self._en(norm))
        return out

    def _zh(self, norm: Normalised) -> list[Finding]:
        text = norm.text
        found: list[tuple[int, int, float, MinorSignal]] = []
        pos = text.find("年级")
        while pos >= 0:
            m = _GRADE_NUMBER.search(text, max(0, pos - 4), pos)
            if m is not None and not text[max(0, m.start() - 2) : m.start()].endswith(
                ("大学", "大", "研")
            ):
                grade = cn_int(m.group("g"))
                level = m.group("level")
                if grade is not None and 1 <= grade <= 12:
                    if level and level != "小学" and grade <= 3:
                        grade += _LEVEL_OFFSET[level]
                    end = pos + 2
                    c = _CLASS_AFTER.match(text, end)
                    if c is not None:
                        end = c.end()
                    label = _SPACE.sub("", text[m.start() : end])
                    conf = 0.9 if c else 0.8
                    found.append((m.start(), end, conf, _grade_signal(grade, label)))
            pos = text.find("年级", pos + 2)
        if "初" in text or "高" in text:
            for m in _STAGE.finditer(text):
                start, end = m.span()
                has_class = bool(m.group("c")) or "年级" in m.group()
                if not has_class:
                    before = text[max(0, start - 4) : start]
                    after = text[end : end + 2]
                    if _STAGE_BEFORE_BAD.search(before) or _STAGE_AFTER_BAD.match(after):
                        continue
                    if not (_STAGE_BEFORE_OK.search(before) or _STAGE_AFTER_OK.match(after)):
                        continue
                g = cn_int(m.group("g"))
                grade = None if g is None else g + _LEVEL_OFFSET[text[start]]
                label = _SPACE.sub("", m.group())
                found.append((start, end, 0.9 if has_class else 0.75, _grade_signal(grade, label)))
        if "幼儿园" in text:
            for m in _KINDERGARTEN.finditer(text):
                label = _SPACE.sub("", m.group())
                signal = MinorSignal(None, f"{label}: kindergarten, usually 3–6 years old")
                found.append((m.start(), m.end(), 0.85, signal))
        if "学生" in text or "中生" in text:  # in every word of _PUPIL
            for m in _PUPIL.finditer(text):
                if _PUPIL_SUBJECT.search(text, max(0, m.start() - 6), m.start()):
                    found.append((m.start(), m.end(), 0.8, _grade_signal(None, m.group())))
        if "小学" in text or "初中" in text or "高中" in text:  # in every match of _ATTEND
            for m in _ATTEND.finditer(text):
                found.append((m.start(), m.end(), 0.7, _grade_signal(None, m.group())))
        return self._emit(norm, found, "")

    def _emit(
        self, norm: Normalised, found: list[tuple[int, int, float, MinorSignal]], space: str
    ) -> list[Finding]:
        """Findings for the spans found; the value is the span with white space folded."""
        out: list[Finding] = []
        for start, end, conf, signal in found:
            label = _SPACES.sub(space, norm.text[start:end])
            out.append(
                finding(
                    norm,
                    start,
                    end,
                    "grade_class",
                    label,
                    conf,
                    self.name,
                    "school grade/class",
                    signal,
                )
            )
        return out

    def _en(self, norm: Normalised) -> list[Finding]:
        text = norm.text
        found: list[tuple[int, int, float, MinorSignal]] = []
        for m in _GRADE_EN.finditer(text):
            start, end = m.span()
            kind = m.lastgroup
            if kind == "grade" or kind == "ers":
                before_ok = _EN_BEFORE_OK.search(text, max(0, start - 14), start) is not None
                ordinal = _ORDINAL_BEFORE.search(text, max(0, start - 8), start)
                after = None if m.group("ers") else _GRADE_NUM_AFTER.match(text, end)
                if ordinal is not None:
                    grade, start, conf = int(ordinal.group("n")), ordinal.start(), 0.85
                elif after is not None:
                    n = after.group("n")
                    grade, end = (0 if n == "K" else int(n)), after.end()
                    conf = 0.8 if before_ok or text[start] == "G" else 0.6
                else:
                    continue
                label = _SPACES.sub(" ", text[start:end])
                found.append((start, end, conf, _grade_signal(grade or None, label)))
            elif kind == "year":
                before_ok = _EN_BEFORE_OK.search(text, max(0, start - 14), start) is not None
                label = _SPACES.sub(" ", m.group())
                conf = 0.8 if before_ok or text[start] == "Y" else 0.5
                found.append((start, end, conf, _grade_signal(int(m.group("year")), label, 5)))
            elif kind == "kg":
                signal = MinorSignal(None, f"{m.group()}: kindergarten, usually 5–6 years old")
                found.append((start, end, 0.75, signal))
            else:
                before = _HS_BEFORE.search(text, max(0, start - 40), start)
                after = _HS_AFTER.match(text, end)
                if before is None or (after is None and " in " not in before.group()):
                    continue
                end = after.end() if after is not None else end
                label = _SPACES.sub(" ", text[before.start() : end])
                found.append((before.start(), end, 0.8, _grade_signal(None, label)))
        return self._emit(norm, found, " ")


# ----------------------------------------------------------------------------- school names

_SCHOOL_ZH: Final = re.compile(
    r"(?:实验学校|外国语学校|国际学校|附属小学|附属中学|附属初级中学|高级中学|初级中学|中心小学"
    r"|完全中学|职业高中|学校(?<!大学校)|小学(?<!中小学)|中学|初中|高中|附小|附中)"
    r"(?!生|老师|同学|时|阶段|部|毕业后|长)"
)
_NUMBERED_SCHOOL: Final = re.compile(
    r"[第一二三四五六七八九十][一二三四五六七八九十]{0,2}中"
    r"(?=[的读上念毕就校同老初高,.!?;，。！？\s]|(?![^\x00]))"
)
"""Numbered middle schools written short: 北京四中, 衡水一中 (the place name is required)."""
_SCHOOL_EN: Final = re.compile(
    r"(?<![A-Za-z])(?:(?:[A-Z][a-z]+(?:'s)?|St\.?|[0-9]{1,3}(?:st|nd|rd|th)?)\s+){1,5}?"
    r"(?:Primary|Elementary|Middle|Junior\s+High|High|Secondary|Grammar|Prep(?:aratory)?"
    r"|Public|Intermediate)\s+$"
)
"""The name before "School", searched in a window ending at it."""


class SchoolRecognizer:
    """School names ending 小学/中学/初中/高中/学校/附小/附中, and "… Primary/High School"."""

    name = "school_names"
    batch_safe = True
    triggers = ("学附中Ss",)
    # the suffixes of _SCHOOL_ZH by their first character, _NUMBERED_SCHOOL by its 中, "School"
    anchors = (
        ("学", "校", ""),
        ("小中", "学", ""),
        ("初高", "中", ""),
        ("附", "小中", ""),
        ("第一二三四五六七八九十", "中", ""),  # _NUMBERED_SCHOOL
        ("S", "c", "hool"),
    )
    categories = frozenset({"school"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> Iterator[Finding]:
        """A name of at least two characters before the suffix (rule-based: confidence 0.6)."""
        text = norm.text
        if "zh" in norm.languages:
            for pattern in (_SCHOOL_ZH, _NUMBERED_SCHOOL):
                for m in pattern.finditer(text):
                    head = name_before(text, m.start())
                    if m.start() - head < 2:
                        continue
                    value = text[head : m.end()]
                    why = "school name + suffix"
                    yield finding(norm, head, m.end(), "school", value, 0.6, self.name, why)
        if "en" in norm.languages and "School" in text:
            pos = text.find("School")
            while pos >= 0:
                end = pos + 6
                name = _SCHOOL_EN.search(text, max(0, pos - 80), pos)
                if name is not None and not text[end : end + 1].isalpha():
                    value = _SPACES.sub(" ", text[name.start() : end])
                    why = "school name"
                    yield finding(norm, name.start(), end, "school", value, 0.6, self.name, why)
                pos = text.find("School", end)
