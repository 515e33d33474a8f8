"""Wire protocol of the national anti-addiction real-name system (网络游戏防沉迷实名认证系统).

Pure functions and types shared by the client and the emulator: the AES-128-GCM body
(`{"data": base64(iv12 || ciphertext || tag16)}` under the app secret), the SHA-256 request
signature, the request and response shapes, and the error table from `data/nppa.toml`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from importlib import resources
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

IV_BYTES = 12
TAG_BYTES = 16
SIGNED_HEADERS = ("appId", "bizId", "timestamps")


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: its method, production and test paths, and the QPS the system allows."""

    name: str
    method: str
    path: str
    test_path: str
    qps: int

    def url_path(self, test_code: str | None = None) -> str:
        """The path to call: the test-system path with its code, or the production path."""
        return self.test_path.format(code=test_code) if test_code is not None else self.path


@dataclass(frozen=True)
class ErrorInfo:
    """One error code of the protocol with its meaning, retryability and source status."""

    code: int
    errmsg: str
    zh: str
    en: str
    retryable: bool = False
    verified: bool = True


@dataclass(frozen=True)
class Protocol:
    """The protocol's published facts, loaded from `data/nppa.toml`."""

    timestamp_validity_ms: int
    max_batch: int
    ai_length: int
    si_length: int
    di_length: int
    pi_length: int
    endpoints: Mapping[str, Endpoint]
    errors: tuple[ErrorInfo, ...]
    by_code: Mapping[int, ErrorInfo] = field(repr=False)
    by_msg: Mapping[str, ErrorInfo] = field(repr=False)

    def error(self, name: str) -> ErrorInfo:
        """The error whose errmsg is `name` (e.g. "SYS REQ BUSY ERROR")."""
        return self.by_msg[name]


@lru_cache(maxsize=1)
def load_protocol() -> Protocol:
    """The protocol description shipped with qinglang."""
    raw = tomllib.loads(
        resources.files("qinglang.realname").joinpath("data/nppa.toml").read_text("utf-8")
    )
    p = raw["protocol"]
    endpoints = {
        name: Endpoint(name, e["method"], e["path"], e["test_path"], int(e["qps"]))
        for name, e in raw["endpoints"].items()
    }
    errors = tuple(
        ErrorInfo(
            int(e["code"]),
            e["errmsg"],
            e["zh"],
            e["en"],
            bool(e.get("retryable", False)),
            bool(e.get("verified", True)),
        )
        for e in raw["errors"]
    )
    return Protocol(
        timestamp_validity_ms=int(p["timestamp_validity_ms"]),
        max_batch=int(p["max_batch"]),
        ai_length=int(p["ai_length"]),
        si_length=int(p["si_length"]),
        di_length=int(p["di_length"]),
        pi_length=int(p["pi_length"]),
        endpoints=endpoints,
        errors=errors,
        by_code={e.code: e for e in errors},
        by_msg={e.errmsg: e for e in errors},
    )


# ------------------------------------------------------------------------------- errors


class BadSecret(ValueError):
    """The app secret is not 32 hexadecimal characters (a 128-bit AES key)."""


class BadCiphertext(ValueError):
    """A body that does not decrypt under the secret: bad base64, too short, or a bad tag."""


class RealNameError(Exception):
    """An error answer of the real-name system (or its emulator), with its meaning."""

    def __init__(self, code: int, errmsg: str, info: ErrorInfo | None = None) -> None:
        self.code = code
        self.errmsg = errmsg
        self.info = info
        meaning = f": {info.en} / {info.zh}" if info else ""
        super().__init__(f"{code} {errmsg}{meaning}")

    @property
    def retryable(self) -> bool:
        """Whether the protocol allows sending the same request again (re-signed)."""
        return self.info.retryable if self.info else False


class ServerError(RealNameError):
    """1001: the system failed; retryable."""


class NotFoundError(RealNameError):
    """1002/1003: no such resource or wrong method."""


class HeaderMissing(RealNameError):
    """1004: appId, bizId, timestamps or sign missing."""


class IpRejected(RealNameError):
    """1005: the caller's IP address is not registered."""


class RateLimited(RealNameError):
    """1006: over the endpoint's QPS; retryable after a pause."""


class RequestExpired(RealNameError):
    """1007: the timestamp is older (or newer) than the validity window; re-sign and retry."""


class PartnerRejected(RealNameError):
    """1008/1009/1010: unknown appId, access disabled, or no access to this endpoint."""


class SignatureRejected(RealNameError):
    """1011: wrong secret or signature."""


class BodyRejected(RealNameError):
    """1012/1020: body not decryptable, not JSON, a required field missing, or wrong type."""


class IdentityRejected(RealNameError):
    """BUS AUTH …: identity number illegal, quota reached, unknown ai, or ai reused."""


class CollectionRejected(RealNameError):
    """BUS COLL …: the behaviour upload (or some of its items) was rejected."""


class TestSystemError(RealNameError):
    """4001-4003: the official test system's own errors (test codes)."""

    __test__ = False  # not a pytest test class


_CLASS_BY_CODE: dict[int, type[RealNameError]] = {
    1001: ServerError,
    1002: NotFoundError,
    1003: NotFoundError,
    1004: HeaderMissing,
    1005: IpRejected,
    1006: RateLimited,
    1007: RequestExpired,
    1008: PartnerRejected,
    1009: PartnerRejected,
    1010: PartnerRejected,
    1011: SignatureRejected,
    1012: BodyRejected,
    1019: PartnerRejected,
    1020: BodyRejected,
    4001: TestSystemError,
    4002: TestSystemError,
    4003: TestSystemError,
}


def error_for(code: int, errmsg: str) -> RealNameError:
    """The typed error for an answer: system errors by number, business errors by errmsg."""
    proto = load_protocol()
    info = proto.by_msg.get(errmsg)
    if errmsg.startswith("BUS AUTH"):
        return IdentityRejected(code, errmsg, info)
    if errmsg.startswith("BUS COLL"):
        return CollectionRejected(code, errmsg, info)
    if info is None:
        info = proto.by_code.get(code)
    cls = _CLASS_BY_CODE.get(code, RealNameError)
    return cls(code, errmsg, info)


# ------------------------------------------------------------------------------- crypto


def key_bytes(secret: str) -> bytes:
    """The AES-128 key of an app secret given as 32 hexadecimal characters."""
    try:
        key = bytes.fromhex(secret)
    except ValueError:
        raise BadSecret("the app secret must be hexadecimal") from None
    if len(key) != 16:
        raise BadSecret(f"the app secret must be 32 hex characters (128 bits), got {len(secret)}")
    return key


def encrypt(secret: str, plaintext: bytes, iv: bytes | None = None) -> str:
    """base64(iv || ciphertext || tag) of `plaintext` under the app secret (fresh IV if none)."""
    if iv is None:
        iv = os.urandom(IV_BYTES)
    if len(iv) != IV_BYTES:
        raise ValueError(f"the IV must be {IV_BYTES} bytes")
    sealed = AESGCM(key_bytes(secret)).encrypt(iv, plaintext, None)
    return base64.b64encode(iv + sealed).decode("ascii")


def decrypt(secret: str, data: str) -> bytes:
    """The plaintext of a base64(iv || ciphertext || tag) string; BadCiphertext if it fails."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadCiphertext("data is not base64") from None
    if len(raw) < IV_BYTES + TAG_BYTES:
        raise BadCiphertext("data is shorter than IV and tag")
    try:
        return AESGCM(key_bytes(secret)).decrypt(raw[:IV_BYTES], raw[IV_BYTES:], None)
    except InvalidTag:
        raise BadCiphertext("authentication tag does not match (wrong secret?)") from None


def encrypt_body(secret: str, payload: Mapping[str, Any], iv: bytes | None = None) -> str:
    """The raw request body for `payload`: `{"data": "<base64>"}` (compact JSON)."""
    plain = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return json.dumps({"data": encrypt(secret, plain, iv)}, separators=(",", ":"))


def decrypt_body(secret: str, body: str | bytes) -> dict[str, Any]:
    """The payload of a request body; BadCiphertext or ValueError naming what is wrong."""
    try:
        outer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("body is not JSON") from None
    if not isinstance(outer, dict) or not isinstance(outer.get("data"), str):
        raise ValueError('body must be {"data": "<base64>"}')
    plain = decrypt(secret, outer["data"])
    try:
        inner = json.loads(plain)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("decrypted data is not JSON") from None
    if not isinstance(inner, dict):
        raise ValueError("decrypted data must be a JSON object")
    return inner


def signing_string(secret: str, params: Mapping[str, str], body: str) -> str:
    """secret + key/value pairs (signed headers and query) sorted by key + raw body."""
    return secret + "".join(k + params[k] for k in sorted(params)) + body


def sign(secret: str, params: Mapping[str, str], body: str) -> str:
    """The `sign` header: SHA-256 hex of the signing string."""
    return hashlib.sha256(signing_string(secret, params, body).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------- messages


class CheckStatus(IntEnum):
    """Result of an identity check: 0 verified, 1 in progress (query later), 2 failed."""

    OK = 0
    PENDING = 1
    FAILED = 2


class BehaviourType(IntEnum):
    """`bt`: 0 logout (下线), 1 login (上线)."""

    LOGOUT = 0
    LOGIN = 1


class PlayerType(IntEnum):
    """`ct`: 0 a verified player (needs `pi`), 2 a guest (needs `di`)."""

    VERIFIED = 0
    GUEST = 2


@dataclass(frozen=True)
class CheckResult:
    """The answer to a check or query: status and, when verified, the player identifier."""

    status: CheckStatus
    pi: str | None = None


@dataclass(frozen=True)
class Behaviour:
    """One login/logout item of `collections[]`; `no` is set per batch (1..128) when sent."""

    si: str
    bt: BehaviourType
    ot: int
    ct: PlayerType
    di: str | None = None
    pi: str | None = None

    def wire(self, no: int) -> dict[str, Any]:
        """The item as sent, numbered `no` within its batch."""
        out: dict[str, Any] = {"no": no, "si": self.si, "bt": int(self.bt), "ot": self.ot}
        out["ct"] = int(self.ct)
        if self.di is not None:
            out["di"] = self.di
        if self.pi is not None:
            out["pi"] = self.pi
        return out


@dataclass(frozen=True)
class ItemResult:
    """A per-item error of a behaviour upload (`data.results[]`)."""

    no: int
    errcode: int
    errmsg: str


def response(errcode: int, errmsg: str, data: Mapping[str, Any] | None = None) -> bytes:
    """A response body as the system writes it: `{errcode, errmsg[, data]}`."""
    out: dict[str, Any] = {"errcode": errcode, "errmsg": errmsg}
    if data is not None:
        out["data"] = data
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_response(name: str) -> bytes:
    """The response body of the error whose errmsg is `name`."""
    info = load_protocol().error(name)
    return response(info.code, info.errmsg)


def parse_response(body: bytes) -> tuple[int, str, dict[str, Any]]:
    """(errcode, errmsg, data) of a response body; ValueError if it is not one."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("response is not JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("errcode"), int):
        raise ValueError("response has no integer errcode")
    data = obj.get("data") or {}
    if not isinstance(data, dict):
        raise ValueError("response data is not an object")
    return obj["errcode"], str(obj.get("errmsg", "")), data


def check_result(data: Mapping[str, Any]) -> CheckResult:
    """The CheckResult in a check or query answer's `data`; ValueError if malformed."""
    result = data.get("result")
    if not isinstance(result, dict) or result.get("status") not in (0, 1, 2):
        raise ValueError("answer has no data.result.status in 0, 1, 2")
    pi = result.get("pi")
    return CheckResult(CheckStatus(result["status"]), pi if isinstance(pi, str) and pi else None)


def item_results(data: Mapping[str, Any]) -> list[ItemResult]:
    """The per-item errors of a behaviour upload answer (empty when all were accepted)."""
    out = []
    for r in data.get("results") or []:
        if isinstance(r, dict) and isinstance(r.get("no"), int):
            out.append(ItemResult(r["no"], int(r.get("errcode", 0)), str(r.get("errmsg", ""))))
    return out
