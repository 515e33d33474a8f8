"""Initial schema: platforms, API keys, accounts, guardians, relationships, content, decision log.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Self-contained on purpose (no imports from qinglang): encrypted columns are TEXT, UTC
timestamps are TIMESTAMP WITH TIME ZONE, JSON is JSONB on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, autoincrement=True, nullable=False)


def _ts(name: str, *, nullable: bool = False, now: bool = True) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.func.now() if now else None,
        nullable=nullable,
    )


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "platforms",
        _id(),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("jurisdiction", sa.String(length=16), server_default="cn", nullable=False),
        sa.Column("policy_overlay", sa.Text(), nullable=True),
        sa.Column(
            "decision_sample_rate", sa.Float(), server_default=sa.text("0.01"), nullable=False
        ),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "decision_sample_rate >= 0 AND decision_sample_rate <= 1",
            name=op.f("ck_platforms_sample_rate"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platforms")),
        sa.UniqueConstraint("slug", name=op.f("uq_platforms_slug")),
    )
    op.create_table(
        "accounts",
        _id(),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("birth_date", sa.Text(), nullable=True),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("age_source", sa.String(length=32), nullable=True),
        sa.Column("id_number_hash", sa.String(length=64), nullable=True),
        sa.Column("jurisdiction", sa.String(length=16), server_default="cn", nullable=False),
        sa.Column("settings", JSON, server_default=sa.text("'{}'"), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "age_source IS NULL OR age_source IN "
            "('verified', 'guardian_declared', 'self_declared', 'inferred')",
            name=op.f("ck_accounts_age_source"),
        ),
        sa.CheckConstraint("sex IS NULL OR sex IN ('M', 'F')", name=op.f("ck_accounts_sex")),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_accounts_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint(
            "platform_id", "external_id", name=op.f("uq_accounts_platform_id_external_id")
        ),
        sa.UniqueConstraint("platform_id", "id", name=op.f("uq_accounts_platform_id_id")),
    )
    op.create_index(op.f("ix_accounts_id_number_hash"), "accounts", ["id_number_hash"])

    op.create_table(
        "api_keys",
        _id(),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True, now=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_api_keys_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_platform_id"), "api_keys", ["platform_id"])
    op.create_index(op.f("ix_api_keys_prefix"), "api_keys", ["prefix"])

    op.create_table(
        "guardians",
        _id(),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("id_number_hash", sa.String(length=64), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_guardians_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardians")),
        sa.UniqueConstraint(
            "platform_id", "external_id", name=op.f("uq_guardians_platform_id_external_id")
        ),
    )
    op.create_index(op.f("ix_guardians_id_number_hash"), "guardians", ["id_number_hash"])

    op.create_table(
        "content_items",
        _id(),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("owner_account_id", ID, nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["platform_id", "owner_account_id"],
            ["accounts.platform_id", "accounts.id"],
            name=op.f("fk_content_items_platform_id_owner_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_content_items_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_items")),
        sa.UniqueConstraint(
            "platform_id", "external_id", name=op.f("uq_content_items_platform_id_external_id")
        ),
    )
    op.create_index(
        op.f("ix_content_items_owner_account_id"), "content_items", ["owner_account_id"]
    )

    op.create_table(
        "decision_logs",
        _id(),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject_account_id", ID, nullable=True),
        sa.Column("other_account_id", ID, nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("rule_ids", JSON, nullable=False),
        _ts("at"),
        sa.Column("request", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["other_account_id"],
            ["accounts.id"],
            name=op.f("fk_decision_logs_other_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_decision_logs_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_account_id"],
            ["accounts.id"],
            name=op.f("fk_decision_logs_subject_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_logs")),
    )
    op.create_index(
        op.f("ix_decision_logs_other_account_id"), "decision_logs", ["other_account_id"]
    )
    op.create_index(op.f("ix_decision_logs_platform_id_at"), "decision_logs", ["platform_id", "at"])
    op.create_index(
        op.f("ix_decision_logs_subject_account_id"), "decision_logs", ["subject_account_id"]
    )

    op.create_table(
        "guardian_links",
        _id(),
        sa.Column("guardian_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("verified_by", sa.String(length=128), nullable=False),
        _ts("verified_at", now=False),
        _ts("revoked_at", nullable=True, now=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_guardian_links_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["guardian_id"],
            ["guardians.id"],
            name=op.f("fk_guardian_links_guardian_id_guardians"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardian_links")),
        sa.UniqueConstraint(
            "guardian_id", "account_id", name=op.f("uq_guardian_links_guardian_id_account_id")
        ),
    )
    op.create_index(op.f("ix_guardian_links_account_id"), "guardian_links", ["account_id"])

    op.create_table(
        "relationships",
        _id(),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("src_account_id", ID, nullable=False),
        sa.Column("dst_account_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(
            "kind IN ('follow', 'block', 'approved_contact')", name=op.f("ck_relationships_kind")
        ),
        sa.CheckConstraint(
            "src_account_id <> dst_account_id", name=op.f("ck_relationships_not_self")
        ),
        sa.ForeignKeyConstraint(
            ["platform_id", "dst_account_id"],
            ["accounts.platform_id", "accounts.id"],
            name=op.f("fk_relationships_platform_id_dst_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["platform_id", "src_account_id"],
            ["accounts.platform_id", "accounts.id"],
            name=op.f("fk_relationships_platform_id_src_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_relationships_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relationships")),
        sa.UniqueConstraint(
            "src_account_id",
            "dst_account_id",
            "kind",
            name=op.f("uq_relationships_src_account_id_dst_account_id_kind"),
        ),
    )
    op.create_index(
        op.f("ix_relationships_dst_account_id_kind"), "relationships", ["dst_account_id", "kind"]
    )

    op.create_table(
        "content_flags",
        _id(),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=True),
        sa.Column("min_age", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "audience IS NULL OR audience IN ('owner', 'friends', 'followers', 'public')",
            name=op.f("ck_content_flags_audience"),
        ),
        sa.CheckConstraint(
            "kind IN ('minor_pi', 'shows_minor', 'unsuitable_for_minors', 'commercial')",
            name=op.f("ck_content_flags_kind"),
        ),
        sa.CheckConstraint(
            "min_age IS NULL OR (min_age >= 0 AND min_age <= 100)",
            name=op.f("ck_content_flags_min_age"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["content_items.id"],
            name=op.f("fk_content_flags_item_id_content_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_flags")),
        sa.UniqueConstraint("item_id", "kind", name=op.f("uq_content_flags_item_id_kind")),
    )


def downgrade() -> None:
    """Revert this revision."""
    for table in (
        "content_flags",
        "relationships",
        "guardian_links",
        "decision_logs",
        "content_items",
        "guardians",
        "api_keys",
        "accounts",
        "platforms",
    ):
        op.drop_table(table)
