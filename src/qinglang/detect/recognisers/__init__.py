"""The built-in fast-path recognisers: patterns, checksums and context words, no model.

Each is a small class behind the `qinglang.detect.Recognizer` protocol; `builtin_recognisers`
returns one of each, in the order a registry runs them.
"""

from __future__ import annotations

from qinglang.detect.recognisers.contact import EmailRecognizer, QqRecognizer, WechatRecognizer
from qinglang.detect.recognisers.documents import (
    LicencePlateRecognizer,
    PassportRecognizer,
    TravelPermitRecognizer,
)
from qinglang.detect.recognisers.location import AddressRecognizer, GpsRecognizer
from qinglang.detect.recognisers.minors import (
    AgeRecognizer,
    BirthdayRecognizer,
    GradeClassRecognizer,
    SchoolRecognizer,
)
from qinglang.detect.recognisers.numbers import (
    IpAddressRecognizer,
    NumberRecognizer,
    luhn_ok,
)
from qinglang.detect.registry import Recognizer

__all__ = [
    "AddressRecognizer",
    "AgeRecognizer",
    "BirthdayRecognizer",
    "EmailRecognizer",
    "GpsRecognizer",
    "GradeClassRecognizer",
    "IpAddressRecognizer",
    "LicencePlateRecognizer",
    "NumberRecognizer",
    "PassportRecognizer",
    "QqRecognizer",
    "SchoolRecognizer",
    "TravelPermitRecognizer",
    "WechatRecognizer",
    "builtin_recognisers",
    "luhn_ok",
]


def builtin_recognisers(*, minor_below: int) -> list[Recognizer]:
    """One instance of each built-in recogniser; `minor_below` is the age of majority."""
    return [
        NumberRecognizer(minor_below=minor_below),
        IpAddressRecognizer(),
        EmailRecognizer(),
        QqRecognizer(),
        WechatRecognizer(),
        PassportRecognizer(),
        TravelPermitRecognizer(),
        LicencePlateRecognizer(),
        GpsRecognizer(),
        AgeRecognizer(minor_below=minor_below),
        BirthdayRecognizer(minor_below=minor_below),
        GradeClassRecognizer(),
        SchoolRecognizer(),
        AddressRecognizer(),
    ]
