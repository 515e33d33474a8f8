"""The shell that feeds the risk engine: tail the stored events, raise alerts, restrict.

One :class:`Consumer` per process; for each platform with unprocessed events it takes the
platform's lease (a ``risk_consumers`` row with an expiry), reads the next events in ``seq``
order after the checkpoint, feeds them to the platform's :class:`RiskEngine`, and in one
transaction writes the alerts (idempotent by alert id), the automatic protective restrictions
of ``restrict`` alerts and the new checkpoint — only if it still holds the lease at the
checkpoint it started from. Several API workers or processes may run consumers: one holds a
platform's lease at a time, and another takes over when it expires.

Engine state lives in memory. A consumer that takes a platform over (or finds that the
checkpoint moved without it) rebuilds the state by replaying the events of the engine's
longest window before the checkpoint; alerts raised during a replay are dropped (they were
written when first raised).

A reviewer's dismissal reaches the engine through the ``review_actions`` table: on each poll
the consumer reads the ``dismiss`` actions recorded since its cursor (the last action id it
applied) and calls ``engine.acknowledge(sender)``, so the sender's alerts re-arm only above
the acknowledged score. A rebuild replays the dismissals in its window in time order with the
events, then continues from the latest action id. Both (:class:`Dismissals` and :func:`replay`)
are shared with the stream workers of ``qinglang stream work --risk``, which keep them to the
senders of their own partitions.

The engine looks accounts up through :class:`StoreDirectory`: ages and minority from the
protection profile's age rules, restrictions from the account row, links from relationships
and guardian links, cached (bounded, with a time to live) and prefetched per batch.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from qinglang.age.suspicion import effective_age, suspected_age_of
from qinglang.guard import build_profile
from qinglang.policy import Policy
from qinglang.review.evidence import build_evidence
from qinglang.risk.events import Event
from qinglang.risk.types import STRANGERS, UNKNOWN, AccountFacts, Alert, Directory, Link
from qinglang.store import events as store_events
from qinglang.store import review as store_review
from qinglang.store.db import transaction
from qinglang.store.models import (
    Account,
    AgeAssessment,
    Guardian,
    GuardianLink,
    Platform,
    Relationship,
)

log = logging.getLogger(__name__)

DEFAULT_LEASE: Final = timedelta(seconds=30)
DEFAULT_BATCH: Final = 2000
DEFAULT_HORIZON: Final = timedelta(days=7)
"""Replay window when the engine does not say how far back its state reaches."""
DISMISSAL_GRACE: Final = timedelta(minutes=10)
"""Dismissals recorded this recently are re-read (an action id may commit after a higher one)."""
CACHE_SIZE: Final = 100_000
CACHE_SECONDS: Final = 30.0
_CHUNK: Final = 500

K = TypeVar("K")
V = TypeVar("V")


class RiskEngineLike(Protocol):
    """What the consumer needs of the engine (qinglang.risk.engine.RiskEngine)."""

    def process_many(self, events: Iterable[Event]) -> list[Alert]:
        """Feed events in order; the alerts they raised."""
        ...

    def process(self, event: Event) -> list[Alert]:
        """Feed one event; the alerts it raised."""
        ...

    def acknowledge(self, sender: str) -> None:
        """A reviewer dismissed the sender's alert: re-arm above the current score only."""
        ...


EngineFactory = Callable[[Policy, Directory], RiskEngineLike]
PolicyFor = Callable[[Platform], Policy]


def default_engine_factory(policy: Policy, directory: Directory) -> RiskEngineLike:
    """The engine of qinglang.risk.engine."""
    from qinglang.risk.engine import RiskEngine

    return RiskEngine(policy, directory)


def replay_horizon(engine: object, policy: Policy) -> timedelta:
    """How far back the engine's state reaches: its `horizon` (a timedelta, or seconds; on the
    engine or its `params`) if it has one, else the longest risk window of the pack, else a
    week."""
    for owner in (engine, getattr(engine, "params", None)):
        horizon = getattr(owner, "horizon", None)
        if isinstance(horizon, timedelta):
            return horizon
        if isinstance(horizon, int | float) and not isinstance(horizon, bool) and horizon > 0:
            return timedelta(seconds=float(horizon))
    scale = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
    longest = 0.0
    for rule in policy.rules.values():
        unit = rule.unit or ""
        if rule.topic.startswith("risk.") and unit in scale:
            value = rule.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                longest = max(longest, float(value) * scale[unit])
    return timedelta(seconds=longest) if longest > 0 else DEFAULT_HORIZON


class _TTLCache(OrderedDict[K, tuple[float, V]]):
    """A bounded least-recently-used map whose entries expire."""

    def __init__(self, size: int, seconds: float, clock: Callable[[], float]) -> None:
        super().__init__()
        self.size = size
        self.seconds = seconds
        self.clock = clock

    def lookup(self, key: K) -> V | None:
        hit = self.get(key)
        if hit is None:
            return None
        if hit[0] < self.clock():
            del self[key]
            return None
        self.move_to_end(key)
        return hit[1]

    def put(self, key: K, value: V) -> None:
        self[key] = (self.clock() + self.seconds, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class StoreDirectory:
    """The engine's Directory over the store: facts from account rows (age through the pack's
    age rules, restriction), links from relationships and guardian links; cached."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        platform_id: int,
        policy: Policy,
        *,
        size: int = CACHE_SIZE,
        seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.platform_id = platform_id
        self.policy = policy
        self.now = now
        self._facts: _TTLCache[str, tuple[AccountFacts, int | None]] = _TTLCache(
            size, seconds, clock
        )
        self._links: _TTLCache[tuple[str, str], Link] = _TTLCache(size, seconds, clock)

    # -- Directory protocol

    def facts(self, account: str) -> AccountFacts:
        """Facts about an account; UNKNOWN for one the platform never registered."""
        hit = self._facts.lookup(account)
        if hit is None:
            self._load_facts([account])
            hit = self._facts.lookup(account)
        return UNKNOWN if hit is None else hit[0]

    def link(self, a: str, b: str) -> Link:
        """How a and b are related (symmetric)."""
        key = (a, b) if a <= b else (b, a)
        hit = self._links.lookup(key)
        if hit is None:
            self._load_links([key])
            hit = self._links.lookup(key)
        return STRANGERS if hit is None else hit

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Expire the caches on this clock (seconds), e.g. a simulation's time."""
        self._facts.clock = clock
        self._links.clock = clock

    # -- batch loading

    def prefetch(self, events: Sequence[Event]) -> None:
        """Load, in a few queries, what the engine will ask about these events."""
        accounts: list[str] = []
        pairs: list[tuple[str, str]] = []
        for e in events:
            accounts.append(e.actor)
            other = e.counterpart
            if other is not None:
                accounts.append(other)
                pairs.append((e.actor, other) if e.actor <= other else (other, e.actor))
        missing = [a for a in dict.fromkeys(accounts) if self._facts.lookup(a) is None]
        if missing:
            self._load_facts(missing)
        gaps = [p for p in dict.fromkeys(pairs) if self._links.lookup(p) is None]
        if gaps:
            self._load_links(gaps)

    def forget(self, account: str) -> None:
        """Drop what is cached about an account (after it was restricted, say)."""
        self._facts.pop(account, None)

    def _facts_of(self, row: Account, now: datetime, suspected: int | None) -> AccountFacts:
        # A suspected minor counts as a minor, as in the decisions (never over a higher source).
        today = now.astimezone(self.policy.tz).date()
        birth, source = effective_age(row.birth_date, row.age_source, suspected, today)
        profile = build_profile(self.policy, row.external_id, birth, source, now)
        until = row.restricted_until
        return AccountFacts(
            age=profile.age,
            is_minor=profile.is_minor,
            restricted=until is not None and until > now,
        )

    def _load_facts(self, accounts: Sequence[str]) -> None:
        now = self.now()
        found: dict[str, tuple[AccountFacts, int | None]] = {}
        with transaction(self.sessions) as s:
            for chunk in _chunks(list(accounts)):
                rows = s.execute(
                    select(Account, AgeAssessment.state, AgeAssessment.suspected_child)
                    .outerjoin(AgeAssessment, AgeAssessment.account_id == Account.id)
                    .where(Account.platform_id == self.platform_id, Account.external_id.in_(chunk))
                )
                for row, state, suspected_child in rows:
                    suspected = suspected_age_of(state, suspected_child)
                    found[row.external_id] = (self._facts_of(row, now, suspected), row.id)
        for a in accounts:
            self._facts.put(a, found.get(a, (UNKNOWN, None)))

    def _pk(self, account: str) -> int | None:
        hit = self._facts.lookup(account)
        if hit is None:
            self._load_facts([account])
            hit = self._facts.lookup(account)
        return None if hit is None else hit[1]

    def _load_links(self, pairs: Sequence[tuple[str, str]]) -> None:
        names = list(dict.fromkeys(x for p in pairs for x in p))
        pks = {n: self._pk(n) for n in names}
        by_pk = {pk: n for n, pk in pks.items() if pk is not None}
        known = list(by_pk)
        follows: set[tuple[str, str]] = set()
        approved: set[tuple[str, str]] = set()
        guardian: set[tuple[str, str]] = set()
        if known:
            with transaction(self.sessions) as s:
                for chunk in _chunks(known):
                    rows = s.execute(
                        select(
                            Relationship.src_account_id,
                            Relationship.dst_account_id,
                            Relationship.kind,
                        ).where(
                            Relationship.src_account_id.in_(chunk),
                            Relationship.dst_account_id.in_(known),
                            Relationship.kind.in_(("follow", "approved_contact")),
                        )
                    )
                    for src, dst, kind in rows:
                        pair = (by_pk[src], by_pk[dst])
                        (follows if kind == "follow" else approved).add(pair)
                for chunk in _chunks(names):
                    rows2 = s.execute(
                        select(Guardian.external_id, Account.external_id)
                        .join(GuardianLink, GuardianLink.guardian_id == Guardian.id)
                        .join(Account, Account.id == GuardianLink.account_id)
                        .where(
                            Guardian.platform_id == self.platform_id,
                            GuardianLink.revoked_at.is_(None),
                            Guardian.external_id.in_(chunk),
                            Account.external_id.in_(names),
                        )
                    )
                    for g, child in rows2:
                        guardian.add((g, child))
        for a, b in pairs:
            self._links.put(
                (a, b),
                Link(
                    mutual=(a, b) in follows and (b, a) in follows,
                    approved=(a, b) in approved or (b, a) in approved,
                    guardian=(a, b) in guardian or (b, a) in guardian,
                ),
            )


# ---------------------------------------------------------------- reviewers' dismissals


@dataclass(slots=True)
class Dismissals:
    """The reviewers' dismissals an engine was given: a cursor and the recent ones applied."""

    #: Id of the last review action whose dismissal was applied to the engine.
    cursor: int = 0
    #: Recent dismissals applied (action id → time), so a re-read applies each once.
    applied: dict[int, datetime] = field(default_factory=dict)

    def apply_new(
        self,
        sessions: sessionmaker[Session],
        platform_id: int,
        engine: RiskEngineLike,
        now: datetime,
        owns: Callable[[str], bool] | None = None,
    ) -> int:
        """Acknowledge in the engine the senders of the dismissals since the cursor, each once.

        `owns`, if given, keeps the senders to acknowledge (the others only move the cursor);
        returns how many were acknowledged."""
        since = now - DISMISSAL_GRACE
        with transaction(sessions) as s:
            found = store_review.dismissals_after(s, platform_id, self.cursor, since=since)
        done = 0
        for action_id, sender, at in found:
            if action_id in self.applied:
                continue
            if owns is None or owns(sender):
                engine.acknowledge(sender)
                done += 1
            self.applied[action_id] = at
            self.cursor = max(self.cursor, action_id)
        self.applied = {i: at for i, at in self.applied.items() if at >= since}
        return done


def replay(
    sessions: sessionmaker[Session],
    platform_id: int,
    engine: RiskEngineLike,
    directory: StoreDirectory,
    dismissals: Dismissals,
    upto: int,
    since: datetime,
    now: datetime,
    *,
    batch_size: int = DEFAULT_BATCH,
    owns: Callable[[str], bool] | None = None,
) -> int:
    """Rebuild a fresh engine's state from the stored events and dismissals of a window.

    Feeds the engine the events up to seq `upto` at or after `since` and acknowledges the
    dismissals up to the cursor where they fell between them in time; `owns`, if given, keeps
    the senders (events and dismissals) to replay. Alerts raised during the replay are dropped
    (they were written when first raised); the cursor's `applied` is reset to the dismissals
    read, so none is applied twice afterwards. Returns the number of events replayed."""
    replayed = 0
    buffer: list[Event] = []

    def flush() -> None:
        nonlocal buffer, replayed
        if buffer:
            directory.prefetch(buffer)
            engine.process_many(buffer)  # alerts were written when first raised
            replayed += len(buffer)
            buffer = []

    with transaction(sessions) as s:
        # Dismissals in the window, applied where they fell between the replayed events.
        earlier = store_review.dismissals_after(
            s,
            platform_id,
            0,
            dismissals.cursor,
            not_before=min(since, now - DISMISSAL_GRACE),
        )
        dismissals.applied = {i: at for i, _, at in earlier}
        dismissed = sorted(
            (at, sender)
            for _, sender, at in earlier
            if at >= since and (owns is None or owns(sender))
        )
        for event in store_events.events_for_replay(s, platform_id, upto, since):
            if owns is not None and not owns(event.actor):
                continue
            while dismissed and dismissed[0][0] < event.at:
                flush()
                engine.acknowledge(dismissed.pop(0)[1])
            buffer.append(event)
            if len(buffer) >= batch_size:
                flush()
        flush()
    for _, sender in dismissed:
        engine.acknowledge(sender)
    return replayed


# ---------------------------------------------------------------- the consumer


class LeaseLost(Exception):
    """Another consumer took the platform over while this one was processing a batch."""


@dataclass(slots=True)
class _PlatformState:
    policy: Policy
    engine: RiskEngineLike
    directory: StoreDirectory
    position: int
    dismissals: Dismissals = field(default_factory=Dismissals)


@dataclass(slots=True)
class ConsumerReport:
    """What one pass of :meth:`Consumer.run_once` did."""

    events: int = 0
    alerts: int = 0
    restrictions: int = 0
    replayed: int = 0
    platforms: list[int] = field(default_factory=list)
    held_elsewhere: list[int] = field(default_factory=list)
    failed_platforms: list[int] = field(default_factory=list)
    failed_events: int = 0


class Consumer:
    """Feeds stored events to per-platform engines under a lease; see the module doc."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        write_sessions: sessionmaker[Session],
        policy_for: PolicyFor,
        *,
        engine_factory: EngineFactory = default_engine_factory,
        holder: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        batch_size: int = DEFAULT_BATCH,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.write_sessions = write_sessions
        self.policy_for = policy_for
        self.engine_factory = engine_factory
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.batch_size = batch_size
        self.clock = clock
        self._states: dict[int, _PlatformState] = {}
        self._held: set[int] = set()

    # -- public

    def run_once(self, max_events: int | None = None) -> ConsumerReport:
        """Process what is pending on every platform whose lease this consumer can take, until
        caught up (or `max_events` per platform); returns what was done."""
        report = ConsumerReport()
        with transaction(self.sessions) as s:
            pending = store_events.pending_platforms(s)
            free = set(store_events.pending_platforms(s, self.holder, self.clock()))
        for platform_id in [p for p in self._states if p not in pending]:
            try:
                self._apply_dismissals(platform_id, self._states[platform_id])
            except Exception:
                log.exception("risk consumer could not read dismissals of platform %s", platform_id)
                self._forget(platform_id)
        for platform_id in pending:
            if platform_id not in free:  # another consumer's live lease: no write to find out
                self._forget(platform_id)
                report.held_elsewhere.append(platform_id)
                continue
            try:
                self._drain(platform_id, report, max_events)
            except LeaseLost:
                self._forget(platform_id)
                report.held_elsewhere.append(platform_id)
            except Exception:
                # One platform's failure (a broken overlay, a database error) must not stop the
                # others: log it, drop its state (rebuilt next time) and go on.
                log.exception("risk consumer failed on platform %s", platform_id)
                self._forget(platform_id)
                report.failed_platforms.append(platform_id)
        return report

    def _forget(self, platform_id: int) -> None:
        self._states.pop(platform_id, None)
        self._held.discard(platform_id)

    def release(self) -> None:
        """Give up every lease this consumer holds (clean shutdown)."""
        for platform_id in sorted(self._held):
            with transaction(self.write_sessions) as s:
                store_events.release(s, platform_id, self.holder)
        self._held.clear()
        self._states.clear()

    # -- one platform

    def _platform(self, platform_id: int) -> Platform | None:
        with transaction(self.sessions) as s:
            p = s.get(Platform, platform_id)
            if p is not None:
                s.expunge(p)
            return p

    def _drain(self, platform_id: int, report: ConsumerReport, max_events: int | None) -> None:
        platform = self._platform(platform_id)
        if platform is None:
            return
        policy = self.policy_for(platform)
        done = 0
        while max_events is None or done < max_events:
            now = self.clock()
            with transaction(self.write_sessions) as s:
                state = store_events.acquire_lease(s, platform_id, self.holder, now, self.lease)
            if state is None:
                self._forget(platform_id)
                report.held_elsewhere.append(platform_id)
                return
            self._held.add(platform_id)
            local = self._states.get(platform_id)
            if local is None or local.position != state.checkpoint or local.policy is not policy:
                local = self._rebuild(platform_id, policy, state, report)
            self._apply_dismissals(platform_id, local)
            limit = self.batch_size
            if max_events is not None:
                limit = min(limit, max_events - done)
            with transaction(self.sessions) as s:
                batch = store_events.events_after(s, platform_id, state.checkpoint, limit)
            if not batch:
                return
            if platform_id not in report.platforms:
                report.platforms.append(platform_id)
            events = [e for _, e in batch]
            alerts = self._feed(local, platform_id, state, events, report)
            last_seq = batch[-1][0]
            watermark = max([e.at for e in events] + [state.watermark_at or events[0].at])
            self._commit(platform_id, policy, local, state, last_seq, watermark, events, alerts)
            report.events += len(events)
            report.alerts += len(alerts)
            report.restrictions += sum(1 for a in alerts if a.level == "restrict")
            done += len(events)

    def _apply_dismissals(self, platform_id: int, local: _PlatformState) -> None:
        """Acknowledge, in the engine, the senders of alerts dismissed since the cursor."""
        local.dismissals.apply_new(self.sessions, platform_id, local.engine, self.clock())

    def _feed(
        self,
        local: _PlatformState,
        platform_id: int,
        state: store_events.ConsumerState,
        events: list[Event],
        report: ConsumerReport,
    ) -> list[Alert]:
        local.directory.prefetch(events)
        try:
            return list(local.engine.process_many(events))
        except Exception:
            log.exception(
                "risk engine failed on a batch of platform %s; retrying one by one", platform_id
            )
        # The engine may have taken part of the batch: rebuild it, then skip what fails.
        rebuilt = self._rebuild(platform_id, local.policy, state, report)
        local.engine, local.directory = rebuilt.engine, rebuilt.directory
        self._states[platform_id] = local
        alerts: list[Alert] = []
        for e in events:
            try:
                alerts.extend(local.engine.process(e))
            except Exception:
                report.failed_events += 1
                log.exception(
                    "risk engine failed on event %r of platform %s; skipped", e.id, platform_id
                )
        return alerts

    def _rebuild(
        self,
        platform_id: int,
        policy: Policy,
        state: store_events.ConsumerState,
        report: ConsumerReport,
    ) -> _PlatformState:
        directory = StoreDirectory(self.sessions, platform_id, policy, now=self.clock)
        engine = self.engine_factory(policy, directory)
        local = _PlatformState(policy, engine, directory, state.checkpoint)
        self._states[platform_id] = local
        with transaction(self.sessions) as s:
            local.dismissals.cursor = store_review.last_action_id(s, platform_id)
        if state.checkpoint == 0 or state.watermark_at is None:
            return local
        since = state.watermark_at - replay_horizon(engine, policy)
        report.replayed += replay(
            self.sessions,
            platform_id,
            engine,
            directory,
            local.dismissals,
            state.checkpoint,
            since,
            self.clock(),
            batch_size=self.batch_size,
        )
        return local

    def _commit(
        self,
        platform_id: int,
        policy: Policy,
        local: _PlatformState,
        state: store_events.ConsumerState,
        last_seq: int,
        watermark: datetime,
        events: list[Event],
        alerts: list[Alert],
    ) -> None:
        now = self.clock()
        try:
            with transaction(self.write_sessions) as s:
                moved = store_events.advance(
                    s,
                    platform_id,
                    self.holder,
                    state.checkpoint,
                    last_seq,
                    watermark,
                    len(events),
                    now,
                    self.lease,
                )
                if not moved:
                    raise LeaseLost(platform_id)
                if alerts:
                    self._write_alerts(s, platform_id, policy, local, events, alerts, now)
        except Exception:
            self._states.pop(platform_id, None)
            raise
        local.position = last_seq

    def _write_alerts(
        self,
        s: Session,
        platform_id: int,
        policy: Policy,
        local: _PlatformState,
        events: list[Event],
        alerts: list[Alert],
        now: datetime,
    ) -> None:
        write_alerts(s, platform_id, policy, local.directory, events, alerts, now)


def write_alerts(
    s: Session,
    platform_id: int,
    policy: Policy,
    directory: StoreDirectory,
    events: Sequence[Event],
    alerts: Sequence[Alert],
    now: datetime,
) -> list[str]:
    """Queue engine alerts with their evidence in the caller's transaction (idempotent by alert
    id) and apply the automatic protective restriction of each new ``restrict`` alert; the ids
    of the alerts newly queued (an alert queued before is skipped, restriction included)."""
    in_batch = {e.id: e for e in events}
    wanted: list[str] = []
    for a in alerts:
        wanted.extend(a.event_ids)
        for sig in a.signals:
            wanted.extend(sig.event_ids)
    missing = [i for i in dict.fromkeys(wanted) if i not in in_batch]
    known = dict(in_batch)
    if missing:
        known.update(store_events.stored_events(s, platform_id, missing))
    queued: list[str] = []
    for alert in alerts:
        facts = {a: directory.facts(a) for a in (alert.sender, *alert.minors)}
        evidence = build_evidence(alert, known, facts)
        row = store_review.queue_alert(s, platform_id, alert, evidence, policy, now)
        if row is not None:
            queued.append(alert.id)
        if row is not None and row.level == "restrict":
            store_review.auto_restrict(s, row, policy, now)
            directory.forget(alert.sender)
    return queued


class BackgroundConsumer:
    """Runs a consumer in a daemon thread until stopped (the API's lifespan owns one)."""

    def __init__(self, consumer: Consumer, idle_seconds: float = 0.5) -> None:
        self.consumer = consumer
        self.idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="qinglang-risk-consumer", daemon=True
        )

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current batch and release the leases."""
        self._stop.set()
        self._thread.join(timeout)
        try:
            self.consumer.release()
        except Exception:
            log.exception("could not release the risk consumer's leases")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.consumer.run_once(max_events=self.consumer.batch_size * 5)
            except Exception:
                log.exception("risk consumer pass failed; retrying")
                report = ConsumerReport()
            if report.events == 0:
                self._stop.wait(self.idle_seconds)


def enabled_from_env() -> bool:
    """Whether the API runs a background consumer (QINGLANG_CONSUMER=off turns it off)."""
    value = os.environ.get("QINGLANG_CONSUMER", "on").strip().lower()
    return value not in ("0", "off", "false", "no")
