"""Contact handles: e-mail addresses, QQ numbers and WeChat ids.

QQ numbers and WeChat ids are only recognisable by the words around them (QQ / 扣扣 / 企鹅号,
微信 / vx / V信 / WeChat …); the aliases are already rewritten to ``QQ`` and ``微信`` by the
normaliser, so the patterns here need only the canonical words.
"""

from __future__ import annotations

import re
from typing import Final

from qinglang.detect.findings import Finding
from qinglang.detect.normalise import Normalised
from qinglang.detect.recognisers._base import DIGITS, LETTERS, finding
from qinglang.detect.recognisers.numbers import _CN_MOBILE, NUMBER_RUNS

__all__ = ["EmailRecognizer", "QqRecognizer", "WechatRecognizer"]

_AT: Final = re.compile(r"@|\((?i:at)\)|\[(?i:at)\]")
_LOCAL: Final = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}$")
_DOMAIN: Final = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)


class EmailRecognizer:
    """E-mail addresses, also written with (at) / [at]; value in lower case."""

    name = "email"
    batch_safe = True
    triggers = ("@([", "@tT")
    anchors = (("@", "", ""), ("a", "t", r"[)\]]"))  # as the test at the start of find
    categories = frozenset({"email"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Addresses in the text (only looked for when it has '@' or '(at)'/'[at]')."""
        out: list[Finding] = []
        text = norm.text
        if "@" not in text and "at]" not in text and "at)" not in text:
            return out
        resume = 0
        for at in _AT.finditer(text):
            if at.start() < resume:
                continue
            before = at.start() - (at.start() > 0 and text[at.start() - 1] == " ")
            after = at.end() + (text[at.end() : at.end() + 1] == " ")
            local = _LOCAL.search(text, max(0, before - 64), before)
            domain = _DOMAIN.match(text, after)
            if local is None or domain is None:
                continue
            value = f"{local.group().rstrip('.')}@{domain.group()}".lower()
            conf = 0.95 if "@" in at.group() else 0.85
            start, end = local.start(), domain.end()
            resume = end
            out.append(finding(norm, start, end, "email", value, conf, self.name, "e-mail address"))
        return out


_QQ_BEFORE: Final = re.compile(
    r"QQ(?:号码|群号|号|群)?(?:[\s:=#\-,.]|是|为|的|(?:is|no|number|id|account)\b)*$",
    re.IGNORECASE,
)


class QqRecognizer:
    """QQ numbers (5–11 digits) right after QQ / QQ号 / QQ群 (aliases normalised to QQ)."""

    name = "qq"
    batch_safe = True
    triggers = ("Qq", DIGITS)
    anchors = (("Qq", "Qq", ""),)
    categories = frozenset({"qq"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Digit runs from the shared pass that follow a QQ context word."""
        out: list[Finding] = []
        text = norm.text
        if "QQ" not in text and "qq" not in text and "Qq" not in text and "qQ" not in text:
            return out
        for m in norm.matches(NUMBER_RUNS):
            start, end = m.span()
            if m.lastgroup != "digits" or not 5 <= end - start <= 11 or text[start] == "0":
                continue
            ctx = _QQ_BEFORE.search(text, max(0, start - 16), start)
            if ctx is None:
                continue
            digits = text[start:end]
            if not digits.isdigit():
                continue
            why = f"QQ number after {ctx.group().strip()!r}"
            # 0.95: right after a QQ word an 11-digit run is a QQ number even if it looks like a
            # mobile number (the phone recogniser gives those 0.9 without phone context)
            out.append(finding(norm, start, end, "qq", digits, 0.95, self.name, why))
        return out


_WECHAT_ID: Final = (
    r"(?P<gap>(?:号码|号|(?i:id))?(?:[\s:=#\-]|是|为|的|(?i:is|id|account)\b)*)"
    r"(?P<id>[A-Za-z][A-Za-z0-9_\-]{2,19}|[0-9]{5,12})(?![A-Za-z0-9_\-])"
)
_WECHAT_ZH: Final = re.compile(f"微信{_WECHAT_ID}")
_WECHAT_EN: Final = re.compile(rf"[Ww](?<![A-Za-z].)(?i:e\s?chat|eixin){_WECHAT_ID}")
_WXID: Final = re.compile(r"(?<![A-Za-z0-9_])wxid_[a-z0-9]{6,20}(?![A-Za-z0-9_])")
_EXPLICIT: Final = re.compile(r"[:=号是]|id", re.IGNORECASE)


class WechatRecognizer:
    """WeChat ids after 微信 / WeChat (aliases normalised to 微信), and ``wxid_`` ids anywhere."""

    name = "wechat"
    batch_safe = True
    triggers = ("微tTxX", DIGITS + LETTERS)
    # as the tests in find: 微信, hat / HAT (WeChat), eixin / EIXIN (Weixin), wxid_
    anchors = (
        ("微", "信", ""),
        ("h", "a", "t"),
        ("H", "A", "T"),
        ("e", "i", "xin"),
        ("E", "I", "XIN"),
        ("w", "x", "id_"),
    )
    categories = frozenset({"wechat"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """An id right after the context word; letters-only ids need an explicit ':'/号/是."""
        out: list[Finding] = []
        text = norm.text
        patterns = []
        if "微信" in text:
            patterns.append(_WECHAT_ZH)
        if "hat" in text or "HAT" in text or "eixin" in text or "EIXIN" in text:
            patterns.append(_WECHAT_EN)
        for pattern in patterns:
            for m in pattern.finditer(text):
                wid = m.group("id")
                if wid.isdigit():
                    if _CN_MOBILE.fullmatch(wid):
                        continue  # a phone number: the phone recogniser reports it
                    conf = 0.8
                elif wid.isalpha():
                    if not _EXPLICIT.search(m.group("gap")):
                        continue
                    conf = 0.7
                else:
                    conf = 0.9 if len(wid) >= 6 else 0.75
                start, end = m.span("id")
                why = "WeChat id after the context word"
                out.append(finding(norm, start, end, "wechat", wid, conf, self.name, why))
        if "wxid_" in text:
            for m in _WXID.finditer(text):
                out.append(
                    finding(
                        norm, m.start(), m.end(), "wechat", m.group(), 0.9, self.name, "wxid_ id"
                    )
                )
        return out
