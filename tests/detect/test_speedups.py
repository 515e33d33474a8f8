"""The fast ways of the fast path compute what the plain ways compute.

Each shortcut taken for speed (replacing only the characters present instead of translating
the whole text, the Luhn sum over bytes, trigger masks by classes of ASCII characters, the
per-call setup that `scan` keeps, cheap letter tests before costly patterns …) is checked
against the straightforward computation it replaces.
"""

from __future__ import annotations

import importlib
import random
import re
from datetime import date

import pytest
from evasion import generate

from qinglang.detect import STRUCTURED_CATEGORIES, Finding, Registry, scan
from qinglang.detect.normalise import detect_languages, normalise
from qinglang.detect.recognisers import builtin_recognisers, luhn_ok
from qinglang.detect.scan import _default

NORMALISE = importlib.import_module("qinglang.detect.normalise")
MINORS = importlib.import_module("qinglang.detect.recognisers.minors")
NOW = date(2026, 6, 1)
STRUCTURED = frozenset(STRUCTURED_CATEGORIES)


def _luhn_reference(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def test_luhn_equals_the_digit_by_digit_sum() -> None:
    rng = random.Random(11)
    for n in range(25):
        for _ in range(400):
            digits = "".join(rng.choice("0123456789") for _ in range(n))
            assert luhn_ok(digits) == _luhn_reference(digits), digits
    for odd in ("12a4", "１２３４", "²³", "4111 1111"):
        assert luhn_ok(odd) == _luhn_reference(odd), odd


def test_folding_rare_characters_equals_the_table() -> None:
    table = NORMALISE._TABLE
    rng = random.Random(12)
    keys = [chr(k) for k in table]
    pool = [*keys, *"abc中文，：（）", "\U0001f600", "\U0001d7d8", "\U0001fbf5"]
    for size in (0, 1, 5, 40, 300):  # 300: more distinct characters than are replaced one by one
        for _ in range(300):
            text = NORMALISE.fold_common("".join(rng.choice(pool) for _ in range(size)))
            assert NORMALISE._fold_rare(text) == text.translate(table), text
    assert all(ord(v) not in table for v in table.values())  # so the order of replacing is free


def test_languages_equal_the_character_classes() -> None:
    latin = re.compile("[A-Za-z]")
    cjk = re.compile(f"[{NORMALISE.CJK_CLASS}]")
    rng = random.Random(13)
    pool = [*"aZ1中。 \x00éÀｗſKİı", "\U0001f600"]
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(12)))
        expected = {"zh"} if cjk.search(text) else set()
        if latin.search(text):
            expected.add("en")
        assert detect_languages(text) == expected, text


def _applicable_reference(registry: Registry, text: str) -> list[str]:
    plan = registry.plan(STRUCTURED, frozenset({"zh", "en"}))
    present = set(text)
    return [
        r.name
        for r in plan.recognizers
        if all(present & set(group) for group in getattr(r, "triggers", ()))
    ]


def test_trigger_masks_equal_the_trigger_sets() -> None:
    registry = Registry(builtin_recognisers(minor_below=18))
    plan = registry.plan(STRUCTURED, frozenset({"zh", "en"}))
    rng = random.Random(14)
    pool = [*"0123456789.:@([tTxXqQ微护通证乡胞岁成后年月生诞是级初高园学京粤gGyYkKsS中文 ,"]
    texts = [case.text for case in generate(300, 14)]
    texts += ["".join(rng.choice(pool) for _ in range(rng.randrange(30))) for _ in range(2000)]
    texts += ["x" * 40 + "微护通证乡胞岁成后年月生诞是级初高园学" * 3]  # many wide triggers
    for text in texts:
        assert [r.name for r in plan.applicable(text)] == _applicable_reference(registry, text)


def test_matches_are_shared_per_pattern() -> None:
    norm = normalise("电话13812345678，QQ 123456", today=NOW)
    digits = re.compile("[0-9]+")
    letters = re.compile("[A-Z]+")
    first = norm.matches(digits)
    assert norm.matches(digits) is first
    assert [m.group() for m in first] == ["13812345678", "123456"]
    assert [m.group() for m in norm.matches(letters)] == ["QQ"]
    assert [m.group() for m in norm.matches(re.compile("[0-9]{3}"))][:2] == ["138", "123"]


def test_an_age_statement_in_english_holds_one_of_the_gate_letters() -> None:
    texts = [case.text for case in generate(600, 15)]
    texts += ["I'm 13", "i am twelve lol", "13yo", "7 y/o", "aged 9", "turned 10.", "14 years old"]
    texts += ["fifteen yrs old", "IM 12!", "I AM 11", "AGED 8", "TURNED 9 now"]
    seen = 0
    for text in texts:
        norm_text = normalise(text, today=NOW).text
        for m in MINORS._AGE_EN.finditer(norm_text):
            seen += 1
            assert MINORS._AGE_EN_LETTER.search(m.group()), m.group()
    assert seen >= 12


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("他是2012年3月5日出世的", "birthday"),  # 出世: a birth word without 生
        ("我女儿生于2015年6月1日", "birthday"),
        ("我是2012年的", "birthday"),
        ("我是初中生", "grade_class"),
        ("他在读小学", "grade_class"),
        ("I'm 12 years old", "age"),
    ],
)
def test_words_before_the_patterns(text: str, category: str) -> None:
    assert category in {f.category for f in scan(text, now=NOW)}


def test_findings_still_check_their_fields() -> None:
    with pytest.raises(ValueError, match="unknown category"):
        Finding(0, 1, "colour", "red", 0.5)
    with pytest.raises(ValueError, match="bad span"):
        Finding(3, 2, "phone", "x", 0.5)
    with pytest.raises(ValueError, match="confidence"):
        Finding(0, 1, "phone", "x", 1.5)
    f = Finding(0, 1, "phone", "x", 0.5, recognizer="r", explanation="e")
    assert (f.minor_signal, f.recognizer, f.explanation) == (None, "r", "e")


def test_scan_sees_a_change_of_the_default_registry() -> None:
    text = "邮箱 kid@example.com"
    assert [f.category for f in scan(text, categories=STRUCTURED_CATEGORIES)] == ["email"]
    registry = _default(False)
    version = registry.version
    email = registry.remove("email")
    try:
        assert registry.version > version
        assert scan(text, categories=STRUCTURED_CATEGORIES) == []
    finally:
        registry.add(email)
    assert [f.category for f in scan(text, categories=STRUCTURED_CATEGORIES)] == ["email"]


def test_plans_follow_categories_and_languages() -> None:
    registry = Registry(builtin_recognisers(minor_below=18))
    zh, both = frozenset({"zh"}), frozenset({"zh", "en"})
    phone = frozenset({"phone"})
    assert registry.plan(STRUCTURED, zh) is registry.plan(STRUCTURED, zh)
    assert registry.plan(STRUCTURED, both) is not registry.plan(STRUCTURED, zh)
    assert {r.name for r in registry.plan(phone, zh).recognizers} == {"numbers"}
    assert not registry.plan(phone, zh).within(phone)  # numbers reports cards and ids too
    assert registry.plan(phone, zh).within(frozenset({"phone", "id_number", "bank_card"}))
    assert not registry.plan(STRUCTURED, zh).within(phone)
    assert registry.plan(STRUCTURED, zh).within(STRUCTURED)
    registry.remove("numbers")
    assert "numbers" not in {r.name for r in registry.plan(STRUCTURED, zh).recognizers}
    assert registry.plan(phone, zh).recognizers == ()


def test_batched_scan_reads_numbers_in_each_texts_own_languages() -> None:
    """A Chinese text batched with an English one gets the same findings as alone."""
    from qinglang.detect import scan, scan_many

    zh = "联系方式：壹玖壹贰肆捌捌壹叁伍"
    texts = [zh, "call me at home, I'm around"]
    assert scan_many(texts) == [scan(t) for t in texts]


def test_a_birth_date_before_chushi_is_found() -> None:
    """出世 (was born) after a date, with no 生 in the text, is a birth date."""
    from qinglang.detect import scan

    found = [f for f in scan("2012年3月5日出世") if f.category == "birthday"]
    assert found and found[0].minor_signal is not None
