"""Guardian verifiers: identity number and adulthood, attestations, pluggable methods."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from qinglang.consent import verify
from qinglang.consent.verify import (
    VerificationError,
    VerificationRequest,
    VerificationResult,
    register_verifier,
    verify_guardian,
)
from qinglang.policy import load_pack, parse_overlay

POLICY = load_pack("cn")
AT = datetime(2026, 11, 28, 4, tzinfo=UTC)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def ric(birth: date) -> str:
    head = f"110101{birth:%Y%m%d}123"
    return head + "10X98765432"[sum(int(d) * w for d, w in zip(head, WEIGHTS, strict=True)) % 11]


def test_identity_number_of_an_adult_verifies_with_minimised_evidence() -> None:
    r = verify_guardian("id_number_realname", {"id_number": ric(date(1985, 5, 17))}, AT, POLICY)
    assert r.verified and r.evidence["age"] == 41
    assert ric(date(1985, 5, 17)) not in repr(r)  # the number itself is not kept


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (ric(date(2008, 11, 29)), "must be an adult"),  # 17, turns 18 tomorrow
        (ric(date(1985, 5, 17))[:-1] + "0", "invalid"),
        ("", "required"),
    ],
)
def test_identity_number_failures(number: str, reason: str) -> None:
    r = verify_guardian("id_number_realname", {"id_number": number}, AT, POLICY)
    assert not r.verified and reason in r.reason


def test_eighteenth_birthday_is_adult() -> None:
    assert verify_guardian(
        "id_number_realname", {"id_number": ric(date(2008, 11, 28))}, AT, POLICY
    ).verified


def test_methods_come_from_the_pack_and_overlays_narrow_them() -> None:
    with pytest.raises(VerificationError):
        verify_guardian("telepathy", {}, AT, POLICY)
    overlay = parse_overlay(
        '[pack]\nid = "strict"\nversion = "1"\njurisdiction = "cn"\ntimezone = "Asia/Shanghai"\n'
        'title_zh = "严"\ntitle_en = "Strict"\nbase = "cn"\n\n[[overrides]]\n'
        'id = "cn.consent.verification_methods"\nvalue = ["id_number_realname"]\n'
    )
    strict = POLICY.tightened(overlay)
    with pytest.raises(VerificationError, match="id_number_realname"):
        verify_guardian("small_payment", {"reference": "x"}, AT, strict)


class KycProvider:
    def verify(self, request: VerificationRequest) -> VerificationResult:
        ok = request.claims.get("kyc_token") == "good"
        return VerificationResult(
            ok, request.method, "" if ok else "rejected by KYC", {"provider": "acme"}
        )


@pytest.fixture
def kyc() -> Iterator[None]:
    saved = dict(verify._VERIFIERS)
    register_verifier("signed_form", KycProvider())
    yield
    verify._VERIFIERS.clear()
    verify._VERIFIERS.update(saved)


def test_a_platform_verifier_plugs_in(kyc: None) -> None:
    assert verify_guardian("signed_form", {"kyc_token": "good"}, AT, POLICY).evidence == {
        "provider": "acme"
    }
    assert not verify_guardian("signed_form", {"kyc_token": "bad"}, AT, POLICY).verified
