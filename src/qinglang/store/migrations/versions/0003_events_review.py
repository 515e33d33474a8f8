"""Events, risk consumer and review: events, event heads, consumer leases, alerts, restrictions,
review actions, documents, guardian notifications; accounts.restricted_until.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Self-contained like 0001: encrypted columns are TEXT, timestamps TIMESTAMP WITH TIME ZONE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import SchemaItem

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, autoincrement=True, nullable=False)


def _platform(table: str, primary: bool = False) -> list[SchemaItem]:
    items: list[SchemaItem] = [
        sa.Column("platform_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f(f"fk_{table}_platform_id_platforms"),
            ondelete="CASCADE",
        ),
    ]
    if primary:
        items.append(sa.PrimaryKeyConstraint("platform_id", name=op.f(f"pk_{table}")))
    return items


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, TS, server_default=sa.func.now(), nullable=False)


def _alert_fk(table: str, ondelete: str) -> list[SchemaItem]:
    return [
        sa.Column("alert_pk", ID, nullable=ondelete == "SET NULL"),
        sa.ForeignKeyConstraint(
            ["alert_pk"],
            ["alerts.id"],
            name=op.f(f"fk_{table}_alert_pk_alerts"),
            ondelete=ondelete,
        ),
    ]


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "events",
        _id(),
        *_platform("events"),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("item", sa.String(length=200), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("surface", sa.String(length=16), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('follow', 'unfollow', 'message', 'impression', 'gift', 'profile_view', "
            "'block', 'report')",
            name=op.f("ck_events_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("platform_id", "event_id", name=op.f("uq_events_platform_id_event_id")),
        sa.UniqueConstraint("platform_id", "seq", name=op.f("uq_events_platform_id_seq")),
    )
    op.create_index(op.f("ix_events_platform_id_at"), "events", ["platform_id", "at"])
    op.create_table(
        "event_heads",
        *_platform("event_heads", primary=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _now("updated_at"),
    )
    op.create_table(
        "risk_consumers",
        *_platform("risk_consumers", primary=True),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("checkpoint", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("watermark_at", TS, nullable=True),
        sa.Column("processed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        _now("updated_at"),
    )
    op.create_table(
        "alerts",
        _id(),
        *_platform("alerts"),
        sa.Column("alert_id", sa.String(length=128), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("minors", _json(), nullable=False),
        sa.Column("event_ids", _json(), nullable=False),
        sa.Column("signal_names", _json(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee", sa.String(length=128), nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("first_action_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint("level IN ('review', 'restrict')", name=op.f("ck_alerts_level")),
        sa.CheckConstraint(
            "priority IN ('urgent', 'high', 'normal')", name=op.f("ck_alerts_priority")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'in_review', 'actioned', 'dismissed')",
            name=op.f("ck_alerts_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("platform_id", "alert_id", name=op.f("uq_alerts_platform_id_alert_id")),
    )
    op.create_index(op.f("ix_alerts_platform_id_sender"), "alerts", ["platform_id", "sender"])
    op.create_index(
        op.f("ix_alerts_platform_id_status_due_at"), "alerts", ["platform_id", "status", "due_at"]
    )
    op.create_table(
        "restrictions",
        _id(),
        *_platform("restrictions"),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("automatic", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        *_alert_fk("restrictions", "SET NULL"),
        _now("created_at"),
        sa.Column("until", TS, nullable=True),
        sa.Column("lifted_at", TS, nullable=True),
        sa.Column("lifted_by", sa.String(length=128), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "scope IN ('contact_minors', 'suspended')", name=op.f("ck_restrictions_scope")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restrictions")),
    )
    op.create_index(op.f("ix_restrictions_alert_pk"), "restrictions", ["alert_pk"])
    op.create_index(
        op.f("ix_restrictions_platform_id_account"), "restrictions", ["platform_id", "account"]
    )
    op.create_table(
        "review_actions",
        _id(),
        *_platform("review_actions"),
        *_alert_fk("review_actions", "CASCADE"),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", _json(), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_actions")),
    )
    op.create_index(op.f("ix_review_actions_alert_pk"), "review_actions", ["alert_pk"])
    op.create_table(
        "review_documents",
        _id(),
        *_platform("review_documents"),
        *_alert_fk("review_documents", "CASCADE"),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("authority", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        _now("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_documents")),
    )
    op.create_index(op.f("ix_review_documents_alert_pk"), "review_documents", ["alert_pk"])
    op.create_table(
        "guardian_notifications",
        _id(),
        *_platform("guardian_notifications"),
        *_alert_fk("guardian_notifications", "CASCADE"),
        sa.Column("guardian_id", ID, nullable=True),
        sa.Column("child", sa.String(length=200), nullable=False),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        _now("created_at"),
        sa.ForeignKeyConstraint(
            ["guardian_id"],
            ["guardians.id"],
            name=op.f("fk_guardian_notifications_guardian_id_guardians"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardian_notifications")),
    )
    op.create_index(
        op.f("ix_guardian_notifications_alert_pk"), "guardian_notifications", ["alert_pk"]
    )
    op.create_index(
        op.f("ix_guardian_notifications_guardian_id"), "guardian_notifications", ["guardian_id"]
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restricted_until", TS, nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("restricted_until")
    for table, indexes in (
        ("guardian_notifications", ("alert_pk", "guardian_id")),
        ("review_documents", ("alert_pk",)),
        ("review_actions", ("alert_pk",)),
        ("restrictions", ("alert_pk", "platform_id_account")),
        ("alerts", ("platform_id_sender", "platform_id_status_due_at")),
        ("risk_consumers", ()),
        ("event_heads", ()),
        ("events", ("platform_id_at",)),
    ):
        for index in indexes:
            op.drop_index(op.f(f"ix_{table}_{index}"), table_name=table)
        op.drop_table(table)
