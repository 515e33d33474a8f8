"""Real-name verification and game sessions: the national anti-addiction system, as a service.

`POST /v1/realname/check` submits a player's name and identity number to the configured
verifier (the national system through `NppaClient`, or a platform's own registered verifier)
and stores the answer: a verified identity makes the account's age source `verified`. Game
sessions (`POST /v1/game/sessions`) pass the playtime decision first, so an unverified (guest)
player is refused where the pack requires real-name login, and queue login/logout reports in
the same transaction; a background drainer (QINGLANG_REALNAME_DRAIN=off turns it off) uploads
them within the endpoint's QPS. The identity number and name are never stored.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qinglang.age import InvalidIdentityNumber, validate
from qinglang.api.deps import ApiKeyDep, ServiceDep, storable_text
from qinglang.api.problems import Problem, error_responses, field_problem, identity_number_problem
from qinglang.api.service import Instant, Service, problem_for, require_account
from qinglang.guard import playtime_decision
from qinglang.guard.calendar import CalendarRangeError, day_kind
from qinglang.realname.client import InvalidInput, NppaClient, ProtocolViolation, service_client
from qinglang.realname.protocol import BadSecret, CheckStatus, RealNameError, key_bytes
from qinglang.realname.verify import (
    NppaVerifier,
    RealNameVerifier,
    VerifyRequest,
    VerifyResult,
    get_verifier,
)
from qinglang.store import assessments, id_number_digest, repo
from qinglang.store import realname as store
from qinglang.store.models import Platform, RealNameConfig

log = logging.getLogger(__name__)

Id = Annotated[str, Field(min_length=1, max_length=200)]
Endpoint = Literal["check", "query", "loginout"]
NPPA = "nppa"
STATUS_NAMES = {CheckStatus.OK: "ok", CheckStatus.PENDING: "pending", CheckStatus.FAILED: "failed"}


class Strict(BaseModel):
    """Request bodies reject unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ConfigIn(Strict):
    """The platform's access to the national system (from its operator registration)."""

    base_url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")
    app_id: str = Field(min_length=1, max_length=64)
    biz_id: str = Field(min_length=1, max_length=64)
    secret: str = Field(
        pattern=r"^[0-9a-fA-F]{32}$",
        description="32 hex characters; stored encrypted, never returned",
    )
    test_codes: dict[Endpoint, str] = Field(
        default_factory=dict, description="test-system codes per endpoint while integrating"
    )


class CheckIn(Strict):
    """A player's real-name check: name and identity number (neither is stored)."""

    account: Id
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=15, max_length=18)
    provider: str = Field(default=NPPA, min_length=1, max_length=64)


class SessionIn(Strict):
    """A player starts a game session."""

    account: Id
    at: Instant | None = Field(default=None, description="defaults to now")
    device: str | None = Field(
        default=None, min_length=32, max_length=32, description="device id (guest sessions)"
    )


class EndIn(Strict):
    """A player's game session ends."""

    at: Instant | None = None


# ------------------------------------------------------------------------------ clients


@dataclass(frozen=True)
class _Access:
    """A detached copy of a platform's config (safe outside the session)."""

    platform_id: int
    base_url: str
    app_id: str
    biz_id: str
    secret: str
    test_codes: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, row: RealNameConfig) -> _Access:
        """Copy a config row."""
        return cls(
            row.platform_id,
            row.base_url,
            row.app_id,
            row.biz_id,
            row.secret,
            tuple(sorted((row.test_codes or {}).items())),
        )


_clients: weakref.WeakKeyDictionary[Service, dict[_Access, NppaClient]] = (
    weakref.WeakKeyDictionary()
)
_clients_lock = threading.Lock()


def client_for(service: Service, access: _Access) -> NppaClient:
    """One long-lived client per platform config and process, so its rate limits hold."""
    with _clients_lock:
        per = _clients.setdefault(service, {})
        found = per.get(access)
        if found is None:
            for old in [a for a in per if a.platform_id == access.platform_id]:
                del per[old]
            try:
                found = service_client(
                    access.base_url,
                    access.app_id,
                    access.biz_id,
                    access.secret,
                    dict(access.test_codes),
                )
            except httpx.InvalidURL as exc:  # stored before URLs were checked
                raise field_problem(
                    409,
                    "base_url",
                    f"the configured URL is invalid: {exc}",
                    "Invalid configuration",
                ) from None
            per[access] = found
        return found


def _access(s: Session, platform: Platform) -> _Access:
    """The platform's config; 409 if it has none."""
    row = store.config_of(s, platform.id)
    if row is None:
        raise Problem(
            409,
            "Real-name system not configured",
            "PUT /v1/realname/config first (or `qinglang realname configure`)",
        )
    return _Access.of(row)


def _access_for(s: Session, platform: Platform, provider: str) -> _Access | None:
    """The platform's config if `provider` is the national system (which needs it)."""
    return _access(s, platform) if provider == NPPA else None


def _verifier(service: Service, provider: str, access: _Access | None) -> RealNameVerifier:
    if provider == NPPA:
        assert access is not None  # _access_for raised if unconfigured
        return NppaVerifier(client_for(service, access))
    try:
        return get_verifier(provider)
    except KeyError:
        raise field_problem(422, "provider", f"no verifier named {provider!r}") from None


def _call(fn: Callable[[], VerifyResult]) -> VerifyResult:
    """Run a verifier call; its failures become problems (422 input, 502/504 upstream)."""
    try:
        return fn()
    except RealNameError as exc:
        raise _upstream_problem(exc) from None
    except InvalidInput as exc:
        raise field_problem(422, _FIELDS.get(exc.field, exc.field), str(exc)) from None
    except ProtocolViolation as exc:
        raise Problem(502, "Real-name system error", str(exc)) from None
    except httpx.TimeoutException as exc:
        raise Problem(504, "Real-name system timeout", f"no answer: {exc}") from None
    except httpx.HTTPError as exc:
        raise Problem(502, "Real-name system unreachable", f"{type(exc).__name__}: {exc}") from None


_FIELDS = {"idNum": "id_number", "name": "name", "ai": "account"}


def _upstream_problem(exc: RealNameError) -> Problem:
    """502: the verifier answered with an error (its code and meaning in the detail)."""
    return Problem(
        502,
        "Real-name system error",
        str(exc),
        [{"errcode": exc.code, "errmsg": exc.errmsg, "retryable": exc.retryable}],
    )


# ------------------------------------------------------------------------------ config


def _config_out(row: RealNameConfig | _Access) -> dict[str, Any]:
    codes = row.test_codes if isinstance(row, RealNameConfig) else dict(row.test_codes)
    return {
        "base_url": row.base_url,
        "app_id": row.app_id,
        "biz_id": row.biz_id,
        "secret": "set",
        "test_codes": dict(codes or {}),
    }


def drain_enabled() -> bool:
    """Whether the API uploads reports in the background (QINGLANG_REALNAME_DRAIN=off: no)."""
    value = os.environ.get("QINGLANG_REALNAME_DRAIN", "on").strip().lower()
    return value not in ("0", "off", "false", "no")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the background drainer (unless QINGLANG_REALNAME_DRAIN=off)."""
    runner: BackgroundDrainer | None = None
    service = getattr(app.state, "service", None)
    if service is not None and drain_enabled():
        runner = BackgroundDrainer(service)
        runner.start()
        app.state.realname_drainer = runner
    try:
        yield
    finally:
        if runner is not None:
            runner.stop()


router = APIRouter(
    tags=["realname"],
    lifespan=lifespan,
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)


@router.put("/v1/realname/config", responses=error_responses(400, 422))
async def put_config(body: ConfigIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """Set the platform's app id, biz id, secret and system URL (the secret is never shown)."""
    try:
        key_bytes(body.secret)
    except BadSecret as exc:
        raise field_problem(422, "secret", str(exc)) from None
    try:
        url = httpx.URL(body.base_url)
    except httpx.InvalidURL as exc:
        raise field_problem(422, "base_url", str(exc)) from None
    if not url.host:
        raise field_problem(422, "base_url", "names no host")

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        row = store.configure(
            s,
            platform.id,
            base_url=body.base_url,
            app_id=body.app_id,
            biz_id=body.biz_id,
            secret=body.secret,
            test_codes={str(k): v for k, v in body.test_codes.items()},
        )
        return _config_out(row)

    return await service.run_write(key, work)


@router.get("/v1/realname/config", responses=error_responses(409))
async def get_config(key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """The platform's real-name configuration (without the secret)."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        return _config_out(_access(s, platform))

    return await service.run(key, work)


# ------------------------------------------------------------------------------ checks


def _apply_result(
    service: Service,
    s: Session,
    platform: Platform,
    account_id: str,
    ai: str,
    result: VerifyResult,
) -> dict[str, Any]:
    """Store an answer; a verified identity makes the account's age verified (audited)."""
    acc = require_account(s, platform, account_id, "account")
    row = store.check_of(s, acc.id)
    if row is None or row.ai != ai:
        raise Problem(409, "Check superseded", "a newer check for this account was submitted")
    status = STATUS_NAMES[result.status]
    at = service.clock()
    out: dict[str, Any] = {"account": acc.external_id, "status": status, "provider": row.provider}
    if status == "ok":
        if row.birth_date is None:
            raise Problem(409, "No birth date", "the check holds no identity facts; check again")
        acc.birth_date = row.birth_date
        acc.sex = row.sex
        acc.id_number_hash = row.id_number_hash
        acc.age_source = "verified"
        s.flush()
        service.forget_account(acc.id)
        minor = service.profile(platform, acc).is_minor
        assessments.verify(
            s,
            acc,
            minor=minor,
            method=f"realname:{row.provider}",
            actor=row.provider,
            reference=ai,
            at=at,
        )
        out.update(age_source="verified", minor=minor)
    store.record_result(row, status, result.pi, result.detail, at)
    return out


@router.post("/v1/realname/check", responses=error_responses(400, 404, 409, 422, 502, 504))
async def check(body: CheckIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """Submit a real-name check; verified → the account's age source becomes verified."""
    try:
        rid = validate(body.id_number)
    except InvalidIdentityNumber as exc:
        raise identity_number_problem(exc, "id_number") from None
    digest = id_number_digest(service.keys, rid.number)

    def prepare(s: Session, platform: Platform) -> tuple[str, _Access | None]:
        acc = require_account(s, platform, body.account, "account")
        done = store.check_of(s, acc.id)
        if done is not None and done.status == "ok":
            raise Problem(409, "Already verified", "this account passed a real-name check")
        access = _access_for(s, platform, body.provider)
        row = store.begin_check(
            s,
            acc,
            body.provider,
            service.clock(),
            birth_date=rid.birth_date,
            sex=rid.sex,
            id_number_hash=digest,
        )
        return row.ai, access

    ai, access = await service.run_write(key, prepare)
    verifier = _verifier(service, body.provider, access)
    request = VerifyRequest(ai=ai, name=body.name, id_number=rid.number)
    result = await run_in_threadpool(_call, lambda: verifier.verify(request))
    return await service.run_write(
        key, lambda s, p: _apply_result(service, s, p, body.account, ai, result)
    )


@router.post("/v1/realname/{account}/refresh", responses=error_responses(404, 409, 422, 502, 504))
async def refresh(account: str, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """Ask the verifier again about a pending check (the system's query endpoint)."""

    def prepare(s: Session, platform: Platform) -> tuple[str, str, _Access | None]:
        acc = require_account(s, platform, account, "account")
        row = store.check_of(s, acc.id)
        if row is None:
            raise Problem(404, "No check", f"account {account!r} was never checked")
        if row.status != "pending":
            raise Problem(409, "Not pending", f"the check is {row.status}")
        return row.ai, row.provider, _access_for(s, platform, row.provider)

    ai, provider, access = await service.run(key, prepare)
    verifier = _verifier(service, provider, access)
    try:
        result = await run_in_threadpool(_call, lambda: verifier.status(ai))
    except NotImplementedError:
        raise Problem(409, "Cannot query", f"verifier {provider!r} has no status query") from None
    return await service.run_write(
        key, lambda s, p: _apply_result(service, s, p, account, ai, result)
    )


@router.get("/v1/realname/{account}", responses=error_responses(404, 422))
async def get_check(account: str, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """The account's latest real-name check (status only; the pi is never returned)."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        acc = require_account(s, platform, account, "account")
        row = store.check_of(s, acc.id)
        if row is None:
            raise Problem(404, "No check", f"account {account!r} was never checked")
        return {
            "account": acc.external_id,
            "status": row.status,
            "provider": row.provider,
            "checked_at": row.checked_at.isoformat(),
            "detail": row.detail,
            "age_source": acc.age_source,
        }

    return await service.run(key, work)


# ------------------------------------------------------------------------------ sessions


def _day_start(service: Service, platform: Platform, at: datetime) -> datetime:
    local = at.astimezone(service.policy_for(platform).tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@router.post("/v1/game/sessions", responses=error_responses(400, 404, 409, 422))
async def start_session(body: SessionIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """Start a game session if the playtime decision allows it; queue its login report."""
    at: datetime = body.at or service.clock()

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        acc = require_account(s, platform, body.account, "account")
        since = _day_start(service, platform, at)
        try:
            day_kind(since.date())  # a day the holiday calendar does not cover is refused first
        except CalendarRangeError as exc:
            raise field_problem(422, "at", str(exc)) from None
        played = store.minutes_played(s, acc.id, since, at)
        try:
            d = playtime_decision(service.profile(platform, acc, at), "game", at, played)
        except ValueError as exc:  # e.g. `at` before the player's birth date
            raise problem_for(exc, "at") from None
        if random.random() < platform.decision_sample_rate:
            repo.log_decision(
                s,
                platform,
                kind="playtime",
                action="game_session",
                outcome=d.outcome.value,
                rule_ids=d.rule_ids,
                always=True,
                subject_account_id=acc.id,
            )
        out: dict[str, Any] = {"decision": d.to_dict(), "minutes_played_today": played}
        if d.outcome.value == "deny":
            out["session"] = None
            return out
        pi = store.verified_pi(s, acc.id)
        if pi is None and body.device is None:
            raise field_problem(422, "device", "is required for a guest (not verified) session")
        gs = store.start_session(s, acc, at, pi=pi, di=None if pi else body.device)
        out["session"] = {
            "id": gs.si,
            "started_at": gs.started_at.isoformat(),
            "reported_as": "verified" if pi else "guest",
        }
        return out

    return await service.run_write(key, work)


@router.post("/v1/game/sessions/{session_id}/end", responses=error_responses(400, 404, 422))
async def end_session(
    session_id: str, body: EndIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """End a game session and queue its logout report (idempotent)."""
    at: datetime = body.at or service.clock()

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        gs = store.session_by_si(s, platform.id, session_id)
        if gs is None:
            raise field_problem(404, "session_id", f"no game session {session_id!r}")
        pi = store.verified_pi(s, gs.account_id) if gs.device is None else None
        gs, ended_now = store.end_session(s, gs, at, pi=pi)
        assert gs.ended_at is not None
        minutes = int((gs.ended_at - gs.started_at).total_seconds() // 60)
        return {
            "id": gs.si,
            "ended_at": gs.ended_at.isoformat(),
            "minutes": minutes,
            "already_ended": not ended_now,
        }

    return await service.run_write(key, work)


@router.post("/v1/realname/flush", responses=error_responses(409, 422))
async def flush(
    key: ApiKeyDep, service: ServiceDep, max_batches: Annotated[int, Query(ge=1, le=1000)] = 10
) -> dict[str, Any]:
    """Upload waiting login/logout reports now (at most `max_batches` batches of 128)."""

    access = await service.run(key, _access)
    report = await run_in_threadpool(
        store.drain,
        service.write_sessions,
        access.platform_id,
        client_for(service, access),
        max_batches=max_batches,
    )
    return report.to_dict()


# ------------------------------------------------------------------------------ drainer


class BackgroundDrainer:
    """Uploads every configured platform's outbox in a daemon thread until stopped."""

    def __init__(self, service: Service, idle_seconds: float = 1.0) -> None:
        self.service = service
        self.idle_seconds = idle_seconds
        self.holder = f"api-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qinglang-realname", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current batch."""
        self._stop.set()
        self._thread.join(timeout)

    def pass_once(self) -> int:
        """One pass over the platforms with waiting reports; the number of reports sent."""
        with self.service.tx() as s:
            configs = [_Access.of(r) for r in s.scalars(select(RealNameConfig)).all()]
        sent = 0
        for access in configs:
            if self._stop.is_set():
                break
            report = store.drain(
                self.service.write_sessions,
                access.platform_id,
                client_for(self.service, access),
                holder=self.holder,
                max_batches=10,
            )
            if report.error:
                log.warning(
                    "real-name upload for platform %s: %s", access.platform_id, report.error
                )
            sent += report.sent
        return sent

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.pass_once()
            except Exception:
                log.exception("real-name upload pass failed; retrying")
                sent = 0
            if sent == 0:
                self._stop.wait(self.idle_seconds)
