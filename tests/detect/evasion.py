"""Seeded generator of evasive PII cases and of tricky clean sentences for ``qinglang.detect``.

``generate(n, seed)`` returns ``n`` :class:`Case` objects. Each case is one realistic sentence
(mostly Chinese, some English) that carries one piece of personal information written with one
or more of the evasions listed in issue 3:

=====================  ====================================================================
``fullwidth``          full-width forms (``１３８``, ``ａｂｃ＠ｑｑ．ｃｏｍ``)
``chinese_numerals``   Chinese numerals (``一三八``, ``十二岁``, ``二〇一二年``)
``financial_numerals`` financial numerals (``壹叁捌``, ``拾贰岁``)
``circled_numerals``   circled numerals (``①③⑧``, ``⑫岁``, ``初二③班``)
``separators``         separators between digits (``138-1234-5678``, ``2012.03.05``)
``spaces``             spaces between digits (``1 3 8 1 2 3 ...``)
``emoji``              emoji between digits (``138🌸1234🔥5678``)
``zero_width``         zero-width characters inside the value (U+200B, U+200C, U+200D, ...)
``app_alias``          homophones and aliases of contact apps (薇信, V信, vx, 威信, 扣扣, 企鹅号)
``traditional``        traditional Chinese text written by hand (電話, 微信號, 年級, 粵B...)
``pinyin_annotation``  scraped text with pinyin after characters (``電(diàn)話(huà)``)
=====================  ====================================================================

Values are valid: resident identity numbers have a real region code, a plausible birth date and
the MOD 11-2 check character (checked with ``qinglang.age.ric``), bank cards pass Luhn, mobiles
are ``1[3-9]`` + 9 digits. Every case records the expected category, the span of the value in
the ORIGINAL text (end exclusive) and the normalised value where the contract defines one.

``clean(n, seed)`` returns ``n`` sentences without personal information that are deliberately
tricky: years, prices, order counts and codes, dates without a birthday context, temperatures,
scores, chapter numbers, "Grade A", version numbers, numerals in idioms and list markers, and
context words (电话, 微信, QQ, 生日) with no value. About a quarter are CLUENER dev sentences
filtered by rules (only game/movie/book/company/position labels, no long digit runs, no contact,
age, school or place words).

The module has no dependency on ``qinglang.detect``; the bench imports it too.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import NamedTuple

from qinglang.age import ric

__all__ = [
    "CATEGORIES",
    "EVASIONS",
    "Case",
    "Expect",
    "clean",
    "generate",
]

FULLWIDTH = "fullwidth"
CN_NUM = "chinese_numerals"
FIN_NUM = "financial_numerals"
CIRCLED = "circled_numerals"
SEPARATORS = "separators"
SPACES = "spaces"
EMOJI = "emoji"
ZERO_WIDTH = "zero_width"
APP_ALIAS = "app_alias"
TRADITIONAL = "traditional"
PINYIN = "pinyin_annotation"

EVASIONS = (
    FULLWIDTH,
    CN_NUM,
    FIN_NUM,
    CIRCLED,
    SEPARATORS,
    SPACES,
    EMOJI,
    ZERO_WIDTH,
    APP_ALIAS,
    TRADITIONAL,
    PINYIN,
)

CLUENER_DEV = Path("/work/shared/data/ner/cluener/dev.json")


class Expect(NamedTuple):
    """One expected finding: category, span in the original text, normalised value (or None)."""

    category: str
    start: int
    end: int
    value: str | None


@dataclass(frozen=True)
class Case:
    text: str
    expected: list[Expect]
    evasions: list[str]
    lang: str = "zh"
    meta: dict[str, str] = field(default_factory=dict)

    def span_text(self, e: Expect) -> str:
        return self.text[e.start : e.end]


# --------------------------------------------------------------------------- value renderers

CN_DIGITS = "〇一二三四五六七八九"
CN_DIGITS_LING = "零一二三四五六七八九"
FIN_DIGITS = "零壹贰叁肆伍陆柒捌玖"
CIRCLED_DIGITS = "⓪①②③④⑤⑥⑦⑧⑨"
CIRCLED_NUMBERS = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
ZW_CHARS = ("\u200b", "\u200c", "\u200d", "\ufeff", "\u2060")
EMOJIS = ("😀", "🌸", "🔥", "👍", "⭐", "🍓", "🐱", "✨", "❤️", "🎮")
SEPS = ("-", ".", "/", "_", "—", "|", "~", "·", ",")


def fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def _map_digits(s: str, table: str) -> str:
    return "".join(table[int(c)] if c.isdigit() else c for c in s)


def _join_gaps(s: str, rng: random.Random, filler: Callable[[], str], p: float) -> str:
    """Insert filler() into gaps between characters with probability p (at least two gaps)."""
    gaps = len(s) - 1
    chosen = {i for i in range(gaps) if rng.random() < p}
    while len(chosen) < min(2, gaps):
        chosen.add(rng.randrange(gaps))
    out = []
    for i, c in enumerate(s):
        out.append(c)
        if i in chosen:
            out.append(filler())
    return "".join(out)


def _grouped(s: str, groups: tuple[int, ...], sep: str) -> str:
    parts, i = [], 0
    for g in groups:
        if i >= len(s):
            break
        parts.append(s[i : i + g])
        i += g
    if i < len(s):
        parts.append(s[i:])
    return sep.join(parts)


def render_digits(s: str, evasion: str, rng: random.Random, groups: tuple[int, ...]) -> str:
    """Render a digit string (ID numbers may end in X) with one digit-level evasion."""
    if evasion == FULLWIDTH:
        return fullwidth(s)
    if evasion == CN_NUM:
        return _map_digits(s, rng.choice((CN_DIGITS, CN_DIGITS_LING)))
    if evasion == FIN_NUM:
        return _map_digits(s, FIN_DIGITS)
    if evasion == CIRCLED:
        return _map_digits(s, CIRCLED_DIGITS)
    if evasion == SEPARATORS:
        sep = rng.choice(SEPS)
        if rng.random() < 0.6:
            return _grouped(s, groups, sep)
        return sep.join(s)
    if evasion == SPACES:
        if rng.random() < 0.5:
            return " ".join(s)
        return _grouped(s, groups, rng.choice((" ", "  ", "\u3000")))
    if evasion == EMOJI:
        if rng.random() < 0.5:
            return _grouped(s, groups, rng.choice(EMOJIS))
        return _join_gaps(s, rng, lambda: rng.choice(EMOJIS), 0.35)
    if evasion == ZERO_WIDTH:
        return _join_gaps(s, rng, lambda: rng.choice(ZW_CHARS), 0.5)
    return s


def zero_width(s: str, rng: random.Random) -> str:
    return _join_gaps(s, rng, lambda: rng.choice(ZW_CHARS), 0.5)


# --------------------------------------------------------------------------- valid values

ID_REGIONS = (
    "110105",
    "310104",
    "440305",
    "320102",
    "330106",
    "420106",
    "440106",
    "370102",
    "210102",
    "350102",
    "610113",
    "120101",
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def make_id_number(rng: random.Random, *, minor: bool | None = None) -> str:
    today = date.today()
    while True:
        if minor is None:
            minor = rng.random() < 0.7
        year = rng.randint(today.year - 17, today.year - 6) if minor else rng.randint(1970, 2004)
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        first17 = f"{rng.choice(ID_REGIONS)}{year:04d}{month:02d}{day:02d}{rng.randint(0, 999):03d}"
        total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
        number = first17 + _ID_CHECK[total % 11]
        if ric.is_valid(number):
            return number


def luhn_complete(prefix: str) -> str:
    """Append the Luhn check digit to prefix."""
    total = 0
    for i, c in enumerate(reversed(prefix)):
        d = int(c)
        if i % 2 == 0:  # these become odd positions once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix + str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return luhn_complete(number[:-1]) == number


BANK_BINS = ("622202", "622848", "621700", "623058", "622588", "621483", "436742", "622700")


def make_bank_card(rng: random.Random) -> str:
    length = rng.choice((16, 16, 19))
    body = rng.choice(BANK_BINS) + "".join(rng.choice("0123456789") for _ in range(length - 7))
    return luhn_complete(body)


_MOBILE_SECOND = "30 31 32 33 35 36 37 38 39 50 51 52 55 57 58 59 66 70 73 75 76 77 78 80 81 82 "
_MOBILE_SECOND += "83 85 86 87 88 89 91 98 99"
MOBILE_PREFIXES = tuple(f"1{d}" for d in _MOBILE_SECOND.split())


def make_mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + "".join(rng.choice("0123456789") for _ in range(8))


def make_qq(rng: random.Random) -> str:
    """5..11 digits, no leading zero; never mobile-shaped (an 11-digit 1[3-9]... is a phone)."""
    while True:
        length = rng.choice((8, 9, 9, 10, 10, 11))
        n = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(length - 1))
        if not (length == 11 and n[0] == "1" and n[1] in "3456789"):
            return n


_WX_STEMS = ("lily", "xiaoyu", "tt", "momo", "dabao", "Kiki", "sunny", "yuyu", "ahao", "Coco")


def make_wechat(rng: random.Random) -> str:
    stem = rng.choice(_WX_STEMS)
    sep = rng.choice(("_", "-", ""))
    width = max(rng.randint(3, 6), 6 - len(stem) - len(sep))
    tail = "".join(rng.choice("0123456789") for _ in range(width))
    return f"{stem}{sep}{tail}"


_EMAIL_LOCALS = ("xiaoming", "happy.cat", "yuyu", "sunny_day", "dabao", "lucky", "moon.star")
_EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "sina.com", "foxmail.com")


def make_email(rng: random.Random) -> str:
    local = rng.choice(_EMAIL_LOCALS) + str(rng.randint(2008, 2018) if rng.random() < 0.5 else "")
    if rng.random() < 0.3:
        local = local.capitalize()
    return f"{local}{rng.randint(1, 99)}@{rng.choice(_EMAIL_DOMAINS)}"


def make_ip(rng: random.Random) -> str:
    first = rng.choice((36, 58, 101, 114, 119, 121, 180, 183, 202, 211, 218, 222))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


PLATE_PROVINCES = (  # (simplified, traditional)
    ("京", "京"),
    ("沪", "滬"),
    ("粤", "粵"),
    ("苏", "蘇"),
    ("浙", "浙"),
    ("鲁", "魯"),
    ("辽", "遼"),
    ("闽", "閩"),
    ("川", "川"),
    ("贵", "貴"),
)
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def make_plate(rng: random.Random) -> tuple[str, str, str]:
    """Return (simplified plate, traditional province char, the rest after the province)."""
    simp, trad = rng.choice(PLATE_PROVINCES)
    rest = rng.choice("ABCDEF")
    if rng.random() < 0.25:  # new-energy: 6 characters after the city letter
        rest += rng.choice("DF") + "".join(rng.choice("0123456789") for _ in range(5))
    else:
        pool = _PLATE_LETTERS[:8] + "0123456789" * 2
        tail = [rng.choice(pool) for _ in range(5)]
        tail[-1] = rng.choice("0123456789")
        rest += "".join(tail)
    return simp + rest, trad, rest


def make_gps(rng: random.Random) -> str:
    lat = rng.uniform(22.5, 40.0)
    lon = rng.uniform(104.0, 121.5)
    return f"{lat:.4f}, {lon:.4f}"


# --------------------------------------------------------------------------- templates
# "{v}" is the value; "{app}" the app name (QQ / WeChat) when the category has one.

TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "phone": {
        "zh": (
            "有事打我手机{v}，晚上都在家",
            "我的电话是{v}，放学后可以联系",
            "联系方式：{v}（别告诉我妈）",
            "手机号{v}，想一起玩的加我",
            "姐姐们可以打{v}找我，我一个人在家",
        ),
        "zht": (
            "有事打我手機{v}，晚上都在家",
            "我的電話是{v}，放學後可以聯繫",
            "聯絡方式：{v}，記得傳訊息給我",
            "手機號碼{v}，想一起玩的加我",
        ),
        "en": ("text me at {v} after school", "my number is {v}, call me tonight"),
    },
    "id_number": {
        "zh": (
            "我的身份证号是{v}，帮我看看能不能注册",
            "身份证：{v} 求大神帮忙实名",
            "实名认证用的身份证号码{v}，游戏限制太烦了",
        ),
        "zht": (
            "我的身份證號是{v}，幫我看看能不能註冊",
            "身份證號碼{v}，求大神幫忙實名",
        ),
        "en": ("my ID card number is {v}, can you verify my account",),
    },
    "bank_card": {
        "zh": (
            "打钱到我的银行卡{v}，谢谢哥哥",
            "卡号{v}，帮我充一下游戏",
            "银行卡号：{v} 充值用的",
        ),
        "zht": (
            "轉賬到我的銀行卡{v}，謝謝哥哥",
            "卡號{v}，幫我儲值遊戲",
        ),
        "en": ("send the money to card {v} please",),
    },
    "qq": {
        "zh": (
            "加我{app}{v}一起开黑",
            "{app}：{v}，验证写同学",
            "我的{app}是{v}，有空聊",
        ),
        "zht": (
            "加我{app}{v}一起開黑",
            "我的{app}是{v}，有空聊天",
        ),
        "en": ("add my {app} {v} pls",),
    },
    "wechat": {
        "zh": (
            "加我{app}：{v}，备注同学",
            "我的{app}号是{v}，拉你进群",
            "{app} {v} 来聊天呀",
        ),
        "zht": (
            "加我{app}：{v}，備註同學",
            "我的{app}是{v}，來聊天吧",
        ),
        "en": ("add me on {app}: {v}",),
    },
    "email": {
        "zh": ("我的邮箱是{v}，发照片给我", "作业发到邮箱{v}就行", "邮箱：{v} 有事留言"),
        "zht": ("我的郵箱是{v}，發照片給我", "電子郵件：{v}，有事留言"),
        "en": ("email me at {v}", "my email: {v} write me"),
    },
    "ip_address": {
        "zh": ("我家的IP是{v}，来联机", "服务器地址{v}，密码私聊"),
        "zht": ("我家的IP位址是{v}，來連線", "伺服器位址{v}，密碼私聊"),
        "en": ("join my server at {v} tonight",),
    },
    "licence_plate": {
        "zh": ("我爸的车牌是{v}，在学校门口等我", "车牌号{v}的车每天接我放学"),
        "zht": ("我爸的車牌是{v}，在學校門口等我", "車牌號碼{v}的車每天接我放學"),
    },
    "age": {
        "zh": ("我今年{v}了", "本人{v}，求组队", "我才{v}，妈妈不让我玩太久"),
        "zht": ("我今年{v}了，還在讀書", "本人{v}，求組隊"),
        "en": ("I'm {v} and bored", "i am {v} years old lol"),
    },
    "grade_class": {
        "zh": ("我在{v}，有同校的吗", "我们{v}的同学都在玩这个"),
        "zht": ("我在{v}，有同校的嗎", "我們{v}的同學都在玩這個"),
        "en": ("I'm in {v} at school", "just started {v} this term"),
    },
    "birthday": {
        "zh": ("我的生日是{v}，记得祝福我", "{v}出生的，属狗", "生日：{v}"),
        "zht": ("我的生日是{v}，記得祝福我", "{v}出生的，屬狗"),
        "en": ("my birthday is {v}",),
    },
    "passport": {
        "zh": ("护照号码{v}，帮我订机票", "我的护照号是{v}"),
        "zht": ("護照號碼{v}，幫我訂機票",),
        "en": ("passport no. {v}",),
    },
    "travel_permit": {
        "zh": ("港澳通行证{v}，下周去香港玩", "我的往来港澳通行证号码是{v}"),
        "zht": ("港澳通行證{v}，下週去香港玩",),
    },
    "gps": {
        "zh": ("我家坐标{v}，来找我玩", "定位：{v}"),
        "en": ("I'm at {v}, come over",),
    },
}

QQ_PLAIN = ("QQ", "qq", "QQ号")
QQ_ALIASES = ("扣扣", "企鹅号", "扣扣号", "企鹅", "Q号")
QQ_ALIASES_TRAD = ("扣扣", "企鵝號", "QQ號", "扣扣號")
WX_PLAIN = ("微信", "WeChat")
WX_ALIASES = ("薇信", "V信", "vx", "VX", "威信", "v信", "wx")
WX_ALIASES_TRAD = ("微信號", "薇信", "威信", "V信")

# Applicable evasions per category: value-level ones change the value, context-level ones the
# sentence around it (traditional, pinyin, app aliases).
APPLICABLE: dict[str, tuple[str, ...]] = {
    "phone": (
        FULLWIDTH,
        CN_NUM,
        FIN_NUM,
        CIRCLED,
        SEPARATORS,
        SPACES,
        EMOJI,
        ZERO_WIDTH,
        TRADITIONAL,
        PINYIN,
    ),
    "id_number": (
        FULLWIDTH,
        CN_NUM,
        FIN_NUM,
        CIRCLED,
        SEPARATORS,
        SPACES,
        EMOJI,
        ZERO_WIDTH,
        TRADITIONAL,
        PINYIN,
    ),
    "bank_card": (
        FULLWIDTH,
        CN_NUM,
        FIN_NUM,
        CIRCLED,
        SEPARATORS,
        SPACES,
        EMOJI,
        ZERO_WIDTH,
        TRADITIONAL,
        PINYIN,
    ),
    "qq": (
        APP_ALIAS,
        FULLWIDTH,
        CN_NUM,
        FIN_NUM,
        CIRCLED,
        SEPARATORS,
        SPACES,
        EMOJI,
        ZERO_WIDTH,
        TRADITIONAL,
        PINYIN,
    ),
    "wechat": (APP_ALIAS, FULLWIDTH, ZERO_WIDTH, TRADITIONAL, PINYIN),
    "email": (FULLWIDTH, ZERO_WIDTH, TRADITIONAL, PINYIN),
    "ip_address": (FULLWIDTH, ZERO_WIDTH, TRADITIONAL, PINYIN),
    "licence_plate": (FULLWIDTH, ZERO_WIDTH, SPACES, TRADITIONAL, PINYIN),
    "age": (FULLWIDTH, CN_NUM, FIN_NUM, CIRCLED, ZERO_WIDTH, TRADITIONAL, PINYIN),
    "grade_class": (FULLWIDTH, CN_NUM, CIRCLED, ZERO_WIDTH, TRADITIONAL, PINYIN),
    "birthday": (FULLWIDTH, CN_NUM, SEPARATORS, ZERO_WIDTH, TRADITIONAL, PINYIN),
    "passport": (FULLWIDTH, ZERO_WIDTH, TRADITIONAL),
    "travel_permit": (FULLWIDTH, TRADITIONAL),
    "gps": (FULLWIDTH, ZERO_WIDTH),
}
CATEGORIES = tuple(APPLICABLE)
# Evasions that rewrite the value itself (the rest only rewrite the sentence around it).
VALUE_EVASIONS = frozenset(
    {FULLWIDTH, CN_NUM, FIN_NUM, CIRCLED, SEPARATORS, SPACES, EMOJI, ZERO_WIDTH}
)

# Pinyin (with tone marks) for characters of the templates, simplified and traditional. Scraped
# pages annotate the characters they have readings for; characters missing here stay bare.
PINYIN_TABLE = {
    "电": "diàn", "電": "diàn", "话": "huà", "話": "huà", "手": "shǒu", "机": "jī",
    "機": "jī", "号": "hào", "號": "hào", "码": "mǎ", "碼": "mǎ", "联": "lián",
    "聯": "lián", "系": "xì", "繫": "xì", "络": "luò", "絡": "luò", "方": "fāng",
    "式": "shì", "身": "shēn", "份": "fèn", "证": "zhèng", "證": "zhèng", "银": "yín",
    "銀": "yín", "行": "háng", "卡": "kǎ", "微": "wēi", "信": "xìn", "薇": "wēi",
    "威": "wēi", "扣": "kòu", "企": "qǐ", "鹅": "é", "鵝": "é", "邮": "yóu",
    "郵": "yóu", "箱": "xiāng", "子": "zǐ", "件": "jiàn", "车": "chē", "車": "chē",
    "牌": "pái", "今": "jīn", "年": "nián", "岁": "suì", "歲": "suì", "级": "jí",
    "級": "jí", "班": "bān", "初": "chū", "高": "gāo", "生": "shēng", "日": "rì",
    "出": "chū", "护": "hù", "護": "hù", "照": "zhào", "通": "tōng", "證件": "",
    "我": "wǒ", "的": "de", "是": "shì", "加": "jiā", "家": "jiā", "有": "yǒu",
    "事": "shì", "打": "dǎ", "在": "zài", "晚": "wǎn", "上": "shàng", "都": "dōu",
    "放": "fàng", "学": "xué", "學": "xué", "后": "hòu", "後": "hòu", "可": "kě",
    "以": "yǐ", "玩": "wán", "想": "xiǎng", "一": "yī", "起": "qǐ", "帮": "bāng",
    "幫": "bāng", "看": "kàn", "能": "néng", "不": "bù", "注": "zhù", "册": "cè",
    "冊": "cè", "实": "shí", "實": "shí", "名": "míng", "钱": "qián", "錢": "qián",
    "到": "dào", "谢": "xiè", "謝": "xiè", "充": "chōng", "值": "zhí", "游": "yóu",
    "遊": "yóu", "戏": "xì", "戲": "xì", "开": "kāi", "開": "kāi", "黑": "hēi",
    "验": "yàn", "驗": "yàn", "写": "xiě", "寫": "xiě", "同": "tóng", "空": "kòng",
    "聊": "liáo", "天": "tiān", "备": "bèi", "備": "bèi", "群": "qún", "来": "lái",
    "來": "lái", "发": "fā", "發": "fā", "给": "gěi", "給": "gěi", "片": "piàn",
    "地": "dì", "址": "zhǐ", "位": "wèi", "服": "fú", "务": "wù", "務": "wù",
    "器": "qì", "伺": "sì", "爸": "bà", "校": "xiào", "门": "mén", "門": "mén",
    "口": "kǒu", "等": "děng", "每": "měi", "接": "jiē", "本": "běn", "人": "rén",
    "求": "qiú", "组": "zǔ", "組": "zǔ", "队": "duì", "隊": "duì", "才": "cái",
    "妈": "mā", "媽": "mā", "让": "ràng", "讓": "ràng", "读": "dú", "讀": "dú",
    "书": "shū", "書": "shū", "还": "hái", "還": "hái", "记": "jì", "記": "jì",
    "得": "de", "祝": "zhù", "福": "fú", "属": "shǔ", "屬": "shǔ", "狗": "gǒu",
    "订": "dìng", "訂": "dìng", "票": "piào", "港": "gǎng", "澳": "ào", "往": "wǎng",
    "香": "xiāng", "周": "zhōu", "週": "zhōu", "下": "xià", "坐": "zuò", "标": "biāo",
    "標": "biāo", "定": "dìng", "找": "zhǎo", "们": "men", "們": "men", "这": "zhè",
    "這": "zhè", "个": "gè", "個": "gè", "吗": "ma", "嗎": "ma", "密": "mì",
    "私": "sī", "连": "lián", "連": "lián", "线": "xiàn", "線": "xiàn", "转": "zhuǎn",
    "轉": "zhuǎn", "账": "zhàng", "賬": "zhàng", "储": "chǔ", "儲": "chǔ", "传": "chuán",
    "傳": "chuán", "讯": "xùn", "訊": "xùn", "息": "xī", "留": "liú", "言": "yán",
    "月": "yuè", "二": "èr", "三": "sān", "四": "sì", "五": "wǔ", "六": "liù",
    "七": "qī", "八": "bā", "九": "jiǔ", "十": "shí", "零": "líng", "〇": "líng",
    "作": "zuò", "业": "yè", "業": "yè", "就": "jiù", "大": "dà", "神": "shén",
}  # fmt: skip
PINYIN_TABLE.pop("證件")


def pinyin_annotate(s: str, rng: random.Random, p: float = 0.85) -> str:
    """Follow characters that have a reading in PINYIN_TABLE by ``(pīnyīn)``."""
    out = []
    for c in s:
        out.append(c)
        py = PINYIN_TABLE.get(c)
        if py and rng.random() < p:
            out.append(f"({py})")
    return "".join(out)


# --------------------------------------------------------------------------- value builders


class _Value(NamedTuple):
    rendered: str  # as it appears in the text
    normalised: str | None  # value per the Finding contract, None where not defined


def _digit_value(digits: str, evasion: str, rng: random.Random, groups: tuple[int, ...]) -> str:
    return render_digits(digits, evasion, rng, groups) if evasion in VALUE_EVASIONS else digits


def _phone(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    m = make_mobile(rng)
    rendered = _digit_value(m, evasion, rng, (3, 4, 4))
    if lang == "en" and evasion in (FULLWIDTH, SEPARATORS, SPACES, EMOJI) and rng.random() < 0.5:
        prefix = "+86 " if evasion != FULLWIDTH else fullwidth("+86 ")
        rendered = prefix + rendered
    return _Value(rendered, "+86" + m)


def _id_number(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    n = make_id_number(rng)
    rendered = _digit_value(n, evasion, rng, (6, 8, 4))
    if evasion == FULLWIDTH and n.endswith("X") and rng.random() < 0.5:
        rendered = rendered[:-1] + "ｘ"
    return _Value(rendered, n)


def _bank_card(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    n = make_bank_card(rng)
    return _Value(_digit_value(n, evasion, rng, (4, 4, 4, 4)), n)


def _qq(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    n = make_qq(rng)
    return _Value(_digit_value(n, evasion, rng, (3, 3, 3)), n)


def _wechat(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    w = make_wechat(rng)
    if evasion == FULLWIDTH:
        return _Value(fullwidth(w), w)
    if evasion == ZERO_WIDTH:
        return _Value(zero_width(w, rng), w)
    return _Value(w, w)


def _email(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    e = make_email(rng)
    if evasion == FULLWIDTH:
        return _Value(fullwidth(e), e.lower())
    if evasion == ZERO_WIDTH:
        return _Value(zero_width(e, rng), e.lower())
    return _Value(e, e.lower())


def _ip(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    ip = make_ip(rng)
    if evasion == FULLWIDTH:
        return _Value(fullwidth(ip), ip)
    if evasion == ZERO_WIDTH:
        return _Value(zero_width(ip, rng), ip)
    return _Value(ip, ip)


def _plate(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    plate, trad_province, rest = make_plate(rng)
    # Traditional text writes the province character traditional too (粵, 滬, 遼 ...).
    shown = (trad_province if trad and rng.random() < 0.7 else plate[0]) + rest
    if evasion == FULLWIDTH:
        return _Value(shown[0] + fullwidth(rest), plate)
    if evasion == ZERO_WIDTH:
        return _Value(zero_width(shown, rng), plate)
    if evasion == SPACES:
        return _Value(" ".join(shown) if rng.random() < 0.5 else f"{shown[:2]} {rest[1:]}", plate)
    if rng.random() < 0.3:
        return _Value(f"{shown[:2]}·{rest[1:]}", plate)
    return _Value(shown, plate)


_CN_TENS = "十"


def cn_number(n: int) -> str:
    """Natural Chinese reading of 1..99 (十二, 二十, 九)."""
    if n < 10:
        return CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else CN_DIGITS[tens]
    return head + _CN_TENS + (CN_DIGITS[ones] if ones else "")


_FIN_MAP = str.maketrans("一二三四五六七八九十", "壹贰叁肆伍陆柒捌玖拾")


def _age(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    age = rng.randint(8, 17)
    if lang == "en":
        num = fullwidth(str(age)) if evasion == FULLWIDTH else str(age)
        if evasion == ZERO_WIDTH:
            num = f"1\u200b{age % 10}" if age >= 10 else str(age)
        return _Value(num, str(age))
    suffix = rng.choice(("歲", "歲", "週歲") if trad else ("岁", "岁", "周岁"))
    if evasion == FULLWIDTH:
        num = fullwidth(str(age))
    elif evasion == CN_NUM:
        num = cn_number(age)
    elif evasion == FIN_NUM:
        num = cn_number(age).translate(_FIN_MAP)
    elif evasion == CIRCLED:
        num = CIRCLED_NUMBERS[age - 1]
    elif evasion == ZERO_WIDTH:
        return _Value(zero_width(f"{age}{suffix}", rng), str(age))
    else:
        num = str(age) if rng.random() < 0.6 else cn_number(age)
    return _Value(num + suffix, str(age))


def _grade_class(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    cls = rng.randint(1, 9)
    if lang == "en":
        word = rng.choice(("Grade", "Year"))
        g = rng.randint(1, 9)
        text = f"{word} {g}"
        if evasion == FULLWIDTH:
            text = fullwidth(text)
        elif evasion == ZERO_WIDTH:
            text = f"{word}\u200b {g}"
        return _Value(text, None)
    kind = rng.choice(("junior", "primary", "senior"))
    if kind == "junior":
        head = "初" + rng.choice("一二三")
    elif kind == "senior":
        head = "高" + rng.choice("一二三")
    else:
        head = rng.choice("一二三四五六") + ("年級" if trad else "年级")
    if evasion == FULLWIDTH:
        num = fullwidth(str(cls))
    elif evasion == CN_NUM:
        num = CN_DIGITS[cls]
    elif evasion == CIRCLED:
        num = CIRCLED_DIGITS[cls]
    else:
        num = str(cls)
    if kind == "senior" and evasion not in (CN_NUM, CIRCLED) and rng.random() < 0.5:
        body = f"{head}({num})班" if evasion != FULLWIDTH else f"{head}（{num}）班"
    else:
        body = f"{head}{num}班"
    if evasion == ZERO_WIDTH:
        body = body[:2] + "\u200b" + body[2:]
    return _Value(body, None)


def _birthday(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    today = date.today()
    y, m, d = rng.randint(today.year - 17, today.year - 6), rng.randint(1, 12), rng.randint(1, 28)
    iso = f"{y:04d}-{m:02d}-{d:02d}"
    if lang == "en":
        text = iso
        if evasion == FULLWIDTH:
            text = fullwidth(iso)
        elif evasion == SEPARATORS:
            text = f"{y}/{m:02d}/{d:02d}"
        elif evasion == ZERO_WIDTH:
            text = zero_width(iso, rng)
        return _Value(text, iso)
    if evasion == FULLWIDTH:
        text = fullwidth(str(y)) + "年" + fullwidth(str(m)) + "月" + fullwidth(str(d)) + "日"
    elif evasion == CN_NUM:
        text = _map_digits(str(y), CN_DIGITS) + "年" + cn_number(m) + "月" + cn_number(d) + "日"
    elif evasion == SEPARATORS:
        sep = rng.choice((".", "/", "-"))
        text = f"{y}{sep}{m:02d}{sep}{d:02d}" if rng.random() < 0.6 else f"{y}{sep}{m}{sep}{d}"
    elif evasion == ZERO_WIDTH:
        text = zero_width(f"{y}年{m}月{d}日", rng)
    else:
        text = f"{y}年{m}月{d}日"
    return _Value(text, iso)


def _passport(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    p = rng.choice("EG") + "".join(rng.choice("0123456789") for _ in range(8))
    if evasion == FULLWIDTH:
        return _Value(fullwidth(p), p)
    if evasion == ZERO_WIDTH:
        return _Value(zero_width(p, rng), p)
    return _Value(p, p)


def _travel_permit(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    p = "C" + "".join(rng.choice("0123456789") for _ in range(8))
    return _Value(fullwidth(p) if evasion == FULLWIDTH else p, p)


def _gps(evasion: str, rng: random.Random, lang: str, trad: bool) -> _Value:
    g = make_gps(rng)
    if evasion == FULLWIDTH:
        return _Value(fullwidth(g), None)
    if evasion == ZERO_WIDTH:
        return _Value(zero_width(g, rng), None)
    return _Value(g, None)


BUILDERS: dict[str, Callable[[str, random.Random, str, bool], _Value]] = {
    "phone": _phone,
    "id_number": _id_number,
    "bank_card": _bank_card,
    "qq": _qq,
    "wechat": _wechat,
    "email": _email,
    "ip_address": _ip,
    "licence_plate": _plate,
    "age": _age,
    "grade_class": _grade_class,
    "birthday": _birthday,
    "passport": _passport,
    "travel_permit": _travel_permit,
    "gps": _gps,
}

# Evasions for which an English template makes sense (value-level ones, and the WeChat/QQ alias).
_EN_OK = frozenset({FULLWIDTH, SEPARATORS, SPACES, EMOJI, ZERO_WIDTH, APP_ALIAS})


def _app_name(category: str, evasions: set[str], rng: random.Random) -> str:
    trad = TRADITIONAL in evasions
    alias = APP_ALIAS in evasions
    if category == "qq":
        if alias:
            return rng.choice(QQ_ALIASES_TRAD if trad else QQ_ALIASES)
        return rng.choice(("QQ", "QQ號") if trad else QQ_PLAIN)
    if alias:
        return rng.choice(WX_ALIASES_TRAD if trad else WX_ALIASES)
    return rng.choice(("微信", "微信號") if trad else WX_PLAIN)


def _make_case(category: str, primary: str, rng: random.Random) -> Case:
    evasions = {primary}
    # A second, context-level evasion on about a third of the cases.
    r = rng.random()
    if category in ("qq", "wechat") and primary != APP_ALIAS and r < 0.4:
        evasions.add(APP_ALIAS)
    elif primary in VALUE_EVASIONS and TRADITIONAL in APPLICABLE[category] and r < 0.2:
        evasions.add(TRADITIONAL)
    elif primary == TRADITIONAL and PINYIN in APPLICABLE[category] and r < 0.3:
        evasions.add(PINYIN)
    if primary == PINYIN and rng.random() < 0.5 and TRADITIONAL in APPLICABLE[category]:
        evasions.add(TRADITIONAL)

    templates = TEMPLATES[category]
    if TRADITIONAL in evasions:
        lang_key = "zht"
    elif (
        "en" in templates
        and evasions <= _EN_OK
        and not (category == "qq" and APP_ALIAS in evasions)
        and rng.random() < 0.25
    ):
        lang_key = "en"
    else:
        lang_key = "zh"
    lang = "en" if lang_key == "en" else "zh"
    template = rng.choice(templates[lang_key])

    # Value-level evasion: the primary one if it is value-level, else none ("plain" value).
    value_evasion = primary if primary in VALUE_EVASIONS else ""
    value = BUILDERS[category](value_evasion, rng, lang, TRADITIONAL in evasions)
    rendered = value.rendered

    app = _app_name(category, evasions, rng) if "{app}" in template else ""
    head, _, tail = template.partition("{v}")
    head = head.replace("{app}", app)
    tail = tail.replace("{app}", app)
    if PINYIN in evasions:
        head = pinyin_annotate(head, rng)
        tail = pinyin_annotate(tail, rng)
        if category in ("age", "grade_class", "birthday"):  # Han in the value: 年(nián)級(jí)
            rendered = pinyin_annotate(rendered, rng, p=1.0)
    text = head + rendered + tail
    start, end = len(head), len(head) + len(rendered)
    expect = Expect(category, start, end, value.normalised)
    order = [e for e in EVASIONS if e in evasions]
    return Case(text, [expect], order, lang, {"template": template})


def generate(n: int = 240, seed: int = 20261128) -> list[Case]:
    """n evasive cases; every (category, applicable evasion) pair appears before any repeats."""
    rng = random.Random(seed)
    combos = [(cat, ev) for cat, evs in APPLICABLE.items() for ev in evs]
    cases: list[Case] = []
    order: list[tuple[str, str]] = []
    while len(order) < n:
        block = combos[:]
        rng.shuffle(block)
        order.extend(block)
    for category, evasion in order[:n]:
        cases.append(_make_case(category, evasion, rng))
    return cases


# --------------------------------------------------------------------------- clean sentences


def _digits(rng: random.Random, k: int, first: str = "123456789") -> str:
    return rng.choice(first) + "".join(rng.choice("0123456789") for _ in range(k - 1))


def _non_luhn(rng: random.Random, k: int, first: str = "2") -> str:
    """k digits starting with `first` that fail Luhn (a code that is not a card number)."""
    while True:
        s = first + "".join(rng.choice("0123456789") for _ in range(k - 1))
        if not luhn_valid(s):
            return s


def _isbn(rng: random.Random) -> str:
    while True:
        body = "9787" + "".join(rng.choice("0123456789") for _ in range(8))
        check = (10 - sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body)) % 10) % 10
        isbn = body + str(check)
        if not luhn_valid(isbn):
            return f"{isbn[:3]}-{isbn[3]}-{isbn[4:7]}-{isbn[7:12]}-{isbn[12]}"


_CLEAN_FIXED = (
    "一二三四五，上山打老虎，老虎没打着，打到小松鼠",
    "他把事情一五一十地告诉了老师",
    "心里七上八下的，不知道结果怎么样",
    "①打开设置 ②点击账号 ③选择退出登录",
    "金额：壹佰叁拾捌元整",
    "电话会议推迟到下周三",
    "微信支付和支付宝都可以用",
    "生日快乐！祝你天天开心",
    "身份证办理大概需要二十个工作日",
    "这道菜的食材都是Grade A的",
    "Grade A eggs are on sale this week",
    "三五成群的游客在广场上拍照",
    "长江全长约六千三百公里",
    "请把手机调成静音模式",
    "我们明天上午九点半集合",
    "In the year 2024 the company doubled its revenue",
    "Chapter twelve ends with a storm",
    "银行卡年费怎么减免？",
    "QQ音乐新上了几首歌",
    "十二生肖里我最喜欢龙",
)

_CLEAN_TEMPLATES: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"这款手机售价{r.randint(999, 6999)}元，比去年便宜了{r.randint(5, 30)}%",
    lambda r: f"商品价格¥{r.randint(10, 999)}，满{r.randint(100, 300)}减{r.randint(10, 50)}",
    lambda r: f"公司成立于{r.randint(1990, 2020)}年，目前有{r.randint(20, 900)}名员工",
    lambda r: f"{r.randint(1998, 2023)}年的冬天特别冷",
    lambda r: f"本次活动共收到{r.randint(10000, 99999)}份订单",
    lambda r: f"室内温度{r.randint(16, 30)}度，湿度{r.randint(30, 80)}%",
    lambda r: f"室温{r.randint(18, 28)}.{r.randint(0, 9)}℃，空调已关闭",
    lambda r: f"比赛最终比分{r.randint(0, 5)}:{r.randint(0, 5)}，主队获胜",
    lambda r: f"上半场{r.randint(0, 3)}比{r.randint(0, 3)}，下半场再战",
    lambda r: f"The score was {r.randint(0, 40)}-{r.randint(0, 40)} at half time",
    lambda r: f"第{r.randint(1, 99)}章 重逢",
    lambda r: f"Chapter {r.randint(1, 40)}: The Return",
    lambda r: f"产品型号 XK-{_digits(r, 4)}-{_digits(r, 3)} 已停产",
    lambda r: f"产品编码{_digits(r, 11, '2')}，请核对后下单",
    lambda r: f"订单号：{_non_luhn(r, 16)}，预计三天内发货",
    lambda r: f"快递单号SF{_non_luhn(r, 13, '1')}已签收",
    lambda r: f"会议定于{r.randint(1, 12)}月{r.randint(1, 28)}日下午{r.randint(1, 5)}点召开",
    lambda r: f"{r.randint(2015, 2024)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} 系统升级公告",
    lambda r: f"上证指数收于{r.randint(2800, 3600)}.{r.randint(10, 99)}点",
    lambda r: f"全程{r.randint(5, 42)}.{r.randint(0, 9)}公里，用时{r.randint(1, 5)}小时",
    lambda r: f"本书共{r.randint(120, 680)}页，定价{r.randint(20, 89)}.80元",
    lambda r: f"这次考试平均分{r.randint(60, 95)}.{r.randint(0, 9)}分",
    lambda r: f"订单数量：{r.randint(100, 9999)}件，批次号B{_digits(r, 6)}",
    lambda r: (
        f"The meeting is at {r.randint(9, 17)}:{r.randint(10, 59)} in room {r.randint(100, 999)}"
    ),
    lambda r: f"We sold {r.randint(1000, 9999)} units in {r.randint(2010, 2023)}",
    lambda r: f"Version {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)} was released today",
    lambda r: f"版本{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}修复了若干问题",
    lambda r: f"Temperature today: {r.randint(-5, 35)}°C",
    lambda r: f"车间里有{r.randint(10, 99)}台机器，每天运转{r.randint(8, 20)}小时",
    lambda r: f"这个房间{r.randint(10, 60)}平方米，朝南",
    lambda r: f"高速限速{r.choice((100, 110, 120))}公里每小时",
    lambda r: f"CPU主频{r.randint(2, 4)}.{r.randint(0, 9)}GHz，内存{r.choice((8, 16, 32))}GB",
    lambda r: f"请在{r.randint(5, 30)}分钟内完成支付",
    lambda r: f"第{r.randint(5, 15)}届运动会于{r.randint(2001, 2023)}年举办",
    lambda r: f"这栋楼有{r.randint(6, 60)}层，电梯有{r.randint(2, 8)}部",
    lambda r: f"ISBN {_isbn(r)}",
    lambda r: f"人口约{r.randint(100, 3000)}万，面积{r.randint(1000, 16000)}平方公里",
    lambda r: f"打{r.randint(5, 9)}折之后只要{r.randint(50, 500)}块",
    lambda r: f"iPhone {r.randint(11, 16)} Pro Max 降价了",
    lambda r: f"Grade A, served in {r.randint(2, 12)} minutes",
    lambda r: f"买了{r.randint(2, 9)}斤苹果，花了{r.randint(10, 60)}块{r.randint(1, 9)}毛",
    lambda r: f"{r.randint(2000, 2022)}年至{r.randint(2023, 2025)}年的销售数据",
    lambda r: f"生日蛋糕花了{r.randint(98, 499)}元，味道一般",
    lambda r: f"累计播放{r.randint(1000000, 99999999)}次",
    lambda r: f"库存编号{_digits(r, 9, '7')}的货物已入库",
    lambda r: f"第{r.randint(1, 12)}期 节目预告",
    lambda r: f"距离终点还有{r.randint(100, 999)}米",
    lambda r: f"股价上涨{r.randint(1, 9)}.{r.randint(10, 99)}%，成交额{r.randint(10, 99)}亿",
    lambda r: f"在线人数{r.randint(10000, 99999)}，点赞{r.randint(100000, 999999)}",
)

_CLUENER_BAD = re.compile(
    r"\d{4,}|[岁歲級级班路街号區区市省县縣村镇鎮楼樓室后称說说]|生日|出生|微信|QQ|qq|电话|手机|邮箱|@|"
    r"学校|小学|中学|大学|学院|香港|北京|上海|中国|美国|日本|台湾|广州|深圳|韩国|英国|法国|欧洲|"
    # people: honorifics and roles, "某某：" at the start, capitalised English words (names)
    r"先生|女士|小姐|老师|导演|主演|作者|记者|总监|经理|教授|主席|总裁|董事|表示|透露|指出|"
    r"^[\u4e00-\u9fff]{2,4}[：:]|[A-Z][a-z]{2,}|"
    # found by reading the sentences that pass the rules above: unlabelled people and places
    r"成钢|叶问|黄设计师|吕正操|卡斯特罗|安徒生|平儿|stephon|匡匡|盖蒂|飞哥|孙子|哈利波特|堂吉诃德|"
    r"但丁|威廉希尔|澳大利亚|立陶宛|长春|日内瓦|好莱坞|北美|内地|大泽乡|河北|南京"
)


def _cluener_clean() -> list[str]:
    if not CLUENER_DEV.exists():
        return []
    out = []
    with CLUENER_DEV.open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            labels = set(d.get("label", {}))
            text = d["text"]
            allowed = labels <= {"game", "movie", "book", "company", "position"}
            if allowed and not _CLUENER_BAD.search(text):
                out.append(text)
    return out


def clean(n: int = 240, seed: int = 20261128) -> list[str]:
    """n sentences without personal information, deliberately tricky (see module docstring)."""
    rng = random.Random(seed ^ 0x5EED)
    sample = _cluener_clean()
    n_cluener = min(len(sample), n // 4)
    out = list(_CLEAN_FIXED[: min(len(_CLEAN_FIXED), n - n_cluener)])
    out.extend(rng.sample(sample, n_cluener))
    while len(out) < n:
        out.append(rng.choice(_CLEAN_TEMPLATES)(rng))
    rng.shuffle(out)
    return out[:n]


if __name__ == "__main__":  # pragma: no cover - a look at the data
    for c in generate(40):
        print(c.evasions, c.expected[0].category, repr(c.text), repr(c.span_text(c.expected[0])))
    for s in clean(20):
        print("CLEAN", repr(s))
