"""Tests of NppaClient and the verifier interface against a small fake server (httpx.MockTransport).

The fake server checks what the real system checks (headers, signature over the signed headers
and query pairs and the raw body, AES-GCM body) with `qinglang.realname.protocol`, records what
it saw, and answers either by default rules or from a per-endpoint script. Time is a fake clock
that only moves when the client sleeps, so no test depends on real time.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from qinglang.age import InvalidChecksum, to_18
from qinglang.realname import protocol as p
from qinglang.realname.client import CONTENT_TYPE, InvalidInput, NppaClient, ProtocolViolation
from qinglang.realname.protocol import (
    Behaviour,
    BehaviourType,
    CheckResult,
    CheckStatus,
    PlayerType,
)
from qinglang.realname.verify import (
    CallableVerifier,
    NppaVerifier,
    RealNameVerifier,
    VerifyRequest,
    VerifyResult,
    get_verifier,
    register_verifier,
    registered_verifiers,
    unregister_verifier,
)

SECRET = "2836e95fcd10e04b0069bb1ee659955b"
APP_ID = "test-appId"
BIZ_ID = "1101999999"
BASE = "https://api.wlc.nppa.gov.cn"
EPOCH_MS = 1_700_000_000_000
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_id(birth: str = "19900101", seq: str = "123", region: str = "110105") -> str:
    """A valid 18-digit identity number (GB 11643 check character)."""
    head = region + birth + seq
    return head + "10X98765432"[sum(int(c) * w for c, w in zip(head, WEIGHTS, strict=True)) % 11]


ID_OK = make_id("19900101", "123")
ID_PENDING = make_id("19900101", "125")
ID_FAILED = make_id("19900101", "127")


def ai_of(n: int | str) -> str:
    """A 32-character account id."""
    return hashlib.md5(str(n).encode()).hexdigest()


def pi_of(id_num: str) -> str:
    """A 38-character player id."""
    return ("pi" + hashlib.sha256(id_num.encode()).hexdigest())[:38]


PATHS = {
    "/idcard/authentication/check": "check",
    "/idcard/authentication/query": "query",
    "/behavior/collection/loginout": "loginout",
}


class FakeClock:
    """A clock that only moves when slept on; records the sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        with self._lock:
            self.sleeps.append(seconds)
            self.t += seconds

    def now_ms(self) -> int:
        return EPOCH_MS + round(self() * 1000)


class MaxRng(random.Random):
    """Full jitter that always picks the top of its range, so backoff is predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass
class Seen:
    """One request as the fake server saw it."""

    endpoint: str
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: str
    payload: dict[str, Any] | None
    at: float


Answer = bytes | tuple[int, bytes] | Exception | int | str


@dataclass
class FakeNppa:
    """A fake real-name system: validates requests like the real one and answers."""

    clock: FakeClock
    script: dict[str, list[Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    query_status: dict[str, list[int]] = field(default_factory=dict)
    bad_si_prefix: str = "bad"

    def queue(self, endpoint: str, *answers: Answer) -> None:
        self.script.setdefault(endpoint, []).extend(answers)

    def of(self, endpoint: str) -> list[Seen]:
        return [s for s in self.seen if s.endpoint == endpoint]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        h = request.headers
        if any(k not in h for k in ("appId", "bizId", "timestamps", "sign")):
            return httpx.Response(200, content=p.error_response("SYS REQ HEADER MISS ERROR"))
        assert h["content-type"] == CONTENT_TYPE
        query = dict(request.url.params)
        body = request.content.decode("utf-8")
        signed = {"appId": h["appId"], "bizId": h["bizId"], "timestamps": h["timestamps"], **query}
        if h["sign"] != p.sign(SECRET, signed, body):
            return httpx.Response(200, content=p.error_response("SYS REQ PARTNER AUTH ERROR"))
        if abs(int(h["timestamps"]) - self.clock.now_ms()) > 5000:
            return httpx.Response(200, content=p.error_response("SYS REQ EXPIRE ERROR"))
        path = request.url.path
        name = PATHS.get(path) or next(
            (n for n in PATHS.values() if path.startswith("/test/") and f"/{n}/" in path),
            None,
        )
        if name is None:
            name = "loginout" if path.startswith("/test/collection/loginout/") else "?"
        payload = p.decrypt_body(SECRET, body) if body else None
        self.seen.append(
            Seen(name, request.method, path, dict(h), query, body, payload, self.clock())
        )
        script = self.script.get(name)
        answer: Answer = script.pop(0) if script else self.default(name, payload, query)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            info = p.load_protocol().by_code[answer]
            return httpx.Response(200, content=p.response(info.code, info.errmsg))
        if isinstance(answer, str):
            return httpx.Response(200, content=p.error_response(answer))
        if isinstance(answer, tuple):
            return httpx.Response(answer[0], content=answer[1])
        return httpx.Response(200, content=answer)

    def default(self, name: str, payload: dict[str, Any] | None, query: dict[str, str]) -> bytes:
        if name == "check":
            assert payload is not None
            number = payload["idNum"]
            if number == ID_PENDING:
                return ok_result(CheckStatus.PENDING)
            if number == ID_FAILED:
                return ok_result(CheckStatus.FAILED)
            return ok_result(CheckStatus.OK, pi_of(number))
        if name == "query":
            statuses = self.query_status.get(query["ai"], [0])
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            pi = pi_of(query["ai"]) if status == 0 else None
            return ok_result(CheckStatus(status), pi)
        if name == "loginout":
            assert payload is not None
            bad = [
                {"no": c["no"], "errcode": 3010, "errmsg": "BUS COLL PLAYERID INVALID"}
                for c in payload["collections"]
                if c["si"].startswith(self.bad_si_prefix)
            ]
            if bad:
                return p.response(3001, "BUS COLL PARTIAL ERROR", {"results": bad})
            return p.response(0, "OK")
        return p.error_response("SYS REQ RESOURCE NOT EXIST")


def ok_result(status: CheckStatus, pi: str | None = None) -> bytes:
    result: dict[str, Any] = {"status": int(status)}
    if pi is not None:
        result["pi"] = pi
    return p.response(0, "OK", {"result": result})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> FakeNppa:
    return FakeNppa(clock)


def make_client(server: FakeNppa, **kw: Any) -> NppaClient:
    clock = server.clock
    kw.setdefault("rng", MaxRng())
    return NppaClient(
        BASE,
        APP_ID,
        BIZ_ID,
        SECRET,
        transport=httpx.MockTransport(server),
        clock=clock,
        sleep=clock.sleep,
        now_ms=clock.now_ms,
        **kw,
    )


@pytest.fixture
def client(server: FakeNppa) -> NppaClient:
    return make_client(server)


def guest(i: int, si: str | None = None) -> Behaviour:
    return Behaviour(
        si or ai_of(f"s{i}"), BehaviourType(i % 2), 1_700_000_000 + i, PlayerType.GUEST, di=ai_of(i)
    )


# ----------------------------------------------------------------------- check and query


def test_check_ok(client: NppaClient, server: FakeNppa) -> None:
    result = client.check(ai_of(1), " 张三 ", ID_OK)
    assert result == CheckResult(CheckStatus.OK, pi_of(ID_OK))
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/idcard/authentication/check")
    assert seen.payload == {"ai": ai_of(1), "name": "张三", "idNum": ID_OK}
    assert seen.headers["appid"] == APP_ID and seen.headers["bizid"] == BIZ_ID
    assert seen.headers["timestamps"] == str(EPOCH_MS)
    assert seen.query == {}
    assert client.stats.requests == {"check": 1, "query": 0, "loginout": 0}
    assert client.stats.total_retries == 0


def test_check_sends_exact_header_names(client: NppaClient, server: FakeNppa) -> None:
    request = client.build_request("check", payload={"ai": ai_of(1)})
    names = [k for k, _ in request.headers.raw]
    for name in (b"appId", b"bizId", b"timestamps", b"sign", b"Content-Type"):
        assert name in names
    assert request.headers["Content-Type"] == "application/json;charset=utf-8"


@pytest.mark.parametrize(
    ("number", "status"), [(ID_PENDING, CheckStatus.PENDING), (ID_FAILED, CheckStatus.FAILED)]
)
def test_check_pending_and_failed(client: NppaClient, number: str, status: CheckStatus) -> None:
    assert client.check(ai_of(2), "李四", number) == CheckResult(status, None)


def test_check_sends_18_digit_form_of_legacy_number(client: NppaClient, server: FakeNppa) -> None:
    legacy = "110105491231002"  # 15 digits, 1949-12-31
    client.check(ai_of(3), "王五", legacy)
    assert server.seen[0].payload is not None
    assert server.seen[0].payload["idNum"] == to_18(legacy) == "11010519491231002X"


def test_query(client: NppaClient, server: FakeNppa) -> None:
    ai = ai_of(4)
    assert client.query(ai) == CheckResult(CheckStatus.OK, pi_of(ai))
    (seen,) = server.seen
    assert (seen.method, seen.path, seen.query, seen.body) == (
        "GET",
        "/idcard/authentication/query",
        {"ai": ai},
        "",
    )
    signed = {
        "appId": APP_ID,
        "bizId": BIZ_ID,
        "timestamps": seen.headers["timestamps"],
        "ai": ai,
    }
    assert seen.headers["sign"] == p.sign(SECRET, signed, "")
    assert client.stats.requests["query"] == 1


def test_check_and_wait_pending_then_ok(client: NppaClient, server: FakeNppa) -> None:
    ai = ai_of(5)
    server.query_status[ai] = [1, 1, 0]
    result = client.check_and_wait(ai, "赵六", ID_PENDING, poll_interval=2.0, timeout=60)
    assert result == CheckResult(CheckStatus.OK, pi_of(ai))
    assert [s.endpoint for s in server.seen] == ["check", "query", "query", "query"]
    assert [round(s.at, 6) for s in server.of("query")] == [2.0, 4.0, 6.0]


def test_check_and_wait_gives_up_at_timeout(client: NppaClient, server: FakeNppa) -> None:
    ai = ai_of(6)
    server.query_status[ai] = [1]
    result = client.check_and_wait(ai, "赵六", ID_PENDING, poll_interval=1.0, timeout=5.5)
    assert result.status is CheckStatus.PENDING
    queries = server.of("query")
    assert len(queries) == 6  # at 1, 2, 3, 4, 5 and the deadline 5.5
    assert queries[-1].at == pytest.approx(5.5)


def test_check_and_wait_does_not_poll_a_final_answer(client: NppaClient, server: FakeNppa) -> None:
    assert client.check_and_wait(ai_of(7), "钱七", ID_FAILED).status is CheckStatus.FAILED
    assert [s.endpoint for s in server.seen] == ["check"]


def test_test_codes_use_test_paths(server: FakeNppa) -> None:
    client = make_client(server, test_codes={"check": "AbC123", "loginout": "Zz9"})
    client.check(ai_of(8), "测试", ID_OK)
    client.query(ai_of(8))
    client.upload([guest(1)])
    assert [s.path for s in server.seen] == [
        "/test/authentication/check/AbC123",
        "/idcard/authentication/query",
        "/test/collection/loginout/Zz9",
    ]


# ----------------------------------------------------------------------- upload


def test_upload_one_batch(client: NppaClient, server: FakeNppa) -> None:
    items = [guest(i) for i in range(5)]
    assert client.upload(items) == []
    (seen,) = server.seen
    assert seen.path == "/behavior/collection/loginout"
    assert seen.payload == {"collections": [it.wire(no) for no, it in enumerate(items, 1)]}


def test_upload_verified_player(client: NppaClient, server: FakeNppa) -> None:
    item = Behaviour(
        ai_of("s"), BehaviourType.LOGIN, 1_700_000_000, PlayerType.VERIFIED, pi="p" * 38
    )
    client.upload([item])
    assert server.seen[0].payload == {
        "collections": [
            {"no": 1, "si": ai_of("s"), "bt": 1, "ot": 1_700_000_000, "ct": 0, "pi": "p" * 38}
        ]
    }


def test_upload_all_splits_300_items_into_3_batches(client: NppaClient, server: FakeNppa) -> None:
    items = [guest(i) for i in range(300)]
    assert client.upload_all(items) == []
    batches = server.of("loginout")
    assert [len(s.payload["collections"]) for s in batches if s.payload] == [128, 128, 44]
    sent = [c for s in batches if s.payload for c in s.payload["collections"]]
    assert [c["no"] for c in sent] == [*range(1, 129), *range(1, 129), *range(1, 45)]
    assert [c["si"] for c in sent] == [it.si for it in items]
    assert client.stats.requests["loginout"] == 3


def test_upload_all_maps_partial_errors_to_input_positions(
    client: NppaClient, server: FakeNppa
) -> None:
    bad = {5, 127, 128, 130, 299}  # 0-based positions in the whole input
    items = [guest(i, si=("bad" + ai_of(i))[:32] if i in bad else None) for i in range(300)]
    results = client.upload_all(items)
    assert [r.no - 1 for r in results] == sorted(bad)
    assert all(items[r.no - 1].si.startswith("bad") for r in results)
    assert {(r.errcode, r.errmsg) for r in results} == {(3010, "BUS COLL PLAYERID INVALID")}


def test_upload_returns_batch_positions(client: NppaClient) -> None:
    items = [guest(0), guest(1, si=("bad" + ai_of(1))[:32]), guest(2)]
    assert [r.no for r in client.upload(items)] == [2]


def test_upload_errcode_0_with_results_returns_them(client: NppaClient, server: FakeNppa) -> None:
    server.queue(
        "loginout",
        p.response(
            0,
            "OK",
            {"results": [{"no": 1, "errcode": 3005, "errmsg": "BUS COLL BEHAVIOR TIME ERROR"}]},
        ),
    )
    assert client.upload([guest(0)]) == [p.ItemResult(1, 3005, "BUS COLL BEHAVIOR TIME ERROR")]


@pytest.mark.parametrize("count", [0, 129])
def test_upload_batch_size_limits(client: NppaClient, server: FakeNppa, count: int) -> None:
    with pytest.raises(ValueError):
        client.upload([guest(i) for i in range(count)])
    assert server.seen == []


def test_upload_all_empty_sends_nothing(client: NppaClient, server: FakeNppa) -> None:
    assert client.upload_all([]) == []
    assert server.seen == []


def test_upload_rejected_batch_raises(client: NppaClient, server: FakeNppa) -> None:
    server.queue("loginout", "BUS COLL OVER LIMIT COUNT")
    with pytest.raises(p.CollectionRejected, match="OVER LIMIT"):
        client.upload([guest(0)])
    assert len(server.seen) == 1


def test_partial_error_without_results_raises(client: NppaClient, server: FakeNppa) -> None:
    server.queue("loginout", "BUS COLL PARTIAL ERROR")
    with pytest.raises(p.CollectionRejected, match="PARTIAL"):
        client.upload([guest(0)])


def test_result_number_outside_batch_is_protocol_violation(
    client: NppaClient, server: FakeNppa
) -> None:
    results = {"results": [{"no": 9, "errcode": 3004, "errmsg": "BUS COLL NO INVALID"}]}
    server.queue("loginout", p.response(3001, "BUS COLL PARTIAL ERROR", results))
    with pytest.raises(ProtocolViolation, match="outside the batch"):
        client.upload([guest(0)])


def test_non_numeric_item_errcode_is_protocol_violation(
    client: NppaClient, server: FakeNppa
) -> None:
    results = {"results": [{"no": 1, "errcode": "x", "errmsg": "?"}]}
    server.queue("loginout", p.response(3001, "BUS COLL PARTIAL ERROR", results))
    with pytest.raises(ProtocolViolation, match="results"):
        client.upload([guest(0)])


def test_upload_all_failure_names_the_batch(client: NppaClient, server: FakeNppa) -> None:
    server.queue("loginout", p.response(0, "OK"), "BUS COLL BEHAVIOR NULL ERROR")
    with pytest.raises(p.CollectionRejected) as info:
        client.upload_all([guest(i) for i in range(200)])
    assert any(
        "batch 2 of 2" in n and "items 1-128 were accepted" in n for n in info.value.__notes__
    )


# ----------------------------------------------------------------------- retries


RETRYABLE: list[tuple[str, Callable[[], Answer]]] = [
    ("1006 busy", lambda: 1006),
    ("1007 expired", lambda: 1007),
    ("1001 server error", lambda: 1001),
    ("HTTP 503", lambda: (503, b"<html>unavailable</html>")),
    ("HTTP 500 with 1001", lambda: (500, p.error_response("SYS ERROR"))),
    ("connect timeout", lambda: httpx.ConnectTimeout("connect timed out")),
    ("read timeout", lambda: httpx.ReadTimeout("read timed out")),
    ("connection reset", lambda: httpx.ReadError("connection reset")),
]


@pytest.mark.parametrize(("label", "failure"), RETRYABLE, ids=[r[0] for r in RETRYABLE])
def test_retries_with_growing_backoff_and_fresh_signature(
    server: FakeNppa, label: str, failure: Callable[[], Answer]
) -> None:
    client = make_client(server, max_retries=4, backoff=0.2, max_backoff=5.0)
    server.queue("check", failure(), failure(), failure())
    assert client.check(ai_of(10), "重试", ID_OK).status is CheckStatus.OK
    attempts = server.of("check")
    assert len(attempts) == 4
    assert client.stats.requests["check"] == 4 and client.stats.retries["check"] == 3
    assert list(client.stats.backoffs) == pytest.approx([0.2, 0.4, 0.8])  # grows: 0.2 * 2**k
    # every attempt is re-signed: new timestamp, new IV (so new body), new signature
    assert len({a.headers["timestamps"] for a in attempts}) == 4
    assert len({a.body for a in attempts}) == 4
    assert len({a.headers["sign"] for a in attempts}) == 4
    assert all(a.payload == attempts[0].payload for a in attempts)


def test_backoff_is_capped_and_last_error_raised(server: FakeNppa) -> None:
    client = make_client(server, max_retries=6, backoff=1.0, max_backoff=5.0)
    server.queue("query", *([1006] * 7))
    with pytest.raises(p.RateLimited):
        client.query(ai_of(11))
    assert len(server.of("query")) == 7
    assert list(client.stats.backoffs) == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert client.stats.backoff_seconds == 22.0


def test_full_jitter_stays_within_the_cap(server: FakeNppa) -> None:
    client = make_client(server, max_retries=8, backoff=0.5, max_backoff=3.0, rng=random.Random(7))
    server.queue("query", *([1001] * 9))
    with pytest.raises(p.ServerError):
        client.query(ai_of(12))
    caps = [min(3.0, 0.5 * 2**k) for k in range(8)]
    assert all(0 <= b <= c for b, c in zip(client.stats.backoffs, caps, strict=True))


def test_5xx_without_protocol_body_raises_http_status_error(server: FakeNppa) -> None:
    client = make_client(server, max_retries=2)
    server.queue("check", *([(502, b"bad gateway")] * 3))
    with pytest.raises(httpx.HTTPStatusError):
        client.check(ai_of(13), "网关", ID_OK)
    assert len(server.of("check")) == 3


def test_transport_error_raised_after_retries(server: FakeNppa) -> None:
    client = make_client(server, max_retries=1)
    server.queue("check", httpx.ConnectError("refused"), httpx.ConnectError("refused"))
    with pytest.raises(httpx.ConnectError):
        client.check(ai_of(14), "网络", ID_OK)
    assert client.stats.requests["check"] == 2


def test_max_retries_zero_means_one_attempt(server: FakeNppa) -> None:
    client = make_client(server, max_retries=0)
    server.queue("check", 1006)
    with pytest.raises(p.RateLimited):
        client.check(ai_of(15), "一次", ID_OK)
    assert len(server.seen) == 1 and not client.stats.backoffs


NOT_RETRYABLE: list[tuple[Answer, type[p.RealNameError]]] = [
    (1011, p.SignatureRejected),
    (1012, p.BodyRejected),
    (1008, p.PartnerRejected),
    (1004, p.HeaderMissing),
    (4003, p.TestSystemError),
    ("BUS AUTH IDNUM ILLEGAL", p.IdentityRejected),
    ("BUS AUTH CODE ALREADY IN USE", p.IdentityRejected),
    ("BUS AUTH RESOURCE LIMIT", p.IdentityRejected),
    ((400, p.error_response("SYS REQ PARAM CHECK ERROR")), p.BodyRejected),
]


@pytest.mark.parametrize(("answer", "cls"), NOT_RETRYABLE)
def test_no_retry_on_final_errors(
    client: NppaClient, server: FakeNppa, answer: Answer, cls: type[p.RealNameError]
) -> None:
    server.queue("check", answer)
    with pytest.raises(cls) as info:
        client.check(ai_of(16), "终局", ID_OK)
    assert type(info.value) is cls
    assert len(server.seen) == 1
    assert client.stats.total_retries == 0
    assert server.clock.sleeps == []


def test_wrong_secret_is_rejected_by_server_without_retry(server: FakeNppa) -> None:
    client = NppaClient(
        BASE,
        APP_ID,
        BIZ_ID,
        "00112233445566778899aabbccddeeff",
        transport=httpx.MockTransport(server),
        clock=server.clock,
        sleep=server.clock.sleep,
        now_ms=server.clock.now_ms,
    )
    with pytest.raises(p.SignatureRejected):
        client.query(ai_of(17))
    assert client.stats.requests["query"] == 1


def test_stale_clock_gets_1007_then_gives_up(server: FakeNppa) -> None:
    clock = server.clock
    client = NppaClient(
        BASE,
        APP_ID,
        BIZ_ID,
        SECRET,
        max_retries=2,
        transport=httpx.MockTransport(server),
        clock=clock,
        sleep=clock.sleep,
        now_ms=lambda: clock.now_ms() - 60_000,  # a minute slow: every attempt expired
        rng=MaxRng(),
    )
    with pytest.raises(p.RequestExpired):
        client.query(ai_of(18))
    assert client.stats.requests["query"] == 3


# ----------------------------------------------------------------------- malformed answers


@pytest.mark.parametrize(
    ("endpoint", "answer", "message"),
    [
        ("check", b"<html>hello</html>", "not JSON"),
        ("check", b'{"status": "ok"}', "errcode"),
        ("check", p.response(0, "OK"), "status"),
        ("check", p.response(0, "OK", {"result": {"status": 7}}), "status"),
        ("check", p.response(0, "OK", {"result": {"status": 0}}), "pi"),
        ("check", p.response(0, "OK", {"result": {"status": 0, "pi": "short"}}), "pi"),
        ("query", (404, b"not found"), "HTTP 404"),
        ("check", (302, p.response(0, "OK")), "HTTP 302"),
    ],
)
def test_malformed_answer_is_protocol_violation(
    client: NppaClient, server: FakeNppa, endpoint: str, answer: Answer, message: str
) -> None:
    server.queue(endpoint, answer)
    call = client.query if endpoint == "query" else lambda ai: client.check(ai, "坏", ID_OK)
    with pytest.raises(ProtocolViolation, match=message) as info:
        call(ai_of(19))
    assert info.value.endpoint == endpoint
    assert isinstance(info.value, ValueError)
    assert len(server.seen) == 1  # never retried


# ----------------------------------------------------------------------- rate limiting


def test_default_qps_from_protocol(client: NppaClient) -> None:
    assert {n: b.rate for n, b in client.limiters.items()} == {
        "check": 100.0,
        "query": 300.0,
        "loginout": 10.0,
    }
    assert all(b.capacity == 1.0 for b in client.limiters.values())


def test_rate_limiter_spaces_requests(server: FakeNppa) -> None:
    client = make_client(server, qps={"check": 5})
    for i in range(6):
        client.check(ai_of(f"r{i}"), "限速", ID_OK)
    times = [s.at for s in server.of("check")]
    assert times[0] == 0.0
    assert all(b - a == pytest.approx(0.2) for a, b in itertools.pairwise(times))
    assert client.stats.rate_wait_seconds["check"] == pytest.approx(1.0)


def test_upload_all_respects_loginout_qps(client: NppaClient, server: FakeNppa) -> None:
    client.upload_all([guest(i) for i in range(128 * 11)])
    times = [s.at for s in server.of("loginout")]
    assert len(times) == 11
    # at 10 QPS, no sliding second holds more than 10 requests (up to float rounding of the
    # fake clock: ten sleeps of 0.1 add up to 0.9999999999999999)
    assert all(sum(1 for u in times if t <= u < t + 1 - 1e-9) <= 10 for t in times)
    assert times[-1] == pytest.approx(1.0)


def test_retries_wait_for_the_rate_limiter(server: FakeNppa) -> None:
    client = make_client(server, qps={"query": 1}, backoff=0.01)
    server.queue("query", 1006)
    client.query(ai_of(20))
    first, second = server.of("query")
    assert second.at - first.at == pytest.approx(1.0)  # 0.01 backoff, then the limiter
    assert client.stats.rate_wait_seconds["query"] == pytest.approx(0.99)


def test_concurrent_use_counts_every_request(server: FakeNppa) -> None:
    client = make_client(server)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(20):
                client.query(ai_of(f"t{k}-{i}"))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert client.stats.requests["query"] == 80 == len(server.of("query"))


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("ai", "name", "number", "field"),
    [
        ("x" * 31, "张三", ID_OK, "ai"),
        ("x" * 33, "张三", ID_OK, "ai"),
        (ai_of(1), "  ", ID_OK, "name"),
        (ai_of(1), "张三", ID_OK[:-1] + ("0" if ID_OK[-1] != "0" else "1"), "idNum"),
        (ai_of(1), "张三", "12345", "idNum"),
        (ai_of(1), "张三", "11010520990101123X", "idNum"),
    ],
)
def test_check_validates_before_sending(
    client: NppaClient, server: FakeNppa, ai: str, name: str, number: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        client.check(ai, name, number)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert server.seen == []


def test_bad_id_number_keeps_the_reason(client: NppaClient) -> None:
    wrong = ID_OK[:-1] + ("0" if ID_OK[-1] != "0" else "1")
    with pytest.raises(InvalidInput) as info:
        client.check(ai_of(1), "张三", wrong)
    assert isinstance(info.value.__cause__, InvalidChecksum)
    assert isinstance(info.value, ValueError)


def test_query_validates_ai(client: NppaClient, server: FakeNppa) -> None:
    with pytest.raises(InvalidInput, match="ai: must be exactly 32"):
        client.query("short")
    assert server.seen == []


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (Behaviour("s" * 31, BehaviourType.LOGIN, 1, PlayerType.GUEST, di="d" * 32), "si"),
        (Behaviour("s" * 32, BehaviourType.LOGIN, 1, PlayerType.GUEST), "di"),
        (Behaviour("s" * 32, BehaviourType.LOGIN, 1, PlayerType.GUEST, di="d" * 31), "di"),
        (Behaviour("s" * 32, BehaviourType.LOGIN, 1, PlayerType.VERIFIED), "pi"),
        (Behaviour("s" * 32, BehaviourType.LOGIN, 1, PlayerType.VERIFIED, pi="p" * 32), "pi"),
        (Behaviour("s" * 32, BehaviourType.LOGIN, 0, PlayerType.GUEST, di="d" * 32), "ot"),
        (Behaviour("s" * 32, 5, 1, PlayerType.GUEST, di="d" * 32), "bt"),  # type: ignore[arg-type]
        (Behaviour("s" * 32, BehaviourType.LOGIN, 1, 1, di="d" * 32), "ct"),  # type: ignore[arg-type]
    ],
)
def test_upload_validates_items_before_sending(
    client: NppaClient, server: FakeNppa, item: Behaviour, field: str
) -> None:
    items = [guest(i) for i in range(200)]
    items[150] = item
    with pytest.raises(InvalidInput) as info:
        client.upload_all(items)
    assert info.value.field == f"collections[150].{field}"
    assert info.value.index == 150
    assert server.seen == []  # nothing sent, not even the first batch
    problems = client.invalid_items(items)
    assert [(e.index, e.field) for e in problems] == [(150, f"collections[150].{field}")]


def test_constructor_checks() -> None:
    with pytest.raises(p.BadSecret):
        NppaClient(BASE, APP_ID, BIZ_ID, "not-hex")
    with pytest.raises(ValueError, match="unknown endpoint"):
        NppaClient(BASE, APP_ID, BIZ_ID, SECRET, test_codes={"chek": "x"})
    with pytest.raises(ValueError, match="unknown endpoint"):
        NppaClient(BASE, APP_ID, BIZ_ID, SECRET, qps={"upload": 1})
    with pytest.raises(ValueError):
        NppaClient(BASE, APP_ID, BIZ_ID, SECRET, max_retries=-1)


def test_context_manager_closes(server: FakeNppa) -> None:
    with make_client(server) as client:
        client.query(ai_of(21))
    with pytest.raises(RuntimeError):
        client.query(ai_of(21))


# ----------------------------------------------------------------------- verifiers


def test_nppa_verifier(client: NppaClient, server: FakeNppa) -> None:
    verifier = NppaVerifier(client)
    assert isinstance(verifier, RealNameVerifier)
    ai = ai_of(30)
    server.query_status[ai] = [0]
    pending = verifier.verify(VerifyRequest(ai, "孙八", ID_PENDING))
    assert pending == VerifyResult(CheckStatus.PENDING, None, "nppa", ai, None)
    assert pending.pending and not pending.verified
    assert [s.endpoint for s in server.seen] == ["check"]  # verify does not wait
    done = verifier.status(ai)
    assert done == VerifyResult(CheckStatus.OK, pi_of(ai), "nppa", ai, None)
    assert done.verified


def test_callable_verifier_stamps_provider() -> None:
    def kyc(request: VerifyRequest) -> VerifyResult:
        ok = request.id_number == ID_OK
        return VerifyResult(
            CheckStatus.OK if ok else CheckStatus.FAILED,
            None,
            "?",
            "kyc-1",
            None if ok else "no match",
        )

    verifier = CallableVerifier("bank-kyc", kyc)
    assert isinstance(verifier, RealNameVerifier)
    result = verifier.verify(VerifyRequest(ai_of(31), "周九", ID_FAILED))
    assert (result.status, result.provider, result.detail) == (
        CheckStatus.FAILED,
        "bank-kyc",
        "no match",
    )
    with pytest.raises(NotImplementedError):
        verifier.status("kyc-1")
    with_status = CallableVerifier(
        "bank-kyc", kyc, lambda ref: VerifyResult(CheckStatus.OK, None, "?", ref)
    )
    assert with_status.status("kyc-2") == VerifyResult(CheckStatus.OK, None, "bank-kyc", "kyc-2")


def test_registry(client: NppaClient) -> None:
    nppa = NppaVerifier(client, name="nppa-test-registry")
    own = CallableVerifier("own-test-registry", lambda r: VerifyResult(CheckStatus.OK, None, ""))
    try:
        register_verifier(nppa)
        register_verifier(own)
        assert get_verifier("nppa-test-registry") is nppa
        assert {"nppa-test-registry", "own-test-registry"} <= set(registered_verifiers())
        with pytest.raises(ValueError, match="already registered"):
            register_verifier(CallableVerifier("own-test-registry", lambda r: r))  # type: ignore[arg-type,return-value]
        other = CallableVerifier(
            "own-test-registry", lambda r: VerifyResult(CheckStatus.FAILED, None, "")
        )
        register_verifier(other, replace=True)
        assert get_verifier("own-test-registry") is other
        with pytest.raises(KeyError, match="no real-name verifier named 'missing'"):
            get_verifier("missing")
        with pytest.raises(TypeError):
            register_verifier(object())  # type: ignore[arg-type]
    finally:
        unregister_verifier("nppa-test-registry")
        unregister_verifier("own-test-registry")
    assert "own-test-registry" not in registered_verifiers()
