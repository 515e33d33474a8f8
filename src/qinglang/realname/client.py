"""Synchronous client of the national anti-addiction real-name system (网络游戏防沉迷实名认证系统).

`NppaClient` signs and encrypts requests with `qinglang.realname.protocol`, spaces them with
one token bucket per endpoint at the endpoint's published QPS, and retries with exponential
backoff and full jitter only what the protocol calls retryable: errors 1001 (server error),
1006 (over QPS) and 1007 (expired timestamp), HTTP 5xx, and transport failures (timeouts,
dropped connections). Every attempt, retries included, waits for the rate limiter and is signed
afresh: new `timestamps` header and, for bodies, a new random IV. `max_retries=4` means at most
5 attempts; the pause before retry k (0-based) is uniform in [0, min(max_backoff, backoff * 2**k)]
("full jitter", drawn from `rng`, an extra keyword argument for tests). `clock`, `sleep` and
`now_ms` are injectable; `sleep` must advance `clock` (see `ratelimit`).

`stats` (`ClientStats`) counts attempts and retries per endpoint, seconds waited on each rate
limiter and the backoff pauses; `limiters` holds the token buckets.

Errors:
  - `InvalidInput` (a `ValueError`): an argument fails local validation before anything is sent;
    `.field` names the wire field (`ai`, `name`, `idNum`, `collections[i].pi`, ...).
  - `RealNameError` and its subclasses from `protocol.error_for`: the system answered an error.
  - `ProtocolViolation` (a `ValueError`, deliberately not a `RealNameError`, which means "the
    system answered this error code"): the answer is not JSON, has no integer errcode, or its
    data does not have the shape the protocol promises. It is never retried.
  - `httpx.HTTPStatusError`: HTTP 5xx without a protocol error body, after the retries.
  - `httpx.TransportError`: the network failed, after the retries.

A read timeout on a POST is retried like the other transport failures although the system may
have processed the first attempt: a check is keyed by `ai`, so sending it again is harmless, but
a behaviour upload may then be recorded twice.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from qinglang.age import InvalidIdentityNumber, validate
from qinglang.realname.protocol import (
    Behaviour,
    BehaviourType,
    CheckResult,
    CheckStatus,
    Endpoint,
    ItemResult,
    PlayerType,
    RealNameError,
    check_result,
    encrypt_body,
    error_for,
    item_results,
    key_bytes,
    load_protocol,
    parse_response,
    sign,
)
from qinglang.realname.ratelimit import TokenBucket

__all__ = [
    "CONTENT_TYPE",
    "PARTIAL_ERROR",
    "ClientStats",
    "InvalidInput",
    "NppaClient",
    "ProtocolViolation",
    "service_client",
]

CONTENT_TYPE = "application/json;charset=utf-8"
PARTIAL_ERROR = "BUS COLL PARTIAL ERROR"
ENDPOINT_NAMES = ("check", "query", "loginout")


class InvalidInput(ValueError):
    """An argument failed validation before sending; `field` names the wire field.

    For a behaviour item, `index` is its 0-based position in the sequence passed to `upload` or
    `upload_all` (the field reads `collections[<index>].<name>`); otherwise it is None.
    """

    def __init__(self, field: str, message: str, index: int | None = None) -> None:
        self.field = field
        self.index = index
        super().__init__(f"{field}: {message}")


class ProtocolViolation(ValueError):
    """The answer is not a well-formed protocol response (not JSON, no errcode, bad data)."""

    def __init__(self, endpoint: str, message: str, status_code: int | None = None) -> None:
        self.endpoint = endpoint
        self.status_code = status_code
        http = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(f"{endpoint}: malformed answer{http}: {message}")


class _Retryable(Exception):
    """Internal: a failed attempt that may be retried; `error` is raised if retries run out."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class ClientStats:
    """Counters of a client: attempts per endpoint, retries, and seconds spent waiting."""

    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDPOINT_NAMES, 0))
    retries: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDPOINT_NAMES, 0))
    rate_wait_seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(ENDPOINT_NAMES, 0.0)
    )
    backoff_seconds: float = 0.0
    # the latest backoff pauses, in order (bounded: the client may live as long as the process)
    backoffs: deque[float] = field(default_factory=lambda: deque(maxlen=256))

    @property
    def total_requests(self) -> int:
        """HTTP attempts sent over all endpoints."""
        return sum(self.requests.values())

    @property
    def total_retries(self) -> int:
        """Retries over all endpoints."""
        return sum(self.retries.values())


def _validate_ai(ai: str, length: int, field_name: str = "ai", index: int | None = None) -> str:
    """`ai` unchanged if it is a string of exactly `length` characters."""
    if not isinstance(ai, str) or len(ai) != length:
        got = len(ai) if isinstance(ai, str) else type(ai).__name__
        raise InvalidInput(field_name, f"must be exactly {length} characters, got {got}", index)
    return ai


class NppaClient:
    """Client of the real-name system: check, query, and behaviour upload (see module doc)."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        biz_id: str,
        secret: str,
        *,
        test_codes: Mapping[str, str] | None = None,
        qps: Mapping[str, float] | None = None,
        max_retries: int = 4,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        rng: random.Random | None = None,
        headroom: float = 1.0,
    ) -> None:
        key_bytes(secret)  # BadSecret now rather than on the first request
        self.protocol = load_protocol()
        unknown = set(test_codes or {}) - set(self.protocol.endpoints)
        unknown |= set(qps or {}) - set(self.protocol.endpoints)
        if unknown:
            raise ValueError(f"unknown endpoint names: {sorted(unknown)}")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.app_id = app_id
        self.biz_id = biz_id
        self._secret = secret
        self.test_codes = dict(test_codes or {})
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._clock = clock
        self._sleep = sleep
        self._now_ms = now_ms
        self._rng = rng if rng is not None else random.Random()
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        rates = {name: float(e.qps) * headroom for name, e in self.protocol.endpoints.items()}
        rates.update(qps or {})
        self.limiters = {
            name: TokenBucket(rate, clock=clock, sleep=sleep) for name, rate in rates.items()
        }
        self.stats = ClientStats()
        self._stats_lock = threading.Lock()
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    # ----------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the underlying HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> NppaClient:
        """The client itself (closed on exit)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the client."""
        self.close()

    # ----------------------------------------------------------------------- public API

    def check(self, ai: str, name: str, id_num: str) -> CheckResult:
        """Submit an identity check (name and identity number under account id `ai`)."""
        payload = self.check_payload(ai, name, id_num)
        answer = self._call("check", payload=payload)
        return self._check_result("check", answer)

    def query(self, ai: str) -> CheckResult:
        """Query the result of an earlier check of account id `ai`."""
        _validate_ai(ai, self.protocol.ai_length)
        answer = self._call("query", query={"ai": ai})
        return self._check_result("query", answer)

    def check_and_wait(
        self,
        ai: str,
        name: str,
        id_num: str,
        *,
        poll_interval: float = 1.0,
        timeout: float = 60.0,
    ) -> CheckResult:
        """Check, then query every `poll_interval` s while pending, up to `timeout` s in all."""
        deadline = self._clock() + timeout
        result = self.check(ai, name, id_num)
        while result.status is CheckStatus.PENDING:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            self._sleep(min(poll_interval, remaining))
            result = self.query(ai)
        return result

    def upload(self, items: Sequence[Behaviour]) -> list[ItemResult]:
        """Send one batch of behaviour items; return the per-item errors (empty if none).

        Items are numbered `no` = 1..n in the order given, so a result's `no` is the 1-based
        position of its item: `items[r.no - 1]`. Raises ValueError if the batch is empty or
        larger than the protocol's `max_batch` (128).
        """
        if not items:
            raise ValueError("upload needs at least one behaviour item")
        if len(items) > self.protocol.max_batch:
            raise ValueError(
                f"at most {self.protocol.max_batch} items per batch, got {len(items)};"
                " use upload_all"
            )
        self._validate_items(items)
        return self._upload_batch(items)

    def upload_all(self, items: Sequence[Behaviour]) -> list[ItemResult]:
        """Send any number of items in batches of at most `max_batch`; return per-item errors.

        A returned result's `no` is the 1-based position of its item in the whole input
        (`items[r.no - 1]`), not its number within the batch. All items are validated before
        the first batch goes out; an empty input sends nothing. If a batch fails, its error is
        raised with a note naming the batch; the batches before it were accepted.
        """
        self._validate_items(items)
        size = self.protocol.max_batch
        out: list[ItemResult] = []
        batches = (len(items) + size - 1) // size
        for b, start in enumerate(range(0, len(items), size)):
            batch = items[start : start + size]
            try:
                results = self._upload_batch(batch)
            except Exception as e:
                e.add_note(
                    f"upload_all: batch {b + 1} of {batches} (items {start + 1}-"
                    f"{start + len(batch)}) failed; items 1-{start} were accepted"
                )
                raise
            out.extend(ItemResult(start + r.no, r.errcode, r.errmsg) for r in results)
        return out

    # ----------------------------------------------------------------------- validation

    def check_payload(self, ai: str, name: str, id_num: str) -> dict[str, str]:
        """The check request's plaintext payload, validated (idNum in its 18-digit form)."""
        _validate_ai(ai, self.protocol.ai_length)
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("name", "must be a non-empty string")
        if not isinstance(id_num, str):
            raise InvalidInput("idNum", f"must be a string, got {type(id_num).__name__}")
        try:
            number = validate(id_num).number
        except InvalidIdentityNumber as e:
            raise InvalidInput("idNum", str(e)) from e
        return {"ai": ai, "name": name.strip(), "idNum": number}

    def invalid_items(self, items: Sequence[Behaviour]) -> list[InvalidInput]:
        """The local validation error of each malformed item (its first), in input order."""
        out = []
        for i, item in enumerate(items):
            try:
                self._validate_behaviour(item, i)
            except InvalidInput as e:
                out.append(e)
        return out

    def _validate_items(self, items: Sequence[Behaviour]) -> None:
        """Raise the InvalidInput of the first malformed item, if any."""
        for i, item in enumerate(items):
            self._validate_behaviour(item, i)

    def _validate_behaviour(self, item: Behaviour, index: int) -> None:
        """Raise InvalidInput naming `collections[index].<field>` if the item is malformed."""
        p = self.protocol
        where = f"collections[{index}]"
        if not isinstance(item, Behaviour):
            raise InvalidInput(where, f"must be a Behaviour, got {type(item).__name__}", index)
        _validate_ai(item.si, p.si_length, f"{where}.si", index)
        if item.bt not in tuple(BehaviourType):
            raise InvalidInput(f"{where}.bt", f"must be 0 or 1, got {item.bt!r}", index)
        if isinstance(item.ot, bool) or not isinstance(item.ot, int) or item.ot <= 0:
            raise InvalidInput(
                f"{where}.ot", f"must be epoch seconds (int > 0), got {item.ot!r}", index
            )
        if item.ct == PlayerType.VERIFIED:
            if item.pi is None:
                raise InvalidInput(f"{where}.pi", "required for a verified player (ct 0)", index)
            _validate_ai(item.pi, p.pi_length, f"{where}.pi", index)
        elif item.ct == PlayerType.GUEST:
            if item.di is None:
                raise InvalidInput(f"{where}.di", "required for a guest (ct 2)", index)
        else:
            raise InvalidInput(f"{where}.ct", f"must be 0 or 2, got {item.ct!r}", index)
        if item.di is not None:
            _validate_ai(item.di, p.di_length, f"{where}.di", index)

    # ----------------------------------------------------------------------- answers

    def _check_result(self, endpoint: str, answer: tuple[int, str, dict[str, Any]]) -> CheckResult:
        """The CheckResult of a successful check/query answer; ProtocolViolation if malformed."""
        _, _, data = answer
        try:
            result = check_result(data)
        except ValueError as e:
            raise ProtocolViolation(endpoint, str(e)) from None
        if result.status is CheckStatus.OK and (
            result.pi is None or len(result.pi) != self.protocol.pi_length
        ):
            raise ProtocolViolation(
                endpoint, f"status 0 (verified) needs a {self.protocol.pi_length}-character pi"
            )
        return result

    def _upload_batch(self, batch: Sequence[Behaviour]) -> list[ItemResult]:
        """Send one validated batch; per-item errors numbered 1..len(batch)."""
        payload = {"collections": [item.wire(no) for no, item in enumerate(batch, start=1)]}
        _, _, data = self._call("loginout", payload=payload, partial_ok=True)
        try:
            results = item_results(data)
        except (TypeError, ValueError) as e:
            raise ProtocolViolation("loginout", f"bad data.results: {e}") from None
        for r in results:
            if not 1 <= r.no <= len(batch):
                raise ProtocolViolation(
                    "loginout", f"result for item no {r.no} outside the batch 1..{len(batch)}"
                )
        return results

    # ----------------------------------------------------------------------- transport

    def endpoint(self, name: str) -> Endpoint:
        """The protocol endpoint called `name` ("check", "query" or "loginout")."""
        return self.protocol.endpoints[name]

    def path(self, name: str) -> str:
        """The path called for endpoint `name`: the test-system path if it has a test code."""
        return self.endpoint(name).url_path(self.test_codes.get(name))

    def build_request(
        self,
        name: str,
        *,
        payload: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """A freshly signed request (new timestamp and IV) for endpoint `name`."""
        ep = self.endpoint(name)
        body = encrypt_body(self._secret, payload) if payload is not None else ""
        headers = {
            "appId": self.app_id,
            "bizId": self.biz_id,
            "timestamps": str(self._now_ms()),
        }
        signed = {**headers, **(query or {})}
        headers["sign"] = sign(self._secret, signed, body)
        headers["Content-Type"] = CONTENT_TYPE
        return self._http.build_request(
            ep.method,
            self.path(name),
            params=dict(query) if query else None,
            content=body.encode("utf-8") if body else None,
            headers=headers,
        )

    def _count(self, name: str, *, waited: float = 0.0, retry: bool = False) -> None:
        """Record one attempt of endpoint `name`."""
        with self._stats_lock:
            self.stats.requests[name] = self.stats.requests.get(name, 0) + 1
            self.stats.rate_wait_seconds[name] = self.stats.rate_wait_seconds.get(name, 0) + waited
            if retry:
                self.stats.retries[name] = self.stats.retries.get(name, 0) + 1

    def _backoff(self, retry: int) -> None:
        """Pause before retry number `retry` (0-based): full jitter up to an exponential cap."""
        cap = min(self.max_backoff, self.backoff * (2**retry))
        pause = self._rng.uniform(0.0, cap)
        with self._stats_lock:
            self.stats.backoff_seconds += pause
            self.stats.backoffs.append(pause)
        self._sleep(pause)

    def _call(
        self,
        name: str,
        *,
        payload: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        partial_ok: bool = False,
    ) -> tuple[int, str, dict[str, Any]]:
        """Send with rate limiting and retries; return (errcode, errmsg, data) of the answer."""
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._backoff(attempt - 1)
            waited = self.limiters[name].acquire()
            self._count(name, waited=waited, retry=attempt > 0)
            try:
                return self._attempt(name, payload=payload, query=query, partial_ok=partial_ok)
            except _Retryable as r:
                last = r.error
        assert last is not None
        raise last

    def _attempt(
        self,
        name: str,
        *,
        payload: Mapping[str, Any] | None,
        query: Mapping[str, str] | None,
        partial_ok: bool,
    ) -> tuple[int, str, dict[str, Any]]:
        """One signed attempt; raise _Retryable wrapping a retryable failure."""
        request = self.build_request(name, payload=payload, query=query)
        try:
            response = self._http.send(request)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as e:
            raise _Retryable(e) from e
        status = response.status_code
        try:
            errcode, errmsg, data = parse_response(response.content)
        except ValueError as e:
            if status >= 500:
                raise _Retryable(_http_error(response)) from None
            raise ProtocolViolation(name, str(e), status) from None
        if errcode == 0:
            if status >= 500:
                raise _Retryable(_http_error(response))
            if status >= 300:
                raise ProtocolViolation(name, "errcode 0 with a non-2xx HTTP status", status)
            return errcode, errmsg, data
        if partial_ok and errmsg == PARTIAL_ERROR and isinstance(data.get("results"), list):
            return errcode, errmsg, data
        error: RealNameError = error_for(errcode, errmsg)
        if error.retryable or status >= 500:
            raise _Retryable(error)
        raise error


def _http_error(response: httpx.Response) -> httpx.HTTPStatusError:
    """The HTTPStatusError describing a 5xx answer without a protocol error body."""
    return httpx.HTTPStatusError(
        f"HTTP {response.status_code} from {response.request.url}",
        request=response.request,
        response=response,
    )


SERVICE_HEADROOM = 0.9
"""Share of each endpoint's published QPS that qinglang's own uploads use: requests leave
evenly spaced, but network delays can bunch their arrivals, and a server counting a sliding
second would answer 1006 to the bunch."""


def service_client(
    base_url: str, app_id: str, biz_id: str, secret: str, test_codes: Mapping[str, str] | None
) -> NppaClient:
    """The client qinglang's service and CLI use for a platform's configuration."""
    return NppaClient(
        base_url,
        app_id,
        biz_id,
        secret,
        test_codes=dict(test_codes or {}) or None,
        headroom=SERVICE_HEADROOM,
    )
