"""The real-name system emulator: every error path, the business logic, the 8 test cases,
the records, and the emulator served over HTTP on loopback."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from qinglang.realname import protocol as p
from qinglang.realname.emulator import (
    ADMIN_STATE_PATH,
    OT_FUTURE_TOLERANCE_S,
    OT_MAX_AGE_S,
    TEST_CASES,
    Emulator,
    EmulatorConfig,
    Identity,
    Registry,
    RegistryError,
    RunningEmulator,
    demo_registry,
    derive_pi,
    generate_test_codes,
)

SECRET = "2836e95fcd10e04b0069bb1ee659955b"
OTHER_SECRET = "00112233445566778899aabbccddeeff"
APP_ID = "test-appId"
BIZ_ID = "1101999999"
NOW_MS = 1_800_000_000_000
NOW_S = NOW_MS // 1000

OK_ID = "110101198001010010"
PENDING_ID = "110101198001010029"
FAILED_ID = "110101198001010037"
PENDING3_ID = "110101198001010045"
UNKNOWN_ID = "110102198511021234"  # valid, not registered
BAD_CHECKSUM_ID = "110101198001010011"

AI1 = "a" * 32
AI2 = "b" * 32
SI = "s" * 32
DI = "d" * 32

PROTO = p.load_protocol()


class Clock:
    """A settable fake clock in milliseconds."""

    def __init__(self, now: int = NOW_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def registry() -> Registry:
    return Registry(
        [
            Identity("张三", OK_ID, "ok"),
            Identity("李四", PENDING_ID, "pending"),
            Identity("王五", FAILED_ID, "failed"),
            Identity("赵六", PENDING3_ID, "pending", pending_queries=3),
        ]
    )


def make(clock: Clock | None = None, **kw: Any) -> Emulator:
    kw.setdefault("registry", registry())
    return Emulator(EmulatorConfig(APP_ID, BIZ_ID, SECRET, clock_ms=clock or Clock(), **kw))


def build(
    endpoint: str,
    payload: Mapping[str, Any] | None = None,
    *,
    query: Mapping[str, str] | None = None,
    code: str | None = None,
    ts: int = NOW_MS,
    secret: str = SECRET,
    sign_secret: str | None = None,
    body: str | None = None,
) -> tuple[str, str, str, dict[str, str], bytes]:
    """(method, path, query string, headers, body) of a correctly signed request."""
    ep = PROTO.endpoints[endpoint]
    if body is None:
        body = p.encrypt_body(secret, payload) if payload is not None else ""
    headers = {"appId": APP_ID, "bizId": BIZ_ID, "timestamps": str(ts)}
    headers["sign"] = p.sign(sign_secret or secret, {**headers, **(query or {})}, body)
    qs = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    return ep.method, ep.url_path(code), qs, headers, body.encode("utf-8")


def send(em: Emulator, req: tuple[str, str, str, dict[str, str], bytes]) -> tuple[int, str, Any]:
    status, raw = em.handle(*req)
    assert status == 200
    errcode, errmsg, data = p.parse_response(raw)
    return errcode, errmsg, data


def call(em: Emulator, endpoint: str, payload: Any = None, **kw: Any) -> tuple[int, str, Any]:
    return send(em, build(endpoint, payload, **kw))


def check(em: Emulator, ai: str, name: str, id_num: str, **kw: Any) -> tuple[int, str, Any]:
    return call(em, "check", {"ai": ai, "name": name, "idNum": id_num}, **kw)


def query(em: Emulator, ai: str, **kw: Any) -> tuple[int, str, Any]:
    return call(em, "query", query={"ai": ai}, **kw)


def upload(em: Emulator, items: list[dict[str, Any]], **kw: Any) -> tuple[int, str, Any]:
    return call(em, "loginout", {"collections": items}, **kw)


def err(name: str) -> tuple[int, str]:
    info = PROTO.error(name)
    return info.code, info.errmsg


def status_of(answer: tuple[int, str, Any]) -> p.CheckResult:
    errcode, errmsg, data = answer
    assert (errcode, errmsg) == (0, "OK"), answer
    return p.check_result(data)


def guest(no: int, **kw: Any) -> dict[str, Any]:
    return {"no": no, "si": SI, "bt": 1, "ot": NOW_S, "ct": 2, "di": DI, **kw}


def verified(no: int, pi: str | None, **kw: Any) -> dict[str, Any]:
    return {"no": no, "si": SI, "bt": 1, "ot": NOW_S, "ct": 0, "pi": pi, **kw}


# --------------------------------------------------------------------------- identity check


def test_check_verified_identity_answers_status_0_with_its_pi() -> None:
    em = make()
    result = status_of(check(em, AI1, "张三", OK_ID))
    assert result.status == p.CheckStatus.OK
    assert result.pi == em.pi_for(OK_ID) == derive_pi(APP_ID, OK_ID)
    assert re.fullmatch(r"[0-9a-z]{38}", result.pi)


def test_pi_is_deterministic_per_identity_and_app() -> None:
    assert make().pi_for(OK_ID) == make().pi_for(OK_ID)
    assert derive_pi(APP_ID, OK_ID) != derive_pi("other-app", OK_ID)
    assert derive_pi(APP_ID, OK_ID) != derive_pi(APP_ID, PENDING_ID)


def test_check_failed_unknown_and_wrong_name_answer_status_2_without_pi() -> None:
    em = make()
    for ai, name, id_num in (
        ("1" * 32, "王五", FAILED_ID),
        ("2" * 32, "某人", UNKNOWN_ID),
        ("3" * 32, "冒名", OK_ID),  # registered number under another name
    ):
        assert status_of(check(em, ai, name, id_num)) == p.CheckResult(p.CheckStatus.FAILED)
        assert status_of(query(em, ai)) == p.CheckResult(p.CheckStatus.FAILED)


@pytest.mark.parametrize(
    "id_num", [BAD_CHECKSUM_ID, "110101800101001", "abc", "11010119800230001X"]
)
def test_check_invalid_identity_number(id_num: str) -> None:
    assert check(make(), AI1, "张三", id_num)[:2] == err("BUS AUTH IDNUM ILLEGAL")


def test_ai_reused_for_another_identity_is_rejected_same_identity_is_not() -> None:
    em = make()
    assert status_of(check(em, AI1, "张三", OK_ID)).status == 0
    assert status_of(check(em, AI1, "张三", OK_ID)).status == 0
    assert check(em, AI1, "王五", FAILED_ID)[:2] == err("BUS AUTH CODE ALREADY IN USE")
    assert check(em, AI1, "张三丰", OK_ID)[:2] == err("BUS AUTH CODE ALREADY IN USE")
    assert em.error_counts() == {"BUS AUTH CODE ALREADY IN USE": 2}


def test_query_of_unknown_ai() -> None:
    assert query(make(), AI1)[:2] == err("BUS AUTH CODE NO AUTH RECODE")


def test_query_of_verified_identity() -> None:
    em = make()
    check(em, AI1, "张三", OK_ID)
    assert status_of(query(em, AI1)) == p.CheckResult(p.CheckStatus.OK, em.pi_for(OK_ID))


def test_pending_then_verified_at_first_query() -> None:
    em = make()
    assert status_of(check(em, AI1, "李四", PENDING_ID)) == p.CheckResult(p.CheckStatus.PENDING)
    assert status_of(query(em, AI1)) == p.CheckResult(p.CheckStatus.OK, em.pi_for(PENDING_ID))
    assert status_of(query(em, AI1)).status == p.CheckStatus.OK


def test_pending_queries_3_answers_pending_twice_then_verified() -> None:
    em = make()
    assert status_of(check(em, AI1, "赵六", PENDING3_ID)).status == p.CheckStatus.PENDING
    statuses = [status_of(query(em, AI1)).status for _ in range(4)]
    assert statuses == [1, 1, 0, 0]
    # checking the same ai again does not move the identity back to pending
    assert status_of(check(em, AI1, "赵六", PENDING3_ID)).status == p.CheckStatus.OK


# --------------------------------------------------------------------------- system errors


def test_unknown_path() -> None:
    em = make()
    _, _, qs, headers, body = build("check", {"ai": AI1, "name": "张三", "idNum": OK_ID})
    assert send(em, ("POST", "/idcard/authentication/nope", qs, headers, body))[:2] == err(
        "SYS REQ RESOURCE NOT EXIST"
    )
    assert send(em, ("GET", "/", "", headers, b""))[:2] == err("SYS REQ RESOURCE NOT EXIST")
    assert em.request_counts() == {"unknown": 2}


@pytest.mark.parametrize(("endpoint", "method"), [("check", "GET"), ("query", "POST")])
def test_wrong_method(endpoint: str, method: str) -> None:
    _, path, qs, headers, body = build(endpoint, query={"ai": AI1})
    assert send(make(), (method, path, qs, headers, body))[:2] == err("SYS REQ METHOD ERROR")


@pytest.mark.parametrize("missing", ["appId", "bizId", "timestamps", "sign"])
def test_missing_header(missing: str) -> None:
    method, path, qs, headers, body = build("query", query={"ai": AI1})
    del headers[missing]
    assert send(make(), (method, path, qs, headers, body))[:2] == err("SYS REQ HEADER MISS ERROR")
    headers[missing] = ""
    assert send(make(), (method, path, qs, headers, body))[:2] == err("SYS REQ HEADER MISS ERROR")


def test_headers_are_case_insensitive() -> None:
    em = make()
    check(em, AI1, "张三", OK_ID)
    method, path, qs, headers, body = build("query", query={"ai": AI1})
    lower = {k.lower(): v for k, v in headers.items()}
    assert send(em, (method, path, qs, lower, body))[:2] == (0, "OK")


def test_unknown_app_id_and_wrong_biz_id() -> None:
    method, path, qs, headers, body = build("query", query={"ai": AI1})
    assert send(make(), (method, path, qs, {**headers, "appId": "x"}, body))[:2] == err(
        "SYS REQ PARTNER ERROR"
    )
    assert send(make(), (method, path, qs, {**headers, "bizId": "x"}, body))[:2] == err(
        "SYS REQ AUTH ERROR"
    )


@pytest.mark.parametrize("ts", ["abc", "1.8e12", "-1", "１８"])
def test_timestamp_not_an_integer(ts: str) -> None:
    method, path, qs, headers, body = build("query", query={"ai": AI1})
    del headers["sign"]
    headers["timestamps"] = ts
    headers["sign"] = p.sign(SECRET, {**headers, "ai": AI1}, "")
    assert send(make(), (method, path, qs, headers, body))[:2] == err("SYS REQ EXPIRE ERROR")


@pytest.mark.parametrize(
    ("offset_ms", "expired"), [(-5001, True), (-5000, False), (5000, False), (5001, True)]
)
def test_timestamp_validity_is_5_seconds_either_way(offset_ms: int, expired: bool) -> None:
    em = make()
    check(em, AI1, "张三", OK_ID)
    answer = query(em, AI1, ts=NOW_MS + offset_ms)
    assert answer[:2] == (err("SYS REQ EXPIRE ERROR") if expired else (0, "OK"))


def test_request_expires_when_the_clock_moves_on() -> None:
    clock = Clock()
    em = make(clock)
    req = build("check", {"ai": AI1, "name": "张三", "idNum": OK_ID})
    clock.now += 5001
    assert send(em, req)[:2] == err("SYS REQ EXPIRE ERROR")


def test_configured_timestamp_validity() -> None:
    em = make(timestamp_validity_ms=100)
    assert check(em, AI1, "张三", OK_ID, ts=NOW_MS - 101)[:2] == err("SYS REQ EXPIRE ERROR")


def test_wrong_signature() -> None:
    em = make()
    payload = {"ai": AI1, "name": "张三", "idNum": OK_ID}
    # signed with another secret
    assert check(em, AI1, "张三", OK_ID, sign_secret=OTHER_SECRET)[:2] == err(
        "SYS REQ PARTNER AUTH ERROR"
    )
    # body changed after signing
    method, path, qs, headers, _ = build("check", payload)
    other_body = p.encrypt_body(SECRET, payload).encode()
    assert send(em, (method, path, qs, headers, other_body))[:2] == err(
        "SYS REQ PARTNER AUTH ERROR"
    )
    # query parameter changed after signing
    method, path, _, headers, body = build("query", query={"ai": AI1})
    assert send(em, (method, path, f"ai={AI2}", headers, body))[:2] == err(
        "SYS REQ PARTNER AUTH ERROR"
    )
    # a signed header changed after signing
    method, path, qs, headers, body = build("query", query={"ai": AI1})
    headers["timestamps"] = str(NOW_MS + 1)
    assert send(em, (method, path, qs, headers, body))[:2] == err("SYS REQ PARTNER AUTH ERROR")
    assert em.error_counts() == {"SYS REQ PARTNER AUTH ERROR": 4}


def test_signature_accepts_upper_case_hex() -> None:
    em = make()
    method, path, qs, headers, body = build("check", {"ai": AI1, "name": "张三", "idNum": OK_ID})
    headers["sign"] = headers["sign"].upper()
    assert send(em, (method, path, qs, headers, body))[:2] == (0, "OK")


def test_over_qps_sliding_one_second_window_per_endpoint() -> None:
    clock = Clock()
    em = make(clock, qps={"query": 2})
    check(em, AI1, "张三", OK_ID)
    assert query(em, AI1)[:2] == (0, "OK")
    clock.now += 400
    assert query(em, AI1, ts=clock.now)[:2] == (0, "OK")
    clock.now += 500
    assert query(em, AI1, ts=clock.now)[:2] == err("SYS REQ BUSY ERROR")
    # other endpoints have their own window
    assert check(em, AI1, "张三", OK_ID, ts=clock.now)[:2] == (0, "OK")
    clock.now += 100  # the first query left the window (1000 ms after it)
    assert query(em, AI1, ts=clock.now)[:2] == (0, "OK")
    assert query(em, AI1, ts=clock.now)[:2] == err("SYS REQ BUSY ERROR")
    clock.now += 400  # the second one left too; rejected requests never counted
    assert query(em, AI1, ts=clock.now)[:2] == (0, "OK")
    assert em.error_counts() == {"SYS REQ BUSY ERROR": 2}
    assert em.request_counts() == {"check": 2, "query": 6}


def test_default_qps_comes_from_the_protocol() -> None:
    em = make(qps={"check": 5})
    assert em.config.qps_for("check") == 5
    assert em.config.qps_for("query") == PROTO.endpoints["query"].qps == 300
    assert em.config.qps_for("loginout") == PROTO.endpoints["loginout"].qps == 10


def test_loginout_default_qps_10() -> None:
    em = make()
    answers = [upload(em, [guest(1, ot=NOW_S - i)])[:2] for i in range(11)]
    assert answers[:10] == [(0, "OK")] * 10
    assert answers[10] == err("SYS REQ BUSY ERROR")


# --------------------------------------------------------------------------- body errors


def _raw_check(em: Emulator, body: str) -> tuple[int, str]:
    return send(em, build("check", body=body))[:2]


def test_body_encrypted_under_another_key() -> None:
    payload = {"ai": AI1, "name": "张三", "idNum": OK_ID}
    answer = call(make(), "check", payload, secret=OTHER_SECRET, sign_secret=SECRET)
    assert answer[:2] == err("SYS REQ PARAM CHECK ERROR")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[]",
        "{}",
        '{"data": 1}',
        '{"data": "@@@not base64"}',
        '{"data": "AAAA"}',
        json.dumps({"data": p.encrypt(SECRET, b"not json", iv=bytes(12))}),
        json.dumps({"data": p.encrypt(SECRET, b"[1, 2]", iv=bytes(12))}),
    ],
)
def test_malformed_body(body: str) -> None:
    assert _raw_check(make(), body) == err("SYS REQ PARAM CHECK ERROR")


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "张三", "idNum": OK_ID},
        {"ai": AI1, "idNum": OK_ID},
        {"ai": AI1, "name": "张三"},
        {"ai": 1, "name": "张三", "idNum": OK_ID},
        {"ai": AI1, "name": "张三", "idNum": 110101198001010010},
        {"ai": AI1, "name": "", "idNum": OK_ID},
        {"ai": "a" * 31, "name": "张三", "idNum": OK_ID},
        {"ai": "a" * 33, "name": "张三", "idNum": OK_ID},
    ],
)
def test_check_missing_or_wrong_typed_fields(payload: dict[str, Any]) -> None:
    assert call(make(), "check", payload)[:2] == err("SYS REQ PARAM CHECK ERROR")


@pytest.mark.parametrize("params", [{}, {"ai": ""}, {"ai": "a" * 31}, {"x": AI1}])
def test_query_without_a_valid_ai(params: dict[str, str]) -> None:
    assert call(make(), "query", query=params)[:2] == err("SYS REQ PARAM CHECK ERROR")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"collections": None},
        {"collections": {"no": 1}},
        {"collections": [1]},
        {"collections": [{**guest(1), "no": "1"}]},
        {"collections": [guest(1, bt=True)]},
        {"collections": [guest(1, ot=1.5)]},
        {"collections": [guest(1, ct="2")]},
        {"collections": [guest(1, si=1)]},
        {"collections": [{k: v for k, v in guest(1).items() if k != "ot"}]},
        {"collections": [guest(1, di=12)]},
    ],
)
def test_loginout_malformed_body(payload: dict[str, Any]) -> None:
    em = make()
    assert call(em, "loginout", payload)[:2] == err("SYS REQ PARAM CHECK ERROR")
    assert em.accepted == []


def test_check_order_first_failing_check_answers() -> None:
    em = make()
    method, path, qs, headers, body = build("check", body="garbage")
    # bad body, bad signature, expired and unknown appId: unknown appId answers first
    bad = {**headers, "appId": "x", "timestamps": "1", "sign": "0" * 64}
    assert send(em, (method, path, qs, bad, body))[:2] == err("SYS REQ PARTNER ERROR")
    bad = {**headers, "timestamps": "1", "sign": "0" * 64}
    assert send(em, (method, path, qs, bad, body))[:2] == err("SYS REQ EXPIRE ERROR")
    bad = {**headers, "sign": "0" * 64}
    assert send(em, (method, path, qs, bad, body))[:2] == err("SYS REQ PARTNER AUTH ERROR")
    assert send(em, (method, path, qs, headers, body))[:2] == err("SYS REQ PARAM CHECK ERROR")
    # wrong method beats missing headers
    assert send(em, ("GET", path, qs, {}, body))[:2] == err("SYS REQ METHOD ERROR")


# --------------------------------------------------------------------------- loginout


def test_loginout_all_good_is_accepted() -> None:
    em = make()
    pi = status_of(check(em, AI1, "张三", OK_ID)).pi
    assert pi is not None
    items = [guest(1, bt=1), guest(2, bt=0, ot=NOW_S + 1), verified(3, pi, bt=0)]
    assert upload(em, items) == (0, "OK", {})
    accepted = em.accepted
    assert [(a.no, a.ct, a.di, a.pi, a.arrived_ms) for a in accepted] == [
        (1, 2, DI, None, NOW_MS),
        (2, 2, DI, None, NOW_MS),
        (3, 0, None, pi, NOW_MS),
    ]
    assert em.duplicates == []


def test_loginout_accepts_pi_of_registered_verified_identity_without_a_check() -> None:
    em = make()
    assert upload(em, [verified(1, em.pi_for(OK_ID))])[:2] == (0, "OK")


def test_loginout_empty_and_over_limit() -> None:
    em = make()
    assert upload(em, [])[:2] == err("BUS COLL BEHAVIOR NULL ERROR")
    items = [guest(i, ot=NOW_S - i) for i in range(1, 130)]
    assert upload(em, items)[:2] == err("BUS COLL OVER LIMIT COUNT")
    assert upload(em, items[:128])[:2] == (0, "OK")
    assert len(em.accepted) == 128


def _partial(em: Emulator, items: list[dict[str, Any]]) -> dict[int, str]:
    errcode, errmsg, data = upload(em, items)
    assert (errcode, errmsg) == err("BUS COLL PARTIAL ERROR")
    results = p.item_results(data)
    for r in results:
        assert r.errcode == PROTO.error(r.errmsg).code
    return {r.no: r.errmsg for r in results}


def test_loginout_item_number_validation() -> None:
    em = make()
    items = [guest(0), guest(129), guest(5), guest(5, bt=0), guest(7)]
    assert _partial(em, items) == {
        0: "BUS COLL NO INVALID",
        129: "BUS COLL NO INVALID",
        5: ("BUS COLL NO INVALID"),
    }
    assert [a.no for a in em.accepted] == [7]


def test_loginout_item_field_validation() -> None:
    em = make()
    pi = em.pi_for(OK_ID)
    pending_pi = em.pi_for(PENDING_ID)  # pending, never verified: not a known verified player
    items = [
        guest(1, si="s" * 31),
        guest(2, bt=2),
        guest(3, ot=NOW_S + OT_FUTURE_TOLERANCE_S + 1),
        guest(4, ot=NOW_S + OT_FUTURE_TOLERANCE_S),  # within the tolerance: accepted
        guest(5, ot=NOW_S - OT_MAX_AGE_S - 1),
        guest(6, ot=NOW_S - OT_MAX_AGE_S),  # as old as allowed: accepted
        guest(7, ot=0),
        guest(8, ct=1),
        verified(9, None),
        verified(10, ""),
        verified(11, "x" * 38),
        verified(12, pending_pi),
        verified(13, pi),  # accepted
        guest(14, di=None),
        {k: v for k, v in guest(15).items() if k != "di"},
        guest(16, di="d" * 31),
        guest(17, ct=0),  # verified type with only a di
    ]
    assert _partial(em, items) == {
        1: "SYS REQ PARAM CHECK ERROR",
        2: "BUS COLL BEHAVIOR MODE INVALID",
        3: "BUS COLL BEHAVIOR TIME ERROR",
        5: "BUS COLL BEHAVIOR TIME ERROR",
        7: "BUS COLL BEHAVIOR TIME ERROR",
        8: "BUS COLL PLAYER MODE INVALID",
        9: "BUS COLL PLAYERID MISS",
        10: "BUS COLL PLAYERID MISS",
        11: "BUS COLL PLAYERID INVALID",
        12: "BUS COLL PLAYERID INVALID",
        14: "BUS COLL DEVICEID MISS",
        15: "BUS COLL DEVICEID MISS",
        16: "SYS REQ PARAM CHECK ERROR",
        17: "BUS COLL PLAYERID MISS",
    }
    assert [a.no for a in em.accepted] == [4, 6, 13]
    assert em.item_error_counts()["BUS COLL BEHAVIOR TIME ERROR"] == 3
    assert em.error_counts() == {"BUS COLL PARTIAL ERROR": 1}


def test_loginout_pi_of_pending_identity_becomes_valid_once_verified() -> None:
    em = make()
    check(em, AI1, "李四", PENDING_ID)
    pi = em.pi_for(PENDING_ID)
    assert _partial(em, [verified(1, pi)]) == {1: "BUS COLL PLAYERID INVALID"}
    assert status_of(query(em, AI1)).pi == pi
    assert upload(em, [verified(1, pi)])[:2] == (0, "OK")


def test_loginout_time_window_is_configurable() -> None:
    em = make(ot_future_tolerance_s=0, ot_max_age_s=10)
    assert _partial(em, [guest(1, ot=NOW_S + 1), guest(2, ot=NOW_S - 11), guest(3)]) == {
        1: "BUS COLL BEHAVIOR TIME ERROR",
        2: "BUS COLL BEHAVIOR TIME ERROR",
    }


def test_duplicates_are_recorded() -> None:
    clock = Clock()
    em = make(clock)
    pi = em.pi_for(OK_ID)
    assert upload(em, [guest(1), verified(2, pi)])[:2] == (0, "OK")
    clock.now += 1000
    # same si, bt, ot and di: a duplicate; another bt or ot is not
    items = [guest(1), guest(2, bt=0), guest(3, ot=NOW_S - 1), verified(4, pi)]
    assert upload(em, items, ts=clock.now)[:2] == (0, "OK")
    dups = em.duplicates
    assert [(d.no, d.ct, d.arrived_ms) for d in dups] == [
        (1, 2, NOW_MS + 1000),
        (4, 0, NOW_MS + 1000),
    ]
    assert len(em.accepted) == 6
    assert len({a.key for a in em.accepted}) == 4


# --------------------------------------------------------------------------- test cases


def test_generate_test_codes() -> None:
    codes = generate_test_codes()
    assert sorted(codes.values()) == list(range(1, 9))
    assert len(set(codes)) == 8
    assert generate_test_codes() != codes


def test_all_eight_test_cases_pass() -> None:
    clock = Clock()
    codes = generate_test_codes()
    em = make(clock, test_codes=codes)
    assert not any(r.passed for r in em.test_case_results().values())
    expected_status = {1: 0, 2: 1, 3: 2, 4: 0, 5: 1, 6: 2}
    for code, case in codes.items():
        clock.now += 1000
        errcode, errmsg, data = _test_request_at(em, code, case, clock.now)
        assert (errcode, errmsg) == (0, "OK"), (case, errmsg)
        if case in expected_status:
            result = p.check_result(data)
            assert result.status == expected_status[case]
            assert (result.pi is not None) == (expected_status[case] == 0)
    results = em.test_case_results()
    assert sorted(results) == list(range(1, 9))
    assert all(r.passed and r.attempts == 1 and r.last_errmsg is None for r in results.values())
    assert {r.code for r in results.values()} == set(codes)
    assert results[7].zh == TEST_CASES[7][1] and results[8].en == TEST_CASES[8][2]
    assert {a.test_case for a in em.accepted} == {7, 8}


def _test_request_at(em: Emulator, code: str, case: int, ts: int) -> tuple[int, str, Any]:
    endpoint = TEST_CASES[case][0]
    if endpoint == "check":
        return check(em, AI1, "张三", OK_ID, code=code, ts=ts)
    if endpoint == "query":
        return query(em, AI1, code=code, ts=ts)
    now_s = ts // 1000
    if case == 7:
        return upload(em, [guest(1, ot=now_s), guest(2, bt=0, ot=now_s)], code=code, ts=ts)
    items = [verified(1, "p" * 38, ot=now_s), verified(2, "p" * 38, bt=0, ot=now_s)]
    return upload(em, items, code=code, ts=ts)


def test_unknown_test_code() -> None:
    em = make(test_codes=generate_test_codes())
    assert check(em, AI1, "张三", OK_ID, code="nope")[:2] == err("TEST TASK NOT EXIST")
    # no test codes configured: every code is unknown
    assert query(make(), AI1, code="nope")[:2] == err("TEST TASK NOT EXIST")


def test_test_code_on_the_wrong_endpoint() -> None:
    codes = {"c1": 1, "c4": 4, "c7": 7}
    em = make(test_codes=codes)
    assert query(em, AI1, code="c1")[:2] == err("TEST SCENE CODE ERROR")
    assert check(em, AI1, "张三", OK_ID, code="c4")[:2] == err("TEST SCENE CODE ERROR")
    assert check(em, AI1, "张三", OK_ID, code="c7")[:2] == err("TEST SCENE CODE ERROR")
    results = em.test_case_results()
    assert results[1].attempts == 1 and not results[1].passed
    assert results[1].last_errmsg == "TEST SCENE CODE ERROR"


def test_test_code_for_the_wrong_kind_of_player() -> None:
    em = make(test_codes={"g": 7, "v": 8})
    assert upload(em, [guest(1), verified(2, "p" * 38)], code="g")[:2] == err(
        "TEST SCENE CODE ERROR"
    )
    assert upload(em, [verified(1, "p" * 38), guest(2)], code="v")[:2] == err(
        "TEST SCENE CODE ERROR"
    )
    assert em.accepted == []
    assert not any(r.passed for r in em.test_case_results().values())


def test_test_case_requests_must_be_well_formed_signed_and_in_time() -> None:
    em = make(test_codes={"c1": 1, "c7": 7})
    assert check(em, AI1, "张三", OK_ID, code="c1", sign_secret=OTHER_SECRET)[:2] == err(
        "SYS REQ PARTNER AUTH ERROR"
    )
    assert check(em, AI1, "张三", OK_ID, code="c1", ts=NOW_MS - 6000)[:2] == err(
        "SYS REQ EXPIRE ERROR"
    )
    assert call(em, "check", {"ai": AI1}, code="c1")[:2] == err("SYS REQ PARAM CHECK ERROR")
    assert _partial_code(em, [guest(1, si="short")], "c7") == {1: "SYS REQ PARAM CHECK ERROR"}
    results = em.test_case_results()
    assert results[1].attempts == 1 and not results[1].passed  # signature/time: not attempts
    assert results[7].last_errmsg == "BUS COLL PARTIAL ERROR" and not results[7].passed
    assert check(em, AI1, "张三", OK_ID, code="c1")[:2] == (0, "OK")
    assert em.test_case_results()[1].passed


def _partial_code(em: Emulator, items: list[dict[str, Any]], code: str) -> dict[int, str]:
    errcode, errmsg, data = upload(em, items, code=code)
    assert (errcode, errmsg) == err("BUS COLL PARTIAL ERROR")
    return {r.no: r.errmsg for r in p.item_results(data)}


def test_test_case_8_needs_well_formed_pi() -> None:
    em = make(test_codes={"v": 8})
    assert _partial_code(em, [verified(1, "P" * 38), verified(2, "p" * 38)], "v") == {
        1: "BUS COLL PLAYERID INVALID"
    }


# --------------------------------------------------------------------------- registry, config


def test_registry_from_json_and_toml(tmp_path: Path) -> None:
    js = tmp_path / "ids.json"
    js.write_text(
        json.dumps(
            {
                "identities": [
                    {"name": "张三", "id_num": OK_ID},
                    {
                        "name": "李四",
                        "id_num": PENDING_ID,
                        "outcome": "pending",
                        "pending_queries": 2,
                    },
                ]
            },
            ensure_ascii=False,
        ),
        "utf-8",
    )
    reg = Registry.from_file(js)
    assert [(i.name, i.outcome, i.pending_queries) for i in reg] == [
        ("张三", "ok", 1),
        ("李四", "pending", 2),
    ]
    toml = tmp_path / "ids.toml"
    toml.write_text(
        '[[identities]]\nname = "王五"\nid_num = "110101198001010037"\noutcome = "failed"\n',
        "utf-8",
    )
    reg = Registry.from_file(toml)
    assert len(reg) == 1 and reg.get(FAILED_ID) == Identity("王五", FAILED_ID, "failed")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([{"name": "a", "id_num": "11010519491231002x"}]), "utf-8")
    assert Registry.from_file(bare).get("11010519491231002X") is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid"),
        ('{"identities": {}}', "must be a list"),
        ('{"identities": [1]}', "not an object"),
        ('{"identities": [{"name": "a"}]}', "must be strings"),
        ('{"identities": [{"name": "a", "id_num": "123"}]}', "invalid identity number"),
        ('{"identities": [{"name": "a", "id_num": "110101800101001"}]}', "18-character"),
        (f'{{"identities": [{{"name": "a", "id_num": "{OK_ID}", "outcome": "x"}}]}}', "outcome"),
        (
            f'{{"identities": [{{"name": "a", "id_num": "{OK_ID}", "pending_queries": 0}}]}}',
            "at least 1",
        ),
        (f'{{"identities": [{{"name": "a", "id_num": "{OK_ID}", "age": 3}}]}}', "unknown field"),
        (
            f'{{"identities": [{{"name": "a", "id_num": "{OK_ID}"}},'
            f' {{"name": "b", "id_num": "{OK_ID}"}}]}}',
            "twice",
        ),
    ],
)
def test_bad_registry_file(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "ids.json"
    f.write_text(content, "utf-8")
    with pytest.raises(RegistryError, match=message):
        Registry.from_file(f)


def test_unreadable_registry_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        Registry.from_file(tmp_path / "missing.json")


def test_demo_registry() -> None:
    assert sorted(i.outcome for i in demo_registry()) == ["failed", "ok", "pending"]


def test_bad_config() -> None:
    with pytest.raises(p.BadSecret):
        EmulatorConfig(APP_ID, BIZ_ID, "not hex")
    with pytest.raises(ValueError, match="unknown endpoint"):
        EmulatorConfig(APP_ID, BIZ_ID, SECRET, qps={"nope": 1})
    with pytest.raises(ValueError, match="at least 1"):
        EmulatorConfig(APP_ID, BIZ_ID, SECRET, qps={"check": 0})
    with pytest.raises(ValueError, match=r"case must be 1\.\.8"):
        EmulatorConfig(APP_ID, BIZ_ID, SECRET, test_codes={"c": 9})


# --------------------------------------------------------------------------- over HTTP


def _http(
    client: httpx.Client, endpoint: str, payload: Any = None, **kw: Any
) -> tuple[int, str, Any]:
    method, path, _, headers, body = build(endpoint, payload, **kw)
    response = client.request(
        method,
        path,
        params=kw.get("query"),
        content=body or None,
        headers={**headers, "Content-Type": "application/json;charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return p.parse_response(response.content)


def test_running_emulator_serves_the_protocol_over_http() -> None:
    clock = Clock()
    config = EmulatorConfig(APP_ID, BIZ_ID, SECRET, registry(), clock_ms=clock, test_codes={"c": 7})
    with RunningEmulator(config) as running, httpx.Client(base_url=running.url) as client:
        assert running.url.startswith("http://127.0.0.1:")
        em = running.emulator
        payload = {"ai": AI1, "name": "李四", "idNum": PENDING_ID}
        assert p.check_result(_http(client, "check", payload)[2]).status == 1
        answer = _http(client, "query", query={"ai": AI1})
        assert p.check_result(answer[2]) == p.CheckResult(p.CheckStatus.OK, em.pi_for(PENDING_ID))
        pi = em.pi_for(PENDING_ID)
        payload2 = {"collections": [guest(1), verified(2, pi)]}
        assert _http(client, "loginout", payload2)[:2] == (0, "OK")
        assert _http(client, "loginout", {"collections": [guest(1)]}, code="c")[:2] == (0, "OK")
        assert _http(client, "check", payload, sign_secret=OTHER_SECRET)[:2] == err(
            "SYS REQ PARTNER AUTH ERROR"
        )
        r = client.get("/idcard/nothing")
        assert p.parse_response(r.content)[:2] == err("SYS REQ RESOURCE NOT EXIST")
        r = client.put("/idcard/authentication/check")
        assert p.parse_response(r.content)[:2] == err("SYS REQ METHOD ERROR")
        state = client.get(ADMIN_STATE_PATH).json()
        assert state["requests"] == {"check": 3, "query": 1, "loginout": 2, "unknown": 1}
        assert state["errors"] == {
            "SYS REQ PARTNER AUTH ERROR": 1,
            "SYS REQ RESOURCE NOT EXIST": 1,
            "SYS REQ METHOD ERROR": 1,
        }
        assert state["accepted"] == 3 and state["duplicates"] == 1
        assert state["test_cases"]["7"]["passed"] is True
        port = running.port
    with socket.socket() as s, pytest.raises(OSError):  # stopped: the port is closed
        s.connect(("127.0.0.1", port))


def test_running_emulator_loses_and_doubles_nothing_under_concurrency() -> None:
    config = EmulatorConfig(APP_ID, BIZ_ID, SECRET, qps={"loginout": 100_000})
    n_threads, n_batches, batch = 4, 10, 16
    errors: list[BaseException] = []

    with RunningEmulator(config) as running:

        def worker(t: int) -> None:
            try:
                with httpx.Client(base_url=running.url) as client:
                    for b in range(n_batches):
                        now = config.clock_ms()
                        items = [
                            guest(i + 1, si=f"{t:02d}{b:02d}{i:02d}".ljust(32, "s"), ot=now // 1000)
                            for i in range(batch)
                        ]
                        answer = _http(client, "loginout", {"collections": items}, ts=now)
                        assert answer[:2] == (0, "OK"), answer
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        em = running.emulator
    assert errors == []
    accepted = em.accepted
    assert len(accepted) == n_threads * n_batches * batch
    assert len({a.si for a in accepted}) == len(accepted)
    assert em.duplicates == []
    assert em.request_counts() == {"loginout": n_threads * n_batches}


def test_running_emulator_stop_is_idempotent_and_url_needs_a_start() -> None:
    running = RunningEmulator(EmulatorConfig(APP_ID, BIZ_ID, SECRET))
    with pytest.raises(RuntimeError):
        _ = running.url
    running.start()
    assert httpx.get(running.url + ADMIN_STATE_PATH).status_code == 200
    running.stop()
    running.stop()
