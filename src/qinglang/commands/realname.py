"""`qinglang realname`: the national anti-addiction real-name system, emulated on loopback.

`emulate` serves `qinglang.realname.emulator` (same wire protocol as the real system) until
interrupted, after printing its URL, app id, biz id and secret (generated when not given) and,
with `--test-cases`, eight fresh test codes with their case names. Without `--registry` it knows
the three demo identities of `demo_registry()`. Bad input exits with code 2 and one line.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qinglang.commands.common import DEFAULT_DB, DbOption, err, fail, out

if TYPE_CHECKING:
    import socket

    from qinglang.api.service import Service
    from qinglang.realname.emulator import Emulator
    from qinglang.store.models import Platform

app = typer.Typer(
    help="The national real-name verification system: configure, upload reports, emulate.",
    no_args_is_help=True,
)

DEFAULT_BIZ_ID = "1101999999"


@app.callback()
def _realname() -> None:
    """The national real-name verification system (emulated, for tests)."""


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _serve(emulator: Emulator, sock: socket.socket) -> None:
    """Serve the emulator's app on the bound socket until interrupted (Ctrl-C)."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(emulator.app, log_level="warning", lifespan="off", access_log=False)
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the captured SIGINT after a graceful shutdown
    finally:
        sock.close()


@app.command()
def emulate(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)")] = 8700,
    app_id: Annotated[
        str | None, typer.Option("--app-id", help="appId (default: generated)")
    ] = None,
    biz_id: Annotated[str, typer.Option("--biz-id", help="bizId")] = DEFAULT_BIZ_ID,
    secret: Annotated[
        str | None, typer.Option(help="app secret, 32 hex characters (default: generated)")
    ] = None,
    registry: Annotated[
        Path | None,
        typer.Option(help="identities, JSON or TOML (default: three demo identities)"),
    ] = None,
    test_cases: Annotated[
        bool, typer.Option("--test-cases", help="serve the 8 official test cases (new codes)")
    ] = False,
    qps_check: Annotated[int | None, typer.Option("--qps-check", help="QPS of check")] = None,
    qps_query: Annotated[int | None, typer.Option("--qps-query", help="QPS of query")] = None,
    qps_loginout: Annotated[
        int | None, typer.Option("--qps-loginout", help="QPS of loginout")
    ] = None,
) -> None:
    """Serve the real-name system's protocol on HOST:PORT until interrupted."""
    from qinglang.realname.emulator import (
        ADMIN_STATE_PATH,
        TEST_CASES,
        Emulator,
        EmulatorConfig,
        Registry,
        RegistryError,
        bind_socket,
        demo_registry,
        generate_test_codes,
    )
    from qinglang.realname.protocol import BadSecret, key_bytes

    if not 0 <= port <= 65535:
        fail(f"--port must be 0..65535, got {port}")
    if secret is None:
        secret = secrets.token_hex(16)
    try:
        key_bytes(secret)
    except BadSecret as exc:
        fail(f"--secret: {exc}")
    app_id = app_id if app_id is not None else secrets.token_hex(16)
    if not app_id or not biz_id:
        fail("--app-id and --biz-id must not be empty")
    qps: dict[str, int] = {}
    for name, value in (("check", qps_check), ("query", qps_query), ("loginout", qps_loginout)):
        if value is not None:
            if value < 1:
                fail(f"--qps-{name} must be at least 1, got {value}")
            qps[name] = value
    try:
        reg = Registry.from_file(registry) if registry is not None else demo_registry()
    except RegistryError as exc:
        fail(str(exc))
    codes = generate_test_codes() if test_cases else None
    emulator = Emulator(
        EmulatorConfig(app_id, biz_id, secret, reg, qps=qps or None, test_codes=codes)
    )
    try:
        sock = bind_socket(host, port)
    except (OSError, OverflowError) as exc:
        fail(f"cannot listen on {host}:{port}: {exc.__class__.__name__}: {exc}")
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{bound_port}"

    _say(f"real-name system emulator (网络游戏防沉迷实名认证系统, emulated): {url}")
    _say(f"app id: {app_id}")
    _say(f"biz id: {biz_id}")
    _say(f"secret: {secret}")
    source = str(registry) if registry is not None else "demo"
    _say(f"registry: {len(reg)} identities ({source})")
    if registry is None:
        for identity in reg:
            _say(f"  {identity.id_num}  {identity.name}  {identity.outcome}")
    limits = ", ".join(f"{n} {emulator.config.qps_for(n)}" for n in ("check", "query", "loginout"))
    _say(f"qps: {limits}")
    if codes:
        _say("test codes:")
        for code, case in codes.items():
            endpoint, zh, en = TEST_CASES[case]
            _say(f"  {code}  case {case} ({endpoint})  {zh} / {en}")
    _say(f"state (emulator-only): {url}{ADMIN_STATE_PATH}")
    _say("serving until interrupted (Ctrl-C)")
    sys.stdout.flush()
    _serve(emulator, sock)


# ---------------------------------------------------------------- platform side


def _platform_of(db: str, slug: str) -> tuple[Service, Platform]:
    from qinglang.commands.common import open_service, platform_by_slug

    service = open_service(db)
    return service, platform_by_slug(service, slug)


@app.command("configure")
def configure(
    platform: Annotated[str, typer.Option(help="platform slug")],
    url: Annotated[str, typer.Option(help="system URL, e.g. https://api.wlc.nppa.gov.cn")],
    app_id: Annotated[str, typer.Option("--app-id", help="appId from the operator registration")],
    biz_id: Annotated[str, typer.Option("--biz-id", help="bizId (business permission)")],
    secret: Annotated[str, typer.Option(help="app secret, 32 hex characters (stored encrypted)")],
    test_code: Annotated[
        list[str] | None,
        typer.Option(
            "--test-code", help="ENDPOINT=CODE of the test system (check, query, loginout)"
        ),
    ] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Set a platform's access to the real-name system (the secret is never printed)."""
    from qinglang.realname.protocol import BadSecret, key_bytes
    from qinglang.store import realname as store

    try:
        key_bytes(secret)
    except BadSecret as exc:
        fail(f"--secret: {exc}")
    if not url.startswith(("http://", "https://")):
        fail("--url: must start with http:// or https://")
    codes: dict[str, str] = {}
    for item in test_code or []:
        name, sep, code = item.partition("=")
        if not sep or name not in ("check", "query", "loginout") or not code:
            fail(f"--test-code: expected check=CODE, query=CODE or loginout=CODE, got {item!r}")
        codes[name] = code
    service, p = _platform_of(db, platform)
    with service.tx(write=True) as s:
        store.configure(
            s, p.id, base_url=url, app_id=app_id, biz_id=biz_id, secret=secret, test_codes=codes
        )
    service.engine.dispose()
    _say(f"{p.slug}: real-name system {url} (appId {app_id}, bizId {biz_id}) configured")


@app.command("status")
def status(
    platform: Annotated[str, typer.Option(help="platform slug")],
    db: DbOption = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Login/logout reports waiting to be uploaded, and those the system rejected."""
    from qinglang.store import realname as store

    service, p = _platform_of(db, platform)
    with service.tx() as s:
        cfg = store.config_of(s, p.id)
        counts = store.outbox_counts(s, p.id)
    service.engine.dispose()
    if as_json:
        print(json.dumps({"platform": p.slug, "configured": cfg is not None, **counts}))
        return
    where = cfg.base_url if cfg else "not configured"
    _say(
        f"{p.slug}: {where}; {counts['waiting']:,} reports waiting, {counts['rejected']:,} rejected"
    )


@app.command("flush")
def flush(
    platform: Annotated[str, typer.Option(help="platform slug")],
    db: DbOption = DEFAULT_DB,
    max_batches: Annotated[
        int | None, typer.Option("--max-batches", min=1, help="stop after this many batches")
    ] = None,
    wait: Annotated[
        float, typer.Option(min=0, help="seconds to wait while another process holds the upload")
    ] = 30.0,
) -> None:
    """Upload waiting login/logout reports in batches of 128 within the endpoint's QPS."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from qinglang.realname.client import service_client
    from qinglang.store import realname as store

    service, p = _platform_of(db, platform)
    with service.tx() as s:
        cfg = store.config_of(s, p.id)
        if cfg is None:
            fail(f"{p.slug}: the real-name system is not configured (qinglang realname configure)")
        total = store.outbox_counts(s, p.id)["waiting"]
        client = service_client(cfg.base_url, cfg.app_id, cfg.biz_id, cfg.secret, cfg.test_codes)
    progress = Progress(
        TextColumn("uploading"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    )
    task = progress.add_task("upload", total=total)
    deadline = time.monotonic() + wait
    try:
        with progress, client:
            while True:
                report = store.drain(
                    service.write_sessions,
                    p.id,
                    client,
                    max_batches=max_batches,
                    progress=lambda done, n: progress.update(task, completed=done),
                )
                if not report.busy or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
    finally:
        service.engine.dispose()
    for reason, n in sorted(report.rejections.items()):
        err.print(f"rejected: {n:,} × {reason}", markup=False, highlight=False)
    _say(
        f"{p.slug}: {report.sent:,} reports sent in {report.batches:,} batches "
        f"({report.accepted:,} accepted, {report.rejected:,} rejected); {report.waiting:,} waiting"
    )
    if report.busy:
        fail(f"{p.slug}: another process is uploading (lease held); try again later")
    if report.error:
        fail(f"{p.slug}: upload stopped: {report.error}")
