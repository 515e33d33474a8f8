"""Message events say whether the platform delivered them (false: a blocked attempt).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("events", sa.Column("delivered", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("events") as batch:
        batch.drop_column("delivered")
