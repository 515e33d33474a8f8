"""The per-minor evidence read in slices (`plan_slices`, `read_slice`, `PerMinor.add`) is exactly
the one-pass evidence (`per_minor`), on SQLite and PostgreSQL, over random but seeded worlds
built in the database: accounts of every age (children, teens, adults, no birth date, suspected
ages from age assessments), externals with no account, consent histories in the real ledger
(guardian and self grants with audiences, refusals, withdrawals, stale after a notice change),
processing records, messages (delivered or not), pushed and visited impressions of flagged and
unflagged items, follows and approved contacts made at various times, contact decisions and game
sessions, with a second platform's rows interleaved so the keys are sparse.

Also: the plan (disjoint, contiguous key ranges covering each part, none for a part without
rows) and the whole audit result with the sliced reader."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import qinglang.store.audit
from qinglang.age.suspicion import suspected_age_of
from qinglang.api import Settings
from qinglang.api.service import Service
from qinglang.audit import run as audit_run
from qinglang.guard.consents import RECOMMEND
from qinglang.policy import load_policy
from qinglang.store import audit as store_audit
from qinglang.store import events as store_events
from qinglang.store import ledger, repo, transaction
from qinglang.store.crypto import DataKey
from qinglang.store.models import (
    AGE_ASSESSMENT_STATES,
    AGE_SOURCES,
    AgeAssessment,
    DecisionLog,
    GameSession,
    Platform,
    ProcessingRecord,
    StoredEvent,
)

POLICY = load_policy("cn")
FIRST, LAST = date(2026, 1, 1), date(2026, 6, 30)
AS_OF = datetime(2026, 7, 2, tzinfo=UTC)
W = store_audit.window(POLICY, FIRST, LAST, AS_OF)
PAIRS = (RECOMMEND, ("registration", "account"), ("nearby", "location"))
CATEGORIES = ("face", "contacts")
"""Categories processed without any consent pair."""
SIZES = (1, 2, 7, 50, 10**9)
SEEDS = (11, 23, 47)
FULL = 200
"""`store_audit.SAMPLE` (the evidence rows kept per finding) as the code sets it."""
SCHEDULE = {
    11: (0.5, ((3, 1), (FULL, 50), (FULL, 10**9))),
    23: (0.75, ((3, 7), (3, 10**9), (FULL, 2))),
    47: (1.0, ((3, 50), (FULL, 7), (FULL, 10**9))),
}
"""Per seed, the world's scale and the (SAMPLE, rows per slice) pairs read in slices: every
size with and without truncated samples over the seeds (one slice read costs ~15 ms on SQLite
and ~25 ms on PostgreSQL here, so not every pair for every seed, and smaller worlds for the
smallest slices)."""
NOTICE = {"language": "zh", "audience": "child", "version": 1, "content_hash": "0" * 64}


def _instant(rng: random.Random, before: int = 20, after: int = 10) -> datetime:
    """An instant in the window, a few outside it (`before`/`after` days either side)."""
    lo = W.start - timedelta(days=before)
    span = (W.end + timedelta(days=after) - lo).total_seconds()
    return lo + timedelta(seconds=rng.randrange(int(span)), microseconds=rng.randrange(10**6))


def _birth(rng: random.Random, kind: str) -> date | None:
    """A birth date for an age kind (some cross 14 or 18 during the window)."""
    if kind == "none":
        return None
    lo, hi = {
        "child": (date(2012, 7, 1), date(2020, 1, 1)),
        "turns14": (date(2012, 1, 2), date(2012, 6, 25)),
        "teen": (date(2008, 7, 1), date(2011, 12, 31)),
        "turns18": (date(2008, 1, 2), date(2008, 6, 25)),
        "adult": (date(1960, 1, 1), date(2007, 12, 31)),
    }[kind]
    return lo + timedelta(days=rng.randrange((hi - lo).days))


@dataclass
class World:
    platform_id: int
    other_id: int
    names: list[str]
    minors: list[str]


def build_world(sm: sessionmaker[Session], seed: int, scale: float = 1.0) -> World:
    """A random platform `p{seed}` (and an interleaved `o{seed}`) written through the store
    (`scale`: of the number of records, events, decisions and game sessions)."""
    rng = random.Random(seed)

    def count(lo: int, hi: int) -> int:
        return max(1, round(rng.randrange(lo, hi) * scale))

    with transaction(sm) as s:
        p = repo.create_platform(s, f"p{seed}", "Platform")
        other = repo.create_platform(s, f"o{seed}", "Other")
        pid, oid = p.id, other.id
        ids: dict[str, int] = {}
        other_ids: dict[str, int] = {}
        young: list[str] = []
        kinds = ("child", "turns14", "teen", "turns18", "adult", "none")
        n = rng.randrange(40, 61)
        for i in range(n):
            kind = kinds[i % len(kinds)] if i < 2 * len(kinds) else rng.choice(kinds)
            born = _birth(rng, kind)
            name = f"u{i:02d}"
            source = rng.choice([*AGE_SOURCES, None]) if born is not None else None
            if i < 4 and born is not None:
                source = "verified"  # real-name verified minors (their games are not flagged)
            a = repo.upsert_account(
                s,
                pid,
                name,
                birth_date=born,
                age_source=source,  # type: ignore[arg-type]
            )
            ids[name] = a.id
            if kind in ("child", "turns14", "teen", "turns18"):
                young.append(name)
            if rng.random() < 0.3 or (kind in ("none", "adult") and rng.random() < 0.4):
                state = rng.choice(AGE_ASSESSMENT_STATES)
                suspected_child = rng.random() < 0.5
                s.add(
                    AgeAssessment(
                        platform_id=pid, account_id=a.id, state=state,
                        suspected_child=suspected_child,
                    )
                )  # fmt: skip
                if suspected_age_of(state, suspected_child) is not None:
                    young.append(name)
            if i % 5 == 0:
                # the same external id on another platform, whose rows interleave with these
                o = repo.upsert_account(s, oid, name, birth_date=_birth(rng, "child"))
                other_ids[name] = o.id
        names = sorted(ids)
        externals = [f"x{i}" for i in range(8)]
        everyone = names + externals

        def anyone() -> str:
            return rng.choice(everyone)

        def youngish() -> str:
            return rng.choice(young) if rng.random() < 0.7 else rng.choice(names)

        # consent histories in the ledger, appended in time order
        changes: list[tuple[datetime, str, str, dict[str, Any]]] = []
        for name in [*young, *rng.sample(names, 5), "x1"]:
            for _ in range(rng.randrange(0, 6)):
                at = _instant(rng, before=60, after=0)
                purpose, category = rng.choice(PAIRS)
                roll = rng.random()
                if roll < 0.15:
                    pairs = sorted(list(x) for x in rng.sample(PAIRS, rng.randrange(1, 3)))
                    changes.append((at, "consent.stale", name, {"notice": NOTICE, "pairs": pairs}))
                    continue
                kind, given_by = (
                    ("consent.granted", "guardian")
                    if roll < 0.6
                    else ("consent.granted", "self")
                    if roll < 0.7
                    else ("consent.refused", "guardian")
                    if roll < 0.85
                    else ("consent.withdrawn", "guardian")
                )
                audience = (
                    rng.choice([None, "owner", "friends", "followers", "public"])
                    if kind == "consent.granted"
                    else None
                )
                data = {
                    "purpose": purpose,
                    "category": category,
                    "audience": audience,
                    "given_by": given_by,
                    "guardian": "g-" + name if given_by == "guardian" else None,
                    "notice": NOTICE,
                }
                changes.append((at, kind, name, data))
        changes.sort(key=lambda c: c[0])
        for at, kind, subject, data in changes:
            ledger.append(s, pid, kind, subject, data, at=at)
            if rng.random() < 0.1:
                ledger.append(s, pid, "guardian.verified", subject, {"guardian": "g"}, at=at)
            if rng.random() < 0.1 and subject in other_ids:
                # the other platform's consent for the same external id is not this one's
                ledger.append(s, oid, kind, subject, data, at=at)

        # processing records, interleaved with the other platform's
        for _ in range(count(130, 170)):
            purpose, category = rng.choice(PAIRS)
            if rng.random() < 0.15:
                category = rng.choice(CATEGORIES)
            s.add(
                ProcessingRecord(
                    platform_id=pid, account_id=ids[youngish()], purpose=purpose,
                    category=category, at=_instant(rng), source="api",
                )
            )  # fmt: skip
            if rng.random() < 0.2 and other_ids:
                s.add(
                    ProcessingRecord(
                        platform_id=oid, account_id=rng.choice(list(other_ids.values())),
                        purpose=purpose, category=category, at=_instant(rng), source="api",
                    )
                )  # fmt: skip
        s.flush()

        # follows, approved contacts and blocks made at various times
        related: dict[str, list[str]] = {}
        for _ in range(count(90, 120)):
            src, dst = youngish(), rng.choice(names)
            if src == dst:
                continue
            if rng.random() < 0.5:
                src, dst = dst, src
            roll = rng.random()
            kind = "follow" if roll < 0.6 else "approved_contact" if roll < 0.8 else "block"
            at = _instant(rng, before=40, after=0)
            repo.set_relationship(s, pid, ids[src], ids[dst], kind, at=at)  # type: ignore[arg-type]
            related.setdefault(src, []).append(dst)
            related.setdefault(dst, []).append(src)
            if kind == "follow" and rng.random() < 0.6:
                back = at + timedelta(days=rng.choice([-3, 0, 2, 30]))
                repo.set_relationship(s, pid, ids[dst], ids[src], "follow", at=back)

        # content items (some flagged as showing a minor) and their owners
        owners: dict[str, str] = {}
        for i, name in enumerate(["u02", "u03", "u04", "u08", "u10"]):
            # teens' and adults' items flagged as showing a minor, to their friends only
            owners[f"w{i}"] = name
            row = repo.upsert_content_item(s, pid, f"w{i}", ids[name])
            repo.set_content_flag(
                s, row.id, "shows_minor", source="test", audience="friends",
                at=W.start - timedelta(days=40),
            )  # fmt: skip
        for i in range(30):
            item = f"v{i}"
            owner = youngish() if rng.random() < 0.8 else rng.choice(externals)
            owners[item] = owner
            if owner in ids and rng.random() < 0.7:
                row = repo.upsert_content_item(s, pid, item, ids[owner])
                for kind in rng.sample(
                    ["minor_pi", "shows_minor", "unsuitable_for_minors", "commercial"],
                    rng.randrange(0, 3),
                ):
                    audience = rng.choice([None, "owner", "friends", "followers", "public"])
                    repo.set_content_flag(
                        s, row.id, kind, source="test", audience=audience,  # type: ignore[arg-type]
                        at=_instant(rng, before=30, after=0),
                    )  # fmt: skip

        # events: messages, impressions and others, in random order (so seqs interleave)
        raws: list[dict[str, Any]] = []
        for i in range(count(110, 140)):
            target = youngish() if rng.random() < 0.85 else rng.choice(externals)
            near = related.get(target, [])
            actor = rng.choice(near) if near and rng.random() < 0.4 else anyone()
            while actor == target:
                actor = anyone()
            raw: dict[str, Any] = {"id": f"m{i}", "kind": "message"} | {
                "at": _instant(rng).isoformat(),
                "actor": actor,
                "target": target,
                "text": "你好",
            }
            delivered = rng.choice([True, False, None, None])
            if delivered is not None:
                raw["delivered"] = delivered
            raws.append(raw)
        for i in range(count(110, 140)):
            item = rng.choice(sorted(owners))
            owner = owners[item] if rng.random() < 0.9 else anyone()
            viewer = owner if rng.random() < 0.05 else anyone()
            surface = rng.choice(["recommended", "searched", "recommended", "viewed"])
            raws.append(
                {"id": f"i{i}", "kind": "impression", "at": _instant(rng).isoformat()}
                | {"actor": viewer, "item": item, "owner": owner, "surface": surface}
            )
        for i in range(40):
            actor, target = rng.sample(everyone, 2)
            raws.append(
                {"id": f"f{i}", "kind": "follow", "at": _instant(rng).isoformat()}
                | {"actor": actor, "target": target}
            )
        rng.shuffle(raws)
        result = store_events.ingest(s, pid, raws)
        assert not result.rejected, result.rejected[:3]
        other_events = [
            {"id": "om", "kind": "message", "at": _instant(rng).isoformat()}
            | {"actor": names[0], "target": names[1], "text": "hi"}
        ]
        assert not store_events.ingest(s, oid, other_events).rejected

        # contact decisions (and others), interleaved with the other platform's
        for _ in range(count(60, 80)):
            kind = "contact" if rng.random() < 0.7 else rng.choice(["exposure", "collection"])
            other_account = ids[youngish()] if rng.random() < 0.85 else None
            s.add(
                DecisionLog(
                    platform_id=pid, kind=kind, action="dm",
                    outcome=rng.choice(["allow", "deny", "needs_guardian", "hold"]),
                    rule_ids=[], subject_account_id=ids[rng.choice(names)],
                    other_account_id=other_account, at=_instant(rng),
                )
            )  # fmt: skip
            if rng.random() < 0.2 and other_ids:
                s.add(
                    DecisionLog(
                        platform_id=oid, kind="contact", action="dm", outcome="deny",
                        rule_ids=[], other_account_id=rng.choice(list(other_ids.values())),
                        at=_instant(rng),
                    )
                )  # fmt: skip
        s.flush()

        # game sessions
        for i in range(count(30, 45)):
            s.add(
                GameSession(
                    platform_id=pid, account_id=ids[youngish() if i % 4 else names[i % 4]],
                    si=f"s{i}",
                    started_at=_instant(rng),
                )
            )  # fmt: skip
            if rng.random() < 0.2 and other_ids:
                s.add(
                    GameSession(
                        platform_id=oid, account_id=rng.choice(list(other_ids.values())),
                        si=f"s{i}", started_at=_instant(rng),
                    )
                )  # fmt: skip

        # rows at the window's edges (the start is in, the end is out), and rows of this
        # platform that name the other platform's account (never a minor of this one)
        kid, stranger, foreign = ids[names[0]], names[-1], other_ids[names[0]]
        for j, at in enumerate((W.start, W.end - timedelta(microseconds=1), W.end)):
            s.add_all(
                [
                    ProcessingRecord(
                        platform_id=pid, account_id=kid, purpose="nearby", category="location",
                        at=at, source="api",
                    ),
                    DecisionLog(
                        platform_id=pid, kind="contact", action="dm", outcome="edge",
                        rule_ids=[], other_account_id=kid, at=at,
                    ),
                    GameSession(platform_id=pid, account_id=kid, si=f"edge{j}", started_at=at),
                    ProcessingRecord(
                        platform_id=pid, account_id=foreign, purpose="nearby",
                        category="location", at=at, source="api",
                    ),
                    DecisionLog(
                        platform_id=pid, kind="contact", action="dm", outcome="foreign",
                        rule_ids=[], other_account_id=foreign, at=at,
                    ),
                ]
            )  # fmt: skip
            edge = [
                {"id": f"edge-m{j}", "kind": "message", "at": at.isoformat()}
                | {"actor": stranger, "target": names[0], "text": "你好"},
                {"id": f"edge-i{j}", "kind": "impression", "at": at.isoformat()}
                | {"actor": stranger, "item": "edge", "owner": names[0], "surface": "searched"},
            ]
            assert not store_events.ingest(s, pid, edge).rejected
    return World(pid, oid, names, sorted(set(young)))


def _one_pass(s: Session, pid: int) -> store_audit.PerMinor:
    platform = s.get(Platform, pid)
    assert platform is not None
    return audit_run.in_one_pass(s, platform, POLICY, W)


def _sliced(s: Session, pid: int, rows: int) -> store_audit.PerMinor:
    platform = s.get(Platform, pid)
    assert platform is not None
    return audit_run.sliced(rows)(s, platform, POLICY, W)


def _assert_same(got: store_audit.PerMinor, ref: store_audit.PerMinor, label: str) -> None:
    """Every figure, set, counter and sample (in order) equal: part by part (for a readable
    failure), then the whole (dataclasses compare by field)."""
    assert got.processing == ref.processing, label
    assert got.contacts == ref.contacts, label
    assert got.exposure == ref.exposure, label
    assert got.games == ref.games, label
    assert got == ref, label


def _assert_exercised(ref: store_audit.PerMinor, sample: int) -> None:
    """The world reaches every part, so that equality is not vacuous."""
    p, c, e = ref.processing, ref.contacts, ref.exposure
    assert p.child_records > 0 and p.covered > 0 and p.child_records > p.covered, p
    assert p.records > p.child_records
    assert len(p.by_state) >= 3 and len(p.per_category) >= 3, p
    assert c.messages_to_minors > c.from_strangers > c.delivered_against_rule > 0, c
    assert c.blocked_attempts > 0, c
    assert e.pushed > e.beyond > 0, e
    reasons = {r.split(":", 1)[0] for r in e.by_reason}
    assert reasons == {"consent", "flag"}, e.by_reason
    assert len(c.decisions) >= 3, c.decisions
    assert ref.games[0] > ref.games[1] > 0, ref.games
    # the samples are full (SAMPLE) or, untruncated, longer than a truncated one would be
    for rows in (p.sample, c.sample, e.sample):
        assert len(rows) == sample if sample <= 3 else len(rows) > 3


def test_the_schedule_covers_every_size_with_and_without_truncation() -> None:
    assert store_audit.SAMPLE == FULL
    assert {rows for _, pairs in SCHEDULE.values() for _, rows in pairs} == set(SIZES)
    for sample in (3, FULL):
        sizes = {rows for _, pairs in SCHEDULE.values() for s, rows in pairs if s == sample}
        assert len(sizes) >= 3 and 10**9 in sizes and min(sizes) <= 2, (sample, sizes)


@pytest.mark.parametrize("seed", SEEDS)
def test_sliced_evidence_is_the_one_pass_evidence(
    session_maker: sessionmaker[Session], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    scale, pairs = SCHEDULE[seed]
    world = build_world(session_maker, seed, scale)
    for sample in (FULL, 3):
        monkeypatch.setattr(qinglang.store.audit, "SAMPLE", sample)
        with session_maker() as s:
            ref = _one_pass(s, world.platform_id)
            _assert_exercised(ref, sample)
            # the platform's decision sample rate (0.01 by default) is not a PerMinor's
            # default, so the readers are seen to record it
            assert ref.contacts.sample_rate != store_audit.Contacts().sample_rate
            for rows in [r for smp, r in pairs if smp == sample]:
                got = _sliced(s, world.platform_id, rows)
                _assert_same(got, ref, f"seed {seed}, SAMPLE {sample}, rows {rows}")


def _grouped(pieces: list[store_audit.PerMinor]) -> tuple[store_audit.PerMinor, ...]:
    """The pieces added left to right, and as two halves summed apart then added."""
    flat = store_audit.PerMinor()
    for piece in pieces:
        flat.add(piece)
    half = len(pieces) // 2
    left, right = store_audit.PerMinor(), store_audit.PerMinor()
    for piece in pieces[:half]:
        left.add(piece)
    for piece in pieces[half:]:
        right.add(piece)
    left.add(right)
    return flat, left


# ---------------------------------------------------------------- the plan


def _keys(s: Session, pid: int) -> dict[str, list[int]]:
    """Each part's keys in the window, read independently of the code under test."""
    in_window = (StoredEvent.platform_id == pid, StoredEvent.at >= W.start, StoredEvent.at < W.end)
    return {
        "processing": list(
            s.scalars(
                select(ProcessingRecord.id).where(
                    ProcessingRecord.platform_id == pid,
                    ProcessingRecord.at >= W.start,
                    ProcessingRecord.at < W.end,
                )
            )
        ),
        "messages": list(
            s.scalars(select(StoredEvent.seq).where(*in_window, StoredEvent.kind == "message"))
        ),
        "impressions": list(
            s.scalars(
                select(StoredEvent.seq).where(
                    *in_window,
                    StoredEvent.kind == "impression",
                    StoredEvent.surface.in_(store_audit.PUSH_SURFACES),
                )
            )
        ),
        "contact_decisions": list(
            s.scalars(
                select(DecisionLog.id).where(
                    DecisionLog.platform_id == pid,
                    DecisionLog.kind == "contact",
                    DecisionLog.at >= W.start,
                    DecisionLog.at < W.end,
                )
            )
        ),
        "games": list(
            s.scalars(
                select(GameSession.id).where(
                    GameSession.platform_id == pid,
                    GameSession.started_at >= W.start,
                    GameSession.started_at < W.end,
                )
            )
        ),
    }


def _check_plan(plan: list[store_audit.Slice], keys: dict[str, list[int]], rows: int) -> None:
    parts = [p.part for p in plan]
    expected_parts = [part for part in store_audit.SLICE_PARTS if keys[part]]
    assert list(dict.fromkeys(parts)) == expected_parts  # in SLICE_PARTS order, grouped
    for part in store_audit.SLICE_PARTS:
        mine = [p for p in plan if p.part == part]
        found = sorted(keys[part])
        if not found:
            assert mine == []
            continue
        assert all(p.hi > p.lo for p in mine), mine
        assert mine[0].lo == found[0] and mine[-1].hi == found[-1] + 1, (mine[0], mine[-1])
        for a, b in itertools.pairwise(mine):
            assert a.hi == b.lo, (a, b)  # contiguous, hence disjoint
        # about `rows` rows each: the key span (at least as long as the rows) cut evenly
        assert len(mine) == math.ceil(len(found) / rows), (len(mine), len(found), rows)
        for k in found:  # each key in exactly one slice
            assert sum(p.lo <= k < p.hi for p in mine) == 1, k


def test_plan_slices_cover_each_part_with_contiguous_ranges(
    session_maker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(session_maker, SEEDS[1])
    with session_maker() as s:
        keys = _keys(s, world.platform_id)
        assert all(keys.values()), {k: len(v) for k, v in keys.items()}
        for rows in (*SIZES, 3, 40, 1000):
            plan = store_audit.plan_slices(s, world.platform_id, W, rows)
            _check_plan(plan, keys, rows)
        # the keys are sparse (the other platform's rows interleave): some slices hold no row
        plan = store_audit.plan_slices(s, world.platform_id, W, 1)
        held = [sum(p.lo <= k < p.hi for k in keys[p.part]) for p in plan]
        assert 0 in held and max(held) >= 1
        # the other platform is planned over its own rows only
        other = store_audit.plan_slices(s, world.other_id, W, 2)
        other_keys = _keys(s, world.other_id)
        assert not other_keys["impressions"] and other_keys["processing"]
        _check_plan(other, other_keys, 2)
        # slices read one by one and added in plan order, or as two partial totals added
        # (as Spark would collect them), are the one-pass figures
        monkeypatch.setattr(qinglang.store.audit, "SAMPLE", 3)
        ref = _one_pass(s, world.platform_id)
        plan = store_audit.plan_slices(s, world.platform_id, W, 40)
        pieces = [store_audit.read_slice(s, world.platform_id, POLICY, W, p) for p in plan]
    for total in _grouped(pieces):
        # the reader stamps the platform's decision sample rate on the total, as per_minor does
        assert total.contacts.sample_rate == 1.0
        total.contacts.sample_rate = ref.contacts.sample_rate
        _assert_same(total, ref, "grouped")


def test_plan_slices_gives_no_slice_for_a_part_without_rows(
    session_maker: sessionmaker[Session],
) -> None:
    with transaction(session_maker) as s:
        p = repo.create_platform(s, "sparse", "Sparse")
        kid = repo.upsert_account(s, p.id, "kid", birth_date=date(2016, 3, 1))
        for day in (3, 9):
            s.add(
                GameSession(
                    platform_id=p.id, account_id=kid.id, si=f"g{day}",
                    started_at=W.start + timedelta(days=day),
                )
            )  # fmt: skip
        # rows outside the window do not count
        s.add(
            ProcessingRecord(
                platform_id=p.id, account_id=kid.id, purpose="p", category="c",
                at=W.start - timedelta(seconds=1), source="api",
            )
        )  # fmt: skip
        s.add(
            ProcessingRecord(
                platform_id=p.id, account_id=kid.id, purpose="p", category="c",
                at=W.end, source="api",
            )
        )  # fmt: skip
        # an impression the viewer visited is not a pushed one
        raw = {"id": "i", "kind": "impression", "at": (W.start + timedelta(days=1)).isoformat()}
        raw |= {"actor": "kid", "item": "v", "owner": "kid", "surface": "viewed"}
        assert not store_events.ingest(s, p.id, [raw]).rejected
        empty = repo.create_platform(s, "empty", "Empty")
        pid, empty_id = p.id, empty.id
    with session_maker() as s:
        plan = store_audit.plan_slices(s, pid, W, 1)
        assert {x.part for x in plan} == {"games"}
        assert plan[0].lo < plan[-1].hi
        assert store_audit.plan_slices(s, empty_id, W, 5) == []
        got = _sliced(s, pid, 1)
        assert got.games == _one_pass(s, pid).games == (2, 2)


def test_plan_slices_refuses_fewer_than_one_row(session_maker: sessionmaker[Session]) -> None:
    with session_maker() as s:
        for rows in (0, -1, -(10**9)):
            with pytest.raises(ValueError, match="at least 1"):
                store_audit.plan_slices(s, 1, W, rows)


# ---------------------------------------------------------------- the whole audit


@pytest.fixture
def service(
    db_engine: Engine,
    session_maker: sessionmaker[Session],
    data_key: DataKey,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Service]:
    """A service on the test database (migrated by `session_maker`), with its data key."""
    monkeypatch.setenv("QINGLANG_DATA_KEY", data_key.to_b64())
    url = db_engine.url.render_as_string(hide_password=False)
    svc = Service(Settings(db_url=url))
    yield svc
    svc.engine.dispose()


def test_the_audit_is_the_same_with_the_sliced_reader(
    session_maker: sessionmaker[Session], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qinglang.store.audit, "SAMPLE", 3)
    world = build_world(session_maker, SEEDS[2], scale=0.5)
    job = audit_run.RunInput("2026-H1", FIRST, LAST, AS_OF, replay_sample=20)
    with service.tx() as s:
        platform = s.get(Platform, world.platform_id)
        assert platform is not None
        one = audit_run.audit(s, service, platform, job)
        many = audit_run.audit(s, service, platform, job, reader=audit_run.sliced(3))
    # the per-minor evidence tables are there, truncated at SAMPLE
    tables = {t.name: len(t.rows) for t in one.evidence}
    for name in (
        "processing_without_consent",
        "stranger_messages_delivered",
        "exposure_beyond_consent",
    ):
        assert tables.get(name) == 3, tables
    assert many.findings == one.findings
    assert many.evidence == one.evidence
    assert many.charts == one.charts
    assert many == one
