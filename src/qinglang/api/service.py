"""The shell between HTTP and the core: sessions, platform policy, profiles from stored accounts.

Holds no rules of its own: it loads rows, builds core values (profiles, relations, flags) and
calls `qinglang.guard`.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator
from sqlalchemy import Engine
from sqlalchemy.orm import Session, object_session
from starlette.concurrency import run_in_threadpool

from qinglang.age.suspicion import effective_age
from qinglang.api.problems import Problem, field_problem, unauthorised
from qinglang.guard import (
    Decision,
    ExposureIndex,
    ItemFlags,
    Profile,
    Relation,
    SettingsError,
    build_profile,
)
from qinglang.guard.exposure import audience_level
from qinglang.policy import Policy, PolicyError, load_policy
from qinglang.store import make_engine, repo, session_factory, transaction, upgrade, writer
from qinglang.store.assessments import suspected_age
from qinglang.store.consents import consent_view_of
from qinglang.store.crypto import KeyRing, keyring_of
from qinglang.store.models import Account, ContentFlag, Platform

PROFILE_CACHE_SIZE = 50_000
API_KEY_CACHE_SIZE = 10_000
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """How the service is configured (from the CLI or the environment)."""

    db_url: str = "sqlite:///./qinglang.db"
    admin_token: str | None = None
    key_cache_seconds: float = 5.0
    """How long a worker trusts its last look-up of an API key: a key revoked through another
    worker stops working there within this time (0: look up on every request)."""

    @classmethod
    def from_env(cls) -> Settings:
        """Read QINGLANG_DB_URL, QINGLANG_ADMIN_TOKEN and QINGLANG_KEY_CACHE_SECONDS."""
        return cls(
            db_url=os.environ.get("QINGLANG_DB_URL", cls.db_url),
            admin_token=os.environ.get("QINGLANG_ADMIN_TOKEN") or None,
            key_cache_seconds=float(os.environ.get("QINGLANG_KEY_CACHE_SECONDS", "5")),
        )


class Service:
    """One per process: engine, session factory, data key, caches of policies and profiles.

    `clock` gives the instant that requests stamp on what they record (consents, guardian
    links, notices, relationships, ledger entries, logged decisions) and decide at when the
    request names no instant: the wall clock, unless a simulation (`qinglang demo`) sets its own.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock: Callable[[], datetime] = now_utc
        self.engine = make_engine(settings.db_url)
        upgrade(self.engine)
        self.sessions = session_factory(self.engine)
        self.write_sessions = session_factory(writer(self.engine))
        keys = keyring_of(self.engine)
        if keys is None:
            raise RuntimeError("no data key: set QINGLANG_DATA_KEY (base64 of 32 bytes)")
        self.keys: KeyRing = keys
        self._policies: dict[tuple[int, str, str | None], Policy] = {}
        self._profiles: OrderedDict[tuple[Any, ...], Profile] = OrderedDict()
        self._api_keys: dict[str, tuple[float, Platform | None]] = {}
        self._inline = _local_database(self.engine)

    def authenticate(self, session: Session, api_key: str) -> Platform:
        """The platform owning this API key (briefly cached per process), or a 401 problem."""
        digest = hashlib.sha256(api_key.encode()).hexdigest()
        now = time.monotonic()
        hit = self._api_keys.get(digest)
        if hit is not None and hit[0] > now:
            platform = hit[1]
        else:
            found = repo.platform_for_api_key(session, api_key)
            # Cache a copy that belongs to no session: the request's transaction may roll back,
            # which would expire a session-bound instance for every later request.
            platform = None if found is None else detached_copy(found)
            if self.settings.key_cache_seconds > 0:
                if len(self._api_keys) >= API_KEY_CACHE_SIZE:
                    self._api_keys.clear()
                self._api_keys[digest] = (now + self.settings.key_cache_seconds, platform)
        if platform is None:
            raise unauthorised("API key is not valid or was revoked")
        return platform

    def forget_api_keys(self) -> None:
        """Drop cached key look-ups (after a key was issued or revoked through this process)."""
        self._api_keys.clear()

    async def run(self, api_key: str, work: Callable[[Session, Platform], T]) -> T:
        """Authenticate and do a request's reads in one transaction.

        With SQLite, or a database on this host, the work runs on the event loop: its calls
        take well under a millisecond, and a thread hop costs more than it saves (GIL hand-offs
        between threads raised p99 latency from 7 ms to 49 ms in bench/bench_http.py). With a
        database on another host it runs in the thread pool, so the loop never waits on the
        network.
        """
        if self._inline:
            return self._run(api_key, work)
        return await run_in_threadpool(self._run, api_key, work)

    def _run(self, api_key: str, work: Callable[[Session, Platform], T], write: bool = False) -> T:
        with self.tx(write) as session:
            return work(session, self.authenticate(session, api_key))

    async def run_write(self, api_key: str, work: Callable[[Session, Platform], T]) -> T:
        """Authenticate and do a request's writes in one transaction, in the thread pool.

        Writes wait for the database's write lock, so they never run on the event loop.
        """
        return await run_in_threadpool(self._run, api_key, work, True)

    @contextmanager
    def tx(self, write: bool = False) -> Iterator[Session]:
        """A transaction: commit on success, roll back on any exception (`write` if it writes)."""
        with transaction(self.write_sessions if write else self.sessions) as session:
            yield session

    def policy_for(self, platform: Platform) -> Policy:
        """The platform's pack tightened by its overlay (cached; a changed overlay is a new key)."""
        key = (platform.id, platform.jurisdiction, platform.policy_overlay)
        policy = self._policies.get(key)
        if policy is None:
            try:
                policy = load_policy(platform.jurisdiction, platform.policy_overlay)
            except PolicyError as exc:
                raise field_problem(
                    409, "policy_overlay", str(exc), "Invalid platform policy"
                ) from None
            self._policies[key] = policy
        return policy

    def profile(
        self,
        platform: Platform,
        account: Account,
        at: datetime | None = None,
        bad_settings: int = 409,
    ) -> Profile:
        """The account's protection profile now, with its consent snapshot (cached per account
        row version, consent version, local day and restriction: a consent change or a
        restriction is seen by the next call)."""
        policy = self.policy_for(platform)
        now = at or self.clock()
        today = now.astimezone(policy.tz).date()
        until = account.restricted_until
        restricted = until is not None and until > now
        key = (
            account.id,
            account.updated_at,
            account.consent_version,
            today,
            id(policy),
            restricted,
        )
        prof = self._profiles.get(key)
        if prof is not None:
            self._profiles.move_to_end(key)
            return prof
        # The account's own session when it has one, else a short read transaction.
        session = object_session(account)
        with nullcontext(session) if session is not None else self.tx() as s:
            consents = consent_view_of(s, account.id, account.consent_version)
            suspected = suspected_age(s, account.id)
        # A suspected minor is treated as a minor (inferred age, never over a higher source).
        birth_date, age_source = effective_age(
            account.birth_date, account.age_source, suspected, today
        )
        try:
            prof = build_profile(
                policy,
                account.external_id,
                birth_date,
                age_source,
                now,
                account.settings or {},
                consents,
                restricted=restricted,
            )
        except SettingsError as exc:
            raise field_problem(bad_settings, f"settings.{exc.setting}", str(exc)) from None
        self._profiles[key] = prof
        if len(self._profiles) > PROFILE_CACHE_SIZE:
            self._profiles.popitem(last=False)
        return prof

    def forget_account(self, account_id: int) -> None:
        """Drop cached profiles of an account (after its row changed)."""
        for key in [k for k in self._profiles if k[0] == account_id]:
            del self._profiles[key]

    def log(
        self, platform: Platform, kind: str, action: str, decision: Decision, **ids: Any
    ) -> None:
        """Write the decision to the sampled log (in its own transaction) if the sample says so."""
        if random.random() >= platform.decision_sample_rate:
            return
        request = ids.pop("request", None)
        if isinstance(request, BaseModel):  # dumped only when the sample keeps the decision
            request = request.model_dump(mode="json")
        ids.setdefault("at", self.clock())
        with self.tx(write=True) as s:
            repo.log_decision(
                s,
                platform,
                kind=kind,
                action=action,
                outcome=decision.outcome.value,
                rule_ids=decision.rule_ids,
                always=True,
                request=request,
                **ids,
            )


def detached_copy(platform: Platform) -> Platform:
    """A transient copy of a platform row's column values (never expires, never lazy-loads)."""
    return Platform(**{c.key: getattr(platform, c.key) for c in Platform.__table__.columns})


def _local_database(engine: Engine) -> bool:
    """SQLite, or a server reached over loopback or a Unix socket."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return True
    host = url.host or str(url.query.get("host", ""))
    return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")


def _unknown_account(field: str, external_id: str) -> Problem:
    return field_problem(
        404, field, f"no account {external_id!r} on this platform", "Unknown account"
    )


def require_account(session: Session, platform: Platform, external_id: str, field: str) -> Account:
    """The platform's account with this external id, or a 404 problem naming the field."""
    account = repo.get_account(session, platform.id, external_id)
    if account is None:
        raise _unknown_account(field, external_id)
    return account


def require_accounts(session: Session, platform: Platform, **by_field: str) -> dict[str, Account]:
    """Several accounts in one query, by request field; a 404 problem names the first unknown."""
    found = repo.get_accounts(session, platform.id, by_field.values())
    for field, external_id in by_field.items():
        if external_id not in found:
            raise _unknown_account(field, external_id)
    return {field: found[external_id] for field, external_id in by_field.items()}


def relation(session: Session, sender: Account, recipient: Account) -> Relation:
    """What links sender to recipient, as the guard needs it."""
    f = repo.relation_between(session, sender.id, recipient.id)
    return Relation(mutual=f.mutual, approved_contact=f.approved_contact_a_to_b, blocked=f.blocked)


def item_flags(
    service: Service,
    platform: Platform,
    flags: list[ContentFlag],
    owner: Account,
    at: datetime | None = None,
) -> ItemFlags | None:
    """Guard flags of one stored item (None when it carries no exposure restriction)."""
    if not flags:
        return None
    minor_pi: int | None = None
    push: int | None = None
    unsuitable: int | None = None
    commercial = False
    minor_age = service.policy_for(platform).require("age.minor_below").value
    for f in flags:
        if f.kind in ("minor_pi", "shows_minor"):
            owner_profile = service.profile(platform, owner, at)
            item_level = None if f.audience is None else audience_level(f.audience)
            level, push_level = ExposureIndex.consented_levels(owner_profile, item_level)
            minor_pi = level if minor_pi is None else min(minor_pi, level)
            if push_level is not None:
                push = push_level if push is None else min(push, push_level)
        elif f.kind == "unsuitable_for_minors":
            unsuitable = f.min_age if f.min_age is not None else int(minor_age)  # type: ignore[arg-type]
        elif f.kind == "commercial":
            commercial = True
    return ItemFlags(owner.external_id, minor_pi, unsuitable, commercial, push)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _date_text(value: Any) -> Any:
    """An RFC 3339 date (2015-04-01) read as a date: never a number read as a timestamp."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return date.fromisoformat(value)


def _datetime_text(value: Any) -> Any:
    """An RFC 3339 date-time read as a datetime: never a bare number read as a timestamp."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise ValueError("must be a date-time as YYYY-MM-DDTHH:MM:SS with Z or an offset")
    return datetime.fromisoformat(value.upper())


def _storable(value: datetime) -> datetime:
    """The instant, if it has a UTC equivalent (datetimes are stored in UTC)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None
    return value


Day = Annotated[date, BeforeValidator(_date_text)]
"""A request's date: YYYY-MM-DD (422 naming it otherwise)."""

Instant = Annotated[AwareDatetime, BeforeValidator(_datetime_text), AfterValidator(_storable)]
"""A request's instant: RFC 3339 with a UTC offset, representable in UTC (422 naming it
otherwise)."""

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
"""A row id in a path: a positive 64-bit integer, as the database stores it."""


def now_utc() -> datetime:
    """The current instant (UTC)."""
    return datetime.now(UTC)


def problem_for(exc: ValueError, field: str) -> Problem:
    """A 422 problem from a core ValueError, naming the field (or the error's own field)."""
    name = getattr(exc, "field", None) or field
    return field_problem(422, name, str(exc))
