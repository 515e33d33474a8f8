"""Real-name system: per-platform access, checks per account, game sessions, report outbox.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Self-contained like 0001: encrypted columns are TEXT, timestamps TIMESTAMP WITH TIME ZONE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, TS, server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "realname_configs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("biz_id", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("test_codes", _json(), nullable=False),
        sa.Column("drainer", sa.String(length=128), nullable=True),
        sa.Column("drainer_until", TS, nullable=True),
        _now("created_at"),
        _now("updated_at"),
        _fk("realname_configs", "platform_id", "platforms"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_realname_configs")),
        sa.UniqueConstraint("platform_id", name=op.f("uq_realname_configs_platform_id")),
    )
    op.create_table(
        "realname_checks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("ai", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pi", sa.Text(), nullable=True),
        sa.Column("birth_date", sa.Text(), nullable=True),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("id_number_hash", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.Column("checked_at", TS, nullable=False),
        _now("created_at"),
        _now("updated_at"),
        _fk("realname_checks", "platform_id", "platforms"),
        _fk("realname_checks", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_realname_checks")),
        sa.CheckConstraint(
            "status IN ('ok', 'pending', 'failed')", name=op.f("ck_realname_checks_status")
        ),
        sa.UniqueConstraint("platform_id", "ai", name=op.f("uq_realname_checks_platform_id_ai")),
        sa.UniqueConstraint("account_id", name=op.f("uq_realname_checks_account_id")),
    )
    op.create_table(
        "game_sessions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("si", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        _fk("game_sessions", "platform_id", "platforms"),
        _fk("game_sessions", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_game_sessions")),
        sa.UniqueConstraint("platform_id", "si", name=op.f("uq_game_sessions_platform_id_si")),
    )
    op.create_index(op.f("ix_game_sessions_account_id"), "game_sessions", ["account_id"])
    op.create_table(
        "realname_outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("si", sa.String(length=32), nullable=False),
        sa.Column("bt", sa.Integer(), nullable=False),
        sa.Column("ot", sa.BigInteger(), nullable=False),
        sa.Column("ct", sa.Integer(), nullable=False),
        sa.Column("di", sa.String(length=32), nullable=True),
        sa.Column("pi", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("errmsg", sa.String(length=64), nullable=True),
        _now("created_at"),
        _fk("realname_outbox", "platform_id", "platforms"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_realname_outbox")),
    )
    op.create_index("ix_realname_outbox_platform_id_id", "realname_outbox", ["platform_id", "id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_realname_outbox_platform_id_id", table_name="realname_outbox")
    op.drop_table("realname_outbox")
    op.drop_index(op.f("ix_game_sessions_account_id"), table_name="game_sessions")
    op.drop_table("game_sessions")
    op.drop_table("realname_checks")
    op.drop_table("realname_configs")
