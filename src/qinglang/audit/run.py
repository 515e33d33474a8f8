"""An audit run: read the evidence for a period, judge every requirement, and hand the result
to the report and the signed bundle; record the run so that rectification can follow it.

The period is given as ``2026`` (a year), ``2026-05`` (a month), ``2026-Q2`` (a quarter),
``2026-H1`` (a half) or ``2026-01-01..2026-06-30`` (inclusive days), in the pack's time zone.
The run reads the records as of `as_of`, which the caller fixes: the same records and the same
`as_of` give the same result, and so a byte-identical report.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qinglang import __version__
from qinglang.audit.catalogue import load_catalogue
from qinglang.audit.checks import AttestationRef, Evidence, NoticeState, charts, evaluate
from qinglang.audit.model import AuditResult, Requirement, Status
from qinglang.audit.replay import replay
from qinglang.consent.notices import missing_elements, parse_notice
from qinglang.policy import Policy
from qinglang.store import audit as store_audit
from qinglang.store import impact as store_impact
from qinglang.store import ledger as store_ledger
from qinglang.store.models import (
    AuditRun,
    LedgerEntry,
    Notice,
    Platform,
)
from qinglang.store.retention import run_retention

if TYPE_CHECKING:
    from qinglang.api.service import Service

REPLAY_SAMPLE: Final = 500
"""Logged decisions replayed per run by default (an auditor's sample, not a legal value)."""
PROOF_CHILDREN: Final = 20
"""Children whose ledger proof bundle goes into a supervisor's bundle (the first by id among
those in the evidence tables)."""


class PeriodError(ValueError):
    """A period that cannot be read."""


_YEAR = re.compile(r"(\d{4})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")
_HALF = re.compile(r"(\d{4})-H([12])")


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def parse_period(text: str) -> tuple[date, date]:
    """First and last day (inclusive) of a period written as described in the module."""
    first, last = _parse_period(text.strip())
    if last >= date.max:
        raise PeriodError(f"period {text.strip()!r} must end before {date.max.isoformat()}")
    return first, last


def _parse_period(text: str) -> tuple[date, date]:
    try:
        if m := _YEAR.fullmatch(text):
            y = int(m[1])
            return date(y, 1, 1), date(y, 12, 31)
        if m := _MONTH.fullmatch(text):
            y, mo = int(m[1]), int(m[2])
            return date(y, mo, 1), _month_end(y, mo)
        if m := _QUARTER.fullmatch(text):
            y, q = int(m[1]), int(m[2])
            return date(y, 3 * q - 2, 1), _month_end(y, 3 * q)
        if m := _HALF.fullmatch(text):
            y, h = int(m[1]), int(m[2])
            return date(y, 6 * h - 5, 1), _month_end(y, 6 * h)
        if ".." in text:
            a, b = (date.fromisoformat(p.strip()) for p in text.split("..", 1))
            if b < a:
                raise PeriodError(f"period {text!r} ends before it starts")
            return a, b
    except ValueError as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(f"period {text!r}: {exc}") from None
    raise PeriodError(
        f"period {text!r}: give YYYY, YYYY-MM, YYYY-Qn, YYYY-Hn or YYYY-MM-DD..YYYY-MM-DD"
    )


def default_as_of(policy: Policy, last: date, now: datetime) -> datetime:
    """The end of the period, or the start of today in the pack's zone if the period is still
    running (so that reruns on the same day read the same records)."""
    end = datetime.combine(last + timedelta(days=1), time(), policy.tz)
    today = datetime.combine(now.astimezone(policy.tz).date(), time(), policy.tz)
    return min(end, today).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RunInput:
    """What a run needs besides the database."""

    period: str
    first: date
    last: date
    as_of: datetime
    replay_sample: int = REPLAY_SAMPLE
    since: datetime | None = None
    """Read activity from this instant on, if later than the period's start."""


def _notices(session: Session, platform_id: int, policy: Policy) -> list[NoticeState]:
    latest = (
        select(Notice.language, Notice.audience, func.max(Notice.version).label("v"))
        .where(Notice.platform_id == platform_id)
        .group_by(Notice.language, Notice.audience)
        .subquery()
    )
    rows = session.execute(
        select(Notice)
        .join(
            latest,
            (Notice.language == latest.c.language)
            & (Notice.audience == latest.c.audience)
            & (Notice.version == latest.c.v),
        )
        .where(Notice.platform_id == platform_id)
        .order_by(Notice.language, Notice.audience)
    ).scalars()
    out = []
    for n in rows:
        missing = missing_elements(parse_notice(n.body), policy, n.audience)
        out.append(NoticeState(n.language, n.audience, n.version, tuple(missing)))
    return out


def _attestations(
    session: Session, platform_id: int, last: date, months: int
) -> dict[str, list[AttestationRef]]:
    found = store_impact.attestations_for_period(session, platform_id, last, months)
    return {
        req: [AttestationRef(a.title, a.owner, a.document_date, a.sha256) for a in docs]
        for req, docs in found.items()
    }


PerMinorReader = Callable[[Session, Platform, Policy, store_audit.Window], store_audit.PerMinor]
"""Reads the per-minor evidence of a window (every figure, the platform's decision sample rate
included): in one pass (`in_one_pass`), in slices here (`sliced`) or on Spark
(``qinglang.jobs.auditspark``)."""


def in_one_pass(
    session: Session, platform: Platform, policy: Policy, w: store_audit.Window
) -> store_audit.PerMinor:
    """The per-minor evidence in one pass over every minor candidate, in this session."""
    minors = store_audit.load_minors(session, platform.id, policy, w)
    part = store_audit.per_minor(session, platform, policy, w, minors)
    # On an error the transaction rolls back, and the temporary table with it.
    store_audit.drop_minors_table(session, minors)
    return part


def sliced(rows: int) -> PerMinorReader:
    """A reader of the per-minor evidence in slices of about `rows` rows, one after another in
    this session: memory bounded by the slice, not the platform."""

    def read(
        session: Session, platform: Platform, policy: Policy, w: store_audit.Window
    ) -> store_audit.PerMinor:
        total = store_audit.PerMinor()
        for piece in store_audit.plan_slices(session, platform.id, w, rows):
            total.add(store_audit.read_slice(session, platform.id, policy, w, piece))
        total.contacts.sample_rate = float(platform.decision_sample_rate)
        return total

    return read


def gather(
    session: Session,
    service: Service,
    platform: Platform,
    policy: Policy,
    run: RunInput,
    reader: PerMinorReader = in_one_pass,
) -> Evidence:
    """Read every figure the checks need, for the platform and period, as of `run.as_of`."""
    w = store_audit.window(policy, run.first, run.last, run.as_of, run.since)
    part = reader(session, platform, policy, w)
    return _evidence(session, service, platform, policy, run, w, part)


def _evidence(
    session: Session,
    service: Service,
    platform: Platform,
    policy: Policy,
    run: RunInput,
    w: store_audit.Window,
    part: store_audit.PerMinor,
) -> Evidence:
    retention = run_retention(session, platform, policy, run.as_of, dry_run=True)
    sampled, plain = store_audit.encrypted_at_rest(session, platform.id)
    brk = store_ledger.verify(session, platform.id)
    entries = int(
        session.scalar(
            select(func.count(LedgerEntry.id)).where(
                LedgerEntry.platform_id == platform.id, LedgerEntry.at <= run.as_of
            )
        )
        or 0
    )
    assessment = store_audit.latest_assessment(session, platform.id, run.as_of)
    months = store_impact.valid_months(policy)
    logs = store_audit.decision_sample(session, platform.id, w, run.replay_sample)
    return Evidence(
        processing=part.processing,
        contacts=part.contacts,
        exposure=part.exposure,
        retention_overdue=retention.counts,
        retention_rules={c.category: c.rule_id for c in retention.categories},
        rights=store_audit.rights(session, platform.id, w),
        alerts=store_audit.alerts(session, platform.id, w),
        staff=store_audit.staff_reads(session, platform.id, w),
        encryption_sampled=sampled,
        encryption_plain=plain,
        key_configured=service.keys is not None,
        notices=_notices(session, platform.id, policy),
        policy=policy,
        overlay_rules=tuple(sorted(policy.overrides)),
        ledger_entries=entries,
        ledger_break=None if brk is None else str(brk),
        assessment=None
        if assessment is None
        else (assessment.version, assessment.created_at, assessment.keep_until),
        replay=replay(session, service, platform, logs),
        game_sessions=part.games[0],
        game_unverified=part.games[1],
        decisions=store_audit.decisions_logged(session, platform.id, w),
        attestations=_attestations(session, platform.id, run.last, months),
        attestation_months=months,
        as_of=run.as_of,
    )


def audit(
    session: Session,
    service: Service,
    platform: Platform,
    run: RunInput,
    catalogue: tuple[Requirement, ...] | None = None,
    reader: PerMinorReader = in_one_pass,
) -> AuditResult:
    """Run every check for the platform and period; the result the report renders (`reader`:
    how the per-minor evidence is read, in one pass by default)."""
    policy = service.policy_for(platform)
    reqs = catalogue if catalogue is not None else load_catalogue()
    ev = gather(session, service, platform, policy, run, reader)
    findings, tables = evaluate(reqs, ev)
    notes = (
        "记录截至 as-of 时刻读取；相同记录和 as-of 生成逐字节相同的报告。 "
        "Records are read as of the as-of instant; the same records and as-of give a "
        "byte-identical report.",
        f"决定日志抽样率 decision log sample rate: {platform.decision_sample_rate}",
        "重放使用当前引擎、规则包和当前记录，在决定记录的时刻重新决定。 Replay decides again "
        "with the current engine, pack and records, at the instant each decision was logged.",
    )
    return AuditResult(
        platform_slug=platform.slug,
        platform_name=platform.name,
        period=run.period,
        start=run.first,
        end=run.last,
        as_of=run.as_of,
        pack=f"{policy.meta.id} {policy.meta.version}",
        engine_version=__version__,
        requirements=reqs,
        findings=findings,
        charts=charts(ev),
        evidence=tables,
        ledger_head=head_at(session, platform.id, run.as_of),
        notes=notes,
        since=run.since,
    )


def head_at(session: Session, platform_id: int, as_of: datetime) -> tuple[int, str] | None:
    """The last ledger entry (seq, hash) recorded at or before `as_of`: later entries, such as
    this run's own, do not change the report."""
    row = session.execute(
        select(LedgerEntry.seq, LedgerEntry.hash)
        .where(LedgerEntry.platform_id == platform_id, LedgerEntry.at <= as_of)
        .order_by(LedgerEntry.seq.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def proof_subjects(result: AuditResult, limit: int = PROOF_CHILDREN) -> list[str]:
    """Accounts named in the evidence tables' `account`, `owner` or `recipient` columns."""
    names: set[str] = set()
    for table in result.evidence:
        for col in ("account", "owner", "recipient"):
            if col in table.columns:
                i = table.columns.index(col)
                names.update(str(r[i]) for r in table.rows if r[i] is not None)
    return sorted(names)[:limit]


def ledger_proofs(
    session: Session,
    platform: Platform,
    subjects: list[str],
    head: tuple[int, str] | None,
    as_of: datetime,
) -> dict[str, dict[str, Any]]:
    """A ledger proof bundle per subject, ending at the head as of the audit (each verifies
    the chain as it is read)."""
    if head is None:
        return {}
    return {
        s: store_ledger.build_bundle(
            session, platform.id, s, platform_slug=platform.slug, now=as_of, upto=head[0]
        )
        for s in subjects
    }


def record_run(
    session: Session,
    platform: Platform,
    result: AuditResult,
    actor: str,
    manifest_sha256: str | None,
    fingerprint: str | None,
    location: str | None,
) -> AuditRun:
    """Store the run's counts and statuses (rectification reads them) and ledger it."""
    counts = result.counts()
    row = AuditRun(
        platform_id=platform.id,
        period=result.period,
        start=result.start,
        end=result.end,
        as_of=result.as_of,
        passed=counts[Status.PASS],
        failed=counts[Status.FAIL],
        not_evidenced=counts[Status.NOT_EVIDENCED],
        statuses={f.requirement_id: f.status.value for f in result.findings},
        manifest_sha256=manifest_sha256,
        key_fingerprint=fingerprint,
        location=location,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    store_ledger.append(
        session,
        platform.id,
        "audit.run",
        None,
        {
            "run": row.id,
            "period": result.period,
            "as_of": result.as_of.isoformat(),
            "passed": row.passed,
            "failed": row.failed,
            "not_evidenced": row.not_evidenced,
            "manifest_sha256": manifest_sha256,
        },
    )
    return row


def location_of(out: Path) -> str:
    """Where a bundle was written (absolute path) for the run record."""
    return str(out.resolve())
