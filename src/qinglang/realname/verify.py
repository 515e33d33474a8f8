"""Pluggable real-name verification: one interface, the national system or a platform's own KYC.

A `RealNameVerifier` takes a `VerifyRequest` (account reference, name, identity number) and
answers a `VerifyResult` with the same three statuses as the national system (verified, pending,
failed). `NppaVerifier` is the national system through `NppaClient`: `verify` submits a check
without waiting and `status` re-queries a pending one. `CallableVerifier` wraps any function, which
is how a platform plugs in its own provider (bank card, carrier, face match) with the same result
type. Verifiers are looked up by name in a small process-wide registry.

Errors are not results: a verifier raises (`InvalidInput`, `RealNameError`, transport errors)
when it could not get an answer; `CheckStatus.FAILED` means the provider answered that the name
and number do not match.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from qinglang.realname.client import NppaClient
from qinglang.realname.protocol import CheckResult, CheckStatus

__all__ = [
    "CallableVerifier",
    "CheckStatus",
    "NppaVerifier",
    "RealNameVerifier",
    "VerifyRequest",
    "VerifyResult",
    "get_verifier",
    "register_verifier",
    "registered_verifiers",
    "unregister_verifier",
]


@dataclass(frozen=True)
class VerifyRequest:
    """A verification request: the account reference (`ai`), the name and identity number."""

    ai: str
    name: str
    id_number: str


@dataclass(frozen=True)
class VerifyResult:
    """A provider's answer: status, player id if verified, provider, its reference, detail."""

    status: CheckStatus
    pi: str | None
    provider: str
    reference: str | None = None
    detail: str | None = None

    @property
    def verified(self) -> bool:
        """Whether the identity was verified."""
        return self.status is CheckStatus.OK

    @property
    def pending(self) -> bool:
        """Whether the provider has not decided yet (ask again with `status`)."""
        return self.status is CheckStatus.PENDING


@runtime_checkable
class RealNameVerifier(Protocol):
    """A real-name verification provider."""

    name: str

    def verify(self, request: VerifyRequest) -> VerifyResult:
        """Submit a verification; a PENDING result is re-queried with `status`."""
        ...

    def status(self, account_ref: str) -> VerifyResult:
        """The current result of an earlier verification of `account_ref`."""
        ...


class NppaVerifier:
    """The national real-name system as a verifier: verify = check (no wait), status = query."""

    def __init__(self, client: NppaClient, name: str = "nppa") -> None:
        self.client = client
        self.name = name

    def _result(self, ai: str, result: CheckResult) -> VerifyResult:
        """The VerifyResult of a CheckResult for account `ai`."""
        return VerifyResult(result.status, result.pi, self.name, ai, None)

    def verify(self, request: VerifyRequest) -> VerifyResult:
        """Submit an identity check and return its first answer (possibly PENDING)."""
        result = self.client.check(request.ai, request.name, request.id_number)
        return self._result(request.ai, result)

    def status(self, account_ref: str) -> VerifyResult:
        """Query the result of the check submitted for account `account_ref` (the `ai`)."""
        return self._result(account_ref, self.client.query(account_ref))


class CallableVerifier:
    """A verifier made of functions, e.g. a platform's own KYC provider.

    `verify_fn` answers a request; `status_fn` (optional) answers a re-query for a reference.
    The results' `provider` is set to this verifier's name. Without `status_fn`, `status`
    raises NotImplementedError (a provider that always decides at once never returns PENDING).
    """

    def __init__(
        self,
        name: str,
        verify_fn: Callable[[VerifyRequest], VerifyResult],
        status_fn: Callable[[str], VerifyResult] | None = None,
    ) -> None:
        self.name = name
        self._verify_fn = verify_fn
        self._status_fn = status_fn

    def verify(self, request: VerifyRequest) -> VerifyResult:
        """Call `verify_fn` and stamp the result with this provider's name."""
        return dataclasses.replace(self._verify_fn(request), provider=self.name)

    def status(self, account_ref: str) -> VerifyResult:
        """Call `status_fn` and stamp the result; NotImplementedError if there is none."""
        if self._status_fn is None:
            raise NotImplementedError(f"verifier {self.name!r} has no status query")
        return dataclasses.replace(self._status_fn(account_ref), provider=self.name)


_REGISTRY: dict[str, RealNameVerifier] = {}
_REGISTRY_LOCK = threading.Lock()


def register_verifier(verifier: RealNameVerifier, *, replace: bool = False) -> None:
    """Register `verifier` under its name; ValueError if taken (unless `replace`)."""
    if not isinstance(verifier, RealNameVerifier):
        raise TypeError(f"{verifier!r} does not implement RealNameVerifier")
    if not isinstance(verifier.name, str) or not verifier.name:
        raise ValueError("a verifier needs a non-empty name")
    with _REGISTRY_LOCK:
        if verifier.name in _REGISTRY and not replace:
            raise ValueError(f"a verifier named {verifier.name!r} is already registered")
        _REGISTRY[verifier.name] = verifier


def unregister_verifier(name: str) -> None:
    """Remove the verifier registered under `name` (no error if there is none)."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop(name, None)


def get_verifier(name: str) -> RealNameVerifier:
    """The verifier registered under `name`; KeyError listing the known names if none."""
    with _REGISTRY_LOCK:
        try:
            return _REGISTRY[name]
        except KeyError:
            raise KeyError(
                f"no real-name verifier named {name!r}; registered: {sorted(_REGISTRY)}"
            ) from None


def registered_verifiers() -> list[str]:
    """The names of the registered verifiers, sorted."""
    with _REGISTRY_LOCK:
        return sorted(_REGISTRY)
