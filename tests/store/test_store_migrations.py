"""Migrations run up, down and up again, and agree with the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from qinglang.store.db import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    downgrade,
    make_engine,
    upgrade,
)
from qinglang.store.models import Base

TABLES = {
    "platforms",
    "api_keys",
    "accounts",
    "guardians",
    "guardian_links",
    "relationships",
    "content_items",
    "content_flags",
    "decision_logs",
    "notices",
    "consents",
    "ledger_entries",
    "ledger_heads",
    "rights_requests",
    "rights_request_events",
    "events",
    "event_heads",
    "risk_consumers",
    "alerts",
    "restrictions",
    "review_actions",
    "review_documents",
    "guardian_notifications",
    "age_assessments",
    "age_assessment_events",
    "realname_configs",
    "realname_checks",
    "game_sessions",
    "realname_outbox",
    "console_users",
    "console_sessions",
    "login_attempts",
    "guardian_link_codes",  # 0008, the guardian portal
    "processing_records",  # 0009, the compliance audit
    "audit_runs",
    "audit_measures",
    "audit_measure_events",
    "impact_assessments",
    "audit_attestations",
}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _diff(engine: Engine, metadata: sa.MetaData) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_migrations_are_packaged() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    assert (MIGRATIONS_DIR.parent / "alembic.ini").is_file()


def test_up_down_up(db_engine: Engine) -> None:
    assert current_revision(db_engine) is None
    upgrade(db_engine)
    assert current_revision(db_engine) == _head()
    assert _tables(db_engine) == TABLES
    downgrade(db_engine, "base")
    assert current_revision(db_engine) is None
    assert _tables(db_engine) == set()
    upgrade(db_engine)
    assert current_revision(db_engine) == _head()
    assert _tables(db_engine) == TABLES


def test_upgrade_is_idempotent(db_engine: Engine) -> None:
    upgrade(db_engine)
    upgrade(db_engine)
    assert current_revision(db_engine) == _head()


def test_models_match_migrations(db_engine: Engine) -> None:
    upgrade(db_engine)
    assert _diff(db_engine, Base.metadata) == []


def test_comparison_would_notice_a_drift(db_engine: Engine) -> None:
    """Guard against a vacuous agreement test: a changed model must produce a diff."""
    upgrade(db_engine)
    drifted = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        copy = table.to_metadata(drifted)
        if table.name == "platforms":
            copy.append_column(sa.Column("extra", sa.Integer(), nullable=True))
        if table.name == "accounts":
            copy.c.sex.type = sa.String(length=7)
    kinds = {
        entry[0] if isinstance(entry, tuple) else entry[0][0] for entry in _diff(db_engine, drifted)
    }
    assert kinds == {"add_column", "modify_type"}


def test_upgrade_by_url_from_another_directory(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """upgrade(url) needs no alembic.ini in the CWD and creates no key file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QINGLANG_DATA_KEY", raising=False)
    upgrade(db_url)
    assert current_revision(db_url) == _head()
    assert not list(tmp_path.glob("*.key"))
    engine = make_engine(db_url, provision_key=False)
    try:
        assert _tables(engine) == TABLES
    finally:
        engine.dispose()
