"""An emulator of the national anti-addiction real-name system (网络游戏防沉迷实名认证系统).

It serves the wire protocol of `qinglang.realname.protocol` (AES-128-GCM bodies, SHA-256
signatures, the error table of `data/nppa.toml`) as an ASGI app, so that tests and local
development never call the real system. Emulator-only behaviour, documented here once:

HTTP status
    Every protocol answer, errors included, is HTTP 200 with a JSON body
    `{"errcode", "errmsg"[, "data"]}`, as the real system answers.

Order of the checks (the first failing check answers)
    1002 unknown path; 1003 wrong method; 1004 a missing (or empty) `appId`, `bizId`,
    `timestamps` or `sign` header; 1008 unknown appId; 1010 wrong bizId; 1007 `timestamps`
    not an integer or more than `timestamp_validity_ms` away from the emulator's clock (either
    way); 1011 signature mismatch (SHA-256 of secret + the signed headers and every query
    parameter sorted by key + the raw body); 1006 over the endpoint's QPS (a sliding one-second
    window per appId and endpoint; rejected requests do not count; the test paths share their
    endpoint's window); 1012 a body that is not JSON, has no `data`, does not decrypt under the
    secret, does not decrypt to a JSON object, or lacks a field or has one of the wrong type
    (for the query: `ai` missing or not 32 characters). The Content-Type is not checked.
    Then the business logic (below).

Identity check (`POST /idcard/authentication/check`, fields `ai` 32 characters, `name`, `idNum`)
    An `idNum` that is not an 18-character number passing `qinglang.age.validate` (checksum,
    date, region) → BUS AUTH IDNUM ILLEGAL. An `ai` already used for another identity (another
    number or name) → BUS AUTH CODE ALREADY IN USE. Otherwise the `ai` is bound to the identity
    and the answer is `data.result.status`: the registry's outcome (`ok` 0 with `pi`, `failed`
    2, `pending` 1); a valid number not in the registry, or in it under another name → 2.

Query (`GET /idcard/authentication/query?ai=`)
    An `ai` never checked → BUS AUTH CODE NO AUTH RECODE. Otherwise the bound identity's
    status. A pending identity answers 1 to the check and to its first `pending_queries - 1`
    queries, then 0 with its `pi` from query number `pending_queries` on (so the default
    `pending_queries=1` means: pending at the check, verified at the first query). Checking the
    same `ai` again answers the identity's current status without changing it.

`pi`
    38 lowercase alphanumerics: SHA-256 of `"<app id>:<18-digit id number>"` in base 36, so the
    same identity always gets the same `pi` under one app id (see `pi_for`).

Behaviour upload (`POST /behavior/collection/loginout`, `collections` a list)
    Empty → BUS COLL BEHAVIOR NULL ERROR; more than 128 items → BUS COLL OVER LIMIT COUNT. Each
    item must be an object with integer `no`, `bt`, `ot`, `ct`, string `si` and, when present,
    string `di` and `pi` (null counts as absent); anything else → 1012 for the whole request.
    Then each item is checked in this order, the first failure being its error: `no` outside
    1..128 or shared with another item of the batch → BUS COLL NO INVALID (every item sharing
    the number is rejected, so that an answer by number is unambiguous); `si` not 32 characters
    → SYS REQ PARAM CHECK ERROR; `bt` not 0/1 → BUS COLL BEHAVIOR MODE INVALID; `ot` (epoch
    seconds) more than `ot_future_tolerance_s` (60 s) ahead of the clock, or more than
    `ot_max_age_s` (30 days) behind it → BUS COLL BEHAVIOR TIME ERROR; `ct` not 0/2 → BUS COLL
    PLAYER MODE INVALID; `ct` 0 without `pi` → BUS COLL PLAYERID MISS, with a `pi` that is not
    that of a known verified identity (a registry identity with outcome `ok`, or any `pi` this
    emulator has answered) → BUS COLL PLAYERID INVALID; `ct` 2 without `di` → BUS COLL DEVICEID
    MISS, a `di` not 32 characters → SYS REQ PARAM CHECK ERROR. All good → errcode 0; some bad
    → BUS COLL PARTIAL ERROR with `data.results: [{no, errcode, errmsg}]` for the bad ones only,
    the good ones being accepted all the same.

Records (thread-safe; read them through the properties and methods, which return copies)
    `accepted` behaviour items with their arrival time (duplicates included), `duplicates`
    (items whose si + bt + ot + pi/di was already accepted), `request_counts()` per endpoint
    (`unknown` for unknown paths), `error_counts()` per errmsg of the answers, `item_error_counts()`
    per errmsg of the per-item results, and `test_case_results()`.

Test-case mode (`test_codes`: code → case 1..8, see `TEST_CASES` and `generate_test_codes`)
    The test paths (`Endpoint.test_path`) are always served and go through the same checks up
    to QPS; then an unknown code → TEST TASK NOT EXIST (4002), a code of a case of another
    endpoint → TEST SCENE CODE ERROR (4003); then the body is checked (1012) and the case
    answers: cases 1-3 (check) and 4-6 (query) answer status 0 (with a `pi` derived from the
    `idNum`, or the `ai` for the query), 1 and 2 whatever the identity; cases 7 (guest) and 8
    (verified user) validate the items as above, except that any well-formed `pi` (38 lowercase
    alphanumerics) is accepted, and answer 4003 if an item is of the other kind (`ct` 0 in case
    7, `ct` 2 in case 8). A case passes once it has answered errcode 0.

Admin endpoint (emulator-only, not part of the protocol)
    `GET /_emulator/state`: JSON of the counters, the number of accepted items and duplicates,
    and the test-case results (`state()`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import socket
import threading
import time
import tomllib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from qinglang.age import InvalidIdentityNumber, validate
from qinglang.realname.protocol import (
    SIGNED_HEADERS,
    Endpoint,
    key_bytes,
    load_protocol,
    response,
    signing_string,
)
from qinglang.realname.protocol import decrypt_body as _decrypt_body

Outcome = Literal["ok", "pending", "failed"]
OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)

ADMIN_STATE_PATH: Final = "/_emulator/state"
"""Emulator-only: `GET` answers the JSON of `Emulator.state()`."""

OT_FUTURE_TOLERANCE_S: Final = 60
"""Default: how far (seconds) a behaviour time `ot` may be ahead of the emulator's clock."""

OT_MAX_AGE_S: Final = 30 * 86400
"""Default: how far (seconds) a behaviour time `ot` may be behind the emulator's clock."""

TEST_CASES: Final[Mapping[int, tuple[str, str, str]]] = {
    1: ("check", "实名认证 - 认证成功", "identity check: success"),
    2: ("check", "实名认证 - 认证中", "identity check: in progress"),
    3: ("check", "实名认证 - 认证失败", "identity check: failure"),
    4: ("query", "实名认证结果查询 - 认证成功", "check-result query: success"),
    5: ("query", "实名认证结果查询 - 认证中", "check-result query: in progress"),
    6: ("query", "实名认证结果查询 - 认证失败", "check-result query: failure"),
    7: ("loginout", "游戏用户行为数据上报 - 游客模式", "login/logout upload: guest"),
    8: ("loginout", "游戏用户行为数据上报 - 认证用户", "login/logout upload: verified user"),
}
"""The official test cases: number → (endpoint name, Chinese name, English name)."""

_BASE36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_PI_RE: Final = re.compile(r"[0-9a-z]{38}")
_PROTOCOL_METHODS: Final = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _base36(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, r = divmod(value, 36)
        digits.append(_BASE36[r])
    return "".join(reversed(digits))


def derive_pi(app_id: str, key: str) -> str:
    """A deterministic 38-character lowercase alphanumeric `pi` for `key` under `app_id`."""
    digest = hashlib.sha256(f"{app_id}:{key}".encode()).digest()
    return _base36(int.from_bytes(digest, "big"), load_protocol().pi_length)


def generate_test_codes() -> dict[str, int]:
    """Eight fresh random test codes, one per official test case (code → case number)."""
    return {secrets.token_hex(8): case for case in sorted(TEST_CASES)}


# ------------------------------------------------------------------------------ registry


class RegistryError(ValueError):
    """A registry file or entry that cannot be used; the message says which and why."""


def _normalise_id(id_num: str) -> str:
    """The 18-digit form of a valid 18-character identity number; InvalidIdentityNumber if not."""
    rid = validate(id_num)
    if rid.legacy:
        raise RegistryError("the system takes 18-character identity numbers only")
    return rid.number


@dataclass(frozen=True)
class Identity:
    """One person known to the emulated system, and how checking them turns out."""

    name: str
    id_num: str
    outcome: Outcome = "ok"
    pending_queries: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise RegistryError("an identity needs a name")
        if self.outcome not in OUTCOMES:
            raise RegistryError(f"outcome must be one of {', '.join(OUTCOMES)}: {self.outcome!r}")
        if isinstance(self.pending_queries, bool) or not isinstance(self.pending_queries, int):
            raise RegistryError("pending_queries must be an integer")
        if self.pending_queries < 1:
            raise RegistryError("pending_queries must be at least 1")
        try:
            number = _normalise_id(self.id_num)
        except (InvalidIdentityNumber, RegistryError) as exc:
            raise RegistryError(f"invalid identity number {self.id_num!r}: {exc}") from None
        object.__setattr__(self, "id_num", number)


class Registry:
    """The identities the emulated system knows, by 18-digit identity number.

    File format (JSON or TOML, chosen by the `.toml` suffix): a list `identities` of objects with
    `name`, `id_num`, optional `outcome` ("ok" default, "pending", "failed") and optional
    `pending_queries` (default 1). JSON: `{"identities": [{"name": "张三", "id_num": "…"}]}`;
    TOML: `[[identities]]` tables. A bare JSON list of such objects is accepted too.
    """

    def __init__(self, identities: Iterable[Identity] = ()) -> None:
        self._by_id: dict[str, Identity] = {}
        for identity in identities:
            self.add(identity)

    def add(self, identity: Identity) -> None:
        """Add an identity; RegistryError if its number is already registered."""
        if identity.id_num in self._by_id:
            raise RegistryError(f"identity number {identity.id_num} is registered twice")
        self._by_id[identity.id_num] = identity

    def get(self, id_num: str) -> Identity | None:
        """The identity with this number (any accepted spelling), or None."""
        try:
            return self._by_id.get(_normalise_id(id_num))
        except (InvalidIdentityNumber, RegistryError):
            return None

    def __iter__(self) -> Iterator[Identity]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    @classmethod
    def from_data(cls, data: Any) -> Registry:
        """A registry from parsed JSON/TOML (see the class docstring); RegistryError if bad."""
        items = data.get("identities", []) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise RegistryError("'identities' must be a list")
        out = cls()
        for i, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise RegistryError(f"identity {i} is not an object")
            unknown = set(item) - {"name", "id_num", "outcome", "pending_queries"}
            if unknown:
                raise RegistryError(f"identity {i}: unknown field(s) {', '.join(sorted(unknown))}")
            name, id_num = item.get("name"), item.get("id_num")
            if not isinstance(name, str) or not isinstance(id_num, str):
                raise RegistryError(f"identity {i}: 'name' and 'id_num' must be strings")
            try:
                out.add(
                    Identity(
                        name,
                        id_num,
                        item.get("outcome", "ok"),
                        item.get("pending_queries", 1),
                    )
                )
            except RegistryError as exc:
                raise RegistryError(f"identity {i}: {exc}") from None
        return out

    @classmethod
    def from_file(cls, path: str | Path) -> Registry:
        """A registry from a JSON or TOML file; RegistryError if unreadable or bad."""
        p = Path(path)
        try:
            text = p.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"cannot read registry {p}: {exc.__class__.__name__}") from None
        try:
            data: Any = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
        except ValueError as exc:
            raise RegistryError(f"registry {p} is not valid: {exc}") from None
        try:
            return cls.from_data(data)
        except RegistryError as exc:
            raise RegistryError(f"registry {p}: {exc}") from None


def demo_registry() -> Registry:
    """Three demo identities: verified, pending (verified at the 1st query) and failing."""
    return Registry(
        [
            Identity("张三", "110101198001010010", "ok"),
            Identity("李四", "110101198001010029", "pending"),
            Identity("王五", "110101198001010037", "failed"),
        ]
    )


# ------------------------------------------------------------------------------ config, records


@dataclass(frozen=True)
class EmulatorConfig:
    """What the emulated system knows about the one operator it serves, and its limits."""

    app_id: str
    biz_id: str
    secret: str
    registry: Registry = field(default_factory=Registry)
    qps: Mapping[str, int] | None = None
    timestamp_validity_ms: int = field(
        default_factory=lambda: load_protocol().timestamp_validity_ms
    )
    test_codes: Mapping[str, int] | None = None
    clock_ms: Callable[[], int] = _now_ms
    ot_future_tolerance_s: int = OT_FUTURE_TOLERANCE_S
    ot_max_age_s: int = OT_MAX_AGE_S

    def __post_init__(self) -> None:
        key_bytes(self.secret)  # BadSecret if not 32 hex characters
        if not self.app_id or not self.biz_id:
            raise ValueError("app_id and biz_id must not be empty")
        endpoints = load_protocol().endpoints
        for name, limit in (self.qps or {}).items():
            if name not in endpoints:
                raise ValueError(f"qps: unknown endpoint {name!r}")
            if limit < 1:
                raise ValueError(f"qps: {name} must be at least 1")
        for code, case in (self.test_codes or {}).items():
            if case not in TEST_CASES or not code or "/" in code:
                raise ValueError(f"test code {code!r}: case must be 1..8 and code a path segment")
        if self.timestamp_validity_ms < 0:
            raise ValueError("timestamp_validity_ms must not be negative")

    def qps_for(self, endpoint: str) -> int:
        """The QPS allowed on an endpoint: the configured value or the protocol's."""
        configured = (self.qps or {}).get(endpoint)
        return configured if configured is not None else load_protocol().endpoints[endpoint].qps


@dataclass(frozen=True)
class AcceptedItem:
    """A behaviour item the emulator accepted, with its arrival time (emulator clock, ms)."""

    no: int
    si: str
    bt: int
    ot: int
    ct: int
    di: str | None
    pi: str | None
    arrived_ms: int
    test_case: int | None = None

    @property
    def key(self) -> tuple[str, int, int, str]:
        """What makes two items the same behaviour: si, bt, ot and pi (or di)."""
        return (self.si, self.bt, self.ot, (self.pi if self.ct == 0 else self.di) or "")


@dataclass
class CaseResult:
    """How one official test case went: its code, requests answered, and whether it passed."""

    case: int
    code: str
    endpoint: str
    zh: str
    en: str
    attempts: int = 0
    passed: bool = False
    last_errmsg: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "case": self.case,
            "code": self.code,
            "endpoint": self.endpoint,
            "zh": self.zh,
            "en": self.en,
            "attempts": self.attempts,
            "passed": self.passed,
            "last_errmsg": self.last_errmsg,
        }


@dataclass
class _Binding:
    """An `ai` bound to the identity it was checked for."""

    id_num: str
    name: str
    identity: Identity | None
    queries: int = 0


class _Answer(Exception):
    """Internal: stop handling and answer this error."""

    def __init__(self, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errmsg = errmsg


Answer = tuple[int, bytes]
"""HTTP status and JSON body of an answer."""


# ------------------------------------------------------------------------------ emulator


class Emulator:
    """The emulated system: pure request handling (`handle`) plus its ASGI app (`app`)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._proto = load_protocol()
        self._lock = threading.RLock()
        self._windows: dict[tuple[str, str], deque[int]] = {}
        self._bindings: dict[str, _Binding] = {}
        self._issued_pis: set[str] = set()
        self._accepted: list[AcceptedItem] = []
        self._seen: set[tuple[str, int, int, str]] = set()
        self._duplicates: list[AcceptedItem] = []
        self._requests: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._item_errors: Counter[str] = Counter()
        self._cases: dict[str, CaseResult] = {
            code: CaseResult(case, code, *TEST_CASES[case])
            for code, case in (config.test_codes or {}).items()
        }
        self._routes: list[tuple[re.Pattern[str], Endpoint, bool]] = []
        for ep in self._proto.endpoints.values():
            self._routes.append((re.compile(re.escape(ep.path)), ep, False))
            prefix, _, suffix = ep.test_path.partition("{code}")
            pattern = re.escape(prefix) + r"(?P<code>[^/]+)" + re.escape(suffix)
            self._routes.append((re.compile(pattern), ep, True))
        self.app = Starlette(
            routes=[Route("/{path:path}", self._asgi_endpoint, methods=_PROTOCOL_METHODS)]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI interface (delegates to `app`)."""
        await self.app(scope, receive, send)

    # -------------------------------------------------------------- records

    def pi_for(self, id_num: str) -> str:
        """The `pi` the emulator gives the identity with this number."""
        try:
            number = _normalise_id(id_num)
        except (InvalidIdentityNumber, RegistryError):
            number = id_num
        return derive_pi(self.config.app_id, number)

    @property
    def accepted(self) -> list[AcceptedItem]:
        """Every behaviour item accepted so far, in arrival order (duplicates included)."""
        with self._lock:
            return list(self._accepted)

    @property
    def duplicates(self) -> list[AcceptedItem]:
        """Accepted items whose si + bt + ot + pi/di had already been accepted."""
        with self._lock:
            return list(self._duplicates)

    def request_counts(self) -> dict[str, int]:
        """Requests received per endpoint name (`unknown` for unknown paths)."""
        with self._lock:
            return dict(self._requests)

    def error_counts(self) -> dict[str, int]:
        """Error answers given, per errmsg (per-item errors not included)."""
        with self._lock:
            return dict(self._errors)

    def item_error_counts(self) -> dict[str, int]:
        """Per-item errors of behaviour uploads, per errmsg."""
        with self._lock:
            return dict(self._item_errors)

    def test_case_results(self) -> dict[int, CaseResult]:
        """The configured test cases by number, with attempts and whether each passed."""
        with self._lock:
            return {
                r.case: CaseResult(**r.as_dict()) for r in sorted(self._cases.values(), key=_case)
            }

    def state(self) -> dict[str, Any]:
        """JSON-ready state: counters, accepted and duplicate counts, test-case results."""
        with self._lock:
            return {
                "requests": dict(self._requests),
                "errors": dict(self._errors),
                "item_errors": dict(self._item_errors),
                "accepted": len(self._accepted),
                "duplicates": len(self._duplicates),
                "checked_ai": len(self._bindings),
                "test_cases": {
                    str(r.case): r.as_dict() for r in sorted(self._cases.values(), key=_case)
                },
            }

    # -------------------------------------------------------------- handling

    async def _asgi_endpoint(self, request: Request) -> Response:
        body = await request.body()
        status, payload = self.handle(
            request.method,
            request.url.path,
            request.url.query,
            dict(request.headers),
            body,
        )
        return Response(payload, status_code=status, media_type="application/json")

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        """Answer one request (headers case-insensitive); also records it."""
        if path == ADMIN_STATE_PATH and method.upper() == "GET":
            return 200, json.dumps(self.state(), ensure_ascii=False).encode("utf-8")
        with self._lock:
            now = self.config.clock_ms()
            route = self._route(path)
            self._requests[route[0].name if route else "unknown"] += 1
            try:
                return 200, self._handle(route, method, query, headers, body, now)
            except _Answer as answer:
                self._errors[answer.errmsg] += 1
                info = self._proto.error(answer.errmsg)
                return 200, response(info.code, info.errmsg)

    def _route(self, path: str) -> tuple[Endpoint, str | None] | None:
        for pattern, ep, is_test in self._routes:
            m = pattern.fullmatch(path)
            if m:
                return ep, (m.group("code") if is_test else None)
        return None

    def _handle(
        self,
        route: tuple[Endpoint, str | None] | None,
        method: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        now: int,
    ) -> bytes:
        if route is None:
            raise _Answer("SYS REQ RESOURCE NOT EXIST")
        ep, code = route
        if method.upper() != ep.method:
            raise _Answer("SYS REQ METHOD ERROR")
        self._check_request(ep, query, headers, body, now)
        params = dict(parse_qsl(query, keep_blank_values=True))
        if code is not None:
            return self._test_case(ep, code, params, body, now)
        if ep.name == "check":
            return self._check(self._check_payload(body))
        if ep.name == "query":
            return self._query(self._query_ai(params))
        return self._loginout(self._collections(body), now, test_case=None)

    def _check_request(
        self, ep: Endpoint, query: str, headers: Mapping[str, str], body: bytes, now: int
    ) -> None:
        """The system checks, 1004 to 1006 (see the module docstring for the order)."""
        lower = {k.lower(): v for k, v in headers.items()}
        values = {h: lower.get(h.lower(), "") for h in (*SIGNED_HEADERS, "sign")}
        if not all(values.values()):
            raise _Answer("SYS REQ HEADER MISS ERROR")
        if values["appId"] != self.config.app_id:
            raise _Answer("SYS REQ PARTNER ERROR")
        if values["bizId"] != self.config.biz_id:
            raise _Answer("SYS REQ AUTH ERROR")
        ts = values["timestamps"]
        if not (ts.isascii() and ts.isdigit()):
            raise _Answer("SYS REQ EXPIRE ERROR")
        if abs(now - int(ts)) > self.config.timestamp_validity_ms:
            raise _Answer("SYS REQ EXPIRE ERROR")
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update({h: values[h] for h in SIGNED_HEADERS})
        # The signing string over bytes: the same as protocol.sign for any UTF-8 body.
        expected = hashlib.sha256(
            signing_string(self.config.secret, params, "").encode("utf-8") + body
        ).hexdigest()
        if not secrets.compare_digest(expected.encode(), values["sign"].lower().encode("utf-8")):
            raise _Answer("SYS REQ PARTNER AUTH ERROR")
        window = self._windows.setdefault((self.config.app_id, ep.name), deque())
        while window and window[0] <= now - 1000:
            window.popleft()
        if len(window) >= self.config.qps_for(ep.name):
            raise _Answer("SYS REQ BUSY ERROR")
        window.append(now)

    # -------------------------------------------------------------- bodies

    def _payload(self, body: bytes) -> dict[str, Any]:
        try:
            return _decrypt_body(self.config.secret, body)
        except ValueError:
            raise _Answer("SYS REQ PARAM CHECK ERROR") from None

    def _check_payload(self, body: bytes) -> tuple[str, str, str]:
        p = self._payload(body)
        ai, name, id_num = p.get("ai"), p.get("name"), p.get("idNum")
        if not (isinstance(ai, str) and isinstance(name, str) and isinstance(id_num, str)):
            raise _Answer("SYS REQ PARAM CHECK ERROR")
        if len(ai) != self._proto.ai_length or not name or not id_num:
            raise _Answer("SYS REQ PARAM CHECK ERROR")
        return ai, name, id_num

    def _query_ai(self, params: Mapping[str, str]) -> str:
        ai = params.get("ai", "")
        if len(ai) != self._proto.ai_length:
            raise _Answer("SYS REQ PARAM CHECK ERROR")
        return ai

    def _collections(self, body: bytes) -> list[dict[str, Any]]:
        items = self._payload(body).get("collections")
        if not isinstance(items, list):
            raise _Answer("SYS REQ PARAM CHECK ERROR")
        for item in items:
            if not isinstance(item, dict):
                raise _Answer("SYS REQ PARAM CHECK ERROR")
            for name in ("no", "bt", "ot", "ct"):
                v = item.get(name)
                if isinstance(v, bool) or not isinstance(v, int):
                    raise _Answer("SYS REQ PARAM CHECK ERROR")
            if not isinstance(item.get("si"), str):
                raise _Answer("SYS REQ PARAM CHECK ERROR")
            for name in ("di", "pi"):
                if item.get(name) is not None and not isinstance(item[name], str):
                    raise _Answer("SYS REQ PARAM CHECK ERROR")
        if not items:
            raise _Answer("BUS COLL BEHAVIOR NULL ERROR")
        if len(items) > self._proto.max_batch:
            raise _Answer("BUS COLL OVER LIMIT COUNT")
        return items

    # -------------------------------------------------------------- business logic

    def _status(self, status: int, pi: str | None = None) -> bytes:
        result: dict[str, Any] = {"status": status}
        if status == 0 and pi is not None:
            result["pi"] = pi
            self._issued_pis.add(pi)
        return response(0, "OK", {"result": result})

    def _check(self, fields: tuple[str, str, str]) -> bytes:
        ai, name, id_num = fields
        try:
            number = _normalise_id(id_num)
        except (InvalidIdentityNumber, RegistryError):
            raise _Answer("BUS AUTH IDNUM ILLEGAL") from None
        bound = self._bindings.get(ai)
        if bound is not None and (bound.id_num, bound.name) != (number, name):
            raise _Answer("BUS AUTH CODE ALREADY IN USE")
        if bound is None:
            identity = self.config.registry.get(number)
            if identity is not None and identity.name != name:
                identity = None
            bound = self._bindings[ai] = _Binding(number, name, identity)
        return self._answer(bound)

    def _query(self, ai: str) -> bytes:
        bound = self._bindings.get(ai)
        if bound is None:
            raise _Answer("BUS AUTH CODE NO AUTH RECODE")
        bound.queries += 1
        return self._answer(bound)

    def _answer(self, bound: _Binding) -> bytes:
        identity = bound.identity
        if identity is None or identity.outcome == "failed":
            return self._status(2)
        pi = derive_pi(self.config.app_id, bound.id_num)
        if identity.outcome == "pending" and bound.queries < identity.pending_queries:
            return self._status(1)
        return self._status(0, pi)

    def _known_pi(self, pi: str) -> bool:
        if pi in self._issued_pis:
            return True
        return any(
            i.outcome == "ok" and derive_pi(self.config.app_id, i.id_num) == pi
            for i in self.config.registry
        )

    def _item_error(
        self, item: Mapping[str, Any], counts: Counter[int], now: int, test: bool
    ) -> str:
        """The errmsg of an invalid item, or "" when it is valid."""
        no: int = item["no"]
        if not 1 <= no <= self._proto.max_batch or counts[no] > 1:
            return "BUS COLL NO INVALID"
        if len(item["si"]) != self._proto.si_length:
            return "SYS REQ PARAM CHECK ERROR"
        if item["bt"] not in (0, 1):
            return "BUS COLL BEHAVIOR MODE INVALID"
        now_s = now // 1000
        ot: int = item["ot"]
        if ot > now_s + self.config.ot_future_tolerance_s or ot < now_s - self.config.ot_max_age_s:
            return "BUS COLL BEHAVIOR TIME ERROR"
        ct = item["ct"]
        if ct == 0:
            pi = item.get("pi")
            if not pi:
                return "BUS COLL PLAYERID MISS"
            valid = _PI_RE.fullmatch(pi) is not None if test else self._known_pi(pi)
            return "" if valid else "BUS COLL PLAYERID INVALID"
        if ct == 2:
            di = item.get("di")
            if not di:
                return "BUS COLL DEVICEID MISS"
            return "" if len(di) == self._proto.di_length else "SYS REQ PARAM CHECK ERROR"
        return "BUS COLL PLAYER MODE INVALID"

    def _loginout(self, items: list[dict[str, Any]], now: int, test_case: int | None) -> bytes:
        counts = Counter(item["no"] for item in items)
        bad: list[dict[str, Any]] = []
        for item in items:
            errmsg = self._item_error(item, counts, now, test=test_case is not None)
            if errmsg:
                info = self._proto.error(errmsg)
                bad.append({"no": item["no"], "errcode": info.code, "errmsg": info.errmsg})
                self._item_errors[errmsg] += 1
                continue
            accepted = AcceptedItem(
                no=item["no"],
                si=item["si"],
                bt=item["bt"],
                ot=item["ot"],
                ct=item["ct"],
                di=item.get("di") or None,
                pi=item.get("pi") or None,
                arrived_ms=now,
                test_case=test_case,
            )
            self._accepted.append(accepted)
            if accepted.key in self._seen:
                self._duplicates.append(accepted)
            self._seen.add(accepted.key)
        if not bad:
            return response(0, "OK")
        self._errors["BUS COLL PARTIAL ERROR"] += 1
        info = self._proto.error("BUS COLL PARTIAL ERROR")
        return response(info.code, info.errmsg, {"results": bad})

    # -------------------------------------------------------------- test cases

    def _test_case(
        self, ep: Endpoint, code: str, params: Mapping[str, str], body: bytes, now: int
    ) -> bytes:
        result = self._cases.get(code)
        if result is None:
            raise _Answer("TEST TASK NOT EXIST")
        result.attempts += 1
        try:
            answer = self._test_answer(ep, result.case, params, body, now)
        except _Answer as exc:
            result.last_errmsg = exc.errmsg
            raise
        errcode = json.loads(answer)["errcode"]
        if errcode == 0:
            result.passed = True
            result.last_errmsg = None
        else:
            result.last_errmsg = json.loads(answer)["errmsg"]
        return answer

    def _test_answer(
        self, ep: Endpoint, case: int, params: Mapping[str, str], body: bytes, now: int
    ) -> bytes:
        if TEST_CASES[case][0] != ep.name:
            raise _Answer("TEST SCENE CODE ERROR")
        status = (case - 1) % 3  # 1/4 → 0, 2/5 → 1, 3/6 → 2
        if ep.name == "check":
            _ai, _name, id_num = self._check_payload(body)
            return self._status(status, derive_pi(self.config.app_id, id_num))
        if ep.name == "query":
            ai = self._query_ai(params)
            return self._status(status, derive_pi(self.config.app_id, ai))
        items = self._collections(body)
        wrong_kind = 0 if case == 7 else 2
        if any(item["ct"] == wrong_kind for item in items):
            raise _Answer("TEST SCENE CODE ERROR")
        return self._loginout(items, now, test_case=case)


def _case(r: CaseResult) -> int:
    return r.case


# ------------------------------------------------------------------------------ running


class RunningEmulator:
    """An emulator served by uvicorn on loopback in a background thread (a context manager)."""

    def __init__(
        self,
        emulator: Emulator | EmulatorConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.emulator = emulator if isinstance(emulator, Emulator) else Emulator(emulator)
        self.host = host
        self._port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._bound_port: int | None = None

    @property
    def port(self) -> int:
        """The port listened on (known once started)."""
        if self._bound_port is None:
            raise RuntimeError("the emulator has not been started")
        return self._bound_port

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:41234 (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> RunningEmulator:
        """Bind the port and serve; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        self._sock = bind_socket(self.host, self._port)
        self._bound_port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            self.emulator.app,
            log_level=self._log_level,
            lifespan="off",
            loop="asyncio",
            access_log=False,
        )
        server = self._server = uvicorn.Server(config)
        sock = self._sock
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="realname-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = None
        self._sock = None
        self._thread = None

    def __enter__(self) -> RunningEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0: a free port); OSError if it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock
