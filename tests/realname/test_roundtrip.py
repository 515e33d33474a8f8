"""Protocol round trips: qinglang's client against the emulator over real HTTP on loopback.

Every endpoint, and every failure the issue names: wrong signature, expired timestamp (> 5 s),
bad key, malformed body, over-QPS, pending then success; and the 8 official test cases driven
by the client in test mode.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator

import httpx
import pytest

from qinglang.realname import protocol as p
from qinglang.realname.client import SERVICE_HEADROOM, NppaClient
from qinglang.realname.emulator import (
    EmulatorConfig,
    Identity,
    Registry,
    RunningEmulator,
    generate_test_codes,
)

SECRET = "2836e95fcd10e04b0069bb1ee659955b"
OTHER = "00112233445566778899aabbccddeeff"
APP_ID = "test-appId"
BIZ_ID = "1101999999"
OK_ID = "110101198001010010"
PENDING_ID = "110101198001010029"
FAILED_ID = "110101198001010037"
UNKNOWN_ID = "110102198511021234"
AI = [f"{i:032x}" for i in range(1, 50)]


def no_sleep(_: float) -> None:
    """Retries back off without waiting in tests."""


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    registry = Registry(
        [
            Identity("张三", OK_ID, "ok"),
            Identity("李四", PENDING_ID, "pending", pending_queries=2),
            Identity("王五", FAILED_ID, "failed"),
        ]
    )
    config = EmulatorConfig(APP_ID, BIZ_ID, SECRET, registry, qps={"check": 100, "query": 300})
    with RunningEmulator(config) as running:
        yield running


def client(emu: RunningEmulator, **kw: object) -> NppaClient:
    kw.setdefault("sleep", no_sleep)
    kw.setdefault("rng", random.Random(1))
    return NppaClient(emu.url, APP_ID, BIZ_ID, kw.pop("secret", SECRET), **kw)  # type: ignore[arg-type]


def test_check_query_and_upload_round_trip(emu: RunningEmulator) -> None:
    with client(emu) as c:
        ok = c.check(AI[0], "张三", OK_ID)
        assert ok.status is p.CheckStatus.OK and ok.pi == emu.emulator.pi_for(OK_ID)
        assert c.query(AI[0]) == ok
        assert c.check(AI[1], "王五", FAILED_ID).status is p.CheckStatus.FAILED
        assert c.check(AI[2], "路人", UNKNOWN_ID).status is p.CheckStatus.FAILED
        now = int(time.time())
        items = [
            p.Behaviour(
                si=f"{i:032x}",
                bt=p.BehaviourType(i % 2),
                ot=now - 100 + i // 10,
                ct=p.PlayerType.VERIFIED,
                pi=ok.pi,
            )
            for i in range(300)
        ]
        assert c.upload_all(items) == []
    got = emu.emulator.accepted
    assert len(got) == 300 and emu.emulator.request_counts()["loginout"] == 3
    assert [(g.si, g.bt) for g in got] == [(b.si, int(b.bt)) for b in items]


def test_pending_then_success(emu: RunningEmulator) -> None:
    with client(emu) as c:
        first = c.check(AI[3], "李四", PENDING_ID)
        assert first.status is p.CheckStatus.PENDING and first.pi is None
        done = c.check_and_wait(AI[4], "李四", PENDING_ID, poll_interval=0.01, timeout=5)
        assert done.status is p.CheckStatus.OK and done.pi == emu.emulator.pi_for(PENDING_ID)
    assert emu.emulator.request_counts()["query"] >= 1


def test_wrong_signature_is_rejected(emu: RunningEmulator) -> None:
    with client(emu, secret=OTHER) as c, pytest.raises(p.SignatureRejected) as exc:
        c.check(AI[5], "张三", OK_ID)
    assert exc.value.code == 1011 and not exc.value.retryable
    assert emu.emulator.request_counts()["check"] == 1  # final: no retry


def test_expired_timestamp_is_retried_then_raised(emu: RunningEmulator) -> None:
    skewed = lambda: int(time.time() * 1000) - 6_000  # noqa: E731  (6 s behind: > 5 s)
    with client(emu, now_ms=skewed, max_retries=2) as c, pytest.raises(p.RequestExpired) as exc:
        c.check(AI[6], "张三", OK_ID)
    assert exc.value.code == 1007
    assert emu.emulator.request_counts()["check"] == 3  # retryable: re-signed twice
    assert c.stats.total_retries == 2


def _signed_post(emu: RunningEmulator, body: str, secret: str = SECRET) -> tuple[int, str]:
    """POST a raw body to check, signed with the right secret."""
    ts = str(int(time.time() * 1000))
    headers = {"appId": APP_ID, "bizId": BIZ_ID, "timestamps": ts}
    headers["sign"] = p.sign(secret, headers, body)
    headers["Content-Type"] = "application/json;charset=utf-8"
    r = httpx.post(
        emu.url + p.load_protocol().endpoints["check"].path, content=body, headers=headers
    )
    code, msg, _ = p.parse_response(r.content)
    return code, msg


def test_bad_key_is_rejected(emu: RunningEmulator) -> None:
    body = p.encrypt_body(OTHER, {"ai": AI[7], "name": "张三", "idNum": OK_ID})
    code, msg = _signed_post(emu, body)
    assert (code, msg) == (1012, "SYS REQ PARAM CHECK ERROR")
    assert isinstance(p.error_for(code, msg), p.BodyRejected)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"nodata": 1}),
        json.dumps({"data": "!!!not base64!!!"}),
        p.encrypt_body(SECRET, {"ai": "short", "name": "张三", "idNum": OK_ID}),
        json.dumps({"data": p.encrypt(SECRET, b"[1, 2]")}),
    ],
    ids=["not-json", "no-data", "not-base64", "short-ai", "not-an-object"],
)
def test_malformed_body_is_rejected(emu: RunningEmulator, body: str) -> None:
    assert _signed_post(emu, body) == (1012, "SYS REQ PARAM CHECK ERROR")


def test_over_qps_is_refused_and_the_client_stays_within(emu: RunningEmulator) -> None:
    config = EmulatorConfig(
        APP_ID, BIZ_ID, SECRET, Registry([Identity("张三", OK_ID)]), qps={"query": 5}
    )
    with RunningEmulator(config) as tight:
        with client(tight) as setup:
            setup.check(AI[8], "张三", OK_ID)
        # a client told the limit is 1,000 QPS, without retries, runs into 1006
        greedy = client(tight, qps={"query": 1000}, max_retries=0)
        with greedy, pytest.raises(p.RateLimited) as exc:
            for _ in range(20):
                greedy.query(AI[8])
        assert exc.value.code == 1006 and exc.value.retryable
        # a client at the service's share of the limit (SERVICE_HEADROOM, 0.9) is never refused
        before = tight.emulator.error_counts().get("SYS REQ BUSY ERROR", 0)
        with client(tight, qps={"query": 5 * SERVICE_HEADROOM}, sleep=time.sleep) as polite:
            time.sleep(1.1)  # let the greedy client's second pass out of the window
            for _ in range(12):
                polite.query(AI[8])
        assert tight.emulator.error_counts().get("SYS REQ BUSY ERROR", 0) == before


def test_query_of_an_unknown_ai_is_a_typed_business_error(emu: RunningEmulator) -> None:
    with client(emu) as c, pytest.raises(p.IdentityRejected) as exc:
        c.query(AI[9])
    assert exc.value.errmsg == "BUS AUTH CODE NO AUTH RECODE"


def test_the_eight_official_test_cases(emu: RunningEmulator) -> None:
    codes = generate_test_codes()
    config = EmulatorConfig(APP_ID, BIZ_ID, SECRET, Registry(), test_codes=codes)
    by_case = {case: code for code, case in codes.items()}
    now = int(time.time())
    with RunningEmulator(config) as test_system:

        def c(case: int, endpoint: str) -> NppaClient:
            return client(test_system, test_codes={endpoint: by_case[case]})

        expected = {1: p.CheckStatus.OK, 2: p.CheckStatus.PENDING, 3: p.CheckStatus.FAILED}
        for case, status in expected.items():
            with c(case, "check") as cl:
                assert cl.check(AI[10 + case], "某一一", OK_ID).status is status
        for case, status in zip((4, 5, 6), expected.values(), strict=True):
            with c(case, "query") as cl:
                assert cl.query(AI[10 + case]).status is status
        guest = p.Behaviour(
            si="g" * 32, bt=p.BehaviourType.LOGIN, ot=now, ct=p.PlayerType.GUEST, di="d" * 32
        )
        with c(7, "loginout") as cl:
            assert cl.upload([guest]) == []
        user = p.Behaviour(
            si="u" * 32, bt=p.BehaviourType.LOGIN, ot=now, ct=p.PlayerType.VERIFIED, pi="1" * 38
        )
        with c(8, "loginout") as cl:
            assert cl.upload([user]) == []
        # a verified user's report sent under the guest case is the wrong scene
        with c(7, "loginout") as cl, pytest.raises(p.TestSystemError) as exc:
            cl.upload([user])
        assert exc.value.code == 4003
        results = test_system.emulator.test_case_results()
    assert sorted(results) == list(range(1, 9))
    assert all(r.passed for r in results.values())
