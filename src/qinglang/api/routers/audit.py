"""Records of processing (PIPL art. 56): the platform reports which personal-information
category of which account it processed, for which purpose, when. The compliance audit judges
each record of a child against the guardian's consent at that instant (docs/audit.md).

Contract: ``POST /v1/processing`` with ``{"records": [...]}`` (1 to 10,000), checked item by item
first; if any item is bad (an unknown account) the answer is 422 with every bad index and
nothing is written, otherwise all are written in one transaction.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from qinglang.api.deps import PlatformDep, ServiceDep, storable_text
from qinglang.api.problems import Problem, error_responses
from qinglang.api.service import Instant
from qinglang.store import audit as store_audit

router = APIRouter(
    prefix="/v1",
    tags=["audit"],
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)

MAX_BATCH = 10_000
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


class ProcessingIn(BaseModel):
    """One processing of an account's information."""

    model_config = ConfigDict(extra="forbid", strict=True)

    account: str = Field(min_length=1, max_length=200)
    purpose: Name
    category: Name
    at: Instant


class ProcessingBatch(BaseModel):
    """Up to 10,000 records of processing."""

    model_config = ConfigDict(extra="forbid", strict=True)

    records: Annotated[list[ProcessingIn], Field(min_length=1, max_length=MAX_BATCH)]


@router.post("/processing", status_code=201, responses=error_responses(400, 422))
def processing(body: ProcessingBatch, platform: PlatformDep, service: ServiceDep) -> dict[str, int]:
    """Store records of processing; all or nothing."""
    with service.tx(write=True) as s:
        ids = store_audit.account_ids(s, platform.id, sorted({r.account for r in body.records}))
        errors: list[dict[str, object]] = [
            {
                "index": i,
                "field": f"records.{i}.account",
                "message": f"no account {r.account!r} on this platform",
            }
            for i, r in enumerate(body.records)
            if r.account not in ids
        ]
        if errors:
            raise Problem(
                422, "Batch rejected", f"{len(errors)} bad records; nothing was written", errors
            )
        store_audit.record_processing_batch(
            s,
            platform.id,
            [(ids[r.account], r.purpose, r.category, r.at) for r in body.records],
            source="api",
        )
    return {"accepted": len(body.records)}
