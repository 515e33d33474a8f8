"""One-time guardian link codes (the child's app shows one; the console link needs it), and
the indexes the compliance dashboard's per-period counts use.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "guardian_link_codes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_guardian_link_codes_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_guardian_link_codes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardian_link_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_guardian_link_codes_code_hash")),
    )
    op.create_index(
        op.f("ix_guardian_link_codes_account_id"), "guardian_link_codes", ["account_id"]
    )
    op.create_index("ix_alerts_platform_id_raised_at", "alerts", ["platform_id", "raised_at"])
    op.create_index(
        "ix_age_assessment_events_platform_id_at", "age_assessment_events", ["platform_id", "at"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_age_assessment_events_platform_id_at", table_name="age_assessment_events")
    op.drop_index("ix_alerts_platform_id_raised_at", table_name="alerts")
    op.drop_index(op.f("ix_guardian_link_codes_account_id"), table_name="guardian_link_codes")
    op.drop_table("guardian_link_codes")
