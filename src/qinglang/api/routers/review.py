"""The review queue: alerts with minimised evidence, priority and SLA; assignment; reviewer
actions (dismiss, restrict, suspend, remove content, notify guardians, report to the police or a
regulator) with generated documents; restrictions and their lifting; the legal hold on an
alert's evidence (set by a report or a reviewer, released by a reviewer). Every action is
audited in the ledger (``review.<action>``), and every read of evidence or of a document is a
``staff.read`` entry about each minor involved.

See docs/review.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from qinglang.api.deps import ApiKeyDep, ServiceDep, storable_text
from qinglang.api.problems import Problem, error_responses, field_problem
from qinglang.api.service import Instant, RowId
from qinglang.review.actions import ACTION_KINDS, ActionError
from qinglang.store import review as store_review
from qinglang.store.models import Alert, Platform, Restriction

router = APIRouter(
    prefix="/v1/review",
    tags=["review"],
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)

Name = Annotated[str, Field(min_length=1, max_length=128)]
Status = Literal["open", "in_review", "actioned", "dismissed"]
Priority = Literal["urgent", "high", "normal"]
ActionKind = Literal[
    "dismiss", "restrict", "suspend", "remove_content", "notify_guardians", "report"
]
assert set(ActionKind.__args__) == set(ACTION_KINDS)  # type: ignore[attr-defined]


class Strict(BaseModel):
    """Request bodies reject unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class AssignIn(Strict):
    """Assign the alert to a reviewer."""

    reviewer: Name = Field(description="who assigns (recorded in the audit entry)")
    assignee: Name


class ActionIn(Strict):
    """One reviewer action; which fields apply depends on `kind`."""

    kind: ActionKind
    reviewer: Name = Field(description="who acts (recorded in the audit entry)")
    reason: str | None = Field(
        default=None, max_length=2000, description="required for dismiss (at least 3 characters)"
    )
    until: Instant | None = Field(
        default=None,
        description="restrict / suspend: end of the restriction (default: until lifted)",
    )
    items: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=1000, description="remove_content: the content item ids"
    )
    authority: Literal["police", "cac"] | None = Field(
        default=None, description="report: 公安机关 (police) or 网信部门 (cac)"
    )
    reference: str | None = Field(
        default=None, max_length=128, description="report: the case or report reference"
    )


class HoldIn(Strict):
    """Set or release an alert's legal hold, with a reason."""

    reviewer: Name = Field(description="who holds or releases (recorded in the audit entry)")
    reason: str = Field(min_length=3, max_length=2000)


class LiftIn(Strict):
    """Lift a restriction, with a reason."""

    reviewer: Name
    reason: str = Field(min_length=3, max_length=2000)


def _problem(exc: ActionError) -> Problem:
    title = "Conflict" if exc.status == 409 else "Invalid request"
    return field_problem(exc.status, exc.field, exc.message, title)


def _alert(s: Session, platform: Platform, alert_id: str, lock: bool = False) -> Alert:
    alert = store_review.find_alert(s, platform.id, alert_id, lock=lock)
    if alert is None:
        raise field_problem(404, "alert_id", f"no alert {alert_id!r} on this platform", "Not found")
    return alert


@router.get("/alerts", responses=error_responses(422))
async def list_alerts(
    key: ApiKeyDep,
    service: ServiceDep,
    status: Annotated[list[Status] | None, Query()] = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    overdue: bool | None = None,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    sender: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, Any]:
    """The alert queue, earliest due first (no evidence: open an alert to read it)."""
    now = service.clock()
    flt = store_review.QueueFilter(status or (), priority or (), overdue, assignee, sender)

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        rows, total = store_review.list_alerts(s, platform.id, flt, now, limit=limit, offset=offset)
        return {"total": total, "items": [store_review.alert_summary(a, now) for a in rows]}

    return await service.run(key, work)


@router.get("/alerts/{alert_id}", responses=error_responses(404, 422))
async def show_alert(
    alert_id: str,
    key: ApiKeyDep,
    service: ServiceDep,
    reviewer: Annotated[str, Query(min_length=1, max_length=128, description="who reads")],
) -> dict[str, Any]:
    """One alert with its evidence, actions, restrictions, documents and notifications.

    Reading the evidence (minors' data) is logged in the ledger as staff.read, per minor."""
    now = service.clock()

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        alert = _alert(s, platform, alert_id)
        store_review.record_view(s, alert, reviewer, "evidence", now)
        return store_review.alert_detail(s, alert, now)

    return await service.run_write(key, work)


@router.post("/alerts/{alert_id}/assign", responses=error_responses(400, 404, 409, 422))
async def assign_alert(
    alert_id: str, body: AssignIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """Assign the alert (an open alert becomes in_review); audited as review.assign."""
    now = service.clock()

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        alert = _alert(s, platform, alert_id, lock=True)
        try:
            return store_review.assign(s, alert, body.reviewer, body.assignee, now)
        except ActionError as exc:
            raise _problem(exc) from None

    return await service.run_write(key, work)


@router.post("/alerts/{alert_id}/actions", responses=error_responses(400, 404, 409, 422))
async def act_on_alert(
    alert_id: str, body: ActionIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """Take an action on the alert; audited as review.<kind>. See docs/review.md."""
    now = service.clock()
    params: dict[str, Any] = {
        "until": body.until,
        "items": body.items,
        "authority": body.authority,
        "reference": body.reference,
    }

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        alert = _alert(s, platform, alert_id, lock=True)
        policy = service.policy_for(platform)
        try:
            return store_review.act(
                s, platform, policy, alert, body.kind, body.reviewer, body.reason, params, now
            )
        except ActionError as exc:
            raise _problem(exc) from None

    return await service.run_write(key, work)


def _hold_work(
    alert_id: str, body: HoldIn, change: Callable[..., dict[str, Any]], now: datetime
) -> Callable[[Session, Platform], dict[str, Any]]:
    """The transaction that sets or releases an alert's hold at `now` (409 when not allowed)."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        alert = _alert(s, platform, alert_id, lock=True)
        try:
            return change(s, alert, body.reviewer, body.reason, now)
        except ActionError as exc:
            raise _problem(exc) from None

    return work


@router.post("/alerts/{alert_id}/hold", responses=error_responses(400, 404, 409, 422))
async def hold_alert(
    alert_id: str, body: HoldIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """Put the alert's evidence under legal hold (audited as review.hold): retention and
    account erasure keep it until released. 409 if already held."""
    return await service.run_write(
        key, _hold_work(alert_id, body, store_review.set_hold, service.clock())
    )


@router.post("/alerts/{alert_id}/hold/release", responses=error_responses(400, 404, 409, 422))
async def release_alert_hold(
    alert_id: str, body: HoldIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """Release the alert's legal hold (audited as review.release); the next retention run
    purges what is past its period and held for no other reason. 409 if not held."""
    return await service.run_write(
        key, _hold_work(alert_id, body, store_review.release_hold, service.clock())
    )


@router.get(
    "/alerts/{alert_id}/documents/{document_id}",
    response_class=Response,
    responses={
        200: {
            "description": "The document (its SHA-256 in X-Content-SHA256)",
            "content": {"text/markdown": {"schema": {"type": "string"}}},
        },
        **error_responses(404, 422),
    },
)
async def download_document(
    alert_id: str,
    document_id: RowId,
    key: ApiKeyDep,
    service: ServiceDep,
    reviewer: Annotated[str, Query(min_length=1, max_length=128, description="who reads")],
) -> Response:
    """Download a generated document (Markdown); the read is logged as staff.read."""
    now = service.clock()

    def work(s: Session, platform: Platform) -> tuple[str, str, str]:
        alert = _alert(s, platform, alert_id)
        doc = store_review.get_document(s, alert, document_id)
        if doc is None:
            raise field_problem(404, "document_id", f"no document {document_id}", "Not found")
        store_review.record_view(s, alert, reviewer, f"document {doc.id}", now)
        return doc.content, doc.media_type, doc.sha256

    content, media_type, digest = await service.run_write(key, work)
    filename = f"report-{document_id}.md"
    return Response(
        content.encode("utf-8"),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-SHA256": digest,
        },
    )


@router.get("/restrictions", responses=error_responses(422))
async def list_restrictions(
    key: ApiKeyDep,
    service: ServiceDep,
    account: Annotated[str | None, Query(max_length=200)] = None,
    active: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Restrictions (active ones by default), of one account if given."""
    now = service.clock()

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        if active:
            rows = store_review.active_restrictions(s, platform.id, account, now)[:limit]
        else:
            rows = store_review.all_restrictions(s, platform.id, account, limit)
        ids = store_review.alert_ids(s, [r.alert_pk for r in rows if r.alert_pk is not None])
        return {"items": [store_review.restriction_view(r, ids.get(r.alert_pk or 0)) for r in rows]}

    return await service.run(key, work)


@router.post("/restrictions/{restriction_id}/lift", responses=error_responses(400, 404, 409, 422))
async def lift_restriction(
    restriction_id: RowId, body: LiftIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """Lift a restriction with a reason (audited as review.lift); contact decisions see it at
    once."""
    now = service.clock()

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        r = s.get(Restriction, restriction_id)
        if r is None or r.platform_id != platform.id:
            raise field_problem(
                404, "restriction_id", f"no restriction {restriction_id}", "Not found"
            )
        try:
            return store_review.lift(s, r, body.reviewer, body.reason, now)
        except ActionError as exc:
            raise _problem(exc) from None

    return await service.run_write(key, work)
