"""Rectification measures in the store, on SQLite and PostgreSQL: codes per platform, history and
ledger entries, closing only when the latest audit run since the measure passes its
requirements, measures opened from a run's failures, overdue lists and the export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from qinglang.audit.measures import MeasureError
from qinglang.store import ledger, repo
from qinglang.store import rectification as rect
from qinglang.store.db import transaction
from qinglang.store.models import AuditMeasure, AuditRun, LedgerEntry, Platform
from tests.audit.test_measures import CATALOGUE

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 28)
DUE = date(2026, 12, 31)
D = timedelta(days=1)


def run_row(
    s: Session, p: Platform, statuses: dict[str, str], at: datetime, period: str = "2026"
) -> AuditRun:
    """An audit run as the runner writes it (inserted directly)."""
    counts = [
        sum(1 for v in statuses.values() if v == k) for k in ("pass", "fail", "not_evidenced")
    ]
    r = AuditRun(
        platform_id=p.id,
        period=period,
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        as_of=at,
        passed=counts[0],
        failed=counts[1],
        not_evidenced=counts[2],
        statuses=statuses,
        created_by="auditor",
        created_at=at,
    )
    s.add(r)
    s.flush()
    return r


def add(s: Session, p: Platform, *rids: str, at: datetime = T0, **kw: object) -> AuditMeasure:
    fields: dict[str, object] = {
        "area": "registration",
        "description": "补充监护人同意流程 / add the guardian consent step",
        "owner": "产品部 张",
        "due_date": DUE,
    }
    fields.update(kw)
    return rect.create_measure(
        s,
        p,
        requirement_ids=rids,
        catalogue=CATALOGUE,
        actor="officer",
        now=at,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def platforms(session_maker: sessionmaker[Session]) -> tuple[int, int]:
    with transaction(session_maker) as s:
        a = repo.create_platform(s, "video", "Video")
        b = repo.create_platform(s, "games", "Games")
        return a.id, b.id


def _p(s: Session, pid: int) -> Platform:
    p = s.get(Platform, pid)
    assert p is not None
    return p


def test_codes_are_sequential_per_platform_with_history_and_ledger(
    session_maker: sessionmaker[Session], platforms: tuple[int, int]
) -> None:
    a, b = platforms
    with transaction(session_maker) as s:
        m1 = add(s, _p(s, a), "REG-01")
        m2 = add(s, _p(s, a), "GOV-01", "REG-01", area="governance")
        other = add(s, _p(s, b))
        assert (m1.code, m2.code, other.code) == ("M-0001", "M-0002", "M-0001")
        assert m2.requirement_ids == ["GOV-01", "REG-01"] and m2.status == "open"
    with transaction(session_maker) as s:
        m = rect.get_measure(s, a, "m-0002")
        assert m is not None and m.area == "governance" and m.created_by == "officer"
        hist = rect.events_of(s, m.id)
        assert [(e.status, e.actor) for e in hist] == [("open", "officer")]
        entries = list(
            s.scalars(select(LedgerEntry).where(LedgerEntry.platform_id == a).order_by("seq"))
        )
        assert [e.kind for e in entries] == ["audit.measure", "audit.measure"]
        body = json.loads(entries[1].body)
        assert body["data"]["measure"] == "M-0002" and body["data"]["action"] == "created"
        assert "description" not in body["data"]
        assert ledger.verify(s, a) is None


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"area": "weather"}, "area"),
        ({"description": ""}, "description"),
        ({"owner": "x" * 129}, "owner"),
    ],
)
def test_bad_input_names_the_field(
    session_maker: sessionmaker[Session], platforms: tuple[int, int], kw: dict[str, Any], field: str
) -> None:
    with transaction(session_maker) as s, pytest.raises(MeasureError) as e:
        add(s, _p(s, platforms[0]), "REG-01", **kw)
    assert e.value.field == field


def test_unknown_requirement_is_refused(
    session_maker: sessionmaker[Session], platforms: tuple[int, int]
) -> None:
    with transaction(session_maker) as s, pytest.raises(MeasureError) as e:
        add(s, _p(s, platforms[0]), "REG-01", "NOPE-1")
    assert e.value.field == "requirement_ids" and "NOPE-1" in str(e.value)


def test_closing_needs_a_later_run_passing_every_linked_requirement(
    session_maker: sessionmaker[Session], platforms: tuple[int, int]
) -> None:
    a, b = platforms
    with transaction(session_maker) as s:
        p = _p(s, a)
        run_row(s, p, {"REG-01": "pass", "GOV-01": "pass"}, T0 - D)  # before: does not count
        m = add(s, p, "REG-01", "GOV-01")
        for st in ("in_progress", "done"):
            rect.set_status(s, m, st, catalogue=CATALOGUE, actor="owner", now=T0 + D)
        with pytest.raises(rect.ClosingBlocked) as e:
            rect.set_status(s, m, "closed", catalogue=CATALOGUE, actor="officer", now=T0 + D)
        assert e.value.blocking == ["REG-01", "GOV-01"] and e.value.run_id is None
        assert "no audit run since" in str(e.value) and e.value.field == "status"
        # another platform's passing run does not count either
        run_row(s, _p(s, b), {"REG-01": "pass", "GOV-01": "pass"}, T0 + 2 * D)
        partial = run_row(s, p, {"REG-01": "pass", "GOV-01": "not_evidenced"}, T0 + 3 * D)
        with pytest.raises(rect.ClosingBlocked) as e:
            rect.set_status(s, m, "closed", catalogue=CATALOGUE, actor="officer", now=T0 + 3 * D)
        assert e.value.blocking == ["GOV-01"] and e.value.run_id == partial.id
        assert m.status == "done" and m.closed_at is None
        # reopen, finish again, and a later run passes both
        rect.set_status(s, m, "in_progress", catalogue=CATALOGUE, actor="owner", now=T0 + 4 * D)
        rect.set_status(s, m, "done", catalogue=CATALOGUE, actor="owner", now=T0 + 5 * D)
        good = run_row(s, p, {"REG-01": "pass", "GOV-01": "pass"}, T0 + 6 * D)
        assert rect.blocking(s, m, CATALOGUE) == ([], good)
        rect.set_status(
            s, m, "closed", catalogue=CATALOGUE, actor="officer", now=T0 + 7 * D, note="verified"
        )
        assert m.status == "closed" and m.closed_at == T0 + 7 * D
        with pytest.raises(MeasureError):
            rect.set_status(s, m, "in_progress", catalogue=CATALOGUE, actor="x", now=T0 + 8 * D)
        code = m.code
    with transaction(session_maker) as s:
        m2 = rect.get_measure(s, a, code)
        assert m2 is not None and m2.status == "closed"
        hist = [(e.status, e.note) for e in rect.events_of(s, m2.id)]
        assert [h[0] for h in hist] == [
            "open",
            "in_progress",
            "done",
            "in_progress",
            "done",
            "closed",
        ]
        assert hist[-1][1] == "verified"
        last = s.scalars(
            select(LedgerEntry).where(LedgerEntry.platform_id == a).order_by(LedgerEntry.seq.desc())
        ).first()
        assert last is not None and last.kind == "audit.measure"
        data = json.loads(last.body)["data"]
        assert data["status"] == "closed" and data["from"] == "done" and data["run"] == good.id
        assert ledger.verify(s, a) is None


def test_a_measure_without_requirements_closes_when_done(
    session_maker: sessionmaker[Session], platforms: tuple[int, int]
) -> None:
    with transaction(session_maker) as s:
        m = add(s, _p(s, platforms[0]), area="governance")
        with pytest.raises(MeasureError, match="cannot go from open to closed"):
            rect.set_status(s, m, "closed", catalogue=CATALOGUE, actor="o", now=T0)
        rect.set_status(s, m, "in_progress", catalogue=CATALOGUE, actor="o", now=T0)
        rect.set_status(s, m, "done", catalogue=CATALOGUE, actor="o", now=T0)
        rect.set_status(s, m, "closed", catalogue=CATALOGUE, actor="o", now=T0)
        assert m.status == "closed"


def test_evidence_references(
    session_maker: sessionmaker[Session], platforms: tuple[int, int]
) -> None:
    with transaction(session_maker) as s:
        m = add(s, _p(s, platforms[0]), "REG-01")
        rect.add_evidence(s, m, "minutes-2026-11.pdf", actor="owner", now=T0 + D)
        rect.add_evidence(s, m, "https://intra/ticket/42", actor="owner", now=T0 + D)
        rect.add_evidence(s, m, "minutes-2026-11.pdf", actor="owner", now=T0 + D)
        with pytest.raises(MeasureError) as e:
            rect.add_evidence(s, m, "  ", actor="owner", now=T0 + D)
        assert e.value.field == "evidence"
        code = m.code
    with transaction(session_maker) as s:
        m2 = rect.get_measure(s, platforms[0], code)
        assert m2 is not None
        assert m2.evidence == ["minutes-2026-11.pdf", "https://intra/ticket/42"]
        notes = [e.note for e in rect.events_of(s, m2.id)]
        assert notes[1:] == [
            "evidence: minutes-2026-11.pdf",
            "evidence: https://intra/ticket/42",
            "evidence: minutes-2026-11.pdf",
        ]


def test_overdue_lists_and_counts(
    session_maker: sessionmaker[Session], platforms: tuple[int, int]
) -> None:
    a, b = platforms
    with transaction(session_maker) as s:
        p = _p(s, a)
        late = add(s, p, due_date=TODAY - 10 * D)
        later = add(s, p, due_date=TODAY - 2 * D)
        add(s, p, due_date=TODAY)  # due today: not overdue
        done = add(s, p, due_date=TODAY - 5 * D)
        for st in ("in_progress", "done"):
            rect.set_status(s, done, st, catalogue=CATALOGUE, actor="o", now=T0)
        closed = add(s, p, due_date=TODAY - 30 * D)
        for st in ("in_progress", "done", "closed"):
            rect.set_status(s, closed, st, catalogue=CATALOGUE, actor="o", now=T0)
        add(s, _p(s, b), due_date=TODAY - 100 * D)  # other platform
        rect.set_status(s, later, "in_progress", catalogue=CATALOGUE, actor="o", now=T0)
    with transaction(session_maker) as s:
        assert [m.code for m in rect.overdue(s, a, TODAY)] == [late.code, done.code, later.code]
        listed = rect.list_measures(s, a, overdue_on=TODAY)
        assert {m.code for m in listed} == {late.code, done.code, later.code}
        assert [m.code for m in rect.list_measures(s, a, status="closed")] == [closed.code]
        assert len(rect.list_measures(s, a)) == 5
        assert rect.status_counts(s, a) == {"open": 2, "in_progress": 1, "done": 1, "closed": 1}
        assert rect.status_counts(s, b)["open"] == 1


def test_measures_from_a_run(
    session_maker: sessionmaker[Session], platforms: tuple[int, int]
) -> None:
    a, b = platforms
    with transaction(session_maker) as s:
        p = _p(s, a)
        add(s, p, "CON-01", area="contact")  # already covers CON-01
        closed = add(s, p, "USE-01", area="use")
        for st in ("in_progress", "done"):
            rect.set_status(s, closed, st, catalogue=CATALOGUE, actor="o", now=T0)
        statuses = {
            "REG-01": "fail",
            "CON-01": "fail",
            "USE-01": "fail",  # its measure is done, not closed: still covered
            "REG-02": "pass",
            "GOV-01": "not_evidenced",
            "GONE-9": "fail",  # not in the catalogue any more
        }
        run = run_row(s, p, statuses, T0 + D)
        made = rect.measures_from_run(
            s,
            p,
            run.id,
            owner="合规部",
            due_date=DUE,
            catalogue=CATALOGUE,
            actor="officer",
            now=T0 + 2 * D,
        )
        assert [(m.code, m.requirement_ids, m.area, m.run_id) for m in made] == [
            ("M-0003", ["REG-01"], "registration", run.id)
        ]
        assert "REG-01" in made[0].description and made[0].owner == "合规部"
        assert rect.events_of(s, made[0].id)[0].note == (
            f"opened from audit run {run.id} (2026): REG-01 failed"
        )
        again = rect.measures_from_run(
            s,
            p,
            run.id,
            owner="x",
            due_date=DUE,
            catalogue=CATALOGUE,
            actor="officer",
            now=T0 + 3 * D,
        )
        assert again == []
        with pytest.raises(MeasureError) as e:
            rect.measures_from_run(
                s, _p(s, b), run.id, owner="x", due_date=DUE, catalogue=CATALOGUE, actor="o", now=T0
            )
        assert e.value.field == "run_id"


def test_export_for_the_authority(
    session_maker: sessionmaker[Session], platforms: tuple[int, int]
) -> None:
    a, _ = platforms
    with transaction(session_maker) as s:
        p = _p(s, a)
        m = add(s, p, "REG-01", "GOV-01", due_date=TODAY - 3 * D)
        rect.set_status(s, m, "in_progress", catalogue=CATALOGUE, actor="owner", now=T0 + D)
        rect.add_evidence(s, m, "flow-v2.pdf", actor="owner", now=T0 + 2 * D)
        add(s, p, description="第二项\n两行", area="storage")
    with transaction(session_maker) as s:
        data = rect.export_measures(s, _p(s, a), CATALOGUE, T0 + 5 * D, TODAY)
    json.dumps(data, ensure_ascii=False)
    assert data["format"] == rect.EXPORT_FORMAT and data["platform"]["slug"] == "video"
    assert data["generated_at"] == (T0 + 5 * D).isoformat()
    assert data["counts"] == {"open": 1, "in_progress": 1, "done": 0, "closed": 0}
    assert data["overdue"] == 1
    first = data["measures"][0]
    assert first["code"] == "M-0001" and first["overdue_days"] == 3
    assert [h["status"] for h in first["history"]] == ["open", "in_progress", "in_progress"]
    assert [r["text_en"] for r in first["requirements"]] == [
        "Requirement REG-01",
        "Requirement GOV-01",
    ]
    assert first["requirements"][1]["kind"] == "attested"
    assert first["evidence"] == ["flow-v2.pdf"]
    rows = list(csv.reader(io.StringIO(rect.measures_csv(data))))
    assert rows[0] == list(rect.CSV_COLUMNS)
    assert rows[1][:7] == [
        "M-0001",
        "registration",
        "in_progress",
        "产品部 张",
        "2026-11-25",
        "3",
        "REG-01; GOV-01",
    ]
    assert rows[2][0] == "M-0002" and rows[2][-1] == "第二项\n两行"
    assert len(rows) == 3
