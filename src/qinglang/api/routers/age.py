"""Age inference actions: score an account, verify its age, appeal a suspicion.

An account whose inferred p(under 18) reaches the pack's threshold (``age.infer.suspect_under18``)
becomes a suspected minor, is asked to verify, and is treated as a minor by every decision
from the next call on (see docs/age_inference.md). Every transition is audited in the ledger
(``age.<transition>``). Identity numbers are validated and never stored (a keyed digest is).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from qinglang.age import InvalidIdentityNumber, validate
from qinglang.age.infer import RecordError, parse_record, score_record
from qinglang.age.suspicion import SUSPECTED_STATES, State, TransitionError
from qinglang.api.deps import ApiKeyDep, ServiceDep, storable_text
from qinglang.api.problems import Problem, error_responses, field_problem, identity_number_problem
from qinglang.api.service import Day, Service, require_account
from qinglang.store import assessments, id_number_digest
from qinglang.store.models import Account, AgeAssessment, AgeAssessmentEvent, Platform

router = APIRouter(
    prefix="/v1/age",
    tags=["age"],
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)

Id = Annotated[str, Field(min_length=1, max_length=200)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]

SUSPECTED_NOTICE = {
    "message_zh": (
        "系统推断该账号可能属于未成年人，已按未成年人保护模式处理；请完成年龄核验或提出申诉。"
    ),
    "message_en": (
        "This account is inferred to possibly belong to a minor and is protected as one; "
        "verify the age or appeal."
    ),
}


class Strict(BaseModel):
    """Request bodies reject unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ScoreIn(Strict):
    """What to score about an account (as in the JSONL input of `qinglang age scan`)."""

    account: Id
    nickname: str | None = None
    bio: str | None = None
    background: str | None = None
    posts: list[Any] | None = None
    comments: list[Any] | None = None
    events: list[Any] | None = None
    friends_minor_share: float | None = None
    as_of: Day | None = None


class VerifyIn(Strict):
    """A verification result: an identity number, or a platform KYC attestation."""

    method: Literal["id_number", "attestation"]
    id_number: str | None = Field(default=None, description="18- or 15-digit; never stored")
    reference: str | None = Field(default=None, max_length=128, description="KYC reference")
    birth_date: Day | None = Field(default=None, description="the attested birth date")
    verified_by: Name


class AppealIn(Strict):
    """The account holder's appeal against a suspicion."""

    reason: Reason
    appellant: Name = "account_holder"


class DecideIn(Strict):
    """A reviewer's decision on an open appeal."""

    outcome: Literal["upheld", "overturned"]
    reason: Reason
    reviewer: Name


def _event_out(ev: AgeAssessmentEvent) -> dict[str, Any]:
    """JSON form of a transition."""
    return {
        "transition": ev.transition,
        "from": ev.from_state,
        "to": ev.to_state,
        "actor": ev.actor,
        "reason": ev.reason,
        "details": ev.details,
        "ledger_seq": ev.ledger_seq,
        "at": ev.at.isoformat(),
    }


def _state_out(
    service: Service,
    platform: Platform,
    account: Account,
    row: AgeAssessment | None,
    events: Sequence[AgeAssessmentEvent] | None = None,
) -> dict[str, Any]:
    """The assessment and the profile decisions now use (and the transitions just made)."""
    state = State.CLEAR if row is None else State(row.state)
    suspected = state in SUSPECTED_STATES
    prof = service.profile(platform, account)
    out: dict[str, Any] = {
        "account": account.external_id,
        "state": state.value,
        "suspected": suspected,
        "verification_requested": state is State.VERIFICATION_REQUESTED,
        "p_under18": None if row is None or row.p_under18 is None else round(row.p_under18, 4),
        "p_under14": None if row is None or row.p_under14 is None else round(row.p_under14, 4),
        "band": None if row is None else row.band,
        "suspected_child": False if row is None else row.suspected_child,
        "model": None if row is None else row.model,
        "signals": [] if row is None else row.signals,
        "updated_at": None if row is None else row.updated_at.isoformat(),
        "profile": {
            "age": prof.age,
            "age_source": None if prof.age_source is None else prof.age_source.value,
            "is_minor": prof.is_minor,
            "is_child": prof.is_child,
        },
    }
    if suspected:
        out.update(SUSPECTED_NOTICE)
    if events is not None:
        out["transitions"] = [_event_out(e) for e in events]
    return out


def _transition_problem(exc: TransitionError) -> Problem:
    """409 naming the assessment's state."""
    return Problem(
        409,
        "Transition not allowed",
        f"state: {exc.message_en}",
        [{"field": "state", "message": exc.message_en, "message_zh": exc.message_zh}],
    )


@router.post("/score", responses=error_responses(400, 404, 409, 422))
async def score_account(body: ScoreIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """Score an account: the estimate, and the assessment (suspected at the threshold)."""
    record = body.model_dump(exclude_none=True, mode="json")
    record["user_id"] = record.pop("account")
    try:
        parsed = parse_record(record)
    except RecordError as exc:
        field = str(exc).split(":", 1)[0].strip()
        known = re.split(r"[\[.]", field, maxsplit=1)[0] in record
        raise field_problem(422, field if known else "body", str(exc)) from None

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        account = require_account(s, platform, body.account, "account")
        policy = service.policy_for(platform)
        estimate = score_record(parsed, policy=policy)
        row, events = assessments.record_score(
            s, account, estimate, assessments.suspect_threshold(policy), actor="score"
        )
        out = _state_out(service, platform, account, row)
        est = estimate.to_dict()
        est.pop("user_id", None)
        return {
            "estimate": est,
            "assessment": out,
            "transitions": [_event_out(e) for e in events],
        }

    return await service.run_write(key, work)


@router.get("/{account}", responses=error_responses(404, 409, 422))
async def get_assessment(account: str, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """An account's assessment, the profile it yields, and its transition history."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        acc = require_account(s, platform, account, "account")
        row = assessments.get_assessment(s, acc.id)
        out = _state_out(service, platform, acc, row)
        out["history"] = [_event_out(e) for e in assessments.events_of(s, acc.id)]
        return out

    return await service.run(key, work)


def _verified_facts(body: VerifyIn) -> dict[str, Any]:
    """Birth date (and sex, number) from a verification body; 422 naming the field."""
    if body.method == "id_number":
        if body.id_number is None:
            raise field_problem(422, "id_number", "is required for method id_number")
        if body.birth_date is not None:
            raise field_problem(422, "birth_date", "comes from the identity number")
        try:
            rid = validate(body.id_number)
        except InvalidIdentityNumber as exc:
            raise identity_number_problem(exc, "id_number") from None
        return {"birth_date": rid.birth_date, "sex": rid.sex, "number": rid.number}
    if body.id_number is not None:
        raise field_problem(422, "id_number", "is only for method id_number")
    if body.birth_date is None:
        raise field_problem(422, "birth_date", "is required for method attestation")
    if body.reference is None:
        raise field_problem(422, "reference", "is required for method attestation")
    if body.birth_date > date.today():
        raise field_problem(422, "birth_date", "is in the future")
    return {"birth_date": body.birth_date}


@router.post("/{account}/verify", responses=error_responses(400, 404, 409, 422))
async def verify_account(
    account: str, body: VerifyIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """Record a verification: the account's age becomes verified; verified_minor or _adult."""
    facts = _verified_facts(body)

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        acc = require_account(s, platform, account, "account")
        acc.birth_date = facts["birth_date"]
        acc.age_source = "verified"
        if "sex" in facts:
            acc.sex = facts["sex"]
        if "number" in facts:
            acc.id_number_hash = id_number_digest(service.keys, facts["number"])
        s.flush()
        service.forget_account(acc.id)
        minor = service.profile(platform, acc).is_minor
        row, events = assessments.verify(
            s,
            acc,
            minor=minor,
            method=body.method,
            actor=body.verified_by,
            reference=body.reference,
            at=service.clock(),
        )
        return _state_out(service, platform, acc, row, events)

    return await service.run_write(key, work)


@router.post("/{account}/appeal", responses=error_responses(400, 404, 409, 422))
async def appeal_account(
    account: str, body: AppealIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """The account holder appeals a suspicion (409 when the account is not suspected)."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        acc = require_account(s, platform, account, "account")
        try:
            row, events = assessments.appeal(s, acc, body.reason, body.appellant)
        except TransitionError as exc:
            raise _transition_problem(exc) from None
        return _state_out(service, platform, acc, row, events)

    return await service.run_write(key, work)


@router.post("/{account}/appeal/decide", responses=error_responses(400, 404, 409, 422))
async def decide_appeal(
    account: str, body: DecideIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """A reviewer upholds (still suspected) or overturns (clear) an open appeal."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        acc = require_account(s, platform, account, "account")
        try:
            row, events = assessments.decide_appeal(
                s, acc, body.outcome, body.reason, body.reviewer
            )
        except TransitionError as exc:
            raise _transition_problem(exc) from None
        return _state_out(service, platform, acc, row, events)

    return await service.run_write(key, work)
