"""`qinglang audit measure|pia|attest`: rectification measures, the PI impact assessment and
attested documents from the command line.

- ``measure``: add, list (``--overdue``), show (with history), set-status (closing needs the
  linked requirements passing in the latest audit run since the measure was made), add-evidence,
  from-run (one measure per failed requirement not yet covered), export (measures.json and
  measures.csv for the supervising authority);
- ``pia``: draft (the template filled from the platform's configuration, as JSON), save (an
  edited document as a new version, kept per pack rule cn.audit.records_retention), list, show;
- ``attest``: add (a document evidencing an attested requirement, encrypted at rest), list.

Every change is audited in the platform's ledger (``audit.measure``, ``audit.impact_assessment``,
``audit.attestation``). Bad input exits with code 2 and a one-line message.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from qinglang.commands.common import DEFAULT_DB, DbOption, fail, open_service, out

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from qinglang.api.service import Service
    from qinglang.audit.model import Requirement
    from qinglang.policy import Policy
    from qinglang.store.models import AuditMeasure, Platform

measure_app = typer.Typer(help="Rectification measures.", no_args_is_help=True)
pia_app = typer.Typer(help="PI impact assessment (PIPL art. 55).", no_args_is_help=True)
attest_app = typer.Typer(help="Documents evidencing attested requirements.", no_args_is_help=True)

MeasureStatus = Literal["open", "in_progress", "done", "closed"]
PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="platform slug (default: the only platform)")
]
ActorOpt = Annotated[str, typer.Option("--actor", help="who is doing this, for the ledger")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
CodeArg = Annotated[str, typer.Argument(help="measure code, e.g. M-0001")]


def catalogue() -> Sequence[Requirement]:
    """The requirement catalogue the commands check ids against (the shipped one)."""
    from qinglang.audit.catalogue import load_catalogue

    return load_catalogue()


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _now() -> datetime:
    return datetime.now(UTC)


def _date(value: str, option: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: expected a date YYYY-MM-DD, got {value!r}")


def _open(db: str, slug: str | None) -> tuple[Service, Platform, Policy]:
    from qinglang.commands.events import _platform

    service = open_service(db)
    platform = _platform(service, slug)
    try:
        policy = service.policy_for(platform)
    except Exception as exc:
        fail(f"platform {platform.slug}: invalid policy overlay: {exc}")
    return service, platform, policy


def _today(policy: Policy, now: datetime) -> date:
    return now.astimezone(policy.tz).date()


def _catalogue() -> Sequence[Requirement]:
    try:
        return catalogue()
    except Exception as exc:
        fail(f"cannot load the requirement catalogue: {exc}")


def _measure(s: Session, platform: Platform, code: str) -> AuditMeasure:
    from qinglang.store import rectification as rect

    m = rect.get_measure(s, platform.id, code)
    if m is None:
        fail(f"no measure {code!r} on platform {platform.slug}")
    return m


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


# ---------------------------------------------------------------- measures


@measure_app.command("add")
def measure_add(
    area: Annotated[str, typer.Option(help="registration, storage, use, sharing, …")],
    description: Annotated[str, typer.Option(help="what will be done (1 to 2000 characters)")],
    owner: Annotated[str, typer.Option(help="who is responsible")],
    due: Annotated[str, typer.Option(help="due date, YYYY-MM-DD")],
    actor: ActorOpt,
    requirement: Annotated[
        list[str] | None, typer.Option("--requirement", help="a linked requirement id (repeat)")
    ] = None,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a new measure (code assigned in sequence: M-0001, …)."""
    from qinglang.audit.measures import MeasureError
    from qinglang.store import rectification as rect

    due_date = _date(due, "--due")
    cat = _catalogue()
    service, p, policy = _open(db, platform)
    now = _now()
    try:
        with service.tx(write=True) as s:
            m = rect.create_measure(
                s,
                s.merge(p),
                area=area,
                description=description,
                owner=owner,
                due_date=due_date,
                requirement_ids=requirement or (),
                catalogue=cat,
                actor=actor,
                now=now,
            )
            view = rect.measure_view(s, m, cat, _today(policy, now), history=False)
    except MeasureError as exc:
        fail(str(exc))
    if as_json:
        _json(view)
        return
    _say(f"{view['code']} opened: {view['area']}, owner {view['owner']}, due {view['due_date']}")


@measure_app.command("list")
def measure_list(
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    status: Annotated[MeasureStatus | None, typer.Option(help="only this status")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only overdue measures")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The platform's measures in code order."""
    from qinglang.store import rectification as rect

    cat = _catalogue()
    service, p, policy = _open(db, platform)
    today = _today(policy, _now())
    with service.tx() as s:
        rows = rect.list_measures(s, p.id, status=status, overdue_on=today if overdue else None)
        items = [rect.measure_view(s, m, cat, today, history=False) for m in rows]
    if as_json:
        _json({"platform": p.slug, "as_of_date": today.isoformat(), "items": items})
        return
    if not items:
        _say(f"no measures on {p.slug} match")
        return
    t = Table(title=f"measures on {p.slug} ({len(items)})")
    for col in ("code", "area", "status", "owner", "due", "requirements", "description"):
        t.add_column(col, overflow="fold")
    for m in items:
        due = m["due_date"] + (f" OVERDUE {m['overdue_days']}d" if m["overdue"] else "")
        first_line = m["description"].splitlines()[0]
        t.add_row(
            m["code"],
            m["area"],
            m["status"],
            m["owner"],
            due,
            ", ".join(m["requirement_ids"]) or "-",
            first_line[:80],
        )
    out.print(t)


@measure_app.command("show")
def measure_show(
    code: CodeArg,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A measure with its linked requirements, evidence, history and what blocks closing."""
    from qinglang.store import rectification as rect

    cat = _catalogue()
    service, p, policy = _open(db, platform)
    today = _today(policy, _now())
    with service.tx() as s:
        m = _measure(s, p, code)
        view = rect.measure_view(s, m, cat, today)
        blocked, run = rect.blocking(s, m, cat)
        view["blocking"] = blocked
        view["latest_run"] = None if run is None else run.id
    if as_json:
        _json(view)
        return
    _say(
        f"{view['code']}  {view['status']}  {view['area']}  owner {view['owner']}  "
        f"due {view['due_date']}"
        + (f"  OVERDUE {view['overdue_days']}d" if view["overdue"] else "")
    )
    _say(view["description"])
    for r in view["requirements"]:
        _say(f"  requirement {r['id']}" + (f": {r['text_en']}" if r["known"] else " (unknown)"))
    for e in view["evidence"]:
        _say(f"  evidence {e}")
    for h in view["history"]:
        _say(
            f"  {h['at']}  {h['status']:<11} {h['actor']}" + (f": {h['note']}" if h["note"] else "")
        )
    if view["status"] != "closed" and view["requirement_ids"]:
        _say(
            "closes when every linked requirement passes; blocking now: "
            + (", ".join(blocked) or "none")
        )


@measure_app.command("set-status")
def measure_set_status(
    code: CodeArg,
    status: Annotated[MeasureStatus, typer.Argument(help="in_progress, done or closed")],
    actor: ActorOpt,
    note: Annotated[str | None, typer.Option(help="a note for the history")] = None,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a measure on: open → in_progress → done → closed (done → in_progress reopens)."""
    from qinglang.audit.measures import MeasureError
    from qinglang.store import rectification as rect

    cat = _catalogue()
    service, p, policy = _open(db, platform)
    now = _now()
    try:
        with service.tx(write=True) as s:
            m = rect.set_status(
                s, _measure(s, p, code), status, catalogue=cat, actor=actor, now=now, note=note
            )
            view = rect.measure_view(s, m, cat, _today(policy, now), history=False)
    except MeasureError as exc:
        fail(str(exc))
    if as_json:
        _json(view)
        return
    _say(f"{view['code']} is now {view['status']}")


@measure_app.command("add-evidence")
def measure_add_evidence(
    code: CodeArg,
    reference: Annotated[str, typer.Argument(help="file name, URL or document id")],
    actor: ActorOpt,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
) -> None:
    """Add an evidence reference to a measure."""
    from qinglang.audit.measures import MeasureError
    from qinglang.store import rectification as rect

    service, p, _ = _open(db, platform)
    try:
        with service.tx(write=True) as s:
            m = rect.add_evidence(s, _measure(s, p, code), reference, actor=actor, now=_now())
            n = len(m.evidence)
    except MeasureError as exc:
        fail(str(exc))
    _say(f"{code.upper()}: evidence added ({n} in all)")


@measure_app.command("from-run")
def measure_from_run(
    run_id: Annotated[int, typer.Argument(help="audit run id")],
    owner: Annotated[str, typer.Option(help="owner of the new measures")],
    due: Annotated[str, typer.Option(help="due date of the new measures, YYYY-MM-DD")],
    actor: ActorOpt,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open one measure per requirement the run failed that no open measure covers yet."""
    from qinglang.audit.measures import MeasureError
    from qinglang.store import rectification as rect

    due_date = _date(due, "--due")
    cat = _catalogue()
    service, p, policy = _open(db, platform)
    now = _now()
    try:
        with service.tx(write=True) as s:
            made = rect.measures_from_run(
                s,
                s.merge(p),
                run_id,
                owner=owner,
                due_date=due_date,
                catalogue=cat,
                actor=actor,
                now=now,
            )
            views = [rect.measure_view(s, m, cat, _today(policy, now), history=False) for m in made]
    except MeasureError as exc:
        fail(str(exc))
    if as_json:
        _json({"run_id": run_id, "opened": views})
        return
    if not views:
        _say(f"run {run_id}: no failed requirement without a measure; nothing opened")
        return
    for v in views:
        _say(f"{v['code']} opened for {', '.join(v['requirement_ids'])} ({v['area']})")


@measure_app.command("export")
def measure_export(
    out_dir: Annotated[Path, typer.Option("--out", help="directory to write into")],
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
) -> None:
    """Write measures.json (every measure with its history) and measures.csv to a directory."""
    from qinglang.store import rectification as rect

    cat = _catalogue()
    if out_dir.exists() and not out_dir.is_dir():
        fail(f"--out: {out_dir} is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out: cannot create {out_dir}: {exc.strerror or exc}")
    service, p, policy = _open(db, platform)
    now = _now()
    with service.tx() as s:
        data = rect.export_measures(s, s.merge(p), cat, now, _today(policy, now))
    _write(out_dir / "measures.json", json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    _write(out_dir / "measures.csv", rect.measures_csv(data))
    _say(f"{len(data['measures'])} measures of {p.slug} written to {out_dir}")


# ---------------------------------------------------------------- impact assessment


@pia_app.command("draft")
def pia_draft(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write the JSON here instead of printing it")
    ] = None,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
) -> None:
    """The assessment template filled from the platform's configuration, as JSON to edit."""
    from qinglang.audit.impact import draft
    from qinglang.store import impact as store_impact

    service, p, policy = _open(db, platform)
    with service.tx() as s:
        config = store_impact.platform_config(s, s.merge(p), policy)
    text = json.dumps(draft(config), ensure_ascii=False, indent=2) + "\n"
    if out_file is None:
        print(text, end="")
        return
    _write(out_file, text)
    _say(f"draft written to {out_file}: fill in impact, risks, conclusion and sign_off, then save")


@pia_app.command("save")
def pia_save(
    file: Annotated[Path, typer.Argument(help="the edited assessment (JSON)")],
    actor: ActorOpt,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
) -> None:
    """Validate an edited assessment and store it as the next version."""
    from qinglang.audit.impact import AssessmentError, validate
    from qinglang.store import impact as store_impact

    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"{file}: not JSON: {exc}")
    try:
        validate(body)
    except AssessmentError as exc:
        fail(f"{file}: {exc}")
    service, p, policy = _open(db, platform)
    try:
        with service.tx(write=True) as s:
            row = store_impact.save_assessment(s, s.merge(p), body, actor, _now(), policy)
            summary = store_impact.assessment_summary(row)
    except (AssessmentError, store_impact.AttestationError) as exc:
        fail(str(exc))
    _say(
        f"impact assessment version {summary['version']} saved "
        f"(sha256 {summary['content_hash'][:16]}…, kept until {summary['keep_until']})"
    )


@pia_app.command("list")
def pia_list(
    db: DbOption = DEFAULT_DB, platform: PlatformOpt = None, as_json: JsonOpt = False
) -> None:
    """The platform's assessment versions, newest first."""
    from qinglang.store import impact as store_impact

    service, p, _ = _open(db, platform)
    with service.tx() as s:
        items = [store_impact.assessment_summary(a) for a in store_impact.assessments(s, p.id)]
    if as_json:
        _json({"platform": p.slug, "items": items})
        return
    if not items:
        _say(f"no impact assessment on {p.slug}: start with `pia draft`")
        return
    t = Table(title=f"impact assessments of {p.slug}")
    for col in ("version", "created", "by", "kept until", "sha256"):
        t.add_column(col, overflow="fold")
    for a in items:
        t.add_row(
            str(a["version"]),
            a["created_at"][:19],
            a["created_by"],
            a["keep_until"],
            a["content_hash"],
        )
    out.print(t)


@pia_app.command("show")
def pia_show(
    version: Annotated[int | None, typer.Argument(help="version (default: the latest)")] = None,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
) -> None:
    """One version of the assessment as JSON (metadata and document)."""
    from qinglang.store import impact as store_impact

    service, p, _ = _open(db, platform)
    with service.tx() as s:
        row = (
            store_impact.latest(s, p.id)
            if version is None
            else store_impact.get_assessment(s, p.id, version)
        )
        if row is None:
            fail(
                f"no impact assessment on {p.slug}"
                if version is None
                else f"no impact assessment version {version} on {p.slug}"
            )
        data = {**store_impact.assessment_summary(row), "body": row.body}
    _json(data)


# ---------------------------------------------------------------- attestations


@attest_app.command("add")
def attest_add(
    requirement_id: Annotated[str, typer.Argument(help="an attested requirement's id")],
    file: Annotated[Path, typer.Argument(help="the document (at most 10 MB)")],
    title: Annotated[str, typer.Option(help="the document's title")],
    owner: Annotated[str, typer.Option(help="who answers for the document")],
    date_: Annotated[str, typer.Option("--date", help="the document's date, YYYY-MM-DD")],
    actor: ActorOpt,
    media_type: Annotated[
        str | None, typer.Option(help="media type (default: guessed from the file name)")
    ] = None,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a document that evidences an attested requirement (encrypted at rest)."""
    from qinglang.store import impact as store_impact

    document_date = _date(date_, "--date")
    if not file.is_file():
        fail(f"no file {file}")
    size = file.stat().st_size
    if size > store_impact.MAX_ATTESTATION_BYTES:
        fail(f"{file}: {size} bytes; at most {store_impact.MAX_ATTESTATION_BYTES} (10 MB)")
    try:
        content = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    mt = media_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    cat = _catalogue()
    service, p, policy = _open(db, platform)
    try:
        with service.tx(write=True) as s:
            row = store_impact.attest(
                s,
                s.merge(p),
                requirement_id,
                title,
                owner,
                document_date,
                mt,
                content,
                actor,
                _now(),
                catalogue=cat,
                policy=policy,
            )
            summary = store_impact.attestation_summary(row)
    except store_impact.AttestationError as exc:
        fail(str(exc))
    if as_json:
        _json(summary)
        return
    _say(
        f"attestation {summary['id']} for {requirement_id}: {summary['title']} "
        f"({summary['document_date']}, sha256 {summary['sha256'][:16]}…)"
    )


@attest_app.command("list")
def attest_list(
    requirement: Annotated[str | None, typer.Option(help="only this requirement")] = None,
    db: DbOption = DEFAULT_DB,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The platform's attestations, newest document first (documents are not shown)."""
    from qinglang.store import impact as store_impact

    service, p, _ = _open(db, platform)
    with service.tx() as s:
        rows = store_impact.list_attestations(s, p.id, requirement)
        items = [store_impact.attestation_summary(a) for a in rows]
    if as_json:
        _json({"platform": p.slug, "items": items})
        return
    if not items:
        _say(f"no attestations on {p.slug} match")
        return
    t = Table(title=f"attestations on {p.slug}")
    for col in ("id", "requirement", "title", "owner", "date", "sha256"):
        t.add_column(col, overflow="fold")
    for a in items:
        t.add_row(
            str(a["id"]),
            a["requirement_id"],
            a["title"],
            a["owner"],
            a["document_date"],
            a["sha256"],
        )
    out.print(t)
