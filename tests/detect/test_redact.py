"""qinglang.detect.redact: styles, category choice, policies; no raw value survives redaction."""

from __future__ import annotations

import re
from datetime import date

import pytest
from detect_testing import make_id
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang.detect import CATEGORIES, PLACEHOLDERS, Finding, RedactionPolicy, redact, scan

NOW = date(2026, 6, 1)


def test_mask_keeps_length() -> None:
    text = "电话13812345678，我今年12岁"
    out = redact(text, now=NOW)
    assert out == "电话***********，我今年***"
    assert len(out) == len(text)


def test_mask_character() -> None:
    assert redact("电话13812345678", mask="#") == "电话###########"
    with pytest.raises(ValueError):
        redact("x", mask="##")


def test_placeholders_in_the_text_language() -> None:
    assert redact("电话13812345678", style="placeholder") == "电话[电话]"
    assert redact("call 13812345678", style="placeholder") == "call [PHONE]"
    policy = RedactionPolicy(style="placeholder", lang="en")
    assert redact("电话13812345678", policy=policy) == "电话[PHONE]"
    custom = RedactionPolicy(style="placeholder", placeholders={"phone": "<手机>"})
    assert redact("电话13812345678", policy=custom) == "电话<手机>"
    assert set(PLACEHOLDERS) == set(CATEGORIES)


def test_partial_keeps_the_last_digits() -> None:
    assert redact("电话13812345678", style="partial") == "电话*******5678"
    assert redact("电话138 1234 5678", style="partial") == "电话*** **** 5678"
    policy = RedactionPolicy(style="partial", keep_first=3, keep_last=4)
    assert redact("电话13812345678", policy=policy) == "电话138****5678"
    assert redact("我今年12岁", style="partial", now=NOW) == "我今年***"  # too short to show


def test_categories() -> None:
    text = "我今年12岁，电话13812345678"
    assert redact(text, categories=["phone"]) == "我今年12岁，电话***********"
    assert redact(text, categories=["age"], now=NOW) == "我今年***，电话13812345678"
    assert redact(text, categories=[]) == text


def test_given_findings_are_used() -> None:
    text = "abcdef"
    findings = [Finding(1, 3, "person_name", "bc", 0.9), Finding(2, 5, "address", "cde", 0.5)]
    assert redact(text, findings) == "a****f"
    policy = RedactionPolicy(min_confidence=0.6)
    assert redact(text, findings, policy=policy) == "a**def"
    with pytest.raises(ValueError):
        redact("ab", [Finding(1, 5, "phone", "x", 0.9)])


def test_policy_and_options_do_not_mix() -> None:
    with pytest.raises(TypeError):
        redact("x", policy=RedactionPolicy(), mask="#")
    with pytest.raises(ValueError):
        RedactionPolicy(style="blur")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RedactionPolicy(keep_last=-1)


def test_evasive_values_are_masked_where_they_were_written() -> None:
    text = "加我薇信：ｗｘ１２３，电话一三八①②③④五六七八"
    out = redact(text, style="placeholder")
    assert out == "加我薇信：[微信号]，电话[电话]"


PHONES = st.builds(
    lambda second, rest: f"1{second}{rest}",
    st.sampled_from("3589"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
)
SEPARATORS = st.sampled_from(["", " ", "-", "😀", "\u200b", "  "])
FILLER = st.text(alphabet="的了是我你在，。abc ", max_size=8)


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Text with phones (variously written) and identity numbers; the raw digit strings."""
    parts, raws = [draw(FILLER)], []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            digits = draw(PHONES)
        else:
            born = draw(st.dates(min_value=date(1950, 1, 1), max_value=date(2025, 12, 31)))
            digits = make_id(born)
        sep = draw(SEPARATORS)
        shown = sep.join([digits[:3], digits[3:7], digits[7:]]) if sep else digits
        parts += ["电话" if len(digits) == 11 else "身份证", shown, draw(FILLER)]
        raws.append(digits)
    return "".join(parts), raws


@settings(max_examples=200, deadline=None)
@given(planted(), st.sampled_from(["mask", "placeholder"]))
def test_no_raw_phone_or_id_survives(case: tuple[str, list[str]], style: str) -> None:
    text, raws = case
    found = {f.value for f in scan(text, now=NOW) if f.category in ("phone", "id_number")}
    out = redact(text, style=style, now=NOW)  # type: ignore[arg-type]
    digits_left = re.sub(r"[^0-9Xx]", "", out)
    for value in found:
        raw = value[3:] if value.startswith("+86") else value
        assert raw not in out
        assert raw not in digits_left
    for raw in raws:  # every planted number was found and masked
        assert raw not in digits_left
