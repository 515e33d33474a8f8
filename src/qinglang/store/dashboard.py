"""Compliance dashboard queries: aggregates only, one platform, bounded, SQLite and PostgreSQL.

Every function takes the platform's id and returns plain dataclasses of counts, shares and
durations: no account ids, names or birth dates leave this module. Counts are aggregated in
SQL; figures over time are counted per period with one ``GROUP BY`` over a ``CASE`` that maps a
timestamp to its period (:func:`periods` makes the periods in the pack's time zone, so the
database needs no ``date_trunc``). Two figures cannot be counted in SQL alone and say how:

- consent coverage needs each account's age, and birth dates are encrypted: accounts that have
  consent records are read in chunks of :data:`CHUNK` (id, birth date, age source and the age
  assessment only), at most :data:`SCAN_CAP` of them (``capped`` says when there were more);
- time to first action is a percentile: each is one ``ORDER BY … OFFSET`` query per period
  (nearest rank), computed by the database.

Audit runs (:func:`audit_reports`) are listed newest first with a link to their console page;
the rectification panel (:func:`rectification`) counts the platform's measures by status and
lists the overdue ones (code, area, owner, due date, days overdue: staff names, no minor's data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Float, and_, case, distinct, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from qinglang.age import age_at
from qinglang.age.suspicion import SUSPECTED_STATES, effective_age, suspected_age_of
from qinglang.policy import Policy
from qinglang.review.priority import OPEN_STATUSES, PRIORITIES
from qinglang.store.models import (
    AGE_SOURCES,
    MEASURE_STATUSES,
    Account,
    AgeAssessment,
    AgeAssessmentEvent,
    Alert,
    AuditMeasure,
    AuditRun,
    Consent,
    DecisionLog,
    Platform,
    RightsRequest,
)

PERIODS: Final = ("week", "month")
"""The dashboard's period lengths (the selector offers the last 12 of either)."""
PERIOD_COUNT: Final = 12
UNKNOWN_SOURCE: Final = "unknown"
SOURCES: Final = (*AGE_SOURCES, UNKNOWN_SOURCE)
"""Age sources as the dashboard shows them (``unknown``: no age source on record)."""
ASSESSMENT_STATES: Final = (
    "suspected",
    "verification_requested",
    "appealed",
    "verified_minor",
    "verified_adult",
)
"""Age-assessment states the dashboard counts (``clear`` is not shown)."""
CHUNK: Final = 1000
"""Accounts read per query when ages are needed (consent coverage)."""
SCAN_CAP: Final = 200_000
"""At most this many accounts with consent records are read for one coverage figure."""
TOP_REASONS: Final = 10
"""Refusal reasons shown, most frequent first."""
MAX_REASON_CHARS: Final = 200
"""A refusal reason longer than this is shown cut (with an ellipsis)."""


# ---------------------------------------------------------------- periods


@dataclass(frozen=True, slots=True)
class Period:
    """One week or month: its local first day and the UTC instants it spans [start, end)."""

    first_day: date
    start: datetime
    end: datetime
    kind: str

    @property
    def label(self) -> str:
        """``YYYY-MM-DD`` (a week, by its Monday) or ``YYYY-MM`` (a month)."""
        return self.first_day.strftime("%Y-%m" if self.kind == "month" else "%Y-%m-%d")


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def periods(kind: str, now: datetime, tz: ZoneInfo, count: int = PERIOD_COUNT) -> list[Period]:
    """The last `count` weeks (from Monday) or months in `tz`, oldest first, current last."""
    if kind not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {kind!r}")
    today = now.astimezone(tz).date()
    if kind == "week":
        monday = today - timedelta(days=today.weekday())
        firsts = [monday - timedelta(weeks=count - 1 - i) for i in range(count + 1)]
    else:
        first = today.replace(day=1)
        firsts = [_add_months(first, i - (count - 1)) for i in range(count + 1)]
    return [
        Period(firsts[i], _local_midnight(firsts[i], tz), _local_midnight(firsts[i + 1], tz), kind)
        for i in range(count)
    ]


def _period_of(column: Any, ps: Sequence[Period]) -> ColumnElement[int]:
    """The index of the period a timestamp column falls in (only meaningful inside the span)."""
    return case(*[(column < p.end, i) for i, p in enumerate(ps)], else_=len(ps))


def _within(column: Any, ps: Sequence[Period]) -> ColumnElement[bool]:
    return and_(column >= ps[0].start, column < ps[-1].end)


def _per_period(
    session: Session,
    column: Any,
    ps: Sequence[Period],
    *where: ColumnElement[bool],
    by: Any = None,
) -> dict[tuple[int, Any], int]:
    """Rows per (period index, `by` value) with `column` inside the periods (one query)."""
    cols: list[Any] = [_period_of(column, ps).label("p")]
    if by is not None:
        cols.append(by.label("k"))
    inner = select(*cols).where(_within(column, ps), *where).subquery()
    keys: list[Any] = [inner.c.p] + ([inner.c.k] if by is not None else [])
    rows = session.execute(select(*keys, func.count()).group_by(*keys)).all()
    out: dict[tuple[int, Any], int] = {}
    for row in rows:
        key = row[1] if by is not None else None
        out[(int(row[0]), key)] = int(row[-1])
    return out


def _series(counts: dict[tuple[int, Any], int], n: int, key: Any = None) -> list[int]:
    return [counts.get((i, key), 0) for i in range(n)]


def _share(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide."""
    return part / whole if whole else None


# ---------------------------------------------------------------- age sources


@dataclass(frozen=True, slots=True)
class SourceCount:
    """Accounts with one age source."""

    source: str
    accounts: int


@dataclass(frozen=True, slots=True)
class AgeSources:
    """The platform's accounts (not cancelled) by age source, now."""

    total: int
    by_source: list[SourceCount]


def age_sources(session: Session, platform_id: int) -> AgeSources:
    """Accounts (cancelled ones left out) per age source; no source on record is ``unknown``."""
    rows = session.execute(
        select(Account.age_source, func.count())
        .where(Account.platform_id == platform_id, Account.cancelled_at.is_(None))
        .group_by(Account.age_source)
    ).all()
    counts = {src or UNKNOWN_SOURCE: int(n) for src, n in rows}
    by = [SourceCount(s, counts.get(s, 0)) for s in SOURCES]
    return AgeSources(sum(c.accounts for c in by), by)


# ---------------------------------------------------------------- suspected minors


@dataclass(frozen=True, slots=True)
class Assessments:
    """Age assessments: accounts in each state now, and transitions into each state per period."""

    now: dict[str, int]
    periods: list[Period]
    entered: dict[str, list[int]]
    """State → transitions into it per period (from ``age_assessment_events``)."""

    @property
    def suspected_now(self) -> int:
        """Accounts suspected, asked to verify or appealing now."""
        return sum(self.now[s.value] for s in SUSPECTED_STATES)


def assessments(session: Session, platform_id: int, ps: Sequence[Period]) -> Assessments:
    """Accounts per assessment state now, and transitions into each state per period."""
    rows = session.execute(
        select(AgeAssessment.state, func.count())
        .where(AgeAssessment.platform_id == platform_id)
        .group_by(AgeAssessment.state)
    ).all()
    counts = {state: int(n) for state, n in rows}
    now = {s: counts.get(s, 0) for s in ASSESSMENT_STATES}
    per = _per_period(
        session,
        AgeAssessmentEvent.at,
        ps,
        AgeAssessmentEvent.platform_id == platform_id,
        AgeAssessmentEvent.to_state.in_(ASSESSMENT_STATES),
        by=AgeAssessmentEvent.to_state,
    )
    entered = {s: _series(per, len(ps), s) for s in ASSESSMENT_STATES}
    return Assessments(now, list(ps), entered)


# ---------------------------------------------------------------- consents


@dataclass(frozen=True, slots=True)
class CategoryCoverage:
    """One personal-information category among child accounts that have a record for it."""

    category: str
    children: int
    """Child accounts with at least one consent record (any purpose, any status) for it."""
    covered: int
    """Of those, children with a valid guardian consent (granted by the guardian, not stale)."""
    stale: int
    """Children whose guardian's grant for it went stale (a later notice changed it)."""
    withdrawn: int
    """Children with a withdrawn consent for it."""

    @property
    def share(self) -> float | None:
        """covered / children."""
        return _share(self.covered, self.children)


@dataclass(frozen=True, slots=True)
class ConsentCoverage:
    """Guardian consent among child accounts, and stale and withdrawn consents platform-wide."""

    child_below: int
    children: int
    """Child accounts with at least one consent record."""
    categories: list[CategoryCoverage]
    stale_now: int
    """Consents (every account) granted but stale now."""
    withdrawn_now: int
    """Consents (every account) withdrawn now."""
    periods: list[Period]
    went_stale: list[int]
    """Consents that went stale per period (and are still stale)."""
    withdrawn: list[int]
    """Consents withdrawn per period (and still withdrawn)."""
    scanned: int
    capped: bool


def is_child(
    policy: Policy,
    birth_date: date | None,
    age_source: str | None,
    state: str | None,
    suspected_child: bool | None,
    now: datetime,
) -> bool:
    """Whether the account's profile makes it a child now (stored or suspected age, pack zone)."""
    today = now.astimezone(policy.tz).date()
    birth, _ = effective_age(
        birth_date, age_source, suspected_age_of(state, suspected_child), today
    )
    if birth is None:
        return False
    counting = policy.rule("age.counting", None)
    day_after = counting is not None and counting.value == "day_after_birthday"
    child_below = policy.require("age.child_below").value
    assert isinstance(child_below, int)
    return age_at(birth, now, policy.tz, counts_from_day_after=day_after) < child_below


def _children_in_chunk(
    session: Session, platform_id: int, policy: Policy, after: int, now: datetime, limit: int
) -> tuple[list[int], int, int | None]:
    """Child ids among the next accounts with consent records: (children, read, last id)."""
    has_consent = select(Consent.id).where(Consent.account_id == Account.id).exists()
    rows = session.execute(
        select(
            Account.id,
            Account.birth_date,
            Account.age_source,
            AgeAssessment.state,
            AgeAssessment.suspected_child,
        )
        .outerjoin(AgeAssessment, AgeAssessment.account_id == Account.id)
        .where(
            Account.platform_id == platform_id,
            Account.cancelled_at.is_(None),
            Account.id > after,
            has_consent,
        )
        .order_by(Account.id)
        .limit(limit)
    ).all()
    children = [int(r.id) for r in rows if is_child(policy, r[1], r[2], r[3], r[4], now)]
    return children, len(rows), int(rows[-1].id) if rows else None


def consent_coverage(
    session: Session,
    platform_id: int,
    policy: Policy,
    ps: Sequence[Period],
    now: datetime,
    *,
    chunk: int = CHUNK,
    cap: int = SCAN_CAP,
) -> ConsentCoverage:
    """Guardian consent per category among children with records; stale and withdrawn."""
    valid = and_(
        Consent.status == "granted", Consent.stale_since.is_(None), Consent.given_by == "guardian"
    )
    stale = and_(Consent.status == "granted", Consent.stale_since.is_not(None))
    totals: dict[str, list[int]] = {}
    children = scanned = after = 0
    more = True
    while more and scanned < cap:
        limit = min(chunk, cap - scanned)
        ids, read, last = _children_in_chunk(session, platform_id, policy, after, now, limit)
        scanned += read
        more = read == limit and last is not None
        after = last or after
        if not ids:
            continue
        children += len(ids)
        rows = session.execute(
            select(
                Consent.category,
                func.count(distinct(Consent.account_id)),
                func.count(distinct(case((valid, Consent.account_id)))),
                func.count(distinct(case((stale, Consent.account_id)))),
                func.count(distinct(case((Consent.status == "withdrawn", Consent.account_id)))),
            )
            .where(Consent.platform_id == platform_id, Consent.account_id.in_(ids))
            .group_by(Consent.category)
        ).all()
        for category, *numbers in rows:
            acc = totals.setdefault(str(category), [0, 0, 0, 0])
            for i, n in enumerate(numbers):
                acc[i] += int(n)
    capped = more and bool(_children_in_chunk(session, platform_id, policy, after, now, 1)[1])
    categories = [CategoryCoverage(c, *totals[c]) for c in sorted(totals)]
    stale_now, withdrawn_now = session.execute(
        select(
            func.count(case((stale, Consent.id))),
            func.count(case((Consent.status == "withdrawn", Consent.id))),
        ).where(Consent.platform_id == platform_id)
    ).one()
    went_stale = _per_period(
        session, Consent.stale_since, ps, Consent.platform_id == platform_id, stale
    )
    withdrawn = _per_period(
        session,
        Consent.decided_at,
        ps,
        Consent.platform_id == platform_id,
        Consent.status == "withdrawn",
    )
    child_below = policy.require("age.child_below").value
    assert isinstance(child_below, int)
    return ConsentCoverage(
        child_below,
        children,
        categories,
        int(stale_now),
        int(withdrawn_now),
        list(ps),
        _series(went_stale, len(ps)),
        _series(withdrawn, len(ps)),
        scanned,
        capped,
    )


# ---------------------------------------------------------------- blocked contacts


@dataclass(frozen=True, slots=True)
class BlockedContacts:
    """Contact decisions denied, as sampled in ``decision_logs``, per period."""

    sample_rate: float
    periods: list[Period]
    denied: list[int]
    """Sampled contact decisions with outcome ``deny`` per period."""
    sampled: list[int]
    """Every sampled contact decision per period."""

    @property
    def denied_total(self) -> int:
        """Denied contact decisions sampled over all the periods."""
        return sum(self.denied)

    @property
    def estimated_denied(self) -> int | None:
        """denied_total scaled by the sample rate (None when nothing is sampled)."""
        return round(self.denied_total / self.sample_rate) if self.sample_rate > 0 else None


def blocked_contacts(session: Session, platform: Platform, ps: Sequence[Period]) -> BlockedContacts:
    """Sampled contact decisions per period: denied and all."""
    per = _per_period(
        session,
        DecisionLog.at,
        ps,
        DecisionLog.platform_id == platform.id,
        DecisionLog.kind == "contact",
        by=case((DecisionLog.outcome == "deny", 1), else_=0),
    )
    denied = _series(per, len(ps), 1)
    sampled = [d + n for d, n in zip(denied, _series(per, len(ps), 0), strict=True)]
    return BlockedContacts(float(platform.decision_sample_rate), list(ps), denied, sampled)


# ---------------------------------------------------------------- alerts


@dataclass(frozen=True, slots=True)
class Timing:
    """Time from an alert being raised to its first action, in seconds (nearest rank)."""

    acted: int
    median: float | None
    p90: float | None


@dataclass(frozen=True, slots=True)
class PriorityTiming:
    """One priority over all the periods: its SLA and how alerts raised in them were handled."""

    priority: str
    sla_hours: float | None
    raised: int
    timing: Timing
    met: int
    missed: int

    @property
    def within_sla(self) -> float | None:
        """met / (met + missed)."""
        return _share(self.met, self.met + self.missed)


@dataclass(frozen=True, slots=True)
class AlertFigures:
    """Alerts raised per period by priority, time to first action and the SLA."""

    periods: list[Period]
    raised: dict[str, list[int]]
    """Priority → alerts raised per period."""
    timing: list[Timing]
    """Per period, of the alerts raised in it."""
    met: list[int]
    """Alerts raised per period whose first action came by their due time."""
    missed: list[int]
    """… whose first action came late, or none has come and they are past due."""
    by_priority: list[PriorityTiming]
    open_now: int
    overdue_now: int

    @property
    def within_sla(self) -> list[float | None]:
        """Per period: met / (met + missed)."""
        return [_share(m, m + x) for m, x in zip(self.met, self.missed, strict=True)]


def _seconds(session: Session, start: Any, end: Any) -> ColumnElement[float]:
    """end - start in seconds, in SQL (PostgreSQL: epoch of the interval; SQLite: julianday)."""
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(func.extract("epoch", end - start), Float)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _percentile(
    session: Session, duration: ColumnElement[float], where: Sequence[Any], n: int, p: float
) -> float | None:
    """The nearest-rank p-th percentile of `duration` among the `n` rows matching `where`."""
    if n <= 0:
        return None
    rank = max(1, math.ceil(p * n))
    value = session.execute(
        select(duration).where(*where).order_by(duration).offset(rank - 1).limit(1)
    ).scalar()
    return None if value is None else round(float(value), 3)


def _timing(session: Session, where: Sequence[Any], acted: int) -> Timing:
    duration = _seconds(session, Alert.raised_at, Alert.first_action_at)
    cond = [*where, Alert.first_action_at.is_not(None)]
    return Timing(
        acted,
        _percentile(session, duration, cond, acted, 0.5),
        _percentile(session, duration, cond, acted, 0.9),
    )


def _sla_hours(policy: Policy | None, priority: str) -> float | None:
    if policy is None:
        return None
    rule = policy.rule(f"review.sla_hours.{priority}", None)
    value = None if rule is None else rule.value
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def alert_figures(
    session: Session,
    platform_id: int,
    ps: Sequence[Period],
    now: datetime,
    policy: Policy | None = None,
) -> AlertFigures:
    """Alerts raised per period (by priority), their time to first action and SLA outcome."""
    mine = Alert.platform_id == platform_id
    met_cond = and_(Alert.first_action_at.is_not(None), Alert.first_action_at <= Alert.due_at)
    missed_cond = or_(
        Alert.first_action_at > Alert.due_at,
        and_(Alert.first_action_at.is_(None), Alert.due_at < now),
    )
    outcome = case((met_cond, "met"), (missed_cond, "missed"), else_="pending")
    n = len(ps)
    by_priority = _per_period(session, Alert.raised_at, ps, mine, by=Alert.priority)
    by_outcome = _per_period(session, Alert.raised_at, ps, mine, by=outcome)
    acted = _per_period(session, Alert.raised_at, ps, mine, Alert.first_action_at.is_not(None))
    timing = []
    for i, p in enumerate(ps):
        where = [mine, Alert.raised_at >= p.start, Alert.raised_at < p.end]
        timing.append(_timing(session, where, acted.get((i, None), 0)))
    prio_rows = session.execute(
        select(
            Alert.priority,
            func.count(),
            func.count(Alert.first_action_at),
            func.count(case((met_cond, Alert.id))),
            func.count(case((missed_cond, Alert.id))),
        )
        .where(mine, _within(Alert.raised_at, ps))
        .group_by(Alert.priority)
    ).all()
    prio = {str(r[0]): [int(x) for x in r[1:]] for r in prio_rows}
    timings = []
    for name in PRIORITIES:
        raised, acted_n, met_n, missed_n = prio.get(name, [0, 0, 0, 0])
        where = [mine, _within(Alert.raised_at, ps), Alert.priority == name]
        timings.append(
            PriorityTiming(
                name,
                _sla_hours(policy, name),
                raised,
                _timing(session, where, acted_n),
                met_n,
                missed_n,
            )
        )
    open_now, overdue_now = session.execute(
        select(func.count(), func.count(case((Alert.due_at < now, Alert.id)))).where(
            mine, Alert.status.in_(OPEN_STATUSES)
        )
    ).one()
    return AlertFigures(
        list(ps),
        {name: _series(by_priority, n, name) for name in PRIORITIES},
        timing,
        _series(by_outcome, n, "met"),
        _series(by_outcome, n, "missed"),
        timings,
        int(open_now),
        int(overdue_now),
    )


# ---------------------------------------------------------------- rights requests


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """A written refusal reason (as written, cut to MAX_REASON_CHARS) and how often it was given."""

    reason: str
    requests: int


@dataclass(frozen=True, slots=True)
class RightsFigures:
    """Rights requests per period: received, completed, refused, and on time against due_at."""

    periods: list[Period]
    received: list[int]
    """Requests received (created) per period."""
    completed: list[int]
    """Requests completed (closed) per period."""
    refused: list[int]
    """Requests refused (closed) per period."""
    due: list[int]
    """Requests due per period that are closed, or past due and still open."""
    on_time: list[int]
    """… of which closed by their due time."""
    reasons: list[ReasonCount] = field(default_factory=list)
    """Refusal reasons of the requests refused in the periods, most frequent first."""
    open_now: int = 0
    overdue_now: int = 0

    @property
    def on_time_rate(self) -> list[float | None]:
        """Per period: on_time / due."""
        return [_share(o, d) for o, d in zip(self.on_time, self.due, strict=True)]

    @property
    def on_time_overall(self) -> float | None:
        """on_time / due over all the periods."""
        return _share(sum(self.on_time), sum(self.due))


def rights_figures(
    session: Session, platform_id: int, ps: Sequence[Period], now: datetime
) -> RightsFigures:
    """Rights requests per period and the refusal reasons given in the periods."""
    mine = RightsRequest.platform_id == platform_id
    n = len(ps)
    received = _per_period(session, RightsRequest.created_at, ps, mine)
    closed = _per_period(
        session,
        RightsRequest.closed_at,
        ps,
        mine,
        RightsRequest.status.in_(("completed", "refused")),
        by=RightsRequest.status,
    )
    is_closed = RightsRequest.closed_at.is_not(None)
    on_time = and_(is_closed, RightsRequest.closed_at <= RightsRequest.due_at)
    due = _per_period(
        session,
        RightsRequest.due_at,
        ps,
        mine,
        or_(is_closed, RightsRequest.due_at < now),
        by=case((on_time, 1), else_=0),
    )
    ontime = _series(due, n, 1)
    late = _series(due, n, 0)
    reason_rows = session.execute(
        select(RightsRequest.reason, func.count().label("n"))
        .where(
            mine,
            RightsRequest.status == "refused",
            RightsRequest.reason.is_not(None),
            _within(RightsRequest.closed_at, ps),
        )
        .group_by(RightsRequest.reason)
        .order_by(func.count().desc(), RightsRequest.reason)
        .limit(TOP_REASONS)
    ).all()
    reasons = [ReasonCount(_cut(str(r)), int(c)) for r, c in reason_rows]
    open_now, overdue_now = session.execute(
        select(
            func.count(), func.count(case((RightsRequest.due_at < now, RightsRequest.id)))
        ).where(mine, RightsRequest.status.in_(("received", "in_progress")))
    ).one()
    return RightsFigures(
        list(ps),
        _series(received, n),
        _series(closed, n, "completed"),
        _series(closed, n, "refused"),
        [o + x for o, x in zip(ontime, late, strict=True)],
        ontime,
        reasons,
        int(open_now),
        int(overdue_now),
    )


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


# ---------------------------------------------------------------- audit reports


@dataclass(frozen=True, slots=True)
class AuditReportLink:
    """An audit report the dashboard links to: its title, period covered and console URL."""

    title: str
    period: str
    url: str
    created_at: datetime


AUDIT_URL: Final = "/console/compliance/audits/{id}"
"""Console page of one audit run."""
REPORTS_SHOWN: Final = 20
"""Audit runs listed on the dashboard, newest first."""


def audit_reports(
    session: Session, platform_id: int, limit: int = REPORTS_SHOWN
) -> list[AuditReportLink]:
    """The platform's audit runs, newest first, as links to their console pages."""
    rows = session.execute(
        select(AuditRun.id, AuditRun.period, AuditRun.created_at)
        .where(AuditRun.platform_id == platform_id)
        .order_by(AuditRun.created_at.desc(), AuditRun.id.desc())
        .limit(limit)
    ).all()
    return [
        AuditReportLink(f"Audit {period}", str(period), AUDIT_URL.format(id=rid), created_at)
        for rid, period, created_at in rows
    ]


# ---------------------------------------------------------------- rectification


@dataclass(frozen=True, slots=True)
class OverdueMeasure:
    """A measure not closed past its due date."""

    code: str
    area: str
    owner: str
    status: str
    due_date: date
    days_overdue: int


@dataclass(frozen=True, slots=True)
class Rectification:
    """The platform's measures by status now, and the overdue ones (longest overdue first)."""

    counts: dict[str, int]
    overdue: list[OverdueMeasure]

    @property
    def total(self) -> int:
        """Every measure, whatever its status."""
        return sum(self.counts.values())


OVERDUE_SHOWN: Final = 50
"""Overdue measures listed on the dashboard (the count covers them all)."""


def overdue_measures(
    session: Session, platform_id: int, today: date, limit: int = OVERDUE_SHOWN
) -> list[OverdueMeasure]:
    """Measures not closed whose due date is before `today`, longest overdue first."""
    rows = session.execute(
        select(
            AuditMeasure.code,
            AuditMeasure.area,
            AuditMeasure.owner,
            AuditMeasure.status,
            AuditMeasure.due_date,
        )
        .where(
            AuditMeasure.platform_id == platform_id,
            AuditMeasure.status != "closed",
            AuditMeasure.due_date < today,
        )
        .order_by(AuditMeasure.due_date, AuditMeasure.id)
        .limit(limit)
    ).all()
    return [
        OverdueMeasure(code, area, owner, status, due, (today - due).days)
        for code, area, owner, status, due in rows
    ]


def rectification(session: Session, platform_id: int, today: date) -> Rectification:
    """Measures per status (every status, zeros included) and the overdue ones."""
    rows = session.execute(
        select(AuditMeasure.status, func.count())
        .where(AuditMeasure.platform_id == platform_id)
        .group_by(AuditMeasure.status)
    ).all()
    found = {str(st): int(n) for st, n in rows}
    counts = {st: found.get(st, 0) for st in MEASURE_STATUSES}
    return Rectification(counts, overdue_measures(session, platform_id, today))
