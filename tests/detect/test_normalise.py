"""qinglang.detect.normalise: each evasion undone, offsets mapped back exactly, properties."""

from __future__ import annotations

import doctest
import importlib
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang.detect import detect_languages, normalise
from qinglang.detect.normalise import load_aliases, shanghai_today

NORMALISE_MODULE = importlib.import_module("qinglang.detect.normalise")


def back(text: str, start: int, end: int) -> str:
    """The original characters a normalised span came from."""
    n = normalise(text)
    s, e = n.to_original(start, end)
    return text[s:e]


def span_of(text: str, needle: str) -> str:
    """Normalise `text`, find `needle` in the result, return the original characters for it."""
    n = normalise(text)
    i = n.text.index(needle)
    s, e = n.to_original(i, i + len(needle))
    return text[s:e]


def test_doctests() -> None:
    result = doctest.testmod(NORMALISE_MODULE)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------- characters


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ｗｘ１２３", "wx123"),
        ("ＡＢＣ＠ｑｑ．ｃｏｍ", "ABC@qq.com"),
        ("电话：（０１０）", "电话:(010)"),
        ("a\u3000b", "a b"),
        ("①②③", "123"),
        ("⑴⑵", "12"),
        ("❶➋⓪", "120"),
        ("¹³⁸", "138"),
        ("𝟏𝟑𝟖", "138"),
        ("١٢٣", "123"),  # Arabic-Indic digits
        ("“引号”", '"引号"'),
    ],
)
def test_width_and_lookalike_characters(raw: str, expected: str) -> None:
    n = normalise(raw)
    assert n.text == expected
    assert n.to_original(0, len(n.text)) == (0, len(raw))


def test_one_for_one_characters_keep_offsets() -> None:
    n = normalise("加我薇信：ｗｘ１２３")
    assert n.text == "加我微信:wx123"
    assert n.identity
    assert n.to_original(5, 10) == (5, 10)


def test_two_digit_enclosed_numbers_expand() -> None:
    n = normalise("我⑫岁")
    assert n.text == "我12岁"
    assert n.to_original(1, 3) == (1, 2)
    assert n.to_original(1, 2) == (1, 2)  # each digit maps to the whole ⑫
    assert n.to_original(3, 4) == (2, 3)


def test_zero_width_characters_are_dropped_and_covered() -> None:
    raw = "138\u200b1234\u200c5678\ufeff\u00ad"
    n = normalise(raw)
    assert n.text == "13812345678"
    assert n.to_original(0, 11) == (0, len(raw))
    assert back(raw, 3, 7) == "1234"


# ----------------------------------------------------------------------------- numerals and runs


@pytest.mark.parametrize(
    "raw",
    [
        "一三八一二三四五六七八",
        "幺三八幺二三四五六七八",
        "壹叁捌壹贰叁肆伍陆柒捌",
        "一三八①②③④五六七八",
        "138 1234 5678",
        "138-1234-5678",
        "138 - 1234 - 5678".replace(" - ", "—"),
        "1😀3😀8😀1😀2😀3😀4😀5😀6😀7😀8",
        "138🌸1234🔥5678",
        "138❤️1234❤️5678",
        "1 3 8 1 2 3 4 5 6 7 8",
        "138  1234  5678",
        "138.1234.5678",
        "1,3,8,1,2,3,4,5,6,7,8",
        "138/1234/5678",
        "138|1234|5678",
        "１３８　１２３４　５６７８",
    ],
)
def test_evasive_phone_numbers_become_one_digit_run(raw: str) -> None:
    n = normalise("电话" + raw + "，谢谢")
    assert "13812345678" in n.text
    assert span_of("电话" + raw + "，谢谢", "13812345678") == raw


@pytest.mark.parametrize(
    "raw",
    [
        "初二3班",  # a grade, not a number
        "一个人",
        "三五成群",
        "一五一十",
        "适合3-5岁",
        "2012-05-03",
        "2012/5/3",
        "05/03/2012",
        "192.168.1.1",
        "39.9042, 116.4074",
        "39.9042 116.4074",
        "3.14",
        "1,000",
        "比分3:2",
        "第1, 2名",
    ],
)
def test_not_merged(raw: str) -> None:
    assert normalise(raw).text == raw


def test_separate_numbers_in_a_sentence_stay_separate() -> None:
    text = normalise("电话13812345678。另一个13987654321").text
    assert "13812345678" in text and "13987654321" in text
    assert normalise("电话138，QQ 12345").text == "电话138,QQ 12345"


def test_long_separators_do_not_merge() -> None:
    assert normalise("138 -- 1234").text == "138 -- 1234"
    assert normalise("2015 年 2016").text == "2015 年 2016"


def test_numeral_runs_need_four_numerals() -> None:
    assert normalise("一二三四五，上山打老虎").text.startswith("12345,")
    assert normalise("二〇一二年三月五日").text == "2012年三月五日"
    assert normalise("他把事情一五一十地").text == "他把事情一五一十地"


def test_a_lone_numeral_next_to_a_number_is_a_word() -> None:
    assert normalise("加我QQ号50183575843一起开黑").text == "加我QQ号50183575843一起开黑"
    assert normalise("第一13812345678").text == "第一13812345678"


def test_identity_number_with_separated_x() -> None:
    assert normalise("11010519491231002-X").text == "11010519491231002X"
    assert normalise("110105 19491231 002 x").text == "11010519491231002x"


# ----------------------------------------------------------------------------- aliases


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("加我薇信abc123", "加我微信abc123"),
        ("V信：abc123", "微信:abc123"),
        ("v信号abc123", "微信号abc123"),
        ("vx：abc123", "微信:abc123"),
        ("VX abc123", "微信 abc123"),
        ("wx: abc123", "微信: abc123"),
        ("weixin abc123", "微信 abc123"),
        ("绿泡泡 abc123", "微信 abc123"),
        ("加我威信abc123", "加我微信abc123"),
        ("加卫星abc123", "加微信abc123"),
        ("加V abc123", "加微信 abc123"),
        ("扣扣123456", "QQ123456"),
        ("抠抠：123456", "QQ:123456"),
        ("企鹅号123456", "QQ号123456"),
        ("加我企鹅123456", "加我QQ123456"),
        ("球球：123456", "QQ:123456"),
        ("Q号 123456", "QQ号 123456"),
        ("qq 123456", "QQ 123456"),
        ("企鵝號：123456", "QQ号:123456"),
    ],
)
def test_contact_app_aliases(raw: str, expected: str) -> None:
    assert normalise(raw).text == expected


@pytest.mark.parametrize(
    "raw",
    [
        "他很有威信",
        "卫星发射成功",
        "企鹅很可爱",
        "vxlan 配置",
        "Alexvx",
        "wxyz",
        "V8 engine",
        "球球不见了",
        "口口声声",
    ],
)
def test_aliases_that_are_ordinary_words_stay(raw: str) -> None:
    assert normalise(raw).text == raw


def test_alias_file_entries_are_documented() -> None:
    aliases = load_aliases()
    assert len(aliases) >= 20
    assert len({a.alias.lower() for a in aliases}) == len(aliases)
    for a in aliases:
        assert a.canonical in ("微信", "QQ", "QQ号"), a
        assert a.when in ("always", "contact"), a
        assert len(a.reason) > 10, a


def test_alias_mapping_back_to_original() -> None:
    raw = "加weixin：abc123"
    n = normalise(raw)
    assert n.text == "加微信:abc123"
    i = n.text.index("微信")
    assert n.to_original(i, i + 2) == (1, 7)
    assert back(raw, n.text.index("abc"), len(n.text)) == "abc123"


# ----------------------------------------------------------------------------- scripts


def test_traditional_to_simplified() -> None:
    n = normalise("我的電話號碼，年級，週歲")
    assert n.text == "我的电话号码,年级,周岁"
    assert len(n.text) == len("我的電話號碼，年級，週歲")


def test_pinyin_annotations_are_folded_into_their_character() -> None:
    raw = "網(wǎng)絡(luò)"
    n = normalise(raw)
    assert n.text == "网络"
    assert n.to_original(0, 1) == (0, 7)
    assert n.to_original(1, 2) == (7, len(raw))
    assert normalise("電(diàn)話(huà)：138").text == "电话:138"
    assert normalise("电（diàn）话").text == "电话"


def test_plain_pinyin_only_goes_with_toned_pinyin() -> None:
    assert normalise("我(wǒ)的(de)电话").text == "我的电话"
    assert normalise("微信(abc123)").text == "微信(abc123)"
    assert normalise("好的(de)").text == "好的(de)"  # no toned pinyin: not scraped text


# ----------------------------------------------------------------------------- map & languages


def test_to_original_rejects_spans_outside() -> None:
    n = normalise("abc")
    with pytest.raises(ValueError):
        n.to_original(0, 4)
    with pytest.raises(ValueError):
        n.to_original(2, 1)


def test_empty_and_all_deleted() -> None:
    assert normalise("").text == ""
    n = normalise("\u200b\u200b")
    assert n.text == ""
    assert n.to_original(0, 0) == (0, 2)


def test_boundaries_report_dropped_separators() -> None:
    n = normalise("电话2015 138 1234 5678")
    start = n.text.index("2015")
    assert n.boundaries(start, start + 15) == [start + 4, start + 7, start + 11]


def test_languages() -> None:
    assert detect_languages("我今年12岁") == {"zh"}
    assert detect_languages("I'm 13") == {"en"}
    assert detect_languages("我在Grade 5") == {"zh", "en"}
    assert detect_languages("13812345678") == frozenset()
    assert normalise("我在Grade 5", lang="zh").languages == {"zh"}


def test_reference_date() -> None:
    assert normalise("x", today=date(2020, 1, 2)).today == date(2020, 1, 2)
    assert shanghai_today(datetime(2024, 5, 31, 16, 0, tzinfo=UTC)) == date(2024, 6, 1)
    assert shanghai_today(datetime(2024, 5, 31, 16, 0)) == date(2024, 5, 31)
    assert shanghai_today(date(2020, 1, 1)) == date(2020, 1, 1)
    assert shanghai_today() == shanghai_today(datetime.now(UTC))


# ----------------------------------------------------------------------------- properties

EVASIONS = [
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u00ad",
    "😀",
    "❤️",
    " ",
    "  ",
    "-",
    ".",
    ",",
    "①",
    "⑫",
    "⒇",
    "❶",
    "１",
    "ｘ",
    "一",
    "〇",
    "两",
    "壹",
    "(wǎng)",
    "(de)",
    "（",
    "）",
    "薇信",
    "vx",
    "扣扣",
    "企鹅号",
    "加威信",
    "網",
    "電話",
    "X",
    "\u3000",
]
BASE = st.text(
    alphabet="0123456789一二三四五六七八九十abcxyzQ微信电话号码年级班岁:@. ", max_size=40
)


@st.composite
def evasive_text(draw: st.DrawFn) -> str:
    """Random text with random evasions inserted at random places."""
    text = draw(BASE)
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(EVASIONS)) + text[i:]
    return text


@settings(max_examples=300, deadline=None)
@given(evasive_text())
def test_every_span_maps_back_in_bounds_and_in_order(text: str) -> None:
    n = normalise(text)
    m, k = len(n.text), len(text)
    assert n.to_original(0, m) == (0, k)
    previous = (0, 0)
    for a in range(m + 1):
        s, e = n.to_original(a, m)
        assert 0 <= s <= e <= k
        assert s >= previous[0]
        previous = (s, e)
        if a < m:
            cs, ce = n.to_original(a, a + 1)
            assert 0 <= cs < ce <= k  # every normalised character comes from something
    ends = [n.to_original(0, b)[1] for b in range(m + 1)]
    assert ends == sorted(ends)


@settings(max_examples=200, deadline=None)
@given(evasive_text(), st.data())
def test_spans_nest(text: str, data: st.DataObject) -> None:
    n = normalise(text)
    m = len(n.text)
    a = data.draw(st.integers(0, m))
    b = data.draw(st.integers(a, m))
    c = data.draw(st.integers(a, b))
    outer = n.to_original(a, b)
    inner = n.to_original(c, b)
    assert outer[0] <= inner[0] and inner[1] <= outer[1]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_normalises_with_a_valid_map(text: str) -> None:
    n = normalise(text)
    assert n.to_original(0, len(n.text)) == (0, len(text))
    for a in range(len(n.text)):
        s, e = n.to_original(a, a + 1)
        assert 0 <= s < e <= len(text)


def test_yi_starting_a_word_is_not_a_digit() -> None:
    assert normalise("加我qq玖壹贰贰伍玖零玖一起开黑").text.endswith("91225909一起开黑")
    assert normalise("电话一三八一二三四五六七八一下").text == "电话13812345678一下"
    assert normalise("号码一三八一二三四五六七八一").text.endswith("138123456781")  # no word after
