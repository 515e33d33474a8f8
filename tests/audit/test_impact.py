"""The impact assessment template, pure: filled from a configuration, validated section by
section (the error names the key), hashed canonically."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.audit.impact import (
    FORMAT,
    SECTION_KEYS,
    SECTIONS,
    AssessmentError,
    NoticeFact,
    NoticeItemFact,
    PlatformConfig,
    RetentionFact,
    content_hash,
    draft,
    signed_on,
    validate,
)
from qinglang.consent.canonical import canonical_json, sha256_hex

CHILD_ZH = NoticeFact(
    "zh",
    "child",
    3,
    "a" * 64,
    (
        NoticeItemFact("publish_content", ("child_content",), "上传", "关注者", "followers"),
        NoticeItemFact("nearby", ("location",), "定位", "附近"),
    ),
)
GENERAL_EN = NoticeFact(
    "en",
    "general",
    1,
    "b" * 64,
    (NoticeItemFact("nearby", ("location", "device_id"), "gps", "nearby users"),),
)
CONFIG = PlatformConfig(
    platform_slug="video",
    platform_name="Video",
    jurisdiction="cn",
    pack="cn 2026.1",
    notices=(GENERAL_EN, CHILD_ZH),
    age_sources=(("verified", 4), ("guardian_declared", 7)),
    age_inference=True,
    recommendation_filter=False,
    encryption_at_rest=True,
    staff_read_logging=True,
    consent_ledger=True,
    decision_sample_rate=0.05,
    guardian_tools=True,
    retention=(
        RetentionFact("cn.retention.events", "retention.events_days", 180, "days", "x art. 1"),
        RetentionFact(
            "cn.retention.decision_logs", "retention.decision_logs_days", 1096, "days", "y"
        ),
    ),
    records_retention=RetentionFact(
        "cn.audit.records_retention", "audit.records_retention_years", 3, "years", "PIPL art. 56"
    ),
)


def completed(body: dict[str, Any]) -> dict[str, Any]:
    """The draft with the parts people write filled in."""
    out = copy.deepcopy(body)
    out["impact"]["text"] = "位置数据可能暴露儿童行踪。"
    out["risks"]["text"] = "Location off by default for under-14s (measure M-0003)."
    out["conclusion"]["text"] = "可接受 / acceptable with the measures listed."
    out["sign_off"]["owner"] = "DPO 李"
    out["sign_off"]["date"] = "2026-11-20"
    return out


def test_the_draft_is_filled_from_the_configuration() -> None:
    body = draft(CONFIG)
    assert body["format"] == FORMAT
    assert [k for k in body if k in SECTION_KEYS] == list(SECTION_KEYS)
    for key, zh, en in SECTIONS:
        assert body[key]["title_zh"] == zh and body[key]["title_en"] == en
    p = body["processing"]
    assert p["categories"] == ["child_content", "device_id", "location"]
    assert [x["purpose"] for x in p["purposes"]] == ["nearby", "publish_content"]
    nearby = p["purposes"][0]
    assert nearby["categories"] == ["device_id", "location"]
    assert {(n["audience"], n["version"]) for n in nearby["notices"]} == {
        ("child", 3),
        ("general", 1),
    }
    assert p["audiences"] == ["followers"]
    assert p["age_sources"] == {"guardian_declared": 7, "verified": 4}
    assert p["automated_decisions"] == {"age_inference": True, "recommendation_filter": False}
    bases = {b["purpose"]: b["bases"] for b in body["legality"]["consent_basis"]}
    assert {b["basis"] for b in bases["nearby"]} == {"guardian_consent", "consent"}
    assert [b["basis"] for b in bases["publish_content"]] == ["guardian_consent"]
    s = body["safeguards"]
    assert s["encryption_at_rest"] and s["staff_read_logging"] and s["consent_ledger"]
    assert s["decision_sample_rate"] == 0.05 and s["guardian_tools"]
    assert [r["rule_id"] for r in s["retention"]] == [
        "cn.retention.decision_logs",
        "cn.retention.events",
    ]
    assert s["records_retention"]["rule_id"] == "cn.audit.records_retention"
    for key in ("impact", "risks", "conclusion"):
        assert body[key]["text"] == ""
    assert body["sign_off"]["owner"] == "" and body["sign_off"]["date"] == ""
    json.dumps(body)  # JSON-ready


def test_a_draft_is_the_same_for_the_same_configuration() -> None:
    swapped = replace(
        CONFIG, notices=tuple(reversed(CONFIG.notices)), retention=tuple(reversed(CONFIG.retention))
    )
    assert content_hash(draft(CONFIG)) == content_hash(draft(swapped))


def test_an_empty_configuration_drafts_too() -> None:
    body = draft(PlatformConfig("p", "P", "cn", "cn 1"))
    assert body["processing"]["purposes"] == [] and body["safeguards"]["records_retention"] is None


def test_a_draft_does_not_validate_until_written() -> None:
    with pytest.raises(AssessmentError) as e:
        validate(draft(CONFIG))
    assert e.value.key == "impact.text"
    body = completed(draft(CONFIG))
    validate(body)
    assert signed_on(body).isoformat() == "2026-11-20"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda b: b.pop("safeguards"), "safeguards"),
        (lambda b: b.update(risks="text"), "risks"),
        (lambda b: b.update(format="other"), "format"),
        (lambda b: b["processing"].update(purposes={}), "processing.purposes"),
        (lambda b: b["processing"]["purposes"].append(3), "processing.purposes.2"),
        (
            lambda b: b["safeguards"].update(encryption_at_rest="yes"),
            "safeguards.encryption_at_rest",
        ),
        (
            lambda b: b["safeguards"].update(decision_sample_rate=2),
            "safeguards.decision_sample_rate",
        ),
        (lambda b: b["legality"].pop("consent_basis"), "legality.consent_basis"),
        (lambda b: b["conclusion"].update(text="  "), "conclusion.text"),
        (lambda b: b["impact"].update(text="x" * 20_001), "impact.text"),
        (lambda b: b["sign_off"].update(owner=""), "sign_off.owner"),
        (lambda b: b["sign_off"].update(date="20 Nov 2026"), "sign_off.date"),
        (lambda b: b["sign_off"].update(date="2026-02-30"), "sign_off.date"),
    ],
)
def test_validation_names_the_section(change: Any, key: str) -> None:
    body = completed(draft(CONFIG))
    change(body)
    with pytest.raises(AssessmentError) as e:
        validate(body)
    assert e.value.key == key and str(e.value).startswith(key)
    assert isinstance(e.value, ValueError)


def test_not_an_object() -> None:
    bads: tuple[Any, ...] = ([], "x", None)
    for bad in bads:
        with pytest.raises(AssessmentError) as e:
            validate(bad)
        assert e.value.key == "body"


def test_the_content_hash_is_canonical() -> None:
    body = completed(draft(CONFIG))
    reordered = json.loads(json.dumps(body, sort_keys=False))
    reordered = dict(reversed(list(reordered.items())))
    assert content_hash(body) == content_hash(reordered)
    assert content_hash(body) == sha256_hex(canonical_json(body))
    changed = copy.deepcopy(body)
    changed["impact"]["text"] += "。"
    assert content_hash(changed) != content_hash(body)


@given(st.text(min_size=1, max_size=200).filter(lambda s: s.strip() != ""))
def test_any_written_text_validates_and_hashes_stably(text: str) -> None:
    body = completed(draft(CONFIG))
    body["conclusion"]["text"] = text
    validate(body)
    again = json.loads(json.dumps(body, ensure_ascii=False))
    assert content_hash(again) == content_hash(body)
