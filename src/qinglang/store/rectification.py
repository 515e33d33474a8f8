"""Rectification plans in the store: measures, their history, closing against audit runs, export.

Every change of a measure (created, status, evidence) writes a history row
(``audit_measure_events``) and a ledger entry of kind ``audit.measure`` in the caller's
transaction; the ledger gets the code, status, area, owner, due date and requirement ids, never
the description. Codes (``M-0001``, …) are assigned per platform while the platform's ledger
head is locked, so two transactions never take the same one.

A measure closes only when every requirement it is linked to passed in the platform's latest
audit run made after the measure was created (:func:`qinglang.audit.measures.
blocking_requirements`); otherwise :class:`ClosingBlocked` lists the requirement ids in the way.
The catalogue is a parameter of every function that needs it (the CLI passes
``qinglang.audit.catalogue.load_catalogue()``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qinglang.audit.measures import (
    MEASURE_STATUSES,
    OPEN_STATUSES,
    MeasureError,
    blocking_requirements,
    check_area,
    check_description,
    check_evidence,
    check_owner,
    check_requirements,
    check_transition,
    days_overdue,
    is_overdue,
    next_code,
)
from qinglang.audit.model import Requirement
from qinglang.store import ledger
from qinglang.store.models import AuditMeasure, AuditMeasureEvent, AuditRun, Platform

LEDGER_KIND: Final = "audit.measure"
EXPORT_FORMAT: Final = "qinglang.rectification_plan"
EXPORT_VERSION: Final = 1
CSV_COLUMNS: Final = (
    "code",
    "area",
    "status",
    "owner",
    "due_date",
    "overdue_days",
    "requirement_ids",
    "evidence",
    "created_at",
    "closed_at",
    "description",
)


class ClosingBlocked(MeasureError):
    """Closing refused: these linked requirements did not pass in the latest audit run."""

    def __init__(self, code: str, blocking: Sequence[str], run_id: int | None) -> None:
        where = "no audit run since the measure was created" if run_id is None else f"run {run_id}"
        super().__init__(
            f"{code} cannot close: requirements not passing ({where}): {', '.join(blocking)}",
            "status",
        )
        self.code = code
        self.blocking = list(blocking)
        self.run_id = run_id


# ---------------------------------------------------------------- reads


def get_measure(session: Session, platform_id: int, code: str) -> AuditMeasure | None:
    """The platform's measure with this code, if any."""
    return session.execute(
        select(AuditMeasure).where(
            AuditMeasure.platform_id == platform_id, AuditMeasure.code == code.strip().upper()
        )
    ).scalar_one_or_none()


def events_of(session: Session, measure_id: int) -> list[AuditMeasureEvent]:
    """A measure's history, oldest first."""
    return list(
        session.execute(
            select(AuditMeasureEvent)
            .where(AuditMeasureEvent.measure_id == measure_id)
            .order_by(AuditMeasureEvent.at, AuditMeasureEvent.id)
        ).scalars()
    )


def list_measures(
    session: Session,
    platform_id: int,
    *,
    status: str | None = None,
    overdue_on: date | None = None,
) -> list[AuditMeasure]:
    """The platform's measures by code; `overdue_on`: only those not closed and due before it."""
    stmt = select(AuditMeasure).where(AuditMeasure.platform_id == platform_id)
    if status is not None:
        stmt = stmt.where(AuditMeasure.status == status)
    if overdue_on is not None:
        stmt = stmt.where(AuditMeasure.status != "closed", AuditMeasure.due_date < overdue_on)
    return list(session.execute(stmt.order_by(AuditMeasure.id)).scalars())


def overdue(session: Session, platform_id: int, today: date) -> list[AuditMeasure]:
    """Measures not closed whose due date is before `today`, longest overdue first."""
    stmt = (
        select(AuditMeasure)
        .where(
            AuditMeasure.platform_id == platform_id,
            AuditMeasure.status != "closed",
            AuditMeasure.due_date < today,
        )
        .order_by(AuditMeasure.due_date, AuditMeasure.id)
    )
    return list(session.execute(stmt).scalars())


def status_counts(session: Session, platform_id: int) -> dict[str, int]:
    """How many of the platform's measures have each status (every status, zeros included)."""
    rows = session.execute(
        select(AuditMeasure.status, func.count())
        .where(AuditMeasure.platform_id == platform_id)
        .group_by(AuditMeasure.status)
    ).all()
    found = {str(s): int(n) for s, n in rows}
    return {s: found.get(s, 0) for s in MEASURE_STATUSES}


def get_run(session: Session, platform_id: int, run_id: int) -> AuditRun | None:
    """The platform's audit run with this id, if any."""
    run = session.get(AuditRun, run_id)
    return run if run is not None and run.platform_id == platform_id else None


def latest_run_after(session: Session, platform_id: int, after: datetime) -> AuditRun | None:
    """The platform's most recent audit run made after `after`, if any."""
    return session.execute(
        select(AuditRun)
        .where(AuditRun.platform_id == platform_id, AuditRun.created_at > after)
        .order_by(AuditRun.created_at.desc(), AuditRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def blocking(
    session: Session, measure: AuditMeasure, catalogue: Sequence[Requirement]
) -> tuple[list[str], AuditRun | None]:
    """The measure's requirements that keep it from closing now, and the run that says so."""
    run = latest_run_after(session, measure.platform_id, measure.created_at)
    statuses = None if run is None else dict(run.statuses or {})
    return blocking_requirements(measure.requirement_ids or [], catalogue, statuses), run


# ---------------------------------------------------------------- writes


def _record(
    session: Session,
    measure: AuditMeasure,
    action: str,
    actor: str,
    note: str | None,
    at: datetime,
    **extra: Any,
) -> None:
    session.add(
        AuditMeasureEvent(
            measure_id=measure.id, status=measure.status, actor=actor, note=note, at=at
        )
    )
    ledger.append(
        session,
        measure.platform_id,
        LEDGER_KIND,
        measure.code,
        {
            "action": action,
            "measure": measure.code,
            "status": measure.status,
            "area": measure.area,
            "owner": measure.owner,
            "due_date": measure.due_date.isoformat(),
            "requirements": list(measure.requirement_ids or []),
            "actor": actor,
            **extra,
        },
        at=at,
    )
    session.flush()


def _actor(actor: str) -> str:
    name = actor.strip()
    if not 1 <= len(name) <= 128:
        raise MeasureError("give a name of 1 to 128 characters", "actor")
    return name


def create_measure(
    session: Session,
    platform: Platform,
    *,
    area: str,
    description: str,
    owner: str,
    due_date: date,
    requirement_ids: Iterable[str],
    catalogue: Sequence[Requirement],
    actor: str,
    now: datetime,
    run_id: int | None = None,
    note: str | None = None,
) -> AuditMeasure:
    """Record a new open measure with the platform's next code (history row, ledger entry)."""
    area = check_area(area)
    description = check_description(description)
    owner = check_owner(owner)
    rids = check_requirements(requirement_ids, catalogue)
    actor = _actor(actor)
    ledger.lock_head(session, platform.id)
    codes = session.execute(
        select(AuditMeasure.code).where(AuditMeasure.platform_id == platform.id)
    ).scalars()
    measure = AuditMeasure(
        platform_id=platform.id,
        code=next_code(codes),
        area=area,
        description=description,
        owner=owner,
        due_date=due_date,
        requirement_ids=rids,
        evidence=[],
        status="open",
        run_id=run_id,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(measure)
    session.flush()
    _record(session, measure, "created", actor, note or "created", now, run=run_id)
    return measure


def set_status(
    session: Session,
    measure: AuditMeasure,
    status: str,
    *,
    catalogue: Sequence[Requirement],
    actor: str,
    now: datetime,
    note: str | None = None,
) -> AuditMeasure:
    """Move a measure to `status`; closing needs its requirements passing (ClosingBlocked)."""
    actor = _actor(actor)
    check_transition(measure.status, status)
    extra: dict[str, Any] = {"from": measure.status}
    if status == "closed":
        blocked, run = blocking(session, measure, catalogue)
        if blocked:
            raise ClosingBlocked(measure.code, blocked, None if run is None else run.id)
        extra["run"] = None if run is None else run.id
        measure.closed_at = now
    measure.status = status
    measure.updated_at = now
    session.flush()
    _record(session, measure, "status", actor, note, now, **extra)
    return measure


def add_evidence(
    session: Session, measure: AuditMeasure, reference: str, *, actor: str, now: datetime
) -> AuditMeasure:
    """Add an evidence reference (file name, URL, document id) to a measure not closed."""
    actor = _actor(actor)
    reference = check_evidence(reference)
    if measure.status == "closed":
        raise MeasureError(f"{measure.code} is closed", "evidence")
    if reference not in (measure.evidence or []):
        measure.evidence = [*(measure.evidence or []), reference]
    measure.updated_at = now
    session.flush()
    _record(session, measure, "evidence", actor, f"evidence: {reference}", now, evidence=reference)
    return measure


def _description(req: Requirement) -> str:
    text = f"整改 {req.id}：{req.text_zh}\nRectify {req.id}: {req.text_en}"
    return text if len(text) <= 2000 else text[:1999] + "…"


def measures_from_run(
    session: Session,
    platform: Platform,
    run_id: int,
    *,
    owner: str,
    due_date: date,
    catalogue: Sequence[Requirement],
    actor: str,
    now: datetime,
) -> list[AuditMeasure]:
    """Open one measure per requirement the run failed that no measure not closed covers yet.

    In catalogue order; failed ids the catalogue does not know are left out.
    """
    run = get_run(session, platform.id, run_id)
    if run is None:
        raise MeasureError(f"no audit run {run_id} on platform {platform.slug}", "run_id")
    statuses = dict(run.statuses or {})
    covered: set[str] = set()
    for m in list_measures(session, platform.id):
        if m.status in OPEN_STATUSES:
            covered.update(m.requirement_ids or [])
    made = []
    for req in catalogue:
        if statuses.get(req.id) != "fail" or req.id in covered:
            continue
        made.append(
            create_measure(
                session,
                platform,
                area=req.area,
                description=_description(req),
                owner=owner,
                due_date=due_date,
                requirement_ids=[req.id],
                catalogue=catalogue,
                actor=actor,
                now=now,
                run_id=run.id,
                note=f"opened from audit run {run.id} ({run.period}): {req.id} failed",
            )
        )
        covered.add(req.id)
    return made


# ---------------------------------------------------------------- views and export


def measure_view(
    session: Session,
    measure: AuditMeasure,
    catalogue: Sequence[Requirement],
    today: date,
    *,
    history: bool = True,
) -> dict[str, Any]:
    """A measure as JSON-ready data: fields, linked requirement texts, overdue days, history."""
    by_id = {r.id: r for r in catalogue}
    reqs = []
    for rid in measure.requirement_ids or []:
        r = by_id.get(rid)
        reqs.append(
            {"id": rid, "known": False}
            if r is None
            else {
                "id": rid,
                "known": True,
                "area": r.area,
                "kind": r.kind,
                "text_zh": r.text_zh,
                "text_en": r.text_en,
                "sources": [f"{s.instrument} {s.article}".strip() for s in r.sources],
            }
        )
    out: dict[str, Any] = {
        "code": measure.code,
        "area": measure.area,
        "description": measure.description,
        "owner": measure.owner,
        "due_date": measure.due_date.isoformat(),
        "status": measure.status,
        "overdue": is_overdue(measure.due_date, measure.status, today),
        "overdue_days": days_overdue(measure.due_date, measure.status, today),
        "requirement_ids": list(measure.requirement_ids or []),
        "requirements": reqs,
        "evidence": list(measure.evidence or []),
        "run_id": measure.run_id,
        "created_by": measure.created_by,
        "created_at": measure.created_at.isoformat(),
        "closed_at": None if measure.closed_at is None else measure.closed_at.isoformat(),
    }
    if history:
        out["history"] = [
            {"status": e.status, "actor": e.actor, "note": e.note, "at": e.at.isoformat()}
            for e in events_of(session, measure.id)
        ]
    return out


def export_measures(
    session: Session,
    platform: Platform,
    catalogue: Sequence[Requirement],
    now: datetime,
    today: date,
) -> dict[str, Any]:
    """The platform's rectification plan for the supervising authority (JSON-ready)."""
    measures = [
        measure_view(session, m, catalogue, today) for m in list_measures(session, platform.id)
    ]
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "platform": {"slug": platform.slug, "name": platform.name},
        "generated_at": now.isoformat(),
        "as_of_date": today.isoformat(),
        "counts": status_counts(session, platform.id),
        "overdue": sum(1 for m in measures if m["overdue"]),
        "measures": measures,
    }


def measures_csv(export: dict[str, Any]) -> str:
    """The export's measures as CSV (one row per measure; lists joined with ``; ``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for m in export["measures"]:
        w.writerow(
            [
                m["code"],
                m["area"],
                m["status"],
                m["owner"],
                m["due_date"],
                m["overdue_days"],
                "; ".join(m["requirement_ids"]),
                "; ".join(m["evidence"]),
                m["created_at"],
                m["closed_at"] or "",
                m["description"],
            ]
        )
    return buf.getvalue()
