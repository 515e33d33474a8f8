"""Grooming cues in one message, Chinese and English, robust to evasion; and a standalone scorer.

``detect_cues(text)`` finds the cue classes of ``data/cues.toml`` (asking age, school, location;
flattery, affection, gifts; checking the child is alone, isolation, secrecy, downplaying the age
gap; moving to another app, asking for images; sexual content, meeting offline) and a person's
statements of their own age. The text goes through `qinglang.detect.normalise` first, so 加薇信,
V信, 扣扣, 別告訴爸媽 and full-width or Chinese numerals read as what they stand for; separators
between Chinese characters ("加 微 信") and spaced-out letters ("s n a p") are closed up, and digits
inside latin words read as letters (s3x). Every hit carries its span in the ORIGINAL text, so
evidence excerpts show what the user wrote.

``score_conversation(text)`` is the untrained default detector over one conversation flattened to
one line (both parties, no speaker labels): the cue classes present, the grooming stages they
reach and in what order, the age gap between stated ages, and whether anything suggests that one
party is a minor. Weights come from the policy pack (topics ``risk.*``). A conversation is flagged
when its score reaches the pack's review threshold (``risk.alert.review_threshold``).

>>> [h.cue for h in detect_cues("你今年几岁呀？加我薇信，別告訴爸媽")]
['asks_age', 'move_platform', 'secrecy']
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Final

from qinglang.detect.normalise import Normalised, normalise
from qinglang.policy import Policy, load_pack
from qinglang.risk.params import RiskParams
from qinglang.risk.stages import STAGE_ORDER, ConversationEvidence, score_evidence
from qinglang.risk.types import Risk

__all__ = [
    "DISCLOSURE",
    "CueClass",
    "CueHit",
    "Lexicon",
    "Prepared",
    "detect_cues",
    "excerpt",
    "load_lexicon",
    "prepare",
    "score_conversation",
]

DISCLOSURE: Final = "discloses_age"
"""The pseudo-class of a hit where a person states their own age (`CueHit.age` holds it)."""

_TODAY: Final = date(2000, 1, 1)
"""A fixed reference date for the normaliser (cues never depend on today's date)."""


@dataclass(frozen=True, slots=True)
class CueClass:
    """One cue class of the lexicon: its id, stage and labels."""

    id: str
    stage: str
    """A stage id of `STAGE_ORDER`, or ``context`` (evidence of a minor, no weight of its own)."""
    label_zh: str
    label_en: str
    suggests_minor: bool = False
    """The cue presupposes that the other party is a minor (it marks the minor context)."""


@dataclass(frozen=True, slots=True)
class CueHit:
    """One cue found in a message: its class, stage, span in the original text, stated age."""

    cue: str
    stage: str
    start: int
    end: int
    age: int | None = None
    """For a `DISCLOSURE` hit: the age the person stated (school years read as typical ages)."""


_Entry = tuple[str, int | None, re.Pattern[str]]
"""(cue class or DISCLOSURE, fixed stated age or None, pattern anchored at the first character)."""


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The compiled lexicon: classes, and per language a gate and an index by first character.

    The gate finds where any pattern may start; the index lists, for the character there, the
    patterns (by class) that begin with it, which are then matched at that position only.
    """

    classes: dict[str, CueClass]
    gates: dict[str, re.Pattern[str]]
    index: dict[str, dict[str, tuple[_Entry, ...]]]
    """Language → first character → entries."""


_META: Final = frozenset(".^$*+?{}[]\\|()")


def _split_top(p: str) -> list[str]:
    """Split a pattern at its top-level ``|`` (outside groups and character classes)."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _class_end(p, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(p[start:i])
            start = i + 1
        i += 1
    parts.append(p[start:])
    return parts


def _class_end(p: str, i: int) -> int:
    """Index just after the character class that starts at p[i] == '['."""
    j = i + 1
    if j < len(p) and p[j] == "^":
        j += 1
    if j < len(p) and p[j] == "]":
        j += 1
    while j < len(p) and p[j] != "]":
        j += 2 if p[j] == "\\" else 1
    if j >= len(p):
        raise ValueError(f"unterminated character class in {p!r}")
    return j + 1


def _group_end(p: str, i: int) -> int:
    """Index just after the group that starts at p[i] == '('."""
    depth = 0
    j = i
    while j < len(p):
        c = p[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j = _class_end(p, j)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise ValueError(f"unbalanced parentheses in {p!r}")


def _class_chars(body: str) -> list[str] | None:
    """The characters of a simple class body (literals and small ranges), or None."""
    if body.startswith("^") or "\\" in body:
        return None
    out: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = ord(body[i]), ord(body[i + 2])
            if hi - lo > 40:
                return None
            out.extend(chr(c) for c in range(lo, hi + 1))
            i += 3
        else:
            out.append(body[i])
            i += 1
    return out


_QUANT: Final = re.compile(r"\?|\{(\d+)(?:,(\d*))?\}")


def _leads(p: str, depth: int = 0) -> list[tuple[str, str]]:
    """Rewrite a pattern as alternatives (first literal character, rest of the pattern).

    Python's `re` finds a union of branches that each begin with a literal character quickly
    (it scans for the set of first characters); patterns beginning with a group, an optional
    group or a class are distributed until each branch begins with a literal.
    """
    if depth > 8:
        raise ValueError(f"pattern nests too deeply at its start: {p!r}")
    out: list[tuple[str, str]] = []
    for alt in _split_top(p):
        if not alt:
            raise ValueError(f"empty alternative in {p!r}")
        c = alt[0]
        if c == "(":
            end = _group_end(alt, 0)
            inner = alt[1 : end - 1]
            if inner.startswith("?:"):
                inner = inner[2:]
            elif inner.startswith("?"):
                raise ValueError(f"a pattern may not start with a look-around: {alt!r}")
            tail = alt[end:]
            q = _QUANT.match(tail)
            if (q is not None and q.group() != "?") or tail[:1] in ("*", "+"):
                raise ValueError(f"a pattern may not start with a repeated group: {alt!r}")
            if q is not None:  # optional group: with it, and without it
                tail = tail[1:]
                out.extend(_leads(tail, depth + 1))
            for g in _split_top(inner):
                out.extend(_leads(g + tail, depth + 1))
            continue
        if c == "[":
            end = _class_end(alt, 0)
            chars = _class_chars(alt[1 : end - 1])
            if chars is None:
                raise ValueError(f"a pattern may only start with a simple class: {alt!r}")
            first_len, tail = end, alt[end:]
        elif c == "\\":
            esc = alt[1:2]
            if esc == "d":
                chars = list("0123456789")
            elif esc and not esc.isalnum():
                chars = [esc]
            else:
                raise ValueError(f"a pattern may not start with \\{esc}: {alt!r}")
            first_len, tail = 2, alt[2:]
        elif c in _META:
            raise ValueError(f"a pattern must start with a literal, a group or a class: {alt!r}")
        else:
            chars, first_len, tail = [c], 1, alt[1:]
        atom = alt[:first_len]
        q = _QUANT.match(tail)
        rest = tail
        optional = False
        if tail[:1] in ("*", "+"):  # a*: optional, then more; a+: one, then more
            optional = tail[0] == "*"
            rest = f"{atom}*" + tail[1:]
        elif q is not None:
            rest = tail[q.end() :]
            if q.group() == "?":
                optional = True
            else:
                lo = int(q.group(1))
                hi_s = q.group(2)
                hi = lo if hi_s is None else (None if hi_s == "" else int(hi_s))
                if lo == 0:
                    optional = True
                    lo = 1
                more_hi = "" if hi is None else str(hi - 1)
                if hi is None or hi > 1:
                    rest = f"{atom}{{{lo - 1},{more_hi}}}" + rest
        out.extend((ch, rest) for ch in chars)
        if optional:
            out.extend(_leads(rest, depth + 1))
    return out


def _branches(patterns: Iterable[str], english: bool) -> dict[str, str]:
    """Patterns as one body of alternatives per literal first character.

    English patterns match whole words only (no latin letter or digit on either side).
    """
    groups: dict[str, list[str]] = {}
    for p in patterns:
        for ch, rest in _leads(p):
            groups.setdefault(ch, []).append(rest)
    out: dict[str, str] = {}
    for ch, rests in groups.items():
        body = "|".join(f"(?:{r})" for r in dict.fromkeys(rests))
        if english:
            out[ch] = f"{re.escape(ch)}(?<![a-z0-9].)(?:{body})(?![a-z0-9])"
        else:
            out[ch] = f"{re.escape(ch)}(?:{body})"
    return out


def _gate(bodies: Iterable[dict[str, str]]) -> re.Pattern[str]:
    """One pattern matching wherever any of the patterns matches (grouped by first character)."""
    merged: dict[str, list[str]] = {}
    for b in bodies:
        for ch, body in b.items():
            merged.setdefault(ch, []).append(body[len(re.escape(ch)) :])
    return re.compile(
        "|".join(f"{re.escape(ch)}(?:{'|'.join(rests)})" for ch, rests in merged.items())
    )


@cache
def load_lexicon() -> Lexicon:
    """Load and compile the packaged cue lexicon (``qinglang/risk/data/cues.toml``)."""
    raw = resources.files("qinglang.risk").joinpath("data/cues.toml").read_text("utf-8")
    doc = tomllib.loads(raw)
    stages = {s["id"] for s in doc["stage"]}
    if tuple(sorted(doc["stage"], key=lambda s: s["order"])) != tuple(
        s for sid in STAGE_ORDER for s in doc["stage"] if s["id"] == sid
    ):
        raise ValueError("cues.toml: stages differ from qinglang.risk.stages.STAGE_ORDER")
    classes: dict[str, CueClass] = {}
    bodies: dict[str, list[dict[str, str]]] = {"zh": [], "en": []}
    index: dict[str, dict[str, list[_Entry]]] = {"zh": {}, "en": {}}

    def add(lang: str, cue: str, age: int | None, patterns: list[str]) -> None:
        b = _branches(patterns, english=lang == "en")
        bodies[lang].append(b)
        for ch, body in b.items():
            index[lang].setdefault(ch, []).append((cue, age, re.compile(body)))

    for c in doc["cue"]:
        if c["stage"] not in stages and c["stage"] != "context":
            raise ValueError(f"cues.toml: cue {c['id']}: unknown stage {c['stage']!r}")
        classes[c["id"]] = CueClass(
            c["id"],
            c["stage"],
            c["label_zh"],
            c["label_en"],
            bool(c.get("suggests_minor", False)),
        )
        for lang in ("zh", "en"):
            if c.get(lang):
                add(lang, c["id"], None, list(c[lang]))
    for d in doc["disclosure"]:
        age = None if d["age"] == "number" else int(d["age"])
        for lang in ("zh", "en"):
            if d.get(lang):
                add(lang, DISCLOSURE, age, list(d[lang]))
    return Lexicon(
        classes,
        {lang: _gate(bodies[lang]) for lang in ("zh", "en")},
        {lang: {ch: tuple(v) for ch, v in index[lang].items()} for lang in ("zh", "en")},
    )


# ----------------------------------------------------------------------------- matching text

_CJK: Final = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SEP: Final = r"[ \t\n.·•_\-~*|/\\^…]"
_CJK_SEP: Final = re.compile(
    rf"[{_CJK}]({_SEP}{{1,3}})(?=[{_CJK}0-9A-Za-z])|[0-9A-Za-z]({_SEP}{{1,3}})(?=[{_CJK}])"
)
"""Separators next to a Chinese character (group 1 or 2), closed up for matching."""
_SPACED: Final = re.compile(r"[A-Za-z](?<![A-Za-z].)(?:[ .\-_*][A-Za-z]){3,}(?![A-Za-z])")
"""Four or more single letters with one separator between each ("s n a p")."""
_SPACED_SEP: Final = re.compile(r"[ .\-_*]")
_LEET_GATE: Final = re.compile(r"[013457@$]")
_LEET_RUN: Final = re.compile(r"[a-z]([013457@$]+)(?=[a-z])")
_LEET: Final = str.maketrans("013457@$", "oieastas")


class Prepared:
    """A message ready for matching: the normalised text, the matching text and its map."""

    __slots__ = ("again", "normalised", "positions", "text")

    def __init__(
        self,
        normalised: Normalised,
        text: str,
        positions: list[int] | None,
        again: Normalised | None = None,
    ) -> None:
        self.normalised = normalised
        self.text = text
        """Normalised, closed up, lower-cased, leet folded: what the patterns run on."""
        self.positions = positions
        """Offset in ``normalised.text`` of each closed-up character (None: the same offsets)."""
        self.again = again
        """The closed-up text normalised once more ("薇 信" closed up is an alias again)."""

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of `text` to the span of the original message."""
        if self.again is not None:
            start, end = self.again.to_original(start, end)
        if self.positions is not None:
            start, end = self.positions[start], self.positions[end - 1] + 1
        return self.normalised.to_original(start, end)


def _leet(m: re.Match[str]) -> str:
    g = m.group()
    return g[0] + g[1:].translate(_LEET)


def prepare(text: str) -> Prepared:
    """Normalise a message and build the text the cue patterns run on."""
    n = normalise(text, today=_TODAY)
    t = n.text
    langs = n.languages
    drop: list[tuple[int, int]] = []
    if "zh" in langs:
        for m in _CJK_SEP.finditer(t):
            drop.append(m.span(1 if m.group(1) is not None else 2))
    if "en" in langs:
        for m in _SPACED.finditer(t):
            base = m.start()
            drop.extend((base + s.start(), base + s.end()) for s in _SPACED_SEP.finditer(m.group()))
    positions: list[int] | None = None
    again: Normalised | None = None
    if drop:
        keep = [True] * len(t)
        for a, b in drop:
            for i in range(a, b):
                keep[i] = False
        positions = [i for i, k in enumerate(keep) if k]
        t = "".join(t[i] for i in positions)
        again = normalise(t, today=_TODAY)
        if again.text == t:
            again = None
        else:
            t = again.text
    low = t.lower()
    if len(low) != len(t):  # a character whose lower case is longer (İ): keep one for one
        low = "".join(c.lower()[0] for c in t)
    if _LEET_GATE.search(low) is not None:
        low = _LEET_RUN.sub(_leet, low)
    return Prepared(n, low, positions, again)


# ----------------------------------------------------------------------------- detection

_CN_NUM: Final = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2}
_NUMBER: Final = re.compile(r"\d{1,2}|[一二三四五六七八九十两]{1,3}")


def _cn_number(s: str) -> int | None:
    """Read 1-99 written in digits or Chinese numerals (十三, 二十, 三十五)."""
    if s.isdigit():
        return int(s)
    if "十" in s:
        tens, _, ones = s.partition("十")
        t = 1 if not tens else _CN_NUM.get(tens)
        o = 0 if not ones else _CN_NUM.get(ones)
        if t is None or o is None or len(tens) > 1 or len(ones) > 1:
            return None
        return t * 10 + o
    if len(s) == 1:
        return _CN_NUM.get(s)
    return None


def _stated_age(fixed: int | None, m: re.Match[str]) -> int | None:
    if fixed is not None:
        return fixed
    for num in _NUMBER.finditer(m.group()):
        value = _cn_number(num.group())
        if value is not None and 8 <= value <= 99:
            return value
    return None


def detect_cues(text: str, prepared: Prepared | None = None) -> list[CueHit]:
    """Cue hits in one message, by position; overlapping hits of different classes all count."""
    p = prepared if prepared is not None else prepare(text)
    lex = load_lexicon()
    t = p.text
    hits: list[CueHit] = []
    for lang in p.normalised.languages:
        gate = lex.gates[lang]
        m = gate.search(t)
        if m is None:
            continue
        index = lex.index[lang]
        stage_of = lex.classes
        while m is not None:
            s = m.start()
            for cue, fixed, pattern in index[t[s]]:
                mm = pattern.match(t, s)
                if mm is None:
                    continue
                a, b = p.to_original(s, mm.end())
                if cue == DISCLOSURE:
                    age = _stated_age(fixed, mm)
                    if age is not None:
                        hits.append(CueHit(cue, "context", a, b, age))
                else:
                    hits.append(CueHit(cue, stage_of[cue].stage, a, b))
            m = gate.search(t, s + 1)
    hits.sort(key=lambda h: (h.start, h.end, h.cue))
    return hits


def excerpt(text: str, start: int, end: int, context: int = 10, limit: int = 60) -> str:
    """A short excerpt of `text` around [start, end): minimised evidence for a reviewer."""
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    if end - start > limit:
        end = start + limit
    a = max(0, start - context)
    b = min(len(text), end + context)
    out = " ".join(text[a:b].split())
    return ("…" if a > 0 else "") + out + ("…" if b < len(text) else "")


# ----------------------------------------------------------------------------- conversations


def evidence_of(hits: Sequence[CueHit], minor_below: int) -> ConversationEvidence:
    """Fold the hits of a conversation (in order) into the evidence the scorer reads."""
    ev = ConversationEvidence()
    classes = load_lexicon().classes
    for i, h in enumerate(hits):
        if h.cue == DISCLOSURE:
            assert h.age is not None
            ev.note_age(h.age, minor_below)
        elif h.stage == "context":
            ev.minor_context = True
        else:
            ev.note_cue(h.cue, h.stage, float(i))
            if classes[h.cue].suggests_minor:
                ev.minor_context = True
    return ev


@cache
def _default_params() -> RiskParams:
    return RiskParams.from_policy(load_pack("cn"))


def score_conversation(text: str, policy: Policy | None = None) -> Risk:
    """Grooming risk of one conversation flattened to one line, with the signals that produced it.

    Untrained: the weights are the pack's (``risk.cue.*``, ``risk.stage.*``, ``risk.age_gap.*``);
    nothing is fitted to data. The parties are taken as strangers; without any sign of a minor
    (a stated age under 18, a school year, a minor's life) every weight counts with the pack's
    ``risk.factor.no_minor_context``, and cues of the exclusivity and escalation stages (other
    apps, images, sexual content, meeting) that no trust or isolation stage came before count
    with ``risk.stage.unprepared_factor``. Flag the conversation when the score reaches
    ``risk.alert.review_threshold``.
    """
    params = _default_params() if policy is None else RiskParams.from_policy(policy)
    hits = detect_cues(text)
    ev = evidence_of(hits, params.minor_below)
    factor = 1.0 if ev.minor_context else params.factor_no_minor_context
    first: dict[str, CueHit] = {}
    for h in hits:
        first.setdefault(h.cue, h)
    excerpts = {c: excerpt(text, h.start, h.end) for c, h in first.items()}
    return score_evidence(params, ev, factor, excerpts=excerpts, gate=True)
