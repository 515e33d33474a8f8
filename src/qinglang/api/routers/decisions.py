"""One endpoint per decision kind, plus the batch exposure filter.

Each answer is a decision: outcome (allow, deny, needs_guardian, limit), the rules behind it
with citations and messages in Chinese and English, and the limits that apply.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from qinglang.api.deps import PlatformDep, ServiceDep
from qinglang.api.problems import field_problem
from qinglang.api.service import (
    Service,
    item_flags,
    now_utc,
    problem_for,
    relation,
    require_account,
)
from qinglang.guard import (
    ConsentState,
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
from qinglang.guard.exposure import FOLLOWERS, FRIENDS, OWNER, PUBLIC
from qinglang.store import repo
from qinglang.store.models import Account, Platform

router = APIRouter(prefix="/v1/decide", tags=["decisions"])

Id = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    """Request bodies reject unknown fields."""

    model_config = ConfigDict(extra="forbid")


class ContactIn(Strict):
    """May `sender` take `action` towards `recipient`."""

    action: Literal["follow", "dm", "comment", "mention", "friend_request", "gift"]
    sender: Id
    recipient: Id


class ExposureIn(Strict):
    """May `item` be shown to `viewer` on `surface`."""

    viewer: Id
    item: Id
    surface: Literal["recommend", "search", "trending", "profile"] = "recommend"


class ExposureBatchIn(Strict):
    """Filter a viewer's candidate list (order kept); `explain` adds the reason per removed item."""

    viewer: Id
    surface: Literal["recommend", "search", "trending", "profile"] = "recommend"
    candidates: Annotated[list[Id], Field(max_length=10_000)]
    explain: bool = False


class AttributeIn(Strict):
    """May the owner's location, face or school be shown to the viewer."""

    owner: Id
    viewer: Id
    attribute: Literal["location", "face", "school"]


class ConsentIn(Strict):
    """Consents on record: the guardian's, and separate consent for a sensitive category."""

    guardian: bool = False
    separate: bool = False


class CollectionIn(Strict):
    """May `category` be collected from `account` for `purpose`, given `consent`."""

    account: Id
    category: Literal[
        "location",
        "face",
        "biometric",
        "contacts",
        "voice",
        "identity_number",
        "financial",
        "health",
        "browsing",
        "other",
    ]
    purpose: str = Field(min_length=1, max_length=100)
    consent: ConsentIn = ConsentIn()


class SpendingIn(Strict):
    """May `account` pay `amount_fen` now, given what it paid today and this month."""

    account: Id
    amount_fen: int = Field(gt=0)
    today_total_fen: int = Field(default=0, ge=0)
    month_total_fen: int = Field(default=0, ge=0)
    purpose: Literal["purchase", "top_up", "gift", "tip", "fan_funding", "vote_ranking"] = (
        "purchase"
    )


class PlaytimeIn(Strict):
    """May `account` use a game or a general app at `at`, having used some minutes today."""

    account: Id
    kind: Literal["game", "general"]
    at: AwareDatetime | None = Field(default=None, description="defaults to now")
    minutes_used_today: int = Field(default=0, ge=0, le=1440)


def _answer(
    service: Service,
    platform: Platform,
    kind: str,
    action: str,
    d: Decision,
    subject: Account,
    other: Account | None = None,
) -> dict[str, Any]:
    service.log(
        platform,
        kind,
        action,
        d,
        subject_account_id=subject.id,
        other_account_id=None if other is None else other.id,
    )
    return d.to_dict()


def _level(session: Session, viewer: Account, owner: Account) -> int:
    if viewer.id == owner.id:
        return OWNER
    f = repo.relation_between(session, viewer.id, owner.id)
    if f.mutual:
        return FRIENDS
    return FOLLOWERS if f.a_follows_b else PUBLIC


@router.post("/contact")
def contact(body: ContactIn, platform: PlatformDep, service: ServiceDep) -> dict[str, Any]:
    """May sender take action towards recipient."""
    with service.tx() as s:
        sender = require_account(s, platform, body.sender, "sender")
        recipient = require_account(s, platform, body.recipient, "recipient")
        rel = relation(s, sender, recipient)
    d = contact_decision(
        body.action, service.profile(platform, sender), service.profile(platform, recipient), rel
    )
    return _answer(service, platform, "contact", body.action, d, sender, recipient)


def _viewer_and_index(
    s: Session, service: Service, platform: Platform, viewer: Account, items: list[str]
) -> tuple[Viewer, ExposureIndex]:
    policy = service.policy_for(platform)
    stored = repo.flags_for_items(s, platform.id, items)
    flagged = {k: v for k, v in stored.items() if v}
    index = ExposureIndex(policy)
    owner_of = repo.item_owners(s, platform.id, list(flagged))
    owners: dict[int, Account] = {}
    for item_id, flags in flagged.items():
        owner = owner_of[item_id]
        owners[owner.id] = owner
        f = item_flags(service, platform, flags, owner)
        if f is not None:
            index.put(item_id, f)
    friends: set[str] = set()
    following: set[str] = set()
    for owner in owners.values():
        lvl = _level(s, viewer, owner)
        if lvl == FRIENDS:
            friends.add(owner.external_id)
        elif lvl == FOLLOWERS:
            following.add(owner.external_id)
    return Viewer(service.profile(platform, viewer), friends, following), index


@router.post("/exposure")
def exposure(body: ExposureIn, platform: PlatformDep, service: ServiceDep) -> dict[str, Any]:
    """May this item be shown to this viewer on this surface."""
    with service.tx() as s:
        viewer = require_account(s, platform, body.viewer, "viewer")
        v, index = _viewer_and_index(s, service, platform, viewer, [body.item])
    d = exposure_decision(v, index.flags.get(body.item), body.surface)
    return _answer(service, platform, "exposure", body.surface, d, viewer)


@router.post("/exposure/batch")
def exposure_batch(
    body: ExposureBatchIn, platform: PlatformDep, service: ServiceDep
) -> dict[str, Any]:
    """The viewer's candidate list with what may not be shown removed (order kept)."""
    with service.tx() as s:
        viewer = require_account(s, platform, body.viewer, "viewer")
        v, index = _viewer_and_index(s, service, platform, viewer, body.candidates)
    kept = filter_candidates(v, body.candidates, index, body.surface)
    out: dict[str, Any] = {"allowed": kept, "removed": len(body.candidates) - len(kept)}
    if body.explain:
        removed = explain_filtered(v, body.candidates, index, body.surface)
        out["reasons"] = {c: d.to_dict() for c, d in removed.items()}
    return out


@router.post("/attribute")
def attribute(body: AttributeIn, platform: PlatformDep, service: ServiceDep) -> dict[str, Any]:
    """May the owner's location, face or school be shown to the viewer."""
    with service.tx() as s:
        owner = require_account(s, platform, body.owner, "owner")
        viewer = require_account(s, platform, body.viewer, "viewer")
        level = _level(s, viewer, owner)
    d = attribute_decision(service.profile(platform, owner), body.attribute, level)
    return _answer(service, platform, "attribute", body.attribute, d, owner, viewer)


@router.post("/collection")
def collection(body: CollectionIn, platform: PlatformDep, service: ServiceDep) -> dict[str, Any]:
    """May this category of personal information be collected from the account for the purpose."""
    with service.tx() as s:
        account = require_account(s, platform, body.account, "account")
    consent = ConsentState(guardian=body.consent.guardian, separate=body.consent.separate)
    d = collection_decision(
        service.profile(platform, account), body.category, body.purpose, consent
    )
    return _answer(service, platform, "collection", body.category, d, account)


@router.post("/spending")
def spending(body: SpendingIn, platform: PlatformDep, service: ServiceDep) -> dict[str, Any]:
    """May the account pay this amount now; includes what remains today and this month."""
    with service.tx() as s:
        account = require_account(s, platform, body.account, "account")
    try:
        d = spending_decision(
            service.profile(platform, account),
            body.amount_fen,
            body.today_total_fen,
            body.month_total_fen,
            body.purpose,
        )
    except ValueError as exc:
        raise problem_for(exc, "amount_fen") from None
    return _answer(service, platform, "spending", body.purpose, d, account)


@router.post("/playtime")
def playtime(body: PlaytimeIn, platform: PlatformDep, service: ServiceDep) -> dict[str, Any]:
    """May the account use a game or general app now; includes minutes left and the next window."""
    at: datetime = body.at or now_utc()
    with service.tx() as s:
        account = require_account(s, platform, body.account, "account")
    try:
        d = playtime_decision(
            service.profile(platform, account, at), body.kind, at, body.minutes_used_today
        )
    except CalendarRangeError as exc:
        raise field_problem(422, "at", str(exc)) from None
    except ValueError as exc:
        raise problem_for(exc, "at") from None
    return _answer(service, platform, "playtime", body.kind, d, account)
