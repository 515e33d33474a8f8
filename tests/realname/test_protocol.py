"""Known-answer and property tests of the real-name wire protocol (qinglang.realname.protocol)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from qinglang.realname import protocol as p

DEMO_SECRET = "2836e95fcd10e04b0069bb1ee659955b"
DEMO_BODY = (
    '{"data":"CqT/33f3jyoiYqT8MtxEFk3x2rlfhmgzhxpHqWosSj4d3hq2EbrtVyx2aLj565ZQNTcPrcDipnvpq/D/vQ'
    'DaLKW70O83Q42zvR0//OfnYLcIjTPMnqa+SOhsjQrSdu66ySSORCAo"}'
)
DEMO_PAYLOAD = {"ai": "test-accountId", "name": "用户姓名", "idNum": "371321199012310912"}
DEMO_PARAMS = {
    "appId": "test-appId",
    "bizId": "test-bizId",
    "id": "test-id",
    "name": "test-name",
    "timestamps": "1584949895758",
}
DEMO_SIGN = "386c03b776a28c06b8032a958fbd89337424ef45c62d0422706cca633d8ad5fd"
OTHER_SECRET = "00112233445566778899aabbccddeeff"

secrets = st.binary(min_size=16, max_size=16).map(bytes.hex)
ivs = st.binary(min_size=p.IV_BYTES, max_size=p.IV_BYTES)


# ----------------------------------------------------------------------- known answers


def test_demo_body_decrypts_to_demo_payload() -> None:
    assert p.decrypt_body(DEMO_SECRET, DEMO_BODY) == DEMO_PAYLOAD


def test_demo_body_decrypts_with_cryptography_directly() -> None:
    raw = base64.b64decode(json.loads(DEMO_BODY)["data"])
    plain = AESGCM(bytes.fromhex(DEMO_SECRET)).decrypt(raw[:12], raw[12:], None)
    assert json.loads(plain) == DEMO_PAYLOAD


def test_demo_body_reencrypts_identically_with_its_iv() -> None:
    raw = base64.b64decode(json.loads(DEMO_BODY)["data"])
    plain = p.decrypt(DEMO_SECRET, json.loads(DEMO_BODY)["data"])
    assert p.encrypt(DEMO_SECRET, plain, raw[:12]) == json.loads(DEMO_BODY)["data"]


def test_demo_signature() -> None:
    assert p.sign(DEMO_SECRET, DEMO_PARAMS, DEMO_BODY) == DEMO_SIGN


def test_demo_signing_string() -> None:
    expected = (
        DEMO_SECRET
        + "appIdtest-appIdbizIdtest-bizIdidtest-idnametest-nametimestamps1584949895758"
        + DEMO_BODY
    )
    assert p.signing_string(DEMO_SECRET, DEMO_PARAMS, DEMO_BODY) == expected
    assert hashlib.sha256(expected.encode()).hexdigest() == DEMO_SIGN


def test_signature_is_lowercase_sha256_hex() -> None:
    s = p.sign(DEMO_SECRET, DEMO_PARAMS, "")
    assert len(s) == 64 and s == s.lower() and int(s, 16) >= 0


# ----------------------------------------------------------------------- round trips


@given(secret=secrets, plaintext=st.binary(max_size=2048), iv=ivs)
def test_our_encrypt_their_decrypt(secret: str, plaintext: bytes, iv: bytes) -> None:
    raw = base64.b64decode(p.encrypt(secret, plaintext, iv))
    assert raw[:12] == iv
    assert len(raw) == 12 + len(plaintext) + 16
    assert AESGCM(bytes.fromhex(secret)).decrypt(raw[:12], raw[12:], None) == plaintext


@given(secret=secrets, plaintext=st.binary(max_size=2048), iv=ivs)
def test_their_encrypt_our_decrypt(secret: str, plaintext: bytes, iv: bytes) -> None:
    sealed = AESGCM(bytes.fromhex(secret)).encrypt(iv, plaintext, None)
    assert p.decrypt(secret, base64.b64encode(iv + sealed).decode()) == plaintext


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    secret=secrets,
    payload=st.dictionaries(st.text(max_size=12), json_values, max_size=6),
    iv=ivs,
)
def test_body_round_trip(secret: str, payload: dict[str, object], iv: bytes) -> None:
    body = p.encrypt_body(secret, payload, iv)
    assert p.decrypt_body(secret, body) == payload
    raw = base64.b64decode(json.loads(body)["data"])
    plain = AESGCM(bytes.fromhex(secret)).decrypt(raw[:12], raw[12:], None)
    assert json.loads(plain) == payload


def test_fresh_iv_by_default() -> None:
    a = p.encrypt(DEMO_SECRET, b"same")
    b = p.encrypt(DEMO_SECRET, b"same")
    assert a != b
    assert base64.b64decode(a)[:12] != base64.b64decode(b)[:12]


def test_encrypt_rejects_wrong_iv_length() -> None:
    with pytest.raises(ValueError, match="IV"):
        p.encrypt(DEMO_SECRET, b"x", b"short")


# ----------------------------------------------------------------------- failures


@given(plaintext=st.binary(min_size=1, max_size=256), iv=ivs, data=st.data())
def test_tampered_ciphertext_is_bad_ciphertext(
    plaintext: bytes, iv: bytes, data: st.DataObject
) -> None:
    raw = bytearray(base64.b64decode(p.encrypt(DEMO_SECRET, plaintext, iv)))
    index = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    raw[index] ^= 1 << bit
    with pytest.raises(p.BadCiphertext):
        p.decrypt(DEMO_SECRET, base64.b64encode(bytes(raw)).decode())


def test_wrong_secret_is_bad_ciphertext() -> None:
    with pytest.raises(p.BadCiphertext, match="wrong secret"):
        p.decrypt_body(OTHER_SECRET, DEMO_BODY)


@pytest.mark.parametrize("data", ["not base64!!", base64.b64encode(b"short").decode(), ""])
def test_malformed_data_is_bad_ciphertext(data: str) -> None:
    with pytest.raises(p.BadCiphertext):
        p.decrypt(DEMO_SECRET, data)


@pytest.mark.parametrize(
    "secret", ["", "2836e95fcd10e04b", "zz36e95fcd10e04b0069bb1ee659955b", DEMO_SECRET + "00"]
)
def test_bad_secret(secret: str) -> None:
    with pytest.raises(p.BadSecret):
        p.encrypt(secret, b"x")
    with pytest.raises(p.BadSecret):
        p.key_bytes(secret)


@pytest.mark.parametrize("body", ["not json", "[]", '{"data": 1}', '{"other": "x"}', b"\xff\xfe"])
def test_malformed_body(body: str | bytes) -> None:
    with pytest.raises(ValueError):
        p.decrypt_body(DEMO_SECRET, body)


def test_body_whose_plaintext_is_not_an_object() -> None:
    body = json.dumps({"data": p.encrypt(DEMO_SECRET, b"[1, 2]")})
    with pytest.raises(ValueError, match="object"):
        p.decrypt_body(DEMO_SECRET, body)


# ----------------------------------------------------------------------- signature


@given(
    params=st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=8),
    body=st.text(max_size=50),
    seed=st.randoms(use_true_random=False),
)
def test_sign_is_independent_of_mapping_order(
    params: dict[str, str], body: str, seed: object
) -> None:
    items = list(params.items())
    seed.shuffle(items)  # type: ignore[attr-defined]
    assert p.sign(DEMO_SECRET, dict(items), body) == p.sign(DEMO_SECRET, params, body)


def test_sign_depends_on_every_part() -> None:
    base = p.sign(DEMO_SECRET, DEMO_PARAMS, DEMO_BODY)
    assert p.sign(OTHER_SECRET, DEMO_PARAMS, DEMO_BODY) != base
    assert p.sign(DEMO_SECRET, {**DEMO_PARAMS, "timestamps": "1584949895759"}, DEMO_BODY) != base
    assert p.sign(DEMO_SECRET, DEMO_PARAMS, DEMO_BODY + " ") != base


# ----------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (1001, p.ServerError, True),
        (1002, p.NotFoundError, False),
        (1003, p.NotFoundError, False),
        (1004, p.HeaderMissing, False),
        (1005, p.IpRejected, False),
        (1006, p.RateLimited, True),
        (1007, p.RequestExpired, True),
        (1008, p.PartnerRejected, False),
        (1009, p.PartnerRejected, False),
        (1010, p.PartnerRejected, False),
        (1011, p.SignatureRejected, False),
        (1012, p.BodyRejected, False),
        (1019, p.PartnerRejected, False),
        (1020, p.BodyRejected, False),
        (4001, p.TestSystemError, False),
        (4002, p.TestSystemError, False),
        (4003, p.TestSystemError, False),
    ],
)
def test_error_for_system_codes(code: int, cls: type[p.RealNameError], retryable: bool) -> None:
    info = p.load_protocol().by_code[code]
    err = p.error_for(code, info.errmsg)
    assert type(err) is cls
    assert err.code == code and err.errmsg == info.errmsg and err.info == info
    assert err.retryable is retryable
    assert info.en in str(err) and str(code) in str(err)


def test_error_for_system_code_with_unexpected_message_still_classified_by_code() -> None:
    err = p.error_for(1006, "SOMETHING ELSE")
    assert type(err) is p.RateLimited and err.retryable


def test_error_for_unknown_code_is_plain_real_name_error() -> None:
    err = p.error_for(9999, "WHAT")
    assert type(err) is p.RealNameError
    assert err.info is None and not err.retryable


@pytest.mark.parametrize(
    "errmsg",
    [
        "BUS AUTH IDNUM ILLEGAL",
        "BUS AUTH RESOURCE LIMIT",
        "BUS AUTH CODE NO AUTH RECODE",
        "BUS AUTH CODE ALREADY IN USE",
    ],
)
def test_error_for_bus_auth_by_message(errmsg: str) -> None:
    for code in (p.load_protocol().error(errmsg).code, 7777):  # the number does not matter
        err = p.error_for(code, errmsg)
        assert type(err) is p.IdentityRejected
        assert err.info is not None and err.info.errmsg == errmsg
        assert not err.retryable


def test_error_for_bus_coll_by_message() -> None:
    names = [e.errmsg for e in p.load_protocol().errors if e.errmsg.startswith("BUS COLL")]
    assert len(names) == 10
    for errmsg in names:
        err = p.error_for(1, errmsg)
        assert type(err) is p.CollectionRejected and not err.retryable


def test_error_for_unknown_bus_message_keeps_family() -> None:
    assert type(p.error_for(2999, "BUS AUTH NEW THING")) is p.IdentityRejected
    assert type(p.error_for(3999, "BUS COLL NEW THING")) is p.CollectionRejected


def test_retryable_errors_are_exactly_1001_1006_1007() -> None:
    retryable = {e.code for e in p.load_protocol().errors if e.retryable}
    assert retryable == {1001, 1006, 1007}


# ----------------------------------------------------------------------- messages


def test_protocol_facts() -> None:
    proto = p.load_protocol()
    assert (proto.ai_length, proto.si_length, proto.di_length, proto.pi_length) == (32, 32, 32, 38)
    assert proto.max_batch == 128 and proto.timestamp_validity_ms == 5000
    assert {n: e.qps for n, e in proto.endpoints.items()} == {
        "check": 100,
        "query": 300,
        "loginout": 10,
    }
    assert proto.endpoints["check"].url_path() == "/idcard/authentication/check"
    assert proto.endpoints["check"].url_path("ABC") == "/test/authentication/check/ABC"
    assert proto.endpoints["query"].method == "GET"


def test_response_round_trip() -> None:
    body = p.response(0, "OK", {"result": {"status": 0, "pi": "x" * 38}})
    code, msg, data = p.parse_response(body)
    assert (code, msg) == (0, "OK")
    assert p.check_result(data) == p.CheckResult(p.CheckStatus.OK, "x" * 38)
    assert p.parse_response(p.error_response("SYS REQ BUSY ERROR"))[:2] == (
        1006,
        "SYS REQ BUSY ERROR",
    )


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        b"[]",
        b'{"errcode": "0"}',
        b'{"errcode":0,"data":[1]}',
        b'{"errcode":0,"data":"x"}',
    ],
)
def test_parse_response_rejects_malformed(body: bytes) -> None:
    with pytest.raises(ValueError):
        p.parse_response(body)


def test_behaviour_wire_and_item_results() -> None:
    b = p.Behaviour("s" * 32, p.BehaviourType.LOGIN, 1700000000, p.PlayerType.GUEST, di="d" * 32)
    assert b.wire(3) == {
        "no": 3,
        "si": "s" * 32,
        "bt": 1,
        "ot": 1700000000,
        "ct": 2,
        "di": "d" * 32,
    }
    data = {"results": [{"no": 2, "errcode": 3008, "errmsg": "BUS COLL PLAYERID MISS"}, "junk"]}
    assert p.item_results(data) == [p.ItemResult(2, 3008, "BUS COLL PLAYERID MISS")]
    assert p.item_results({}) == []
