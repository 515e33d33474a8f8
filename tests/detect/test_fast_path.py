"""The shortcuts of the scan give the same findings as the long way round.

- `scan` first searches the raw text for the anchors of the normaliser's work and of every
  recogniser (`Plan.prefilter`) and returns no findings where none matches; `normalise` skips
  its stages where none of its own anchors matches. Both are checked against the reference
  (`_scan_reference`: full normalisation, every recogniser whose trigger characters occur) on
  generated texts that mix digits, Chinese numerals, separators, zero-width characters,
  full-width forms, aliases and traditional characters, on the evasion suite and on CLUENER.
- `scan_many(texts, model=True)` tags all the texts with the model in one pass; it must equal
  ``[scan(t, model=True) for t in texts]``, also for texts whose ends would merge into one
  entity if the texts were simply joined.
"""

from __future__ import annotations

import importlib
import json
import random
from datetime import date
from pathlib import Path

import pytest
from detect_testing import luhn_complete, make_id
from evasion import clean, generate
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang.detect import STRUCTURED_CATEGORIES, normalise, scan, scan_many
from qinglang.detect.anchors import Anchors
from qinglang.detect.ner import NerRecognizer
from qinglang.detect.normalise import UNFOLDED, fold_common, work_anchors
from qinglang.detect.scan import _default, _scan_reference

NORMALISE = importlib.import_module("qinglang.detect.normalise")
NOW = date(2026, 6, 1)
CLUENER = Path("/work/shared/data/ner/cluener/train.json")
STRUCTURED = frozenset(STRUCTURED_CATEGORIES)


def _state(text: str) -> tuple[object, ...]:
    """Everything a `Normalised` carries, comparable."""
    n = normalise(text, today=NOW)
    m = NORMALISE._normalise_full(text, today=NOW)
    out = []
    for x in (n, m):
        edits = x._map
        mapping = None if edits is None else (edits.new_starts, edits.new_ends, edits.old_starts)
        out.append((x.text, x.original, x.languages, x.today, mapping))
    return tuple(out)


def _same_as_reference(text: str) -> None:
    for model in (False, True):
        reg = _default(model)
        for cats in (STRUCTURED, None, frozenset({"phone", "age"})):
            for lang in (None, "zh", "en"):
                fast = scan(text, lang, categories=cats, now=NOW, model=model)
                assert fast == _scan_reference(text, lang, cats, NOW, reg), (text, cats, lang)
    a, b = _state(text)
    assert a == b, text


# ----------------------------------------------------------------------------- generated texts

PIECES = [
    "13812345678",
    "138 1234 5678",
    "138-1234-5678",
    "一三八一二三四五六七八",
    "壹叁捌",
    "二〇一二年三月五日出生",
    "2012.1.18出生的",
    "生日是2012年3月5日",
    "我是2012年的",
    make_id(date(2016, 3, 5)),
    luhn_complete("622202123456789012"),
    "abc@qq.com",
    "abc(at)qq.com",
    "QQ：12345678",
    "加我薇信：ｗｘ１２３",
    "加V：abc123",
    "vx abc_123",
    "企鹅号 123456",
    "192.168.1.1",
    "fe80::1",
    "39.9042, 116.4074",
    "粤B12345",
    "京A·D1234",
    "我今年12岁",
    "我还没成年",
    "10后",
    "初二3班",
    "五年级",
    "读初中",
    "I'm 13",
    "I am 13",
    "13 years old",
    "aged 13",
    "turned 13",
    "Grade 5",
    "Year 8",
    "kindergarten",
    "DOB: 2012-03-05",
    "born in 2012",
    "护照E12345678",
    "港澳通行证C12345678",
    "阳光小区3栋2单元501",
    "中山路12号",
    "網(wǎng)絡(luò)",
    "電話",
    "⑫",
    "①②③",
    "１２３",
    "歲",
]
NOISE = st.text(
    alphabet="的了是我在，。：（）“”！？；—‘’ ,.:;-()'\"ab1234567890零一二三四五六七八九十两"
    "😀\u200b\u200d\ufeff年月日号生出岁班级学中高初vVwWqQx/_~·",
    max_size=8,
)


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = [draw(NOISE)]
    for _ in range(draw(st.integers(0, 4))):
        parts.append(draw(st.sampled_from(PIECES)))
        parts.append(draw(NOISE))
    return "".join(parts)


@settings(max_examples=400, deadline=None)
@given(texts())
def test_scan_equals_the_reference(text: str) -> None:
    _same_as_reference(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_equals_the_reference(text: str) -> None:
    assert scan(text, now=NOW) == _scan_reference(text, None, None, NOW, _default(False))
    a, b = _state(text)
    assert a == b


def test_evasion_and_clean_sets_equal_the_reference() -> None:
    for text in [c.text for c in generate(600, 7)] + list(clean(300, 7)):
        _same_as_reference(text)


@pytest.mark.skipif(not CLUENER.exists(), reason="CLUENER corpus not available")
def test_cluener_equals_the_reference() -> None:
    reg = _default(False)
    with CLUENER.open(encoding="utf-8") as f:
        lines = [json.loads(line)["text"] for _, line in zip(range(3000), f, strict=False)]
    for text in lines:
        assert scan(text, categories=STRUCTURED, now=NOW) == _scan_reference(
            text, None, STRUCTURED, NOW, reg
        ), text


def test_the_prefilter_ends_most_scans_of_plain_text() -> None:
    """Not a timing: the prefilter is selective (most plain sentences end there)."""
    pre = _default(False).prefilter(STRUCTURED, None)
    assert pre is not None and not pre.folds
    plain = ["今天天气很好，我们一起去公园玩吧。", "北京时间2008年8月8日晚，奥运会开幕。"]
    assert not any(pre.search(t) for t in plain)
    assert pre.search("电话：13812345678") and pre.search("我今年１２歲")


# ----------------------------------------------------------------------------- anchors


def test_anchors_match_the_unfolded_text_where_they_match_the_folded_one() -> None:
    rng = random.Random(5)
    anchors = [*work_anchors(), ("0123456789", ":", "[0-9]{2}"), ("a", "t", r"[)\]]")]
    raw = Anchors(anchors, unfolded=UNFOLDED)
    folded = Anchors(anchors)
    assert not raw.folds
    alphabet = "，：（）“”？！；—‘’,:()\"?!;-' 0123456789at一二三①(wǒ)我"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
        if folded.search(fold_common(text)):
            assert raw.search(text), text
    assert raw.search("12：34") and raw.search("at）") and not raw.search("12：3")


def test_anchor_checks() -> None:
    with pytest.raises(ValueError):
        Anchors([("", "", "")])
    assert not Anchors([]).search("anything")
    assert Anchors([("微", "信", "")]).search("加我微信")


# ----------------------------------------------------------------------------- model batches

BOUNDARY_TEXTS = [
    "我叫张",
    "伟，在北京市海淀区",
    "中关村大街1号上学",
    "王芳老师说",
    "刘洋和陈静住在上海市浦东新区世纪大道100号",
    "",
    "李",
    "小红在北京市第一中学读初二。",
    "今天天气很好",
    "hello world 123",
    "住在广州市天河区",
    "体育西路，他们是广州市第六中学的学生",
    "電話：138 1234 5678，我叫張偉",
    "\u200b张伟在北京\u200b",
    "张伟在北京工作" + "很" * 300 + "。",
]


def test_scan_many_with_the_model_equals_scan() -> None:
    texts = BOUNDARY_TEXTS * 3
    assert scan_many(texts, now=NOW, model=True) == [scan(t, now=NOW, model=True) for t in texts]
    cats = ["person_name", "phone"]
    assert scan_many(texts, now=NOW, model=True, categories=cats) == [
        scan(t, now=NOW, model=True, categories=cats) for t in texts
    ]
    assert scan_many(texts, lang="zh", now=NOW, model=True) == [
        scan(t, lang="zh", now=NOW, model=True) for t in texts
    ]
    # each text alone: nothing of one leaks into the next
    names = [f.value for fs in scan_many(["我叫张", "伟"], now=NOW, model=True) for f in fs]
    assert "张伟" not in names


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(texts(), st.sampled_from(BOUNDARY_TEXTS)), max_size=10))
def test_scan_many_with_the_model_equals_scan_on_generated_texts(items: list[str]) -> None:
    assert scan_many(items, now=NOW, model=True) == [scan(t, now=NOW, model=True) for t in items]


def test_the_model_tags_many_texts_as_one_by_one() -> None:
    rec = NerRecognizer()
    long_text = "张三、李四、王五都在广州市天河区体育西路读书。" * 40
    texts = [t for t in BOUNDARY_TEXTS if t] + [long_text]
    assert rec.find_many(texts) == [rec.find(t) for t in texts]
    assert rec.find_many([]) == [] and rec.find_many([""]) == [[]]


@pytest.mark.skipif(not CLUENER.exists(), reason="CLUENER corpus not available")
def test_the_model_tags_cluener_as_one_by_one() -> None:
    rec = NerRecognizer()
    with CLUENER.open(encoding="utf-8") as f:
        lines = [json.loads(line)["text"] for _, line in zip(range(1500), f, strict=False)]
    assert rec.find_many(lines) == [rec.find(t) for t in lines]


def test_birth_dates_are_read_text_by_text_in_scan_many() -> None:
    # a birth word with the date after it, in a later text, must not hide a date before a
    # birth word in an earlier text (they are scanned joined)
    texts = ["2012-02-23出生的，属狗", "生日是2013年1月1日", "2011.1.18出生的", "好"]
    assert scan_many(texts, now=NOW) == [scan(t, now=NOW) for t in texts]
    assert [len(fs) for fs in scan_many(texts, now=NOW)] == [1, 1, 1, 0]


def test_many_category_sets_share_one_prefilter_past_a_bound() -> None:
    reg = _default(False)
    cats = sorted(STRUCTURED)
    for k in range(40):  # more sets than are kept: the rest use the one for all categories
        subset = frozenset(cats[i] for i in range(len(cats)) if (k >> (i % 6)) & 1 or i == k % 14)
        assert scan("电话13812345678，我今年12岁", categories=subset, now=NOW) == _scan_reference(
            "电话13812345678，我今年12岁", None, subset, NOW, reg
        )
    assert len(reg._prefilters) <= 33


def test_scan_many_with_the_model_on_one_character_texts() -> None:
    """Found by hypothesis: a batch whose texts are all one character long has no n-grams."""
    assert scan_many(["李", "李"], model=True) == [scan("李", model=True)] * 2
