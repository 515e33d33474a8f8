"""Text normalisation that defeats evasion, with a map from every normalised span to the original.

Recognisers match on `Normalised.text`; `Normalised.to_original` turns a span of it back into the
exact span of the text that was handed in, so findings always point at what the user wrote.

What is undone, in this order:

1. Width and look-alike characters, one character for one: full-width ASCII (``ｗｘ１２３``), the
   ideographic and other spaces, dashes and curly quotes, every Unicode decimal digit and
   single-digit enclosed number (``①`` ``⑴`` ``⒈`` ``❶`` ``➊`` ``⓪``, super/subscripts,
   mathematical digits and letters). Then traditional → simplified Chinese through OpenCC
   (``t2s``), only when the text holds a character that the conversion changes.
2. Deletions and expansions: zero-width characters (U+200B–U+200D, U+2060, U+FEFF, soft hyphen,
   direction marks) are dropped; enclosed numbers of two digits (``⑫`` → ``12``) expand; pinyin
   right after a Chinese character in parentheses (``網(wǎng)絡(luò)`` → ``网络``) is dropped.
3. Digit runs and aliases: Chinese and financial numerals (``〇零一二三四五六七八九两幺``,
   ``壹贰叁肆伍陆柒捌玖``) become digits inside a run of at least four numerals; separators of at
   most two characters between digits (spaces, ``-`` ``_`` ``~`` ``·`` ``/`` ``|`` ``*`` ``(``
   ``)``, emoji,
   and ``.``/``,`` when used as the one separator of three or more groups) are removed when the
   run holds at least five digits, except in a date (``2012-05-03``) or an IPv4 address; contact
   app aliases (``薇信``, ``vx``, ``扣扣``, ``企鹅号`` …, see ``data/aliases.toml``) become
   ``微信`` / ``QQ``.

>>> n = normalise("电话一三八①②③④ 五六七八")
>>> n.text
'电话13812345678'
>>> n.to_original(2, 13)
(2, 14)
>>> n = normalise("加我薇信：ｗｘ１２３")
>>> n.text, n.to_original(5, 10)
('加我微信:wx123', (5, 10))
>>> normalise("網(wǎng)絡(luò)").text
'网络'
"""

from __future__ import annotations

import re
import time
import tomllib
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Final

from qinglang.age import SHANGHAI
from qinglang.detect.anchors import Anchor, Anchors, class_of

__all__ = [
    "UNFOLDED",
    "Alias",
    "Normalised",
    "detect_languages",
    "fold_common",
    "load_aliases",
    "normalise",
    "work_anchors",
]

Edit = tuple[int, int, int, int]
"""(new_start, new_end, old_start, old_end): a replaced stretch; text outside edits maps 1:1."""

# ----------------------------------------------------------------------------- character tables

ZERO_WIDTH: Final = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u180e\u2061\u2062\u2063\u2064"
CJK_CLASS: Final = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"

_CN_DIGITS: Final = {
    **dict.fromkeys("〇零", "0"),
    **dict.fromkeys("一幺壹", "1"),
    **dict.fromkeys("二两贰", "2"),
    **dict.fromkeys("三叁", "3"),
    **dict.fromkeys("四肆", "4"),
    **dict.fromkeys("五伍", "5"),
    **dict.fromkeys("六陆", "6"),
    **dict.fromkeys("七柒", "7"),
    **dict.fromkeys("八捌", "8"),
    **dict.fromkeys("九玖", "9"),
}
_CN_CLASS: Final = "".join(_CN_DIGITS)
_CN_TRANS: Final = {ord(k): v for k, v in _CN_DIGITS.items()}
_AFTER_YI: Final = frozenset("起下样定直般些点个次天切会边半向旦共同致律再")
"""Characters that make 一 the start of a common word (一起, 一下, 一样 …) rather than a digit."""

# Blocks scanned for enclosed / look-alike numbers and letters (outside them only Nd digits and
# the explicit entries below are mapped).
_ENCLOSED_BLOCKS: Final = (
    (0x2460, 0x2500),  # Enclosed Alphanumerics: ①..⑳ ⑴..⒇ ⒈..⒛ ⓪ ⓫..⓴ ⓵..⓾ ⓿
    (0x2776, 0x2794),  # Dingbats: ❶..❿ ➀..➉ ➊..➓
    (0x3251, 0x3260),  # ㉑..㉟
    (0x32B1, 0x32C0),  # ㊱..㊿
    (0x1F100, 0x1F10D),  # 🄀..🄌
)


def _build_tables() -> tuple[dict[int, str], dict[str, str]]:
    """Return the one-for-one translation table and the multi-digit expansions."""
    table: dict[int, str] = {}
    for cp in range(0xFF01, 0xFF5F):  # full-width ASCII
        table[cp] = chr(cp - 0xFEE0)
    for cp in (0x3000, 0x00A0, 0x202F, 0x205F, *range(0x2000, 0x200B)):
        table[cp] = " "
    for cp in (*range(0x2010, 0x2016), 0x2212, 0xFE58, 0xFE63):
        table[cp] = "-"
    table.update({0x2018: "'", 0x2019: "'", 0x201C: '"', 0x201D: '"', 0x2027: "·", 0x30FB: "·"})
    for cp in (*range(0x80, 0x10000), *range(0x1D400, 0x1D800), *range(0x1FBF0, 0x1FBFA)):
        ch = chr(cp)
        d = unicodedata.digit(ch, None)
        if d is not None:
            table[cp] = str(d)
        elif 0x1D400 <= cp < 0x1D800:  # mathematical letters → ASCII letters
            folded = unicodedata.normalize("NFKC", ch)
            if len(folded) == 1 and folded.isascii() and folded.isalpha():
                table[cp] = folded
    expansions: dict[str, str] = {}
    for lo, hi in _ENCLOSED_BLOCKS:
        for cp in range(lo, hi):
            ch = chr(cp)
            value = unicodedata.numeric(ch, None)
            if value is None or value != int(value):
                continue
            if value < 10:
                table[cp] = str(int(value))
            else:
                expansions[ch] = str(int(value))
    for cp in (*map(ord, ZERO_WIDTH),):
        table.pop(cp, None)
    return table, expansions


_TABLE, _EXPANSIONS = _build_tables()

# Chinese text nearly always holds some full-width punctuation; these few are replaced with
# str.replace (fast), and the full table runs only when a rarer character is present.
_COMMON: Final = tuple((c, _TABLE[ord(c)]) for c in "，：（）“”？！；—‘’")


_COMMON_CODES: Final = frozenset(ord(c) for c, _ in _COMMON)
UNFOLDED: Final[dict[str, str]] = {}
"""The ASCII characters that `fold_common` makes, and the forms it makes them from."""
for _wide, _ascii in _COMMON:
    UNFOLDED[_ascii] = UNFOLDED.get(_ascii, "") + _wide
# The table's characters that fold_common leaves, and every astral character (a class of BMP
# characters and one range is a fast test in `re`; `_fold_rare` looks the astral ones up).
_RARE: Final = re.compile(
    "["
    + class_of(k for k in _TABLE if k < 0x10000 and k not in _COMMON_CODES)
    + "\U00010000-\U0010ffff]"
)
_TABLE_CHARS: Final = {chr(k): v for k, v in _TABLE.items()}
_TABLE_KEYS: Final = frozenset(_TABLE_CHARS)
_REPLACE_AT_MOST: Final = 32
"""Up to this many distinct characters to fold, `_fold_rare` replaces each (`str.translate`
with a dict looks every character up, and is slower on short texts)."""


def _fold_width(text: str) -> str:
    """Apply the one-for-one table (full-width forms, digits, spaces, dashes, quotes)."""
    return _fold_rare(fold_common(text))


def fold_common(text: str) -> str:
    """Replace the common full-width punctuation (，：（） …), the first step of `normalise`."""
    for a, b in _COMMON:
        if a in text:
            text = text.replace(a, b)
    return text


def _fold_rare(text: str) -> str:
    """The rest of the one-for-one table, after `fold_common`."""
    found = _RARE.findall(text)
    if not found:
        return text
    chars = _TABLE_KEYS.intersection(found)
    if not chars:
        return text
    if len(chars) > _REPLACE_AT_MOST:
        return text.translate(_TABLE)
    for c in chars:  # no character maps to one of the table's keys: the order does not matter
        text = text.replace(c, _TABLE_CHARS[c])
    return text


# ----------------------------------------------------------------------------- traditional → simp.


@dataclass(frozen=True, slots=True)
class _T2S:
    trigger: re.Pattern[str]
    table: dict[int, str]
    convert: Callable[[str], str]


@cache
def _t2s() -> _T2S:
    """OpenCC t2s, the set of characters it changes on their own, and a per-character fallback."""
    import opencc

    converter = opencc.OpenCC("t2s.json")
    chars = [
        chr(cp)
        for lo, hi in ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))
        for cp in range(lo, hi)
    ]
    converted = converter.convert("\n".join(chars)).split("\n")
    table: dict[int, str] = {}
    if len(converted) == len(chars):
        for a, b in zip(chars, converted, strict=True):
            if a != b and len(b) == 1:
                table[ord(a)] = b
    else:  # pragma: no cover - a converter that merges lines: fall back to one call per char
        for a in chars:
            b = converter.convert(a)
            if a != b and len(b) == 1:
                table[ord(a)] = b
    trigger = re.compile("[" + "".join(chr(k) for k in sorted(table)) + "]")
    return _T2S(trigger, table, converter.convert)


def _to_simplified(text: str) -> str:
    """Convert traditional characters, keeping one character for one (OpenCC phrases if it can)."""
    t2s = _t2s()
    if t2s.trigger.search(text) is None:
        return text
    out = t2s.convert(text)
    if len(out) == len(text):
        return out
    return text.translate(t2s.table)  # a phrase changed length: characters only


# ----------------------------------------------------------------------------- aliases


@dataclass(frozen=True, slots=True)
class Alias:
    """A contact-app alias from ``data/aliases.toml``: what is written, what it stands for."""

    alias: str
    canonical: str
    when: str
    reason: str


@cache
def load_aliases() -> tuple[Alias, ...]:
    """Return the packaged contact-app aliases (``qinglang/detect/data/aliases.toml``)."""
    raw = resources.files("qinglang.detect").joinpath("data/aliases.toml").read_text("utf-8")
    entries = tomllib.loads(raw)["alias"]
    out = []
    for e in entries:
        alias = Alias(str(e["alias"]), str(e["canonical"]), str(e["when"]), str(e["reason"]))
        if alias.when not in ("always", "contact"):
            raise ValueError(f"aliases.toml: {alias.alias!r}: unknown 'when' {alias.when!r}")
        out.append(alias)
    return tuple(out)


_ID_DIGIT: Final = f"0-9{_CN_CLASS}"
_CONTACT_BEFORE: Final = ("加", "加我", "+", "联系", "我的", "找")
"""Words right before an alias that make it a contact alias (when = "contact")."""
_CONTACT_AFTER: Final = (
    rf"(?=[\s:=]{{0,3}}(?:号码?|ID|id)?[\s:=是为]{{0,3}}[A-Za-z_\-]{{0,20}}[{_ID_DIGIT}])"
)


def _alias_pattern(aliases: Iterable[Alias]) -> str:
    """One pattern for all aliases, longest first, with their guards.

    It starts by consuming one character of a class (which `re` scans for quickly); each branch
    then checks with a look-behind that this was its alias's first character.
    """
    parts = []
    firsts: set[str] = set()
    for a in sorted(aliases, key=lambda a: -len(a.alias)):
        head, rest = a.alias[0], a.alias[1:]
        latin = any("a" <= c.lower() <= "z" for c in a.alias)
        heads = {head.lower(), head.upper()} if latin else {head}
        firsts |= heads
        body = f"(?<=[{re.escape(''.join(sorted(heads)))}])"
        tail = f"(?i:{re.escape(rest)})" if latin and rest else re.escape(rest)
        if a.alias.isascii():  # a whole token, and not part of an address (abc@qq.com)
            body += "(?<![A-Za-z0-9@._\\-].)"
            tail += "(?![A-Za-z0-9_\\-]|\\.[A-Za-z])"
        if a.when == "contact":
            before = "|".join(f"(?<={re.escape(w)}.)" for w in _CONTACT_BEFORE)
            tail = f"(?:(?:{before}){tail}|{tail}{_CONTACT_AFTER})"
        parts.append(body + tail)
    return f"[{re.escape(''.join(sorted(firsts)))}](?:{'|'.join(parts)})"


# ----------------------------------------------------------------------------- stage patterns

_TONES: Final = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_PY_LETTERS: Final = f"a-zü{_TONES}"
_PINYIN_TONED: Final = (
    rf"(?=[{_PY_LETTERS} ]*[{_TONES}])[{_PY_LETTERS}]{{1,7}}(?: [{_PY_LETTERS}]{{1,7}}){{0,3}}\)"
    rf"|[a-zü]{{1,6}}[1-5](?: [a-zü]{{1,6}}[1-5]){{0,3}}\)"
)
_PINYIN_PLAIN: Final = r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?[aeiouüv]{1,3}(?:ng|n|r)?\)"
_HAS_TONED_PINYIN: Final = re.compile(rf"\((?<=[{CJK_CLASS}]\()(?:{_PINYIN_TONED})")
_EXPANDS: Final = "".join(_EXPANSIONS)
_STAGE_B1: Final = re.compile(
    rf"[{ZERO_WIDTH}({_EXPANDS}]"  # one consumed class first: a fast scan in `re`
    rf"(?:(?<=[{ZERO_WIDTH}])(?P<zw>[{ZERO_WIDTH}]*)"
    rf"|(?<=[{CJK_CLASS}]\()(?:(?P<py>{_PINYIN_TONED})|(?P<plain>{_PINYIN_PLAIN}))"
    rf"|(?<=[{_EXPANDS}])(?P<exp>))"
)
_NUL_RUN: Final = re.compile("\x00+")
_B1_GATE: Final = re.compile(f"[{ZERO_WIDTH}({_EXPANDS}]")

_EMOJI_CLASS: Final = (
    "\u2190-\u21ff\u2300-\u23ff\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff\u3030\u303d\u3297\u3299"
    "\ufe0e\ufe0f\U0001f000-\U0001faff\U0001f3fb-\U0001f3ff"
)
_SEP: Final = rf"[ \t\-_~·•/|,.*#(){_EMOJI_CLASS}]"
_D: Final = f"[0-9{_CN_CLASS}]"
_X: Final = "[Xx](?![A-Za-z0-9])"
_RUN: Final = re.compile(
    rf"[0-9{_CN_CLASS}](?<![0-9].)"
    rf"(?:(?<=[0-9])[0-9]*(?={_SEP}{{1,2}}(?:{_D}|{_X})|[{_CN_CLASS}])|(?<=[{_CN_CLASS}]))"
    rf"(?:(?:{_SEP}{{1,2}}{_D}|{_D})+(?:{_SEP}{{0,2}}{_X})?|{_SEP}{{1,2}}{_X})"
)
_DATE_RUN: Final = re.compile(
    r"(?:19|20)[0-9]{2}([-/.])[0-9]{1,2}\1[0-9]{1,2}|[0-9]{1,2}([-/.])[0-9]{1,2}\2(?:19|20)[0-9]{2}"
)
_IPV4_RUN: Final = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_SEP_RE: Final = re.compile(f"{_SEP}+")
_ASCII_DIGIT: Final = re.compile("[0-9]")
_CN_NUMERAL: Final = re.compile(f"[{_CN_CLASS}]")


@cache
def _aliases_re() -> tuple[re.Pattern[str], dict[str, str]]:
    """The alias pattern, and canonical tokens by lower-cased alias."""
    aliases = load_aliases()
    return re.compile(_alias_pattern(aliases)), {a.alias.lower(): a.canonical for a in aliases}


# ----------------------------------------------------------------------------- edit machinery

Sub = tuple[int, int, str]
"""(start, end, replacement) in the text a stage reads."""


def _apply(text: str, subs: list[Sub]) -> tuple[str, list[Edit]]:
    """Apply sorted, non-overlapping substitutions; those that change length become edits."""
    edits: list[Edit] = []
    if not subs:
        return text, edits
    pieces: list[str] = []
    last = 0
    shift = 0
    append = pieces.append
    for start, end, repl in subs:
        append(text[last:start])
        append(repl)
        if len(repl) != end - start:
            new_start = start + shift
            edits.append((new_start, new_start + len(repl), start, end))
            shift += len(repl) - (end - start)
        last = end
    pieces.append(text[last:])
    return "".join(pieces), edits


class _EditMap:
    """Maps characters of a stage's output back to its input through sorted edits."""

    __slots__ = ("new_ends", "new_starts", "old_ends", "old_starts")

    def __init__(self, edits: list[Edit]) -> None:
        columns = zip(*edits, strict=True) if edits else ((), (), (), ())
        new_starts, new_ends, old_starts, old_ends = columns
        self.new_starts: list[int] = list(new_starts)
        self.new_ends: list[int] = list(new_ends)
        self.old_starts: list[int] = list(old_starts)
        self.old_ends: list[int] = list(old_ends)

    def char_start(self, q: int) -> int:
        """Input offset where output character q starts."""
        i = bisect_right(self.new_starts, q) - 1
        if i < 0:
            return q
        if q < self.new_ends[i]:
            return self.old_starts[i]
        return q - self.new_ends[i] + self.old_ends[i]

    def char_end(self, q: int) -> int:
        """Input offset where output character q ends (exclusive)."""
        i = bisect_right(self.new_starts, q) - 1
        if i < 0:
            return q + 1
        if q < self.new_ends[i]:
            return self.old_ends[i]
        return q - self.new_ends[i] + self.old_ends[i] + 1


def _compose(first: list[Edit], second: list[Edit]) -> list[Edit]:
    """Edits text0 → text2 from edits text0 → text1 (`first`) and text1 → text2 (`second`).

    An edit of `first` inside a replaced stretch of `second` is absorbed by it; the others move
    to text2 coordinates. (`second` never replaces only part of a stretch that `first` made.)
    """
    if not first:
        return second
    if not second:
        return first
    m1 = _EditMap(first)
    out: list[Edit] = [
        (ns, ne, m1.char_start(os), m1.char_end(oe - 1)) for ns, ne, os, oe in second
    ]
    second_old_starts = [e[2] for e in second]
    second_old_ends = [e[3] for e in second]
    for a, b, x, y in first:
        i = bisect_right(second_old_starts, a) - 1
        if i >= 0:
            os2, oe2 = second[i][2], second[i][3]
            if (a < b and a < oe2) or (a == b and os2 < a < oe2):
                continue
        j = bisect_right(second_old_ends, a) - 1
        delta = second[j][1] - second[j][3] if j >= 0 else 0
        out.append((a + delta, b + delta, x, y))
    out.sort()
    return out


# ----------------------------------------------------------------------------- stage handlers


def _b1_subs(text: str) -> list[Sub]:
    """Zero-width characters dropped, pinyin after a character folded into it, ⑫ → 12."""
    subs: list[Sub] = []
    toned: dict[int, bool] = {}  # per NUL-separated segment (texts batched by scan_many)
    nuls = [m.start() for m in _NUL_RUN.finditer(text)] if "\x00" in text else []
    append = subs.append
    for m in _STAGE_B1.finditer(text):
        kind = m.lastgroup
        if kind is None:  # a "(" not followed by pinyin
            continue
        start, end = m.span()
        if kind == "zw":
            append((start, end, ""))
        elif kind == "exp":
            append((start, end, _EXPANSIONS[m.group()]))
        else:
            if kind == "plain":
                k = bisect_right(nuls, start)
                if k not in toned:
                    lo = nuls[k - 1] if k > 0 else 0
                    hi = nuls[k] if k < len(nuls) else len(text)
                    toned[k] = _HAS_TONED_PINYIN.search(text, lo, hi) is not None
                if not toned[k]:
                    continue
            # pinyin belongs to the character before it: map that character to both
            append((start - 1, end, text[start - 1]))
    return subs


def _run_subs(m: re.Match[str]) -> list[Sub]:
    """Digit run: numerals → digits (runs of 4+), separators dropped (runs of 5+ digits)."""
    run = m.group()
    base = m.start()
    if len(run) > 1 and run[-1] == "一" and m.string[m.end() : m.end() + 1] in _AFTER_YI:
        run = run[:-1].rstrip()  # "…叁一起": the 一 starts the word 一起, it is not a digit
    ascii_run = run.isascii()  # then it holds no numeral, and starts with a digit
    if not ascii_run and _ASCII_DIGIT.search(run) is not None:
        # A lone numeral at either edge is a word next to a number ("…5843一起"), not a digit.
        a, b = 0, len(run)
        if run[0] in _CN_DIGITS and run[1] not in _CN_DIGITS:
            a = 1
            while a < b and _SEP_RE.match(run[a]):
                a += 1
        if run[-1] in _CN_DIGITS and run[-2] not in _CN_DIGITS:
            b -= 1
            while b > a and _SEP_RE.match(run[b - 1]):
                b -= 1
        if (a, b) != (0, len(run)):
            run, base = run[a:b], base + a
            if len(run) < 2:
                return []
    has_cn = not ascii_run and _CN_NUMERAL.search(run) is not None
    seps = [s.span() for s in _SEP_RE.finditer(run)]
    # a run is numerals, separators and perhaps a final X
    n_digits = len(run) - run.count("X") - run.count("x")
    for s, e in seps:
        n_digits -= e - s
    subs: list[Sub] = []
    if has_cn:
        if n_digits < 4:
            return subs
        converted = run.translate(_CN_TRANS)
    else:
        converted = run
    collapse = n_digits >= 5 and seps and not _DATE_RUN.fullmatch(converted)
    if collapse and ("." in run or "," in run):  # only a separator can be "." or ","
        texts = {run[s:e] for s, e in seps}
        collapse = len(texts) == 1 and len(seps) >= 2 and not _IPV4_RUN.fullmatch(converted)
    if not collapse:
        if has_cn:
            subs.append((base, base + len(run), converted))
        return subs
    last = 0
    for s, e in seps:
        if has_cn and last < s:
            subs.append((base + last, base + s, converted[last:s]))
        subs.append((base + s, base + e, ""))
        last = e
    if has_cn and last < len(run):
        subs.append((base + last, base + len(run), converted[last:]))
    return subs


def _b2_subs(text: str) -> list[Sub]:
    """Digit runs (numerals, separators) and contact-app aliases."""
    subs: list[Sub] = []
    for m in _RUN.finditer(text):
        subs.extend(_run_subs(m))
    pattern, canonical = _aliases_re()
    if pattern.search(text) is not None:
        subs.extend(
            (m.start(), m.end(), canonical[m.group().lower()]) for m in pattern.finditer(text)
        )
        subs.sort()
    return subs


# ----------------------------------------------------------------------------- languages

_CJK_RE: Final = re.compile(f"[{CJK_CLASS}]")


def detect_languages(text: str) -> frozenset[str]:
    """Languages whose patterns apply: ``zh`` if the text has Chinese, ``en`` if latin letters.

    Every pattern needs characters of its own script, so running both on mixed text costs little
    and misses nothing; the result does not depend on how texts are batched.
    """
    zh = _CJK_RE.search(text) is not None
    ascii_part = text.encode("ascii", "ignore")
    en = ascii_part.lower() != ascii_part.upper()  # (bytes change case of ASCII letters only)
    if zh:
        return _BOTH if en else _ZH
    return _EN if en else _NONE


_ZH: Final = frozenset({"zh"})
_EN: Final = frozenset({"en"})
_BOTH: Final = frozenset({"zh", "en"})
_NONE: Final[frozenset[str]] = frozenset()
_LANGS: Final = {"zh": _ZH, "en": _EN}


# ----------------------------------------------------------------------------- public API


class Normalised:
    """Normalised text for recognisers, its map back to the original, languages and date."""

    __slots__ = ("_cache", "_map", "languages", "original", "text", "today")

    def __init__(
        self,
        text: str,
        original: str,
        edits: list[Edit],
        languages: frozenset[str],
        today: date,
    ) -> None:
        self.text = text
        self.original = original
        self.languages = languages
        self.today = today
        self._map = _EditMap(edits) if edits else None
        # by id: hashing a compiled pattern hashes its code, which costs more than the lookup
        self._cache: dict[int, tuple[re.Pattern[str], list[re.Match[str]]]] = {}

    @property
    def identity(self) -> bool:
        """Whether normalised offsets are original offsets (no character was added or dropped)."""
        return self._map is None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the normalised span [start, end) to the original span it came from."""
        n, n_orig = len(self.text), len(self.original)
        if not 0 <= start <= end <= n:
            raise ValueError(f"span [{start}, {end}) is outside 0..{n}")
        m = self._map
        if m is None:
            return start, end
        if start == 0 and end == n:  # the whole text, with what was dropped at its ends
            return 0, n_orig
        if start == end:  # an empty span sits right after the character before it
            pos = 0 if start == 0 else m.char_end(start - 1)
            return pos, pos
        return m.char_start(start), m.char_end(end - 1)

    def boundaries(self, start: int, end: int) -> list[int]:
        """Normalised offsets inside (start, end) where original characters were dropped/merged."""
        m = self._map
        if m is None:
            return []
        lo = bisect_right(m.new_starts, start)
        hi = bisect_right(m.new_starts, end - 1)
        out: list[int] = []
        for i in range(lo, hi):
            p = m.new_starts[i]
            if start < p < end and (not out or out[-1] != p):
                out.append(p)
            q = m.new_ends[i]
            if start < q < end and q != p:
                out.append(q)
        return out

    def matches(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        """All matches of `pattern` in the normalised text, computed once and shared."""
        cached = self._cache.get(id(pattern))
        if cached is not None and cached[0] is pattern:  # (the entry keeps the pattern alive)
            return cached[1]
        found = list(pattern.finditer(self.text))
        self._cache[id(pattern)] = (pattern, found)
        return found

    def __repr__(self) -> str:
        return f"Normalised({self.text!r}, languages={sorted(self.languages)})"


_DAY: list[tuple[float, float, date]] = []


def shanghai_today(now: datetime | date | None = None) -> date:
    """Return the reference date: `now` as a date in Asia/Shanghai (naive: taken as local)."""
    if now is None:
        ts = time.time()
        if _DAY and _DAY[0][0] <= ts < _DAY[0][1]:
            return _DAY[0][2]
        current = datetime.now(SHANGHAI)
        midnight = current.replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight.timestamp()
        end = (midnight + timedelta(days=1)).replace(tzinfo=SHANGHAI).timestamp()
        _DAY[:] = [(start, min(end, start + 86400), current.date())]
        return current.date()
    if isinstance(now, datetime):
        if now.tzinfo is None or now.utcoffset() is None:
            return now.date()
        return now.astimezone(SHANGHAI).date()
    return now


_THIRD_NUMERAL: Final = (
    rf"{_SEP}{{0,2}}{_D}|(?<={_D}[\s\S]{{2}})|(?<={_D}{_SEP}[\s\S]{{2}})"
    rf"|(?<={_D}{_SEP}{{2}}[\s\S]{{2}})"
)
"""After two numerals side by side: a third one in the same run (four are needed to convert)."""
_COLLAPSE: Final = "|".join(
    (f"(?<=[0-9]{{{a}}}[\\s\\S])" if a > 1 else "")
    + f"{_SEP}?"
    + ("[0-9Xx]" if a == 4 else f"[0-9](?:{_SEP}{{0,2}}[0-9]){{{4 - a}}}")
    for a in (4, 3, 2, 1)
)
"""After a digit and a separator: enough digits before and after for _run_subs to collapse."""


@cache
def work_anchors() -> tuple[Anchor, ...]:
    """Anchors (see `qinglang.detect.anchors`) of everything `normalise` does after `fold_common`.

    Where none of them matches the text that `fold_common` returns, that text is the normalised
    text and no offset moves.
    """
    rare = {k for k in _TABLE if k not in _COMMON_CODES} | set(_t2s().table)
    rare |= {ord(c) for c in ZERO_WIDTH + _EXPANDS}
    cn = _CN_CLASS
    run = f"0-9{cn}{_SEP[1:-1]}"  # what a digit run (_RUN) is made of
    anchors: list[Anchor] = [
        ("".join(map(chr, sorted(rare))), "", ""),  # the one-for-one table, t2s, stage B1
        ("(", "", rf"(?<=[{CJK_CLASS}]\()(?:{_PINYIN_TONED}|{_PINYIN_PLAIN})"),  # pinyin
        # _run_subs converts the numerals of a run only where one survives the trimming of a
        # lone numeral at either end: next to another numeral, or inside the run (which may
        # end with an X)
        (cn, cn, _THIRD_NUMERAL),
        (cn, run + "Xx", rf"(?<=[{run}][{cn}][\s\S])"),
        # and drops separators only from a run of five digits or more with a separator: at the
        # first separator, a digits before it and b after it with a + b >= 5 (or an X after
        # 17 digits)
        ("0123456789", _SEP[1:-1], _COLLAPSE),
    ]
    for a in load_aliases():
        latin = any("a" <= c.lower() <= "z" for c in a.alias)  # as in _alias_pattern
        first = {a.alias[0].lower(), a.alias[0].upper()} if latin else {a.alias[0]}
        head = "".join(sorted(first))
        tail = a.alias[1:]
        rest = re.escape(tail[1:])
        if latin and rest:
            rest = f"(?i:{rest})"
        back = rf"[\s\S]{{{len(a.alias)}}}"  # the alias itself, when all of it is read
        if a.alias.isascii():  # a whole token, as in _alias_pattern
            rest += rf"(?<![A-Za-z0-9@._\-]{back})(?![A-Za-z0-9_\-]|\.[A-Za-z])"
        if a.when == "contact":  # after a contact word (its last character), or before an id
            before = "|".join(f"(?<={re.escape(w[-1])}{back})" for w in _CONTACT_BEFORE)
            rest += f"(?:{before}|{_CONTACT_AFTER})"
        if tail:
            second = {tail[0].lower(), tail[0].upper()} if latin else {tail[0]}
            anchors.append((head, class_of(map(ord, second)), rest))
        else:
            anchors.append((head, "", rest))
    return tuple(anchors)


@cache
def _needs_work() -> Anchors:
    return Anchors(work_anchors())


def normalise(
    text: str,
    *,
    lang: str | None = None,
    today: date | None = None,
) -> Normalised:
    """Undo evasions in `text`; the result maps every span back to the original text."""
    return normalise_folded(fold_common(text), text, lang, today)


def normalise_folded(
    folded: str, text: str, lang: str | None = None, today: date | None = None
) -> Normalised:
    """`normalise` of `text`, given ``fold_common(text)`` as `folded`."""
    if not _needs_work().search(folded):
        languages = detect_languages(folded) if lang is None else _LANGS[lang]
        return Normalised(folded, text, [], languages, today or shanghai_today())
    return _normalise(_fold_rare(folded), text, lang, today)


def _normalise_full(text: str, *, lang: str | None = None, today: date | None = None) -> Normalised:
    """`normalise` without the shortcut for text that needs no work (the reference in tests)."""
    return _normalise(_fold_width(text), text, lang, today)


def _normalise(folded: str, text: str, lang: str | None, today: date | None) -> Normalised:
    t = _to_simplified(folded)
    edits: list[Edit] = []
    if _B1_GATE.search(t) is not None:
        t, edits = _apply(t, _b1_subs(t))
    subs = _b2_subs(t)
    if subs:
        t, edits2 = _apply(t, subs)
        edits = _compose(edits, edits2)
    languages = detect_languages(t) if lang is None else _LANGS[lang]
    return Normalised(t, text, edits, languages, today or shanghai_today())
