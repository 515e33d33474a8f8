"""The cn pack holds every Chinese threshold of RULES.md; overlays only tighten floors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.policy import PolicyError, Rule, is_looser, load_pack, load_policy, window_minutes

CN = load_pack("cn")

# Each (rule id, value) here is a figure copied from RULES.md; the pack must carry it.
RULES_MD_FIGURES = {
    "cn.age.child": 14,
    "cn.age.minor": 18,
    "cn.mode.daily_minutes.under16": 60,
    "cn.mode.daily_minutes.16to17": 120,
    "cn.mode.daily_minutes.under8": 40,
    "cn.mode.night": ["22:00-06:00"],
    "cn.mode.break_reminder": 30,
    "cn.game.days": ["fri", "sat", "sun", "holiday"],
    "cn.game.window": ["20:00-21:00"],
    "cn.game.night": ["22:00-08:00"],
    "cn.spend.allowed.under8": False,
    "cn.spend.single.8to15": 5000,
    "cn.spend.monthly.8to15": 20000,
    "cn.spend.single.16to17": 10000,
    "cn.spend.monthly.16to17": 40000,
    "cn.live.min_age": False,
    "cn.audit.records_retention": 3,
    "cn.audit.minor_pi_interval": 12,
    "cn.audit.full_pi_interval_large": 2,
    "cn.audit.large_processor": 10_000_000,
}


@pytest.mark.parametrize(("rule_id", "value"), sorted(RULES_MD_FIGURES.items()))
def test_pack_carries_rules_md_figure(rule_id: str, value: object) -> None:
    assert CN.rules[rule_id].value == value


def test_every_rule_has_citation_and_both_messages() -> None:
    for r in CN.rules.values():
        assert r.citation.instrument and r.citation.article, r.id
        assert r.message_zh and r.message_en, r.id
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r.message_zh), r.id


def test_unverified_items_are_not_legal_floors() -> None:
    # RULES.md marks the minor-mode guide figures as secondary sources.
    for rid in (
        "cn.mode.daily_minutes.under8",
        "cn.mode.night",
        "cn.mode.break_reminder",
        "cn.audit.minor_pi_filing",
        "cn.audit.full_pi_interval_large",
    ):
        assert CN.rules[rid].citation.verified is False
        assert CN.rules[rid].binding is False
        assert "[unverified]" in CN.rules[rid].citation.short()


def test_age_lookup_picks_most_specific_band() -> None:
    assert CN.require("playtime.daily_minutes", 7).id == "cn.mode.daily_minutes.under8"
    assert CN.require("playtime.daily_minutes", 8).id == "cn.mode.daily_minutes.under16"
    assert CN.require("playtime.daily_minutes", 15).id == "cn.mode.daily_minutes.under16"
    assert CN.require("playtime.daily_minutes", 16).id == "cn.mode.daily_minutes.16to17"
    assert CN.rule("playtime.daily_minutes", 18) is None
    assert CN.rule("playtime.daily_minutes", None) is None
    assert CN.require("spending.single_cap_fen", 15).value == 5000
    assert CN.require("spending.single_cap_fen", 16).value == 10000


def _overlay(*lines: str) -> str:
    head = '[pack]\nid = "acme"\nversion = "1"\njurisdiction = "CN"\ntimezone = "Asia/Shanghai"\n'
    head += 'title_zh = "甲"\ntitle_en = "Acme"\nbase = "cn"\n'
    return head + "\n".join(lines)


def test_overlay_tightens() -> None:
    p = load_policy("cn", _overlay('[[overrides]]\nid = "cn.spend.single.8to15"\nvalue = 3000'))
    assert p.require("spending.single_cap_fen", 10).value == 3000
    assert "cn.spend.single.8to15" in p.overrides
    assert CN.require("spending.single_cap_fen", 10).value == 5000  # base untouched


def test_overlay_sets_daily_cap_the_law_leaves_open() -> None:
    p = load_policy("cn", _overlay('[[overrides]]\nid = "cn.spend.daily"\nvalue = 10000'))
    assert p.require("spending.daily_cap_fen", 12).value == 10000


@pytest.mark.parametrize(
    ("rule_id", "value"),
    [
        ("cn.spend.single.8to15", 6000),
        ("cn.game.window", '["20:00-22:00"]'),
        ("cn.game.days", '["fri", "sat", "sun", "holiday", "wed"]'),
        ("cn.game.night", '["23:00-08:00"]'),
        ("cn.age.child", 13),
        ("cn.spend.allowed.under8", "true"),
        ("cn.contact.blocked", '"allow"'),
        ("cn.collect.sensitive", '["face"]'),
    ],
)
def test_overlay_loosening_a_floor_fails_naming_rule(rule_id: str, value: object) -> None:
    with pytest.raises(PolicyError) as exc:
        load_policy("cn", _overlay(f'[[overrides]]\nid = "{rule_id}"\nvalue = {value}'))
    assert exc.value.rule_id == rule_id
    assert rule_id in str(exc.value)


def test_overlay_may_loosen_a_default_that_is_not_a_floor() -> None:
    p = load_policy(
        "cn", _overlay('[[overrides]]\nid = "cn.mode.daily_minutes.under8"\nvalue = 60')
    )
    assert p.require("playtime.daily_minutes", 6).value == 60


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[overrides]]\nid = "cn.nope"\nvalue = 1', "cn.nope"),
        ('[[overrides]]\nid = "cn.spend.single.8to15"\nvalue = "cheap"', "cn.spend.single.8to15"),
        ('[[overrides]]\nid = "cn.game.window"\nvalue = ["8pm"]', "cn.game.window"),
        ("[[overrides]\n", "TOML"),
    ],
)
def test_bad_overlay_is_a_clear_error(text: str, needle: str) -> None:
    with pytest.raises(PolicyError, match=needle.replace(".", r"\.")):
        load_policy("cn", _overlay(text))


def test_overlay_for_another_base_is_rejected() -> None:
    with pytest.raises(PolicyError, match="not 'cn'"):
        load_policy("cn", _overlay().replace('base = "cn"', 'base = "us"'))


def test_unknown_pack() -> None:
    with pytest.raises(PolicyError, match="unknown policy pack"):
        load_pack("atlantis")


def test_window_minutes_wraps_midnight() -> None:
    night = window_minutes(["22:00-06:00"])
    assert 22 * 60 in night and 5 * 60 + 59 in night
    assert 6 * 60 not in night and 21 * 60 + 59 not in night
    assert len(night) == 8 * 60


windows = st.tuples(
    st.integers(0, 23), st.integers(0, 59), st.integers(0, 23), st.integers(0, 59)
).map(lambda t: f"{t[0]:02d}:{t[1]:02d}-{t[2]:02d}:{t[3]:02d}")


@given(st.lists(windows, min_size=1, max_size=3), st.lists(windows, min_size=1, max_size=3))
def test_window_narrowing_is_subset(old: list[str], new: list[str]) -> None:
    rule = CN.rules["cn.game.window"].model_copy(update={"value": old})
    looser = is_looser(rule, new)
    assert looser == (not window_minutes(new) <= window_minutes(old))


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_number_caps_lower_is_stricter(old: int, new: int) -> None:
    rule = CN.rules["cn.spend.single.8to15"].model_copy(update={"value": old})
    assert is_looser(rule, new) == (new > old)


def test_schema_rejects_a_binding_rule_without_direction() -> None:
    base = CN.rules["cn.age.counting"].model_dump()
    with pytest.raises(ValueError, match="stricter direction"):
        Rule.model_validate({**base, "binding": True})
