"""Travel documents and vehicles: passports, Hong Kong/Macao/Taiwan permits, licence plates.

Chinese passports are E + 8 digits or E + letter + 7 digits (ordinary, since 2012), G + 8 digits
(older); 往来港澳通行证 C + 8 digits or C + letter + 7 digits; 回乡证 H/M + 8 or 10 digits; 台胞证
8 digits (with context) and 大陆居民往来台湾通行证 T/L + 8 digits. Plates are a province
character, a city letter and five characters (six on new-energy plates: D/F + 5, or 5 + D/F);
I and O are never used.
"""

from __future__ import annotations

import re
from typing import Final

from qinglang.detect.findings import Finding
from qinglang.detect.normalise import Normalised
from qinglang.detect.recognisers._base import DIGITS, LETTERS, clip, finding
from qinglang.detect.recognisers.numbers import NUMBER_RUNS

__all__ = ["LicencePlateRecognizer", "PassportRecognizer", "TravelPermitRecognizer"]

_PASSPORT_FORMAT: Final = re.compile(r"E[0-9]{8}|E[A-HJ-NP-Z][0-9]{7}|G[0-9]{8}|[DSP]E?[0-9]{7}")
_PASSPORT_ANY: Final = re.compile(r"[A-Z]{0,2}[0-9]{6,9}")
_PASSPORT_CONTEXT: Final = re.compile(
    r"(?:护照|passport)(?:\s*(?:号码|号|no\.?|number|#))?(?:\s*(?:是|为|:|=))?\s*$", re.IGNORECASE
)
_PERMIT_FORMAT: Final = re.compile(
    r"C[0-9]{8}|C[A-HJ-NP-Z][0-9]{7}|[HM][0-9]{10}|[HM][0-9]{8}|[TL][0-9]{8}"
)
_PERMIT_ANY: Final = re.compile(rf"{_PERMIT_FORMAT.pattern}|[0-9]{{8}}|[0-9]{{10}}")
_PERMIT_CONTEXT: Final = re.compile(
    r"(?:通行证|回乡证|台胞证|港澳证|permit)"
    r"(?:\s*(?:号码|号|no\.?|number|#))?(?:\s*(?:是|为|:|=))?\s*$",
    re.IGNORECASE,
)


def _tokens(norm: Normalised, shortest: int, longest: int) -> list[tuple[int, int, str]]:
    """(start, end, token) for digit runs of the shared pass with up to two letters before."""
    out: list[tuple[int, int, str]] = []
    text = norm.text
    runs = norm.matches(NUMBER_RUNS)
    if not runs:
        return out
    for m in runs:
        start, end = m.span()
        if (
            m.lastgroup != "digits"
            or not shortest <= end - start <= longest
            or not text[end - 1].isdigit()
        ):
            continue
        if end < len(text) and text[end].isascii() and text[end].isalpha():
            continue
        i = start
        while i > 0 and start - i < 2 and text[i - 1].isascii() and text[i - 1].isalpha():
            i -= 1
        if i > 0 and text[i - 1].isascii() and text[i - 1].isalnum():
            continue
        out.append((i, end, text[i:end].upper()))
    return out


class PassportRecognizer:
    """Chinese passport numbers anywhere; any passport-like number after 护照 / passport."""

    name = "passport"
    batch_safe = True
    triggers = (DIGITS, LETTERS + "护")
    anchors = ((DIGITS, "0-9", "[0-9]{4}"),)  # six digits or more
    categories = frozenset({"passport"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Numbers of the Chinese formats (0.6 alone, 0.95 after a context word)."""
        out: list[Finding] = []
        text = norm.text
        for start, end, token in _tokens(norm, 6, 9):
            ctx = _PASSPORT_CONTEXT.search(text, max(0, start - 16), start)
            if ctx is not None and _PASSPORT_ANY.fullmatch(token):
                conf, why = 0.95, f"passport number after {ctx.group().strip()!r}"
            elif _PASSPORT_FORMAT.fullmatch(token):
                conf, why = 0.6, "Chinese passport number format"
            else:
                continue
            out.append(finding(norm, start, end, "passport", token, conf, self.name, why))
        return out


class TravelPermitRecognizer:
    """Permits for Hong Kong, Macao and Taiwan: 港澳通行证, 回乡证, 台胞证 and others."""

    name = "travel_permit"
    batch_safe = True
    triggers = (DIGITS, LETTERS + "通证乡胞")
    anchors = ((DIGITS, "0-9", "[0-9]{5}"),)  # seven digits or more
    categories = frozenset({"travel_permit"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Permit formats anywhere (0.55–0.6), any permit number after a context word (0.95)."""
        out: list[Finding] = []
        text = norm.text
        for start, end, token in _tokens(norm, 7, 10):
            ctx = _PERMIT_CONTEXT.search(text, max(0, start - 16), start)
            if ctx is not None and _PERMIT_ANY.fullmatch(token):
                conf, why = 0.95, f"permit number after {ctx.group().strip()!r}"
            elif _PERMIT_FORMAT.fullmatch(token):
                conf = 0.55 if token[0] in "CTL" else 0.6
                why = "Hong Kong/Macao/Taiwan permit format"
            else:
                continue
            out.append(finding(norm, start, end, "travel_permit", token, conf, self.name, why))
        return out


_PROVINCES: Final = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_L: Final = "A-HJ-NP-Za-hj-np-z"
_PLATE: Final = re.compile(
    rf"(?P<p>[{_PROVINCES}])(?<![A-Za-z0-9].)\s?(?P<l>[{_L}])\s?[·•.\-]?\s?"
    rf"(?P<rest>[DFdf]\s?[{_L}0-9](?:\s?[0-9]){{4}}|[0-9](?:\s?[0-9]){{4}}\s?[DFdf]"
    rf"|[{_L}0-9](?:\s?[{_L}0-9]){{3}}\s?[{_L}0-9挂学警港澳])(?![A-Za-z0-9])"
)
_PLATE_CONTEXT: Final = re.compile(r"车牌|牌照|车号|plate", re.IGNORECASE)


class LicencePlateRecognizer:
    """Chinese licence plates, including new-energy plates (京AD12345, 粤B·12345)."""

    name = "licence_plate"
    batch_safe = True
    triggers = (DIGITS, _PROVINCES)
    anchors = (  # _PLATE up to its fifth character
        (_PROVINCES, _L, rf"\s?[·•.\-]?\s?[{_L}0-9](?:\s?[{_L}0-9]){{3}}"),
        (_PROVINCES, r"\s", rf"[{_L}]\s?[·•.\-]?\s?[{_L}0-9](?:\s?[{_L}0-9]){{3}}"),
    )
    categories = frozenset({"licence_plate"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Province + city letter + five (or six) characters, at least one of them a digit."""
        out: list[Finding] = []
        text = norm.text
        for m in _PLATE.finditer(text):
            rest = m.group("rest").replace(" ", "").upper()
            if not any(c.isdigit() for c in rest):
                continue
            value = m.group("p") + m.group("l").upper() + rest
            new_energy = len(rest) == 6
            near = _PLATE_CONTEXT.search(text, clip(text, m.start(), 10), m.start())
            conf = 0.95 if near else 0.85
            why = (
                ("new-energy " if new_energy else "")
                + "licence plate"
                + (", context" if near else "")
            )
            out.append(
                finding(norm, m.start(), m.end(), "licence_plate", value, conf, self.name, why)
            )
        return out
