"""Built-in recognisers: positives and near-misses per category, Chinese and English; registry."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pytest
from detect_testing import luhn_complete, make_id

from qinglang.detect import (
    CATEGORIES,
    MODEL_CATEGORIES,
    STRUCTURED_CATEGORIES,
    Finding,
    MinorSignal,
    Normalised,
    Recognizer,
    Registry,
    default_minor_age,
    default_registry,
    scan,
)
from qinglang.detect.recognisers import builtin_recognisers, luhn_ok

NOW = date(2026, 6, 1)


def found(text: str, category: str | None = None, **kw: object) -> list[tuple[str, str, str]]:
    """(category, original text of the span, value) of each finding, optionally one category."""
    kw.setdefault("now", NOW)
    cats = None if category is None else [category]
    return [(f.category, text[f.start : f.end], f.value) for f in scan(text, categories=cats, **kw)]  # type: ignore[arg-type]


def one(text: str, category: str, **kw: object) -> Finding:
    """The single finding of `category` in `text`."""
    kw.setdefault("now", NOW)
    fs = [f for f in scan(text, **kw) if f.category == category]  # type: ignore[arg-type]
    assert len(fs) == 1, (text, fs)
    return fs[0]


def none_of(category: str, texts: Iterable[str]) -> None:
    for t in texts:
        assert found(t, category) == [], t


# ----------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("text", "span", "value"),
    [
        ("我的电话13812345678", "13812345678", "+8613812345678"),
        ("手机：+86 138 1234 5678", "+86 138 1234 5678", "+8613812345678"),
        ("8613812345678", "8613812345678", "+8613812345678"),
        ("电话010-12345678", "010-12345678", "+861012345678"),
        ("座机（0755）12345678", "（0755）12345678", "+8675512345678"),
        ("call me at +1 415 555 2671", "+1 415 555 2671", "+14155552671"),
        ("phone: (415) 555-2671", "(415) 555-2671", "+14155552671"),
        ("tel +44 20 7946 0958", "+44 20 7946 0958", "+442079460958"),
        ("my number is 020 7946 0958", "020 7946 0958", "+442079460958"),
        ("text me at 13812345678 after school", "13812345678", "+8613812345678"),
    ],
)
def test_phone_positives(text: str, span: str, value: str) -> None:
    assert found(text, "phone") == [("phone", span, value)]


def test_phone_context_raises_confidence() -> None:
    assert one("电话13812345678", "phone").confidence > one("看13812345678", "phone").confidence
    assert "CN mobile" in one("电话13812345678", "phone").explanation


def test_phone_near_misses() -> None:
    none_of(
        "phone",
        [
            "订单号13812345678",  # an order number: negative context, no phone context
            "运单号：13812345678",
            "编号12345678901",  # wrong prefix
            "1381234567",  # 10 digits
            "138123456789",  # 12 digits
            "10012345678",
            "产品编码21234567890，请核对后下单",
            "US 4155552671 sold",  # a bare national number in English: no context
        ],
    )


# ----------------------------------------------------------------------------- identity numbers


def test_identity_number_of_a_child_gives_a_minor_signal() -> None:
    number = make_id(date(2016, 3, 5))
    f = one(f"身份证{number}", "id_number")
    assert f.value == number and f.confidence >= 0.95
    assert f.minor_signal == MinorSignal(10, f.minor_signal.reason if f.minor_signal else "")
    assert f.minor_signal is not None and "2016-03-05" in f.minor_signal.reason


def test_identity_number_of_an_adult_has_no_minor_signal() -> None:
    f = one(f"{make_id(date(1990, 1, 1))}", "id_number")
    assert f.minor_signal is None


def test_identity_number_age_follows_the_reference_date() -> None:
    number = make_id(date(2008, 6, 2))
    assert one(number, "id_number", now=date(2026, 6, 1)).minor_signal is not None
    assert one(number, "id_number", now=date(2026, 6, 2)).minor_signal is None


def test_identity_number_value_is_upper_case_18() -> None:
    number = make_id(date(1949, 12, 31), seq="002")
    assert number.endswith("X")
    assert found(number.lower(), "id_number") == [("id_number", number.lower(), number)]
    assert found("110105491231002", "id_number") == [
        ("id_number", "110105491231002", "11010519491231002X")
    ]


def test_identity_number_near_misses() -> None:
    good = make_id(date(2015, 7, 1))
    bad_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    future = make_id(date(2026, 7, 1))
    none_of("id_number", [bad_check, "990105201507010011", future, good[:-1]])


def test_identity_number_is_not_also_a_phone_or_card() -> None:
    for year in range(2005, 2015):
        number = make_id(date(year, 5, 5))
        fs = scan(f"号码{number}", now=NOW)
        assert [f.category for f in fs] == ["id_number"], fs


# ----------------------------------------------------------------------------- bank cards


def test_bank_card_luhn() -> None:
    card = luhn_complete("622202123456789012")
    assert len(card) == 19
    assert found(f"银行卡号：{card}", "bank_card") == [("bank_card", card, card)]
    spaced = " ".join(card[i : i + 4] for i in range(0, 19, 4))
    assert found(f"卡号 {spaced}", "bank_card") == [("bank_card", spaced, card)]
    visa = luhn_complete("411111111111111")
    assert found(f"card {visa}", "bank_card") == [("bank_card", visa, visa)]


def test_bank_card_near_misses() -> None:
    card = luhn_complete("622202123456789")
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert not luhn_ok(wrong)
    none_of(
        "bank_card",
        [
            f"银行卡号{wrong}",
            f"订单号{luhn_complete('912345678901234')}",  # Luhn ok, no card issuer starts with 9
            "订单号：2123456789012345",
        ],
    )


# ----------------------------------------------------------------------------- documents


def test_passports() -> None:
    assert found("护照号码E12345678", "passport") == [("passport", "E12345678", "E12345678")]
    assert found("passport no. g12345678", "passport") == [("passport", "g12345678", "G12345678")]
    assert found("护照：123456789", "passport") == [("passport", "123456789", "123456789")]
    assert one("E12345678", "passport").confidence < one("护照E12345678", "passport").confidence
    none_of("passport", ["E1234567", "XE12345678", "批次号B123456", "123456789"])


def test_travel_permits() -> None:
    assert found("港澳通行证C12345678", "travel_permit")[0][2] == "C12345678"
    assert found("往来港澳通行证号码是CA1234567", "travel_permit")[0][2] == "CA1234567"
    assert found("回乡证H1234567801", "travel_permit")[0][2] == "H1234567801"
    assert found("台胞证12345678", "travel_permit")[0][2] == "12345678"
    assert found("Home Return Permit: M12345678", "travel_permit")[0][2] == "M12345678"
    none_of("travel_permit", ["12345678", "SF1234567890123", "C1234567"])


def test_licence_plates() -> None:
    assert found("车牌京A12345", "licence_plate") == [("licence_plate", "京A12345", "京A12345")]
    assert found("粤B·12345", "licence_plate")[0][2] == "粤B12345"
    assert found("粤 B 12345", "licence_plate")[0][2] == "粤B12345"
    assert found("沪AD12345", "licence_plate")[0][2] == "沪AD12345"  # new energy, small
    assert found("苏E12345F", "licence_plate")[0][2] == "苏E12345F"  # new energy, large
    assert found("粵b1a2c3", "licence_plate")[0][2] == "粤B1A2C3"
    none_of("licence_plate", ["京A1234", "京AABCDE", "苏E12345678", "新A123456", "京I12345"])


# ----------------------------------------------------------------------------- contact


def test_email() -> None:
    assert found("邮箱Sunny_Day12@Gmail.com，") == [
        ("email", "Sunny_Day12@Gmail.com", "sunny_day12@gmail.com")
    ]
    assert found("xiao.ming [at] 163.com", "email")[0][2] == "xiao.ming@163.com"
    assert found("ａｂｃ＠ｑｑ．ｃｏｍ", "email")[0][2] == "abc@qq.com"
    none_of("email", ["@someone hi", "a@b", "邮箱：无", "user@localhost"])


@pytest.mark.parametrize(
    "text",
    [
        "QQ：12345678",
        "qq 12345678",
        "QQ号是12345678",
        "QQ群 12345678",
        "加我扣扣12345678",
        "企鹅号：12345678",
        "扣扣：一二三四五六七八",
        "QQ 123 456 78",
        "add my QQ 12345678 pls",
        "my qq is 12345678",
    ],
)
def test_qq_after_context(text: str) -> None:
    assert [(c, v) for c, _, v in found(text, "qq")] == [("qq", "12345678")]


def test_qq_near_misses() -> None:
    none_of("qq", ["QQ音乐新上了几首歌", "12345678", "QQ 0123456", "QQ 1234", "QQ的用户有8亿"])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("加我微信：lily_2012", "lily_2012"),
        ("我的微信号是Kiki-123456", "Kiki-123456"),
        ("薇信 momo2010", "momo2010"),
        ("vx：dabao88", "dabao88"),
        ("V信 abc_12", "abc_12"),
        ("WeChat: sunny_2011", "sunny_2011"),
        ("add me on wechat tt_12345", "tt_12345"),
        ("微信：lilyzhang", "lilyzhang"),  # letters only, after an explicit ':'
        ("微信 987654321", "987654321"),  # a QQ-number login
        ("wxid_abcdef123456", "wxid_abcdef123456"),
    ],
)
def test_wechat_ids(text: str, value: str) -> None:
    assert [v for _, _, v in found(text, "wechat")] == [value]


def test_wechat_near_misses() -> None:
    none_of("wechat", ["微信支付和支付宝都可以用", "add me on wechat now", "wechat is fun", "微信"])
    assert [c for c, _, _ in found("微信13812345678")] == ["phone"]


def test_wechat_span_on_evasive_input() -> None:
    text = "加我薇信：ｗｘ１２３"
    assert found(text, "wechat") == [("wechat", "ｗｘ１２３", "wx123")]


# ----------------------------------------------------------------------------- network, location


def test_ip_addresses() -> None:
    assert found("IP 192.168.1.1", "ip_address") == [("ip_address", "192.168.1.1", "192.168.1.1")]
    assert found("fe80::1 和 2001:db8::8a2e:370:7334")[1][2] == "2001:db8::8a2e:370:7334"
    none_of(
        "ip_address",
        ["256.1.1.1", "192.168.1.256", "v1.2.3.4", "版本1.2.3", "12:30:45", "0.1.2.3", "1.2.3.4.5"],
    )


def test_gps() -> None:
    assert found("我家坐标39.9042, 116.4074", "gps") == [
        ("gps", "39.9042, 116.4074", "39.9042,116.4074")
    ]
    assert found("116.4074,39.9042", "gps")[0][2] == "39.9042,116.4074"
    assert found("N39.9042 E116.4074", "gps")[0][2] == "39.9042,116.4074"
    assert found("33.8688°S, 151.2093°E", "gps")[0][2] == "-33.8688,151.2093"
    assert (
        one("定位：39.9042,116.4074", "gps").confidence > one("39.9042,116.4074", "gps").confidence
    )
    none_of("gps", ["95.1234, 200.1234", "3.14", "上证指数收于3200.55点", "0.000, 0.000"])


def test_addresses_rule_based_parts() -> None:
    assert found("住在阳光小区3栋2单元501", "address") == [
        ("address", "阳光小区3栋2单元501", "阳光小区3栋2单元501")
    ]
    assert found("5号楼3单元201室", "address")[0][2] == "5号楼3单元201室"
    assert found("家在中山路12号", "address")[0][2] == "中山路12号"
    assert found("I live at 221 Baker Street, Apt 2B", "address")[0][2] == (
        "221 Baker Street, Apt 2B"
    )
    assert one("3栋2单元501", "address").confidence <= 0.6
    none_of("address", ["这栋楼有20层", "3栋", "一路上", "路1"])


# ----------------------------------------------------------------------------- minors


@pytest.mark.parametrize(
    ("text", "span", "age"),
    [
        ("我今年12岁", "12岁", 12),
        ("本人12周岁，求组队", "12周岁", 12),
        ("我今年十二岁了", "十二岁", 12),
        ("我才拾贰岁", "拾贰岁", 12),
        ("我⑫岁", "⑫岁", 12),
        ("我今年１２歲", "１２歲", 12),
        ("I'm 13 and bored", "13", 13),
        ("i am 12 years old lol", "12 years old", 12),
        ("a 13-year-old", "13-year-old", 13),
        ("13yo", "13yo", 13),
        ("aged 12", "aged 12", 12),
        ("I'm thirteen.", "thirteen", 13),
    ],
)
def test_age_statements_of_minors(text: str, span: str, age: int) -> None:
    f = one(text, "age")
    assert text[f.start : f.end] == span
    assert f.value == str(age)
    assert f.minor_signal is not None and f.minor_signal.age == age


def test_age_statements_of_adults_and_rules() -> None:
    assert one("我今年25岁", "age").minor_signal is None
    assert one("I'm 25.", "age").minor_signal is None
    assert one("我还不满18岁", "age").value == "<18"
    assert one("我还没成年", "age").minor_signal is not None
    none_of(
        "age",
        [
            "适合3-5岁儿童",
            "12岁以下禁止",
            "不满18岁不能申请",
            "2015年",
            "毛主席万岁",
            "十年岁月",
            "I'm 5 minutes away",
            "I'm at 39.1234, 116.5678",
            "在2015年",
            "然后他走了",
            "未成年人保护法",
        ],
    )


def test_age_confidence_depends_on_the_subject() -> None:
    assert one("我今年12岁", "age").confidence > one("12岁的女孩", "age").confidence


def test_generations() -> None:
    f = one("我是10后", "age")
    assert f.value == "10后" and f.minor_signal is not None and f.minor_signal.age is None
    assert one("00后", "age").minor_signal is None  # born 2000–2009: mostly adults in 2026
    assert one("15后", "age").minor_signal is not None
    none_of("age", ["10后面", "3后", "2010后", "13后"])


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("我在初二3班", "初二3班"),
        ("五年级2班的同学", "五年级2班"),
        ("高一(3)班", "高一(3)班"),
        ("高一（３）班", "高一(3)班"),
        ("我在初三", "初三"),
        ("初二的学生", "初二"),
        ("小学五年级", "小学五年级"),
        ("我是初中生", "初中生"),
        ("幼儿园大班", "幼儿园大班"),
        ("我们五年級3班", "五年级3班"),
        ("初(chū)二(èr)9班(bān)", "初二9班"),
        ("I'm in Grade 5", "Grade 5"),
        ("I'm in Year 8 at school", "Year 8"),
        ("7th grade", "7th grade"),
        ("kindergarten", "kindergarten"),
        ("a high school freshman", "high school freshman"),
    ],
)
def test_grades_and_classes(text: str, label: str) -> None:
    f = one(text, "grade_class")
    assert f.value == label
    assert f.minor_signal is not None


def test_grade_near_misses() -> None:
    none_of(
        "grade_class",
        [
            "正月初一",
            "大年初二",
            "高一点",
            "比他高一头",
            "大学一年级",
            "初一十五",
            "Grade A eggs",
            "In the year 2024",
            "3班",
        ],
    )


def test_grade_gives_a_typical_age() -> None:
    signal = one("初二3班", "grade_class").minor_signal
    assert signal is not None and "13" in signal.reason


@pytest.mark.parametrize(
    ("text", "value", "minor"),
    [
        ("我的生日是2012年3月5日", "2012-03-05", True),
        ("生日：2012-03-05", "2012-03-05", True),
        ("出生日期：20120305", "2012-03-05", True),
        ("二〇一二年三月五日出生的", "2012-03-05", True),
        ("2012.03.05出生", "2012-03-05", True),
        ("我是2012年的", "2012", True),
        ("1990年出生", "1990", False),
        ("生日是5月3日", "--05-03", False),
        ("my birthday is 2012-03-05", "2012-03-05", True),
        ("born on May 3, 2012", "2012-05-03", True),
        ("DOB: 03/05/2012", "2012-03-05", True),
        ("born in 2012", "2012", True),
    ],
)
def test_birthdays(text: str, value: str, minor: bool) -> None:
    f = one(text, "birthday")
    assert f.value == value
    assert (f.minor_signal is not None) == minor


def test_birthday_near_misses() -> None:
    none_of(
        "birthday",
        [
            "生日快乐！",
            "会议定于3月5日召开",
            "2015年我们去了北京",
            "2019-03-05 系统升级公告",
            "生日是2030年1月1日",
            "生日蛋糕花了198元",
        ],
    )


def test_schools() -> None:
    assert found("我在北京市朝阳区实验小学上学", "school") == [
        ("school", "北京市朝阳区实验小学", "北京市朝阳区实验小学")
    ]
    assert found("北京四中的学生", "school")[0][2] == "北京四中"
    assert found("人大附中", "school")[0][2] == "人大附中"
    assert found("Springfield Elementary School", "school")[0][2] == (
        "Springfield Elementary School"
    )
    assert one("人大附中", "school").confidence <= 0.6
    none_of("school", ["我们学校", "北京邮电大学校长", "中小学", "读初中", "魔兽争霸3中"])


# ----------------------------------------------------------------------------- registry


def test_categories_are_documented_names() -> None:
    assert set(STRUCTURED_CATEGORIES) | set(MODEL_CATEGORIES) == set(CATEGORIES)
    assert len(CATEGORIES) == len(set(CATEGORIES)) == 17
    reg = default_registry()
    assert set(STRUCTURED_CATEGORIES) <= reg.categories <= set(CATEGORIES)


def test_default_registry_is_built_from_the_policy_pack() -> None:
    assert default_minor_age() == 18
    reg = default_registry(minor_below=14)
    assert one("我今年15岁", "age", registry=reg).minor_signal is None
    assert one("我今年13岁", "age", registry=reg).minor_signal is not None


def test_builtin_recognisers_follow_the_protocol() -> None:
    recs = builtin_recognisers(minor_below=18)
    assert len({r.name for r in recs}) == len(recs)
    for r in recs:
        assert isinstance(r, Recognizer)
        assert r.categories <= set(CATEGORIES)
        assert r.__doc__ and type(r).find.__doc__


class FakeNames:
    """A stand-in for the statistical model: reports 张三 as a person name."""

    name = "fake_names"
    categories = frozenset({"person_name"})
    languages = frozenset({"zh"})

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        i = norm.text.find("张三")
        if i < 0:
            return []
        s, e = norm.to_original(i, i + 2)
        return [Finding(s, e, "person_name", "张三", 0.9, None, self.name, "test")]


def test_a_model_plugs_in_through_the_protocol() -> None:
    reg = default_registry()
    reg.add(FakeNames())
    text = "我叫张三，电话13812345678"
    assert [f.category for f in scan(text, registry=reg)] == ["person_name", "phone"]
    assert scan(text, registry=reg, categories=["person_name"])[0].recognizer == "fake_names"
    assert scan("I am 张三", registry=reg, lang="en") == []  # the model says zh only
    assert "fake_names" in reg and reg.remove("fake_names").name == "fake_names"
    assert [f.category for f in scan(text, registry=reg)] == ["phone"]


def test_registry_rejects_duplicates_and_non_recognisers() -> None:
    reg = Registry()
    reg.add(FakeNames())
    with pytest.raises(ValueError):
        reg.add(FakeNames())
    reg.add(FakeNames(), replace=True)
    assert len(reg) == 1 and reg.get("fake_names").name == "fake_names"
    with pytest.raises(TypeError):
        reg.add(object())  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        reg.remove("nope")


def test_registry_selects_by_category_and_language() -> None:
    reg = default_registry()
    names = {r.name for r in reg.select(["phone"], frozenset({"zh"}))}
    assert names == {"numbers"}
    assert reg.select(["person_name"], frozenset({"zh"})) == ()
    plan = reg.plan(None, frozenset({"zh"}))
    assert [r.name for r in plan.applicable("没有数字的句子")] != [r.name for r in plan.recognizers]
    assert "numbers" in [r.name for r in plan.applicable("13812345678")]
