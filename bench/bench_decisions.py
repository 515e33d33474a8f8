"""Benchmark qinglang's hot-path decisions, and the same contact policy in Cedar (cedarpy).

One process, one core, fixed seed. Measures:

1. contact decisions, one at a time: `contact_decision` over ~10,000 accounts aged 6..60;
2. the same contact policy written in Cedar, timed through `cedarpy.is_authorized` (one request
   per call) and `cedarpy.is_authorized_batch` (batches of 100 and 1,000), after checking that
   Cedar and qinglang agree on allow/deny;
3. the batch exposure filter: `filter_candidates` over 500-item candidate lists drawn from a
   1,000,000-item catalogue of which ~1% is flagged, checked item by item against
   `exposure_decision`.

Timings are the best of `--repeats` runs (time.perf_counter, garbage collector paused during a
timed run, as `timeit` does). Targets are reported, not asserted: the exit status is 0 only when
the correctness checks pass.

    .venv/bin/python bench/bench_decisions.py            # default sizes, ~1 minute
    .venv/bin/python bench/bench_decisions.py --n 0.2    # quick run
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from typing import Any

import cedarpy

from qinglang.guard import (
    CONTACT_ACTIONS,
    STRANGERS,
    SURFACES,
    ExposureIndex,
    ItemFlags,
    Profile,
    Relation,
    Viewer,
    build_profile,
    contact_decision,
    explain_filtered,
    exposure_decision,
    filter_candidates,
)
from qinglang.policy import Policy, load_pack

AT = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai
TODAY = date(2025, 6, 1)

CONTACT_TARGET = 300_000.0  # decisions/s, one core
EXPOSURE_TARGET = 5_000_000.0  # candidates/s, one core

# Relation mix of contact requests: (name, share, qinglang Relation).
RELATION_MIX: tuple[tuple[str, float, Relation], ...] = (
    ("stranger", 0.55, STRANGERS),
    ("mutual", 0.30, Relation(mutual=True)),
    ("approved", 0.07, Relation(approved_contact=True)),
    ("guardian", 0.03, Relation(guardian=True)),
    ("blocked", 0.05, Relation(blocked=True)),
)

# ----------------------------------------------------------------------------- Cedar model
#
# Principal = the sender (User), resource = the recipient (User), action = the contact action.
# Each User entity carries `age` (the same whole-years age qinglang's profile holds). How the two
# accounts are related goes in the request context as four booleans, precomputed exactly like
# the qinglang `Relation` passed to `contact_decision` (one shared value per relation kind).
#
# Cedar has only permit/forbid, so qinglang's `needs_guardian` outcomes (friend request from a
# non-friend to a child; gift from a non-friend to a 14-17-year-old) are `forbid` here, and the
# comparison treats qinglang's needs_guardian as deny.

CEDAR_SCHEMA = """
entity User = { age: Long };
type Relation = { blocked: Bool, mutual: Bool, approved: Bool, guardian: Bool };
action follow, dm, comment, mention, friend_request, gift appliesTo {
  principal: User, resource: User, context: Relation
};
"""

CEDAR_POLICIES = """
@id("default.allow")
permit (principal, action, resource);

@id("cn.contact.blocked")
forbid (principal, action, resource) when { context.blocked };

@id("cn.spend.allowed.under8")
forbid (principal, action == Action::"gift", resource) when { principal.age < 8 };

@id("cn.contact.child")
forbid (
  principal,
  action in [Action::"dm", Action::"comment", Action::"mention", Action::"gift",
             Action::"friend_request"],
  resource
)
when { resource.age < 14 }
unless { context.mutual || context.approved || context.guardian };

@id("cn.contact.gift.minor")
forbid (principal, action == Action::"gift", resource)
when { resource.age >= 14 && resource.age < 18 }
unless { context.mutual || context.approved || context.guardian };
"""


def cedar_context(rel: Relation) -> str:
    """The request context for a relation, serialised once (cedarpy accepts a JSON string)."""
    return json.dumps(
        {
            "blocked": rel.blocked,
            "mutual": rel.mutual,
            "approved": rel.approved_contact,
            "guardian": rel.guardian,
        }
    )


def cedar_entity(p: Profile) -> dict[str, Any]:
    return {"uid": {"type": "User", "id": p.account_id}, "attrs": {"age": p.age}, "parents": []}


def cedar_request(action: str, sender: Profile, recipient: Profile, ctx: str) -> dict[str, Any]:
    return {
        "principal": {"type": "User", "id": sender.account_id},
        "action": {"type": "Action", "id": action},
        "resource": {"type": "User", "id": recipient.account_id},
        "context": ctx,
    }


# ----------------------------------------------------------------------------- helpers


def best_of(
    repeats: int, run: Callable[[Any], object], setup: Callable[[], Any] | None = None
) -> float:
    """Best wall time of `repeats` runs of run(setup()); setup is not timed."""
    best = float("inf")
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            run(arg)
            dt = time.perf_counter() - t0
        finally:
            gc.enable()
        best = min(best, dt)
    return best


def chunks(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


@dataclass
class Row:
    name: str
    ops: int
    unit: str
    seconds: float
    target: float | None = None

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    @property
    def status(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.rate >= self.target else "FAIL"


def print_table(rows: list[Row]) -> None:
    print(f"{'benchmark':<52} {'ops':>10} {'best s':>9} {'rate':>14}  {'target':>12}  status")
    print("-" * 110)
    for r in rows:
        target = f"≥{r.target:,.0f}" if r.target is not None else "—"
        print(
            f"{r.name:<52} {r.ops:>10,} {r.seconds:>9.4f} {r.rate:>12,.0f}/s"
            f"  {target:>12}  {r.status}"
        )


# ----------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Account:
    """What a platform stores about an account: enough to (re)build its profile."""

    account_id: str
    born: date
    source: str


def make_accounts(
    policy: Policy, count: int, rng: random.Random
) -> tuple[list[Account], list[Profile]]:
    """Accounts with birth dates spread evenly over ages 6..60 at AT, and their profiles."""
    lo, hi = 6 * 366, 61 * 365 - 1  # days before TODAY: 6 years old .. 60 years old
    sources = ("verified", "guardian_declared", "self_declared")
    raw = [
        Account(f"u{i:05d}", TODAY - timedelta(days=rng.randint(lo, hi)), rng.choice(sources))
        for i in range(count)
    ]
    return raw, [build_profile(policy, a.account_id, a.born, a.source, AT) for a in raw]


def pick_relation(rng: random.Random) -> tuple[str, Relation]:
    x = rng.random()
    for name, share, rel in RELATION_MIX:
        if x < share:
            return name, rel
        x -= share
    return RELATION_MIX[-1][0], RELATION_MIX[-1][2]


# ----------------------------------------------------------------------------- 1 + 2: contact

ContactReq = tuple[str, Profile, Profile, Relation]


def contact_requests(accounts: list[Profile], count: int, rng: random.Random) -> list[ContactReq]:
    out: list[ContactReq] = []
    n = len(accounts)
    for _ in range(count):
        s = rng.randrange(n)
        r = rng.randrange(n - 1)
        r += r >= s  # recipient != sender
        out.append((rng.choice(CONTACT_ACTIONS), accounts[s], accounts[r], pick_relation(rng)[1]))
    return out


def boundary_grid(accounts: list[Profile]) -> list[ContactReq]:
    """Every action × relation × (sender age, recipient age) at the ages where rules change."""
    by_age: dict[int, list[Profile]] = {}
    for p in accounts:
        assert p.age is not None
        by_age.setdefault(p.age, []).append(p)
    ages = (6, 7, 8, 13, 14, 15, 17, 18, 30, 60)
    out: list[ContactReq] = []
    for sa in ages:
        for ra in ages:
            s, r = by_age[sa][0], by_age[ra][-1]
            for action in CONTACT_ACTIONS:
                for _, _, rel in RELATION_MIX:
                    out.append((action, s, r, rel))
    return out


def cedar_reasons(res: cedarpy.AuthzResult) -> list[str]:
    """The @id of each policy that decided a Cedar request."""
    ids = res.diagnostics.id_annotations_by_reason
    return [ids.get(p, p) for p in res.diagnostics.reasons]


def check_agreement(
    reqs: list[ContactReq], ctx: dict[Relation, str], policies: cedarpy.PolicySet, entities: Any
) -> tuple[int, list[str], Counter[str]]:
    """Compare qinglang (allow/limit = allowed) with Cedar single and batched calls."""
    cedar_reqs = [cedar_request(a, s, r, ctx[rel]) for a, s, r, rel in reqs]
    batched = []
    for part in chunks(cedar_reqs, 500):
        batched.extend(cedarpy.is_authorized_batch(list(part), policies, entities))
    agree = 0
    bad: list[str] = []
    outcomes: Counter[str] = Counter()
    for (a, s, r, rel), creq, bres in zip(reqs, cedar_reqs, batched, strict=True):
        d = contact_decision(a, s, r, rel)
        outcomes[d.outcome.value] += 1
        single = cedarpy.is_authorized(creq, policies, entities)
        errors = single.diagnostics.errors + bres.diagnostics.errors
        if d.allowed == single.allowed == bres.allowed and not errors:
            agree += 1
        elif len(bad) < 10:
            bad.append(
                f"{a} {s.age}->{r.age} {rel}: qinglang {d.outcome.value} {d.rule_ids}, "
                f"cedar single {single.decision.value} {cedar_reasons(single)}, "
                f"batch {bres.decision.value}, errors {errors}"
            )
    return agree, bad, outcomes


def bench_contact(
    policy: Policy,
    raw: list[Account],
    accounts: list[Profile],
    args: argparse.Namespace,
    rng: random.Random,
) -> tuple[list[Row], bool, str]:
    print("\n== 1+2. contact decisions: qinglang vs Cedar ==")
    n_q = int(300_000 * args.n)
    n_c = int(20_000 * args.n)
    reqs = contact_requests(accounts, max(n_q, n_c), rng)
    mix = Counter(
        next(name for name, _, rel in RELATION_MIX if rel is req[3]) for req in reqs[:n_q]
    )
    ages = [p.age or 0 for p in accounts]
    children, teens = sum(a < 14 for a in ages), sum(14 <= a < 18 for a in ages)
    print(
        f"accounts: {len(accounts):,} (children <14: {children:,}, minors 14-17: {teens:,}, "
        f"adults: {len(ages) - children - teens:,})"
    )
    print("relation mix: " + ", ".join(f"{k} {v / n_q:.0%}" for k, v in mix.most_common()))

    # qinglang: one call per decision, requests prebuilt (loop overhead included).
    q_reqs = reqs[:n_q]

    def run_q(_: object) -> None:
        f = contact_decision
        for a, s, r, rel in q_reqs:
            f(a, s, r, rel)

    rows = [
        Row(
            "qinglang contact_decision (single)",
            n_q,
            "decisions",
            best_of(args.repeats, run_q),
            CONTACT_TARGET,
        )
    ]

    # Reference only: no cached profiles — both profiles rebuilt from the stored birth date for
    # every request (what a caller that does not keep profiles pays).
    n_cold = max(200, int(10_000 * args.n))
    by_id = {a.account_id: a for a in raw}
    cold = [(a, by_id[s.account_id], by_id[r.account_id], rel) for a, s, r, rel in reqs[:n_cold]]

    def run_q_cold(_: object) -> None:
        f, build = contact_decision, build_profile
        for a, s, r, rel in cold:
            sp = build(policy, s.account_id, s.born, s.source, AT)
            rp = build(policy, r.account_id, r.born, r.source, AT)
            f(a, sp, rp, rel)

    rows.append(
        Row(
            "  ref: build_profile ×2 + contact_decision",
            n_cold,
            "decisions",
            best_of(args.repeats_cedar, run_q_cold),
        )
    )

    # Cedar: policies and entities parsed once into handles (cedarpy's fastest path; entities
    # validated against the schema once, requests evaluated without it); requests prebuilt with
    # their context already serialised.
    schema = cedarpy.Schema.from_str(CEDAR_SCHEMA) if hasattr(cedarpy, "Schema") else CEDAR_SCHEMA
    valid = cedarpy.validate_policies(CEDAR_POLICIES, schema)
    if not valid.validation_passed:
        print("Cedar policies do not validate against the schema:")
        for e in valid.errors:
            print("   ", e)
        return rows, False, "Cedar policies invalid"
    policies = cedarpy.PolicySet.from_str(CEDAR_POLICIES)
    entities = cedarpy.Entities.from_json_str(
        json.dumps([cedar_entity(p) for p in accounts]), schema=schema
    )
    ctx = {rel: cedar_context(rel) for _, _, rel in RELATION_MIX}
    c_reqs = [cedar_request(a, s, r, ctx[rel]) for a, s, r, rel in reqs[:n_c]]

    def run_c_single(_: object) -> None:
        auth = cedarpy.is_authorized
        for req in c_reqs:
            auth(req, policies, entities)

    rows.append(
        Row(
            "cedarpy.is_authorized (single, pre-parsed handles)",
            n_c,
            "decisions",
            best_of(args.repeats_cedar, run_c_single),
        )
    )
    for size in (100, 1000):
        parts = [list(p) for p in chunks(c_reqs, size)]

        def run_c_batch(_: object, parts: list[list[dict[str, Any]]] = parts) -> None:
            batch = cedarpy.is_authorized_batch
            for part in parts:
                batch(part, policies, entities)

        rows.append(
            Row(
                f"cedarpy.is_authorized_batch (batches of {size:,})",
                n_c,
                "decisions",
                best_of(args.repeats_cedar, run_c_batch),
            )
        )

    # Reference only: no handles — policy text parsed on every call, and the two users involved
    # passed as an entity list (the simple way to call cedarpy).
    n_naive = max(200, int(2_000 * args.n))
    naive = [
        (cedar_request(a, s, r, ctx[rel]), [cedar_entity(s), cedar_entity(r)])
        for a, s, r, rel in reqs[:n_naive]
    ]

    def run_c_naive(_: object) -> None:
        auth = cedarpy.is_authorized
        for req, ents in naive:
            auth(req, CEDAR_POLICIES, ents)

    rows.append(
        Row(
            "  ref: is_authorized, policy text + 2-entity list",
            n_naive,
            "decisions",
            best_of(args.repeats_cedar, run_c_naive),
        )
    )

    # Agreement: a random sample of the timed mix, plus every boundary combination.
    sample = reqs[: args.sample]
    grid = boundary_grid(accounts)
    ok = True
    n_agree = n_checked = 0
    for label, checked in (("random sample", sample), ("boundary grid", grid)):
        agree, bad, outcomes = check_agreement(checked, ctx, policies, entities)
        n_agree, n_checked = n_agree + agree, n_checked + len(checked)
        shares = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        print(
            f"Cedar agreement, {label}: {agree:,}/{len(checked):,} agree "
            f"(single and batched; qinglang outcomes: {shares})"
        )
        for line in bad:
            print("   DISAGREE:", line)
        ok = ok and agree == len(checked)
    return rows, ok, f"{n_agree:,}/{n_checked:,} requests agree"


# ----------------------------------------------------------------------------- 3: exposure


@dataclass
class Catalogue:
    index: ExposureIndex
    items: int
    viewers: list[Viewer]


def item_id(k: int) -> str:
    return f"i{k:07d}"


def make_catalogue(
    policy: Policy, accounts: list[Profile], args: argparse.Namespace, rng: random.Random
) -> Catalogue:
    """An index over `args.items` items, ~1% flagged; viewers with friends/following/wards."""
    minors = [p for p in accounts if p.is_minor]
    creators = rng.sample(minors, min(500, len(minors)))  # minors whose items show their PI
    creator_ids = [p.account_id for p in creators]
    account_ids = [p.account_id for p in accounts]

    index = ExposureIndex(policy)
    n_flagged = int(args.items * args.flagged)
    for k in rng.sample(range(args.items), n_flagged):
        iid = item_id(k)
        x = rng.random()
        if x < 0.40:
            consented = rng.choices(
                (None, "owner", "friends", "followers", "public"), (50, 10, 15, 15, 10)
            )[0]
            index.flag_minor_pi(iid, rng.choice(creators), consented)
            if rng.random() < 0.10:  # some also carry a second flag
                f = index.flags[iid]
                index.put(iid, ItemFlags(f.owner_id, f.minor_pi_audience, commercial=True))
        elif x < 0.75:
            below = rng.choice((14, 16, 18))
            index.put(iid, ItemFlags(rng.choice(account_ids), unsuitable_below=below))
        else:
            index.put(iid, ItemFlags(rng.choice(account_ids), commercial=True))

    def people(lo: int, hi: int) -> set[str]:
        k = rng.randint(lo, hi)
        out = set(rng.sample(account_ids, k))
        out.update(rng.sample(creator_ids, max(1, k // 20)))
        return out

    viewers = []
    adults = [p for p in accounts if not p.is_minor]
    for i in range(args.viewers):
        profile = rng.choice(minors if i % 2 else adults)  # half minors, half adults
        friends = people(10, 300)
        following = friends | people(20, 1000)
        wards: frozenset[str] = frozenset()
        if not profile.is_minor and rng.random() < 0.3:
            wards = frozenset(rng.sample(creator_ids, rng.randint(1, 2)))
        viewers.append(Viewer(profile, frozenset(friends), frozenset(following), wards))
    return Catalogue(index, args.items, viewers)


def bench_exposure(
    cat: Catalogue, args: argparse.Namespace, rng: random.Random
) -> tuple[list[Row], bool, str]:
    print("\n== 3. batch exposure filtering ==")
    n_lists = int(2_000 * args.n)
    size = args.list_size
    work = [(rng.choice(cat.viewers), rng.sample(range(cat.items), size)) for _ in range(n_lists)]
    flags = cat.index.flags
    per_list = [sum(item_id(k) in flags for k in ks) for _, ks in work]
    kinds = Counter(
        ("minor_pi " if f.minor_pi_audience is not None else "")
        + ("unsuitable " if f.unsuitable_below is not None else "")
        + ("commercial" if f.commercial else "")
        for f in flags.values()
    )
    minors = sum(v.profile.is_minor for v in cat.viewers)
    print(
        f"catalogue: {cat.items:,} items, {len(flags):,} flagged "
        f"({', '.join(f'{k.strip()} {v:,}' for k, v in kinds.most_common())})"
    )
    print(
        f"viewers: {len(cat.viewers):,} ({minors:,} minors); lists: {n_lists:,} × {size} ids; "
        f"flagged per list: mean {sum(per_list) / n_lists:.2f}, "
        f"lists with ≥1 flagged: {sum(c > 0 for c in per_list) / n_lists:.1%}"
    )

    # Cold: fresh id strings for every run (hashes not yet cached), like ids just decoded from a
    # recommender's response. Warm: the same string objects filtered a second time.
    def fresh() -> list[tuple[Viewer, list[str]]]:
        return [(v, [item_id(k) for k in ks]) for v, ks in work]

    index = cat.index

    def run(lists: list[tuple[Viewer, list[str]]]) -> None:
        fc = filter_candidates
        for v, cands in lists:
            fc(v, cands, index, "recommend")

    warm_lists = fresh()
    run(warm_lists)
    total = n_lists * size
    rows = [
        Row(
            "qinglang filter_candidates, recommend (fresh ids)",
            total,
            "candidates",
            best_of(args.repeats, run, fresh),
            EXPOSURE_TARGET,
        ),
        Row(
            "  same lists again (id hashes cached)",
            total,
            "candidates",
            best_of(args.repeats, run, lambda: warm_lists),
        ),
    ]

    # Correctness: filter output == per-item exposure_decision, on every surface.
    checked = removed = 0
    bad: list[str] = []
    rule_hits: Counter[str] = Counter()
    for v, cands in warm_lists[: args.exposure_sample]:
        for surface in SURFACES:
            got = filter_candidates(v, cands, index, surface)
            want = [c for c in cands if exposure_decision(v, flags.get(c), surface).allowed]
            explained = explain_filtered(v, cands, index, surface)
            for d in explained.values():
                rule_hits.update(d.rule_ids)
            checked += len(cands)
            removed += len(cands) - len(got)
            if (got != want or set(explained) != set(cands) - set(got)) and len(bad) < 10:
                bad.append(f"viewer {v.profile.account_id} surface {surface}")
    n_checks = min(args.exposure_sample, n_lists) * len(SURFACES)
    ok = not bad
    print(
        f"exposure correctness: {n_checks:,} (list, surface) checks, {checked:,} candidates, "
        f"{removed:,} removed, {'all match' if ok else f'{len(bad)}+ MISMATCH'} "
        f"per-item exposure_decision; removals by rule: "
        + ", ".join(f"{k} {v:,}" for k, v in rule_hits.most_common())
    )
    for line in bad:
        print("   MISMATCH:", line)
    return rows, ok, f"{n_checks - len(bad):,}/{n_checks:,} (list, surface) checks match"


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=float, default=1.0, help="scale the timed workloads (default 1)")
    ap.add_argument("--repeats", type=int, default=7, help="repeats for qinglang timings")
    ap.add_argument("--repeats-cedar", type=int, default=3, help="repeats for Cedar timings")
    ap.add_argument("--seed", type=int, default=20250601)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=1_000_000, help="catalogue size")
    ap.add_argument("--flagged", type=float, default=0.01, help="flagged share of the catalogue")
    ap.add_argument("--viewers", type=int, default=1_000)
    ap.add_argument("--list-size", type=int, default=500)
    ap.add_argument("--sample", type=int, default=2_000, help="Cedar agreement sample")
    ap.add_argument("--exposure-sample", type=int, default=500, help="lists checked per surface")
    args = ap.parse_args(argv)

    print(
        f"qinglang {version('qinglang')}, cedarpy {version('cedarpy')}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, one process / one core"
    )
    print(
        f"seed {args.seed}, --n {args.n}, best of {args.repeats} (qinglang) / "
        f"{args.repeats_cedar} (Cedar) runs, gc paused while timing"
    )
    rng = random.Random(args.seed)
    policy = load_pack("cn")
    t0 = time.perf_counter()
    raw, accounts = make_accounts(policy, args.accounts, rng)
    print(f"built {len(accounts):,} profiles in {time.perf_counter() - t0:.2f} s")

    contact_rows, cedar_ok, cedar_detail = bench_contact(policy, raw, accounts, args, rng)
    t0 = time.perf_counter()
    cat = make_catalogue(policy, accounts, args, rng)
    print(f"\nbuilt exposure index in {time.perf_counter() - t0:.2f} s")
    exposure_rows, exposure_ok, exposure_detail = bench_exposure(cat, args, rng)

    rows = contact_rows + exposure_rows
    print("\n== results ==")
    print_table(rows)

    q, q_cold = contact_rows[0], contact_rows[1]
    print("\nqinglang / Cedar (decisions per second, same request mix):")
    for r in contact_rows[2:5]:
        print(f"   qinglang (cached profiles) vs {r.name.strip():<50} {q.rate / r.rate:>7.1f}×")
    print(
        f"   qinglang (profiles rebuilt per request) vs Cedar (entities per request) "
        f"{q_cold.rate / contact_rows[5].rate:>12.1f}×"
    )

    e = exposure_rows[0]
    cedar_best = max(contact_rows[2:5], key=lambda r: r.rate)

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print("\n== summary ==")
    print(
        f"1. contact decisions, qinglang  {q.rate:>13,.0f} decisions/s   "
        f"target ≥ {CONTACT_TARGET:>9,.0f}/s  {q.status}"
    )
    print(
        f"2. contact decisions, Cedar     {cedar_best.rate:>13,.0f} decisions/s   "
        f"no target (best cedarpy path: {cedar_best.name.strip()}); "
        f"qinglang/Cedar {q.rate / cedar_best.rate:.1f}×"
    )
    print(
        f"3. exposure filter, qinglang    {e.rate:>13,.0f} candidates/s  "
        f"target ≥ {EXPOSURE_TARGET:>9,.0f}/s  {e.status}"
    )
    print(f"   Cedar/qinglang agreement     {cedar_detail:<60}  {verdict(cedar_ok)}")
    print(f"   exposure filter correctness  {exposure_detail:<60}  {verdict(exposure_ok)}")
    print("(timing targets are reported, not asserted; the exit status reflects correctness only)")
    return 0 if cedar_ok and exposure_ok else 1


if __name__ == "__main__":
    sys.exit(main())
