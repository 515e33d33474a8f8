"""The reviewer workspace of the console: the alert queue, one alert with its minimised evidence,
and the reviewer's actions (assign, dismiss, restrict, suspend, remove content, notify guardians,
report to an authority, legal hold).

Every read and every action goes through ``qinglang.store.review`` exactly as ``/v1/review``
does, so each is audited the same way (``review.<kind>`` ledger entries; ``staff.read`` per minor
for each read of evidence or of a document). A reviewer is recorded as ``console:<username>``.
See docs/console.md ("Reviewer workspace") and docs/review.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qinglang import __version__
from qinglang.api.service import now_utc
from qinglang.review.actions import ACTION_KINDS, AUTHORITIES, ActionError
from qinglang.review.priority import OPEN_STATUSES, PRIORITIES
from qinglang.store import review as store_review
from qinglang.store.models import Alert, Platform
from qinglang.web.auth import CurrentUser, csrf_checked, require_role, service_of
from qinglang.web.render import render, static_asset

T = TypeVar("T")

PREFIX: Final = "/console/review"
router = APIRouter(prefix=PREFIX, include_in_schema=False)

Staff = Annotated[CurrentUser, Depends(require_role("reviewer", "platform_admin"))]
CSRF: Final = [Depends(csrf_checked)]

STATUSES: Final = ("open", "in_review", "actioned", "dismissed")
DEFAULT_STATUSES: Final = OPEN_STATUSES
ASSIGNED: Final = ("any", "me", "none")
PAGE_SIZE: Final = 50
QUEUE_CAP: Final = 1000
"""At most this many alerts per priority are read for one queue page."""
DURATIONS: Final = {"7d": 7, "30d": 30, "90d": 90, "365d": 365, "indefinite": None}
"""Restriction and suspension lengths offered (days; None: until lifted)."""
MAX_REASON: Final = 2000
"""As /v1/review: a reason is at most this many characters."""
FORMS: Final = (*ACTION_KINDS, "assign", "hold", "release")
"""The forms of the alert page (each can carry an error and is named in a flash)."""
ASSETS: Final = {"reviewer.js": "text/javascript", "reviewer.css": "text/css"}
"""The workspace's script and stylesheet (in templates/reviewer/, served as files: the
console's Content-Security-Policy allows no inline script or style)."""


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """The queue's filters, from the GET form."""

    status: tuple[str, ...] = DEFAULT_STATUSES
    priority: tuple[str, ...] = ()
    assigned: str = "any"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> QueueQuery:
        """Read the filters from query parameters (unknown values are ignored)."""
        getlist: Callable[[str], list[str]] = getattr(params, "getlist", lambda k: [])
        submitted = params.get("f") == "1"
        status = tuple(s for s in STATUSES if s in getlist("status"))
        if not submitted and not status:
            status = DEFAULT_STATUSES
        priority = tuple(p for p in PRIORITIES if p in getlist("priority"))
        assigned = str(params.get("assigned") or "any")
        raw_page = str(params.get("page") or "1")
        page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 10_000 else 1
        return cls(status, priority, assigned if assigned in ASSIGNED else "any", page)

    def query(self, page: int | None = None) -> str:
        """These filters as a query string (for links and the polled fragment)."""
        pairs: list[tuple[str, str]] = [("f", "1")]
        pairs += [("status", s) for s in self.status]
        pairs += [("priority", p) for p in self.priority]
        pairs.append(("assigned", self.assigned))
        pairs.append(("page", str(page or self.page)))
        return urlencode(pairs)


@dataclass(slots=True)
class FormError:
    """A refused form: which form, which field, the message key and the HTTP status."""

    form: str
    field: str
    key: str
    status: int = 422
    values: dict[str, str] = dataclasses.field(default_factory=dict)


def actor_of(user: CurrentUser) -> str:
    """How a console user is named in review audit entries and as an assignee."""
    return f"console:{user.username}"


def _common() -> dict[str, Any]:
    return {"parse_iso": datetime.fromisoformat, "asset_version": __version__}


async def _in_tx(request: Request, work: Callable[[Session], T], write: bool = False) -> T:
    """Run `work` in one transaction (committed on success), off the event loop."""
    service = service_of(request)

    def run() -> T:
        with service.tx(write=write) as s:
            return work(s)

    return await run_in_threadpool(run)


def _duration(seconds: float) -> list[tuple[str, int]]:
    """A length of time as its two largest units: [(unit, n)], units d, h, m (or lt1m)."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return [("d", days), ("h", hours)] if hours else [("d", days)]
    if hours:
        return [("h", hours), ("m", mins)] if mins else [("h", hours)]
    return [("m", mins)] if mins else [("lt1m", 0)]


def sla_of(alert: Alert, now: datetime) -> dict[str, Any]:
    """The SLA of an alert: time left or overdue while undecided, else whether it was met."""
    if alert.status in OPEN_STATUSES:
        left = (alert.due_at - now).total_seconds()
        state = "left" if left >= 0 else "overdue"
        return {"state": state, "parts": _duration(abs(left))}
    met = alert.first_action_at is not None and alert.first_action_at <= alert.due_at
    return {"state": "met" if met else "missed", "parts": []}


def _row(alert: Alert, now: datetime) -> dict[str, Any]:
    row = store_review.alert_summary(alert, now)
    row["minors_count"] = len(row["minors"])
    row["sla"] = sla_of(alert, now)
    return row


def queue_rows(
    s: Session, user: CurrentUser, q: QueueQuery, now: datetime
) -> tuple[list[dict[str, Any]], int, bool]:
    """One page of the queue, by priority then due time; the number matching; whether capped."""
    assignee = actor_of(user) if q.assigned == "me" else None
    alerts: list[Alert] = []
    capped = False
    for p in [p for p in PRIORITIES if not q.priority or p in q.priority]:
        flt = store_review.QueueFilter(status=q.status, priority=(p,), assignee=assignee)
        found, total = store_review.list_alerts(s, user.platform_id, flt, now, limit=QUEUE_CAP)
        capped = capped or total > len(found)
        if q.assigned == "none":
            found = [a for a in found if a.assignee is None]
        alerts.extend(found)
    start = (q.page - 1) * PAGE_SIZE
    rows = [_row(a, now) for a in alerts[start : start + PAGE_SIZE]]
    return rows, len(alerts), capped


def _queue_context(user: CurrentUser, q: QueueQuery, s: Session) -> dict[str, Any]:
    now = now_utc()
    rows, total, capped = queue_rows(s, user, q, now)
    pages = max(1, -(-total // PAGE_SIZE))
    return {
        **_common(),
        "q": q,
        "rows": rows,
        "total": total,
        "capped": capped,
        "page": q.page,
        "pages": pages,
        "prev_query": q.query(q.page - 1) if q.page > 1 else None,
        "next_query": q.query(q.page + 1) if q.page < pages else None,
        "poll_query": q.query(),
        "statuses": STATUSES,
        "priorities": PRIORITIES,
        "assigned_options": ASSIGNED,
        "queue_cap": QUEUE_CAP,
    }


@router.get("")
async def queue(request: Request, user: Staff) -> Response:
    """The alert queue with its filters (a GET form)."""
    q = QueueQuery.parse(request.query_params)
    ctx = await _in_tx(request, lambda s: _queue_context(user, q, s))
    return render(request, "reviewer/queue.html", ctx)


@router.get("/rows")
async def queue_rows_fragment(request: Request, user: Staff) -> Response:
    """The queue's rows alone: htmx polls this every 30 s to refresh the SLA countdowns."""
    q = QueueQuery.parse(request.query_params)
    ctx = await _in_tx(request, lambda s: _queue_context(user, q, s))
    return render(request, "reviewer/_rows.html", ctx)


# ---------------------------------------------------------------- one alert


def _find(s: Session, user: CurrentUser, alert_id: str, lock: bool = False) -> Alert | None:
    """The alert of the user's own platform (None for another platform's or an unknown one)."""
    return store_review.find_alert(s, user.platform_id, alert_id, lock=lock)


def _not_found() -> HTTPException:
    """Another platform's alert, or none: the console's 404 page (nothing is revealed)."""
    return HTTPException(status_code=404)


def _detail(s: Session, user: CurrentUser, alert_id: str) -> dict[str, Any] | None:
    """The alert with evidence and history; reading it is a staff read, logged per minor."""
    alert = _find(s, user, alert_id)
    if alert is None:
        return None
    now = now_utc()
    store_review.record_view(s, alert, actor_of(user), "evidence", now)
    detail = store_review.alert_detail(s, alert, now)
    detail["sla"] = sla_of(alert, now)
    base = f"{PREFIX}/alerts/{alert.alert_id}"
    for doc in detail["documents"]:
        doc["console_url"] = f"{base}/documents/{doc['id']}"
    held = detail["hold"] is not None and detail["hold"]["active"]
    detail["held"] = held
    detail["closed"] = alert.status == "dismissed"
    return detail


async def _alert_page(
    request: Request, user: CurrentUser, alert_id: str, error: FormError | None = None
) -> Response:
    detail = await _in_tx(request, lambda s: _detail(s, user, alert_id), write=True)
    if detail is None:
        raise _not_found()
    done = request.query_params.get("done")
    doc = request.query_params.get("doc") or ""
    ctx = {
        **_common(),
        "a": detail,
        "base": f"{PREFIX}/alerts/{detail['id']}",
        "error": error,
        "values": {} if error is None else error.values,
        "done": done if done in FORMS and error is None else None,
        "done_doc": next((d for d in detail["documents"] if str(d["id"]) == doc), None),
        "durations": list(DURATIONS),
        "authorities": list(AUTHORITIES),
    }
    return render(
        request,
        "reviewer/alert.html",
        ctx,
        status_code=200 if error is None else error.status,
    )


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: str, user: Staff) -> Response:
    """An alert: summary, minimised evidence, history and the action forms (an audited read)."""
    return await _alert_page(request, user, alert_id)


def _done(alert_id: str, form: str, doc: int | None = None) -> RedirectResponse:
    query = {"done": form} if doc is None else {"done": form, "doc": str(doc)}
    return RedirectResponse(f"{PREFIX}/alerts/{alert_id}?{urlencode(query)}", status_code=303)


def _error_key(form: str, exc: ActionError, status: str | None) -> tuple[str, str]:
    """The form field to mark and the message key for a refused action."""
    if exc.field == "kind" and exc.status == 409:
        return (
            "",
            "reviewer.error.dismissed" if status == "dismissed" else "reviewer.error.actioned",
        )
    if exc.field == "hold":
        return "", "reviewer.error.held" if form == "hold" else "reviewer.error.not_held"
    if exc.field == "reason":
        if form in ("hold", "release"):
            return "reason", "reviewer.error.hold_reason"
        if form == "dismiss":
            return "reason", "reviewer.error.reason_required"
        return "reason", "reviewer.error.reason_long"
    if exc.field == "until":
        return "duration", "reviewer.error.duration"
    if exc.field in ("items", "authority", "reference", "duration"):
        return exc.field, f"reviewer.error.{exc.field}"
    return "", "reviewer.error.invalid"


async def _form(request: Request) -> dict[str, str]:
    """The posted form's text fields (the CSRF token left out)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def _params(kind: str, values: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """The action's parameters from the form, as /v1/review passes them to store.review.act."""
    params: dict[str, Any] = {"until": None, "items": None, "authority": None, "reference": None}
    if kind in ("restrict", "suspend"):
        choice = values.get("duration", "indefinite")
        if choice not in DURATIONS:
            raise ActionError("duration", "choose one of the lengths offered")
        days = DURATIONS[choice]
        params["until"] = None if days is None else now + timedelta(days=days)
    elif kind == "remove_content":
        raw = values.get("items", "").replace(",", "\n").splitlines()
        params["items"] = [i.strip() for i in raw if i.strip()]
    elif kind == "report":
        params["authority"] = values.get("authority") or None
        params["reference"] = (values.get("reference") or "").strip() or None
    return params


async def _apply(
    request: Request,
    user: CurrentUser,
    alert_id: str,
    form: str,
    values: dict[str, str],
    work: Callable[[Session, Alert, datetime], dict[str, Any]],
) -> Response:
    """Run one action in a write transaction; redirect with a flash, or re-render with the
    error at its field (nothing is written when an action is refused)."""
    status: list[str] = []

    def run(s: Session) -> dict[str, Any] | None:
        alert = _find(s, user, alert_id, lock=True)
        if alert is None:
            return None
        status.append(alert.status)
        return work(s, alert, now_utc())

    try:
        result = await _in_tx(request, run, write=True)
    except ActionError as exc:
        fld, key = _error_key(form, exc, status[0] if status else None)
        return await _alert_page(
            request, user, alert_id, FormError(form, fld, key, exc.status, values)
        )
    if result is None:
        raise _not_found()
    document = result.get("document")
    return _done(alert_id, form, None if document is None else int(document["id"]))


@router.post("/alerts/{alert_id}/assign", dependencies=CSRF)
async def assign_to_me(request: Request, alert_id: str, user: Staff) -> Response:
    """Assign the alert to oneself (an open alert becomes in_review); audited as review.assign."""
    values = await _form(request)

    def work(s: Session, alert: Alert, now: datetime) -> dict[str, Any]:
        return store_review.assign(s, alert, actor_of(user), actor_of(user), now)

    return await _apply(request, user, alert_id, "assign", values, work)


@router.post("/alerts/{alert_id}/actions/{kind}", dependencies=CSRF)
async def take_action(request: Request, alert_id: str, kind: str, user: Staff) -> Response:
    """Take a reviewer action (store.review.act, as POST /v1/review/alerts/{id}/actions)."""
    if kind not in ACTION_KINDS:
        raise _not_found()
    service = service_of(request)
    values = await _form(request)

    def work(s: Session, alert: Alert, now: datetime) -> dict[str, Any]:
        reason = values.get("reason")
        if reason is not None and len(reason) > MAX_REASON:
            raise ActionError("reason", f"at most {MAX_REASON} characters")
        params = _params(kind, values, now)
        platform = s.get(Platform, user.platform_id)
        assert platform is not None
        policy = service.policy_for(platform)
        return store_review.act(
            s, platform, policy, alert, kind, actor_of(user), reason or None, params, now
        )

    return await _apply(request, user, alert_id, kind, values, work)


@router.post("/alerts/{alert_id}/hold", dependencies=CSRF)
async def set_hold(request: Request, alert_id: str, user: Staff) -> Response:
    """Put the alert's evidence under legal hold, with a reason (audited as review.hold)."""
    values = await _form(request)

    def work(s: Session, alert: Alert, now: datetime) -> dict[str, Any]:
        return store_review.set_hold(s, alert, actor_of(user), values.get("reason"), now)

    return await _apply(request, user, alert_id, "hold", values, work)


@router.post("/alerts/{alert_id}/hold/release", dependencies=CSRF)
async def release_hold(request: Request, alert_id: str, user: Staff) -> Response:
    """Release the alert's legal hold, with a reason (audited as review.release)."""
    values = await _form(request)

    def work(s: Session, alert: Alert, now: datetime) -> dict[str, Any]:
        return store_review.release_hold(s, alert, actor_of(user), values.get("reason"), now)

    return await _apply(request, user, alert_id, "release", values, work)


@router.get("/alerts/{alert_id}/documents/{document_id}")
async def document(request: Request, alert_id: str, document_id: str, user: Staff) -> Response:
    """Download a generated document (Markdown); the read is logged as staff.read per minor."""

    def work(s: Session) -> tuple[str, str, str] | None:
        alert = _find(s, user, alert_id)
        if alert is None or not document_id.isdigit():
            return None
        doc = store_review.get_document(s, alert, int(document_id))
        if doc is None:
            return None
        store_review.record_view(s, alert, actor_of(user), f"document {doc.id}", now_utc())
        return doc.content, doc.media_type, doc.sha256

    found = await _in_tx(request, work, write=True)
    if found is None:
        raise _not_found()
    content, media_type, digest = found
    return Response(
        content.encode("utf-8"),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="report-{document_id}.md"',
            "X-Content-SHA256": digest,
            "Cache-Control": "no-store",
        },
    )


@router.get("/assets/{name}")
async def asset(name: str) -> Response:
    """The workspace's keyboard-shortcut script or stylesheet (no data: no sign-in needed)."""
    return static_asset("reviewer", name, ASSETS)
