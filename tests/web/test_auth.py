"""Console sign-in: sessions, throttling and lockout, CSRF, roles, languages, error pages."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from qinglang.store import console as console_store
from qinglang.store.models import ConsoleSession, ConsoleUser, LoginAttempt, utcnow
from qinglang.web import i18n
from qinglang.web.auth import ConsoleSettings
from tests.web.conftest import Login, MakeUser, sign_in

WRONG = "用户名或密码错误。"
THROTTLED = "登录尝试次数过多，请稍后再试。"


def settings(app: FastAPI, **changes: Any) -> None:
    app.state.console_settings = replace(app.state.console_settings, **changes)


def count(app: FastAPI, model: Any) -> int:
    with app.state.service.tx() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def user_row(app: FastAPI, username: str) -> ConsoleUser:
    with app.state.service.tx() as s:
        user = console_store.user_by_username(s, username)
        assert user is not None
        s.expunge(user)
        return user


def error_text(html: str) -> str:
    m = re.search(r'<p class="error" role="alert"[^>]*>(.*?)</p>', html, re.S)
    assert m is not None, html
    return m.group(1)


# --- signing in ------------------------------------------------------------------------------


def test_login_ok_sets_a_safe_session_cookie_and_stores_only_its_hash(
    console_app: FastAPI, client: TestClient, make_user: MakeUser
) -> None:
    username, password = make_user("platform_admin")
    r = sign_in(client, username, password)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/admin"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("ql_session="))
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert "path=/console" in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http in tests; https makes it Secure
    token = client.cookies.get("ql_session")
    assert token
    with console_app.state.service.tx() as s:
        rows = list(s.scalars(select(ConsoleSession)))
    assert [row.token_hash for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    page = client.get("/console/admin")
    assert page.status_code == 200
    assert username in page.text
    assert f'<meta name="csrf-token" content="{rows[0].csrf_token}">' in page.text


def test_cookie_is_secure_over_https(console_app: FastAPI, make_user: MakeUser) -> None:
    username, password = make_user("reviewer")
    with TestClient(console_app, base_url="https://testserver", follow_redirects=False) as c:
        r = sign_in(c, username, password)
    assert r.status_code == 303
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("ql_session="))
    assert "secure" in cookie.lower()


def test_start_page_redirects_by_role(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    assert client.get("/console/").headers["location"] == "/console/login"
    for role, home in (
        ("guardian", "/console/guardian"),
        ("reviewer", "/console/review"),
        ("compliance", "/console/compliance"),
        ("platform_admin", "/console/admin"),
    ):
        client.cookies.clear()
        username, password = make_user(role, "g-1" if role == "guardian" else None)
        login(client, username, password)
        assert client.get("/console/").headers["location"] == home
        assert client.get("/console").headers["location"] == home


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: TestClient, make_user: MakeUser
) -> None:
    username, _ = make_user("reviewer")
    wrong = sign_in(client, username, "not the password at all")
    unknown = sign_in(client, "nobody-here", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert error_text(wrong.text) == error_text(unknown.text) == WRONG
    assert "ql_session" not in client.cookies
    # the username typed is kept in the form; nothing says whether it exists
    assert 'value="nobody-here"' in unknown.text


def test_username_is_not_case_sensitive(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    username, password = make_user("reviewer", username="Mixed.Case")
    assert username == "Mixed.Case"
    login(client, "  MIXED.case ", password)


def test_login_needs_the_login_form_csrf_token(client: TestClient, make_user: MakeUser) -> None:
    username, password = make_user("reviewer")
    client.get("/console/login")
    form = {"username": username, "password": password}
    assert client.post("/console/login", data=form).status_code == 403
    r = client.post("/console/login", data={**form, "csrf_token": "forged"})
    assert r.status_code == 403
    assert "<html" in r.text and "ql_session" not in client.cookies


def test_empty_form_is_refused_with_a_message(client: TestClient) -> None:
    client.get("/console/login")
    token = client.cookies.get("ql_login_csrf")
    r = client.post("/console/login", data={"csrf_token": token or ""})
    assert r.status_code == 422
    assert error_text(r.text) == "请输入用户名和密码。"


def test_next_is_followed_inside_the_console_only(client: TestClient, make_user: MakeUser) -> None:
    r = client.get("/console/admin/users")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/admin/users"
    username, password = make_user("platform_admin")
    r = sign_in(client, username, password, next="/console/admin/users")
    assert r.headers["location"] == "/console/admin/users"
    client.cookies.clear()
    for evil in ("https://evil.example/", "//evil.example/x", "/v1/platforms", "/console\\x"):
        r = sign_in(client, username, password, next=evil)
        assert r.headers["location"] == "/console/admin", evil
        client.cookies.clear()


def test_htmx_request_without_session_gets_hx_redirect(client: TestClient) -> None:
    r = client.get("/console/admin/keys", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert r.headers["HX-Redirect"] == "/console/login?next=/console/admin/keys"


def test_password_hash_is_upgraded_when_parameters_change(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    username, password = make_user("reviewer")
    before = user_row(console_app, username).password_hash
    assert before.startswith("$argon2id$") and "m=1024,t=1" in before
    console_store.use_password_hasher(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    login(client, username, password)
    after = user_row(console_app, username).password_hash
    assert after != before and "m=2048,t=2" in after
    assert console_store.verify_password(after, password)


# --- throttling and lockout --------------------------------------------------------------------


def test_lockout_after_consecutive_failures_and_unlock(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    settings(console_app, lockout_after=3, max_failures_per_username=100)
    username, password = make_user("reviewer")
    for _ in range(3):
        r = sign_in(client, username, "wrong password!!")
        assert r.status_code == 401
    assert user_row(console_app, username).locked_until is not None
    locked = sign_in(client, username, password)  # the right password does not help now
    assert locked.status_code == 429
    assert error_text(locked.text) == THROTTLED
    assert int(locked.headers["Retry-After"]) > 0
    # an administrator unlocks: the right password works again
    admin = TestClient(console_app, follow_redirects=False)
    admin_name, admin_password = make_user("platform_admin")
    login(admin, admin_name, admin_password)
    page = admin.get("/console/admin/users")
    assert "已锁定" in page.text
    user_id = user_row(console_app, username).id
    r = admin.post(f"/console/admin/users/{user_id}/unlock", data={"csrf_token": admin.csrf})
    assert r.status_code == 303
    login(client, username, password)
    row = user_row(console_app, username)
    assert row.locked_until is None and row.failed_logins == 0


def test_lock_expires_and_success_resets_the_count(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    settings(console_app, lockout_after=2)
    username, password = make_user("reviewer")
    sign_in(client, username, "wrong password!!")
    login(client, username, password)  # one failure, then success: count back to 0
    assert user_row(console_app, username).failed_logins == 0
    client.cookies.clear()
    sign_in(client, username, "wrong password!!")
    sign_in(client, username, "wrong password!!")
    assert sign_in(client, username, password).status_code == 429
    with console_app.state.service.tx(write=True) as s:
        past = utcnow() - timedelta(minutes=1)
        s.execute(update(ConsoleUser).values(locked_until=past))
        s.execute(update(LoginAttempt).values(at=utcnow() - timedelta(hours=1)))
    login(client, username, password)


def test_unknown_usernames_are_throttled_like_known_ones(
    console_app: FastAPI, client: TestClient
) -> None:
    settings(console_app, max_failures_per_username=3)
    answers = [sign_in(client, "ghost", "some password!").status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]
    assert error_text(sign_in(client, "ghost", "x" * 12).text) == THROTTLED


def test_failures_are_limited_per_client_address(
    console_app: FastAPI, client: TestClient, make_user: MakeUser
) -> None:
    settings(console_app, max_failures_per_address=4, max_failures_per_username=100)
    username, password = make_user("reviewer")
    for i in range(4):
        assert sign_in(client, f"guess-{i}", "some password!").status_code == 401
    r = sign_in(client, username, password)  # even a right password, from this address
    assert r.status_code == 429
    assert error_text(r.text) == THROTTLED
    with console_app.state.service.tx() as s:
        digests = set(s.scalars(select(LoginAttempt.username_hash)))
    assert "guess-0" not in str(digests)  # usernames are kept as digests only
    assert hashlib.sha256(b"guess-0").hexdigest() in digests


def test_disabled_user_cannot_sign_in(
    console_app: FastAPI, client: TestClient, make_user: MakeUser
) -> None:
    username, password = make_user("reviewer")
    with console_app.state.service.tx(write=True) as s:
        user = console_store.user_by_username(s, username)
        assert user is not None
        console_store.disable_user(s, user)
    r = sign_in(client, username, password)
    assert r.status_code == 401 and error_text(r.text) == WRONG


# --- sessions ------------------------------------------------------------------------------


def test_idle_session_expires(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    username, password = make_user("platform_admin")
    login(client, username, password)
    assert client.get("/console/admin").status_code == 200
    idle = console_app.state.console_settings.session_idle
    with console_app.state.service.tx(write=True) as s:
        s.execute(update(ConsoleSession).values(last_seen_at=utcnow() - idle - timedelta(1 / 24)))
    r = client.get("/console/admin")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    assert count(console_app, ConsoleSession) == 0


def test_absolute_session_expiry(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    username, password = make_user("platform_admin")
    login(client, username, password)
    with console_app.state.service.tx(write=True) as s:
        s.execute(update(ConsoleSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/console/admin").status_code == 303
    assert count(console_app, ConsoleSession) == 0


def test_use_keeps_a_session_alive(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    settings(console_app, touch_every=timedelta(0))
    username, password = make_user("platform_admin")
    login(client, username, password)
    old = utcnow() - timedelta(minutes=20)
    with console_app.state.service.tx(write=True) as s:
        s.execute(update(ConsoleSession).values(last_seen_at=old))
    assert client.get("/console/admin").status_code == 200
    with console_app.state.service.tx() as s:
        seen = s.scalar(select(ConsoleSession.last_seen_at))
    assert seen is not None and seen > old + timedelta(minutes=10)


def test_logout_deletes_the_session(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    username, password = make_user("platform_admin")
    login(client, username, password)
    token = client.cookies.get("ql_session")
    assert token
    r = client.post("/console/logout", data={"csrf_token": client.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert count(console_app, ConsoleSession) == 0
    # the old cookie opens nothing any more
    with TestClient(console_app, follow_redirects=False) as other:
        other.cookies.set("ql_session", token, path="/console")
        assert other.get("/console/admin").status_code == 303


def test_settings_come_from_the_environment() -> None:
    s = ConsoleSettings.from_env(
        {"QINGLANG_CONSOLE_SESSION_IDLE_MINUTES": "5", "QINGLANG_CONSOLE_LOCKOUT_AFTER": "7"}
    )
    assert s.session_idle == timedelta(minutes=5) and s.lockout_after == 7
    assert s.session_absolute == ConsoleSettings().session_absolute
    with pytest.raises(ValueError, match="QINGLANG_CONSOLE_LOCKOUT_MINUTES"):
        ConsoleSettings.from_env({"QINGLANG_CONSOLE_LOCKOUT_MINUTES": "-1"})


# --- CSRF on every POST route -----------------------------------------------------------------

POST_ROUTES = (
    "/console/logout",
    "/console/admin/keys",
    "/console/admin/keys/{prefix}/revoke",
    "/console/admin/users",
    "/console/admin/users/{user_id}/unlock",
    "/console/admin/users/{user_id}/disable",
    "/console/admin/users/{user_id}/enable",
)


def test_every_post_route_needs_the_session_csrf_token(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    admin, password = make_user("platform_admin")
    other, _ = make_user("reviewer")
    login(client, admin, password)
    page = client.post("/console/admin/keys", data={"csrf_token": client.csrf})
    prefix = re.search(r"ql_([0-9a-f]{12})_", page.text)
    assert prefix is not None
    values = {"prefix": prefix.group(1), "user_id": user_row(console_app, other).id}
    form = {"username": "new-one", "password": "x" * 12, "role": "reviewer", "label": "k"}
    for route in POST_ROUTES:
        path = route.format(**values)
        missing = client.post(path, data=form)
        wrong = client.post(path, data={**form, "csrf_token": "not-the-token"})
        wrong_header = client.post(path, data=form, headers={"X-CSRF-Token": "nope"})
        for r in (missing, wrong, wrong_header):
            assert r.status_code == 403, (path, r.status_code)
            assert "无权访问" in r.text and r.headers["content-type"].startswith("text/html")
    assert count(console_app, ConsoleSession) == 1  # logout without a token did nothing
    # the header works like the field (htmx sends it)
    r = client.post(
        f"/console/admin/keys/{values['prefix']}/revoke",
        headers={"X-CSRF-Token": client.csrf},
    )
    assert r.status_code == 303


def test_another_sessions_csrf_token_is_refused(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, login: Login
) -> None:
    a, pa = make_user("platform_admin")
    b, pb = make_user("platform_admin")
    login(client, a, pa)
    with TestClient(console_app, follow_redirects=False) as other:
        login(other, b, pb)
        r = client.post("/console/admin/keys", data={"csrf_token": other.csrf})
    assert r.status_code == 403


# --- roles -----------------------------------------------------------------------------------


def test_other_roles_cannot_open_admin_pages(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    for role in ("reviewer", "compliance", "guardian"):
        client.cookies.clear()
        username, password = make_user(role, "g-7" if role == "guardian" else None)
        login(client, username, password)
        for path in ("/console/admin", "/console/admin/keys", "/console/admin/users"):
            r = client.get(path)
            assert r.status_code == 403, (role, path)
            assert "无权访问" in r.text
        r = client.post("/console/admin/keys", data={"csrf_token": client.csrf})
        assert r.status_code == 403


def test_navigation_shows_the_areas_of_the_role(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    username, password = make_user("platform_admin")
    login(client, username, password)
    page = client.get("/console/admin").text
    nav = page.split('class="areas"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/console/admin"' in nav
    assert 'href="/console/guardian"' not in nav


# --- languages, layout, errors ------------------------------------------------------------------


def test_language_switch(client: TestClient, make_user: MakeUser, login: Login) -> None:
    page = client.get("/console/login")
    assert '<html lang="zh-CN">' in page.text and "登录" in page.text
    page = client.get("/console/login?lang=en")
    assert '<html lang="en">' in page.text and "Sign in" in page.text
    assert client.cookies.get("ql_lang") == "en"
    assert '<html lang="en">' in client.get("/console/login").text  # remembered
    r = client.get("/console/lang/zh?next=/console/login")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert client.cookies.get("ql_lang") == "zh"
    assert '<html lang="zh-CN">' in client.get("/console/login").text
    username, _ = make_user("reviewer")
    r = sign_in(client, username, "wrong password!!")
    assert error_text(r.text) == WRONG
    client.cookies.set("ql_lang", "en", path="/console")
    r = sign_in(client, username, "wrong password!!")
    assert error_text(r.text) == "Wrong username or password."


def test_layout_has_the_accessibility_landmarks(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    username, password = make_user("platform_admin")
    login(client, username, password)
    r = client.get("/console/admin")
    html = r.text
    assert '<a class="skip-link" href="#main">' in html
    assert '<main id="main"' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert 'action="/console/logout"' in html
    assert "alpha" in html  # the platform
    assert "/console/static/htmx.min.js" in html and "/console/static/console.js" in html
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Frame-Options"] == "DENY"


def test_static_files(client: TestClient) -> None:
    htmx = client.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200
    assert "Zero-Clause BSD" in htmx.text[:1000] and "htmx 2.0.11" in htmx.text[:200]
    css = client.get("/console/static/console.css")
    assert css.status_code == 200 and '"Noto Sans CJK SC"' in css.text
    js = client.get("/console/static/console.js")
    assert js.status_code == 200 and "X-CSRF-Token" in js.text
    missing = client.get("/console/static/nothing.js")
    assert missing.status_code == 404 and "<html" in missing.text


def test_console_errors_are_pages_and_api_errors_stay_problem_json(
    console_app: FastAPI, client: TestClient
) -> None:
    r = client.get("/console/no-such-page")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html") and "页面不存在" in r.text
    r = client.get("/console/logout")
    assert r.status_code == 405 and "<html" in r.text
    api = client.get("/v1/no-such-thing")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["status"] == 404
    unauthorised = client.get("/v1/accounts/x")
    assert unauthorised.headers["content-type"] == "application/problem+json"
    assert unauthorised.status_code == 401


def test_an_exception_in_the_console_renders_a_page_not_a_trace(console_app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("secret detail that must not leak")

    console_app.add_api_route("/console/boom", boom)
    console_app.add_api_route("/v1/boom", boom)
    with TestClient(console_app, raise_server_exceptions=False) as c:
        r = c.get("/console/boom")
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("text/html")
        assert "服务器出错" in r.text and "secret detail" not in r.text
        assert "Traceback" not in r.text
        api = c.get("/v1/boom")
        assert api.status_code == 500
        assert api.headers["content-type"] == "application/problem+json"


def test_bad_path_parameter_renders_a_page(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    username, password = make_user("platform_admin")
    login(client, username, password)
    r = client.post("/console/admin/users/not-a-number/disable", data={"csrf_token": client.csrf})
    assert r.status_code in (403, 422)
    assert r.headers["content-type"].startswith("text/html")


# --- catalogues --------------------------------------------------------------------------------


def test_catalogues_have_both_languages() -> None:
    catalogue = i18n.catalogue()
    assert catalogue["common.app_name"] == {"zh": "青朗控制台", "en": "qinglang console"}
    for key, texts in catalogue.items():
        assert set(texts) == {"zh", "en"} and all(t.strip() for t in texts.values()), key


def test_catalogue_errors() -> None:
    into: dict[str, dict[str, str]] = {}
    i18n.parse_catalogue('[a.b]\nzh = "甲"\nen = "A"\n', "one.toml", into)
    with pytest.raises(i18n.CatalogueError, match="defined twice"):
        i18n.parse_catalogue('["a.b"]\nzh = "乙"\nen = "B"\n', "two.toml", into)
    with pytest.raises(i18n.CatalogueError, match="no en text"):
        i18n.parse_catalogue('[c]\nzh = "丙"\n', "three.toml", {})
    with pytest.raises(i18n.CatalogueError, match="unknown languages"):
        i18n.parse_catalogue('[c]\nzh = "丙"\nen = "C"\nfr = "C"\n', "four.toml", {})


def test_missing_key_raises_in_strict_mode_and_shows_the_key_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(i18n.MissingTranslation):
        i18n.translate("no.such.key", "zh")
    monkeypatch.setenv("QINGLANG_I18N_STRICT", "0")
    assert i18n.translate("no.such.key", "en") == "no.such.key"
    assert i18n.translate("common.signed_in_as", "en", username="u", role="r") == "u (r)"


# --- staff reads ---------------------------------------------------------------------------------


def test_audit_staff_read_appends_a_ledger_entry(
    console_app: FastAPI, make_user: MakeUser, platform_id: int
) -> None:
    from qinglang.store import ledger, repo
    from qinglang.store.models import LedgerEntry
    from qinglang.web.auth import STAFF_READ, CurrentUser, Forbidden, audit_staff_read

    username, _ = make_user("reviewer")
    user = user_row(console_app, username)
    current = CurrentUser(user.id, platform_id, "alpha", username, "reviewer", None, "t")
    with console_app.state.service.tx(write=True) as s:
        child = repo.upsert_account(s, platform_id, "child-1")
        beta = repo.get_platform_by_slug(s, "beta")
        assert beta is not None
        stranger = repo.upsert_account(s, beta.id, "child-2")
        audit_staff_read(s, current, child, "alert evidence")
        with pytest.raises(Forbidden):
            audit_staff_read(s, current, stranger, "alert evidence")
    with console_app.state.service.tx() as s:
        entries = list(s.scalars(select(LedgerEntry).where(LedgerEntry.kind == STAFF_READ)))
        assert ledger.verify(s, platform_id) is None
    assert STAFF_READ == "staff.read"
    assert [(e.platform_id, e.subject) for e in entries] == [(platform_id, "child-1")]
    assert f'"by":"console:{username}"' in entries[0].body
    assert '"read":"alert evidence"' in entries[0].body


def test_unknown_and_locked_users_cost_a_password_verification(
    console_app: FastAPI, client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings(console_app, lockout_after=1)
    username, password = make_user("reviewer")
    real_verify, real_dummy = console_store.verify_password, console_store.burn_dummy_verification
    calls: list[str] = []

    def verify(password_hash: str, given: str) -> bool:
        calls.append("verify")
        return real_verify(password_hash, given)

    def dummy(given: str) -> None:
        calls.append("dummy")
        real_dummy(given)

    monkeypatch.setattr(console_store, "verify_password", verify)
    monkeypatch.setattr(console_store, "burn_dummy_verification", dummy)
    sign_in(client, "nobody-at-all", "some password!")
    sign_in(client, username, "wrong password!!")  # locks (lockout_after=1)
    sign_in(client, username, password)  # locked
    # unknown: a dummy verification; wrong password: the real one; locked: a dummy one
    assert calls == ["dummy", "verify", "verify", "dummy", "verify"]


def test_a_form_posted_without_a_session_returns_to_the_page_it_was_on(
    console_app: FastAPI,
) -> None:
    from starlette.requests import Request

    from qinglang.web.auth import LoginRequired, require_role

    def post(referer: str) -> str:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/console/admin/keys",
            "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"referer", referer.encode())],
            "scheme": "http",
            "server": ("testserver", 80),
            "app": console_app,
        }
        with pytest.raises(LoginRequired) as caught:
            require_role("platform_admin")(Request(scope))
        return caught.value.next_path

    assert post("http://testserver/console/admin/keys?lang=en") == "/console/admin/keys?lang=en"
    assert post("https://evil.example/console/admin") == "/console/"
    assert post("http://testserver/v1/platforms") == "/console/"
