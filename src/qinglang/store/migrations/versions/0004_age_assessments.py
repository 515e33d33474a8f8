"""Age assessments: the latest inferred-age assessment per account and its transitions.

Revision ID: 0004
Revises: 0003
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

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
STATES = (
    "clear",
    "suspected",
    "verification_requested",
    "appealed",
    "verified_minor",
    "verified_adult",
)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _owner(table: str) -> list[SchemaItem]:
    return [
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f(f"fk_{table}_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f(f"fk_{table}_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, TS, server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    """Apply this revision."""
    states = ", ".join(f"'{s}'" for s in STATES)
    op.create_table(
        "age_assessments",
        *_owner("age_assessments"),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("p_under18", sa.Float(), nullable=True),
        sa.Column("p_under14", sa.Float(), nullable=True),
        sa.Column("band", sa.String(length=32), nullable=True),
        sa.Column("suspected_child", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("signals", _json(), nullable=False),
        sa.Column("cleared_score", sa.Float(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(f"state IN ({states})", name=op.f("ck_age_assessments_state")),
        sa.UniqueConstraint("account_id", name=op.f("uq_age_assessments_account_id")),
    )
    op.create_table(
        "age_assessment_events",
        *_owner("age_assessment_events"),
        sa.Column("transition", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=False),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", _json(), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index(
        op.f("ix_age_assessment_events_account_id"), "age_assessment_events", ["account_id"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_age_assessment_events_account_id"), table_name="age_assessment_events")
    op.drop_table("age_assessment_events")
    op.drop_table("age_assessments")
