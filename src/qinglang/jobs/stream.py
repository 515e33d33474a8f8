"""Durable event intake from NATS JetStream, partitioned by sender, for horizontally scaled workers.

Subjects and partitions
    A platform's events are published to ``<prefix>.<platform slug>.p<k>`` (prefix
    ``qinglang.events`` by default), where ``k = crc32(actor) mod P`` (:func:`partition_of`): a
    stable hash, the same in every process and release (never Python's randomised ``hash``). P
    (default 8) is fixed for the life of a stream: changing it moves senders between
    partitions. Every event of one sender therefore lands in one partition, and
    :func:`partitions_for` hands each partition to exactly one of N workers (round robin), so
    each sender's events are handled by one worker. All workers of a platform must be started
    with the same N and P; two workers bound to one partition would share its messages.

The stream
    One stream (``QINGLANG_EVENTS``) captures ``<prefix>.>`` with file storage and
    **work-queue retention**: a message is deleted once acknowledged. After the acknowledgement
    the database is the system of record (``stored_events``, numbered per platform), so keeping
    acknowledged messages (limits retention) would only duplicate it; with work-queue retention
    the stream holds exactly the events not yet safely stored, which is also what an operator
    wants to watch. (Work-queue streams refuse overlapping consumers: one durable pull
    consumer per partition, with disjoint filter subjects, is what they are made for.) The
    stream de-duplicates publications within ``duplicate_window`` by the ``Nats-Msg-Id``
    header, which :func:`publish_events` sets to ``<slug>:<event id>``: event ids are unique per
    platform only, and the window is per stream, so the slug is part of the id.

A worker (:class:`StreamWorker`)
    For each of its partitions it binds the durable pull consumer ``qinglang-<slug>-p<k>``
    (explicit acknowledgement, ``ack_wait``, ``max_deliver``), fetches batches, validates the
    events (:func:`qinglang.store.events.check_batch`) and stores the batch in **one database
    transaction** with :func:`qinglang.store.events.store_batch`, which stores each
    (platform, event id) once and reports repeats as duplicates. Only **after the commit** are
    the messages acknowledged. A worker that dies between the commit and the acknowledgement
    (or whose acknowledgement is lost) gets the batch again after ``ack_wait``; the store finds
    the ids already there and the redelivery is harmless — at-least-once delivery plus
    idempotent storage gives exactly-once storage. Messages that can never be stored (not
    JSON, an invalid event, an id already stored with different content, an event published to
    the wrong partition) are terminated (``term``) and counted, never redelivered. A database
    error naks the batch with a delay (redelivered later); ``max_deliver`` defaults to
    unlimited because the only permanent failures are already terminated, and a limit would
    turn a long database outage into lost events.

The risk engine
    By default the stream worker's job is durable intake, and the engine is fed by
    :class:`qinglang.risk.consumer.Consumer` (``qinglang events consume`` or the API's
    background consumer), which reads the stored events in ``seq`` order under a per-platform
    database lease; the engine state of a platform then lives with the lease holder.

    With ``risk=True`` (``qinglang stream work --risk``) each worker runs its own
    :class:`qinglang.risk.engine.RiskEngine` (over the same
    :class:`qinglang.risk.consumer.StoreDirectory` as the Consumer) for its own partitions, so
    a sender's engine state lives on the worker that owns the sender's partition. A batch is
    stored, its newly stored events (not the duplicates) are fed to the engine, and the
    engine's alerts and the automatic restrictions of ``restrict`` alerts are written with
    :func:`qinglang.risk.consumer.write_alerts` (the Consumer's own writer: idempotent by alert
    id, the restriction only with a newly queued alert), all in ONE transaction committed
    before the acknowledgement: a crash before the commit leaves neither the events nor their
    alerts, and the redelivered batch is stored and judged again. A failure naks the batch and
    drops the engine state (it may have seen events that were not committed), rebuilt before
    the next batch. On start, and after such a drop, the state is rebuilt by replaying the
    stored events within the engine's horizon (:func:`qinglang.risk.consumer.replay_horizon`,
    counted back from the latest stored event of the platform) whose actor hashes to the
    worker's partitions; alerts raised during the replay are dropped, as in the Consumer's replay
    (they were written when first raised).

    Reviewers' dismissals reach the worker's engine as they reach the Consumer's, through the
    ``review_actions`` table and the Consumer's own code
    (:class:`qinglang.risk.consumer.Dismissals`, :func:`qinglang.risk.consumer.replay`), kept
    to the senders of the worker's partitions: before judging each batch the worker reads the
    ``dismiss`` actions recorded since its cursor (the last action id it applied; recent ones
    are re-read, each applied once) and acknowledges their senders, so a dismissed sender's
    alerts re-arm only above the dismissed score; the rebuild replays the dismissals within the
    horizon in time order with the events, then continues from the latest action id. A worker
    restarted after a dismissal therefore judges the sender's further activity as it would have
    without the restart.

    **With --risk the platform's DB-lease consumer must be off**, or every event is judged
    twice (two engines, and alerts from both). Today it is switched off per process, not per
    platform: the API runs its background consumer in its lifespan
    (``qinglang.api.routers.events``) unless ``QINGLANG_CONSUMER=off`` (or ``0``/``false``/
    ``no``; :func:`qinglang.risk.consumer.enabled_from_env`), so every API process must run
    with ``QINGLANG_CONSUMER=off``, and ``qinglang events consume`` must not be run. Since that
    switch covers all platforms, a deployment mixing --risk platforms with lease-consumer
    platforms needs the consumer run elsewhere for the latter.

    Limits of the --risk mode: the replay reads every stored event of the platform within the
    horizon and keeps the worker's partitions in Python (crc32 is not filtered in SQL); likewise
    every worker reads all of the platform's dismissals and keeps those of its own senders.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

    from qinglang.api.service import Service
    from qinglang.risk.consumer import Dismissals, RiskEngineLike, StoreDirectory

log = logging.getLogger(__name__)

DEFAULT_PREFIX: Final = "qinglang.events"
DEFAULT_STREAM: Final = "QINGLANG_EVENTS"
DEFAULT_PARTITIONS: Final = 8
DEFAULT_NATS: Final = "nats://127.0.0.1:4222"
DEFAULT_BATCH: Final = 500
DEFAULT_ACK_WAIT: Final = 30.0
DEFAULT_MAX_DELIVER: Final = -1
"""Unlimited: permanent failures are terminated, so only transient ones are redelivered."""
DEFAULT_DUPLICATE_WINDOW: Final = 120.0
NAK_DELAY: Final = 2.0

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$")
_STREAM = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


# ---------------------------------------------------------------- naming and partitioning


def check_slug(slug: str) -> str:
    """The slug, if it can be one token of a NATS subject; ValueError otherwise."""
    if not _TOKEN.match(slug):
        raise ValueError(f"platform slug {slug!r} must be 1 to 64 letters, digits, '-' or '_'")
    return slug


def check_prefix(prefix: str) -> str:
    """The subject prefix, if it is a plain dotted NATS subject; ValueError otherwise."""
    if not _PREFIX.match(prefix):
        raise ValueError(f"subject prefix {prefix!r} must be dotted tokens without wildcards")
    return prefix


def check_stream(name: str) -> str:
    """The stream name, if JetStream accepts it; ValueError otherwise."""
    if not _STREAM.match(name):
        raise ValueError(f"stream name {name!r} must be letters, digits, '-' or '_'")
    return name


def partition_of(actor: str, partitions: int) -> int:
    """The partition of a sender: crc32 of its UTF-8 id modulo `partitions` (stable everywhere)."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    return zlib.crc32(actor.encode("utf-8", "surrogatepass")) % partitions


def partitions_for(worker_index: int, workers: int, partitions: int) -> list[int]:
    """The partitions worker `worker_index` of `workers` owns: every `workers`-th one, round
    robin, so each partition has exactly one owner."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    if not 1 <= workers <= partitions:
        raise ValueError(f"workers must be between 1 and the number of partitions ({partitions})")
    if not 0 <= worker_index < workers:
        raise ValueError(f"worker index must be between 0 and {workers - 1}")
    return list(range(worker_index, partitions, workers))


def subject_for(slug: str, partition: int, prefix: str = DEFAULT_PREFIX) -> str:
    """The subject of one partition of a platform: ``<prefix>.<slug>.p<k>``."""
    return f"{check_prefix(prefix)}.{check_slug(slug)}.p{partition}"


def consumer_name(slug: str, partition: int) -> str:
    """The durable consumer of one partition of a platform."""
    return f"qinglang-{check_slug(slug)}-p{partition}"


def message_id(slug: str, event_id: str) -> str:
    """The ``Nats-Msg-Id`` of an event: the stream's de-duplication key."""
    return f"{slug}:{event_id}"


# ---------------------------------------------------------------- connecting


async def _quiet(exc: Exception) -> None:
    log.debug("nats: %s", exc)


async def connect(url: str = DEFAULT_NATS, *, timeout: float = 5.0, name: str = "qinglang") -> Any:
    """A NATS connection that reconnects forever once made; ConnectionError (one line) if the
    server cannot be reached within `timeout` seconds (nats-py alone would keep retrying)."""
    import nats

    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                name=name,
                connect_timeout=min(2.0, timeout),
                max_reconnect_attempts=-1,
                error_cb=_quiet,
            ),
            timeout,
        )
    except (TimeoutError, OSError) as exc:
        raise ConnectionError(f"cannot reach NATS at {url} within {timeout:g} s") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("nats"):
            raise ConnectionError(f"cannot connect to NATS at {url}: {exc}") from exc
        raise


# ---------------------------------------------------------------- stream and publishing


async def ensure_stream(
    js: JetStreamContext,
    *,
    name: str = DEFAULT_STREAM,
    prefix: str = DEFAULT_PREFIX,
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
) -> None:
    """Create the events stream (file storage, work-queue retention) unless it exists."""
    from nats.js.api import RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    subjects = [f"{check_prefix(prefix)}.>"]
    try:
        info = await js.stream_info(check_stream(name))
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=name,
                subjects=subjects,
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                duplicate_window=duplicate_window,
            )
        )
        return
    if info.config.retention != RetentionPolicy.WORK_QUEUE:
        raise ValueError(f"stream {name} exists without work-queue retention")
    missing = [s for s in subjects if s not in (info.config.subjects or [])]
    if missing:
        raise ValueError(f"stream {name} exists without subjects {', '.join(missing)}")


@dataclass(slots=True)
class PublishReport:
    """What :func:`publish_events` did."""

    published: int = 0
    duplicates: int = 0
    """Publications the stream recognised as repeats (same message id within its window)."""
    by_partition: dict[int, int] = field(default_factory=dict)


def route(event: Mapping[str, Any], partitions: int) -> tuple[str, int]:
    """(event id, partition) of a raw event; ValueError without a string id and actor."""
    event_id, actor = event.get("id"), event.get("actor")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("id: a non-empty string is required to publish")
    if not isinstance(actor, str) or not actor:
        raise ValueError("actor: a non-empty string is required to publish")
    return event_id, partition_of(actor, partitions)


async def publish_events(
    js: JetStreamContext,
    slug: str,
    events: Iterable[Mapping[str, Any]],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    prefix: str = DEFAULT_PREFIX,
    stream: str | None = None,
    window: int = 256,
) -> PublishReport:
    """Publish raw events (JSON objects with at least a string id and actor) to their partition
    subjects, each with ``Nats-Msg-Id``; waits for the stream's acknowledgement of every one
    (up to `window` in flight). Content is validated by the worker, not here."""
    check_slug(slug)
    report = PublishReport()
    pending: list[asyncio.Task[Any]] = []

    async def settle() -> None:
        for ack in await asyncio.gather(*pending):
            report.published += 1
            if getattr(ack, "duplicate", False):
                report.duplicates += 1
        pending.clear()

    for event in events:
        event_id, k = route(event, partitions)
        body = json.dumps(dict(event), ensure_ascii=False, separators=(",", ":")).encode()
        pending.append(
            asyncio.ensure_future(
                js.publish(
                    subject_for(slug, k, prefix),
                    body,
                    stream=stream,
                    headers={"Nats-Msg-Id": message_id(slug, event_id)},
                )
            )
        )
        report.by_partition[k] = report.by_partition.get(k, 0) + 1
        if len(pending) >= window:
            await settle()
    await settle()
    return report


# ---------------------------------------------------------------- the worker


@dataclass(slots=True)
class WorkerStats:
    """What a worker did since it started."""

    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    invalid: int = 0
    """Terminated: not JSON, invalid, misrouted, or an id stored with different content."""
    failed_batches: int = 0
    """Batches nak'ed after a database error (redelivered later)."""
    batches: int = 0
    alerts: int = 0
    """Alerts newly queued by this worker's engine (with --risk)."""
    replayed: int = 0
    """Stored events replayed into the engine to rebuild its state (with --risk)."""


@dataclass(slots=True)
class BatchRecord:
    """One committed batch, as reported to `on_batch` after the commit and before the acks
    (a callback that never returns — a crash — leaves the batch to be redelivered)."""

    partition: int
    stored: list[str]
    duplicates: list[str]
    invalid: list[str]
    """Message ids (``<slug>:<event id>``, or the stream sequence) of terminated messages."""
    alerts: list[str] = field(default_factory=list)
    """Ids of the alerts this batch newly queued (with ``risk=True``)."""


@dataclass(slots=True)
class _Risk:
    """A worker's engine over its partitions."""

    engine: RiskEngineLike
    directory: StoreDirectory
    policy: Any
    dismissals: Dismissals


class StreamWorker:
    """Consumes a platform's partitions into the database; see the module doc."""

    def __init__(
        self,
        db_url: str,
        slug: str,
        partitions: list[int],
        *,
        partition_count: int = DEFAULT_PARTITIONS,
        nats_url: str = DEFAULT_NATS,
        stream: str = DEFAULT_STREAM,
        prefix: str = DEFAULT_PREFIX,
        batch: int = DEFAULT_BATCH,
        ack_wait: float = DEFAULT_ACK_WAIT,
        max_deliver: int = DEFAULT_MAX_DELIVER,
        fetch_timeout: float = 1.0,
        pause: float = 0.0,
        on_batch: Callable[[BatchRecord], None] | None = None,
        service: Service | None = None,
        risk: bool = False,
        on_replay: Callable[[int], None] | None = None,
    ) -> None:
        check_slug(slug)
        check_prefix(prefix)
        check_stream(stream)
        if not partitions:
            raise ValueError("a worker needs at least one partition")
        bad = [k for k in partitions if not 0 <= k < partition_count]
        if bad:
            raise ValueError(f"partition {bad[0]} is outside 0..{partition_count - 1}")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.db_url = db_url
        self.slug = slug
        self.partitions = sorted(set(partitions))
        self._owned = frozenset(self.partitions)
        self.partition_count = partition_count
        self.nats_url = nats_url
        self.stream = stream
        self.prefix = prefix
        self.batch = batch
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.fetch_timeout = fetch_timeout
        self.pause = pause
        self.on_batch = on_batch
        self.stats = WorkerStats()
        self._service = service
        self._platform_id: int | None = None
        self.risk = risk
        self.on_replay = on_replay
        """Called with the number of replayed events after each rebuild of the engine state."""
        self._risk: _Risk | None = None
        self._risk_lock = threading.Lock()

    # -- database side (runs in a thread)

    def _open(self) -> int:
        from qinglang.api.service import Service, Settings
        from qinglang.store import repo

        if self._service is None:
            try:
                self._service = Service(Settings(db_url=self.db_url))
            except Exception as exc:
                first = (str(exc).splitlines() or [""])[0]
                raise ValueError(
                    f"cannot open database {self.db_url}: {type(exc).__name__}: {first}"
                ) from exc
        with self._service.tx() as s:
            p = repo.get_platform_by_slug(s, self.slug)
            if p is None:
                raise ValueError(f"no platform {self.slug!r}")
            return p.id

    def _store(self, raws: list[Any]) -> Any:
        from qinglang.store import events as store_events

        assert self._service is not None and self._platform_id is not None
        checked = store_events.check_batch(raws)
        with self._service.tx(write=True) as s:
            return store_events.store_batch(s, self._platform_id, checked)

    def _owns(self, sender: str) -> bool:
        """Whether the sender's events come to this worker (its partition is one of ours)."""
        return partition_of(sender, self.partition_count) in self._owned

    def _rebuild(self) -> _Risk:
        """A fresh engine for the owned partitions, its state replayed from the stored events
        within its horizon with the dismissals of the owned senders in time order, as in the
        Consumer's rebuild (alerts dropped: they were written when first raised)."""
        from sqlalchemy import func, select

        from qinglang.risk.consumer import (
            Dismissals,
            StoreDirectory,
            default_engine_factory,
            replay,
            replay_horizon,
        )
        from qinglang.store import events as store_events
        from qinglang.store import review as store_review
        from qinglang.store.models import Platform, StoredEvent

        service, platform_id = self._service, self._platform_id
        assert service is not None and platform_id is not None
        with service.tx() as s:
            platform = s.get(Platform, platform_id)
            assert platform is not None
            policy = service.policy_for(platform)
        directory = StoreDirectory(service.sessions, platform_id, policy)
        engine = default_engine_factory(policy, directory)
        dismissals = Dismissals()
        with service.tx() as s:
            dismissals.cursor = store_review.last_action_id(s, platform_id)
            upto = store_events.head_seq(s, platform_id)
            latest: datetime | None = s.scalar(
                select(func.max(StoredEvent.at)).where(StoredEvent.platform_id == platform_id)
            )
        replayed = 0
        if upto and latest is not None:
            since = latest - replay_horizon(engine, policy)
            replayed = replay(
                service.sessions,
                platform_id,
                engine,
                directory,
                dismissals,
                upto,
                since,
                datetime.now(tz=UTC),
                owns=self._owns,
            )
        self.stats.replayed += replayed
        if self.on_replay is not None:
            self.on_replay(replayed)
        return _Risk(engine, directory, policy, dismissals)

    def _start_risk(self) -> None:
        with self._risk_lock:
            self._risk = self._rebuild()

    def _store_and_judge(self, raws: list[Any]) -> tuple[Any, list[str]]:
        """Store a batch, feed its newly stored events to the engine and write the alerts, all
        in ONE transaction: a crash anywhere before the commit leaves neither events nor alerts,
        and the redelivered batch is judged again. On any failure the engine state is dropped
        (it may have seen events that were not committed) and rebuilt before the next batch.
        Returns the intake result and the ids of the alerts newly queued."""
        from qinglang.risk.consumer import write_alerts
        from qinglang.store import events as store_events

        service, platform_id = self._service, self._platform_id
        assert service is not None and platform_id is not None
        checked = store_events.check_batch(raws)
        good = dict(checked.good)
        with self._risk_lock:  # partitions are consumed concurrently, in threads
            try:
                if self._risk is None:
                    self._risk = self._rebuild()
                risk = self._risk
                # Reviewers' dismissals of our senders since the cursor, before judging.
                risk.dismissals.apply_new(
                    service.sessions, platform_id, risk.engine, datetime.now(tz=UTC), self._owns
                )
                with service.tx(write=True) as s:
                    result = store_events.store_batch(s, platform_id, checked)
                    skip = {r.index for r in result.rejected} | set(result.duplicates)
                    fresh = [e for i, e in sorted(good.items()) if i not in skip]
                    queued: list[str] = []
                    if fresh:
                        risk.directory.prefetch(fresh)
                        alerts = risk.engine.process_many(fresh)
                        if alerts:
                            now = datetime.now(tz=UTC)
                            queued = write_alerts(
                                s, platform_id, risk.policy, risk.directory, fresh, alerts, now
                            )
                return result, queued
            except BaseException:
                self._risk = None
                raise

    # -- stream side

    async def run(self, stop: asyncio.Event) -> WorkerStats:
        """Consume until `stop` is set; each partition finishes the batch in hand."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        self._platform_id = await asyncio.to_thread(self._open)
        if self.risk:
            await asyncio.to_thread(self._start_risk)
        nc = await connect(self.nats_url, name=f"qinglang-stream-{self.slug}")
        try:
            js = nc.jetstream()
            subs = []
            for k in self.partitions:
                config = ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=self.ack_wait,
                    max_deliver=self.max_deliver,
                    max_ack_pending=max(1000, 4 * self.batch),
                )
                sub = await js.pull_subscribe(
                    subject_for(self.slug, k, self.prefix),
                    durable=consumer_name(self.slug, k),
                    stream=self.stream,
                    config=config,
                )
                subs.append((k, sub))
            results = await asyncio.gather(
                *(self._guarded(nc, k, sub, stop) for k, sub in subs), return_exceptions=True
            )
        finally:
            await nc.close()
            if self._service is not None:
                self._service.engine.dispose()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return self.stats

    async def _guarded(self, nc: Any, partition: int, sub: Any, stop: asyncio.Event) -> None:
        """Consume one partition; a failure stops the other partitions too (after their batch)."""
        try:
            await self._consume(nc, partition, sub, stop)
        except BaseException:
            stop.set()
            raise

    async def _consume(self, nc: Any, partition: int, sub: Any, stop: asyncio.Event) -> None:
        from nats.errors import ConnectionClosedError
        from nats.errors import Error as NatsError

        while not stop.is_set():
            try:
                msgs = await sub.fetch(self.batch, timeout=self.fetch_timeout)
            except TimeoutError:  # nothing to fetch (nats' TimeoutError is one too)
                continue
            except ConnectionClosedError:
                raise
            except NatsError as exc:  # a reconnect in progress, a slow server: try again
                log.warning("fetch on partition %s failed: %s; retrying", partition, exc)
                await asyncio.sleep(1.0)
                continue
            if msgs:
                await self._handle(nc, partition, msgs)
                if self.pause:
                    await asyncio.sleep(self.pause)

    def _message_key(self, msg: Msg) -> str:
        header = (msg.headers or {}).get("Nats-Msg-Id")
        if header:
            return str(header)
        try:
            return f"seq:{msg.metadata.sequence.stream}"
        except Exception:
            return "seq:?"

    async def _handle(self, nc: Any, partition: int, msgs: list[Msg]) -> None:

        self.stats.fetched += len(msgs)
        raws: list[Any] = []
        carried: list[Msg] = []
        dead: list[Msg] = []
        for msg in msgs:
            try:
                raw = json.loads(msg.data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                log.warning("terminating %s: not a JSON event", self._message_key(msg))
                dead.append(msg)
                continue
            actor = raw.get("actor") if isinstance(raw, dict) else None
            if isinstance(actor, str) and partition_of(actor, self.partition_count) != partition:
                log.warning("terminating %s: published to the wrong partition", msg.subject)
                dead.append(msg)
                continue
            raws.append(raw)
            carried.append(msg)
        queued: list[str] = []
        try:
            if not raws:
                result = None
            elif self.risk:
                result, queued = await asyncio.to_thread(self._store_and_judge, raws)
            else:
                result = await asyncio.to_thread(self._store, raws)
        except Exception:
            log.exception("storing a batch of partition %s failed; redelivering later", partition)
            await self._nak(nc, msgs)
            return
        rejected = set() if result is None else {r.index for r in result.rejected}
        duplicate = set() if result is None else set(result.duplicates)
        stored: list[str] = []
        dups: list[str] = []
        for i, raw in enumerate(raws):
            if i in rejected:
                dead.append(carried[i])
            elif i in duplicate:
                dups.append(str(raw.get("id")))
            else:
                stored.append(str(raw.get("id")))
        for r in [] if result is None else result.rejected:
            log.warning(
                "terminating %s: %s: %s", self._message_key(carried[r.index]), r.field, r.message
            )
        self.stats.batches += 1
        self.stats.stored += len(stored)
        self.stats.duplicates += len(dups)
        self.stats.invalid += len(dead)
        self.stats.alerts += len(queued)
        if self.on_batch is not None:
            self.on_batch(
                BatchRecord(partition, stored, dups, [self._message_key(m) for m in dead], queued)
            )
        await self._settle(nc, msgs, {id(m) for m in dead})

    async def _nak(self, nc: Any, msgs: list[Msg]) -> None:
        from nats.errors import Error as NatsError

        self.stats.failed_batches += 1
        try:
            for msg in msgs:
                await msg.nak(delay=NAK_DELAY)
            await nc.flush()
        except NatsError as exc:  # without the nak, ack_wait brings the batch back
            log.warning("nak failed: %s", exc)

    async def _settle(self, nc: Any, msgs: list[Msg], dead: set[int]) -> None:
        """Acknowledge (or terminate) a committed batch. A lost acknowledgement only means a
        redelivery, which the store recognises as duplicates."""
        from nats.errors import Error as NatsError

        try:
            for msg in msgs:
                if id(msg) in dead:
                    await msg.term()
                else:
                    await msg.ack()
            await nc.flush()
        except NatsError as exc:
            log.warning("acknowledging a stored batch failed (it will come back): %s", exc)


def stats_dict(stats: WorkerStats) -> dict[str, int]:
    """The stats as a JSON-ready mapping."""
    return asdict(stats)
