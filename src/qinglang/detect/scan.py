"""Scan text for personal information: normalise once, run the recognisers, resolve overlaps.

>>> from datetime import date
>>> [(f.category, f.value) for f in scan("我今年12岁，电话138 1234 5678", now=date(2026, 1, 1))]
[('age', '12'), ('phone', '+8613812345678')]
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable
from datetime import date, datetime
from typing import Final

from qinglang.detect.findings import CATEGORIES, Finding
from qinglang.detect.normalise import (
    ZERO_WIDTH,
    Normalised,
    _fold_rare,
    _normalise,
    _normalise_full,
    fold_common,
    normalise,
    shanghai_today,
)
from qinglang.detect.registry import BatchRecognizer, Recognizer, Registry, default_registry

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


_Search = Callable[[str], object]
_Setup = tuple[
    Collection[str] | None,
    str | None,
    bool,
    Registry,
    int,
    frozenset[str] | None,
    tuple[_Search, _Search] | None,
]
"""What `scan` derives from its arguments: (categories, lang, model) as given, the default
registry, its version then, the checked categories and the two searches of the prefilter (None
if it has none, or needs the text folded first)."""
_SETUP: list[_Setup] = [(("",), None, False, Registry(), -1, None, None)]
"""The setup of the last `scan` without a registry (categories None, a tuple or a frozenset)."""

_CHECKED: dict[object, frozenset[str]] = {}
_LAST_CHECKED: list[tuple[object, frozenset[str]]] = [(None, frozenset())]


def _check(categories: Collection[str] | None, lang: str | None) -> frozenset[str] | None:
    if lang is not None and lang not in LANGUAGES:
        raise ValueError(f"lang: expected one of {', '.join(LANGUAGES)} or None, got {lang!r}")
    if categories is None:
        return None
    last = _LAST_CHECKED[0]
    if last[0] is categories:  # the same (immutable) collection as the call before
        return last[1]
    try:
        cats = _CHECKED[categories]
    except (KeyError, TypeError):  # not seen yet, or not hashable
        pass
    else:
        _LAST_CHECKED[0] = (categories, cats)
        return cats
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
    key, key_lang, key_model, reg, version, cats, searches = _SETUP[0]
    if (
        key is not categories
        or key_lang is not lang
        or key_model is not model
        or registry is not None
        or reg.version != version
    ):
        cats = _check(categories, lang)
        reg = registry or _default(model)
        pre = reg.prefilter(cats, lang)
        searches = pre.searches if pre is not None and not pre.folds else None
        if registry is None and (categories is None or isinstance(categories, tuple | frozenset)):
            _SETUP[0] = (categories, lang, model, reg, reg.version, cats, searches)
    if searches is not None:  # the shortcut of _scan_one, inline: most texts end here
        first, second = searches
        if first(text) is None and second(text) is None:
            return []
        return _scan_one(text, lang, cats, now, reg, True)
    return _scan_one(text, lang, cats, now, reg)


def scan_many(
    texts: Iterable[str],
    lang: str | None = None,
    *,
    categories: Collection[str] | None = None,
    now: datetime | date | None = None,
    registry: Registry | None = None,
    model: bool = False,
) -> list[list[Finding]]:
    """`scan` each text; the same findings, but faster: short texts are scanned together, and
    the model (with `model`) tags all the texts in one pass."""
    cats = _check(categories, lang)
    today = shanghai_today(now)
    reg = registry or _default(model)
    items = list(texts)
    parts = reg.batch_parts()
    if parts is None:
        return [_scan_one(t, lang, cats, today, reg) for t in items]
    safe, batched = parts
    raw = _raw_joined(items, lang, cats, today, safe)
    if batched:
        founds = _with_batched(items, lang, cats, today, reg, batched, raw)
    else:
        founds = [[f for _, fs in by for f in fs] for by in raw]
    out: list[list[Finding]] = []
    for found in founds:
        if cats is not None:
            found = [f for f in found if f.category in cats]
        out.append(found if len(found) < 2 else resolve_overlaps(found))
    return out


Raw = list[tuple[Recognizer, list[Finding]]]
"""Findings of one text before overlaps are resolved, by recogniser, in the order they ran."""


def _raw_joined(
    items: list[str], lang: str | None, cats: frozenset[str] | None, today: date, reg: Registry
) -> list[Raw]:
    """Each text's findings by the (batch-safe) recognisers of `reg`, from texts scanned joined
    by NUL."""
    raw: list[Raw] = [[] for _ in items]
    pre = reg.prefilter(cats, lang)
    todo = []
    for i, text in enumerate(items):
        if not text or (
            pre is not None and not pre.search(fold_common(text) if pre.folds else text)
        ):
            continue
        if _alone(text):  # scanned on its own
            raw[i] = _raw_one(text, normalise(text, lang=lang, today=today), reg, cats)
        else:
            todo.append(i)
    k = 0
    while k < len(todo):
        group = [todo[k]]
        size = len(items[todo[k]])
        k += 1
        while k < len(todo) and size + len(items[todo[k]]) + 1 <= BATCH_CHARS:
            size += len(items[todo[k]]) + len(BATCH_SEPARATOR)
            group.append(todo[k])
            k += 1
        if len(group) == 1:
            text = items[group[0]]
            raw[group[0]] = _raw_one(text, normalise(text, lang=lang, today=today), reg, cats)
            continue
        starts = []
        size = 0
        for i in group:
            starts.append(size)
            size += len(items[i]) + len(BATCH_SEPARATOR)
        joined = BATCH_SEPARATOR.join(items[i] for i in group)
        for recognizer, fs in _raw_one(
            joined, normalise(joined, lang=lang, today=today), reg, cats
        ):
            split: dict[int, list[Finding]] = {}
            for f in fs:
                g = bisect_right(starts, f.start) - 1
                shift = starts[g]
                split.setdefault(group[g], []).append(
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
            for i, own in split.items():
                raw[i].append((recognizer, own))
    return raw


def _with_batched(
    items: list[str],
    lang: str | None,
    cats: frozenset[str] | None,
    today: date,
    reg: Registry,
    batched: tuple[BatchRecognizer, ...],
    raw: list[Raw],
) -> list[list[Finding]]:
    """Each text's findings before overlaps are resolved: the `batched` recognisers of `reg` run
    on all the texts at once, the others' findings are in `raw`; all in the order in which a
    scan of the text alone runs the recognisers."""
    norms: dict[int, Normalised] = {}
    runs: list[list[Recognizer]] = [[] for _ in items]
    jobs: dict[int, list[int]] = {}  # batched recogniser -> texts it runs on
    for i, text in enumerate(items):
        if not text:
            continue
        norm = norms[i] = normalise(text, lang=lang, today=today)
        runs[i] = reg.plan(cats, norm.languages).applicable(norm.text)
        for b, r in enumerate(batched):
            if r in runs[i]:
                jobs.setdefault(b, []).append(i)
    by_batched: dict[tuple[int, int], list[Finding]] = {}  # (recogniser, text) -> findings
    for b, texts in jobs.items():
        results = batched[b].find_many([norms[i] for i in texts], [items[i] for i in texts])
        for i, fs in zip(texts, results, strict=True):
            by_batched[b, i] = fs
    position = {id(r): k for k, r in enumerate(batched)}
    out: list[list[Finding]] = []
    for i, run in enumerate(runs):
        own = {id(r): fs for r, fs in raw[i]}
        found: list[Finding] = []
        for recognizer in run:
            k = position.get(id(recognizer))
            found.extend(own.get(id(recognizer), ()) if k is None else by_batched[k, i])
        out.append(found)
    return out


def _alone(text: str) -> bool:
    """Whether a text must be scanned on its own: it starts or ends with a dropped character,
    which only a whole-text span includes."""
    return bool(text) and (text[0] in ZERO_WIDTH or text[-1] in ZERO_WIDTH)


def _scan_one(
    text: str,
    lang: str | None,
    cats: frozenset[str] | None,
    now: datetime | date | None,
    reg: Registry,
    passed: bool = False,
) -> list[Finding]:
    """Scan one text; `passed`: the text is known to pass the prefilter."""
    if not text:
        return []
    # the prefilter of the recognisers for any language the text may have (a superset)
    pre = None if passed else reg.prefilter(cats, lang)
    if pre is not None and not pre.search(fold_common(text) if pre.folds else text):
        return []  # nothing to normalise beyond `fold_common`, and no recogniser's anchor
    if passed or pre is not None:
        # an anchor matched: the text most likely needs normalising, skip that test (this is
        # _normalise_full, inline)
        norm = _normalise(_fold_rare(fold_common(text)), text, lang, shanghai_today(now))
    else:
        norm = normalise(text, lang=lang, today=shanghai_today(now))
    plan = reg.plan(cats, norm.languages)
    found: list[Finding] = []
    for recognizer in plan.applicable(norm.text):
        found.extend(recognizer.find(norm, text))
    if cats is not None and not plan.within(cats):
        found = [f for f in found if f.category in cats]
    if len(found) < 2:
        return found
    return resolve_overlaps(found)


def _raw_one(text: str, norm: Normalised, reg: Registry, cats: frozenset[str] | None) -> Raw:
    """The findings of the recognisers that may find something, by recogniser, in their order."""
    raw: Raw = []
    for recognizer in reg.plan(cats, norm.languages).applicable(norm.text):
        found = list(recognizer.find(norm, text))
        if found:
            raw.append((recognizer, found))
    return raw


def _scan_reference(
    text: str, lang: str | None, cats: frozenset[str] | None, today: date, reg: Registry
) -> list[Finding]:
    """`_scan_one` without its shortcuts (the prefilter, normalisation's own): for tests."""
    if not text:
        return []
    norm = _normalise_full(text, lang=lang, today=today)
    plan = reg.plan(cats, norm.languages)
    found: list[Finding] = []
    for recognizer in plan.applicable(norm.text):
        found.extend(recognizer.find(norm, text))
    if cats is not None and not plan.within(cats):
        found = [f for f in found if f.category in cats]
    if len(found) < 2:
        return found
    return resolve_overlaps(found)
