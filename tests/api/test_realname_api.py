"""Real-name verification and game sessions through the API, against the emulator on loopback.

A verified check makes the account's age verified; a pending one is refreshed to verified; a
guest (unverified) minor's game session is refused; a verified minor's session inside the game
window queues login and logout reports that reach the (emulated) national system with its pi.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from qinglang.realname.emulator import (
    EmulatorConfig,
    Identity,
    Registry,
    RunningEmulator,
)
from qinglang.realname.protocol import CheckStatus
from qinglang.realname.verify import (
    CallableVerifier,
    VerifyRequest,
    VerifyResult,
    register_verifier,
    unregister_verifier,
)
from tests.api.consent_testing import ric

APP_ID = "a" * 32
BIZ_ID = "1101999999"
SECRET = "2836e95fcd10e04b0069bb1ee659955b"
KID = ric(date(2013, 3, 4))  # 13 in 2026
ADULT = ric(date(1990, 1, 1), seq=125)
SLOW = ric(date(2012, 6, 1), seq=127)  # pending at check, verified at the first query
STRANGER = ric(date(2011, 2, 2), seq=129)  # valid, unknown to the registry: fails
HOLIDAY_EVENING = "2026-05-01T20:10:00+08:00"  # Labour Day, inside the 20:00-21:00 window
MONDAY_EVENING = "2026-05-11T20:10:00+08:00"
BAD_CHECK = "1" if KID[-1] == "0" else "0"


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    registry = Registry(
        [
            Identity("小明", KID, "ok"),
            Identity("大人", ADULT, "ok"),
            Identity("小慢", SLOW, "pending"),
        ]
    )
    # sessions in these tests happen on fixed past dates: accept their report times
    config = EmulatorConfig(APP_ID, BIZ_ID, SECRET, registry, ot_max_age_s=10 * 365 * 86400)
    with RunningEmulator(config) as running:
        yield running


@pytest.fixture
def game(api: TestClient, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    r = api.put(
        "/v1/realname/config",
        json={"base_url": emulator.url, "app_id": APP_ID, "biz_id": BIZ_ID, "secret": SECRET},
    )
    assert r.status_code == 200, r.text
    for acc in ("kid", "adult", "slow", "stranger"):
        assert api.put(f"/v1/accounts/{acc}", json={}).status_code in (200, 201)
    return api


def check(api: TestClient, account: str, name: str, number: str, **extra: str) -> dict:  # type: ignore[type-arg]
    r = api.post(
        "/v1/realname/check",
        json={"account": account, "name": name, "id_number": number, **extra},
    )
    assert r.status_code == 200, r.text
    out: dict = r.json()  # type: ignore[type-arg]
    return out


def test_config_keeps_the_secret_to_itself(game: TestClient) -> None:
    r = game.get("/v1/realname/config")
    assert r.status_code == 200
    assert r.json()["secret"] == "set" and SECRET not in r.text
    bad = game.put(
        "/v1/realname/config",
        json={"base_url": "http://x.test", "app_id": "a", "biz_id": "b", "secret": "nothex"},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "secret"


def test_unconfigured_platform_gets_409(api: TestClient) -> None:
    assert api.put("/v1/accounts/kid", json={}).status_code in (200, 201)
    r = api.post("/v1/realname/check", json={"account": "kid", "name": "小明", "id_number": KID})
    assert r.status_code == 409


def test_verified_check_makes_the_age_verified(game: TestClient, emulator: RunningEmulator) -> None:
    out = check(game, "kid", "小明", KID)
    assert out == {
        "account": "kid",
        "status": "ok",
        "provider": "nppa",
        "age_source": "verified",
        "minor": True,
    }
    acc = game.get("/v1/accounts/kid").json()
    assert acc["age_source"] == "verified"
    state = game.get("/v1/realname/kid").json()
    assert state["status"] == "ok" and "pi" not in state
    assert game.get("/v1/age/kid").json()["state"] == "verified_minor"
    again = game.post(
        "/v1/realname/check", json={"account": "kid", "name": "小明", "id_number": KID}
    )
    assert again.status_code == 409
    assert emulator.emulator.request_counts().get("check") == 1


def test_pending_check_is_refreshed_to_verified(game: TestClient) -> None:
    assert check(game, "slow", "小慢", SLOW)["status"] == "pending"
    assert game.get("/v1/accounts/slow").json()["age_source"] != "verified"
    r = game.post("/v1/realname/slow/refresh")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok" and r.json()["age_source"] == "verified"
    assert game.post("/v1/realname/slow/refresh").status_code == 409  # no longer pending


def test_failed_check_leaves_the_account_unverified(game: TestClient) -> None:
    assert check(game, "stranger", "路人", STRANGER)["status"] == "failed"
    assert game.get("/v1/accounts/stranger").json()["age_source"] is None
    # a new check after a failure is allowed (new ai)
    assert check(game, "stranger", "路人", STRANGER)["status"] == "failed"


def test_bad_identity_number_is_422_naming_the_field(game: TestClient) -> None:
    r = game.post(
        "/v1/realname/check",
        json={"account": "kid", "name": "小明", "id_number": KID[:-1] + BAD_CHECK},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "id_number"


def test_system_error_is_502_with_its_code(game: TestClient, emulator: RunningEmulator) -> None:
    r = game.put(
        "/v1/realname/config",
        json={"base_url": emulator.url, "app_id": APP_ID, "biz_id": BIZ_ID, "secret": "0" * 32},
    )
    assert r.status_code == 200
    r = game.post("/v1/realname/check", json={"account": "kid", "name": "小明", "id_number": KID})
    assert r.status_code == 502
    assert r.json()["errors"][0]["errcode"] == 1011  # signature check failed
    assert game.get("/v1/accounts/kid").json()["age_source"] != "verified"


def test_guest_minor_is_refused_a_game_session(game: TestClient) -> None:
    game.put("/v1/accounts/kid", json={"birth_date": "2013-03-04"})  # self-declared minor
    r = game.post(
        "/v1/game/sessions", json={"account": "kid", "at": HOLIDAY_EVENING, "device": "d" * 32}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["session"] is None
    assert out["decision"]["outcome"] == "deny"
    assert out["decision"]["limits"]["needs"] == "real_name_verification"
    assert game.post("/v1/realname/flush").json()["sent"] == 0


def test_verified_minor_session_reports_login_and_logout(
    game: TestClient, emulator: RunningEmulator
) -> None:
    check(game, "kid", "小明", KID)
    outside = game.post("/v1/game/sessions", json={"account": "kid", "at": MONDAY_EVENING})
    assert outside.json()["session"] is None  # not a game day
    r = game.post("/v1/game/sessions", json={"account": "kid", "at": HOLIDAY_EVENING})
    assert r.status_code == 200, r.text
    session = r.json()["session"]
    assert session["reported_as"] == "verified"
    assert r.json()["decision"]["outcome"] == "limit"
    end = game.post(
        f"/v1/game/sessions/{session['id']}/end", json={"at": "2026-05-01T20:50:00+08:00"}
    )
    assert end.status_code == 200 and end.json()["minutes"] == 40
    assert game.post(f"/v1/game/sessions/{session['id']}/end", json={}).json()["already_ended"]
    flushed = game.post("/v1/realname/flush").json()
    assert (flushed["sent"], flushed["accepted"], flushed["waiting"]) == (2, 2, 0)
    got = emulator.emulator.accepted
    pi = emulator.emulator.pi_for(KID)
    assert [(i.si, i.bt, i.ct, i.pi) for i in got] == [
        (session["id"], 1, 0, pi),
        (session["id"], 0, 0, pi),
    ]
    # the 40 minutes count: the window closes at 21:00 whatever was played
    later = game.post(
        "/v1/game/sessions", json={"account": "kid", "at": "2026-05-01T20:55:00+08:00"}
    ).json()
    assert later["minutes_played_today"] == 40


def test_unknown_session_is_404(game: TestClient) -> None:
    r = game.post("/v1/game/sessions/" + "0" * 32 + "/end", json={})
    assert r.status_code == 404


def test_a_platform_kyc_provider_plugs_in(game: TestClient) -> None:
    seen: list[VerifyRequest] = []

    def kyc(req: VerifyRequest) -> VerifyResult:
        seen.append(req)
        return VerifyResult(CheckStatus.OK, None, "kyc", "ref-1", None)

    register_verifier(CallableVerifier("acme-kyc", kyc), replace=True)
    try:
        out = check(game, "adult", "大人", ADULT, provider="acme-kyc")
    finally:
        unregister_verifier("acme-kyc")
    assert out["status"] == "ok" and out["provider"] == "acme-kyc" and out["minor"] is False
    assert seen[0].id_number == ADULT and len(seen[0].ai) == 32
    unknown = game.post(
        "/v1/realname/check",
        json={"account": "kid", "name": "小明", "id_number": KID, "provider": "nobody"},
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "provider"


def test_background_drainer_uploads_without_being_asked(
    db_url: str, monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator
) -> None:
    from qinglang.api import Settings, create_app
    from qinglang.store.crypto import DataKey
    from tests.api.conftest import ADMIN, register

    monkeypatch.setenv("QINGLANG_DATA_KEY", DataKey.generate().to_b64())
    monkeypatch.setenv("QINGLANG_REALNAME_DRAIN", "on")
    app = create_app(Settings(db_url=db_url, admin_token=ADMIN))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {register(client, 'live')}"
        client.put(
            "/v1/realname/config",
            json={"base_url": emulator.url, "app_id": APP_ID, "biz_id": BIZ_ID, "secret": SECRET},
        )
        client.put("/v1/accounts/grown", json={})
        check(client, "grown", "大人", ADULT)
        sid = client.post("/v1/game/sessions", json={"account": "grown"}).json()["session"]["id"]
        client.post(f"/v1/game/sessions/{sid}/end", json={})
        deadline = time.monotonic() + 30
        while len(emulator.emulator.accepted) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    app.state.service.engine.dispose()
    assert [(i.si, i.bt) for i in emulator.emulator.accepted] == [(sid, 1), (sid, 0)]
