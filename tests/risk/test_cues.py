"""Grooming cues in messages: classes, evasions, offsets, stated ages, the lexicon's shape."""

from __future__ import annotations

import re
import tomllib
from importlib import resources

import pytest

from qinglang.risk import STAGE_ORDER, detect_cues, load_lexicon, score_conversation
from qinglang.risk.cues import DISCLOSURE, _leads, excerpt, prepare
from qinglang.risk.params import CUE_CLASSES

from .risk_testing import CN, load_scenarios


def cues(text: str) -> set[str]:
    return {h.cue for h in detect_cues(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你今年几岁了？", "asks_age"),
        ("上几年级了", "asks_age"),
        ("你在哪个学校上学", "asks_school"),
        ("几点放学", "asks_school"),
        ("你家住在哪个小区", "asks_location"),
        ("发个定位给我", "asks_location"),
        ("你好可爱，比同龄人成熟", "flattery"),
        ("做我女朋友吧", "affection"),
        ("给你发个红包", "gifts"),
        ("送你皮肤", "gifts"),
        ("你爸妈在家吗？", "asks_alone"),
        ("一个人在家吗", "asks_alone"),
        ("只有我懂你", "isolation"),
        ("别告诉爸妈", "secrecy"),
        ("聊完就删", "secrecy"),
        ("年龄不是问题", "age_risk"),
        ("加我微信", "move_platform"),
        ("私聊", "move_platform"),
        ("发张自拍给我", "asks_images"),
        ("开个视频", "asks_images"),
        ("把衣服脱了", "sexual"),
        ("周末出来见面", "meeting"),
        ("我去接你", "meeting"),
        ("how old are u?", "asks_age"),
        ("asl?", "asks_age"),
        ("what school do you go to", "asks_school"),
        ("where do you live", "asks_location"),
        ("you're so mature for your age", "flattery"),
        ("love u", "affection"),
        ("i can buy you robux", "gifts"),
        ("are your parents home?", "asks_alone"),
        ("only i understand you", "isolation"),
        ("don't tell your mom", "secrecy"),
        ("delete the messages", "secrecy"),
        ("age is just a number", "age_risk"),
        ("add me on snap", "move_platform"),
        ("send me a pic", "asks_images"),
        ("turn on your cam", "asks_images"),
        ("take off your shirt", "sexual"),
        ("wanna meet up?", "meeting"),
    ],
)
def test_each_class_in_chinese_and_english(text: str, expected: str) -> None:
    assert expected in cues(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("加我薇信", "move_platform"),  # homophone
        ("加我V信", "move_platform"),
        ("V❤聊", "move_platform"),  # heart read as 心/信
        ("扣扣号多少", "move_platform"),
        ("加我威信号abc123", "move_platform"),  # alias only in a contact context
        ("加 微 信", "move_platform"),  # spaces between the characters
        ("加\u200b微\u200b信", "move_platform"),  # zero-width characters
        ("ＱＱ号多少", "move_platform"),  # full-width letters
        ("別告訴爸媽", "secrecy"),  # traditional characters
        ("别-告-诉-爸-妈", "secrecy"),
        ("你幾歲了", "asks_age"),
        ("add me on s n a p", "move_platform"),  # spaced letters
        ("send me a p1c", "asks_images"),  # digits for letters
        ("ur so s3xy", "sexual"),
        ("DON'T TELL YOUR MOM", "secrecy"),
    ],
)
def test_evasions_do_not_hide_cues(text: str, expected: str) -> None:
    assert expected in cues(text)


@pytest.mark.parametrize(
    "text",
    [
        "你好呀，今天作业写完了吗？",
        "数学第三题怎么做",
        "卫星发射成功了",  # 卫星 is an alias of 微信 only in a contact context
        "他在学校很有威信",
        "我们一起去图书馆",
        "this game is so much fun",
        "the class starts at nine",
        "i love pizza",
        "see you later",
    ],
)
def test_ordinary_text_has_no_weighted_cue(text: str) -> None:
    assert not {h.cue for h in detect_cues(text) if h.stage != "context"}


def test_hits_point_at_what_the_user_wrote() -> None:
    text = "你好！加\u200b我 薇 信，別告訴爸媽哦"
    hits = detect_cues(text)
    spans = {h.cue: text[h.start : h.end] for h in hits}
    assert spans["move_platform"] == "加\u200b我 薇 信"
    assert spans["secrecy"].startswith("別告訴爸")
    assert hits == sorted(hits, key=lambda h: (h.start, h.end, h.cue))


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("我12岁", 12),
        ("我今年十二岁", 12),
        ("我才１３岁", 13),
        ("我三十五岁", 35),
        ("我上初二", 13),
        ("我读五年级", 10),
        ("我还没成年", 15),
        ("im 13", 13),
        ("i am 14 years old", 14),
        ("13 f", 13),
        ("asl? 35/m", 35),
        ("i'm in 7th grade", 13),
    ],
)
def test_stated_ages(text: str, age: int) -> None:
    ages = [h.age for h in detect_cues(text) if h.cue == DISCLOSURE]
    assert age in ages


@pytest.mark.parametrize(
    "text", ["i'm 5 min away", "im 20 mins late", "我们3个人", "i am 100% sure"]
)
def test_numbers_that_are_not_ages(text: str) -> None:
    assert not [h for h in detect_cues(text) if h.cue == DISCLOSURE and (h.age or 0) < 18]


def test_excerpt_is_short_and_marks_cuts() -> None:
    text = "a" * 100 + "别告诉爸妈" + "b" * 100
    hit = next(h for h in detect_cues(text) if h.cue == "secrecy")
    ex = excerpt(text, hit.start, hit.end)
    assert ex.startswith("…") and ex.endswith("…") and "别告诉爸" in ex and len(ex) < 40


def test_prepare_maps_closed_up_text_back() -> None:
    p = prepare("加 微 信")
    assert p.text == "加微信"
    assert p.to_original(0, 3) == (0, 5)


# ----------------------------------------------------------------------------- the lexicon


def test_every_weighted_class_has_a_pack_rule_and_a_stage() -> None:
    lex = load_lexicon()
    weighted = {c.id for c in lex.classes.values() if c.stage != "context"}
    assert weighted == set(CUE_CLASSES)
    for cid in weighted:
        assert CN.require(f"risk.cue.{cid}").id == f"cn.risk.cue.{cid}"
        assert lex.classes[cid].stage in STAGE_ORDER
        assert lex.classes[cid].label_zh and lex.classes[cid].label_en


def _raw_patterns() -> list[tuple[str, str, str]]:
    raw = resources.files("qinglang.risk").joinpath("data/cues.toml").read_text("utf-8")
    doc = tomllib.loads(raw)
    out = []
    for entry in [*doc["cue"], *doc["disclosure"]]:
        for lang in ("zh", "en"):
            for p in entry.get(lang, ()):
                out.append((lang, entry.get("id", DISCLOSURE), p))
    return out


def test_leading_expansion_matches_what_the_pattern_matches() -> None:
    """The literal-led rewrite used for speed finds the same matches as the plain pattern."""
    texts = [" ".join(m[1] for m in sc["messages"]) for sc in load_scenarios("zh_scenarios.jsonl")]
    texts += [" ".join(m[1] for m in sc["messages"]) for sc in load_scenarios("en_scenarios.jsonl")]
    prepared = [prepare(t).text for t in texts]
    for lang, _, p in _raw_patterns():
        plain = re.compile(p if lang == "zh" else f"(?<![a-z0-9])(?:{p})(?![a-z0-9])")
        fast = re.compile(
            "|".join(
                f"{re.escape(c)}{'(?<![a-z0-9].)' if lang == 'en' else ''}(?:{r})"
                f"{'(?![a-z0-9])' if lang == 'en' else ''}"
                for c, r in _leads(p)
            )
        )
        for t in prepared:
            assert {m.start() for m in plain.finditer(t)} <= {
                i for i in range(len(t)) if fast.match(t, i)
            }, p


def test_leads_rejects_patterns_it_cannot_index() -> None:
    for bad in (".{0,3}x", "(?=a)b", "(?:a)*b", "[^a]b"):
        with pytest.raises(ValueError):
            _leads(bad)


# ----------------------------------------------------------------------------- conversations


def test_score_conversation_flags_grooming() -> None:
    text = (
        "hi how old r u? im 13. ur so cute. is ur mom home? dont tell anyone about us. "
        "add me on snap. send me a pic. wanna meet up saturday? im 35"
    )
    risk = score_conversation(text)
    assert risk.score >= 0.6
    names = {s.name for s in risk.signals}
    assert {"cue.secrecy", "stage.progression", "age_gap"} <= names
    assert all(0.0 <= s.weight <= 1.0 for s in risk.signals)
    assert any(s.excerpt and "dont tell anyone" in s.excerpt for s in risk.signals)


def test_sexual_words_alone_do_not_decide() -> None:
    adults = (
        "hey asl? 24 f. 27 m. ur sexy. u horny? send nudes. add me on kik. "
        "wanna meet up? my place tonight"
    )
    assert score_conversation(adults).score < 0.6


def test_score_conversation_in_chinese() -> None:
    text = "你今年几岁？我12岁。你好可爱。别告诉爸妈。加我薇信。发张自拍。周末出来见面"
    assert score_conversation(text).score >= 0.6
    assert score_conversation("今天作业写完了吗？明天一起去图书馆吧").score == 0.0
