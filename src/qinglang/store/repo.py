"""Repository functions over a SQLAlchemy ``Session``: the reads and writes the API and jobs need.

Functions flush but never commit: wrap calls in :func:`qinglang.store.db.transaction` so a
batch is all-or-nothing. Relationship and guardian functions take account *ids*; callers
translate external ids first (:func:`get_accounts`). Keyword arguments of the ``upsert_*``
functions default to :data:`UNSET`, meaning "leave as is" (or the column default on insert);
pass ``None`` to clear a nullable value.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import random
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal, TypeVar

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from qinglang.store.models import (
    AGE_SOURCES,
    AUDIENCES,
    FLAG_KINDS,
    RELATION_KINDS,
    SEXES,
    Account,
    ApiKey,
    ContentFlag,
    ContentItem,
    DecisionLog,
    Guardian,
    GuardianLink,
    Platform,
    Relationship,
    utcnow,
)

RelationKind = Literal["follow", "block", "approved_contact"]
FlagKind = Literal["minor_pi", "shows_minor", "unsuitable_for_minors", "commercial"]
Audience = Literal["owner", "friends", "followers", "public"]
AgeSource = Literal["verified", "guardian_declared", "self_declared", "inferred"]


class Unset(enum.Enum):
    """Type of :data:`UNSET`."""

    UNSET = "UNSET"


#: Default of optional ``upsert_*`` arguments: leave the stored value unchanged.
UNSET: Final = Unset.UNSET

API_KEY_SCHEME: Final = "ql"
_PREFIX_HEX_CHARS: Final = 12
_IN_CHUNK: Final = 500

_T = TypeVar("_T")


def _chunks(items: Iterable[_T], size: int = _IN_CHUNK) -> Iterator[list[_T]]:
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _check(value: str | None, allowed: tuple[str, ...], what: str) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {value!r}")


# --- platforms ---------------------------------------------------------------------------


def create_platform(
    session: Session,
    slug: str,
    name: str,
    *,
    jurisdiction: str = "cn",
    policy_overlay: str | None = None,
    decision_sample_rate: float = 0.01,
) -> Platform:
    """Create a platform (tenant); the slug must be unique."""
    if not 0.0 <= decision_sample_rate <= 1.0:
        raise ValueError(f"decision_sample_rate must be in [0, 1], got {decision_sample_rate}")
    platform = Platform(
        slug=slug,
        name=name,
        jurisdiction=jurisdiction,
        policy_overlay=policy_overlay,
        decision_sample_rate=decision_sample_rate,
    )
    session.add(platform)
    session.flush()
    return platform


def get_platform(session: Session, platform_id: int) -> Platform | None:
    """Return the platform with this id, if any."""
    return session.get(Platform, platform_id)


def get_platform_by_slug(session: Session, slug: str) -> Platform | None:
    """Return the platform with this slug, if any."""
    return session.scalars(select(Platform).where(Platform.slug == slug)).one_or_none()


# --- API keys ----------------------------------------------------------------------------
#
# Keys are ``ql_<12 hex prefix>_<43 chars of token_urlsafe(32)>``: 256 random bits of secret.
# Only SHA-256 of the whole key is stored. A slow password hash (or a salt) buys nothing for a
# 256-bit random secret, which cannot be guessed or looked up in a dictionary; an HMAC with a
# server key would tie every API key to the data key, so rotating that key would lock every
# platform out. The prefix is not secret: it finds the row and is what a console shows.


def _api_key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _api_key_prefix(plaintext: str) -> str | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_SCHEME or not parts[2]:
        return None
    prefix = parts[1]
    if len(prefix) != _PREFIX_HEX_CHARS or any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def issue_api_key(session: Session, platform: Platform, *, label: str = "") -> str:
    """Create an API key for ``platform`` and return its plaintext (shown once, never stored)."""
    prefix = secrets.token_hex(_PREFIX_HEX_CHARS // 2)
    plaintext = f"{API_KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiKey(
            platform_id=platform.id,
            prefix=prefix,
            key_hash=_api_key_hash(plaintext),
            label=label,
        )
    )
    session.flush()
    return plaintext


def platform_for_api_key(session: Session, plaintext: str) -> Platform | None:
    """Return the platform owning this unrevoked key (hashes compared in constant time)."""
    prefix = _api_key_prefix(plaintext)
    if prefix is None:
        return None
    digest = _api_key_hash(plaintext)
    rows = session.execute(
        select(ApiKey.key_hash, Platform)
        .join(Platform, Platform.id == ApiKey.platform_id)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
    ).all()
    found: Platform | None = None
    for key_hash, platform in rows:
        if hmac.compare_digest(key_hash, digest):
            found = platform
    return found


def list_api_keys(session: Session, platform_id: int) -> list[ApiKey]:
    """Return a platform's API keys (revoked ones included), oldest first."""
    return list(
        session.scalars(select(ApiKey).where(ApiKey.platform_id == platform_id).order_by(ApiKey.id))
    )


def revoke_api_key(session: Session, platform_id: int, prefix: str) -> bool:
    """Revoke the platform's key(s) with this prefix; return whether anything was revoked."""
    keys = session.scalars(
        select(ApiKey).where(
            ApiKey.platform_id == platform_id,
            ApiKey.prefix == prefix,
            ApiKey.revoked_at.is_(None),
        )
    ).all()
    now = utcnow()
    for key in keys:
        key.revoked_at = now
    session.flush()
    return bool(keys)


# --- accounts ----------------------------------------------------------------------------


def get_account(session: Session, platform_id: int, external_id: str) -> Account | None:
    """Return the platform's account with this external id, if any."""
    return session.scalars(
        select(Account).where(
            Account.platform_id == platform_id, Account.external_id == external_id
        )
    ).one_or_none()


def get_accounts(
    session: Session, platform_id: int, external_ids: Iterable[str]
) -> dict[str, Account]:
    """Return the platform's accounts by external id; unknown ids are absent from the dict."""
    found: dict[str, Account] = {}
    for batch in _chunks(dict.fromkeys(external_ids)):
        for account in session.scalars(
            select(Account).where(
                Account.platform_id == platform_id, Account.external_id.in_(batch)
            )
        ):
            found[account.external_id] = account
    return found


def accounts_with_id_number_hash(
    session: Session, platform_id: int, id_number_hash: str
) -> list[Account]:
    """Return the platform's accounts registered with this identity-number digest."""
    return list(
        session.scalars(
            select(Account)
            .where(Account.platform_id == platform_id, Account.id_number_hash == id_number_hash)
            .order_by(Account.id)
        )
    )


def _insert_or_get(session: Session, obj: _T, refetch: Callable[[], _T | None]) -> _T:
    """Insert ``obj`` in a savepoint; if a concurrent writer won the race, return theirs."""
    try:
        with session.begin_nested():
            session.add(obj)
    except IntegrityError:
        existing = refetch()
        if existing is None:
            raise
        return existing
    return obj


def upsert_account(
    session: Session,
    platform_id: int,
    external_id: str,
    *,
    birth_date: date | Unset | None = UNSET,
    sex: str | Unset | None = UNSET,
    age_source: AgeSource | Unset | None = UNSET,
    id_number_hash: str | Unset | None = UNSET,
    settings: Mapping[str, Any] | Unset = UNSET,
    jurisdiction: str | Unset = UNSET,
) -> Account:
    """Create or update the platform's account with this external id; UNSET leaves a field."""
    if not isinstance(sex, Unset):
        _check(sex, SEXES, "sex")
    if not isinstance(age_source, Unset):
        _check(age_source, AGE_SOURCES, "age_source")
    if isinstance(birth_date, datetime):
        raise TypeError("birth_date is a datetime.date, not a datetime")

    account = get_account(session, platform_id, external_id)
    if account is None:
        account = _insert_or_get(
            session,
            Account(platform_id=platform_id, external_id=external_id, settings={}),
            lambda: get_account(session, platform_id, external_id),
        )
    if not isinstance(birth_date, Unset):
        account.birth_date = birth_date
    if not isinstance(sex, Unset):
        account.sex = sex
    if not isinstance(age_source, Unset):
        account.age_source = age_source
    if not isinstance(id_number_hash, Unset):
        account.id_number_hash = id_number_hash
    if not isinstance(settings, Unset):
        account.settings = dict(settings)
    if not isinstance(jurisdiction, Unset):
        account.jurisdiction = jurisdiction
    session.flush()
    return account


# --- relationships -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelationFacts:
    """What the relationship graph says about accounts a and b, in both directions.

    ``approved_contact_a_to_b``: b is the child and b's guardian approved contact from a
    (stored as ``approved_contact`` with src=b, dst=a); ``approved_contact_b_to_a`` mirrors it.
    ``blocked`` is true when either side blocked the other.
    """

    a_follows_b: bool = False
    b_follows_a: bool = False
    a_blocked_b: bool = False
    b_blocked_a: bool = False
    approved_contact_a_to_b: bool = False
    approved_contact_b_to_a: bool = False

    @property
    def mutual(self) -> bool:
        """Both follow each other (a friendship)."""
        return self.a_follows_b and self.b_follows_a

    @property
    def blocked(self) -> bool:
        """Either side blocked the other."""
        return self.a_blocked_b or self.b_blocked_a


def set_relationship(
    session: Session,
    platform_id: int,
    src: int,
    dst: int,
    kind: RelationKind,
    present: bool = True,
    at: datetime | None = None,
) -> bool:
    """Add (present=True) or remove the src→dst edge of ``kind``; return whether it changed.

    Both accounts must belong to ``platform_id`` (a composite foreign key enforces it). A new
    edge is recorded as made at `at` (default now).
    """
    _check(kind, RELATION_KINDS, "kind")
    if src == dst:
        raise ValueError("a relationship needs two different accounts")

    def current() -> Relationship | None:
        return session.scalars(
            select(Relationship).where(
                Relationship.src_account_id == src,
                Relationship.dst_account_id == dst,
                Relationship.kind == kind,
            )
        ).one_or_none()

    existing = current()
    if present:
        if existing is not None:
            return False
        edge = Relationship(
            platform_id=platform_id,
            src_account_id=src,
            dst_account_id=dst,
            kind=kind,
            created_at=at or utcnow(),
        )
        return _insert_or_get(session, edge, current) is edge
    if existing is None:
        return False
    session.delete(existing)
    session.flush()
    return True


def relation_between(session: Session, a_id: int, b_id: int) -> RelationFacts:
    """Return every edge between accounts a and b as :class:`RelationFacts` (one query)."""
    return relations_from(session, a_id, [b_id])[b_id]


def relations_from(session: Session, a_id: int, others: Iterable[int]) -> dict[int, RelationFacts]:
    """Return :class:`RelationFacts` between account a and each of ``others`` (one query each
    batch of ids); an account with no edge gets empty facts."""
    wanted = list(dict.fromkeys(others))
    edges: dict[int, set[tuple[bool, str]]] = {b: set() for b in wanted}
    for batch in _chunks(wanted):
        rows = session.execute(
            select(
                Relationship.src_account_id, Relationship.dst_account_id, Relationship.kind
            ).where(
                or_(
                    and_(
                        Relationship.src_account_id == a_id,
                        Relationship.dst_account_id.in_(batch),
                    ),
                    and_(
                        Relationship.dst_account_id == a_id,
                        Relationship.src_account_id.in_(batch),
                    ),
                )
            )
        ).all()
        for src, dst, kind in rows:
            from_a = src == a_id
            edges[dst if from_a else src].add((from_a, kind))
    return {
        b: RelationFacts(
            a_follows_b=(True, "follow") in e,
            b_follows_a=(False, "follow") in e,
            a_blocked_b=(True, "block") in e,
            b_blocked_a=(False, "block") in e,
            approved_contact_a_to_b=(False, "approved_contact") in e,
            approved_contact_b_to_a=(True, "approved_contact") in e,
        )
        for b, e in edges.items()
    }


def friends_of(session: Session, account_id: int) -> list[int]:
    """Return ids of accounts in mutual follow with ``account_id``, minus blocked pairs."""
    out = aliased(Relationship)
    back = aliased(Relationship)
    block = aliased(Relationship)
    other = out.dst_account_id
    blocked = exists().where(
        block.kind == "block",
        or_(
            and_(block.src_account_id == account_id, block.dst_account_id == other),
            and_(block.src_account_id == other, block.dst_account_id == account_id),
        ),
    )
    query = (
        select(other)
        .join(
            back,
            and_(
                back.src_account_id == other,
                back.dst_account_id == account_id,
                back.kind == "follow",
            ),
        )
        .where(out.src_account_id == account_id, out.kind == "follow", ~blocked)
        .order_by(other)
    )
    return list(session.scalars(query))


# --- content -----------------------------------------------------------------------------


def _get_content_item(session: Session, platform_id: int, external_id: str) -> ContentItem | None:
    return session.scalars(
        select(ContentItem).where(
            ContentItem.platform_id == platform_id, ContentItem.external_id == external_id
        )
    ).one_or_none()


def upsert_content_item(
    session: Session, platform_id: int, external_id: str, owner_account_id: int
) -> ContentItem:
    """Create the platform's content item with this external id, or update its owner."""
    item = _get_content_item(session, platform_id, external_id)
    if item is None:
        item = _insert_or_get(
            session,
            ContentItem(
                platform_id=platform_id,
                external_id=external_id,
                owner_account_id=owner_account_id,
            ),
            lambda: _get_content_item(session, platform_id, external_id),
        )
    item.owner_account_id = owner_account_id
    session.flush()
    return item


def set_content_flag(
    session: Session,
    item_id: int,
    kind: FlagKind,
    *,
    source: str,
    audience: Audience | None = None,
    min_age: int | None = None,
    present: bool = True,
    at: datetime | None = None,
) -> ContentFlag | None:
    """Set (or with present=False remove) the item's flag of ``kind``; return it if present
    (a new flag is recorded as made at `at`, default now)."""
    _check(kind, FLAG_KINDS, "kind")
    _check(audience, AUDIENCES, "audience")
    if min_age is not None and not 0 <= min_age <= 100:
        raise ValueError(f"min_age must be in [0, 100], got {min_age}")

    def current() -> ContentFlag | None:
        return session.scalars(
            select(ContentFlag).where(ContentFlag.item_id == item_id, ContentFlag.kind == kind)
        ).one_or_none()

    flag = current()
    if not present:
        if flag is not None:
            session.delete(flag)
            session.flush()
        return None
    if flag is None:
        flag = _insert_or_get(
            session,
            ContentFlag(item_id=item_id, kind=kind, source=source, created_at=at or utcnow()),
            current,
        )
    flag.audience = audience
    flag.min_age = min_age
    flag.source = source
    session.flush()
    return flag


def flags_for_items(
    session: Session, platform_id: int, external_ids: Iterable[str]
) -> dict[str, list[ContentFlag]]:
    """Return flags by item external id; known items without flags map to [], unknown are absent."""
    result: dict[str, list[ContentFlag]] = {}
    for batch in _chunks(dict.fromkeys(external_ids)):
        rows = session.execute(
            select(ContentItem.external_id, ContentFlag)
            .outerjoin(ContentFlag, ContentFlag.item_id == ContentItem.id)
            .where(ContentItem.platform_id == platform_id, ContentItem.external_id.in_(batch))
            .order_by(ContentItem.external_id, ContentFlag.kind)
        ).all()
        for external_id, flag in rows:
            flags = result.setdefault(external_id, [])
            if flag is not None:
                flags.append(flag)
    return result


def item_owners(
    session: Session, platform_id: int, external_ids: Iterable[str]
) -> dict[str, Account]:
    """Return the owning account of each known content item by external id; unknown are absent."""
    owners: dict[str, Account] = {}
    for batch in _chunks(dict.fromkeys(external_ids)):
        rows = session.execute(
            select(ContentItem.external_id, Account)
            .join(Account, Account.id == ContentItem.owner_account_id)
            .where(ContentItem.platform_id == platform_id, ContentItem.external_id.in_(batch))
        ).all()
        for external_id, account in rows:
            owners[external_id] = account
    return owners


# --- guardians ---------------------------------------------------------------------------


def get_guardian(session: Session, platform_id: int, external_id: str) -> Guardian | None:
    """Return the platform's guardian with this external id, if any."""
    return session.scalars(
        select(Guardian).where(
            Guardian.platform_id == platform_id, Guardian.external_id == external_id
        )
    ).one_or_none()


def upsert_guardian(
    session: Session,
    platform_id: int,
    external_id: str,
    *,
    display_name: str | Unset | None = UNSET,
    id_number_hash: str | Unset | None = UNSET,
) -> Guardian:
    """Create or update the platform's guardian with this external id; UNSET leaves a field."""
    guardian = get_guardian(session, platform_id, external_id)
    if guardian is None:
        guardian = _insert_or_get(
            session,
            Guardian(platform_id=platform_id, external_id=external_id),
            lambda: get_guardian(session, platform_id, external_id),
        )
    if not isinstance(display_name, Unset):
        guardian.display_name = display_name
    if not isinstance(id_number_hash, Unset):
        guardian.id_number_hash = id_number_hash
    session.flush()
    return guardian


def link_guardian(
    session: Session,
    guardian_id: int,
    account_id: int,
    *,
    method: str,
    verified_by: str,
    verified_at: datetime | None = None,
) -> GuardianLink:
    """Record (or re-activate) a verified guardian-of link; both must be on the same platform."""
    guardian = session.get(Guardian, guardian_id)
    account = session.get(Account, account_id)
    if guardian is None or account is None:
        raise ValueError(f"unknown guardian {guardian_id} or account {account_id}")
    if guardian.platform_id != account.platform_id:
        raise ValueError("guardian and account belong to different platforms")

    def current() -> GuardianLink | None:
        return session.scalars(
            select(GuardianLink).where(
                GuardianLink.guardian_id == guardian_id, GuardianLink.account_id == account_id
            )
        ).one_or_none()

    when = verified_at or utcnow()
    link = current()
    if link is None:
        link = _insert_or_get(
            session,
            GuardianLink(
                guardian_id=guardian_id,
                account_id=account_id,
                method=method,
                verified_by=verified_by,
                verified_at=when,
            ),
            current,
        )
    link.method = method
    link.verified_by = verified_by
    link.verified_at = when
    link.revoked_at = None
    session.flush()
    return link


def unlink_guardian(
    session: Session, guardian_id: int, account_id: int, at: datetime | None = None
) -> bool:
    """Revoke an active guardian link (kept for the record, revoked at `at`, default now);
    return whether one was revoked."""
    link = session.scalars(
        select(GuardianLink).where(
            GuardianLink.guardian_id == guardian_id,
            GuardianLink.account_id == account_id,
            GuardianLink.revoked_at.is_(None),
        )
    ).one_or_none()
    if link is None:
        return False
    link.revoked_at = at or utcnow()
    session.flush()
    return True


def guardians_of(session: Session, account_id: int) -> list[Guardian]:
    """Return the account's guardians with an unrevoked link, earliest verified first."""
    return list(
        session.scalars(
            select(Guardian)
            .join(GuardianLink, GuardianLink.guardian_id == Guardian.id)
            .where(GuardianLink.account_id == account_id, GuardianLink.revoked_at.is_(None))
            .order_by(GuardianLink.verified_at, Guardian.id)
        )
    )


# --- decision log ------------------------------------------------------------------------


def log_decision(
    session: Session,
    platform: Platform,
    *,
    kind: str,
    action: str,
    outcome: str,
    rule_ids: Sequence[str],
    subject_account_id: int | None = None,
    other_account_id: int | None = None,
    request: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    always: bool = False,
    rng: Callable[[], float] = random.random,
) -> DecisionLog | None:
    """Log a decision with probability ``platform.decision_sample_rate`` (or ``always``).

    Returns the row written, or None when the sample skipped it. ``request`` should carry ids
    and action parameters only, never raw personal information.
    """
    if not always and rng() >= platform.decision_sample_rate:
        return None
    entry = DecisionLog(
        platform_id=platform.id,
        kind=kind,
        action=action,
        outcome=outcome,
        rule_ids=list(rule_ids),
        subject_account_id=subject_account_id,
        other_account_id=other_account_id,
        request=dict(request) if request is not None else None,
        at=at or utcnow(),
    )
    session.add(entry)
    session.flush()
    return entry


def recent_decisions(session: Session, platform_id: int, *, limit: int = 100) -> list[DecisionLog]:
    """Return the platform's most recent logged decisions, newest first."""
    return list(
        session.scalars(
            select(DecisionLog)
            .where(DecisionLog.platform_id == platform_id)
            .order_by(DecisionLog.at.desc(), DecisionLog.id.desc())
            .limit(limit)
        )
    )
