"""Legal hold on alert evidence: alerts.hold_reason, hold_set_by, hold_set_at, hold_released_at.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

Self-contained like 0001: encrypted columns are TEXT, timestamps TIMESTAMP WITH TIME ZONE.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("hold_set_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("hold_set_at", TS, nullable=True))
        batch_op.add_column(sa.Column("hold_released_at", TS, nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("hold_released_at")
        batch_op.drop_column("hold_set_at")
        batch_op.drop_column("hold_set_by")
        batch_op.drop_column("hold_reason")
