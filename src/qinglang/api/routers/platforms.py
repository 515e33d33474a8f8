"""Platform registration, API keys and the platform's effective policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from qinglang.api.deps import PlatformDep, ServiceDep, require_admin, storable_text
from qinglang.api.problems import error_responses, field_problem
from qinglang.policy import PolicyError, load_policy
from qinglang.store import repo

router = APIRouter(
    prefix="/v1",
    tags=["platforms"],
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)


class PlatformIn(BaseModel):
    """A platform to register."""

    model_config = ConfigDict(extra="forbid", strict=True)

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    jurisdiction: str = "cn"
    policy_overlay: str | None = Field(default=None, description="TOML overlay tightening the pack")
    decision_sample_rate: float = Field(default=0.01, ge=0, le=1)


class PlatformOut(BaseModel):
    """A registered platform; `api_key` is shown once, at creation."""

    slug: str
    name: str
    jurisdiction: str
    policy_version: str
    api_key: str | None = None


@router.post(
    "/platforms",
    status_code=201,
    dependencies=[Depends(require_admin)],
    responses=error_responses(400, 403, 409, 422),
)
def register_platform(body: PlatformIn, service: ServiceDep) -> PlatformOut:
    """Register a platform (operator only) and issue its first API key."""
    try:
        policy = load_policy(body.jurisdiction, body.policy_overlay)
    except PolicyError as exc:
        field = "jurisdiction" if "unknown policy pack" in str(exc) else "policy_overlay"
        raise field_problem(422, field, str(exc)) from None
    try:
        with service.tx(write=True) as s:
            p = repo.create_platform(
                s,
                body.slug,
                body.name,
                jurisdiction=body.jurisdiction,
                policy_overlay=body.policy_overlay,
                decision_sample_rate=body.decision_sample_rate,
            )
            key = repo.issue_api_key(s, p, label="initial")
    except IntegrityError:
        raise field_problem(409, "slug", f"platform {body.slug!r} exists", "Conflict") from None
    return PlatformOut(
        slug=p.slug,
        name=p.name,
        jurisdiction=p.jurisdiction,
        policy_version=policy.meta.version,
        api_key=key,
    )


@router.post("/keys", status_code=201)
def new_key(platform: PlatformDep, service: ServiceDep) -> dict[str, str]:
    """Issue another API key for the calling platform (for rotation)."""
    with service.tx(write=True) as s:
        fresh = repo.get_platform(s, platform.id)
        assert fresh is not None
        key = repo.issue_api_key(s, fresh, label="rotated")
    service.forget_api_keys()
    return {"api_key": key}


@router.delete("/keys/{prefix}", status_code=204, responses=error_responses(404, 422))
def revoke_key(prefix: str, platform: PlatformDep, service: ServiceDep) -> None:
    """Revoke one of the calling platform's keys by its prefix."""
    with service.tx(write=True) as s:
        if not repo.revoke_api_key(s, platform.id, prefix):
            raise field_problem(404, "prefix", f"no active key with prefix {prefix!r}", "Not found")
    service.forget_api_keys()


@router.get("/policy", responses=error_responses(409))
def effective_policy(platform: PlatformDep, service: ServiceDep) -> dict[str, Any]:
    """The rules in force for the calling platform, with citations."""
    policy = service.policy_for(platform)
    return {
        "pack": policy.meta.model_dump(),
        "overrides": policy.overrides,
        "rules": [r.model_dump() for r in policy.rules.values()],
    }
