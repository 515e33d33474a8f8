"""Benchmark: do decisions that read recorded consents stay within 20% of the core bar?

One process, one core, fixed seed. The same requests are decided twice in the same run: with
profiles that keep no consent records (`UNTRACKED`: the core bar of bench_decisions.py) and
with profiles carrying a consent snapshot (`ConsentView`: what the API builds from the consent
records, cached by consent version). Measured:

1. contact decisions (`contact_decision`), 10,000 accounts aged 6..60;
2. the batch exposure filter over a 1,000,000-item catalogue, 1% flagged, where the index is
   built from the owners' consented audiences;
3. collection decisions: the consent state given by the caller (core) vs read from the snapshot;
4. the cost of a consent change: rebuilding one profile with its snapshot (what the first
   decision after a withdrawal pays), and reading a snapshot from SQLite.

Targets: each tracked rate ≥ 0.8 × the untracked rate of the same run. Reported, not asserted.

    .venv/bin/python bench/bench_consent.py            # ~1 minute
    .venv/bin/python bench/bench_consent.py --n 0.2    # quick run
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from qinglang.guard import (
    CATEGORIES,
    CONTACT_ACTIONS,
    ConsentView,
    ExposureIndex,
    Grant,
    Profile,
    Relation,
    Viewer,
    build_profile,
    collection_decision,
    consent_state,
    contact_decision,
    filter_candidates,
)
from qinglang.guard.consents import PUBLISH, RECOMMEND, STRANGER_MESSAGES
from qinglang.policy import Policy, load_pack

AT = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
TODAY = date(2025, 6, 1)
RATIO_TARGET = 0.8
RELATIONS = (
    Relation(),
    Relation(mutual=True),
    Relation(approved_contact=True),
    Relation(blocked=True),
)
PURPOSES = ("nearby", "face_unlock", "contacts_sync")
OPEN_DMS = {"contact.dm_from_non_friends": "allow"}


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """Best wall time of `repeats` runs, garbage collector paused while timing."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        finally:
            gc.enable()
    return best


def best_pair(
    repeats: int, run_a: Callable[[], object], run_b: Callable[[], object]
) -> tuple[float, float]:
    """Best times of two workloads timed alternately (a, b, a, b, ...) so that load from
    elsewhere on the machine falls on both alike."""
    a = b = float("inf")
    for _ in range(repeats):
        a = min(a, best_of(1, run_a))
        b = min(b, best_of(1, run_b))
    return a, b


def random_view(rng: random.Random, version: int) -> ConsentView:
    """A child's snapshot: some purposes granted, some stale, as a guardian might leave them."""
    grants: dict[tuple[str, str], Grant] = {}
    stale: set[tuple[str, str]] = set()
    pairs = [PUBLISH, RECOMMEND, STRANGER_MESSAGES] + [
        (p, c) for p in PURPOSES for c in CATEGORIES[:3]
    ]
    for pair in pairs:
        x = rng.random()
        if x < 0.45:
            grants[pair] = Grant("guardian", rng.choice((2, 3, 4)))
        elif x < 0.55:
            stale.add(pair)
    return ConsentView(version, grants, frozenset(stale))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=float, default=1.0, help="scale the timed workloads")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    policy = load_pack("cn")

    lo, hi = 6 * 366, 61 * 365 - 1
    births = [
        (f"u{i:05d}", TODAY - timedelta(days=rng.randint(lo, hi))) for i in range(args.accounts)
    ]
    # Half the guardians opened direct messages from non-friends in the settings: for those
    # children the recorded consent decides.
    child_born_after = TODAY.replace(year=TODAY.year - 14)
    settings = [
        OPEN_DMS if b > child_born_after and rng.random() < 0.5 else None for _, b in births
    ]
    plain = [
        build_profile(policy, a, b, "verified", AT, st)
        for (a, b), st in zip(births, settings, strict=True)
    ]
    views = [random_view(rng, i) for i in range(args.accounts)]
    tracked = [
        build_profile(policy, a, b, "verified", AT, st, v)
        for (a, b), st, v in zip(births, settings, views, strict=True)
    ]
    children = sum(p.is_child for p in plain)
    print(
        f"qinglang consent benchmark: {args.accounts:,} accounts ({children:,} children), "
        f"seed {args.seed}"
    )
    rows: list[tuple[str, float, float, str]] = []

    # 1. contact
    n = int(300_000 * args.n)
    idx = [
        (
            rng.choice(CONTACT_ACTIONS),
            rng.randrange(args.accounts),
            rng.randrange(args.accounts),
            rng.choice(RELATIONS),
        )
        for _ in range(n)
    ]
    reqs_plain = [(a, plain[s], plain[r], rel) for a, s, r, rel in idx]
    reqs_tracked = [(a, tracked[s], tracked[r], rel) for a, s, r, rel in idx]

    def contact(reqs: list[tuple[str, Profile, Profile, Relation]]) -> Callable[[], None]:
        def run() -> None:
            f = contact_decision
            for a, s, r, rel in reqs:
                f(a, s, r, rel)

        return run

    t_plain, t_tracked = best_pair(args.repeats, contact(reqs_plain), contact(reqs_tracked))
    changed = sum(
        contact_decision(*q).outcome != contact_decision(*p).outcome
        for p, q in zip(reqs_plain[:20000], reqs_tracked[:20000], strict=True)
    )
    rows.append(
        (
            "contact_decision",
            n / t_plain,
            n / t_tracked,
            f"decisions; {changed:,}/20,000 outcomes changed by consent",
        )
    )

    # 2. exposure filter
    minors = [i for i, p in enumerate(plain) if p.is_minor]
    flagged = rng.sample(range(args.items), args.items // 100)
    owners = [rng.choice(minors) for _ in flagged]

    def index_for(profiles: list[Profile]) -> ExposureIndex:
        ix = ExposureIndex(policy)
        for k, o in zip(flagged, owners, strict=True):
            ix.flag_minor_pi(f"i{k:07d}", profiles[o], None)
        return ix

    ix_plain, ix_tracked = index_for(plain), index_for(tracked)
    n_lists, size = int(2_000 * args.n), 500
    viewer_ids = rng.sample(range(args.accounts), 200)
    owner_ids = [plain[o].account_id for o in owners]
    lists = []
    for _ in range(n_lists):
        v = rng.choice(viewer_ids)
        friends = frozenset(rng.sample(owner_ids, 20))
        following = friends | frozenset(rng.sample(owner_ids, 100))
        lists.append(
            (v, friends, following, [f"i{k:07d}" for k in rng.sample(range(args.items), size)])
        )

    def exposure(profiles: list[Profile], ix: ExposureIndex) -> Callable[[], None]:
        work = [(Viewer(profiles[v], f, g), c) for v, f, g, c in lists]

        def run() -> None:
            fc = filter_candidates
            for viewer, cands in work:
                fc(viewer, cands, ix, "recommend")

        return run

    e_plain, e_tracked = best_pair(
        args.repeats, exposure(plain, ix_plain), exposure(tracked, ix_tracked)
    )
    total = n_lists * size
    pushed = sum(f.push_audience is not None for f in ix_tracked.flags.values())
    rows.append(
        (
            "filter_candidates (recommend)",
            total / e_plain,
            total / e_tracked,
            f"candidates; {pushed:,} items bounded by a recommend consent",
        )
    )

    # 3. collection
    m = int(200_000 * args.n)
    creq = [
        (rng.randrange(args.accounts), rng.choice(CATEGORIES[:3]), rng.choice(PURPOSES))
        for _ in range(m)
    ]
    # The caller hands in exactly the consent state the snapshot holds: same outcomes, so the
    # difference is the look-up alone.
    given = [consent_state(tracked[a], c, p) for a, c, p in creq]

    def coll_plain() -> None:
        f = collection_decision
        for (a, c, p), g in zip(creq, given, strict=True):
            f(plain[a], c, p, g)

    def coll_tracked() -> None:
        f = collection_decision
        for a, c, p in creq:
            f(tracked[a], c, p)

    c_plain, c_tracked = best_pair(args.repeats, coll_plain, coll_tracked)
    rows.append(
        (
            "collection_decision",
            m / c_plain,
            m / c_tracked,
            "decisions (consent given by caller vs read from snapshot)",
        )
    )

    print(
        f"\n{'decision':<32} {'core (untracked)':>18} {'with consents':>16} {'ratio':>7}"
        f"  target ≥ {RATIO_TARGET}"
    )
    ok_all = True
    for name, a, b, note in rows:
        ratio = b / a
        ok_all &= ratio >= RATIO_TARGET
        print(
            f"{name:<32} {a:>16,.0f}/s {b:>14,.0f}/s {ratio:>7.2f}  "
            f"{'PASS' if ratio >= RATIO_TARGET else 'FAIL'}  {note}"
        )

    # 4. cost of a consent change
    k = min(args.accounts, int(20_000 * args.n))
    sample = [(births[i], views[i]) for i in rng.sample(range(args.accounts), k)]

    def rebuild() -> None:
        for (a, b), v in sample:
            build_profile(policy, a, b, "verified", AT, consents=v)

    t_rebuild = best_of(3, rebuild) / k
    t_read = snapshot_read_seconds(policy, int(2_000 * args.n))
    print(
        f"\nafter a consent change, the next decision rebuilds the profile: "
        f"{t_rebuild * 1e6:.1f} µs "
        f"+ reading the snapshot from SQLite: {t_read * 1e6:.0f} µs (once per change per worker)"
    )
    print("summary: " + ("PASS" if ok_all else "FAIL") + " (timing targets reported, not asserted)")
    return 0


def snapshot_read_seconds(policy: Policy, reads: int) -> float:
    """Mean time to read one account's consent snapshot from a SQLite file."""
    from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
    from qinglang.store.consents import consent_view, publish_notice, record_consent
    from qinglang.store.crypto import DataKey

    with tempfile.TemporaryDirectory() as d:
        engine = make_engine(f"sqlite:///{Path(d) / 'b.db'}", data_key=DataKey.generate())
        upgrade(engine)
        factory = session_factory(engine)
        items = [
            {
                "purpose": p,
                "categories": ["child_content", "location"],
                "method": "m",
                "scope": "s",
                "audience": "public",
            }
            for p in ("publish_content", "recommend_content", "nearby")
        ]
        elements = {
            e: "x" for e in policy.require("consent.notice_required_elements", 0).value or []
        }  # type: ignore[union-attr]
        with transaction(factory) as s:
            platform = repo.create_platform(s, "bench", "Bench")
            notice = publish_notice(
                s,
                platform,
                policy,
                "zh",
                "child",
                {"title": "t", "elements": elements, "items": items},
                "bench",
            ).notice
            accounts = []
            for i in range(200):
                acc = repo.upsert_account(
                    s, platform.id, f"c{i}", birth_date=date(2016, 1, 1), age_source="verified"
                )
                for it in items:
                    record_consent(
                        s,
                        platform,
                        acc,
                        purpose=str(it["purpose"]),
                        category="child_content",
                        status="granted",
                        given_by="self",
                        guardian=None,
                        notice=notice,
                    )
                accounts.append(acc.id)
        from qinglang.store.models import Account

        def read() -> Any:
            with transaction(factory) as s:
                for i in range(reads):
                    consent_view(s, s.get(Account, accounts[i % len(accounts)]))  # type: ignore[arg-type]

        t = best_of(3, read) / reads
        engine.dispose()
        return t


if __name__ == "__main__":
    sys.exit(main())
