"""Accounts: upsert from an identity number or a birth date, read back with the protection profile.

Only the birth date, sex, age source and a keyed hash of an identity number are stored; the
number itself never is.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from qinglang.age import AgeClaim, AgeSource, InvalidIdentityNumber, best_claim, validate
from qinglang.api.deps import PlatformDep, ServiceDep, storable_text
from qinglang.api.problems import error_responses, field_problem, identity_number_problem
from qinglang.api.service import Day, now_utc, require_account
from qinglang.guard import Profile
from qinglang.store import id_number_digest, repo
from qinglang.store.models import Account

router = APIRouter(
    prefix="/v1/accounts",
    tags=["accounts"],
    responses=error_responses(401),
    dependencies=[Depends(storable_text)],
)

AgeSourceName = Literal["verified", "guardian_declared", "self_declared", "inferred"]
ExternalId = Field(min_length=1, max_length=200)


class AccountIn(BaseModel):
    """An account's age facts: an identity number, or a birth date (and sex) with its source."""

    model_config = ConfigDict(extra="forbid", strict=True)

    identity_number: str | None = Field(
        default=None, description="18- or 15-digit number; never stored"
    )
    birth_date: Day | None = None
    sex: Literal["M", "F"] | None = None
    age_source: AgeSourceName | None = Field(
        default=None, description="defaults to self_declared when age facts are given"
    )
    settings: dict[str, Any] | None = Field(default=None, description="guardian settings by topic")


class AccountOut(BaseModel):
    """An account as qinglang holds it, with its protection profile."""

    external_id: str
    birth_date: date | None
    sex: str | None
    age_source: str | None
    has_identity_number: bool
    age: int | None
    band: str | None
    is_child: bool
    is_minor: bool
    settings: dict[str, Any]
    features: dict[str, dict[str, Any]]
    age_update: Literal["applied", "kept_higher_ranked", "none"] = "none"
    """Whether this request's birth date replaced the stored one: a lower-ranked source never
    overrides a higher-ranked one (verified > guardian_declared > self_declared > inferred)."""


def account_out(account: Account, profile: Profile, age_update: str = "none") -> AccountOut:
    """Response body of an account."""
    return AccountOut(
        external_id=account.external_id,
        birth_date=account.birth_date,
        sex=account.sex,
        age_source=account.age_source,
        has_identity_number=account.id_number_hash is not None,
        age=profile.age,
        band=profile.band,
        is_child=profile.is_child,
        is_minor=profile.is_minor,
        settings=dict(account.settings or {}),
        features={
            k: {"state": f.state, "rule_id": f.rule_id, "limit": f.limit}
            for k, f in profile.features().items()
        },
        age_update=age_update,
    )


def _age_facts(body: AccountIn) -> dict[str, Any]:
    """Birth date, sex, source and hash-to-be from the body; 422 naming the field when invalid."""
    facts: dict[str, Any] = {}
    if body.identity_number is not None:
        try:
            rid = validate(body.identity_number)
        except InvalidIdentityNumber as exc:
            raise identity_number_problem(exc, "identity_number") from None
        if body.birth_date is not None and body.birth_date != rid.birth_date:
            raise field_problem(422, "birth_date", "does not match the identity number")
        if body.sex is not None and body.sex != rid.sex:
            raise field_problem(422, "sex", "does not match the identity number")
        facts.update(birth_date=rid.birth_date, sex=rid.sex, number=rid.number)
    elif body.birth_date is not None:
        if body.birth_date > date.today():
            raise field_problem(422, "birth_date", "is in the future")
        facts.update(birth_date=body.birth_date)
        if body.sex is not None:
            facts["sex"] = body.sex
    elif body.sex is not None:
        facts["sex"] = body.sex
    if "birth_date" in facts:
        facts["age_source"] = body.age_source or "self_declared"
    elif body.age_source is not None:
        raise field_problem(422, "age_source", "needs identity_number or birth_date")
    return facts


@router.put("/{external_id}", responses=error_responses(400, 404, 409, 422))
def upsert_account(
    external_id: str, body: AccountIn, platform: PlatformDep, service: ServiceDep
) -> AccountOut:
    """Create or update an account; guardian settings are checked against the pack's floors."""
    if not 1 <= len(external_id) <= 200:
        raise field_problem(422, "external_id", "must be 1 to 200 characters")
    facts = _age_facts(body)
    with service.tx(write=True) as s:
        kwargs: dict[str, Any] = {}
        age_update = "none"
        if "birth_date" in facts:
            if _outranked(repo.get_account(s, platform.id, external_id), facts):
                age_update = "kept_higher_ranked"
                facts.pop("sex", None)
            else:
                age_update = "applied"
                kwargs.update(birth_date=facts["birth_date"], age_source=facts["age_source"])
        if "sex" in facts:
            kwargs["sex"] = facts["sex"]
        if "number" in facts:
            kwargs["id_number_hash"] = id_number_digest(service.keys, facts["number"])
        if body.settings is not None:
            kwargs["settings"] = body.settings
        account = repo.upsert_account(s, platform.id, external_id, **kwargs)
        service.forget_account(account.id)
        profile = service.profile(platform, account, bad_settings=422)  # checked before commit
    return account_out(account, profile, age_update)


def _outranked(stored: Account | None, facts: dict[str, Any]) -> bool:
    """Whether the stored age claim beats the new one (better source, or as good and newer)."""
    if stored is None or stored.birth_date is None or stored.age_source is None:
        return False
    old = AgeClaim(stored.birth_date, AgeSource(stored.age_source), stored.updated_at)
    new = AgeClaim(facts["birth_date"], AgeSource(facts["age_source"]), now_utc())
    return best_claim([old, new]) is old


@router.get("/{external_id}", responses=error_responses(404, 409, 422))
def get_account(external_id: str, platform: PlatformDep, service: ServiceDep) -> AccountOut:
    """An account with its protection profile."""
    with service.tx() as s:
        account = require_account(s, platform, external_id, "external_id")
    return account_out(account, service.profile(platform, account))


@router.put("/{external_id}/settings", responses=error_responses(400, 404, 409, 422))
def put_settings(
    external_id: str, settings: dict[str, Any], platform: PlatformDep, service: ServiceDep
) -> AccountOut:
    """Replace guardian settings; a setting that loosens a legal floor is rejected (422)."""
    with service.tx(write=True) as s:
        account = require_account(s, platform, external_id, "external_id")
        account = repo.upsert_account(s, platform.id, external_id, settings=settings)
        service.forget_account(account.id)
        profile = service.profile(platform, account, bad_settings=422)  # checked before commit
    return account_out(account, profile)
