"""The PI impact assessment (个人信息保护影响评估, PIPL art. 55), pure: the template filled from
the platform's configuration, its validation and its content hash.

:func:`draft` turns a :class:`PlatformConfig` (read from the database by
:mod:`qinglang.store.impact`) into a JSON document with one object per section of
:data:`SECTIONS`. The facts qinglang knows (what is processed, for which purposes, which
safeguards) are filled in; what only people can judge (the impact on the child, risks and
measures, the conclusion, who signs it off) is left for the compliance officer to write.
:func:`validate` checks an edited document before a version is stored: every section present,
the free texts written and the sign-off complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from qinglang.consent.canonical import canonical_json, sha256_hex

FORMAT: Final = "qinglang.impact_assessment"
FORMAT_VERSION: Final = 1
SECTIONS: Final[tuple[tuple[str, str, str], ...]] = (
    ("processing", "个人信息处理情况", "Processing described"),
    ("legality", "处理的合法性、正当性和必要性", "Legality, legitimacy and necessity"),
    ("impact", "对未成年人权益的影响", "Impact on the child"),
    ("safeguards", "安全保护措施", "Safeguards"),
    ("risks", "风险及应对措施", "Risks and measures"),
    ("conclusion", "评估结论", "Conclusion"),
    ("sign_off", "签署", "Sign-off"),
)
"""Section key, Chinese title, English title, in document order."""
SECTION_KEYS: Final = tuple(key for key, _, _ in SECTIONS)
TEXT_SECTIONS: Final = ("impact", "risks", "conclusion")
"""Sections whose ``text`` a person writes (empty in a draft, required to save)."""
MAX_TEXT: Final = 20_000
MAX_OWNER: Final = 128
BASES: Final[Mapping[str, tuple[str, str]]] = {
    "child": ("guardian_consent", "个人信息保护法 art. 31"),
    "minor": ("consent", "个人信息保护法 art. 13 para. 1 (1)"),
    "general": ("consent", "个人信息保护法 art. 13 para. 1 (1)"),
}
"""Legal basis of the processing a notice asks consent for, by the notice's audience."""


class AssessmentError(ValueError):
    """An assessment document that cannot be stored; `key` names the section or field."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(f"{key}: {message}")
        self.message = message
        self.key = key


@dataclass(frozen=True, slots=True)
class NoticeItemFact:
    """One purpose of a published notice: the categories processed for it and how."""

    purpose: str
    categories: tuple[str, ...]
    method: str
    scope: str
    audience: str | None = None
    retention: str = ""


@dataclass(frozen=True, slots=True)
class NoticeFact:
    """A platform's current notice for one language and audience (latest version)."""

    language: str
    audience: str
    version: int
    content_hash: str
    items: tuple[NoticeItemFact, ...]


@dataclass(frozen=True, slots=True)
class RetentionFact:
    """A retention period from the policy pack, with its rule id and citation."""

    rule_id: str
    topic: str
    value: Any
    unit: str | None
    citation: str


@dataclass(frozen=True, slots=True)
class PlatformConfig:
    """What the assessment template is filled from (read by qinglang.store.impact)."""

    platform_slug: str
    platform_name: str
    jurisdiction: str
    pack: str
    """Policy pack id and version, e.g. ``cn 2026.1``."""
    notices: tuple[NoticeFact, ...] = ()
    age_sources: tuple[tuple[str, int], ...] = ()
    """(age source, accounts) for the sources on record, e.g. ("guardian_declared", 12)."""
    age_inference: bool = False
    """Whether ages are inferred automatically (age assessments exist)."""
    recommendation_filter: bool = False
    """Whether exposure (recommendation and distribution) decisions are made by the engine."""
    encryption_at_rest: bool = False
    staff_read_logging: bool = True
    consent_ledger: bool = False
    """Whether consents are recorded in the tamper-evident ledger (entries exist)."""
    decision_sample_rate: float = 0.0
    guardian_tools: bool = False
    """Whether guardians use the console (guardian accounts or verified links exist)."""
    retention: tuple[RetentionFact, ...] = ()
    records_retention: RetentionFact | None = None
    """The pack rule that keeps impact assessments and processing records (PIPL art. 56)."""
    extra: Mapping[str, Any] = field(default_factory=dict)


def _section(key: str) -> dict[str, Any]:
    for k, zh, en in SECTIONS:
        if k == key:
            return {"title_zh": zh, "title_en": en}
    raise KeyError(key)


def _retention(r: RetentionFact) -> dict[str, Any]:
    return {
        "rule_id": r.rule_id,
        "topic": r.topic,
        "value": r.value,
        "unit": r.unit,
        "citation": r.citation,
    }


def _purposes(notices: Sequence[NoticeFact]) -> list[dict[str, Any]]:
    """One entry per purpose across the current notices, with what each notice says of it."""
    by: dict[str, dict[str, Any]] = {}
    for n in sorted(notices, key=lambda x: (x.audience, x.language)):
        for it in n.items:
            p = by.setdefault(
                it.purpose,
                {
                    "purpose": it.purpose,
                    "categories": set(),
                    "method": it.method,
                    "scope": it.scope,
                    "audience": it.audience,
                    "retention": it.retention,
                    "notices": [],
                },
            )
            p["categories"].update(it.categories)
            ref = {"audience": n.audience, "language": n.language, "version": n.version}
            p["notices"].append(ref)
    out = []
    for purpose in sorted(by):
        p = by[purpose]
        out.append({**p, "categories": sorted(p["categories"])})
    return out


def _bases(notices: Sequence[NoticeFact]) -> list[dict[str, Any]]:
    """Per purpose: the legal bases its notices rely on (guardian consent for children)."""
    by: dict[str, set[tuple[str, str, str]]] = {}
    for n in notices:
        basis, citation = BASES.get(n.audience, BASES["general"])
        for it in n.items:
            by.setdefault(it.purpose, set()).add((n.audience, basis, citation))
    return [
        {
            "purpose": purpose,
            "bases": [
                {"audience": a, "basis": b, "citation": c} for a, b, c in sorted(by[purpose])
            ],
            "necessity": "",
        }
        for purpose in sorted(by)
    ]


def draft(config: PlatformConfig) -> dict[str, Any]:
    """The assessment template filled from the platform's configuration (JSON-ready)."""
    notices = sorted(config.notices, key=lambda n: (n.audience, n.language))
    categories = sorted({c for n in notices for it in n.items for c in it.categories})
    audiences = sorted({it.audience for n in notices for it in n.items if it.audience})
    processing = {
        **_section("processing"),
        "notices": [
            {
                "language": n.language,
                "audience": n.audience,
                "version": n.version,
                "content_hash": n.content_hash,
            }
            for n in notices
        ],
        "categories": categories,
        "purposes": _purposes(notices),
        "audiences": audiences,
        "age_sources": {src: n for src, n in sorted(config.age_sources)},
        "automated_decisions": {
            "age_inference": config.age_inference,
            "recommendation_filter": config.recommendation_filter,
        },
    }
    safeguards = {
        **_section("safeguards"),
        "encryption_at_rest": config.encryption_at_rest,
        "staff_read_logging": config.staff_read_logging,
        "consent_ledger": config.consent_ledger,
        "decision_sample_rate": config.decision_sample_rate,
        "guardian_tools": config.guardian_tools,
        "retention": [_retention(r) for r in sorted(config.retention, key=lambda r: r.rule_id)],
        "records_retention": None
        if config.records_retention is None
        else _retention(config.records_retention),
        "other": "",
    }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "platform": {
            "slug": config.platform_slug,
            "name": config.platform_name,
            "jurisdiction": config.jurisdiction,
            "pack": config.pack,
        },
        "processing": processing,
        "legality": {**_section("legality"), "consent_basis": _bases(notices)},
        "impact": {**_section("impact"), "text": ""},
        "safeguards": safeguards,
        "risks": {**_section("risks"), "text": ""},
        "conclusion": {**_section("conclusion"), "text": ""},
        "sign_off": {**_section("sign_off"), "owner": "", "date": ""},
    }


def _object(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    if value is None:
        raise AssessmentError("missing section", key)
    if not isinstance(value, Mapping):
        raise AssessmentError("must be an object", key)
    return value


def _written(section: Mapping[str, Any], key: str, limit: int) -> str:
    value = section.get(key.split(".")[-1])
    if not isinstance(value, str) or not value.strip():
        raise AssessmentError("must be written (non-empty text)", key)
    if len(value) > limit:
        raise AssessmentError(f"at most {limit} characters", key)
    return value


def validate(body: Any) -> None:
    """Raise AssessmentError naming the first missing or invalid section or field."""
    if not isinstance(body, Mapping):
        raise AssessmentError("the assessment must be a JSON object", "body")
    if body.get("format") != FORMAT:
        raise AssessmentError(f"expected {FORMAT!r}", "format")
    for key in SECTION_KEYS:
        _object(body, key)
    processing = _object(body, "processing")
    for name in ("categories", "purposes"):
        if not isinstance(processing.get(name), list):
            raise AssessmentError("must be a list", f"processing.{name}")
    for i, p in enumerate(processing["purposes"]):
        if not isinstance(p, Mapping) or not isinstance(p.get("purpose"), str):
            raise AssessmentError("each purpose needs a 'purpose' name", f"processing.purposes.{i}")
    if not isinstance(processing.get("automated_decisions"), Mapping):
        raise AssessmentError("must be an object", "processing.automated_decisions")
    if not isinstance(_object(body, "legality").get("consent_basis"), list):
        raise AssessmentError("must be a list", "legality.consent_basis")
    safeguards = _object(body, "safeguards")
    for name in ("encryption_at_rest", "staff_read_logging", "consent_ledger", "guardian_tools"):
        if not isinstance(safeguards.get(name), bool):
            raise AssessmentError("must be true or false", f"safeguards.{name}")
    rate = safeguards.get("decision_sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise AssessmentError("must be a number from 0 to 1", "safeguards.decision_sample_rate")
    if not isinstance(safeguards.get("retention"), list):
        raise AssessmentError("must be a list", "safeguards.retention")
    for key in TEXT_SECTIONS:
        _written(_object(body, key), f"{key}.text", MAX_TEXT)
    sign_off = _object(body, "sign_off")
    _written(sign_off, "sign_off.owner", MAX_OWNER)
    if _date(sign_off.get("date")) is None:
        raise AssessmentError("must be a date, YYYY-MM-DD", "sign_off.date")


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def signed_on(body: Mapping[str, Any]) -> date:
    """The sign-off date of a validated assessment."""
    return date.fromisoformat(str(body["sign_off"]["date"]))


def content_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the assessment document."""
    return sha256_hex(canonical_json(dict(body)))
