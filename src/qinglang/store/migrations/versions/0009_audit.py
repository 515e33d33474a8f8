"""Compliance audit: processing records, audit runs, rectification measures and their history,
impact assessments and attestations.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, TS, server_default=sa.func.now(), nullable=False)


def _key(table: str) -> tuple[sa.Column[object], sa.Column[object], sa.ForeignKeyConstraint]:
    return (
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        _fk(table, "platform_id", "platforms"),
    )


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "processing_records",
        *_key("processing_records"),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        _now("created_at"),
        _fk("processing_records", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_records")),
    )
    op.create_index(op.f("ix_processing_records_account_id"), "processing_records", ["account_id"])
    op.create_index(
        op.f("ix_processing_records_platform_id_at"), "processing_records", ["platform_id", "at"]
    )
    op.create_table(
        "audit_runs",
        *_key("audit_runs"),
        sa.Column("period", sa.String(length=64), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("as_of", TS, nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("not_evidenced", sa.Integer(), nullable=False),
        sa.Column("statuses", JSON, nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=True),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        _now("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_runs")),
    )
    op.create_table(
        "audit_measures",
        *_key("audit_measures"),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("area", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("requirement_ids", JSON, nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        _now("created_at"),
        _now("updated_at"),
        sa.Column("closed_at", TS, nullable=True),
        _fk("audit_measures", "run_id", "audit_runs", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_measures")),
        sa.UniqueConstraint("platform_id", "code", name=op.f("uq_audit_measures_platform_id_code")),
        sa.CheckConstraint(
            "status IN ('open', 'in_progress', 'done', 'closed')",
            name=op.f("ck_audit_measures_status"),
        ),
    )
    op.create_table(
        "audit_measure_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("measure_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", TS, nullable=False),
        _fk("audit_measure_events", "measure_id", "audit_measures"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_measure_events")),
    )
    op.create_index(
        op.f("ix_audit_measure_events_measure_id"), "audit_measure_events", ["measure_id"]
    )
    op.create_table(
        "impact_assessments",
        *_key("impact_assessments"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        _now("created_at"),
        sa.Column("keep_until", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impact_assessments")),
        sa.UniqueConstraint(
            "platform_id", "version", name=op.f("uq_impact_assessments_platform_id_version")
        ),
    )
    op.create_table(
        "audit_attestations",
        *_key("audit_attestations"),
        sa.Column("requirement_id", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("document_date", sa.Date(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=128), nullable=False),
        sa.Column("uploaded_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_attestations")),
    )
    op.create_index(
        op.f("ix_audit_attestations_platform_id_requirement_id"),
        "audit_attestations",
        ["platform_id", "requirement_id"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(
        op.f("ix_audit_attestations_platform_id_requirement_id"), table_name="audit_attestations"
    )
    op.drop_table("audit_attestations")
    op.drop_table("impact_assessments")
    op.drop_index(op.f("ix_audit_measure_events_measure_id"), table_name="audit_measure_events")
    op.drop_table("audit_measure_events")
    op.drop_table("audit_measures")
    op.drop_table("audit_runs")
    op.drop_index(op.f("ix_processing_records_platform_id_at"), table_name="processing_records")
    op.drop_index(op.f("ix_processing_records_account_id"), table_name="processing_records")
    op.drop_table("processing_records")
