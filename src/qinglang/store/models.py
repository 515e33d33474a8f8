"""SQLAlchemy 2 declarative models of the qinglang store: tenants, accounts, guardians, graph.

Conventions: integer surrogate keys (BIGINT on PostgreSQL, INTEGER rowid on SQLite); every
timestamp is timezone-aware and stored in UTC (:class:`UTCDateTime`); JSON is JSONB on
PostgreSQL and JSON text on SQLite; sensitive values use the encrypted types of
:mod:`qinglang.store.crypto`. Rows that point at two accounts (relationships, content owners)
carry the platform id in a composite foreign key so that no row can join two tenants.
Keep :mod:`qinglang.store.migrations` in step: ``tests/store`` compares the two.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from qinglang.store.crypto import EncryptedDate, EncryptedText

AGE_SOURCES: Final = ("verified", "guardian_declared", "self_declared", "inferred")
SEXES: Final = ("M", "F")
RELATION_KINDS: Final = ("follow", "block", "approved_contact")
FLAG_KINDS: Final = ("minor_pi", "shows_minor", "unsuitable_for_minors", "commercial")
AUDIENCES: Final = ("owner", "friends", "followers", "public")
CONSENT_STATUSES: Final = ("granted", "refused", "withdrawn")
CONSENT_GIVERS: Final = ("guardian", "self")
RIGHTS_KINDS: Final = ("access", "correction", "deletion", "withdrawal", "cancellation")
RIGHTS_STATUSES: Final = ("received", "in_progress", "completed", "refused")

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Surrogate key type: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
IdType: Final = BigInteger().with_variant(Integer(), "sqlite")


def json_type() -> TypeEngine[Any]:
    """Portable JSON: JSONB on PostgreSQL, JSON text elsewhere (a new instance per column)."""
    return JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamp stored as UTC; naive datetimes are refused on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC; reject naive ones."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        value = value.astimezone(UTC)
        # SQLite keeps no offset: store the naive UTC wall clock, read back as UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime (SQLite hands back naive UTC)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _id() -> Mapped[int]:
    return mapped_column(IdType, primary_key=True, autoincrement=True)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, server_default=func.now())


def _updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, server_default=func.now())


def _platform_fk() -> Mapped[int]:
    return mapped_column(IdType, ForeignKey("platforms.id", ondelete="CASCADE"))


class Platform(Base):
    """A tenant: one platform (app) running qinglang, with its policy overlay and log sampling."""

    __tablename__ = "platforms"
    __table_args__ = (
        CheckConstraint(
            "decision_sample_rate >= 0 AND decision_sample_rate <= 1", name="sample_rate"
        ),
    )

    id: Mapped[int] = _id()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str] = mapped_column(String(16), default="cn", server_default="cn")
    #: TOML text that tightens the jurisdiction pack for this platform (parsed by qinglang.policy).
    policy_overlay: Mapped[str | None] = mapped_column(Text)
    decision_sample_rate: Mapped[float] = mapped_column(
        Float, default=0.01, server_default=text("0.01")
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    def __repr__(self) -> str:
        return f"Platform(id={self.id!r}, slug={self.slug!r})"


class ApiKey(Base):
    """A platform's API key: only a SHA-256 of the full key is kept, found by its public prefix."""

    __tablename__ = "api_keys"

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("platforms.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(12), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, prefix={self.prefix!r}, revoked={self.revoked_at})"


class Account(Base):
    """An end user of a platform as qinglang knows them: age facts, identity digest, settings."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("platform_id", "external_id"),
        # Target of the composite (platform_id, account) foreign keys below.
        UniqueConstraint("platform_id", "id"),
        CheckConstraint(f"sex IS NULL OR {_in('sex', SEXES)}", name="sex"),
        CheckConstraint(
            f"age_source IS NULL OR {_in('age_source', AGE_SOURCES)}", name="age_source"
        ),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    external_id: Mapped[str] = mapped_column(String(255))
    birth_date: Mapped[date | None] = mapped_column(EncryptedDate())
    sex: Mapped[str | None] = mapped_column(String(1))
    age_source: Mapped[str | None] = mapped_column(String(32))
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(16), default="cn", server_default="cn")
    #: Guardian settings and account toggles; assign a new dict or mutate in place (tracked).
    settings: Mapped[dict[str, Any]] = mapped_column(
        MutableDict.as_mutable(json_type()), default=dict, server_default=text("'{}'")
    )
    #: Bumped in the same transaction as every change to this account's consents, so that a
    #: cached consent snapshot keyed by it can never outlive a withdrawal.
    consent_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: Set when the account was cancelled (a rights request); its data is then erased.
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: While set and in the future, the account may not contact minors (risk review): the end of
    #: its latest active restriction, INDEFINITE until lifted. Mirrors ``restrictions``; a change
    #: bumps ``updated_at``, so the next decision in any worker rebuilds the cached profile.
    restricted_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    def __repr__(self) -> str:
        return f"Account(id={self.id!r}, external_id={self.external_id!r})"


class Guardian(Base):
    """A guardian (parent or legal guardian) known to a platform."""

    __tablename__ = "guardians"
    __table_args__ = (UniqueConstraint("platform_id", "external_id"),)

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    external_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(EncryptedText())
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    def __repr__(self) -> str:
        return f"Guardian(id={self.id!r}, external_id={self.external_id!r})"


class GuardianLink(Base):
    """A verified guardian-of link between a guardian and an account; revoked, never deleted."""

    __tablename__ = "guardian_links"
    __table_args__ = (UniqueConstraint("guardian_id", "account_id"),)

    id: Mapped[int] = _id()
    guardian_id: Mapped[int] = mapped_column(IdType, ForeignKey("guardians.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(32))
    verified_by: Mapped[str] = mapped_column(String(128))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: What the verifier returned, minimised (a reference and the checks made; no raw numbers).
    evidence: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Relationship(Base):
    """A directed edge src→dst: follow, block, or approved_contact (src is the child whose
    guardian approved contact from dst)."""

    __tablename__ = "relationships"
    __table_args__ = (
        UniqueConstraint("src_account_id", "dst_account_id", "kind"),
        ForeignKeyConstraint(
            ["platform_id", "src_account_id"],
            ["accounts.platform_id", "accounts.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["platform_id", "dst_account_id"],
            ["accounts.platform_id", "accounts.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(_in("kind", RELATION_KINDS), name="kind"),
        CheckConstraint("src_account_id <> dst_account_id", name="not_self"),
        Index(None, "dst_account_id", "kind"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    src_account_id: Mapped[int] = mapped_column(IdType)
    dst_account_id: Mapped[int] = mapped_column(IdType)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created()


class ContentItem(Base):
    """A piece of platform content (video, post, live room) that qinglang holds flags for."""

    __tablename__ = "content_items"
    __table_args__ = (
        UniqueConstraint("platform_id", "external_id"),
        ForeignKeyConstraint(
            ["platform_id", "owner_account_id"],
            ["accounts.platform_id", "accounts.id"],
            ondelete="CASCADE",
        ),
        Index(None, "owner_account_id"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    external_id: Mapped[str] = mapped_column(String(255))
    owner_account_id: Mapped[int] = mapped_column(IdType)
    created_at: Mapped[datetime] = _created()


class ContentFlag(Base):
    """A fact about a content item (shows a minor, carries a minor's PI, ...) and its audience."""

    __tablename__ = "content_flags"
    __table_args__ = (
        UniqueConstraint("item_id", "kind"),
        CheckConstraint(_in("kind", FLAG_KINDS), name="kind"),
        CheckConstraint(f"audience IS NULL OR {_in('audience', AUDIENCES)}", name="audience"),
        CheckConstraint("min_age IS NULL OR (min_age >= 0 AND min_age <= 100)", name="min_age"),
    )

    id: Mapped[int] = _id()
    item_id: Mapped[int] = mapped_column(IdType, ForeignKey("content_items.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str | None] = mapped_column(String(16))
    min_age: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    def __repr__(self) -> str:
        return f"ContentFlag(item_id={self.item_id!r}, kind={self.kind!r})"


class DecisionLog(Base):
    """A sampled record of one guard decision; account links are nulled if the account is erased.

    ``request`` should hold ids and action parameters only, never raw personal information.
    """

    __tablename__ = "decision_logs"
    __table_args__ = (Index(None, "platform_id", "at"),)

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = mapped_column(IdType, ForeignKey("platforms.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    subject_account_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    other_account_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    rule_ids: Mapped[list[str]] = mapped_column(json_type(), default=list)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, server_default=func.now())
    request: Mapped[dict[str, Any] | None] = mapped_column(json_type())


class Notice(Base):
    """A published privacy notice: one version per platform, language and audience, hashed."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("platform_id", "language", "audience", "version"),)

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    language: Mapped[str] = mapped_column(String(16))
    audience: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    #: The notice document (elements and processing items) exactly as published.
    body: Mapped[dict[str, Any]] = mapped_column(json_type())
    content_hash: Mapped[str] = mapped_column(String(64))
    published_by: Mapped[str] = mapped_column(String(128))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Consent(Base):
    """The current consent of one account for one purpose and PI category; history is in the
    ledger. ``stale_since`` is set when a later notice changed that purpose or scope."""

    __tablename__ = "consents"
    __table_args__ = (
        UniqueConstraint("account_id", "purpose", "category"),
        CheckConstraint(_in("status", CONSENT_STATUSES), name="status"),
        CheckConstraint(_in("given_by", CONSENT_GIVERS), name="given_by"),
        CheckConstraint(f"audience IS NULL OR {_in('audience', AUDIENCES)}", name="audience"),
        ForeignKeyConstraint(
            ["platform_id", "account_id"],
            ["accounts.platform_id", "accounts.id"],
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    account_id: Mapped[int] = mapped_column(IdType)
    purpose: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    audience: Mapped[str | None] = mapped_column(String(16))
    given_by: Mapped[str] = mapped_column(String(16))
    guardian_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("guardians.id", ondelete="SET NULL")
    )
    notice_id: Mapped[int] = mapped_column(IdType, ForeignKey("notices.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stale_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class LedgerEntry(Base):
    """One link of a platform's hash chain: ``hash = SHA-256(prev_hash || SHA-256(body))``.

    ``body`` is the canonical JSON text that was hashed, kept verbatim (not re-serialised).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("platform_id", "seq"),
        UniqueConstraint("platform_id", "request_key"),
        Index(None, "platform_id", "subject"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(48))
    #: External id of the account the entry is about (kept after erasure: consent proof).
    subject: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    #: Client idempotency key of the request that wrote this entry (a retry finds it).
    request_key: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerHead(Base):
    """The last link of a platform's chain, updated with every append (detects truncation)."""

    __tablename__ = "ledger_heads"

    platform_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("platforms.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = _updated()


class RightsRequest(Base):
    """A data-rights request (access, correction, deletion, withdrawal, cancellation)."""

    __tablename__ = "rights_requests"
    __table_args__ = (
        CheckConstraint(_in("kind", RIGHTS_KINDS), name="kind"),
        CheckConstraint(_in("status", RIGHTS_STATUSES), name="status"),
        CheckConstraint(_in("requester", CONSENT_GIVERS), name="requester"),
        Index(None, "platform_id", "status", "due_at"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    account_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    subject: Mapped[str] = mapped_column(String(255))
    requester: Mapped[str] = mapped_column(String(16))
    guardian_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("guardians.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    #: JSON text of the request's particulars (a correction's new values): encrypted.
    details: Mapped[str | None] = mapped_column(EncryptedText())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Written reasons when refused (条例 art. 34).
    reason: Mapped[str | None] = mapped_column(Text)
    #: What was done: for a deletion, what was erased and what the law requires keeping.
    answer: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RightsRequestEvent(Base):
    """One status change of a rights request, with who made it and a note."""

    __tablename__ = "rights_request_events"

    id: Mapped[int] = _id()
    request_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("rights_requests.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


# ---------------------------------------------------------------- events, risk and review

EVENT_KINDS: Final = (
    "follow",
    "unfollow",
    "message",
    "impression",
    "gift",
    "profile_view",
    "block",
    "report",
)
ALERT_LEVELS: Final = ("review", "restrict")
ALERT_STATUSES: Final = ("open", "in_review", "actioned", "dismissed")
ALERT_PRIORITIES: Final = ("urgent", "high", "normal")
RESTRICTION_SCOPES: Final = ("contact_minors", "suspended")
INDEFINITE: Final = datetime(9999, 12, 31, tzinfo=UTC)
"""``accounts.restricted_until`` of a restriction that lasts until it is lifted."""


class StoredEvent(Base):
    """One platform event as received (validated), in arrival order per platform.

    ``seq`` is assigned under the platform's intake lock (:class:`EventHead`), so a consumer
    that reads ``seq > checkpoint`` never skips an event committed late. Message text is
    encrypted; everything else is ids, kinds and times.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("platform_id", "event_id"),
        UniqueConstraint("platform_id", "seq"),
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        Index(None, "platform_id", "at"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    seq: Mapped[int] = mapped_column(BigInteger)
    #: The platform's own id of the event (idempotency key).
    event_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    target: Mapped[str | None] = mapped_column(String(200))
    item: Mapped[str | None] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(200))
    surface: Mapped[str | None] = mapped_column(String(16))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str | None] = mapped_column(EncryptedText())
    #: For a message: False when the platform blocked it (an attempt); None: delivered.
    delivered: Mapped[bool | None] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventHead(Base):
    """The last event sequence number of a platform; intake locks it (one writer per platform)."""

    __tablename__ = "event_heads"

    platform_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("platforms.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = _updated()


class RiskConsumer(Base):
    """The lease and checkpoint of the risk consumer of one platform.

    Only the holder of an unexpired lease feeds the engine; it moves ``checkpoint`` (the last
    event ``seq`` processed) in the same transaction as the alerts it wrote.
    """

    __tablename__ = "risk_consumers"

    platform_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("platforms.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checkpoint: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    #: The latest event time processed (replay on takeover reaches back from here).
    watermark_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    updated_at: Mapped[datetime] = _updated()


class Alert(Base):
    """A risk alert raised by the engine, with minimised evidence, priority, SLA and assignment.

    ``alert_id`` is the engine's deterministic id (idempotent writes). ``evidence`` is the
    encrypted JSON of signals with excerpts, the event timeline and the minors involved.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("platform_id", "alert_id"),
        CheckConstraint(_in("level", ALERT_LEVELS), name="level"),
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        CheckConstraint(_in("priority", ALERT_PRIORITIES), name="priority"),
        # the compliance dashboard counts a platform's alerts per period
        Index("ix_alerts_platform_id_raised_at", "platform_id", "raised_at"),
        Index(None, "platform_id", "status", "due_at"),
        Index(None, "platform_id", "sender"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    alert_id: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    rule_id: Mapped[str] = mapped_column(String(128))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    minors: Mapped[list[str]] = mapped_column(json_type(), default=list)
    event_ids: Mapped[list[str]] = mapped_column(json_type(), default=list)
    signal_names: Mapped[list[str]] = mapped_column(json_type(), default=list)
    evidence: Mapped[str] = mapped_column(EncryptedText())
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(128))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Legal hold on the alert's evidence (retention and erasure keep it while set, unreleased).
    hold_reason: Mapped[str | None] = mapped_column(EncryptedText())
    hold_set_by: Mapped[str | None] = mapped_column(String(128))
    hold_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hold_released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Restriction(Base):
    """A sender restricted from contacting minors (or suspended): by a reviewer, or
    automatically above the pack's high threshold pending review. Lifted, never deleted."""

    __tablename__ = "restrictions"
    __table_args__ = (
        CheckConstraint(_in("scope", RESTRICTION_SCOPES), name="scope"),
        Index(None, "platform_id", "account"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    #: External id of the restricted account (it may not be registered with qinglang yet).
    account: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(16))
    automatic: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    reason: Mapped[str] = mapped_column(EncryptedText())
    created_by: Mapped[str] = mapped_column(String(128))
    alert_pk: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("alerts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = _created()
    #: None: until lifted.
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(128))
    lift_reason: Mapped[str | None] = mapped_column(EncryptedText())


class ReviewAction(Base):
    """One reviewer (or automatic) action on an alert; the ledger holds its audit entry."""

    __tablename__ = "review_actions"

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    alert_pk: Mapped[int] = mapped_column(
        IdType, ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(EncryptedText())
    #: Ids and parameters only (restriction ids, items, authority, document id ...).
    details: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReviewDocument(Base):
    """A generated document (a report to the police or a regulator), encrypted, hashed."""

    __tablename__ = "review_documents"

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    alert_pk: Mapped[int] = mapped_column(
        IdType, ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    authority: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(128))
    media_type: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(EncryptedText())
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()


class GuardianNotification(Base):
    """A notification recorded for a guardian of a minor involved in an alert (the platform
    delivers it)."""

    __tablename__ = "guardian_notifications"

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    alert_pk: Mapped[int] = mapped_column(
        IdType, ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    guardian_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("guardians.id", ondelete="SET NULL"), index=True
    )
    child: Mapped[str] = mapped_column(String(200))
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()


def active_restriction_end(
    connection: Any, platform_id: int, account: str, now: datetime
) -> datetime | None:
    """When the account's active restrictions end (INDEFINITE if one has no end), or None."""
    rows = connection.execute(
        select(Restriction.until).where(
            Restriction.platform_id == platform_id,
            Restriction.account == account,
            Restriction.lifted_at.is_(None),
        )
    ).all()
    ends = [INDEFINITE if u is None else u for (u,) in rows]
    live = [e for e in ends if e > now]
    return max(live) if live else None


@event.listens_for(Account, "before_insert")
def _restricted_on_registration(_mapper: Any, connection: Any, account: Account) -> None:
    """An account registered after it was restricted (events may come first) starts restricted."""
    if account.restricted_until is None and account.platform_id is not None:
        account.restricted_until = active_restriction_end(
            connection, account.platform_id, account.external_id, utcnow()
        )


# ---------------------------------------------------------------- age assessments

AGE_ASSESSMENT_STATES: Final = (
    "clear",
    "suspected",
    "verification_requested",
    "appealed",
    "verified_minor",
    "verified_adult",
)


class AgeAssessment(Base):
    """An account's latest inferred-age assessment and where its suspicion stands (one per
    account); a transition bumps the account row so the next decision sees it."""

    __tablename__ = "age_assessments"
    __table_args__ = (CheckConstraint(_in("state", AGE_ASSESSMENT_STATES), name="state"),)

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    account_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(String(32))
    p_under18: Mapped[float | None] = mapped_column(Float)
    p_under14: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(32))
    suspected_child: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    model: Mapped[str | None] = mapped_column(String(64))
    #: Top signals, minimised: name, weight and implied age only (never the evidence text).
    signals: Mapped[list[dict[str, Any]]] = mapped_column(json_type(), default=list)
    #: p(under 18) at which an appeal was overturned; a re-suspicion needs a higher score.
    cleared_score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class AgeAssessmentEvent(Base):
    """One transition of an age assessment: who, when, why; the ledger holds its audit entry."""

    __tablename__ = "age_assessment_events"
    __table_args__ = (
        # the compliance dashboard counts a platform's transitions per period
        Index("ix_age_assessment_events_platform_id_at", "platform_id", "at"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    account_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    transition: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(EncryptedText())
    #: Ids and parameters only (score, verification method, attestation reference).
    details: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


REALNAME_STATUSES: Final = ("ok", "pending", "failed")


class RealNameConfig(Base):
    """A platform's access to the national real-name system: where, who, and its secret."""

    __tablename__ = "realname_configs"

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("platforms.id", ondelete="CASCADE"), unique=True
    )
    base_url: Mapped[str] = mapped_column(String(500))
    app_id: Mapped[str] = mapped_column(String(64))
    biz_id: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(EncryptedText())
    #: Test-system codes per endpoint (check, query, loginout) while integrating; {} in production.
    test_codes: Mapped[dict[str, str]] = mapped_column(json_type(), default=dict)
    #: One process at a time uploads a platform's behaviour reports (the 10 QPS are per app).
    drainer: Mapped[str | None] = mapped_column(String(128))
    drainer_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class RealNameCheck(Base):
    """An account's latest real-name check: its `ai`, status and, once verified, the `pi`."""

    __tablename__ = "realname_checks"
    __table_args__ = (
        UniqueConstraint("platform_id", "ai"),
        CheckConstraint(_in("status", REALNAME_STATUSES), name="status"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    account_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    ai: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    pi: Mapped[str | None] = mapped_column(EncryptedText())
    #: What the submitted identity number says, applied to the account once the check passes
    #: (a pending check may pass later); cleared when it fails. Never the number itself.
    birth_date: Mapped[date | None] = mapped_column(EncryptedDate())
    sex: Mapped[str | None] = mapped_column(String(1))
    id_number_hash: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(255))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class GameSession(Base):
    """One game session of a real-name verified player, reported at login and logout."""

    __tablename__ = "game_sessions"
    __table_args__ = (UniqueConstraint("platform_id", "si"),)

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    account_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    si: Mapped[str] = mapped_column(String(32))
    #: The device identifier (`di`) of a guest session; verified sessions report the `pi`.
    device: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RealNameOutbox(Base):
    """A login/logout report waiting to be uploaded; deleted once the system accepted it."""

    __tablename__ = "realname_outbox"
    __table_args__ = (Index("ix_realname_outbox_platform_id_id", "platform_id", "id"),)

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = mapped_column(IdType, ForeignKey("platforms.id", ondelete="CASCADE"))
    si: Mapped[str] = mapped_column(String(32))
    bt: Mapped[int] = mapped_column(Integer)
    ot: Mapped[int] = mapped_column(BigInteger)
    ct: Mapped[int] = mapped_column(Integer)
    di: Mapped[str | None] = mapped_column(String(32))
    pi: Mapped[str | None] = mapped_column(EncryptedText())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: Set when the system rejected this item for good (kept for inspection, never resent).
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()


# ---------------------------------------------------------------- web console

CONSOLE_ROLES: Final = ("platform_admin", "reviewer", "compliance", "guardian")


class ConsoleUser(Base):
    """A person who signs in to the web console: one platform, one role; guardians are tied to
    their ``guardians`` row. Only an argon2id hash of the password is kept."""

    __tablename__ = "console_users"
    __table_args__ = (
        CheckConstraint(_in("role", CONSOLE_ROLES), name="role"),
        CheckConstraint(
            "(role = 'guardian' AND guardian_id IS NOT NULL) "
            "OR (role <> 'guardian' AND guardian_id IS NULL)",
            name="guardian",
        ),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("platforms.id", ondelete="CASCADE"), index=True
    )
    #: Lower-case, unique across platforms (the login form asks for nothing else).
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    guardian_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("guardians.id", ondelete="CASCADE"), index=True
    )
    #: Consecutive failed logins since the last success or unlock.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    def __repr__(self) -> str:
        return f"ConsoleUser(id={self.id!r}, username={self.username!r}, role={self.role!r})"


class ConsoleSession(Base):
    """A signed-in console session: only the SHA-256 of the cookie's token is kept."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = _id()
    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The session's CSRF token (sent back in forms and the X-CSRF-Token header).
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Absolute end of the session, whatever its activity.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class LoginAttempt(Base):
    """One console login attempt, for throttling: a digest of the username, never the name."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index(None, "username_hash", "at"),
        Index(None, "address", "at"),
    )

    id: Mapped[int] = _id()
    #: SHA-256 of the lower-cased username as typed (known or not).
    username_hash: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class GuardianLinkCode(Base):
    """A one-time code the platform shows in a child's own app; a guardian who links the child
    in the console must give it, proving access to the child's account (only its hash is kept)."""

    __tablename__ = "guardian_link_codes"

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    account_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()


# ---------------------------------------------------------------- compliance audit

MEASURE_STATUSES: Final = ("open", "in_progress", "done", "closed")
"""A rectification measure: open → in_progress → done (the owner says so) → closed (its linked
automated checks pass, or it has none and a compliance officer closes it)."""


class ProcessingRecord(Base):
    """A record of processing (PIPL art. 56): the platform processed `category` of an account
    for `purpose` at `at` (reported through the API or imported from historical logs)."""

    __tablename__ = "processing_records"
    __table_args__ = (Index(None, "platform_id", "at"),)

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    account_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class AuditRun(Base):
    """One audit run: the period, the counts of its findings and the signed bundle's manifest."""

    __tablename__ = "audit_runs"

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    period: Mapped[str] = mapped_column(String(64))
    start: Mapped[date] = mapped_column(Date())
    end: Mapped[date] = mapped_column(Date())
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    not_evidenced: Mapped[int] = mapped_column(Integer)
    #: Requirement id → status, for rectification (a measure closes when its checks pass).
    statuses: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    key_fingerprint: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()


class AuditMeasure(Base):
    """A rectification measure and the requirements it answers."""

    __tablename__ = "audit_measures"
    __table_args__ = (
        UniqueConstraint("platform_id", "code"),
        CheckConstraint(_in("status", MEASURE_STATUSES), name="status"),
    )

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    code: Mapped[str] = mapped_column(String(32))
    area: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(128))
    due_date: Mapped[date] = mapped_column(Date())
    requirement_ids: Mapped[list[str]] = mapped_column(json_type(), default=list)
    evidence: Mapped[list[str]] = mapped_column(json_type(), default=list)
    status: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("audit_runs.id", ondelete="SET NULL")
    )
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditMeasureEvent(Base):
    """One change of a measure (status, evidence), with who made it and when."""

    __tablename__ = "audit_measure_events"

    id: Mapped[int] = _id()
    measure_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("audit_measures.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ImpactAssessment(Base):
    """A version of the platform's PI impact assessment (PIPL art. 55), kept until `keep_until`
    (art. 56: three years)."""

    __tablename__ = "impact_assessments"
    __table_args__ = (UniqueConstraint("platform_id", "version"),)

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(json_type())
    content_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()
    keep_until: Mapped[date] = mapped_column(Date())


class Attestation(Base):
    """A document that evidences an attested requirement: its owner, date and content digest."""

    __tablename__ = "audit_attestations"
    __table_args__ = (Index(None, "platform_id", "requirement_id"),)

    id: Mapped[int] = _id()
    platform_id: Mapped[int] = _platform_fk()
    requirement_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(300))
    owner: Mapped[str] = mapped_column(String(128))
    document_date: Mapped[date] = mapped_column(Date())
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(EncryptedText())
    """The document, base64, encrypted at rest."""
    uploaded_by: Mapped[str] = mapped_column(String(128))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
