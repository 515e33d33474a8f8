"""Relationship events and content flags, in batches that are written whole or not at all.

Contract: a batch is checked item by item first; if any item is bad, the answer is 422 with
every bad index and reason, and nothing is written. Otherwise all items are written in one
transaction.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from qinglang.api.deps import PlatformDep, ServiceDep, storable_text
from qinglang.api.problems import Problem, error_responses
from qinglang.store import repo

router = APIRouter(
    prefix="/v1",
    tags=["graph"],
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)

MAX_BATCH = 10_000

_EDGE: dict[str, tuple[repo.RelationKind, bool]] = {
    "follow": ("follow", True),
    "unfollow": ("follow", False),
    "block": ("block", True),
    "unblock": ("block", False),
    "approve_contact": ("approved_contact", True),
    "revoke_contact": ("approved_contact", False),
}


class RelationshipEvent(BaseModel):
    """src does `type` to dst; for approve/revoke_contact, src is the child and dst the contact."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["follow", "unfollow", "block", "unblock", "approve_contact", "revoke_contact"]
    src: str = Field(min_length=1, max_length=200)
    dst: str = Field(min_length=1, max_length=200)


class RelationshipBatch(BaseModel):
    """Up to 10,000 relationship events."""

    model_config = ConfigDict(extra="forbid", strict=True)

    events: Annotated[list[RelationshipEvent], Field(min_length=1, max_length=MAX_BATCH)]


class ContentFlagIn(BaseModel):
    """A flag on a content item, e.g. it shows a minor's personal information."""

    model_config = ConfigDict(extra="forbid", strict=True)

    item: str = Field(min_length=1, max_length=200)
    owner: str = Field(min_length=1, max_length=200)
    kind: Literal["minor_pi", "shows_minor", "unsuitable_for_minors", "commercial"]
    audience: Literal["owner", "friends", "followers", "public"] | None = Field(
        default=None, description="for minor_pi/shows_minor: the audience the guardian consented to"
    )
    min_age: int | None = Field(default=None, ge=0, le=100)
    present: bool = True
    source: str = Field(default="platform", max_length=100)


class ContentFlagBatch(BaseModel):
    """Up to 10,000 content flags."""

    model_config = ConfigDict(extra="forbid", strict=True)

    flags: Annotated[list[ContentFlagIn], Field(min_length=1, max_length=MAX_BATCH)]


def _bad(index: int, field: str, message: str) -> dict[str, object]:
    """One bad item of a batch: its index, the field and why."""
    return {"index": index, "field": field, "message": message}


def _rejected(errors: list[dict[str, object]], what: str) -> Problem:
    return Problem(
        422,
        "Batch rejected",
        f"{len(errors)} bad {what}; nothing was written",
        errors,
    )


@router.post("/relationships", responses=error_responses(400, 422))
def relationship_events(
    body: RelationshipBatch, platform: PlatformDep, service: ServiceDep
) -> dict[str, int]:
    """Apply follow/block/approval events; all or nothing."""
    names = {e.src for e in body.events} | {e.dst for e in body.events}
    with service.tx(write=True) as s:
        accounts = repo.get_accounts(s, platform.id, names)
        errors: list[dict[str, object]] = []
        for i, e in enumerate(body.events):
            for side in ("src", "dst"):
                if getattr(e, side) not in accounts:
                    errors.append(
                        _bad(
                            i,
                            f"events.{i}.{side}",
                            f"no account {getattr(e, side)!r} on this platform",
                        )
                    )
            if e.src == e.dst:
                errors.append(_bad(i, f"events.{i}.dst", "src and dst are the same account"))
        if errors:
            raise _rejected(errors, "events")
        changed = 0
        at = service.clock()
        for e in body.events:
            kind, present = _EDGE[e.type]
            changed += repo.set_relationship(
                s,
                platform.id,
                accounts[e.src].id,
                accounts[e.dst].id,
                kind,
                present,
                at,
            )
    return {"accepted": len(body.events), "changed": changed}


@router.post("/content/flags", responses=error_responses(400, 422))
def content_flags(
    body: ContentFlagBatch, platform: PlatformDep, service: ServiceDep
) -> dict[str, int]:
    """Set or clear flags on content items (creating the items); all or nothing."""
    with service.tx(write=True) as s:
        owners = repo.get_accounts(s, platform.id, {f.owner for f in body.flags})
        errors: list[dict[str, object]] = []
        for i, f in enumerate(body.flags):
            if f.owner not in owners:
                errors.append(
                    _bad(i, f"flags.{i}.owner", f"no account {f.owner!r} on this platform")
                )
            if f.audience is not None and f.kind not in ("minor_pi", "shows_minor"):
                errors.append(
                    _bad(
                        i,
                        f"flags.{i}.audience",
                        "audience applies to minor_pi and shows_minor flags only",
                    )
                )
        if errors:
            raise _rejected(errors, "flags")
        at = service.clock()
        for f in body.flags:
            item = repo.upsert_content_item(s, platform.id, f.item, owners[f.owner].id)
            repo.set_content_flag(
                s,
                item.id,
                f.kind,
                source=f.source,
                audience=f.audience,
                min_age=f.min_age,
                present=f.present,
                at=at,
            )
    return {"accepted": len(body.flags)}
