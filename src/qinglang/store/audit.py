"""The audit's reads over qinglang's records: what was processed, contacted and shown, and
under which consents, in a period; plus the import of a platform's historical logs.

Every function reads in the caller's transaction and returns plain figures and capped samples
of identifiers (account ids, never names or birth dates); ``qinglang.audit.checks`` turns them
into findings. Work is chunked so that a platform of a million accounts and ten million logged
decisions is read in bounded memory (bench/bench_audit.py): aggregates run in SQL, and only the
accounts that can be minors in the period are held in memory with their birth dates.
"""

from __future__ import annotations

import itertools
import json
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    String,
    Table,
    and_,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session

from qinglang.age.ages import age_at
from qinglang.age.suspicion import effective_age, suspected_age_of
from qinglang.policy import AUDIENCES, Policy
from qinglang.risk.events import EventError
from qinglang.store import events as store_events
from qinglang.store.models import (
    Account,
    AgeAssessment,
    Alert,
    ContentFlag,
    ContentItem,
    DecisionLog,
    GameSession,
    ImpactAssessment,
    LedgerEntry,
    Platform,
    ProcessingRecord,
    Relationship,
    ReviewAction,
    RightsRequest,
    StoredEvent,
)

KeyRange = tuple[int, int]
"""Ids or sequence numbers [lo, hi) of one slice of a table (see `Slice`)."""
CHUNK: Final = 5_000
SAMPLE: Final = 200
"""Rows of evidence kept per finding (the total is always counted)."""
PUSH_SURFACES: Final = ("recommended", "searched")
"""Impression surfaces where the platform chose to show the item (not the viewer's own visit)."""
CONSENT_KINDS: Final = ("consent.granted", "consent.refused", "consent.withdrawn", "consent.stale")
AUDIENCE_ORDER: Final = AUDIENCES
"""Audience levels, narrowest first (as the guard's exposure decisions)."""
IMPORT_SOURCE: Final = "import"
MINOR_FLAGS: Final = ("minor_pi", "shows_minor")
"""Content flags that mark an item as showing a minor."""


class ImportError_(ValueError):
    """A historical-log line that cannot be imported; `line` and `field` say where."""

    def __init__(self, line: int, field: str, message: str) -> None:
        super().__init__(f"line {line}: {field}: {message}")
        self.line = line
        self.field = field


# ---------------------------------------------------------------- the period


@dataclass(frozen=True, slots=True)
class Window:
    """The audited period as UTC instants [start, end), cut at `as_of`."""

    start: datetime
    end: datetime
    as_of: datetime

    def contains(self, at: datetime) -> bool:
        """Whether an instant falls in the window."""
        return self.start <= at < self.end


def window(
    policy: Policy, first: date, last: date, as_of: datetime, since: datetime | None = None
) -> Window:
    """The window from `first` to `last` (inclusive days in the pack's zone), cut at `as_of`
    (and starting at `since` if that is later, e.g. the day a rectification took effect)."""
    tz = policy.tz
    start = datetime.combine(first, time(), tz).astimezone(UTC)
    if since is not None:
        start = max(start, since.astimezone(UTC))
    end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
    return Window(start, min(end, as_of), as_of)


def _in_window(
    mine: Any, at: Any, w: Window, key: Any, keys: KeyRange | None, *more: Any
) -> tuple[Any, ...]:
    """Conditions: the platform's rows (`mine`), `more`, `at` in the window, and `key` in the
    range `keys` if given (a slice)."""
    where: tuple[Any, ...] = (mine, *more, at >= w.start, at < w.end)
    if keys is not None:
        where += (key >= keys[0], key < keys[1])
    return where


# ---------------------------------------------------------------- who can be a minor


@dataclass(slots=True)
class Minors:
    """Accounts that can be minors at some time in the window, with their effective birth date
    (stored age, else a suspected age from the age assessment)."""

    policy: Policy
    birth: dict[int, date] = field(default_factory=dict)
    by_external: dict[str, int] = field(default_factory=dict)
    external: dict[int, str] = field(default_factory=dict)
    day_after: bool = False
    platform_id: int = 0
    table: Table | None = None
    """A temporary table of the candidates' ids, for joins (made on first use, per session)."""
    timelines: dict[str, Timeline] | None = None
    """Every candidate's consent history (read once, on first use)."""
    edges: dict[tuple[int, int], dict[str, datetime]] | None = None
    """Every follow and approved contact touching a candidate (read once, on first use)."""

    def age(self, account_id: int, at: datetime) -> int | None:
        """The account's age at `at` (None: not a minor candidate or no known age)."""
        born = self.birth.get(account_id)
        if born is None:
            return None
        return age_at(born, at, self.policy.tz, counts_from_day_after=self.day_after)

    def below(self, account_id: int, at: datetime, limit: int) -> bool:
        """Whether the account is younger than `limit` years at `at`."""
        a = self.age(account_id, at)
        return a is not None and a < limit


def load_minors(
    session: Session,
    platform_id: int,
    policy: Policy,
    w: Window,
    among: Any | None = None,
) -> Minors:
    """Read every account with a birth date or an age assessment once, or only those `among`
    selects (a condition on `Account`, e.g. the accounts a slice names, read in one streamed
    semi-join), and keep those under the minor age during the window."""
    minor_below = int(policy.require("age.minor_below").value)  # type: ignore[arg-type]
    counting = policy.rule("age.counting", None)
    out = Minors(
        policy,
        day_after=counting is not None and counting.value == "day_after_birthday",
        platform_id=platform_id,
    )
    today = w.as_of.astimezone(policy.tz).date()
    stmt = (
        select(
            Account.id,
            Account.external_id,
            Account.birth_date,
            Account.age_source,
            AgeAssessment.state,
            AgeAssessment.suspected_child,
        )
        .outerjoin(AgeAssessment, AgeAssessment.account_id == Account.id)
        .where(
            Account.platform_id == platform_id,
            # no birth date and no assessment: no age to judge (the rest is read)
            (Account.birth_date.is_not(None)) | (AgeAssessment.account_id.is_not(None)),
        )
    )
    if among is not None:
        rows: Iterable[Any] = session.execute(
            stmt.where(among).execution_options(yield_per=CHUNK * 4)
        )
    else:
        rows = _keyset(session, stmt)
    for aid, ext, born, source, state, suspected_child in rows:
        suspected = suspected_age_of(state, suspected_child)
        if born is None and suspected is None:
            continue
        birth, _ = effective_age(born, source, suspected, today)
        if birth is None:
            continue
        if age_at(birth, w.start, policy.tz, counts_from_day_after=out.day_after) >= minor_below:
            continue
        out.birth[int(aid)] = birth
        out.by_external[str(ext)] = int(aid)
        out.external[int(aid)] = str(ext)
    return out


def _keyset(session: Session, stmt: Any) -> Iterator[Any]:
    """The accounts `stmt` selects, in id order, CHUNK at a time (each chunk its own query)."""
    after = 0
    while True:
        rows = session.execute(
            stmt.where(Account.id > after).order_by(Account.id).limit(CHUNK)
        ).all()
        if not rows:
            return
        yield from rows
        after = int(rows[-1][0])


def minors_table(session: Session, minors: Minors) -> Table:
    """The candidates' ids as a temporary table on the session's connection (made once)."""
    if minors.table is not None:
        return minors.table
    table = Table(
        f"audit_minors_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("id", BigInteger, primary_key=True),
        Column("ext", String(255), nullable=False),
        prefixes=["TEMPORARY"],
    )
    table.create(session.connection())
    rows = [{"id": i, "ext": e} for i, e in sorted(minors.external.items())]
    for i in range(0, len(rows), CHUNK * 4):
        session.execute(insert(table), rows[i : i + CHUNK * 4])
    minors.table = table
    return table


def drop_minors_table(session: Session, minors: Minors) -> None:
    """Drop the candidates' temporary table, if one was made."""
    if minors.table is not None:
        minors.table.drop(session.connection())
        minors.table = None


# ---------------------------------------------------------------- consent history


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A purpose × category consent as it stood at an instant."""

    status: str
    """granted, refused, withdrawn, stale, or none (no record yet)."""
    given_by: str | None = None
    audience: str | None = None

    @property
    def valid_guardian(self) -> bool:
        """A grant by the guardian that was not stale."""
        return self.status == "granted" and self.given_by == "guardian"


NO_CONSENT: Final = ConsentState("none")
Timeline = dict[tuple[str, str], list[tuple[datetime, ConsentState]]]


def _timelines(rows: Iterable[Any]) -> dict[str, Timeline]:
    """Consent histories from ledger rows (subject, kind, body, at) read in sequence order."""
    out: dict[str, Timeline] = {}
    for subject, kind, body, at in rows:
        data = json.loads(body)["data"]
        line = out.setdefault(str(subject), {})
        if kind == "consent.stale":
            for purpose, category in data.get("pairs", []):
                line.setdefault((purpose, category), []).append((at, ConsentState("stale")))
            continue
        state = ConsentState(kind.split(".", 1)[1], data.get("given_by"), data.get("audience"))
        line.setdefault((data["purpose"], data["category"]), []).append((at, state))
    return out


def minor_timelines(session: Session, minors: Minors) -> dict[str, Timeline]:
    """Every candidate's consent history, read once in one join with the ledger."""
    if minors.timelines is None:
        table = minors_table(session, minors)
        rows = session.execute(
            select(LedgerEntry.subject, LedgerEntry.kind, LedgerEntry.body, LedgerEntry.at)
            .join(table, table.c.ext == LedgerEntry.subject)
            .where(
                LedgerEntry.platform_id == minors.platform_id,
                LedgerEntry.kind.in_(CONSENT_KINDS),
            )
            .order_by(LedgerEntry.seq)
            .execution_options(yield_per=CHUNK * 4)
        )
        minors.timelines = _timelines(rows)
    return minors.timelines


def state_at(timeline: Timeline | None, purpose: str, category: str, at: datetime) -> ConsentState:
    """The consent for purpose × category as it stood at `at` (the last change at or before)."""
    if not timeline:
        return NO_CONSENT
    current = NO_CONSENT
    for when, state in timeline.get((purpose, category), ()):
        if when > at:
            break
        current = state
    return current


# ---------------------------------------------------------------- processing under consent


@dataclass(slots=True)
class Processing:
    """Processing of children's information in the window, judged against consent at the time."""

    records: int = 0
    """Processing records of the platform in the window (every account)."""
    child_records: int = 0
    covered: int = 0
    by_state: Counter[str] = field(default_factory=Counter)
    """Child records without a valid guardian grant, by the consent's state then."""
    children: set[int] = field(default_factory=set)
    uncovered_children: set[int] = field(default_factory=set)
    per_category: dict[str, list[int]] = field(default_factory=dict)
    """category → [child records, covered]."""
    sample: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    """(account, purpose, category, at, consent state) of uncovered child records."""

    def add(self, other: Processing) -> None:
        """Add the figures of a later slice (its records come after this one's)."""
        self.records += other.records
        self.child_records += other.child_records
        self.covered += other.covered
        self.by_state.update(other.by_state)
        self.children |= other.children
        self.uncovered_children |= other.uncovered_children
        for cat, (n, covered) in other.per_category.items():
            mine = self.per_category.setdefault(cat, [0, 0])
            mine[0] += n
            mine[1] += covered
        self.sample.extend(other.sample[: SAMPLE - len(self.sample)])


def _processing_where(platform_id: int, w: Window, ids: KeyRange | None) -> tuple[Any, ...]:
    """The platform's processing records in the window (and in the id range, if given)."""
    r = ProcessingRecord
    return _in_window(r.platform_id == platform_id, r.at, w, r.id, ids)


def processing(
    session: Session,
    platform_id: int,
    policy: Policy,
    w: Window,
    minors: Minors,
    ids: KeyRange | None = None,
) -> Processing:
    """Every child's processing record in the window (with a record id in `ids`, if given),
    with the consent as it stood then."""
    child_below = int(policy.require("age.child_below").value)  # type: ignore[arg-type]
    out = Processing()
    where = _processing_where(platform_id, w, ids)
    out.records = int(session.scalar(select(func.count(ProcessingRecord.id)).where(*where)) or 0)
    table = minors_table(session, minors)
    rows = session.execute(
        select(
            ProcessingRecord.account_id,
            ProcessingRecord.purpose,
            ProcessingRecord.category,
            ProcessingRecord.at,
        )
        .join(table, table.c.id == ProcessingRecord.account_id)
        .where(*where)
        .order_by(ProcessingRecord.id)
        .execution_options(yield_per=CHUNK * 4)
    )
    kept: list[tuple[int, str, str, datetime]] = [
        (int(aid), str(purpose), str(category), at)
        for aid, purpose, category, at in rows
        if minors.below(int(aid), at, child_below)
    ]
    lines = minor_timelines(session, minors) if kept else {}
    for aid, purpose, category, at in kept:
        ext = minors.external[int(aid)]
        state = state_at(lines.get(ext), purpose, category, at)
        out.child_records += 1
        out.children.add(int(aid))
        cat = out.per_category.setdefault(category, [0, 0])
        cat[0] += 1
        if state.valid_guardian:
            out.covered += 1
            cat[1] += 1
            continue
        reason = state.status if state.status != "granted" else "self"
        out.by_state[reason] += 1
        out.uncovered_children.add(int(aid))
        if len(out.sample) < SAMPLE:
            out.sample.append((ext, purpose, category, iso_z(at), reason))
    return out


# ---------------------------------------------------------------- contact with minors


@dataclass(slots=True)
class Contacts:
    """Direct messages to minors in the window, and the contact decisions qinglang logged."""

    messages_to_minors: int = 0
    """Messages delivered to minors (attempts the platform blocked are counted apart)."""
    blocked_attempts: int = 0
    """Messages to minors that the platform reported as blocked (``delivered: false``)."""
    from_strangers: int = 0
    delivered_against_rule: int = 0
    """Stranger messages delivered although the pack's rule for the recipient's age says deny
    or needs the guardian."""
    senders: set[str] = field(default_factory=set)
    recipients: set[str] = field(default_factory=set)
    by_rule: Counter[str] = field(default_factory=Counter)
    sample: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(sender, recipient, at, rule id) of delivered stranger messages against the rule."""
    decisions: dict[str, int] = field(default_factory=dict)
    """Logged contact decisions towards minors in the window, by outcome."""
    sample_rate: float = 1.0

    def add(self, other: Contacts) -> None:
        """Add the figures of a later slice (its messages come after this one's)."""
        self.messages_to_minors += other.messages_to_minors
        self.blocked_attempts += other.blocked_attempts
        self.from_strangers += other.from_strangers
        self.delivered_against_rule += other.delivered_against_rule
        self.senders |= other.senders
        self.recipients |= other.recipients
        self.by_rule.update(other.by_rule)
        self.sample.extend(other.sample[: SAMPLE - len(self.sample)])
        self.decisions = _add_counts(self.decisions, other.decisions)


def _edges_before(
    session: Session, platform_id: int, recipients: Sequence[int]
) -> dict[tuple[int, int], dict[str, datetime]]:
    """Edges touching these accounts: (child, other) → {follow_in, follow_out, approved}: since."""
    out: dict[tuple[int, int], dict[str, datetime]] = defaultdict(dict)
    rows = session.execute(
        select(
            Relationship.src_account_id,
            Relationship.dst_account_id,
            Relationship.kind,
            Relationship.created_at,
        ).where(
            Relationship.platform_id == platform_id,
            (Relationship.src_account_id.in_(recipients))
            | (Relationship.dst_account_id.in_(recipients)),
        )
    ).all()
    wanted = set(recipients)
    for src, dst, kind, since in rows:
        if kind == "block":
            continue
        if dst in wanted:
            _edge(
                out[(int(dst), int(src))],
                "follows_child" if kind == "follow" else "approved",
                since,
            )
        if src in wanted:
            _edge(
                out[(int(src), int(dst))],
                "child_follows" if kind == "follow" else "approved",
                since,
            )
    return out


def _edge(edges: dict[str, datetime], name: str, since: datetime) -> None:
    """Record an edge's start; an approved contact in both directions counts from the first."""
    if name not in edges or since < edges[name]:
        edges[name] = since


def minor_edges(session: Session, minors: Minors) -> dict[tuple[int, int], dict[str, datetime]]:
    """Every follow and approved contact touching a candidate, read once (two joins)."""
    if minors.edges is None:
        table = minors_table(session, minors)
        out: dict[tuple[int, int], dict[str, datetime]] = defaultdict(dict)
        cols = (
            Relationship.src_account_id,
            Relationship.dst_account_id,
            Relationship.kind,
            Relationship.created_at,
        )
        for side in (Relationship.dst_account_id, Relationship.src_account_id):
            rows = session.execute(
                select(*cols)
                .join(table, table.c.id == side)
                .where(Relationship.platform_id == minors.platform_id, Relationship.kind != "block")
                .execution_options(yield_per=CHUNK * 4)
            )
            incoming = side is Relationship.dst_account_id
            for src, dst, kind, since in rows:
                if incoming:
                    name = "follows_child" if kind == "follow" else "approved"
                    _edge(out[(int(dst), int(src))], name, since)
                else:
                    name = "child_follows" if kind == "follow" else "approved"
                    _edge(out[(int(src), int(dst))], name, since)
        minors.edges = out
    return minors.edges


def _known(edges: Mapping[str, datetime], at: datetime) -> bool:
    """Friends (mutual follow) or an approved contact at `at`."""
    if "approved" in edges and edges["approved"] <= at:
        return True
    a, b = edges.get("follows_child"), edges.get("child_follows")
    return a is not None and b is not None and a <= at and b <= at


def _events_where(
    platform_id: int, kind: str, w: Window, seqs: KeyRange | None = None
) -> tuple[Any, ...]:
    """The platform's events of `kind` in the window (and in the sequence range, if given)."""
    e = StoredEvent
    return _in_window(e.platform_id == platform_id, e.at, w, e.seq, seqs, e.kind == kind)


def _events_about_minors(
    session: Session,
    platform_id: int,
    w: Window,
    minors: Minors,
    kind: str,
    column: Any,
    columns: Sequence[Any],
    *where: Any,
    also: Callable[[Any], bool] | None = None,
    seqs: KeyRange | None = None,
) -> Iterator[list[Any]]:
    """Events of `kind` in the window (with a sequence number in `seqs`, if given) whose
    `column` names a minor candidate (or that `also` keeps), with the acting account's id, in
    chunks: one streamed pass over the window (the column has no index)."""
    stmt = (
        select(*columns, Account.id)
        .outerjoin(
            Account,
            and_(Account.platform_id == platform_id, Account.external_id == StoredEvent.actor),
        )
        .where(*_events_where(platform_id, kind, w, seqs), *where)
        .order_by(StoredEvent.seq)
        .execution_options(yield_per=CHUNK * 4)
    )
    index = list(columns).index(column)
    kept: list[Any] = []
    for row in session.execute(stmt):
        if row[index] in minors.by_external or (also is not None and also(row)):
            kept.append(tuple(row))
    for i in range(0, len(kept), CHUNK):
        yield kept[i : i + CHUNK]


def contacts(
    session: Session, platform: Platform, policy: Policy, w: Window, minors: Minors
) -> Contacts:
    """Messages delivered to minors in the window from non-friends, judged by the pack's rule
    for the recipient's age; and the logged contact decisions towards minors."""
    out = contact_messages(session, platform.id, policy, w, minors)
    out.sample_rate = float(platform.decision_sample_rate)
    out.decisions = contact_decisions(session, platform.id, w, minors)
    return out


def contact_messages(
    session: Session,
    platform_id: int,
    policy: Policy,
    w: Window,
    minors: Minors,
    seqs: KeyRange | None = None,
) -> Contacts:
    """Messages to minors in the window (with a sequence number in `seqs`, if given), those
    delivered from non-friends judged by the pack's rule for the recipient's age."""
    out = Contacts()
    minor_below = int(policy.require("age.minor_below").value)  # type: ignore[arg-type]
    cols = (StoredEvent.actor, StoredEvent.target, StoredEvent.at, StoredEvent.delivered)
    for rows in _events_about_minors(
        session, platform_id, w, minors, "message", StoredEvent.target, cols, seqs=seqs
    ):
        edges = minor_edges(session, minors)
        for actor_, target_, at, delivered, sender_id in rows:
            actor, target = str(actor_), str(target_)
            child = minors.by_external[target]
            age = minors.age(child, at)
            if age is None or age >= minor_below:
                continue
            if delivered is False:
                out.blocked_attempts += 1
                continue
            out.messages_to_minors += 1
            if sender_id is not None and _known(edges.get((child, int(sender_id)), {}), at):
                continue
            out.from_strangers += 1
            rule = policy.rule("contact.dm_from_non_friends", age)
            if rule is None or rule.value == "allow":
                continue
            out.delivered_against_rule += 1
            out.by_rule[rule.id] += 1
            out.senders.add(actor)
            out.recipients.add(target)
            if len(out.sample) < SAMPLE:
                out.sample.append((actor, target, iso_z(at), rule.id))
    return out


def _contact_decisions_where(platform_id: int, w: Window, ids: KeyRange | None) -> tuple[Any, ...]:
    """The platform's logged contact decisions in the window (and in the id range, if given)."""
    d = DecisionLog
    return _in_window(d.platform_id == platform_id, d.at, w, d.id, ids, d.kind == "contact")


def contact_decisions(
    session: Session, platform_id: int, w: Window, minors: Minors, ids: KeyRange | None = None
) -> dict[str, int]:
    """Logged contact decisions towards minors in the window (with an id in `ids`, if given),
    by outcome."""
    table = minors_table(session, minors)
    decided: Counter[str] = Counter()
    for outcome, n in session.execute(
        select(DecisionLog.outcome, func.count(DecisionLog.id))
        .join(table, table.c.id == DecisionLog.other_account_id)
        .where(*_contact_decisions_where(platform_id, w, ids))
        .group_by(DecisionLog.outcome)
    ).all():
        decided[str(outcome)] += int(n)
    return dict(sorted(decided.items()))


# ---------------------------------------------------------------- exposure of minors' content


@dataclass(slots=True)
class Exposure:
    """Impressions the platform pushed (recommended, searched) of minors' content in the window."""

    pushed: int = 0
    beyond: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    owners: set[str] = field(default_factory=set)
    sample: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    """(item, owner, viewer, surface, at, reason)."""

    def add(self, other: Exposure) -> None:
        """Add the figures of a later slice (its impressions come after this one's)."""
        self.pushed += other.pushed
        self.beyond += other.beyond
        self.by_reason.update(other.by_reason)
        self.owners |= other.owners
        self.sample.extend(other.sample[: SAMPLE - len(self.sample)])


def _level(name: str | None) -> int:
    return AUDIENCE_ORDER.index(name) if name in AUDIENCE_ORDER else 0


def _flags(
    session: Session, platform_id: int, items: Sequence[str]
) -> dict[str, list[ContentFlag]]:
    out: dict[str, list[ContentFlag]] = defaultdict(list)
    for flag, ext in session.execute(
        select(ContentFlag, ContentItem.external_id)
        .join(ContentItem, ContentItem.id == ContentFlag.item_id)
        .where(ContentItem.platform_id == platform_id, ContentItem.external_id.in_(items))
    ).all():
        out[str(ext)].append(flag)
    return out


def exposure(
    session: Session,
    platform_id: int,
    policy: Policy,
    w: Window,
    minors: Minors,
    seqs: KeyRange | None = None,
) -> Exposure:
    """Pushed impressions (with a sequence number in `seqs`, if given) of content owned by a
    child, or flagged as showing a minor, whose viewer was beyond the audience consented
    (recommend consent) or flagged at the time."""
    from qinglang.guard.consents import RECOMMEND
    from qinglang.guard.exposure import PUSH_WITHOUT_RECOMMEND_CONSENT

    child_below = int(policy.require("age.child_below").value)  # type: ignore[arg-type]
    out = Exposure()
    cols = (
        StoredEvent.item,
        StoredEvent.owner,
        StoredEvent.actor,
        StoredEvent.surface,
        StoredEvent.at,
    )
    flagged = set(
        session.execute(
            select(ContentItem.external_id)
            .join(ContentFlag, ContentFlag.item_id == ContentItem.id)
            .where(
                ContentItem.platform_id == platform_id,
                ContentFlag.kind.in_(MINOR_FLAGS),
            )
        ).scalars()
    )
    for rows in _events_about_minors(
        session,
        platform_id,
        w,
        minors,
        "impression",
        StoredEvent.owner,
        cols,
        StoredEvent.surface.in_(PUSH_SURFACES),
        also=lambda row: row[0] in flagged,
        seqs=seqs,
    ):
        lines = minor_timelines(session, minors)
        marked_items = sorted({str(r[0]) for r in rows if r[0] in flagged})
        flags = _flags(session, platform_id, marked_items) if marked_items else {}
        others = sorted({str(r[1]) for r in rows} - set(minors.by_external))
        owner_ids = {**account_ids(session, platform_id, others), **minors.by_external}
        edges = minor_edges(session, minors)
        extra = [owner_ids[o] for o in others if o in owner_ids]
        adults = _edges_before(session, platform_id, extra) if extra else {}
        for item_, owner_, viewer_, surface_, at, viewer_id in rows:
            item, owner, viewer, surface = str(item_), str(owner_), str(viewer_), str(surface_)
            child = minors.by_external.get(owner)
            is_child = child is not None and minors.below(child, at, child_below)
            marked = [f for f in flags.get(item, []) if f.kind in MINOR_FLAGS]
            if not is_child and not marked:
                continue
            out.pushed += 1
            if viewer == owner or owner not in owner_ids:
                continue
            key = (owner_ids[owner], int(viewer_id)) if viewer_id is not None else None
            e = (edges.get(key) or adults.get(key) or {}) if key is not None else {}
            level = (
                _level("friends")
                if _known(e, at)
                else _level("followers")
                if "follows_child" in e and e["follows_child"] <= at
                else _level("public")
            )
            reason = None
            if is_child:
                state = state_at(lines.get(owner), RECOMMEND[0], RECOMMEND[1], at)
                allowed = (
                    _level(state.audience)
                    if state.valid_guardian
                    else PUSH_WITHOUT_RECOMMEND_CONSENT
                )
                if level > allowed:
                    reason = f"consent:{state.status}"
            for f in marked:
                if f.audience is not None and level > _level(f.audience) and f.created_at <= at:
                    reason = reason or f"flag:{f.kind}"
            if reason is None:
                continue
            out.beyond += 1
            out.by_reason[reason] += 1
            out.owners.add(owner)
            if len(out.sample) < SAMPLE:
                out.sample.append((item, owner, viewer, surface, iso_z(at), reason))
    return out


# ---------------------------------------------------------------- rights, alerts, staff reads


@dataclass(frozen=True, slots=True)
class Rights:
    """Data-rights requests due in the window."""

    due: int
    on_time: int
    late: int
    open_overdue: int
    refused: int
    refused_without_reason: int
    sample: list[tuple[int, str, str, str, str | None]]
    """(request id, kind, status, due, closed) of late or overdue requests."""


def rights(session: Session, platform_id: int, w: Window) -> Rights:
    """Requests due in the window: answered by their due date, late, still open; refusals."""
    rows = session.execute(
        select(
            RightsRequest.id,
            RightsRequest.kind,
            RightsRequest.status,
            RightsRequest.due_at,
            RightsRequest.closed_at,
            RightsRequest.reason,
        ).where(
            RightsRequest.platform_id == platform_id,
            RightsRequest.due_at >= w.start,
            RightsRequest.due_at < w.end,
        )
    ).all()
    on_time = late = overdue = refused = bare = 0
    sample: list[tuple[int, str, str, str, str | None]] = []
    for rid, kind, status, due, closed, reason in sorted(rows):
        if status == "refused":
            refused += 1
            if not (reason or "").strip():
                bare += 1
        if closed is not None and closed <= due:
            on_time += 1
            continue
        if closed is not None:
            late += 1
        elif due <= w.as_of:
            overdue += 1
        else:
            continue
        if len(sample) < SAMPLE:
            sample.append((int(rid), kind, status, iso_z(due), iso_z(closed) if closed else None))
    return Rights(len(rows), on_time, late, overdue, refused, bare, sample)


@dataclass(frozen=True, slots=True)
class Alerts:
    """Risk alerts raised in the window and whether they were handled within their SLA."""

    raised: int
    within_sla: int
    late: int
    open_overdue: int
    by_priority: dict[str, list[int]]
    """priority → [raised, within SLA]."""
    sample: list[tuple[str, str, str, str, str | None]]


def alerts(session: Session, platform_id: int, w: Window) -> Alerts:
    """Alerts raised in the window: first action by the due time, late, still unhandled."""
    rows = session.execute(
        select(Alert.alert_id, Alert.priority, Alert.raised_at, Alert.due_at, Alert.first_action_at)
        .where(
            Alert.platform_id == platform_id,
            Alert.raised_at >= w.start,
            Alert.raised_at < w.end,
        )
        .order_by(Alert.id)
    ).all()
    within = late = overdue = 0
    by: dict[str, list[int]] = {}
    sample: list[tuple[str, str, str, str, str | None]] = []
    for aid, priority, raised, due, first in rows:
        slot = by.setdefault(priority, [0, 0])
        slot[0] += 1
        if first is not None and first <= due:
            within += 1
            slot[1] += 1
            continue
        if first is not None:
            late += 1
        elif due <= w.as_of:
            overdue += 1
        else:
            continue
        if len(sample) < SAMPLE:
            sample.append(
                (aid, priority, iso_z(raised), iso_z(due), iso_z(first) if first else None)
            )
    return Alerts(len(rows), within, late, overdue, dict(sorted(by.items())), sample)


@dataclass(frozen=True, slots=True)
class StaffReads:
    """Staff reads of children's data logged in the window, against review actions taken."""

    reads: int
    readers: int
    actions: int
    alerts_acted: int
    alerts_acted_unread: int
    sample: list[tuple[str, str]]
    """(alert id, first action) of alerts acted on with no logged read of their evidence."""


def staff_reads(session: Session, platform_id: int, w: Window) -> StaffReads:
    """Logged staff reads in the window; alerts a person acted on (not the risk engine's
    automatic restrictions) with no logged read of their evidence."""
    from qinglang.store.review import AUTOMATIC_ACTOR, STAFF_READ

    reads = session.execute(
        select(LedgerEntry.body).where(
            LedgerEntry.platform_id == platform_id,
            LedgerEntry.kind == STAFF_READ,
            LedgerEntry.at >= w.start,
            LedgerEntry.at < w.end,
        )
    ).scalars()
    readers: set[str] = set()
    read_alerts: set[str] = set()
    n = 0
    for body in reads:
        n += 1
        data = json.loads(body)["data"]
        readers.add(str(data.get("by") or ""))
        if data.get("alert"):
            read_alerts.add(str(data["alert"]))
    acted = session.execute(
        select(Alert.alert_id, func.min(ReviewAction.at), func.count(ReviewAction.id))
        .join(Alert, Alert.id == ReviewAction.alert_pk)
        .where(
            ReviewAction.platform_id == platform_id,
            ReviewAction.at >= w.start,
            ReviewAction.at < w.end,
            ReviewAction.kind != "dismiss",
            ReviewAction.actor != AUTOMATIC_ACTOR,
        )
        .group_by(Alert.alert_id)
        .order_by(Alert.alert_id)
    ).all()
    unread = [(str(a), iso_z(first)) for a, first, _ in acted if str(a) not in read_alerts]
    return StaffReads(
        n,
        len(readers - {""}),
        sum(int(c) for *_, c in acted),
        len(acted),
        len(unread),
        unread[:SAMPLE],
    )


# ---------------------------------------------------------------- configuration and the rest


def encrypted_at_rest(session: Session, platform_id: int, limit: int = 200) -> tuple[int, int]:
    """Stored birth dates read raw from the database: (sampled, readable as plain dates)."""
    rows = session.execute(
        text(
            "SELECT birth_date FROM accounts WHERE platform_id = :p AND birth_date IS NOT NULL "
            "ORDER BY id LIMIT :n"
        ),
        {"p": platform_id, "n": limit},
    ).scalars()
    sampled = plain = 0
    for raw in rows:
        sampled += 1
        try:
            date.fromisoformat(str(raw)[:10])
            plain += 1
        except ValueError:
            pass
    return sampled, plain


def _games_where(platform_id: int, w: Window, ids: KeyRange | None) -> tuple[Any, ...]:
    """The platform's game sessions started in the window (and in the id range, if given)."""
    g = GameSession
    return _in_window(g.platform_id == platform_id, g.started_at, w, g.id, ids)


def game_sessions(
    session: Session, platform_id: int, w: Window, minors: Minors, ids: KeyRange | None = None
) -> tuple[int, int]:
    """Game sessions of minors started in the window (with an id in `ids`, if given):
    (sessions, of accounts not real-name verified)."""
    total = unverified = 0
    table = minors_table(session, minors)
    for source, n in session.execute(
        select(Account.age_source, func.count(GameSession.id))
        .join(Account, Account.id == GameSession.account_id)
        .join(table, table.c.id == GameSession.account_id)
        .where(*_games_where(platform_id, w, ids))
        .group_by(Account.age_source)
    ).all():
        total += int(n)
        if source != "verified":
            unverified += int(n)
    return total, unverified


# ---------------------------------------------------------------- the per-minor parts in slices


@dataclass(slots=True)
class PerMinor:
    """The evidence that needs the minors' ages, consents and relationships. A run reads it in
    one pass (`per_minor`), or in slices (`plan_slices`, `read_slice`) whose figures add up to
    the same (`PerMinor.add`, in slice order), e.g. on Spark (``qinglang.jobs.auditspark``)."""

    processing: Processing = field(default_factory=Processing)
    contacts: Contacts = field(default_factory=Contacts)
    exposure: Exposure = field(default_factory=Exposure)
    games: tuple[int, int] = (0, 0)

    def add(self, other: PerMinor) -> None:
        """Add a later slice's figures (slices are added in the order `plan_slices` gives)."""
        self.processing.add(other.processing)
        self.contacts.add(other.contacts)
        self.exposure.add(other.exposure)
        self.games = (self.games[0] + other.games[0], self.games[1] + other.games[1])


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """Two counts by key added, keys sorted."""
    out = Counter(a)
    out.update(b)
    return dict(sorted(out.items()))


def per_minor(
    session: Session, platform: Platform, policy: Policy, w: Window, minors: Minors
) -> PerMinor:
    """The per-minor evidence of the window in one pass, over every minor candidate."""
    return PerMinor(
        processing(session, platform.id, policy, w, minors),
        contacts(session, platform, policy, w, minors),
        exposure(session, platform.id, policy, w, minors),
        game_sessions(session, platform.id, w, minors),
    )


SLICE_PARTS: Final = ("processing", "messages", "impressions", "contact_decisions", "games")
"""The per-minor parts, each sliced by the key of the table it reads."""


@dataclass(frozen=True, slots=True)
class Slice:
    """One part of the per-minor evidence over a key range [lo, hi) of its table: processing
    record ids, event sequence numbers (messages, impressions), decision log ids or game
    session ids."""

    part: str
    lo: int
    hi: int


def _slice_table(
    part: str, platform_id: int, w: Window, keys: KeyRange | None = None
) -> tuple[Any, Any, tuple[Any, ...]]:
    """(key column, column naming the account, conditions) of a part's table."""
    if part == "processing":
        return (
            ProcessingRecord.id,
            ProcessingRecord.account_id,
            _processing_where(platform_id, w, keys),
        )
    if part == "messages":
        return StoredEvent.seq, StoredEvent.target, _events_where(platform_id, "message", w, keys)
    if part == "impressions":
        where = _events_where(platform_id, "impression", w, keys)
        return StoredEvent.seq, StoredEvent.owner, (*where, StoredEvent.surface.in_(PUSH_SURFACES))
    if part == "contact_decisions":
        return (
            DecisionLog.id,
            DecisionLog.other_account_id,
            _contact_decisions_where(platform_id, w, keys),
        )
    if part == "games":
        return GameSession.id, GameSession.account_id, _games_where(platform_id, w, keys)
    raise ValueError(f"unknown part {part!r}")


def plan_slices(session: Session, platform_id: int, w: Window, rows: int) -> list[Slice]:
    """Each part's key range in the window cut into slices of about `rows` rows (by key, so a
    slice holds fewer where keys are sparse); parts with no rows give no slice."""
    if rows < 1:
        raise ValueError("rows per slice must be at least 1")
    out: list[Slice] = []
    for part in SLICE_PARTS:
        key, _, where = _slice_table(part, platform_id, w)
        lo, hi, n = session.execute(
            select(func.min(key), func.max(key), func.count()).where(*where)
        ).one()
        if not n:
            continue
        k = max(1, math.ceil(int(n) / rows))
        span = int(hi) + 1 - int(lo)
        edges = [int(lo) + span * i // k for i in range(k)] + [int(hi) + 1]
        out.extend(Slice(part, a, b) for a, b in itertools.pairwise(edges) if b > a)
    return out


def read_slice(
    session: Session, platform_id: int, policy: Policy, w: Window, piece: Slice
) -> PerMinor:
    """One slice's per-minor figures: the minor candidates among the accounts the slice names
    are read, then the slice's rows judged as in `per_minor`."""
    _, account, where = _slice_table(piece.part, platform_id, w, (piece.lo, piece.hi))
    named = select(account).where(*where)
    by_name = piece.part in ("messages", "impressions")  # events name accounts by external id
    among = Account.external_id.in_(named) if by_name else Account.id.in_(named)
    minors = load_minors(session, platform_id, policy, w, among)
    keys = (piece.lo, piece.hi)
    out = PerMinor()
    try:
        if piece.part == "processing":
            out.processing = processing(session, platform_id, policy, w, minors, keys)
        elif piece.part == "messages":
            out.contacts = contact_messages(session, platform_id, policy, w, minors, keys)
        elif piece.part == "impressions":
            out.exposure = exposure(session, platform_id, policy, w, minors, keys)
        elif piece.part == "contact_decisions":
            out.contacts.decisions = contact_decisions(session, platform_id, w, minors, keys)
        else:
            out.games = game_sessions(session, platform_id, w, minors, keys)
    finally:
        drop_minors_table(session, minors)
    return out


def latest_assessment(session: Session, platform_id: int, by: datetime) -> ImpactAssessment | None:
    """The newest impact assessment made by `by`."""
    return session.execute(
        select(ImpactAssessment)
        .where(ImpactAssessment.platform_id == platform_id, ImpactAssessment.created_at <= by)
        .order_by(ImpactAssessment.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def decisions_logged(session: Session, platform_id: int, w: Window) -> dict[str, dict[str, int]]:
    """Logged decisions in the window: kind → outcome → count (one aggregate query)."""
    out: dict[str, dict[str, int]] = {}
    for kind, outcome, n in session.execute(
        select(DecisionLog.kind, DecisionLog.outcome, func.count(DecisionLog.id))
        .where(
            DecisionLog.platform_id == platform_id,
            DecisionLog.at >= w.start,
            DecisionLog.at < w.end,
        )
        .group_by(DecisionLog.kind, DecisionLog.outcome)
    ).all():
        out.setdefault(str(kind), {})[str(outcome)] = int(n)
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def decision_sample(session: Session, platform_id: int, w: Window, size: int) -> list[DecisionLog]:
    """Up to `size` logged decisions of the window that carry their request, spread evenly over
    the window's id range (deterministic: the same rows for the same records)."""
    where = (
        DecisionLog.platform_id == platform_id,
        DecisionLog.at >= w.start,
        DecisionLog.at < w.end,
        DecisionLog.request.is_not(None),
    )
    lo, hi, n = session.execute(
        select(
            func.min(DecisionLog.id), func.max(DecisionLog.id), func.count(DecisionLog.id)
        ).where(*where)
    ).one()
    if not n:
        return []
    if n <= size:
        return list(
            session.execute(select(DecisionLog).where(*where).order_by(DecisionLog.id)).scalars()
        )
    step = max(1, (int(hi) - int(lo) + 1) // size)
    picked: list[DecisionLog] = []
    start = int(lo)
    while len(picked) < size and start <= int(hi):
        row = session.execute(
            select(DecisionLog)
            .where(*where, DecisionLog.id >= start)
            .order_by(DecisionLog.id)
            .limit(1)
        ).scalar_one_or_none()
        if row is None:
            break
        picked.append(row)
        start = max(start + step, int(row.id) + 1)
    return picked


def account_ids(session: Session, platform_id: int, names: Sequence[str]) -> dict[str, int]:
    """External id → account id for those of `names` that exist (chunked)."""
    ids: dict[str, int] = {}
    for i in range(0, len(names), CHUNK):
        for ext, aid in session.execute(
            select(Account.external_id, Account.id).where(
                Account.platform_id == platform_id, Account.external_id.in_(names[i : i + CHUNK])
            )
        ).all():
            ids[str(ext)] = int(aid)
    return ids


# ---------------------------------------------------------------- historical logs


@dataclass(slots=True)
class Imported:
    """What an import stored."""

    processing: int = 0
    events: int = 0
    duplicates: int = 0
    lines: int = 0


def _instant(raw: Any, line: int, name: str) -> datetime:
    if not isinstance(raw, str):
        raise ImportError_(line, name, "must be an RFC 3339 date-time string")
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ImportError_(line, name, f"not an RFC 3339 date-time: {raw!r}") from None
    if at.tzinfo is None:
        raise ImportError_(line, name, "needs a UTC offset")
    return at.astimezone(UTC)


def _text(record: Mapping[str, Any], name: str, line: int, limit: int = 64) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ImportError_(line, name, f"must be a string of 1 to {limit} characters")
    if "\x00" in value:
        raise ImportError_(line, name, "must not contain NUL characters")
    problem = store_events.unicode_problem(value)
    if problem is not None:
        raise ImportError_(line, name, problem)
    return value


def import_history(
    session: Session, platform_id: int, lines: Iterable[tuple[int, Mapping[str, Any]]]
) -> Imported:
    """Store a platform's historical logs in the caller's transaction: processing records
    (``{"type": "processing", "account", "purpose", "category", "at"}``) and platform events
    (``{"type": "event", ...}`` in the event intake's format). All or nothing: a bad line raises
    :class:`ImportError_` naming it, and the caller rolls back."""
    out = Imported()
    records: list[tuple[int, str, str, str, datetime]] = []
    raw_events: list[tuple[int, dict[str, Any]]] = []
    for number, record in lines:
        out.lines += 1
        if not isinstance(record, Mapping):
            raise ImportError_(number, "type", "each line must be a JSON object")
        kind = record.get("type")
        if kind == "processing":
            records.append(
                (
                    number,
                    _text(record, "account", number, 255),
                    _text(record, "purpose", number),
                    _text(record, "category", number),
                    _instant(record.get("at"), number, "at"),
                )
            )
        elif kind == "event":
            raw = {k: v for k, v in record.items() if k != "type"}
            try:
                store_events.validate(raw)
            except EventError as exc:
                raise ImportError_(number, exc.field, exc.message) from None
            raw_events.append((number, raw))
        else:
            raise ImportError_(number, "type", "must be 'processing' or 'event'")
    ids = account_ids(session, platform_id, sorted({r[1] for r in records}))
    known = []
    for number, account, purpose, category, at in records:
        if account not in ids:
            raise ImportError_(number, "account", f"unknown account {account!r}")
        known.append((ids[account], purpose, category, at))
    record_processing_batch(session, platform_id, known, IMPORT_SOURCE)
    out.processing = len(known)
    for i in range(0, len(raw_events), CHUNK):
        batch = raw_events[i : i + CHUNK]
        result = store_events.ingest(session, platform_id, [e for _, e in batch])
        if result.rejected:
            bad = result.rejected[0]
            raise ImportError_(batch[bad.index][0], bad.field, bad.message)
        out.events += result.accepted
        out.duplicates += len(result.duplicates)
    session.flush()
    return out


def record_processing_batch(
    session: Session,
    platform_id: int,
    records: Sequence[tuple[int, str, str, datetime]],
    source: str,
) -> None:
    """Store records of processing (account id, purpose, category, instant) in chunks."""
    rows = [
        {
            "platform_id": platform_id,
            "account_id": aid,
            "purpose": purpose,
            "category": category,
            "at": at.astimezone(UTC),
            "source": source,
        }
        for aid, purpose, category, at in records
    ]
    for i in range(0, len(rows), CHUNK):
        session.execute(insert(ProcessingRecord), rows[i : i + CHUNK])


def jsonl(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """Numbered JSON values of a JSON-lines text (blank lines skipped); bad JSON names its line."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportError_(number, "json", exc.msg) from None


def iso_z(at: datetime) -> str:
    """An instant as the evidence shows it: ISO 8601 in UTC with a Z."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
