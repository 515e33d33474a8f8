"""Scan text for personal information in batches; optionally flag the content item it belongs to.

When an item names its content item and owner, findings that reveal a minor (an identity number
of a minor, an age statement, a school class …) — or any personal information in content owned
by a minor — set the item's `minor_pi` flag, so exposure decisions keep it within the audience
the guardian consented to.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from qinglang.api.deps import ApiKeyDep, ServiceDep, storable_text
from qinglang.api.problems import Problem, error_responses
from qinglang.api.service import Service
from qinglang.detect import CATEGORIES, Finding, scan
from qinglang.store import repo
from qinglang.store.models import Platform

router = APIRouter(
    prefix="/v1",
    tags=["detect"],
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)

MAX_ITEMS = 1_000
MAX_TEXT = 100_000
MAX_TOTAL = 2_000_000


class ScanItem(BaseModel):
    """One text to scan, with the content item and owner it belongs to (both optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=MAX_TEXT)
    item: str | None = Field(default=None, min_length=1, max_length=200)
    owner: str | None = Field(default=None, min_length=1, max_length=200)


class ScanIn(BaseModel):
    """Up to 1,000 texts; `categories` limits what is looked for (default: everything)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    items: Annotated[list[ScanItem], Field(min_length=1, max_length=MAX_ITEMS)]
    categories: list[str] | None = None
    model: bool = Field(
        default=False, description="also run the statistical model (names, addresses, schools)"
    )


def _reveals_minor(findings: list[Finding], owner_is_minor: bool) -> bool:
    return any(f.minor_signal is not None for f in findings) or (owner_is_minor and bool(findings))


@router.post("/scan", responses=error_responses(400, 404, 409, 422))
async def scan_texts(body: ScanIn, key: ApiKeyDep, service: ServiceDep) -> dict[str, Any]:
    """Findings per text (offsets in the original text); flags content that exposes a minor."""
    bad: list[dict[str, Any]] = [
        {"field": f"categories.{i}", "message": f"unknown category {c!r}"}
        for i, c in enumerate(body.categories or [])
        if c not in CATEGORIES
    ]
    bad += [
        {"index": i, "field": f"items.{i}.owner", "message": "item and owner go together"}
        for i, it in enumerate(body.items)
        if (it.item is None) != (it.owner is None)
    ]
    total = sum(len(it.text) for it in body.items)
    if total > MAX_TOTAL:
        bad.append(
            {"field": "items", "message": f"{total:,} characters in all, over {MAX_TOTAL:,}"}
        )
    if bad:
        raise Problem(422, "Invalid request", "; ".join(str(b["message"]) for b in bad), bad)
    cats = None if body.categories is None else frozenset(body.categories)

    def work(s: Session, platform: Platform) -> dict[str, Any]:
        results = [(it, scan(it.text, categories=cats, model=body.model)) for it in body.items]
        return {
            "results": [
                {"id": it.id, "findings": [f.to_dict() for f in found]} for it, found in results
            ],
            "flagged_items": _flag(s, service, platform, results),
        }

    return await service.run(key, work)


def _flag(
    s: Session, service: Service, platform: Platform, results: list[tuple[ScanItem, list[Finding]]]
) -> list[str]:
    """Set `minor_pi` on items whose text exposes a minor; keep a guardian-consented audience."""
    named = [(i, it, found) for i, (it, found) in enumerate(results) if it.owner is not None]
    if not named:
        return []
    owners = repo.get_accounts(s, platform.id, {it.owner for _, it, _ in named if it.owner})
    missing = [
        {"index": i, "field": f"items.{i}.owner", "message": f"no account {it.owner!r}"}
        for i, it, _ in named
        if it.owner not in owners
    ]
    if missing:
        raise Problem(
            404, "Unknown account", "; ".join(str(m["message"]) for m in missing), missing
        )
    to_flag = {
        it.item: owners[it.owner]
        for _, it, found in named
        if it.item is not None
        and it.owner is not None
        and _reveals_minor(found, service.profile(platform, owners[it.owner]).is_minor)
    }
    if not to_flag:
        return []
    existing = repo.flags_for_items(s, platform.id, list(to_flag))
    with service.tx(write=True) as w:
        for item_id, owner in to_flag.items():
            if any(f.kind == "minor_pi" for f in existing.get(item_id, [])):
                continue  # already flagged, perhaps with the audience a guardian consented to
            item = repo.upsert_content_item(w, platform.id, item_id, owner.id)
            repo.set_content_flag(w, item.id, "minor_pi", source="scan")
    return list(to_flag)
