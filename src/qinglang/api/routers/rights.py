"""Data-rights requests (access and copy, correction, deletion, withdrawal, cancellation) and the
access export.

A guardian with an active verified link to the child, or the person themself from the pack's
``consent.self_from_age`` (14 in ``cn``), may ask. Each request is due ``rights.response_days``
after it was received and keeps its status history; a refusal needs a written reason
(未成年人网络保护条例 art. 34). Every status change is also a ledger entry ``rights.<status>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from qinglang.api.deps import PlatformDep, ServiceDep, storable_text
from qinglang.api.problems import Problem, error_responses, field_problem
from qinglang.api.service import Instant, RowId, require_account
from qinglang.consent.rights import RightsError, is_overdue
from qinglang.store import ledger, repo
from qinglang.store import rights as store
from qinglang.store.models import Guardian, Platform, RightsRequest

router = APIRouter(
    prefix="/v1",
    tags=["rights"],
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)

Kind = Literal["access", "correction", "deletion", "withdrawal", "cancellation"]
Status = Literal["received", "in_progress", "completed", "refused"]
ExternalId = Field(min_length=1, max_length=200)


class RightsRequestIn(BaseModel):
    """A data-rights request about `account`, made by its guardian or by the person themself."""

    model_config = ConfigDict(extra="forbid", strict=True)

    account: str = ExternalId
    kind: Kind
    requester: Literal["guardian", "self"]
    guardian: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="external id of the guardian asking (requester=guardian only)",
    )
    details: dict[str, Any] | None = Field(
        default=None,
        description="particulars; for a correction, field → new value "
        "(birth_date, sex, settings); kept encrypted",
    )
    actor: str | None = Field(
        default=None, max_length=128, description="who recorded it (default: the requester)"
    )
    note: str | None = Field(default=None, max_length=2000)


class TransitionIn(BaseModel):
    """A status change: to in_progress, completed (executes the request) or refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    status: Status
    actor: str = Field(min_length=1, max_length=128, description="who made the change")
    note: str | None = Field(default=None, max_length=2000)
    reason: str | None = Field(
        default=None, max_length=4000, description="written reason; required to refuse"
    )


class EventOut(BaseModel):
    """One status change of a request."""

    status: str
    actor: str
    note: str | None
    at: datetime


class RightsRequestSummary(BaseModel):
    """A request as listed (no particulars, no history)."""

    id: int
    account: str
    kind: str
    status: str
    requester: str
    guardian: str | None
    due_at: datetime
    overdue: bool
    created_at: datetime
    closed_at: datetime | None


class RightsRequestOut(RightsRequestSummary):
    """A request with its particulars, written reason, answer and status history."""

    details: dict[str, Any] | None
    reason: str | None
    answer: dict[str, Any] | None
    updated_at: datetime
    history: list[EventOut]


class RightsRequestList(BaseModel):
    """Requests by due date."""

    requests: list[RightsRequestSummary]
    count: int


class TransitionOut(BaseModel):
    """The request after the change; for a completed access request, the export itself."""

    request: RightsRequestOut
    export: dict[str, Any] | None = Field(
        default=None, description="the access export (format qinglang.access-export)"
    )


_TITLES = {403: "Not allowed to ask", 404: "Not found", 409: "Conflict"}


def _problem(exc: RightsError) -> Problem:
    """A problem naming the field; with the pack rule (both languages) when one is behind it."""
    p = field_problem(exc.status, exc.field, str(exc), _TITLES.get(exc.status, "Invalid request"))
    if exc.rule is not None:
        p.errors[0].update(
            rule_id=exc.rule.id,
            citation=exc.rule.citation.short(),
            message_zh=exc.rule.message_zh,
            message_en=exc.rule.message_en,
        )
    return p


def _summary(s: Session, r: RightsRequest, at: datetime) -> dict[str, Any]:
    return {
        "id": r.id,
        "account": r.subject,
        "kind": r.kind,
        "status": r.status,
        "requester": r.requester,
        "guardian": store.guardian_ref(s, r.guardian_id),
        "due_at": r.due_at,
        "overdue": is_overdue(r.status, r.due_at, at),
        "created_at": r.created_at,
        "closed_at": r.closed_at,
    }


def _out(s: Session, r: RightsRequest, at: datetime) -> RightsRequestOut:
    return RightsRequestOut(
        **_summary(s, r, at),
        details=store.details_of(r),
        reason=r.reason,
        answer=r.answer,
        updated_at=r.updated_at,
        history=[
            EventOut(status=e.status, actor=e.actor, note=e.note, at=e.at)
            for e in store.events_of(s, r.id)
        ],
    )


def _guardian(s: Session, platform: Platform, external_id: str | None) -> Guardian | None:
    if external_id is None:
        return None
    g = repo.get_guardian(s, platform.id, external_id)
    if g is None:
        raise field_problem(
            404, "guardian", f"no guardian {external_id!r} on this platform", "Unknown guardian"
        )
    return g


def _request(s: Session, platform: Platform, request_id: int) -> RightsRequest:
    r = store.get_request(s, platform.id, request_id)
    if r is None:
        raise field_problem(
            404, "request_id", f"no rights request {request_id} on this platform", "Not found"
        )
    return r


@router.post(
    "/rights-requests", status_code=201, responses=error_responses(400, 403, 404, 409, 422)
)
def create_request(
    body: RightsRequestIn, platform: PlatformDep, service: ServiceDep
) -> RightsRequestOut:
    """Receive a request: 403 if the guardian is not linked or the person is under the age to
    ask for themself (or of unknown age); 422 naming `details.<field>` for a bad correction."""
    if body.requester == "guardian" and body.guardian is None:
        raise field_problem(422, "guardian", "a guardian request names the guardian")
    if body.requester == "self" and body.guardian is not None:
        raise field_problem(422, "guardian", "a request by the person themself names no guardian")
    at = service.clock()
    with service.tx(write=True) as s:
        account = require_account(s, platform, body.account, "account")
        guardian = _guardian(s, platform, body.guardian)
        try:
            r = store.create_request(
                s,
                platform,
                service.policy_for(platform),
                account,
                kind=body.kind,
                requester=body.requester,
                guardian=guardian,
                details=body.details,
                actor=body.actor,
                note=body.note,
                at=at,
            )
        except RightsError as exc:
            raise _problem(exc) from None
        return _out(s, r, at)


@router.get("/rights-requests", responses=error_responses(404, 422))
def list_requests(
    platform: PlatformDep,
    service: ServiceDep,
    status: Status | None = None,
    overdue: Annotated[bool, Query(description="only open requests past their due date")] = False,
    account: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    at: Annotated[
        Instant | None, Query(description="instant to judge overdue at (default now)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RightsRequestList:
    """The platform's requests by due date, filtered by status, account or overdue."""
    when = at or service.clock()
    with service.tx() as s:
        account_id = None
        if account is not None:
            account_id = require_account(s, platform, account, "account").id
        rows = store.list_requests(
            s,
            platform.id,
            status=status,
            overdue_at=when if overdue else None,
            account_id=account_id,
            limit=limit,
        )
        items = [RightsRequestSummary(**_summary(s, r, when)) for r in rows]
    return RightsRequestList(requests=items, count=len(items))


@router.get("/rights-requests/{request_id}", responses=error_responses(404, 422))
def get_request(request_id: RowId, platform: PlatformDep, service: ServiceDep) -> RightsRequestOut:
    """One request with its particulars, answer and status history."""
    with service.tx() as s:
        return _out(s, _request(s, platform, request_id), service.clock())


@router.post(
    "/rights-requests/{request_id}/transition", responses=error_responses(400, 403, 404, 409, 422)
)
def transition(
    request_id: RowId, body: TransitionIn, platform: PlatformDep, service: ServiceDep
) -> TransitionOut:
    """Move a request on; `completed` carries it out in the same transaction.

    409 for a move the statuses do not allow, 422 for a refusal without a written reason.
    Completing an access request answers with the export; qinglang keeps no copy of it.
    """
    at = service.clock()
    with service.tx(write=True) as s:
        r = _request(s, platform, request_id)
        try:
            done = store.transition(
                s,
                platform,
                service.policy_for(platform),
                r,
                status=body.status,
                actor=body.actor,
                note=body.note,
                reason=body.reason,
                at=at,
            )
        except RightsError as exc:
            raise _problem(exc) from None
        out = TransitionOut(request=_out(s, done.request, at), export=done.export)
        account_id = done.request.account_id
    if account_id is not None and body.status == "completed":
        service.forget_account(account_id)
    return out


@router.get("/accounts/{account}/export", responses=error_responses(403, 404, 409, 422))
def export_account(
    account: str,
    platform: PlatformDep,
    service: ServiceDep,
    guardian: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="the guardian asking; omit when the person asks for themself",
        ),
    ] = None,
) -> dict[str, Any]:
    """Machine-readable copy of everything held about the account (format
    qinglang.access-export); other accounts appear only as pseudonymous references.

    403 when the guardian has no active link to the account, or when the person asking for
    themself is under the age to do so. The disclosure is recorded in the ledger.
    """
    at = service.clock()
    with service.tx(write=True) as s:
        acc = require_account(s, platform, account, "account")
        g = _guardian(s, platform, guardian)
        requester = "guardian" if g is not None else "self"
        try:
            store.check_may_request(s, service.policy_for(platform), acc, requester, g, at)
        except RightsError as exc:
            raise _problem(exc) from None
        export = store.export_account(s, platform, acc, at)
        ledger.append(
            s,
            platform.id,
            "rights.export",
            acc.external_id,
            {
                "requester": requester,
                "guardian": None if g is None else g.external_id,
                "format_version": export["format_version"],
                "counts": export["counts"],
            },
            at=at,
        )
    return export
