"""Where someone is: GPS coordinates and the structured parts of a postal address.

GPS pairs are two decimals with at least three decimal places, in range (latitude ≤ 90,
longitude ≤ 180; a pair whose first number cannot be a latitude is read longitude-first, as
Chinese map APIs write it), with optional hemisphere letters (N/S/E/W, 北/南/东/西).

Addresses here are only the parts a rule can see: 小区 building-unit-room (``3栋2单元501``,
``5号楼3单元201室``) with the estate name before it, and street numbers (``中山路12号``), merged
when adjacent. Province/city/district names and free-form addresses are the statistical
model's; rule-based address findings carry a lower confidence (0.6) than the model's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from qinglang.detect.findings import Finding
from qinglang.detect.normalise import CJK_CLASS, Normalised
from qinglang.detect.recognisers._base import DIGITS, clip, finding

__all__ = ["AddressRecognizer", "GpsRecognizer"]

_DEC: Final = r"[-+]?[0-9]{1,3}\.[0-9]{3,10}"
_HEMI: Final = r"[NSEWnsew北南东西]"
_GPS: Final = re.compile(
    rf"(?P<a>[0-9](?<![0-9.].)[0-9]{{0,2}}\.[0-9]{{3,10}})(?:\s?°)?(?:\s?(?P<as>{_HEMI}))?"
    rf"(?:纬|经)?(?:\s*(?P<sep>[,/;、])\s*|\s+)(?:(?P<bh>{_HEMI})(?:纬|经)?\s?)?(?P<b>{_DEC})(?:\s?°)?"
    rf"(?:\s?(?P<bs>{_HEMI}))?(?:纬|经)?(?![0-9])"
)
"""A pair starting at the first digit; a sign or hemisphere before it is read separately."""
_GPS_PREFIX: Final = re.compile(rf"(?:(?P<ah>{_HEMI})(?:纬|经)?\s?)?(?P<sign>[-+])?$")
_GPS_CONTEXT: Final = re.compile(
    r"坐标|经纬|定位|位置|地点|GPS|location|coordinates|lat|lng|lon|i'?m at", re.IGNORECASE
)
_LAT_LETTERS: Final = frozenset("NSns北南")
_NEGATIVE: Final = frozenset("SWsw南西")


def _pair(text: str, m: re.Match[str]) -> tuple[int, tuple[str, str]] | None:
    """(start, (latitude, longitude)) as decimal strings, or None if not a position."""
    start = m.start()
    prefix = _GPS_PREFIX.search(text, max(0, start - 4), start)
    ha: str | None = m.group("as")
    a = m.group("a")
    if prefix is not None and prefix.start() < start:
        start = prefix.start()
        ha = prefix.group("ah") or ha
        a = (prefix.group("sign") or "") + a
    if start > 0 and text[start - 1].isascii() and text[start - 1].isalnum():
        return None
    b = m.group("b")
    hb = m.group("bh") or m.group("bs")
    if ha in _NEGATIVE and not a.startswith("-"):
        a = "-" + a.lstrip("+")
    if hb in _NEGATIVE and not b.startswith("-"):
        b = "-" + b.lstrip("+")
    fa, fb = float(a), float(b)
    if (ha and ha in _LAT_LETTERS) or (hb and hb not in _LAT_LETTERS):
        ok, lat, lon = abs(fa) <= 90 and abs(fb) <= 180, a, b
    elif (hb and hb in _LAT_LETTERS) or (ha and ha not in _LAT_LETTERS):
        ok, lat, lon = abs(fb) <= 90 and abs(fa) <= 180, b, a
    elif abs(fa) <= 90 and abs(fb) <= 180:
        ok, lat, lon = True, a, b
    else:
        ok, lat, lon = abs(fb) <= 90 and abs(fa) <= 180, b, a
    if not ok or (float(lat) == 0 and float(lon) == 0):
        return None
    return start, (lat.lstrip("+"), lon.lstrip("+"))


class GpsRecognizer:
    """Latitude/longitude pairs in decimal degrees."""

    name = "gps"
    batch_safe = True
    triggers = (DIGITS, ".")
    # _GPS up to the second number
    anchors = ((DIGITS, ".", rf"[0-9]{{3,10}}(?:\s?°)?(?:\s?{_HEMI})?(?:纬|经)?(?:\s*[,/;、]|\s)"),)
    categories = frozenset({"gps"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Pairs of decimals in range (0.75 alone, 0.95 with a location word before)."""
        out: list[Finding] = []
        text = norm.text
        if "." not in text:
            return out
        for m in _GPS.finditer(text):
            found = _pair(text, m)
            if found is None:
                continue
            start, (lat, lon) = found
            near = _GPS_CONTEXT.search(text, clip(text, start, 12), start)
            marked = any(m.group(g) for g in ("as", "bh", "bs")) or start < m.start()
            if not (near or marked or m.group("sep")):
                continue  # two decimals separated by a space only: too weak on their own
            conf = 0.95 if near else 0.75
            why = "latitude/longitude pair" + (f", context {near.group()!r}" if near else "")
            out.append(finding(norm, start, m.end(), "gps", f"{lat},{lon}", conf, self.name, why))
        return out


_CN_SMALL: Final = "一二三四五六七八九十"
_N: Final = rf"(?:[0-9]{{1,4}}|[{_CN_SMALL}]{{1,3}})"
_BUR_ANCHOR: Final = re.compile(r"号楼|栋|幢|座|号院|#|单元")
_BUILDING_NUMBER: Final = re.compile(rf"(?<![0-9A-Za-z])(?:[A-Za-z]|{_N})\s?$")
_UNIT_NUMBER: Final = re.compile(rf"(?<![0-9])(?:{_N})\s?$")
_BUR_REST: Final = re.compile(
    rf"楼?(?:\s?{_N}\s?单元)?(?:\s?[0-9]{{1,2}}\s?[层楼])?(?:\s?[0-9]{{2,5}}\s?(?:室|号|房|户)?)?"
)
_ROOM: Final = re.compile(r"\s?[0-9]{2,5}\s?(?:室|号|房|户)?")
_STREET: Final = re.compile(
    r"(?:路|街|大道|大街|巷|胡同|弄|里)\s?[0-9]{1,5}(?:-[0-9]{1,4})?\s?号(?:院|楼)?"
)
_STREET_EN: Final = re.compile(
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl"
    r"|Terrace|Close|Crescent)(?![A-Za-z])\.?"
)
_STREET_EN_BEFORE: Final = re.compile(r"(?<![A-Za-z0-9])[0-9]{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}$")
_APARTMENT: Final = re.compile(r",?\s*(?:Apt|Apartment|Unit|Flat|Suite)\.?\s*#?\s*[0-9A-Za-z]{1,5}")
_ESTATE_SUFFIXES: Final = (
    "小区",
    "花园",
    "公寓",
    "大厦",
    "家园",
    "新村",
    "社区",
    "广场",
    "苑",
    "府",
    "城",
    "村",
)
_STOP: Final = frozenset(
    "的在是去到读念了和与跟我你他她们就于从个所这那哪有没为给对把被让其该本各每也都还要想会能说叫住搬由已及或等赴向"
)
_CJK: Final = re.compile(f"[{CJK_CLASS}]")
_SPACES: Final = re.compile(r"\s+")


def name_before(text: str, pos: int, longest: int = 12) -> int:
    """Start of the name that ends at `pos`: Chinese characters or digits, not past a stop word."""
    i = pos
    seen_cjk = False
    while i > 0 and pos - i < longest:
        c = text[i - 1]
        if c in _STOP and not (c == "上" and text[i : i + 1] in ("海",)):
            break
        if _CJK.match(c):
            seen_cjk = True
        elif not c.isdigit() or seen_cjk:  # digits only right before the suffix ("101中学")
            break
        i -= 1
    return i


class AddressRecognizer:
    """Building-unit-room (小区 3栋2单元501) and street numbers (中山路12号): rule-based parts."""

    name = "address_parts"
    batch_safe = True
    triggers = (DIGITS + "一二三四五六七八九十", "栋幢座单#号" + "SRALDBWCPT")
    # _BUR_ANCHOR, _STREET (大道 大街 胡同 by their last character), a number before an English
    # street name
    anchors = (
        ("栋幢座#", "", ""),
        ("号", "楼院", ""),
        ("单", "元", ""),
        ("路街道巷同弄里", "0-9", ""),
        ("路街道巷同弄里", r"\s", "[0-9]"),
        (DIGITS, r"\s", r"\s*[A-Z]"),
    )
    categories = frozenset({"address"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> Iterator[Finding]:
        """Address parts; adjacent parts and the estate/road name before them are merged."""
        text = norm.text
        parts = sorted([*self._buildings(text), *self._streets(text), *self._english(text)])
        spans: list[tuple[int, int, str]] = []
        for start, end, kind in parts:
            if spans and start < spans[-1][1]:
                continue
            gap = text[spans[-1][1] : start] if spans else ""
            # "\x00" separates texts that scan_many scans together: never merge across it
            if spans and len(gap) <= 1 and "\x00" not in gap and "en" not in (kind, spans[-1][2]):
                prev = spans.pop()
                spans.append((prev[0], end, "merged"))
            else:
                spans.append((start, end, kind))
        for start, end, kind in spans:
            value = _SPACES.sub("" if kind != "en" else " ", text[start:end]).strip()
            why = {
                "bur": "building/unit/room",
                "street": "street and number",
                "merged": "street, building/unit/room",
                "en": "street address",
            }[kind]
            yield finding(norm, start, end, "address", value, 0.6, self.name, why)

    def _buildings(self, text: str) -> Iterator[tuple[int, int, str]]:
        """3栋2单元501, 5号楼3单元201室, 2单元501 — a building alone ("3栋") is not enough."""
        done = 0
        for a in _BUR_ANCHOR.finditer(text):
            if a.start() < done:
                continue
            if a.group() == "单元":
                n = _UNIT_NUMBER.search(text, max(0, a.start() - 4), a.start())
                room = _ROOM.match(text, a.end())
                if n is None or room is None:
                    continue
                start, end = n.start(), room.end()
            else:
                n = _BUILDING_NUMBER.search(text, max(0, a.start() - 5), a.start())
                rest = _BUR_REST.match(text, a.end())
                if n is None or rest is None or rest.end() - a.end() < 2:
                    continue
                start, end = n.start(), rest.end()
            head = name_before(text, start)
            if any(text[head:start].endswith(s) for s in _ESTATE_SUFFIXES):
                start = head
            done = end
            yield start, end, "bur"

    def _streets(self, text: str) -> Iterator[tuple[int, int, str]]:
        """中山路12号 (the road's name is required)."""
        for m in _STREET.finditer(text):
            head = name_before(text, m.start())
            if head < m.start():
                yield head, m.end(), "street"

    def _english(self, text: str) -> Iterator[tuple[int, int, str]]:
        """12 Main Street, Apt 3 (one to three capitalised words before the street type)."""
        for m in _STREET_EN.finditer(text):
            if m.start() == 0 or text[m.start() - 1] != " ":
                continue
            before = _STREET_EN_BEFORE.search(text, max(0, m.start() - 60), m.start())
            if before is None:
                continue
            end = m.end()
            apt = _APARTMENT.match(text, end)
            if apt is not None:
                end = apt.end()
            yield before.start(), end, "en"
