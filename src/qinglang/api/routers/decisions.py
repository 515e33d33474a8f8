"""One endpoint per decision kind, plus the batch exposure filter.

Each answer is a decision: outcome (allow, deny, needs_guardian, limit), the rules behind it
with citations and messages in Chinese and English, and the limits that apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from qinglang.api.deps import ApiKeyDep, ServiceDep, storable_text
from qinglang.api.problems import error_responses, field_problem
from qinglang.api.service import (
    Instant,
    Service,
    item_flags,
    problem_for,
    relation,
    require_account,
    require_accounts,
)
from qinglang.guard import (
    Decision,
    ExposureIndex,
    Viewer,
    attribute_decision,
    collection_decision,
    contact_decision,
    explain_filtered,
    exposure_decision,
    filter_candidates,
    playtime_decision,
    spending_decision,
)
from qinglang.guard.calendar import CalendarRangeError
from qinglang.guard.collection import Category
from qinglang.guard.exposure import FOLLOWERS, FRIENDS, OWNER, PUBLIC, Attribute, Surface
from qinglang.guard.playtime import ServiceKind
from qinglang.guard.profile import ContactAction
from qinglang.guard.spending import Purpose
from qinglang.store import repo
from qinglang.store.models import Account, Platform

router = APIRouter(
    prefix="/v1/decide",
    tags=["decisions"],
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)

Id = Annotated[str, Field(min_length=1, max_length=200)]
Decided = tuple[Decision, Account, Account | None]
"""A decision with its subject account and the other account, if any."""


class Strict(BaseModel):
    """Request bodies reject unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ContactIn(Strict):
    """May `sender` take `action` towards `recipient`."""

    action: ContactAction
    sender: Id
    recipient: Id


class ExposureIn(Strict):
    """May `item` be shown to `viewer` on `surface`."""

    viewer: Id
    item: Id
    surface: Surface = "recommend"


class ExposureBatchIn(Strict):
    """Filter a viewer's candidate list (order kept); `explain` adds the reason per removed item."""

    viewer: Id
    surface: Surface = "recommend"
    candidates: Annotated[list[Id], Field(max_length=10_000)]
    explain: bool = False


class AttributeIn(Strict):
    """May the owner's location, face or school be shown to the viewer."""

    owner: Id
    viewer: Id
    attribute: Attribute


class CollectionIn(Strict):
    """May `category` be collected from `account` for `purpose`, given its consents on record.

    Consent is read from the consent records (`POST /v1/consents`), never from the request.
    """

    account: Id
    category: Category
    purpose: str = Field(min_length=1, max_length=100)


class SpendingIn(Strict):
    """May `account` pay `amount_fen` now, given what it paid today and this month."""

    account: Id
    amount_fen: int = Field(gt=0)
    today_total_fen: int = Field(default=0, ge=0)
    month_total_fen: int = Field(default=0, ge=0)
    purpose: Purpose = "purchase"


class PlaytimeIn(Strict):
    """May `account` use a game or a general app at `at`, having used some minutes today."""

    account: Id
    kind: ServiceKind
    at: Instant | None = Field(default=None, description="defaults to now")
    minutes_used_today: int = Field(default=0, ge=0, le=1440)


def _answer(
    service: Service,
    platform: Platform,
    kind: str,
    body: Strict,
    decided: Decided,
) -> dict[str, Any]:
    d, subject, other = decided
    service.log(
        platform,
        kind,
        ACTIONS[kind](body),
        d,
        subject_account_id=subject.id,
        other_account_id=None if other is None else other.id,
        request=body,
    )
    return d.to_dict()


ACTIONS: Final[dict[str, Callable[[Any], str]]] = {
    "contact": lambda b: b.action,
    "exposure": lambda b: b.surface,
    "attribute": lambda b: b.attribute,
    "collection": lambda b: b.category,
    "spending": lambda b: b.purpose,
    "playtime": lambda b: b.kind,
}
"""The logged action of each decision kind (the request field that names it)."""


def _levels(session: Session, viewer: Account, owners: Iterable[Account]) -> dict[int, int]:
    """Owner account id → the viewer's audience level towards that owner (one query)."""
    others = [o.id for o in owners if o.id != viewer.id]
    facts = repo.relations_from(session, viewer.id, others)
    levels = {viewer.id: OWNER}
    for owner_id, f in facts.items():
        levels[owner_id] = FRIENDS if f.mutual else FOLLOWERS if f.a_follows_b else PUBLIC
    return levels


@router.post("/contact", responses=error_responses(400, 404, 409, 422))
async def contact(body: ContactIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """May sender take action towards recipient."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        return _answer(
            service, platform, "contact", body, decide_contact(s, service, platform, body)
        )

    return await service.run(key, work)


def decide_contact(
    s: Session, service: Service, platform: Platform, body: ContactIn, at: datetime | None = None
) -> Decided:
    """The contact decision for a request (at `at`, default now)."""
    a = require_accounts(s, platform, sender=body.sender, recipient=body.recipient)
    sender, recipient = a["sender"], a["recipient"]
    d = contact_decision(
        body.action,
        service.profile(platform, sender, at),
        service.profile(platform, recipient, at),
        relation(s, sender, recipient),
    )
    return d, sender, recipient


def _viewer_and_index(
    s: Session,
    service: Service,
    platform: Platform,
    viewer: Account,
    items: list[str],
    at: datetime | None = None,
) -> tuple[Viewer, ExposureIndex]:
    stored = repo.flags_for_items(s, platform.id, items)
    flagged = {k: v for k, v in stored.items() if v}
    index = ExposureIndex(service.policy_for(platform))
    owner_of = repo.item_owners(s, platform.id, list(flagged))
    for item_id, flags in flagged.items():
        f = item_flags(service, platform, flags, owner_of[item_id], at)
        if f is not None:
            index.put(item_id, f)
    owners = {o.id: o for o in owner_of.values()}
    levels = _levels(s, viewer, owners.values())
    friends = {owners[i].external_id for i, lvl in levels.items() if lvl == FRIENDS}
    following = {owners[i].external_id for i, lvl in levels.items() if lvl == FOLLOWERS}
    return Viewer(service.profile(platform, viewer, at), friends, following), index


@router.post("/exposure", responses=error_responses(400, 404, 409, 422))
async def exposure(body: ExposureIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """May this item be shown to this viewer on this surface."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        return _answer(
            service, platform, "exposure", body, decide_exposure(s, service, platform, body)
        )

    return await service.run(key, work)


def decide_exposure(
    s: Session, service: Service, platform: Platform, body: ExposureIn, at: datetime | None = None
) -> Decided:
    """The exposure decision for a request (at `at`, default now)."""
    viewer = require_account(s, platform, body.viewer, "viewer")
    v, index = _viewer_and_index(s, service, platform, viewer, [body.item], at)
    return exposure_decision(v, index.flags.get(body.item), body.surface), viewer, None


@router.post("/exposure/batch", responses=error_responses(400, 404, 409, 422))
async def exposure_batch(
    body: ExposureBatchIn, key: ApiKeyDep, service: ServiceDep
) -> dict[str, Any]:
    """The viewer's candidate list with what may not be shown removed (order kept)."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        viewer = require_account(s, platform, body.viewer, "viewer")
        v, index = _viewer_and_index(s, service, platform, viewer, body.candidates)
        kept = filter_candidates(v, body.candidates, index, body.surface)
        out: dict[str, Any] = {"allowed": kept, "removed": len(body.candidates) - len(kept)}
        if body.explain:
            removed = explain_filtered(v, body.candidates, index, body.surface)
            out["reasons"] = {c: d.to_dict() for c, d in removed.items()}
        return out

    return await service.run(key, work)


@router.post("/attribute", responses=error_responses(400, 404, 409, 422))
async def attribute(body: AttributeIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """May the owner's location, face or school be shown to the viewer."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        return _answer(
            service, platform, "attribute", body, decide_attribute(s, service, platform, body)
        )

    return await service.run(key, work)


def decide_attribute(
    s: Session, service: Service, platform: Platform, body: AttributeIn, at: datetime | None = None
) -> Decided:
    """The attribute decision for a request (at `at`, default now)."""
    a = require_accounts(s, platform, owner=body.owner, viewer=body.viewer)
    owner, viewer = a["owner"], a["viewer"]
    level = _levels(s, viewer, [owner])[owner.id]
    return (
        attribute_decision(service.profile(platform, owner, at), body.attribute, level),
        owner,
        viewer,
    )


@router.post("/collection", responses=error_responses(400, 404, 409, 422))
async def collection(body: CollectionIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """May this category of personal information be collected from the account for the purpose
    (consents as recorded: a stale or withdrawn consent counts as not given)."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        return _answer(
            service, platform, "collection", body, decide_collection(s, service, platform, body)
        )

    return await service.run(key, work)


def decide_collection(
    s: Session, service: Service, platform: Platform, body: CollectionIn, at: datetime | None = None
) -> Decided:
    """The collection decision for a request (at `at`, default now)."""
    account = require_account(s, platform, body.account, "account")
    profile = service.profile(platform, account, at)
    return collection_decision(profile, body.category, body.purpose), account, None


@router.post("/spending", responses=error_responses(400, 404, 409, 422))
async def spending(body: SpendingIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """May the account pay this amount now; includes what remains today and this month."""

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        return _answer(
            service, platform, "spending", body, decide_spending(s, service, platform, body)
        )

    return await service.run(key, work)


def decide_spending(
    s: Session, service: Service, platform: Platform, body: SpendingIn, at: datetime | None = None
) -> Decided:
    """The spending decision for a request (at `at`, default now)."""
    account = require_account(s, platform, body.account, "account")
    try:
        d = spending_decision(
            service.profile(platform, account, at),
            body.amount_fen,
            body.today_total_fen,
            body.month_total_fen,
            body.purpose,
        )
    except ValueError as exc:
        raise problem_for(exc, "amount_fen") from None
    return d, account, None


@router.post("/playtime", responses=error_responses(400, 404, 409, 422))
async def playtime(body: PlaytimeIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """May the account use a game or general app now; includes minutes left and the next window."""
    if body.at is None:
        body = body.model_copy(update={"at": service.clock()})

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        return _answer(
            service, platform, "playtime", body, decide_playtime(s, service, platform, body)
        )

    return await service.run(key, work)


def decide_playtime(
    s: Session, service: Service, platform: Platform, body: PlaytimeIn, at: datetime | None = None
) -> Decided:
    """The playtime decision for a request (at the request's `at`, else `at`, else now)."""
    when: datetime = body.at or at or service.clock()
    account = require_account(s, platform, body.account, "account")
    try:
        d = playtime_decision(
            service.profile(platform, account, when), body.kind, when, body.minutes_used_today
        )
    except CalendarRangeError as exc:
        raise field_problem(422, "at", str(exc)) from None
    except ValueError as exc:
        raise problem_for(exc, "at") from None
    return d, account, None


Decider = Callable[[Session, Service, Platform, Any, datetime | None], Decided]
DECIDERS: Final[dict[str, tuple[type[Strict], Decider]]] = {
    "contact": (ContactIn, decide_contact),
    "exposure": (ExposureIn, decide_exposure),
    "attribute": (AttributeIn, decide_attribute),
    "collection": (CollectionIn, decide_collection),
    "spending": (SpendingIn, decide_spending),
    "playtime": (PlaytimeIn, decide_playtime),
}
"""Decision kind → (request model, decide function): the routes and the audit's replay of
logged decisions share them."""
