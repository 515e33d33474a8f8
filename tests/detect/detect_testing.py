"""Test helpers for qinglang.detect: valid identity numbers and card numbers to plant in text."""

from __future__ import annotations

from datetime import date

from qinglang.detect.recognisers import luhn_ok

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_id(birth: date, region: str = "110105", seq: str = "001") -> str:
    """A resident identity number with a correct MOD 11-2 check character."""
    head = f"{region}{birth:%Y%m%d}{seq}"
    return head + "10X98765432"[sum(int(c) * w for c, w in zip(head, WEIGHTS, strict=True)) % 11]


def luhn_complete(prefix: str) -> str:
    """`prefix` plus the Luhn check digit."""
    for d in "0123456789":
        if luhn_ok(prefix + d):
            return prefix + d
    raise AssertionError(prefix)  # pragma: no cover
