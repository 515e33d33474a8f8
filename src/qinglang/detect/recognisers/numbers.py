"""Digit-based recognisers: phones, identity numbers, bank cards and IP addresses.

One shared pass (`NUMBER_RUNS`) finds every run of five or more digits and every dotted quad in
the normalised text; the recognisers classify the runs with checks beyond the pattern — the
MOD 11-2 check and birth date of identity numbers (`qinglang.age`), Luhn and issuer prefixes of
cards, `phonenumbers` metadata for phones, octets ≤ 255 — and context words nearby.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Final

import phonenumbers

from qinglang.age import is_valid, validate
from qinglang.detect.findings import Finding
from qinglang.detect.normalise import Normalised, detect_languages
from qinglang.detect.recognisers._base import DIGITS, birth_signal, context, finding

__all__ = ["NUMBER_RUNS", "IpAddressRecognizer", "NumberRecognizer", "luhn_ok"]

_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
NUMBER_RUNS: Final = re.compile(
    r"[0-9](?<![0-9].)(?<![0-9]\..)"
    r"(?:(?P<ip>[0-9]{0,2}(?:\.[0-9]{1,3}){3})(?![0-9]|\.[0-9])"
    r"|(?P<digits>[0-9]{4,}(?:(?<=[0-9]{17})(?<![0-9]{18})[Xx])?)(?![0-9]))"
)
"""Runs of 5+ digits (an identity number may end in X) and dotted quads: one pass, shared."""

PHONE_CONTEXT: Final = re.compile(
    r"电话|手机|联系|致电|拨打|热线|座机|号码|来电|打我|call|phone|mobile|cell|tel\b|text me"
    r"|whatsapp|sms|number",
    re.IGNORECASE,
)
ID_CONTEXT: Final = re.compile(r"身份证|证件|实名|(?:id|identity)\s*(?:card|number|no)", re.I)
CARD_CONTEXT: Final = re.compile(
    r"卡号|银行卡|信用卡|储蓄卡|借记卡|银行|账号|账户|转账|card|account", re.I
)
NOT_A_PHONE: Final = re.compile(
    r"订单|单号|编号|流水|快递|运单|工号|学号|账单|发票|序列|型号|批次|编码|库存|order|tracking|invoice"
    r"|serial|ref\b|isbn",
    re.IGNORECASE,
)
_CN_MOBILE: Final = re.compile(r"(?:0086|86)?(1[3-9][0-9]{9})")
_CN_LANDLINE: Final = re.compile(r"0[1-9][0-9]{8,10}")


_LUHN_DOUBLED: Final = str.maketrans("0123456789", "0246813579")
"""Each digit doubled, less 9 above 9."""


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn check."""
    if digits.isascii() and digits.isdigit():  # the digit sums of the byte values, in C
        odd = digits[-1::-2].encode()
        even = digits[-2::-2].translate(_LUHN_DOUBLED).encode()
        return (sum(odd) + sum(even) - 48 * len(digits)) % 10 == 0
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_issuer(d: str) -> str | None:
    """The card scheme an issuer prefix and length fit, or None if none does."""
    n = len(d)
    if d[:2] == "62" and 16 <= n <= 19:
        return "UnionPay"
    if d[0] == "4" and n in (13, 16, 19):
        return "Visa"
    if ("51" <= d[:2] <= "55" or "2221" <= d[:4] <= "2720") and n == 16:
        return "Mastercard"
    if d[:2] in ("34", "37") and n == 15:
        return "American Express"
    if "3528" <= d[:4] <= "3589" and 16 <= n <= 19:
        return "JCB"
    if (d[:4] == "6011" or d[:2] == "65" or "644" <= d[:3] <= "649") and 16 <= n <= 19:
        return "Discover"
    if d[:2] in ("36", "38", "30") and 14 <= n <= 16:
        return "Diners Club"
    if (d[:2] == "50" or "56" <= d[:2] <= "69") and 16 <= n <= 19:
        return "Maestro"
    return None


@lru_cache(maxsize=8192)
def _phone(digits: str, plus: bool, regions: tuple[str, ...]) -> tuple[str, str, bool] | None:
    """(E.164, kind, read with the '+') if `digits` is a valid phone number."""
    if plus:
        try:
            num = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            num = None
        if num is not None and phonenumbers.is_valid_number(num):
            e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
            region = phonenumbers.region_code_for_number(num) or "international"
            return e164, f"{region} number", True
    m = _CN_MOBILE.fullmatch(digits)
    if m is not None:
        mobile = m.group(1)
        if phonenumbers.is_valid_number(phonenumbers.parse(mobile, "CN")):
            return "+86" + mobile, "CN mobile", False
        return "+86" + mobile, "CN mobile shape (range not in phonenumbers metadata)", False
    for region in regions:
        if region == "CN":
            if _CN_LANDLINE.fullmatch(digits):
                num = phonenumbers.parse(digits, "CN")
                kind = phonenumbers.number_type(num)
                if phonenumbers.is_valid_number(num) and kind in (
                    phonenumbers.PhoneNumberType.FIXED_LINE,
                    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
                ):
                    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
                    return e164, "CN landline", False
            continue
        try:
            num = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(num) and phonenumbers.region_code_for_number(num) == region:
            e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
            return e164, f"{region} number", False
    return None


_CN_FIRST: Final = ("CN", "US", "GB")
_CN_ONLY: Final = ("CN",)
_EN_FIRST: Final = ("US", "GB", "CN")
_CJK: Final = re.compile("[\u3400-\u9fff]")
_LATIN: Final = re.compile("[A-Za-z]")


def _regions(norm: Normalised, start: int, end: int) -> tuple[str, ...]:
    """Regions to read a national number in: CN first unless the words around it are English.

    Decided from 40 characters either side (not past a NUL, which separates batched texts).
    """
    langs = norm.languages
    text = norm.text
    if "zh" in langs and "en" in langs:
        # in a batch (texts joined by NUL) the languages are the whole batch's: take this
        # text's own, as a scan of it alone would (explicit languages are never both)
        seg_lo = text.rfind("\x00", 0, start) + 1
        seg_hi = text.find("\x00", end)
        seg_hi = len(text) if seg_hi < 0 else seg_hi
        if seg_lo > 0 or seg_hi < len(text):
            langs = detect_languages(text[seg_lo:seg_hi])
    if "zh" not in langs:
        return _EN_FIRST if "en" in langs else ("CN",)
    if "en" not in langs:
        return ("CN",)
    lo = max(start - 40, text.rfind("\x00", max(0, start - 40), start) + 1)
    hi = text.find("\x00", end, end + 40)
    hi = end + 40 if hi < 0 else hi
    if _CJK.search(text, lo, hi) is None and _LATIN.search(text, lo, hi) is not None:
        return _EN_FIRST
    return _CN_FIRST


class NumberRecognizer:
    """Phones, resident identity numbers and bank cards from one classification of digit runs."""

    name = "numbers"
    batch_safe = True
    triggers = (DIGITS,)
    anchors = ((DIGITS, "0-9", "[0-9]{5}"),)  # a run of seven digits or more
    categories = frozenset({"phone", "id_number", "bank_card"})
    languages: frozenset[str] = frozenset()

    def __init__(self, *, minor_below: int) -> None:
        self.minor_below = minor_below

    def find(self, norm: Normalised, original: str) -> list[Finding]:
        """Classify each digit run; runs merged from separate numbers are split where they met."""
        out: list[Finding] = []
        runs = norm.matches(NUMBER_RUNS)
        if not runs:
            return out
        for m in runs:
            if m.lastgroup != "digits":
                continue
            start, end = m.span()
            # (a run shorter than seven digits, and every part of it, is no number of interest)
            regions = _regions(norm, start, end) if end - start >= 7 else _CN_ONLY
            f = self._classify(norm, start, end, regions)
            if f is not None:
                out.append(f)
                continue
            cuts = norm.boundaries(start, end)
            if cuts:
                out.extend(self._split(norm, [start, *cuts, end], regions))
        return out

    def _split(
        self, norm: Normalised, points: list[int], regions: tuple[str, ...]
    ) -> Iterator[Finding]:
        """Greedy left-to-right: the longest group sequence that classifies, then move on."""
        i, n = 0, len(points) - 1
        while i < n:
            for j in range(n, i, -1):
                if (i, j) == (0, n):
                    continue
                f = self._classify(norm, points[i], points[j], regions)
                if f is not None:
                    yield f
                    i = j
                    break
            else:
                i += 1

    def _classify(
        self, norm: Normalised, start: int, end: int, regions: tuple[str, ...]
    ) -> Finding | None:
        text = norm.text
        d = text[start:end]
        n = len(d)
        if n < 7:
            return None
        if n in (15, 18):
            f = self._id_number(norm, start, end, d)
            if f is not None:
                return f
        if not d.isdigit():
            return None
        if 15 <= n <= 19 and luhn_ok(d):
            issuer = _card_issuer(d)
            if issuer is not None:
                ctx = context(norm, CARD_CONTEXT, start, 12)
                conf = 0.95 if ctx else 0.85
                why = f"{issuer} card number (Luhn ok)" + (f", context {ctx!r}" if ctx else "")
                return finding(norm, start, end, "bank_card", d, conf, self.name, why)
        if 10 <= n <= 15 or (n in (7, 8) and start > 0 and text[start - 1] == "+"):
            phone = _phone(d, start > 0 and text[start - 1] == "+", regions)
            if phone is None:
                return None
            e164, kind, plus = phone
            ctx = context(norm, PHONE_CONTEXT, start, 12)
            if not plus and not ctx and context(norm, NOT_A_PHONE, start, 10):
                return None
            if kind == "CN mobile" or plus:
                conf = 0.97 if ctx else 0.9
            elif kind.startswith("CN mobile"):
                conf = 0.8 if ctx else 0.6
            elif kind == "CN landline":
                conf = 0.9 if ctx else 0.75
            else:
                if not ctx:
                    return None  # a bare national number in English text: too many false hits
                conf = 0.85
            s = start - 1 if plus else start
            if s > 0 and text[s - 1] == "(":  # "(010)12345678", "(415) 555-2671"
                o_start, o_end = norm.to_original(s, end)
                if ")" in norm.original[o_start:o_end] or "）" in norm.original[o_start:o_end]:
                    s -= 1
            why = kind + (f", context {ctx!r}" if ctx else "")
            return finding(norm, s, end, "phone", e164, conf, self.name, why)
        return None

    def _id_number(self, norm: Normalised, start: int, end: int, d: str) -> Finding | None:
        if not is_valid(d, today=norm.today):
            return None
        rid = validate(d, today=norm.today)
        ctx = context(norm, ID_CONTEXT, start, 12)
        conf = (0.85 if ctx else 0.6) if rid.legacy else 0.99
        signal = birth_signal(rid.birth_date, norm.today, self.minor_below, "identity number")
        why = (
            f"resident identity number ({'15-digit legacy, ' if rid.legacy else ''}"
            f"check ok, region {rid.region})" + (f", context {ctx!r}" if ctx else "")
        )
        return finding(norm, start, end, "id_number", rid.number, conf, self.name, why, signal)


IP_CONTEXT: Final = re.compile(r"IP|地址|服务器|server|address|host", re.IGNORECASE)
_IPV6_SEED: Final = re.compile(r"[0-9A-Fa-f:]:[0-9A-Fa-f:]")
_IPV6_CHARS: Final = frozenset("0123456789abcdefABCDEF:.")


def _ipv6_candidates(text: str) -> Iterator[tuple[int, int]]:
    """Spans of hex-and-colon tokens around each 'x:y' seed (validated by the caller)."""
    end = 0
    for m in _IPV6_SEED.finditer(text):
        if m.start() < end:
            continue
        start = m.start()
        while start > 0 and text[start - 1] in _IPV6_CHARS:
            start -= 1
        end = m.end()
        while end < len(text) and text[end] in _IPV6_CHARS:
            end += 1
        if (start > 0 and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum()):
            continue
        yield start, end


class IpAddressRecognizer:
    """IPv4 (octets ≤ 255) and IPv6 (validated by `ipaddress`) addresses."""

    name = "ip_address"
    batch_safe = True
    triggers = (DIGITS, ".:")
    # a dotted quad; IPv6 only where the text has '::' or seven colons (as find)
    anchors = (
        (DIGITS, ".", r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]"),
        (":", ":", ""),
        (":", "", "(?:[^:]*+:){6}"),
    )
    categories = frozenset({"ip_address"})
    languages: frozenset[str] = frozenset()

    def find(self, norm: Normalised, original: str) -> Iterable[Finding]:
        """IPv4 from the shared digit pass; IPv6 only when the text has '::' or seven colons."""
        text = norm.text
        out: list[Finding] = []
        for m in norm.matches(NUMBER_RUNS):
            if m.lastgroup != "ip":
                continue
            start, end = m.span()
            if start > 0 and text[start - 1] in "vV":  # a version: v1.2.3.4
                continue
            ip = m.group()
            octets = ip.split(".")
            if octets[0] == "0" or any(int(o) > 255 or (o[0] == "0" and o != "0") for o in octets):
                continue
            ctx = context(norm, IP_CONTEXT, start, 12)
            conf = 0.95 if ctx else 0.8
            why = "IPv4 address" + (f", context {ctx!r}" if ctx else "")
            out.append(finding(norm, start, end, "ip_address", ip, conf, self.name, why))
        if "::" in text or text.count(":") >= 7:
            for start, end in _ipv6_candidates(text):
                token = text[start:end]
                if token.count(":") < 2:
                    continue
                try:
                    addr = ipaddress.IPv6Address(token)
                except ValueError:
                    continue
                why = "IPv6 address"
                out.append(
                    finding(norm, start, end, "ip_address", addr.compressed, 0.9, self.name, why)
                )
        return out
