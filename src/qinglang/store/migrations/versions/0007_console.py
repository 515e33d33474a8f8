"""Web console: console users, server-side sessions, login attempts (throttling).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

Self-contained like 0001: timestamps TIMESTAMP WITH TIME ZONE.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


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
        "console_users",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("guardian_id", ID, nullable=True),
        sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("disabled_at", TS, nullable=True),
        sa.Column("last_login_at", TS, nullable=True),
        _now("created_at"),
        _now("updated_at"),
        _fk("console_users", "platform_id", "platforms"),
        _fk("console_users", "guardian_id", "guardians"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("username", name=op.f("uq_console_users_username")),
        sa.CheckConstraint(
            "role IN ('platform_admin', 'reviewer', 'compliance', 'guardian')",
            name=op.f("ck_console_users_role"),
        ),
        sa.CheckConstraint(
            "(role = 'guardian' AND guardian_id IS NOT NULL) "
            "OR (role <> 'guardian' AND guardian_id IS NULL)",
            name=op.f("ck_console_users_guardian"),
        ),
    )
    op.create_index(op.f("ix_console_users_platform_id"), "console_users", ["platform_id"])
    op.create_index(op.f("ix_console_users_guardian_id"), "console_users", ["guardian_id"])
    op.create_table(
        "console_sessions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        _now("created_at"),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        _fk("console_sessions", "user_id", "console_users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    op.create_index(op.f("ix_console_sessions_user_id"), "console_sessions", ["user_id"])
    op.create_index(op.f("ix_console_sessions_expires_at"), "console_sessions", ["expires_at"])
    op.create_table(
        "login_attempts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("username_hash", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index(
        op.f("ix_login_attempts_username_hash_at"), "login_attempts", ["username_hash", "at"]
    )
    op.create_index(op.f("ix_login_attempts_address_at"), "login_attempts", ["address", "at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_login_attempts_address_at"), table_name="login_attempts")
    op.drop_index(op.f("ix_login_attempts_username_hash_at"), table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_index(op.f("ix_console_sessions_expires_at"), table_name="console_sessions")
    op.drop_index(op.f("ix_console_sessions_user_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index(op.f("ix_console_users_guardian_id"), table_name="console_users")
    op.drop_index(op.f("ix_console_users_platform_id"), table_name="console_users")
    op.drop_table("console_users")
