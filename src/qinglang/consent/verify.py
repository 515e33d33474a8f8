"""Guardian verification: how a platform proved that a person is the child's guardian.

A `Verifier` takes a `VerificationRequest` and returns a `VerificationResult` with minimised
evidence (which checks passed, a reference; never the raw identity number). Verifiers are
registered per method name; the pack lists the method names a platform may use
(`consent.guardian_verification_methods`). The built-in `id_number_realname` checks the
guardian's resident identity number (checksum, region, birth date) and adulthood; the other
built-in methods record an attestation the platform made (a payment, a signed form, a video
call) by its reference. A platform's own KYC provider plugs in with `register_verifier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from qinglang.age import InvalidIdentityNumber, age_at, validate
from qinglang.policy import Policy


@dataclass(frozen=True, slots=True)
class VerificationRequest:
    """What a verifier gets: the method, the guardian's claims, the instant and the pack."""

    method: str
    claims: Mapping[str, Any]
    at: datetime
    policy: Policy


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The outcome: verified or not, why, and minimised evidence to keep."""

    verified: bool
    method: str
    reason: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)


class Verifier(Protocol):
    """Anything that can verify a guardian for one method."""

    def verify(self, request: VerificationRequest) -> VerificationResult:
        """Check the claims and say whether the guardian is verified."""
        ...


class VerificationError(ValueError):
    """The method is unknown or not allowed by the pack; `field` names the request field."""

    def __init__(self, message: str, field: str = "method") -> None:
        super().__init__(message)
        self.field = field


class IdNumberVerifier:
    """The guardian's resident identity number is valid and shows an adult."""

    def verify(self, request: VerificationRequest) -> VerificationResult:
        """Validate `claims["id_number"]` and check the holder is of age at `request.at`."""
        number = str(request.claims.get("id_number", "")).strip()
        method = request.method
        if not number:
            return VerificationResult(False, method, "claims.id_number is required")
        try:
            ric = validate(number)
        except InvalidIdentityNumber as exc:
            return VerificationResult(False, method, f"identity number invalid: {exc}")
        adult = request.policy.require("age.minor_below").value
        age = age_at(ric.birth_date, request.at, request.policy.tz)
        if not isinstance(adult, int) or age < adult:
            return VerificationResult(
                False, method, f"the guardian must be an adult (age {age} < {adult})"
            )
        return VerificationResult(
            True,
            method,
            evidence={"checks": ["checksum", "region", "birth_date", "adult"], "age": age},
        )


class AttestationVerifier:
    """The platform attests that it performed the check (payment, form, call) by reference."""

    def verify(self, request: VerificationRequest) -> VerificationResult:
        """Accept when `claims["reference"]` names the platform's record of the check."""
        ref = str(request.claims.get("reference", "")).strip()
        if not ref:
            return VerificationResult(False, request.method, "claims.reference is required")
        return VerificationResult(
            True, request.method, evidence={"checks": ["attested"], "reference": ref[:200]}
        )


_VERIFIERS: dict[str, Verifier] = {
    "id_number_realname": IdNumberVerifier(),
    "small_payment": AttestationVerifier(),
    "signed_form": AttestationVerifier(),
    "video_call": AttestationVerifier(),
}


def register_verifier(method: str, verifier: Verifier) -> None:
    """Add or replace the verifier of a method (the pack must also allow the method name)."""
    _VERIFIERS[method] = verifier


def verify_guardian(
    method: str, claims: Mapping[str, Any], at: datetime, policy: Policy
) -> VerificationResult:
    """Run the verifier of `method` if the pack allows it; VerificationError otherwise."""
    allowed = policy.require("consent.guardian_verification_methods").value
    allowed_list = allowed if isinstance(allowed, list) else []
    if method not in allowed_list or method not in _VERIFIERS:
        raise VerificationError(
            f"method {method!r} is not allowed; expected one of {', '.join(allowed_list)}"
        )
    return _VERIFIERS[method].verify(VerificationRequest(method, claims, at, policy))
