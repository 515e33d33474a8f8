"""qinglang.detect.scan: the public entry point — offsets, overlaps, options, properties, speed."""

from __future__ import annotations

import doctest
import importlib
import inspect
import itertools
import json
import random
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from detect_testing import luhn_complete, make_id
from hypothesis import given, settings
from hypothesis import strategies as st

import qinglang.detect
from qinglang.detect import (
    CATEGORIES,
    STRUCTURED_CATEGORIES,
    Finding,
    MinorSignal,
    Normalised,
    Registry,
    default_registry,
    resolve_overlaps,
    scan,
    scan_many,
)

NOW = date(2026, 6, 1)
CLUENER = Path("/work/shared/data/ner/cluener/train.json")
MODULES = ["findings", "normalise", "scan", "redact"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(f"qinglang.detect.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_public_api_is_documented_and_typed() -> None:
    for name in qinglang.detect.__all__:
        obj = getattr(qinglang.detect, name)
        if inspect.isfunction(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
            assert "return" in obj.__annotations__, name
        if inspect.isclass(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
            for attr, member in vars(obj).items():
                if inspect.isfunction(member) and not attr.startswith("_"):
                    assert member.__doc__, f"{name}.{attr}"


def test_the_core_stays_pure() -> None:
    root = Path(qinglang.detect.__file__).parent
    for path in root.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for shell in ("qinglang.store", "qinglang.api", "qinglang.cli", "qinglang.web"):
            assert f"import {shell}" not in source and f"from {shell}" not in source, path


# ----------------------------------------------------------------------------- findings


def test_to_dict_has_exactly_the_public_fields() -> None:
    [f] = scan("我今年12岁", now=NOW)
    d = f.to_dict()
    assert list(d) == ["start", "end", "category", "value", "confidence", "minor_signal"]
    assert d["minor_signal"] == {
        "age": 12,
        "reason": f.minor_signal.reason if f.minor_signal else "",
    }
    assert json.loads(json.dumps(d, ensure_ascii=False)) == d
    [g] = scan("电话13812345678", now=NOW)
    assert g.to_dict()["minor_signal"] is None


def test_findings_explain_themselves() -> None:
    [f] = scan("电话13812345678")
    assert f.recognizer == "numbers"
    assert "电话" in f.explanation


def test_finding_validation() -> None:
    with pytest.raises(ValueError):
        Finding(0, 1, "nonsense", "x", 0.5)
    with pytest.raises(ValueError):
        Finding(2, 1, "phone", "x", 0.5)
    with pytest.raises(ValueError):
        Finding(0, 1, "phone", "x", 1.5)
    assert MinorSignal(None, "x").to_dict() == {"age": None, "reason": "x"}


# ----------------------------------------------------------------------------- offsets


@pytest.mark.parametrize(
    ("text", "category", "span", "value"),
    [
        ("加我薇信：ｗｘ１２３", "wechat", "ｗｘ１２３", "wx123"),
        ("电话一三八①②③④五六七八", "phone", "一三八①②③④五六七八", "+8613812345678"),
        ("電(diàn)話(huà)：138 1234 5678", "phone", "138 1234 5678", "+8613812345678"),
        ("扣扣：壹贰叁肆伍陆柒捌", "qq", "壹贰叁肆伍陆柒捌", "12345678"),
        ("手机1\u200b3\u200b8\u200b12345678", "phone", "1\u200b3\u200b8\u200b12345678", None),
        ("我今年⑫歲", "age", "⑫歲", "12"),
        ("邮箱ａｂｃ＠ｑｑ．ｃｏｍ哦", "email", "ａｂｃ＠ｑｑ．ｃｏｍ", "abc@qq.com"),
        ("1😀3😀8😀1😀2😀3😀4😀5😀6😀7😀8", "phone", "1😀3😀8😀1😀2😀3😀4😀5😀6😀7😀8", None),
    ],
)
def test_offsets_are_on_the_original_text(
    text: str, category: str, span: str, value: str | None
) -> None:
    fs = [f for f in scan(text, now=NOW) if f.category == category]
    assert len(fs) == 1, scan(text, now=NOW)
    assert text[fs[0].start : fs[0].end] == span
    if value is not None:
        assert fs[0].value == value


def test_minor_signals_in_one_text() -> None:
    number = make_id(date(2016, 3, 5))
    text = f"我今年12岁，在初二3班，10后，身份证{number}"
    got = {f.category: f.minor_signal for f in scan(text, now=NOW)}
    assert set(got) == {"age", "grade_class", "id_number"}
    assert all(signal is not None for signal in got.values())
    ages = [f.minor_signal.age for f in scan(text, now=NOW) if f.minor_signal]
    assert ages == [12, None, None, 10]


# ----------------------------------------------------------------------------- overlaps, options


def test_overlaps_keep_the_more_confident_then_longer() -> None:
    a = Finding(0, 10, "phone", "a", 0.9)
    b = Finding(5, 12, "qq", "b", 0.8)
    c = Finding(12, 20, "email", "c", 0.5)
    d = Finding(0, 12, "wechat", "d", 0.9)
    assert resolve_overlaps([b, a, c]) == [a, c]
    assert resolve_overlaps([a, d, c]) == [d, c]
    assert resolve_overlaps([]) == []


def test_an_email_wins_over_the_qq_number_inside_it() -> None:
    fs = scan("QQ：12345678@qq.com", now=NOW)
    assert [f.category for f in fs] == ["email"]


def test_categories_filter() -> None:
    text = "我今年12岁，电话13812345678"
    assert [f.category for f in scan(text, categories=["phone"])] == ["phone"]
    assert [f.category for f in scan(text, categories=("age",), now=NOW)] == ["age"]
    assert scan(text, categories=frozenset()) == []
    with pytest.raises(ValueError, match="unknown categories"):
        scan(text, categories=["phones"])
    with pytest.raises(TypeError):
        scan(text, categories="phone")


def test_lang_option() -> None:
    assert scan("我今年12岁", lang="en") == []
    assert [f.category for f in scan("我今年12岁", lang="zh", now=NOW)] == ["age"]
    assert [f.category for f in scan("I'm 13", lang="en", now=NOW)] == ["age"]
    with pytest.raises(ValueError):
        scan("x", lang="fr")


def test_now_option() -> None:
    number = make_id(date(2008, 6, 2))
    before = scan(number, now=datetime(2026, 6, 1, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    after = scan(number, now=datetime(2026, 6, 1, 16, 0, tzinfo=UTC))  # 00:00 on 2 June
    assert before[0].minor_signal is not None
    assert after[0].minor_signal is None


def test_empty_and_plain_texts() -> None:
    assert scan("") == []
    assert scan("今天天气很好") == []
    assert scan("   \n\t") == []


def test_scan_many_matches_scan() -> None:
    texts = ["我今年12岁", "", "电话13812345678", "I'm 13", "QQ 12345678", "今天天气很好"]
    assert scan_many(texts, now=NOW) == [scan(t, now=NOW) for t in texts]
    assert scan_many(texts, categories=["phone"]) == [scan(t, categories=["phone"]) for t in texts]
    assert scan_many([]) == []
    assert scan_many(iter(["电话13812345678"])) == [scan("电话13812345678")]


def test_scan_many_edges_of_joined_texts() -> None:
    # context at the end of one text must not reach the number at the start of the next
    texts = ["我的QQ", "12345678", "电话", "13812345678", "生", "2012年3月5日", "2012年", "生"]
    assert scan_many(texts, now=NOW) == [scan(t, now=NOW) for t in texts]
    assert [len(fs) for fs in scan_many(texts, now=NOW)] == [0, 0, 0, 1, 0, 0, 0, 0]
    mixed = ["my number is 020 7946 0958", "我的电话是020 7946 0958", "网(wǎng)", "好的(de)"]
    assert scan_many(mixed, now=NOW) == [scan(t, now=NOW) for t in mixed]


def test_scan_many_with_a_model_scans_text_by_text() -> None:
    class Whole:
        """Sees the whole text (not batch-safe): must never be given joined texts."""

        name = "whole"
        categories = frozenset({"person_name"})
        languages: frozenset[str] = frozenset()

        def find(self, norm: Normalised, original: str) -> list[Finding]:
            """One finding covering the whole text."""
            assert "\x00" not in original
            return [Finding(0, len(original), "person_name", original, 0.5)] if original else []

    reg = Registry([Whole()])
    assert not reg.batch_safe and default_registry().batch_safe
    assert [fs[0].value for fs in scan_many(["ab", "cd"], registry=reg)] == ["ab", "cd"]


# ----------------------------------------------------------------------------- properties

SNIPPETS = [
    "13812345678",
    "138 1234 5678",
    "一三八①②③④五六七八",
    make_id(date(2016, 3, 5)),
    luhn_complete("622202123456789012"),
    "abc@qq.com",
    "QQ：12345678",
    "加我薇信：ｗｘ１２３",
    "192.168.1.1",
    "39.9042, 116.4074",
    "粤B12345",
    "我今年12岁",
    "10后",
    "初二3班",
    "生日2012年3月5日",
    "I'm 13",
    "Grade 5",
    "护照E12345678",
    "港澳通行证C12345678",
    "阳光小区3栋2单元501",
    "北京四中",
]
NOISE = st.text(alphabet="的了是我你在，。！ ab1234567890😀\u200b-年月日岁班", max_size=6)


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = [draw(NOISE)]
    for _ in range(draw(st.integers(0, 5))):
        parts.append(draw(st.sampled_from(SNIPPETS)))
        parts.append(draw(NOISE))
    return "".join(parts)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(texts(), st.text(max_size=12)), max_size=12))
def test_scan_many_equals_scan(texts: list[str]) -> None:
    assert scan_many(texts, now=NOW) == [scan(t, now=NOW) for t in texts]


@settings(max_examples=300, deadline=None)
@given(texts())
def test_findings_are_in_bounds_sorted_and_disjoint(text: str) -> None:
    fs = scan(text, now=NOW)
    for f in fs:
        assert 0 <= f.start < f.end <= len(text)
        assert f.category in CATEGORIES
        assert 0 <= f.confidence <= 1
        assert text[f.start : f.end].strip() == text[f.start : f.end] or f.category == "address"
    for a, b in itertools.pairwise(fs):
        assert a.end <= b.start
    fast = scan(text, categories=STRUCTURED_CATEGORIES, now=NOW)
    assert all(f.category in STRUCTURED_CATEGORIES for f in fast)
    assert all(a.end <= b.start for a, b in itertools.pairwise(fast))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_scans(text: str) -> None:
    for f in scan(text, now=NOW):
        assert 0 <= f.start < f.end <= len(text)


# ----------------------------------------------------------------------------- throughput smoke


def _corpus(limit: int = 3000) -> tuple[list[str], list[set[str]]]:
    """CLUENER sentences, every tenth with a structured snippet spliced in at a clause boundary,
    and the categories each spliced snippet yields on its own."""
    rng = random.Random(3)
    structured = [s for s in SNIPPETS if scan(s, categories=STRUCTURED_CATEGORIES)]
    lines, expected = [], []
    with CLUENER.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= limit:
                break
            text = json.loads(line)["text"]
            want: set[str] = set()
            if i % 10 == 0:
                snippet = rng.choice(structured)
                want = {f.category for f in scan(snippet, categories=STRUCTURED_CATEGORIES)}
                cut = rng.randrange(len(text) + 1)
                text = f"{text[:cut]}，{snippet}，{text[cut:]}"
            lines.append(text)
            expected.append(want)
    return lines, expected


@pytest.mark.skipif(not CLUENER.exists(), reason="CLUENER corpus not available")
def test_throughput_smoke() -> None:
    """Scans a realistic corpus line by line and as one text; prints MB/s (not asserted)."""
    lines, expected = _corpus()
    size = sum(len(t.encode()) for t in lines) / 1e6
    start = time.perf_counter()
    per_line = scan_many(lines, categories=STRUCTURED_CATEGORIES, now=NOW)
    line_s = time.perf_counter() - start
    joined = "\n".join(lines)
    start = time.perf_counter()
    whole = scan(joined, categories=STRUCTURED_CATEGORIES, now=NOW)
    whole_s = time.perf_counter() - start
    print(f"\nfast path: {size / line_s:.1f} MB/s by line, {size / whole_s:.1f} MB/s as one text")
    planted = [(want, fs) for want, fs in zip(expected, per_line, strict=True) if want]
    recalled = sum(want <= {f.category for f in fs} for want, fs in planted)
    assert recalled >= 0.95 * len(planted)
    assert sum(len(fs) for fs in per_line) >= 0.9 * len(whole)


def test_scan_many_never_merges_addresses_across_texts() -> None:
    texts = ["阳光小区3栋2单元501", "阳光小区3栋2单元501"]
    assert scan_many(texts, now=NOW) == [scan(t, now=NOW) for t in texts]
    assert [f.value for f in scan_many(texts, now=NOW)[0]] == ["阳光小区3栋2单元501"]


def test_model_is_opt_in() -> None:
    text = "我叫张伟，在北京市海淀区中关村大街上学"
    assert not any(f.category == "person_name" for f in scan(text, now=NOW))
    names = [
        text[f.start : f.end]
        for f in scan(text, now=NOW, model=True)
        if f.category == "person_name"
    ]
    assert names == ["张伟"]


def test_qq_word_wins_over_a_mobile_lookalike() -> None:
    assert [(f.category, f.value) for f in scan("QQ：17022230554", now=NOW)] == [
        ("qq", "17022230554")
    ]
    assert [f.category for f in scan("电话17022230554", now=NOW)] == ["phone"]
