"""The risk consumer on SQLite and PostgreSQL: alerts and restrictions from stored events, the
lease (one consumer at a time, takeover after expiry), replay on takeover, the directory."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from qinglang.policy import load_policy
from qinglang.risk.consumer import Consumer, StoreDirectory, replay_horizon
from qinglang.risk.directory import MemoryDirectory
from qinglang.risk.engine import RiskEngine
from qinglang.risk.events import Event
from qinglang.risk.types import Alert as RiskAlert
from qinglang.store import events as store_events
from qinglang.store import repo
from qinglang.store import review as store_review
from qinglang.store.db import transaction, writer
from qinglang.store.models import (
    INDEFINITE,
    Account,
    AgeAssessment,
    Alert,
    Platform,
    Restriction,
)

POLICY = load_policy("cn")
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock for leases."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def consumer(sm: sessionmaker[Session], holder: str, clock: Callable[[], datetime]) -> Consumer:
    w = sessionmaker(bind=writer(sm.kw["bind"]), expire_on_commit=False)
    return Consumer(
        sm,
        w,
        lambda _p: POLICY,
        holder=holder,
        lease=timedelta(seconds=30),
        batch_size=4,
        clock=clock,
    )


def pattern(
    sender: str = "man", start: int = 0, kids: tuple[str, ...] = ("girl", "boy")
) -> list[dict[str, Any]]:
    """The case: children's videos shown to a man, who follows them, asks their age and school,
    asks for secrecy and a meeting; the engine restricts him (8 events for two children)."""
    at = T0
    out: list[dict[str, Any]] = []

    def add(kind: str, **body: Any) -> None:
        nonlocal at
        at += timedelta(minutes=1)
        out.append(
            {"id": f"{sender}-{start + len(out)}", "kind": kind, "at": at.isoformat(), **body}
        )

    for kid in kids:
        add("impression", actor=sender, item=f"v-{kid}", owner=kid, surface="recommended")
    for kid in kids:
        add("follow", actor=sender, target=kid)
    for kid in kids:
        add("message", actor=sender, target=kid, text="你好呀，你几岁了？在哪个学校上学？")
        add("message", actor=sender, target=kid, text="别告诉你爸妈，周末我们见面吧，我给你买皮肤")
    return out


@pytest.fixture
def world(session_maker: sessionmaker[Session]) -> int:
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "video", "Video")
        repo.upsert_account(s, p.id, "man", birth_date=date(1980, 1, 1), age_source="verified")
        repo.upsert_account(s, p.id, "girl", birth_date=date(2016, 1, 1))
        repo.upsert_account(s, p.id, "boy", birth_date=date(2015, 6, 1))
        repo.upsert_account(s, p.id, "adult", birth_date=date(1990, 1, 1))
        return p.id


def ingest(sm: sessionmaker[Session], pid: int, raws: list[dict[str, Any]]) -> None:
    w = sessionmaker(bind=writer(sm.kw["bind"]), expire_on_commit=False)
    with transaction(w) as s:
        r = store_events.ingest(s, pid, raws)
    assert r.accepted == len(raws), r.rejected


def count(sm: sessionmaker[Session], model: Any) -> int:
    with transaction(sm) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_the_pattern_raises_alerts_and_restricts(
    session_maker: sessionmaker[Session], world: int
) -> None:
    ingest(session_maker, world, pattern())
    c = consumer(session_maker, "A", Clock(T0))
    report = c.run_once()
    assert report.events == 8 and report.alerts == 1 and report.restrictions == 1
    with transaction(session_maker) as s:
        (urgent,) = s.scalars(select(Alert)).all()
        assert urgent.level == "restrict" and urgent.sender == "man"
        assert urgent.priority == "urgent" and sorted(urgent.minors) == ["boy", "girl"]
        man = repo.get_account(s, world, "man")
        assert man is not None and man.restricted_until == INDEFINITE
        status = store_events.consumer_status(s, world)
    assert status["processed"] == 8 and status["lag"] == 0
    evidence = json.loads(urgent.evidence)
    assert {m["account"]: m["age"] for m in evidence["minors"]} == {"girl": 10, "boy": 10}
    assert "chain_shown_follow_message" in {sig["name"] for sig in evidence["signals"]}
    assert any(sig["excerpt"] for sig in evidence["signals"])
    texts = [e for e in evidence["timeline"] if e["kind"] == "message"]
    assert texts and all("text" not in e and e["text_chars"] > 0 for e in texts)
    assert c.run_once().events == 0  # caught up


def test_a_review_alert_below_the_high_threshold(
    session_maker: sessionmaker[Session], world: int
) -> None:
    weak = [e for e in pattern() if e["kind"] != "message"]
    for i, text in enumerate(("你好呀，你几岁了？", "你住哪里？我可以去找你玩")):
        at = (T0 + timedelta(minutes=10 + i)).isoformat()
        weak.append(
            {
                "id": f"w{i}",
                "kind": "message",
                "at": at,
                "actor": "man",
                "target": "girl",
                "text": text,
            }
        )
    ingest(session_maker, world, weak)
    report = consumer(session_maker, "A", Clock(T0)).run_once()
    assert report.alerts == 1 and report.restrictions == 0
    with transaction(session_maker) as s:
        (alert,) = s.scalars(select(Alert)).all()
        assert alert.level == "review" and alert.priority == "high"  # two minors
        man = repo.get_account(s, world, "man")
        assert man is not None and man.restricted_until is None


def test_two_consumers_only_one_processes_and_takeover_after_expiry(
    session_maker: sessionmaker[Session], world: int
) -> None:
    clock = Clock(T0)
    a, b = consumer(session_maker, "A", clock), consumer(session_maker, "B", clock)
    events = pattern()
    ingest(session_maker, world, events[:3])
    assert a.run_once().events == 3
    ingest(session_maker, world, events[3:])
    rb = b.run_once()
    assert rb.events == 0 and rb.held_elsewhere == [world]
    # A is killed (no release). After its lease expires, B takes over and rebuilds its
    # engine state by replaying what A processed, so the alert still sees the whole pattern.
    clock.t = T0 + timedelta(seconds=31)
    rb = b.run_once()
    assert rb.events == 5 and rb.replayed == 3 and rb.restrictions == 1
    assert count(session_maker, Alert) == 1
    # A comes back: the lease is B's.
    assert a.run_once().held_elsewhere in ([], [world])
    ingest(session_maker, world, pattern("other", 100)[:1])
    assert a.run_once().held_elsewhere == [world]
    assert b.run_once().events == 1


def test_a_lost_lease_writes_nothing(session_maker: sessionmaker[Session], world: int) -> None:
    clock = Clock(T0)
    a = consumer(session_maker, "A", clock)
    b = consumer(session_maker, "B", clock)
    ingest(session_maker, world, pattern())
    real = a._commit

    def steal_then_commit(*args: Any, **kwargs: Any) -> None:
        clock.t = T0 + timedelta(minutes=5)
        b.run_once()  # B takes the expired lease and processes everything
        real(*args, **kwargs)

    a._commit = steal_then_commit  # type: ignore[method-assign]
    report = a.run_once()
    assert report.held_elsewhere == [world] and report.events == 0
    assert count(session_maker, Alert) == 1  # written once, by B
    assert count(session_maker, Restriction) == 1


def test_restart_replays_without_duplicating_alerts(
    session_maker: sessionmaker[Session], world: int
) -> None:
    clock = Clock(T0)
    ingest(session_maker, world, pattern())
    first = consumer(session_maker, "A", clock)
    first.run_once()
    first.release()  # clean shutdown: the next consumer needs no expiry
    again = consumer(session_maker, "A2", clock)
    w = sessionmaker(bind=writer(session_maker.kw["bind"]), expire_on_commit=False)
    with transaction(w) as s:
        assert store_events.ingest(s, world, pattern()[-1:]).duplicates == [0]
    ingest(session_maker, world, pattern("man", 50)[-1:])  # one more cue message
    report = again.run_once()
    # The state was rebuilt from the 8 stored events: the restrict alert is not raised again.
    assert report.replayed == 8 and report.events == 1 and report.alerts == 0
    assert count(session_maker, Alert) == 1


def test_directory_reads_profiles_relationships_and_guardians(
    session_maker: sessionmaker[Session], world: int
) -> None:
    with transaction(session_maker) as s:
        ids = repo.get_accounts(s, world, ["man", "girl", "adult"])
        repo.set_relationship(s, world, ids["man"].id, ids["girl"].id, "follow")
        repo.set_relationship(s, world, ids["girl"].id, ids["man"].id, "follow")
        repo.set_relationship(s, world, ids["girl"].id, ids["adult"].id, "approved_contact")
        g = repo.upsert_guardian(s, world, "adult")
        repo.link_guardian(s, g.id, ids["girl"].id, method="signed_form", verified_by="ops")
    d = StoreDirectory(session_maker, world, POLICY, now=lambda: T0)
    d.prefetch([Event("x", "message", T0, "man", "girl", "hi")])
    girl = d.facts("girl")
    assert girl.is_minor and girl.age == 10 and not girl.restricted
    assert d.facts("man").age == 46 and not d.facts("man").is_minor
    assert d.facts("ghost").age is None
    assert d.link("man", "girl").mutual and d.link("girl", "man").mutual
    link = d.link("adult", "girl")
    assert link.approved and link.guardian and not link.mutual
    assert d.link("man", "adult") == d.link("adult", "man")
    assert not d.link("boy", "girl").mutual


def test_directory_treats_a_suspected_minor_as_a_minor(
    session_maker: sessionmaker[Session], world: int
) -> None:
    """No birth date, but age inference suspects a child: the engine sees a minor, as the
    decisions do (a cleared assessment changes nothing)."""
    with transaction(session_maker) as s:
        kid = repo.upsert_account(s, world, "quiet-kid")
        grown = repo.upsert_account(s, world, "quiet-adult")
        s.flush()
        s.add(
            AgeAssessment(
                platform_id=world, account_id=kid.id, state="suspected", suspected_child=True
            )
        )
        s.add(AgeAssessment(platform_id=world, account_id=grown.id, state="clear"))
    d = StoreDirectory(session_maker, world, POLICY, now=lambda: T0)
    facts = d.facts("quiet-kid")
    assert facts.is_minor and facts.age is not None
    assert facts.age < int(POLICY.require("age.child_below").value)  # type: ignore[arg-type]
    assert not d.facts("quiet-adult").is_minor and d.facts("quiet-adult").age is None


def test_replay_horizon() -> None:
    engine = RiskEngine(POLICY, MemoryDirectory())
    assert replay_horizon(engine, POLICY) == timedelta(seconds=engine.params.horizon)
    assert replay_horizon(object(), POLICY) == timedelta(seconds=engine.params.horizon)


def test_platform_rows_are_per_tenant(session_maker: sessionmaker[Session], world: int) -> None:
    with transaction(session_maker) as s:
        other = repo.create_platform(s, "other", "Other").id
        repo.upsert_account(s, other, "girl", birth_date=date(2016, 1, 1))
    ingest(session_maker, other, pattern())
    ingest(session_maker, world, pattern("man")[:2])
    report = consumer(session_maker, "A", Clock(T0)).run_once()
    assert sorted(report.platforms) == sorted([world, other])
    with transaction(session_maker) as s:
        per = dict(
            s.execute(select(Alert.platform_id, func.count()).group_by(Alert.platform_id)).all()
        )
        # On "other", man and boy are not registered: unknown accounts are no minors.
        assert per.get(world, 0) == 0
        p = s.get(Platform, other)
        assert p is not None
        assert s.scalar(select(func.count()).select_from(Account)) == 5


class Poisoned(RiskEngine):
    """An engine that fails on one event."""

    def process(self, event: Event) -> list[RiskAlert]:
        if event.id == "man-3":
            raise RuntimeError("boom")
        return super().process(event)


def test_a_poison_event_is_skipped_not_blocking(
    session_maker: sessionmaker[Session], world: int
) -> None:
    ingest(session_maker, world, pattern())
    w = sessionmaker(bind=writer(session_maker.kw["bind"]), expire_on_commit=False)
    c = Consumer(session_maker, w, lambda _p: POLICY, engine_factory=Poisoned, clock=Clock(T0))
    report = c.run_once()
    assert report.events == 8 and report.failed_events == 1
    with transaction(session_maker) as s:
        assert store_events.consumer_status(s, world)["lag"] == 0
    ingest(session_maker, world, pattern("man", 50)[-1:])
    again = c.run_once()
    assert again.events == 1 and again.replayed == 0  # the state was kept in step


def test_one_broken_platform_does_not_stop_the_others(
    session_maker: sessionmaker[Session], world: int
) -> None:
    with transaction(session_maker) as s:
        broken = repo.create_platform(s, "broken", "Broken").id
    ingest(session_maker, broken, pattern()[:2])
    ingest(session_maker, world, pattern())

    def policy_for(p: Platform) -> Any:
        if p.id == broken:
            raise ValueError("overlay no longer loads")
        return POLICY

    w = sessionmaker(bind=writer(session_maker.kw["bind"]), expire_on_commit=False)
    report = Consumer(session_maker, w, policy_for, clock=Clock(T0)).run_once()
    assert report.failed_platforms == [broken]
    assert report.platforms == [world] and report.restrictions == 1


# ---------------------------------------------------------------- dismissals reach the engine


class Spy(RiskEngine):
    """The engine, recording the senders it was told to acknowledge."""

    made: ClassVar[list[Spy]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acks: list[str] = []
        Spy.made.append(self)

    def acknowledge(self, sender: str) -> None:
        self.acks.append(sender)
        super().acknowledge(sender)


def weak() -> list[dict[str, Any]]:
    """Shown, follows and two probing messages: a review alert for "man", no restriction."""
    out = [e for e in pattern() if e["kind"] != "message"]
    for i, text in enumerate(("你好呀，你几岁了？", "你住哪里？我可以去找你玩")):
        at = (T0 + timedelta(minutes=10 + i)).isoformat()
        out.append(
            {"id": f"w{i}", "kind": "message", "at": at, "actor": "man", "target": "girl"}
            | {"text": text}
        )
    return out


def more() -> list[dict[str, Any]]:
    """One more probing message from "man", later."""
    at = (T0 + timedelta(minutes=30)).isoformat()
    text = "你爸妈什么时候不在家？"
    return [
        {"id": "w9", "kind": "message", "at": at, "actor": "man", "target": "boy", "text": text}
    ]


def spying(sm: sessionmaker[Session], holder: str, clock: Clock) -> Consumer:
    w = sessionmaker(bind=writer(sm.kw["bind"]), expire_on_commit=False)
    return Consumer(sm, w, lambda _p: POLICY, engine_factory=Spy, holder=holder, clock=clock)


def dismiss(sm: sessionmaker[Session], pid: int, at: datetime) -> None:
    w = sessionmaker(bind=writer(sm.kw["bind"]), expire_on_commit=False)
    with transaction(w) as s:
        p = s.get(Platform, pid)
        alert = s.scalars(select(Alert).where(Alert.status == "open")).one()
        assert p is not None and alert.sender == "man"
        store_review.act(s, p, POLICY, alert, "dismiss", "rev-1", "家长确认是亲戚", now=at)


@pytest.mark.parametrize("dismissed", [True, False])
def test_a_dismissal_reaches_the_engine_on_the_next_poll(
    session_maker: sessionmaker[Session], world: int, dismissed: bool
) -> None:
    Spy.made.clear()
    ingest(session_maker, world, weak())
    clock = Clock(T0 + timedelta(minutes=20))
    c = spying(session_maker, "A", clock)
    assert c.run_once().alerts == 1
    (engine,) = Spy.made
    if dismissed:
        dismiss(session_maker, world, clock.t)
    c.run_once()  # nothing pending: the poll still reads the dismissal
    assert engine.acks == (["man"] if dismissed else [])
    c.run_once()
    assert engine.acks == (["man"] if dismissed else [])  # applied once
    ingest(session_maker, world, more())
    report = c.run_once()
    # Acknowledged: re-armed above the dismissed score, so more of it raises a new alert;
    # otherwise the review level was already raised and nothing new is.
    assert report.events == 1 and report.alerts == (1 if dismissed else 0)
    assert Spy.made == [engine] and report.replayed == 0


def test_a_takeover_replays_the_dismissal(session_maker: sessionmaker[Session], world: int) -> None:
    Spy.made.clear()
    ingest(session_maker, world, weak())
    clock = Clock(T0 + timedelta(minutes=20))
    first = spying(session_maker, "A", clock)
    assert first.run_once().alerts == 1
    first.release()
    dismiss(session_maker, world, clock.t)
    ingest(session_maker, world, more())
    report = spying(session_maker, "B", clock).run_once()
    assert report.replayed == len(weak()) and report.events == 1 and report.alerts == 1
    assert Spy.made[-1].acks == ["man"]
