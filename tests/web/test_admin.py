"""Platform administration in the console: API keys, policy in force, console users, CLI."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from qinglang.cli import app as cli_app
from qinglang.commands.common import BadInput
from qinglang.store import console as console_store
from qinglang.store import repo
from qinglang.store.models import ConsoleSession
from tests.web.conftest import OTHER_PLATFORM, Login, MakeUser, sign_in

OVERLAY = (
    '[pack]\nid = "alpha-strict"\nversion = "1"\njurisdiction = "CN"\n'
    'timezone = "Asia/Shanghai"\ntitle_zh = "甲"\ntitle_en = "Alpha"\nbase = "cn"\n'
    '[[overrides]]\nid = "cn.spend.single.8to15"\nvalue = 3000\nnote = "stricter cap"\n'
)


def admin_client(console_app: FastAPI, make_user: MakeUser, login: Login, **kw: Any) -> TestClient:
    username, password = make_user("platform_admin", **kw)
    return login(TestClient(console_app, follow_redirects=False), username, password)


def csrf(c: TestClient) -> str:
    token: str = c.csrf
    return token


def new_key(c: TestClient, label: str = "") -> str:
    r = c.post("/console/admin/keys", data={"label": label, "csrf_token": csrf(c)})
    assert r.status_code == 200, r.text
    m = re.search(r'<code class="secret" id="new-key">(ql_[^<]+)</code>', r.text)
    assert m is not None
    return m.group(1)


def user_id(app: FastAPI, username: str) -> int:
    with app.state.service.tx() as s:
        user = console_store.user_by_username(s, username)
        assert user is not None
        return user.id


# --- API keys ----------------------------------------------------------------------------------


def test_create_key_shows_it_once_and_it_works_until_revoked(
    console_app: FastAPI, make_user: MakeUser, login: Login
) -> None:
    admin = admin_client(console_app, make_user, login)
    key = new_key(admin, "backend server")
    prefix = key.split("_")[1]
    page = admin.get("/console/admin/keys").text
    assert f"ql_{prefix}_…" in page and "backend server" in page
    assert key not in page  # shown once only
    with console_app.state.service.tx() as s:
        stored = repo.list_api_keys(s, repo.get_platform_by_slug(s, "alpha").id)  # type: ignore[union-attr]
        assert key not in {k.key_hash for k in stored}
    api = TestClient(console_app)
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get("/v1/accounts/nobody", headers=headers).status_code == 404  # authenticated
    r = admin.post(f"/console/admin/keys/{prefix}/revoke", data={"csrf_token": csrf(admin)})
    assert r.status_code == 303 and r.headers["location"] == "/console/admin/keys?done=revoked"
    page = admin.get(r.headers["location"]).text
    assert "密钥已吊销" in page and "已于" in page
    assert api.get("/v1/accounts/nobody", headers=headers).status_code == 401


def test_key_label_too_long_is_a_field_error(
    console_app: FastAPI, make_user: MakeUser, login: Login
) -> None:
    admin = admin_client(console_app, make_user, login)
    r = admin.post("/console/admin/keys", data={"label": "x" * 201, "csrf_token": csrf(admin)})
    assert r.status_code == 422
    assert 'id="key-label-error"' in r.text and "ql_" not in r.text.split("key-list-title")[0]


def test_admin_sees_only_its_own_platform(
    console_app: FastAPI, make_user: MakeUser, login: Login
) -> None:
    alpha = admin_client(console_app, make_user, login)
    beta = admin_client(console_app, make_user, login, platform=OTHER_PLATFORM)
    beta_key = new_key(beta, "beta secret label")
    beta_prefix = beta_key.split("_")[1]
    beta_reviewer, _ = make_user("reviewer", platform=OTHER_PLATFORM, username="beta-reviewer")
    page = alpha.get("/console/admin/keys").text
    assert beta_prefix not in page and "beta secret label" not in page
    users = alpha.get("/console/admin/users").text
    assert "beta-reviewer" not in users
    # another platform's key or user answers as if it did not exist
    r = alpha.post(f"/console/admin/keys/{beta_prefix}/revoke", data={"csrf_token": csrf(alpha)})
    assert r.status_code == 404
    other = user_id(console_app, beta_reviewer)
    for action in ("unlock", "disable", "enable"):
        r = alpha.post(f"/console/admin/users/{other}/{action}", data={"csrf_token": csrf(alpha)})
        assert r.status_code == 404, action
    api = TestClient(console_app)
    assert (
        api.get("/v1/accounts/x", headers={"Authorization": f"Bearer {beta_key}"}).status_code
        == 404
    )
    assert "alpha" in alpha.get("/console/admin").text
    assert "beta" in beta.get("/console/admin").text


# --- policy --------------------------------------------------------------------------------------


def test_policy_page_without_overlay(
    console_app: FastAPI, make_user: MakeUser, login: Login
) -> None:
    admin = admin_client(console_app, make_user, login)
    r = admin.get("/console/admin/policy")
    assert r.status_code == 200
    assert "<code>cn</code>" in r.text
    assert "本平台没有叠加规则" in r.text and "没有改动任何规则" in r.text


def test_policy_page_shows_the_overlay_and_the_rules_it_changes(
    console_app: FastAPI, make_user: MakeUser, login: Login
) -> None:
    with console_app.state.service.tx(write=True) as s:
        platform = repo.get_platform_by_slug(s, "alpha")
        assert platform is not None
        platform.policy_overlay = OVERLAY
    admin = admin_client(console_app, make_user, login)
    r = admin.get("/console/admin/policy?lang=en")
    assert r.status_code == 200
    assert "alpha-strict" in r.text  # the overlay text
    row = r.text.split("<code>cn.spend.single.8to15</code>", 1)[1].split("</li>", 1)[0]
    assert "<strong>3000</strong>" in row and "stricter cap" in row
    assert "yes (may only tighten)" in row


def test_policy_page_shows_an_overlay_that_no_longer_loads(
    console_app: FastAPI, make_user: MakeUser, login: Login
) -> None:
    with console_app.state.service.tx(write=True) as s:
        platform = repo.get_platform_by_slug(s, "alpha")
        assert platform is not None
        platform.policy_overlay = OVERLAY.replace("3000", "999999")  # loosens a floor
    admin = admin_client(console_app, make_user, login)
    r = admin.get("/console/admin/policy")
    assert r.status_code == 200
    assert "本平台的策略配置无效" in r.text and "cn.spend.single.8to15" in r.text


# --- console users ------------------------------------------------------------------------------


def create(c: TestClient, **form: str) -> Any:
    return c.post("/console/admin/users", data={**form, "csrf_token": csrf(c)})


def test_create_users_of_each_role(console_app: FastAPI, make_user: MakeUser, login: Login) -> None:
    admin = admin_client(console_app, make_user, login)
    with console_app.state.service.tx(write=True) as s:
        platform = repo.get_platform_by_slug(s, "alpha")
        assert platform is not None
        repo.upsert_guardian(s, platform.id, "g-mum")
    r = create(admin, username="Rev.One", password="p" * 12, role="reviewer")
    assert r.status_code == 303 and r.headers["location"] == "/console/admin/users?done=created"
    r = create(admin, username="mum", password="p" * 12, role="guardian", guardian="g-mum")
    assert r.status_code == 303
    page = admin.get("/console/admin/users?done=created").text
    assert "用户已添加" in page and "rev.one" in page and "监护人 g-mum" in page
    with TestClient(console_app, follow_redirects=False) as c:
        assert sign_in(c, "rev.one", "p" * 12).headers["location"] == "/console/review"
    with TestClient(console_app, follow_redirects=False) as c:
        assert sign_in(c, "mum", "p" * 12).headers["location"] == "/console/guardian"


def test_create_user_errors_are_shown_next_to_the_field(
    console_app: FastAPI, make_user: MakeUser, login: Login
) -> None:
    admin = admin_client(console_app, make_user, login)
    make_user("reviewer", username="taken")
    make_user("reviewer", username="elsewhere", platform=OTHER_PLATFORM)
    g_beta = "g-beta"
    make_user("guardian", g_beta, platform=OTHER_PLATFORM)
    cases = [
        ({"username": "ok-name", "password": "short", "role": "reviewer"}, "password"),
        ({"username": "a", "password": "p" * 12, "role": "reviewer"}, "username"),
        ({"username": "bad name!", "password": "p" * 12, "role": "reviewer"}, "username"),
        ({"username": "TAKEN", "password": "p" * 12, "role": "reviewer"}, "username"),
        ({"username": "elsewhere", "password": "p" * 12, "role": "reviewer"}, "username"),
        ({"username": "ok-name", "password": "p" * 12, "role": "superuser"}, "role"),
        ({"username": "ok-name", "password": "p" * 12, "role": "guardian"}, "guardian"),
        # a guardian of another platform is not found on this one
        (
            {"username": "ok-name", "password": "p" * 12, "role": "guardian", "guardian": g_beta},
            "guardian",
        ),
        (
            {"username": "ok-name", "password": "p" * 12, "role": "reviewer", "guardian": "g"},
            "guardian",
        ),
    ]
    for form, field in cases:
        r = create(admin, **form)
        assert r.status_code == 422, form
        assert f'id="new-{field}-error"' in r.text, (form, field)
        assert 'aria-invalid="true"' in r.text
    with console_app.state.service.tx() as s:
        assert console_store.user_by_username(s, "ok-name") is None


def test_disable_ends_sessions_and_enable_restores(
    console_app: FastAPI, make_user: MakeUser, login: Login
) -> None:
    admin = admin_client(console_app, make_user, login)
    username, password = make_user("reviewer")
    reviewer = login(TestClient(console_app, follow_redirects=False), username, password)
    target = user_id(console_app, username)
    r = admin.post(f"/console/admin/users/{target}/disable", data={"csrf_token": csrf(admin)})
    assert r.status_code == 303
    assert "用户已停用" in admin.get(r.headers["location"]).text
    with console_app.state.service.tx() as s:
        sessions = s.query(ConsoleSession).filter_by(user_id=target).count()
    assert sessions == 0
    assert reviewer.get("/console/").headers["location"] == "/console/login"
    assert sign_in(reviewer, username, password).status_code == 401
    r = admin.post(f"/console/admin/users/{target}/enable", data={"csrf_token": csrf(admin)})
    assert r.status_code == 303
    login(reviewer, username, password)


def test_admin_cannot_disable_themself(
    console_app: FastAPI, make_user: MakeUser, login: Login
) -> None:
    username, password = make_user("platform_admin")
    admin = login(TestClient(console_app, follow_redirects=False), username, password)
    me = user_id(console_app, username)
    r = admin.post(f"/console/admin/users/{me}/disable", data={"csrf_token": csrf(admin)})
    assert r.status_code == 422 and "不能停用自己的账号" in r.text
    assert admin.get("/console/admin").status_code == 200


def test_english_admin_pages(console_app: FastAPI, make_user: MakeUser, login: Login) -> None:
    admin = admin_client(console_app, make_user, login)
    for path, title in (
        ("/console/admin", "Platform administration"),
        ("/console/admin/keys", "API keys"),
        ("/console/admin/policy", "Policy in force"),
        ("/console/admin/users", "Console users"),
    ):
        r = admin.get(path + "?lang=en")
        assert r.status_code == 200 and f"<h1>{title}</h1>" in r.text, path
        assert '<html lang="en">' in r.text


# --- command line ---------------------------------------------------------------------------------


def cli(db_url: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run `qinglang console user …` in this process: (exit code, stdout, error line)."""
    result = CliRunner().invoke(
        cli_app, ["console", "user", *args, "--db", db_url], input=stdin, catch_exceptions=True
    )
    if isinstance(result.exception, BadInput):
        return 2, result.stdout, str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, ""


def test_cli_entry_point(db_url: str, console_app: FastAPI) -> None:
    """The installed command reads the password from stdin and exits 2 on bad input."""
    command = [sys.executable, "-m", "qinglang.cli", "console", "user", "add", "--db", db_url]
    command += ["--platform", "alpha", "--username", "officer", "--role", "compliance"]
    run = functools.partial(subprocess.run, capture_output=True, text=True, check=False)
    r = run([*command, "--password-stdin"], input="a long enough password\n")
    assert r.returncode == 0, r.stderr
    assert "console user officer (compliance) added to alpha" in r.stdout
    with console_app.state.service.tx() as s:
        user = console_store.user_by_username(s, "officer")
        assert user is not None and user.password_hash.startswith("$argon2id$")
    r = run(command)
    assert r.returncode == 2 and r.stderr.startswith("error: --password-stdin")


def test_cli_add_list_unlock_disable(console_app: FastAPI, db_url: str, client: TestClient) -> None:
    with console_app.state.service.tx(write=True) as s:
        platform = repo.get_platform_by_slug(s, "alpha")
        assert platform is not None
        repo.upsert_guardian(s, platform.id, "g-dad")
    password = "a long enough password"
    rc, out, err = cli(
        db_url,
        "add",
        "--platform",
        "alpha",
        "--username",
        "First.Admin",
        "--role",
        "platform_admin",
        "--password-stdin",
        stdin=password + "\n",
    )
    assert rc == 0, err
    assert "first.admin" in out
    dad = ["--platform", "alpha", "--username", "dad"]
    as_guardian = ["--role", "guardian", "--guardian", "g-dad", "--password-stdin"]
    rc, out, err = cli(db_url, "add", *dad, *as_guardian, stdin=password + "\n")
    assert rc == 0, err
    # bad input: one line, exit code 2
    rc, out, err = cli(
        db_url, "add", "--platform", "alpha", "--username", "x1", "--role", "reviewer"
    )
    assert rc == 2 and "--password-stdin" in err
    rc, out, err = cli(
        db_url, "add", *dad, "--role", "reviewer", "--password-stdin", stdin=password
    )
    assert rc == 2 and "already taken" in err
    nope = ["--platform", "nope", "--username", "x2", "--role", "reviewer", "--password-stdin"]
    rc, out, err = cli(db_url, "add", *nope, stdin=password)
    assert rc == 2 and "no platform" in err
    rc, out, err = cli(db_url, "list", "--platform", "alpha", "--json")
    assert rc == 0, err
    rows = {row["username"]: row for row in json.loads(out)}
    assert rows["first.admin"]["role"] == "platform_admin"
    assert rows["dad"]["guardian"] == "g-dad" and not rows["dad"]["locked"]
    assert sign_in(client, "first.admin", password).status_code == 303
    # lock, then unlock on the command line
    console_app.state.console_settings = type(console_app.state.console_settings)(lockout_after=1)
    client.cookies.clear()
    assert sign_in(client, "dad", "wrong password!!").status_code == 401
    assert sign_in(client, "dad", password).status_code == 429
    assert json.loads(cli(db_url, "list", "--platform", "alpha", "--json")[1])[0]["locked"]
    rc, out, err = cli(db_url, "unlock", "--username", "DAD")
    assert rc == 0, err
    assert sign_in(client, "dad", password).status_code == 303
    rc, out, err = cli(db_url, "disable", "--username", "dad")
    assert rc == 0, err
    assert client.get("/console/").headers["location"] == "/console/login"
    rc, out, err = cli(db_url, "unlock", "--username", "nobody")
    assert rc == 2 and "no console user" in err
