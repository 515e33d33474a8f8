"""Evasion suite for ``qinglang.detect.scan`` (issue 3, "Must show").

- Recall >= 0.95 over >= 200 seeded evasive variants (``evasion.generate``) spread over the
  categories and every evasion of the issue. A case is recalled when a finding of the expected
  category overlaps the expected span of the ORIGINAL text, or carries the expected normalised
  value. On failure the message lists recall per evasion and per category and every missed case.
- The clean set of the same size (``evasion.clean``) yields no findings at all, of any category.

The generator's own checks run without the detector; the detector tests are skipped, with the
reason, only while ``qinglang.detect`` cannot be imported.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from evasion import CATEGORIES, EVASIONS, Case, Expect, clean, generate, luhn_valid

from qinglang.age import ric

N_CASES = 240
SEED = 20261128
MIN_RECALL = 0.95
REQUIRED_CATEGORIES = {
    "phone",
    "id_number",
    "bank_card",
    "email",
    "qq",
    "wechat",
    "ip_address",
    "licence_plate",
    "age",
    "grade_class",
    "birthday",
}


def _load_scan() -> tuple[Callable[..., Any] | None, str]:
    try:
        detect = importlib.import_module("qinglang.detect")
    except ImportError as exc:
        return None, f"qinglang.detect is not importable yet ({exc!r})"
    scan = getattr(detect, "scan", None)
    if scan is None:
        return None, "qinglang.detect has no scan() yet"
    return scan, ""


SCAN, SKIP_REASON = _load_scan()
needs_detector = pytest.mark.skipif(SCAN is None, reason=SKIP_REASON or "detector present")


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return generate(N_CASES, SEED)


@pytest.fixture(scope="module")
def clean_texts() -> list[str]:
    return clean(N_CASES, SEED)


# --------------------------------------------------------------------------- the generator


def test_generator_is_seeded_and_covers_the_issue(cases: list[Case]) -> None:
    assert len(cases) >= 200
    assert [c.text for c in generate(N_CASES, SEED)] == [c.text for c in cases]
    assert [c.text for c in generate(N_CASES, SEED + 1)] != [c.text for c in cases]
    seen_evasions = Counter(e for c in cases for e in c.evasions)
    assert set(EVASIONS) <= set(seen_evasions), set(EVASIONS) - set(seen_evasions)
    assert all(seen_evasions[e] >= 5 for e in EVASIONS), seen_evasions
    seen_categories = Counter(e.category for c in cases for e in c.expected)
    assert set(seen_categories) == set(CATEGORIES)
    assert set(seen_categories) >= REQUIRED_CATEGORIES
    assert any(c.lang == "en" for c in cases)


def test_generator_values_are_valid(cases: list[Case]) -> None:
    for c in cases:
        assert c.evasions, c
        for e in c.expected:
            assert 0 <= e.start < e.end <= len(c.text), c
            span = c.span_text(e)
            assert span.strip() == span, (c, span)
            if e.category == "id_number":
                assert e.value is not None and ric.is_valid(e.value), c
            elif e.category == "bank_card":
                assert e.value is not None and luhn_valid(e.value), c
            elif e.category == "phone":
                assert e.value is not None and e.value.startswith("+861"), c
                assert len(e.value) == 14 and e.value[4] in "3456789", c


def test_clean_set_has_no_obvious_pii(clean_texts: list[str]) -> None:
    assert len(clean_texts) == N_CASES
    assert clean_texts == clean(N_CASES, SEED)
    for t in clean_texts:
        assert "@" not in t and "岁" not in t and "年级" not in t, t


# --------------------------------------------------------------------------- the detector


def _overlaps(f: Any, e: Expect) -> bool:
    return bool(f.start < e.end and e.start < f.end)


def _recalled(findings: Sequence[Any], e: Expect) -> bool:
    for f in findings:
        if f.category != e.category:
            continue
        if _overlaps(f, e) or (e.value is not None and f.value == e.value):
            return True
    return False


def _describe(f: Any, text: str) -> str:
    return f"{f.category}[{f.start}:{f.end}]={text[f.start : f.end]!r} value={f.value!r}"


def _table(title: str, hits: Counter[str], totals: Counter[str]) -> str:
    lines = [f"{title:<22} {'recall':>7} {'hit/total':>10}"]
    for key in sorted(totals, key=lambda k: (hits[k] / totals[k], k)):
        lines.append(f"{key:<22} {hits[key] / totals[key]:>7.3f} {hits[key]:>4}/{totals[key]:<5}")
    return "\n".join(lines)


_TRAILING_PINYIN = re.compile(r"\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+\)$")


def _core_end(c: Case, e: Expect) -> int:
    """End of the expected span without a trailing pinyin annotation (``班(bān)`` → ``班``)."""
    m = _TRAILING_PINYIN.search(c.span_text(e))
    return e.end - (len(m.group()) if m else 0)


def recall_report(cases: Sequence[Case], scan: Callable[..., Any]) -> tuple[float, str]:
    """Overall recall and a report: per-evasion and per-category tables, then every miss.

    Also reported, not asserted: how many findings cover the whole value (a trailing pinyin
    annotation aside), and recalled cases whose normalised value differs from the expected one.
    """
    hits_ev: Counter[str] = Counter()
    tot_ev: Counter[str] = Counter()
    hits_cat: Counter[str] = Counter()
    tot_cat: Counter[str] = Counter()
    misses: list[str] = []
    notes: list[str] = []
    covered = valued = n_valued = 0
    n_hit = n_all = 0
    for c in cases:
        findings = scan(c.text)
        for f in findings:
            assert 0 <= f.start < f.end <= len(c.text), (c.text, f)
        for e in c.expected:
            ok = _recalled(findings, e)
            n_all += 1
            n_hit += ok
            tot_cat[e.category] += 1
            hits_cat[e.category] += ok
            for ev in c.evasions:
                tot_ev[ev] += 1
                hits_ev[ev] += ok
            same = [f for f in findings if f.category == e.category]
            got = "; ".join(_describe(f, c.text) for f in findings) or "no findings"
            where = f"{e.category} {'+'.join(c.evasions)}: {c.text!r}"
            want = f"expected [{e.start}:{e.end}]={c.span_text(e)!r} value={e.value!r}"
            if not ok:
                misses.append(f"  MISS {where}\n       {want}; got {got}")
                continue
            end = _core_end(c, e)
            if any(f.start <= e.start and f.end >= end for f in same):
                covered += 1
            else:
                notes.append(f"  PARTIAL SPAN {where}\n       {want}; got {got}")
            if e.value is not None:
                n_valued += 1
                if any(f.value == e.value for f in same):
                    valued += 1
                else:
                    notes.append(f"  OTHER VALUE {where}\n       {want}; got {got}")
    recall = n_hit / n_all
    report = "\n".join(
        [
            f"recall {recall:.4f} ({n_hit}/{n_all}); recalled with a span covering the value: "
            f"{covered}; with the expected normalised value: {valued}/{n_valued}",
            _table("evasion", hits_ev, tot_ev),
            _table("category", hits_cat, tot_cat),
            f"{len(misses)} missed:",
            *misses,
            f"{len(notes)} notes (recalled, but partial span or other value):",
            *notes,
        ]
    )
    return recall, report


@needs_detector
def test_evasion_recall(cases: list[Case]) -> None:
    assert SCAN is not None
    recall, report = recall_report(cases, SCAN)
    print(report)
    assert recall >= MIN_RECALL, "\n" + report


@needs_detector
def test_clean_set_has_no_findings(clean_texts: list[str]) -> None:
    assert SCAN is not None
    offending = []
    for t in clean_texts:
        findings = SCAN(t)
        if findings:
            offending.append(f"  {t!r}: " + "; ".join(_describe(f, t) for f in findings))
    assert not offending, f"{len(offending)} clean sentences with findings:\n" + "\n".join(
        offending
    )
