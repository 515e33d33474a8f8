"""Mask personal information in text by category, before it is shown, stored or passed on.

Three styles: ``mask`` replaces every character of a finding with the mask character (length
kept), ``placeholder`` replaces a finding with a label per category (``[电话]`` / ``[PHONE]``),
``partial`` masks all but the first/last few letters and digits (``138****5678``).

>>> redact("电话13812345678", mask="*")
'电话***********'
>>> redact("电话13812345678", style="placeholder")
'电话[电话]'
>>> redact("call 13812345678", style="partial", policy=None)
'call *******5678'
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from qinglang.detect.findings import Finding
from qinglang.detect.normalise import detect_languages
from qinglang.detect.scan import scan

__all__ = ["PLACEHOLDERS", "RedactionPolicy", "Style", "redact"]

Style: TypeAlias = Literal["mask", "placeholder", "partial"]

PLACEHOLDERS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "phone": ("[电话]", "[PHONE]"),
        "id_number": ("[身份证号]", "[ID NUMBER]"),
        "passport": ("[护照号]", "[PASSPORT]"),
        "travel_permit": ("[通行证号]", "[TRAVEL PERMIT]"),
        "bank_card": ("[银行卡号]", "[BANK CARD]"),
        "email": ("[邮箱]", "[EMAIL]"),
        "qq": ("[QQ号]", "[QQ]"),
        "wechat": ("[微信号]", "[WECHAT]"),
        "ip_address": ("[IP地址]", "[IP ADDRESS]"),
        "gps": ("[位置]", "[LOCATION]"),
        "licence_plate": ("[车牌号]", "[LICENCE PLATE]"),
        "birthday": ("[生日]", "[BIRTHDAY]"),
        "age": ("[年龄]", "[AGE]"),
        "grade_class": ("[年级班级]", "[GRADE/CLASS]"),
        "person_name": ("[姓名]", "[NAME]"),
        "address": ("[地址]", "[ADDRESS]"),
        "school": ("[学校]", "[SCHOOL]"),
    }
)
"""Default placeholder per category: (Chinese, English)."""


@dataclass(frozen=True, slots=True)
class RedactionPolicy:
    """Which categories to redact, and how (style, mask character, what stays visible)."""

    categories: frozenset[str] | None = None
    style: Style = "mask"
    mask: str = "*"
    keep_first: int = 0
    keep_last: int = 4
    lang: str | None = None
    placeholders: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        if len(self.mask) != 1:
            raise ValueError(f"mask must be one character, got {self.mask!r}")
        if self.style not in ("mask", "placeholder", "partial"):
            raise ValueError(f"unknown style {self.style!r}")
        if self.keep_first < 0 or self.keep_last < 0:
            raise ValueError("keep_first and keep_last must not be negative")

    def placeholder(self, category: str, lang: str) -> str:
        """The label that replaces a finding of `category` (override, else the default)."""
        custom = self.placeholders.get(category)
        if custom is not None:
            return custom
        zh, en = PLACEHOLDERS.get(category, (f"[{category}]", f"[{category.upper()}]"))
        return zh if lang == "zh" else en

    def render(self, raw: str, category: str, lang: str) -> str:
        """What replaces the original characters `raw` of a finding."""
        if self.style == "placeholder":
            return self.placeholder(category, lang)
        if self.style == "mask":
            return self.mask * len(raw)
        visible = [c.isalnum() for c in raw]
        total = sum(visible)
        if self.keep_first + self.keep_last >= total:  # too short to show anything safely
            return self.mask * len(raw)
        out = []
        seen = 0
        for c, alnum in zip(raw, visible, strict=True):
            if alnum:
                seen += 1
                shown = seen <= self.keep_first or seen > total - self.keep_last
                out.append(c if shown else self.mask)
            else:
                out.append(c)
        return "".join(out)


def redact(
    text: str,
    findings: Iterable[Finding] | None = None,
    *,
    policy: RedactionPolicy | None = None,
    categories: Collection[str] | None = None,
    mask: str | None = None,
    style: Style | None = None,
    now: datetime | date | None = None,
) -> str:
    """Return `text` with findings (scanned if not given) masked according to the policy."""
    if policy is None:
        policy = RedactionPolicy(
            categories=None if categories is None else frozenset(categories),
            style=style or "mask",
            mask=mask or "*",
        )
    elif categories is not None or mask is not None or style is not None:
        raise TypeError("pass either policy or categories/mask/style, not both")
    if findings is None:
        findings = scan(text, categories=policy.categories, now=now)
    cats = policy.categories
    chosen = sorted(
        (
            f
            for f in findings
            if (cats is None or f.category in cats) and f.confidence >= policy.min_confidence
        ),
        key=lambda f: (f.start, -f.end),
    )
    if not chosen:
        return text
    lang = policy.lang or ("zh" if "zh" in detect_languages(text) else "en")
    pieces: list[str] = []
    last = 0
    for f in chosen:
        if f.end > len(text):
            raise ValueError(f"finding [{f.start}, {f.end}) is outside the text")
        if f.end <= last:
            continue
        start = max(f.start, last)
        pieces.append(text[last:start])
        pieces.append(policy.render(text[start : f.end], f.category, lang))
        last = f.end
    pieces.append(text[last:])
    return "".join(pieces)
