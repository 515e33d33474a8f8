"""Scan text for personal information: normalise once, run the recognisers, resolve overlaps.

>>> from datetime import date
>>> [(f.category, f.value) for f in scan("我今年12岁，电话138 1234 5678", now=date(2026, 1, 1))]
[('age', '12'), ('phone', '+8613812345678')]
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable
from datetime import date, datetime
from typing import Final

from qinglang.detect.findings import CATEGORIES, Finding
from qinglang.detect.normalise import ZERO_WIDTH, normalise, shanghai_today
from qinglang.detect.registry import Registry, default_registry

__all__ = ["LANGUAGES", "resolve_overlaps", "scan", "scan_many"]

LANGUAGES: Final = ("zh", "en")
"""Values of ``lang``; None detects per text (Chinese characters → zh, English words → en)."""

# Tie-break among equally confident, equally long overlapping findings: the more specific first.
_PRIORITY: Final = {
    c: i
    for i, c in enumerate(
        (
            "id_number",
            "bank_card",
            "phone",
            "passport",
            "travel_permit",
            "email",
            "ip_address",
            "gps",
            "licence_plate",
            "qq",
            "wechat",
            "birthday",
            "age",
            "grade_class",
            "person_name",
            "school",
            "address",
        )
    )
}
_KNOWN: Final = frozenset(CATEGORIES)
BATCH_SEPARATOR: Final = "\x00"
"""Joins texts that `scan_many` scans together: no pattern crosses it, no context reaches over."""
BATCH_CHARS: Final = 1 << 16
"""About how many characters `scan_many` scans in one pass."""
_DEFAULTS: dict[bool, Registry] = {}


def _default(model: bool = False) -> Registry:
    reg = _DEFAULTS.get(model)
    if reg is None:
        reg = _DEFAULTS[model] = default_registry(model=model)
    return reg


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Keep the more confident (then longer, then more specific) of overlapping findings; sort."""
    ranked = sorted(
        findings,
        key=lambda f: (-f.confidence, f.start - f.end, _PRIORITY.get(f.category, 99), f.start),
    )
    starts: list[int] = []
    kept: list[Finding] = []  # sorted by start, non-overlapping
    for f in ranked:
        i = bisect_left(starts, f.start)
        if i > 0 and kept[i - 1].end > f.start:
            continue
        if i < len(kept) and kept[i].start < f.end:
            continue
        starts.insert(i, f.start)
        kept.insert(i, f)
    return kept


_CHECKED: dict[object, frozenset[str]] = {}


def _check(categories: Collection[str] | None, lang: str | None) -> frozenset[str] | None:
    if lang is not None and lang not in LANGUAGES:
        raise ValueError(f"lang: expected one of {', '.join(LANGUAGES)} or None, got {lang!r}")
    if categories is None:
        return None
    try:
        return _CHECKED[categories]
    except (KeyError, TypeError):  # not seen yet, or not hashable
        pass
    if isinstance(categories, str):
        raise TypeError("categories: pass a collection of category names, not one string")
    cats = frozenset(categories)
    unknown = cats - _KNOWN
    if unknown:
        raise ValueError(f"unknown categories: {', '.join(sorted(unknown))}")
    if isinstance(categories, tuple | frozenset) and len(_CHECKED) < 256:
        _CHECKED[categories] = cats
    return cats


def scan(
    text: str,
    lang: str | None = None,
    *,
    categories: Collection[str] | None = None,
    now: datetime | date | None = None,
    registry: Registry | None = None,
    model: bool = False,
) -> list[Finding]:
    """Find personal information in `text`; findings sorted by start, in original offsets.

    `model` adds the statistical recogniser of names, addresses and schools to the default
    recognisers (ignored when `registry` is given).
    """
    cats = _check(categories, lang)
    return _scan_one(text, lang, cats, shanghai_today(now), registry or _default(model))


def scan_many(
    texts: Iterable[str],
    lang: str | None = None,
    *,
    categories: Collection[str] | None = None,
    now: datetime | date | None = None,
    registry: Registry | None = None,
    model: bool = False,
) -> list[list[Finding]]:
    """`scan` each text; same findings, but short texts are scanned together (faster)."""
    cats = _check(categories, lang)
    today = shanghai_today(now)
    reg = registry or _default(model)
    items = list(texts)
    if not reg.batch_safe:
        return [_scan_one(t, lang, cats, today, reg) for t in items]
    out: list[list[Finding]] = [[] for _ in items]
    i = 0
    while i < len(items):
        starts: list[int] = []
        size = 0
        j = i
        while j < len(items) and (j == i or size + len(items[j]) <= BATCH_CHARS):
            if j > i and _alone(items[j]):
                break
            starts.append(size)
            size += len(items[j]) + len(BATCH_SEPARATOR)
            j += 1
        if j == i + 1 or _alone(items[i]):
            j = i + 1
            out[i] = _scan_one(items[i], lang, cats, today, reg)
        else:
            joined = BATCH_SEPARATOR.join(items[i:j])
            k = 0
            for f in _scan_one(joined, lang, cats, today, reg):
                while k + 1 < len(starts) and f.start >= starts[k + 1]:
                    k += 1
                shift = starts[k]
                out[i + k].append(
                    Finding(
                        f.start - shift,
                        f.end - shift,
                        f.category,
                        f.value,
                        f.confidence,
                        f.minor_signal,
                        f.recognizer,
                        f.explanation,
                    )
                )
        i = j
    return out


def _alone(text: str) -> bool:
    """Whether a text must be scanned on its own: it starts or ends with a dropped character,
    which only a whole-text span includes."""
    return bool(text) and (text[0] in ZERO_WIDTH or text[-1] in ZERO_WIDTH)


def _scan_one(
    text: str, lang: str | None, cats: frozenset[str] | None, today: date, reg: Registry
) -> list[Finding]:
    if not text:
        return []
    norm = normalise(text, lang=lang, today=today)
    plan = reg.plan(cats, norm.languages)
    found: list[Finding] = []
    for recognizer in plan.applicable(norm.text):
        found.extend(recognizer.find(norm, text))
    if cats is not None and not plan.within(cats):
        found = [f for f in found if f.category in cats]
    if len(found) < 2:
        return found
    return resolve_overlaps(found)
