"""Signals of age, each with a weight (log-odds towards under 18) and a reviewer-readable reason.

Sources: profile text (nickname, bio, background) and posts, read for stated ages ("我今年13岁",
"I'm 13"), grades and schools ("初二", "8th grade"), birth years ("2011年生", "born in 2009"),
generation words ("10后"), minor / adult statements and lexicon groups (school life, parents,
teachers, adult life; `qinglang/age/data/age_lexicon.json`); the PII detector's minor findings;
behaviour (activity during school hours, content categories); the social graph (share of friends
known to be minors). An age stated about someone else ("我儿子今年8岁", "my son is 8") is
not the writer's age and is skipped.

>>> [s.name for s in text_signals("初二学生，今年14岁", 2026)]
['stated_age', 'grade']
>>> [(s.name, s.weight) for s in text_signals("我儿子今年8岁，上二年级", 2026)]
[('grade', 0.8), ('lexicon:parent_zh', -3.0)]
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any, Final
from zoneinfo import ZoneInfo

from qinglang.age.infer.estimate import Signal
from qinglang.age.infer.records import AgeRecord

__all__ = [
    "Lexicon",
    "behaviour_signals",
    "detector_signals",
    "graph_signals",
    "lexicon",
    "record_signals",
    "text_signals",
]

MINOR_BELOW: Final = 18
"""Default age of majority when no policy is given (the pack's age.minor_below overrides)."""

_CN_DIGIT: Final = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}


def _cn_num(s: str) -> int | None:
    """Parse 1..99 in Arabic or Chinese numerals (十三, 二十, 13)."""
    if s.isdigit():
        return int(s)
    if "十" in s:
        head, _, tail = s.partition("十")
        tens = _CN_DIGIT.get(head, -1) if head else 1
        ones = _CN_DIGIT.get(tail, -1) if tail else 0
        return None if tens < 0 or ones < 0 else tens * 10 + ones
    if len(s) == 1 and s in _CN_DIGIT:
        return _CN_DIGIT[s]
    return None


_NUM: Final = r"[0-9]{1,2}|[一二两三四五六七八九]?十[一二三四五六七八九]?|[一二两三四五六七八九]"
_OTHER_ZH: Final = re.compile(
    r"(?:儿子|女儿|闺女|孩子|娃|宝宝|宝贝|学生|弟弟|妹妹|侄子|侄女|外甥|孙子|孙女|外孙|小朋友|他|她|狗|猫)"
    r"[^，。,.!！？?\n]{0,4}\Z"
)
_OTHER_EN: Final = re.compile(
    r"\b(?:son|daughter|kid|kids|child|brother|sister|cousin|nephew|niece|he|she|dog|cat|"
    r"students?|they|boy|girl|baby)\b[^.!?\n]{0,12}\Z",
    re.IGNORECASE,
)

_ZH_AGE: Final = re.compile(
    rf"(?<!满|过|于)(?P<n>{_NUM})\s*(?:周岁|岁)(?!以|前|后|时|那|的时候|生日)"
)
_EN_AGE: Final = re.compile(
    r"\b(?:i\s*am|i'm|im|i’m)\s+(?:only\s+|just\s+|now\s+)?(?P<n>[0-9]{1,2})\b"
    r"(?!\s*(?:%|percent|min|minutes|hours|days|weeks|months|lbs|pounds|kg|ft|feet|inches|cm|:|\.[0-9]))"
    r"|\b(?P<m>[0-9]{1,2})\s*(?:years?\s*old|yrs?\s*old|y/o|yo)\b"
    r"|\bturn(?:ed|ing)\s+(?P<t>[0-9]{1,2})\b(?!\s*(?:min|minutes|hours|days|%))",
    re.IGNORECASE,
)
_ZH_GRADE: Final = re.compile(
    r"(?P<g>初[一二三]|高[一二三]|[一二三四五六]年级|小学生|初中生|高中生|中学生|小学|初中|高中)"
    r"(?P<after>[^，。,.\s]{0,3}(?:老师|班主任|教师|校长)|的孩子|孩子|家长|学生家长)?"
)
_ZH_GRADE_AGE: Final = {
    "初一": 12,
    "初二": 13,
    "初三": 14,
    "高一": 15,
    "高二": 16,
    "高三": 17,
    "一年级": 7,
    "二年级": 8,
    "三年级": 9,
    "四年级": 10,
    "五年级": 11,
    "六年级": 12,
    "小学生": 10,
    "初中生": 13,
    "高中生": 16,
    "中学生": 14,
    "小学": 10,
    "初中": 13,
    "高中": 16,
}
_EN_GRADE: Final = re.compile(
    r"\b(?:(?P<n>[1-9]|1[0-2])(?:st|nd|rd|th)\s+grade(?:r)?|grade\s+(?P<m>[1-9]|1[0-2])\b|"
    r"(?P<w>freshman|sophomore|junior|senior)\s+(?:in|at)\s+high\s+school|"
    r"(?P<s>middle\s+school(?:er)?|junior\s+high))",
    re.IGNORECASE,
)
_EN_WORD_GRADE: Final = {"freshman": 14, "sophomore": 15, "junior": 16, "senior": 17}
_ZH_BIRTH: Final = re.compile(
    r"(?P<y>(?:19|20)[0-9]{2}|[0-9]{2})\s*年(?:出生|生人|生的|生|的)(?!日|活|意|肖)"
)
_EN_BIRTH: Final = re.compile(r"\bborn\s+(?:in\s+)?(?P<y>(?:19|20)[0-9]{2})\b", re.IGNORECASE)
_EN_CLASS_OF: Final = re.compile(r"\bclass\s+of\s+(?:20)?(?P<y>[0-9]{2})\b", re.IGNORECASE)
_LATIN: Final = re.compile(r"[A-Za-z]")
_ZH_GRADE_CHARS: Final = re.compile(r"[初高级学]")
_GENERATION: Final = re.compile(r"(?<![0-9])(?P<d>[0-9]{2})后(?![0-9面来续期台端天果悔代者方排])")
_MINOR_ZH: Final = re.compile(
    r"(?<!不是)(?:未成年|还没成年|没成年|[不未]满18|[不未]满十八)(?!人的家长)"
)
_ADULT_ZH: Final = re.compile(r"已成年|成年了|早就成年|满18岁了|年满十八")


@dataclass(frozen=True, slots=True)
class _Group:
    name: str
    weight: float
    lang: str
    en: str
    zh: str


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The lexicon groups and model constants from the packaged ``age_lexicon.json``."""

    groups: dict[str, _Group]
    by_term: dict[str, str]
    zh: re.Pattern[str]
    en: re.Pattern[str]
    behaviour: dict[str, Any]
    default: dict[str, Any]

    def hits(self, text: str, latin: bool = True) -> dict[str, list[str]]:
        """Lexicon group name → matched terms (in order of first appearance)."""
        found: dict[str, list[str]] = {}
        for pat in (self.zh, self.en) if latin else (self.zh,):
            for m in pat.finditer(text):
                term = m.group(0).lower()
                g = self.by_term.get(term)
                if g is not None:
                    terms = found.setdefault(g, [])
                    if term not in terms:
                        terms.append(term)
        return found


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """Load the packaged lexicon once."""
    raw = resources.files("qinglang.age.data").joinpath("age_lexicon.json").read_text("utf-8")
    d = json.loads(raw)
    groups: dict[str, _Group] = {}
    by_term: dict[str, str] = {}
    zh_terms: list[str] = []
    en_terms: list[str] = []
    for g in d["groups"]:
        groups[g["name"]] = _Group(g["name"], float(g["weight"]), g["lang"], g["en"], g["zh"])
        for t in g["terms"]:
            by_term.setdefault(t.lower(), g["name"])
            (zh_terms if g["lang"] == "zh" else en_terms).append(t.lower())
    zh_alt = "|".join(re.escape(t) for t in sorted(set(zh_terms), key=len, reverse=True))
    en_alt = "|".join(re.escape(t) for t in sorted(set(en_terms), key=len, reverse=True))
    return Lexicon(
        groups,
        by_term,
        re.compile(zh_alt, re.IGNORECASE),
        re.compile(rf"\b(?:{en_alt})\b", re.IGNORECASE),
        d["behaviour"],
        d["default_model"],
    )


def _about_other(text: str, start: int) -> bool:
    """Whether the words just before `start` attribute what follows to someone else."""
    before = text[max(0, start - 24) : start]
    return bool(_OTHER_ZH.search(before) or _OTHER_EN.search(before))


def _age_weight(age: int, base: float, minor_below: int) -> float:
    return base if age < minor_below else -base


def text_signals(
    text: str, ref_year: int, minor_below: int = MINOR_BELOW, where: str = "profile"
) -> list[Signal]:
    """Signals in one text (profile or posts), reading ages as of `ref_year`; pure and fast."""
    if not text:
        return []
    lex = lexicon()
    k = lex.default
    out: list[Signal] = []
    # stated ages
    latin = _LATIN.search(text) is not None
    pats: tuple[tuple[re.Pattern[str], str], ...] = ((_ZH_AGE, "zh"),) if "岁" in text else ()
    if latin:
        pats += ((_EN_AGE, "en"),)
    for pat, lang in pats:
        for m in pat.finditer(text):
            raw = m.group("n") if lang == "zh" else (m.group("n") or m.group("m") or m.group("t"))
            age = _cn_num(raw)
            if age is None or not 5 <= age <= 90 or _about_other(text, m.start()):
                continue
            out.append(
                Signal(
                    "stated_age",
                    _age_weight(age, k["stated_age_weight"], minor_below),
                    f"states an age of {age} in the {where}",
                    f"{_zh_where(where)}自述年龄{age}岁",
                    m.group(0),
                    age,
                )
            )
            break
        if out and out[-1].name == "stated_age":
            break
    # grades
    g = _ZH_GRADE.search(text) if _ZH_GRADE_CHARS.search(text) else None
    if g is not None and not g.group("after") and not _about_other(text, g.start()):
        age = _ZH_GRADE_AGE[g.group("g")]
        out.append(
            Signal(
                "grade",
                k["grade_weight"],
                f"says they are in {g.group('g')} (about {age})",
                f"{_zh_where(where)}提到自己在读{g.group('g')}（约{age}岁）",
                g.group(0),
                age,
            )
        )
    else:
        e = _EN_GRADE.search(text) if latin else None
        if e is not None and not _about_other(text, e.start()):
            if e.group("n") or e.group("m"):
                age = int(e.group("n") or e.group("m")) + 5
            elif e.group("w"):
                age = _EN_WORD_GRADE[e.group("w").lower()]
            else:
                age = 13
            out.append(
                Signal(
                    "grade",
                    k["grade_weight"] if age < minor_below else 0.0,
                    f"says they are in school: {e.group(0)!r} (about {age})",
                    f"{_zh_where(where)}提到在读年级：{e.group(0)}（约{age}岁）",
                    e.group(0),
                    age,
                )
            )
    # birth years and class-of years
    b = (_ZH_BIRTH.search(text) if "年" in text else None) or (
        _EN_BIRTH.search(text) if latin else None
    )
    if b is not None and not _about_other(text, b.start()):
        y = int(b.group("y"))
        y = y if y >= 1900 else (2000 + y if 2000 + y <= ref_year else 1900 + y)
        age = ref_year - y
        if 3 <= age <= 90:
            out.append(
                Signal(
                    "birth_year",
                    _age_weight(age, k["birth_year_weight"], minor_below),
                    f"gives a birth year of {y} (about {age} in {ref_year})",
                    f"提到出生年份{y}（{ref_year}年约{age}岁）",
                    b.group(0),
                    age,
                )
            )
    c = _EN_CLASS_OF.search(text) if latin else None
    if c is not None:
        grad = 2000 + int(c.group("y"))
        age = 18 - (grad - ref_year)
        if 10 <= age <= 30 and grad >= ref_year:
            out.append(
                Signal(
                    "class_of",
                    _age_weight(age, k["birth_year_weight"], minor_below),
                    f"graduates with the class of {grad} (about {age})",
                    f"{grad}届毕业生（约{age}岁）",
                    c.group(0),
                    age,
                )
            )
    # generation words: born in a decade
    gen = _GENERATION.search(text) if "后" in text else None
    if gen is not None:
        d0 = int(gen.group("d"))
        start = 2000 + d0 if 2000 + d0 <= ref_year else 1900 + d0
        ages = [ref_year - y for y in range(start, min(start + 10, ref_year))]
        if ages:
            share = sum(a < minor_below for a in ages) / len(ages)
            w = k["generation_weight"] * (2 * share - 1)
            mid = round(sum(ages) / len(ages))
            out.append(
                Signal(
                    "generation",
                    w,
                    f"calls themselves {gen.group(0)} (born {start}s; {share:.0%} of that "
                    f"decade is under {minor_below} in {ref_year})",
                    f"自称{gen.group(0)}（{ref_year}年该年代出生者{share:.0%}未满{minor_below}岁）",
                    gen.group(0),
                    mid if share >= 0.5 else None,
                )
            )
    adultish = "成年" in text or "满" in text
    mm = _MINOR_ZH.search(text) if adultish else None
    if mm is not None and not _about_other(text, mm.start()):
        out.append(
            Signal(
                "minor_statement",
                k["minor_statement_weight"],
                "says they are not yet an adult",
                "自述未成年",
                mm.group(0),
            )
        )
    am = _ADULT_ZH.search(text) if adultish else None
    if am is not None:
        out.append(
            Signal(
                "adult_statement",
                -k["minor_statement_weight"],
                "says they are an adult",
                "自述已成年",
                am.group(0),
            )
        )
    hits = lex.hits(text, latin)
    if _OTHERS_GROUPS.intersection(hits):
        out = [_discount(s) if s.name in _AGE_KINDS else s for s in out]
    for name, terms in hits.items():
        grp = lex.groups[name]
        out.append(
            Signal(
                f"lexicon:{name}",
                grp.weight,
                f"{grp.en}: {', '.join(terms[:3])}",
                f"{grp.zh}：{'、'.join(terms[:3])}",
                ", ".join(terms[:5]),
            )
        )
    return out


_OTHERS_GROUPS: Final = frozenset({"parent_zh", "parent_en", "teacher_zh", "teacher_en"})
_AGE_KINDS: Final = frozenset({"stated_age", "grade", "birth_year", "class_of", "minor_statement"})
_DISCOUNT: Final = 0.25


def _discount(s: Signal) -> Signal:
    """An age cue in a text that also reads as a parent or teacher: it may be about a child."""
    return Signal(
        s.name,
        s.weight * _DISCOUNT,
        s.explanation_en + " (discounted: the text also reads as a parent's or teacher's)",
        s.explanation_zh + "（已降权：文本同时像家长或教师所写）",
        s.evidence,
        None,
    )


def _zh_where(where: str) -> str:
    return {"profile": "资料中", "posts": "发帖中"}.get(where, "")


def detector_signals(text: str, on: date, minor_below: int = MINOR_BELOW) -> list[Signal]:
    """Signals from the PII detector's findings that reveal or suggest a minor."""
    from qinglang.detect import scan

    out: list[Signal] = []
    w = lexicon().default["detector_weight"]
    for f in scan(text, now=on):
        ms = f.minor_signal
        if ms is None or _about_other(text, f.start):
            continue
        age = ms.age
        if age is not None and age >= minor_below:
            continue
        out.append(
            Signal(
                f"detector:{f.category}",
                w,
                f"the personal-information detector flags a minor: {ms.reason}",
                f"个人信息检测器提示未成年人：{ms.reason}",
                text[f.start : f.end],
                age,
            )
        )
        break
    return out


def behaviour_signals(record: AgeRecord, tz: ZoneInfo) -> list[Signal]:
    """Signals from activity times (school hours on weekdays) and content categories."""
    beh = lexicon().behaviour
    w = lexicon().default["behaviour_weight"]
    ev = record.events
    if len(ev) < beh["min_events"]:
        return []
    out: list[Signal] = []
    lo, hi = beh["school_hours"]
    local: list[datetime] = [e.at.astimezone(tz) if e.at.tzinfo else e.at for e in ev]
    weekday = [t for t in local if t.weekday() < 5]
    if len(weekday) >= beh["min_events"]:
        share = sum(lo <= t.hour < hi for t in weekday) / len(weekday)
        if share <= beh["low_school_share"]:
            out.append(
                Signal(
                    "behaviour:school_hours",
                    w,
                    f"only {share:.0%} of weekday activity falls in school hours ({lo}:00–{hi}:00)",
                    f"工作日上课时间（{lo}:00–{hi}:00）活跃仅占{share:.0%}",
                    f"{len(weekday)} weekday events",
                )
            )
        elif share >= beh["high_school_share"]:
            out.append(
                Signal(
                    "behaviour:school_hours",
                    -w,
                    f"{share:.0%} of weekday activity falls in school hours",
                    f"工作日上课时间活跃占{share:.0%}",
                    f"{len(weekday)} weekday events",
                )
            )
    young = set(beh["young_categories"])
    cats = [e.category.lower() for e in ev if e.category]
    if cats:
        share = sum(c in young for c in cats) / len(cats)
        if share >= beh["young_category_share"]:
            out.append(
                Signal(
                    "behaviour:content",
                    w,
                    f"{share:.0%} of content consumed is in children's categories",
                    f"所浏览内容{share:.0%}属于少儿类别",
                    f"{len(cats)} events",
                )
            )
    return out


def graph_signals(record: AgeRecord) -> list[Signal]:
    """Signal from the share of friends whose age is known to be under 18."""
    s = record.friends_minor_share
    if s is None:
        return []
    k = lexicon().default
    w = max(-1.0, min(2.5, k["friends_scale"] * (s - k["friends_centre"])))
    return [
        Signal(
            "graph:minor_friends",
            w,
            f"{s:.0%} of friends with a known age are minors",
            f"已知年龄的好友中{s:.0%}为未成年人",
            f"{s:.3f}",
        )
    ]


def record_signals(
    record: AgeRecord,
    on: date,
    minor_below: int = MINOR_BELOW,
    tz: ZoneInfo | None = None,
    detector: bool = True,
) -> list[Signal]:
    """All signals of one record: profile text, posts, detector, behaviour, graph."""
    out = text_signals(record.profile_text, on.year, minor_below, "profile")
    posts = record.post_text
    if posts:
        seen = {s.name for s in out}
        out.extend(
            s for s in text_signals(posts, on.year, minor_below, "posts") if s.name not in seen
        )
    others = any(s.name.removeprefix("lexicon:") in _OTHERS_GROUPS for s in out)
    if detector and record.profile_text and not others and not any(s.age for s in out):
        out.extend(detector_signals(record.profile_text, on, minor_below))
    out.extend(behaviour_signals(record, tz or ZoneInfo("Asia/Shanghai")))
    out.extend(graph_signals(record))
    return out


def logit(signals: Sequence[Signal], bias: float, clip: float) -> float:
    """The additive score: bias plus signal weights, clipped to ±clip."""
    z = bias + math.fsum(s.weight for s in signals)
    return max(-clip, min(clip, z))
