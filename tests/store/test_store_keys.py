"""Data-key rotation on SQLite and PostgreSQL: re-encryption, retirement, interruption, digests."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from qinglang.store import make_engine, repo, session_factory, transaction, upgrade
from qinglang.store import realname as store_realname
from qinglang.store.crypto import (
    ENV_DATA_KEY,
    ENV_DIGEST_KEY,
    ENV_PREVIOUS_DATA_KEYS,
    DataKey,
    DataKeyError,
    KeyRing,
    id_number_digest,
    key_path_for_sqlite,
    read_key_file,
)
from qinglang.store.keys import (
    NOT_CIPHERTEXT,
    BatchHook,
    KeySource,
    RotationPlan,
    RotationResult,
    encrypted_columns,
    key_source,
    key_usage,
    plan_rotation,
    present_columns,
    rotate,
)
from qinglang.store.models import Guardian, RightsRequest

ACCOUNTS = 7
"""Accounts written per test: with batch_size=2 a column takes several batches."""


def _number(i: int) -> str:
    return f"11010520120501{i:03d}X"


def _birth(i: int) -> date:
    return date(2010, 1, 1 + i)


SECRET = "2836e95fcd10e04b0069bb1ee659955b"


def _seed(engine: Engine) -> int:
    """Write accounts, a guardian and a rights request through the ORM (engine's keyring)."""
    upgrade(engine)
    ring = KeyRing.of(_ring_of(engine))
    with transaction(session_factory(engine)) as s:
        platform = repo.create_platform(s, "p", "P")
        for i in range(ACCOUNTS):
            repo.upsert_account(
                s,
                platform.id,
                f"a{i}",
                birth_date=_birth(i),
                id_number_hash=id_number_digest(ring, _number(i)),
            )
        repo.upsert_account(s, platform.id, "no-birth-date")  # NULLs are left alone
        repo.upsert_guardian(s, platform.id, "g", display_name="王芳")
        s.add(
            RightsRequest(
                platform_id=platform.id,
                subject="a1",
                requester="guardian",
                kind="correction",
                status="received",
                details='{"birth_date": "2010-01-02"}',
                due_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
        store_realname.configure(
            s, platform.id, base_url="http://127.0.0.1:1", app_id="a", biz_id="b", secret=SECRET
        )
        return platform.id


def _ring_of(engine: Engine) -> KeyRing:
    from qinglang.store.crypto import keyring_of

    ring = keyring_of(engine)
    assert ring is not None
    return ring


def _check_everything_reads(engine: Engine, platform_id: int) -> None:
    """Every encrypted value decrypts to what was written; lookups by identity number work."""
    ring = _ring_of(engine)
    with session_factory(engine)() as s:
        for i in range(ACCOUNTS):
            account = repo.get_account(s, platform_id, f"a{i}")
            assert account is not None and account.birth_date == _birth(i)
            found = repo.accounts_with_id_number_hash(
                s, platform_id, id_number_digest(ring, _number(i))
            )
            assert [a.external_id for a in found] == [f"a{i}"]
        guardian = repo.get_guardian(s, platform_id, "g")
        assert guardian is not None and guardian.display_name == "王芳"
        details = s.scalars(select(RightsRequest.details)).one()
        assert details == '{"birth_date": "2010-01-02"}'
        config = store_realname.config_of(s, platform_id)
        assert config is not None and config.secret == SECRET


def _raw_key_ids(engine: Engine) -> set[str]:
    return {k for counts in key_usage(engine, present_columns(engine)).values() for k in counts}


@pytest.fixture
def key_a() -> DataKey:
    """The key the rows are first written with."""
    return DataKey.generate()


@pytest.fixture
def seeded(db_url: str, key_a: DataKey) -> Iterator[tuple[Engine, int]]:
    """An engine holding only key A on a migrated database with rows written under A."""
    engine = make_engine(db_url, data_key=key_a)
    platform_id = _seed(engine)
    yield engine, platform_id
    engine.dispose()


# --- schema walk ---------------------------------------------------------------------------


def test_encrypted_columns_are_found_in_the_metadata() -> None:
    found = {c.name: c.purpose for c in encrypted_columns()}
    assert found == {
        "accounts.birth_date": "date",
        "guardians.display_name": "text",
        "rights_requests.details": "text",
        "events.text": "text",
        "alerts.evidence": "text",
        "restrictions.reason": "text",
        "restrictions.lift_reason": "text",
        "review_actions.reason": "text",
        "review_documents.content": "text",
        "age_assessment_events.reason": "text",
        "alerts.hold_reason": "text",
        "realname_configs.secret": "text",
        "realname_checks.pi": "text",
        "realname_checks.birth_date": "date",
        "realname_outbox.pi": "text",
        "audit_attestations.content": "text",
    }
    assert {c.primary_key for c in encrypted_columns()} == {"id"}


def test_key_usage_counts_per_column_and_key_id(seeded: tuple[Engine, int], key_a: DataKey) -> None:
    engine, _ = seeded
    usage = key_usage(engine, present_columns(engine))
    assert usage == {
        "accounts.birth_date": {key_a.key_id: ACCOUNTS},
        "guardians.display_name": {key_a.key_id: 1},
        "rights_requests.details": {key_a.key_id: 1},
        "events.text": {},
        "alerts.evidence": {},
        "restrictions.reason": {},
        "restrictions.lift_reason": {},
        "review_actions.reason": {},
        "review_documents.content": {},
        "age_assessment_events.reason": {},
        "alerts.hold_reason": {},
        "realname_configs.secret": {key_a.key_id: 1},
        "realname_checks.pi": {},
        "realname_checks.birth_date": {},
        "realname_outbox.pi": {},
        "audit_attestations.content": {},
    }
    with engine.begin() as connection:
        connection.execute(text("UPDATE guardians SET display_name = 'plain'"))
    assert key_usage(engine, present_columns(engine))["guardians.display_name"] == {
        NOT_CIPHERTEXT: 1
    }


# --- planning ------------------------------------------------------------------------------


def test_plan_generates_resumes_or_takes_the_given_key(key_a: DataKey) -> None:
    single = KeyRing(key_a)
    ring, generated = plan_rotation(single)
    assert generated and ring.primary != key_a and ring.previous == [key_a]
    assert ring.digest_key == key_a.digest_key  # the digest key is carried, not re-derived

    resumed, generated = plan_rotation(ring)
    assert resumed is ring and not generated

    b = DataKey.generate()
    given, generated = plan_rotation(single, b)
    assert given.primary == b and not generated
    assert plan_rotation(given, b)[0] is given


# --- rotation with keys from the environment (both backends) -------------------------------


def test_rotation_rewrites_everything_and_the_old_key_can_go(
    seeded: tuple[Engine, int], db_url: str, key_a: DataKey
) -> None:
    engine, platform_id = seeded
    key_b = DataKey.generate()
    plans: list[RotationPlan] = []
    result = rotate(
        engine, KeySource(KeyRing(key_a)), new_key=key_b, batch_size=2, on_start=plans.append
    )
    assert plans[0].to_rewrite == ACCOUNTS + 3
    assert result.stats.rewritten == ACCOUNTS + 3 and result.stats.skipped == 0
    assert result.stats.batches > 3
    assert result.retired == [key_a.key_id] and result.remaining == {}
    assert _raw_key_ids(engine) == {key_b.key_id}

    # A is removed: B alone (with the digest key A's identity numbers were hashed with) reads
    # every value and finds accounts by identity number.
    only_b = make_engine(db_url, data_key=KeyRing(key_b, digest_key=key_a.digest_key))
    try:
        _check_everything_reads(only_b, platform_id)
    finally:
        only_b.dispose()


def test_environment_configuration_after_rotation_keeps_lookups(
    seeded: tuple[Engine, int], db_url: str, key_a: DataKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, platform_id = seeded
    result = rotate(engine, KeySource(KeyRing(key_a)), batch_size=3)
    key_b = result.ring.primary
    monkeypatch.setenv(ENV_DATA_KEY, key_b.to_b64())
    monkeypatch.setenv(ENV_DIGEST_KEY, result.ring.digest_key.to_b64())
    monkeypatch.delenv(ENV_PREVIOUS_DATA_KEYS, raising=False)
    from_env = make_engine(db_url)
    try:
        _check_everything_reads(from_env, platform_id)
    finally:
        from_env.dispose()


def test_forgetting_the_digest_key_breaks_lookups_so_it_is_required(
    seeded: tuple[Engine, int], db_url: str, key_a: DataKey
) -> None:
    """Why the digest key is carried: B's own derived digest key finds nothing."""
    engine, platform_id = seeded
    key_b = rotate(engine, KeySource(KeyRing(key_a)), batch_size=50).ring.primary
    naive = make_engine(db_url, data_key=key_b)
    try:
        with session_factory(naive)() as s:
            digest = id_number_digest(_ring_of(naive), _number(0))
            assert repo.accounts_with_id_number_hash(s, platform_id, digest) == []
    finally:
        naive.dispose()
    with pytest.raises(DataKeyError, match=ENV_DIGEST_KEY):
        KeyRing.from_env({ENV_DATA_KEY: key_b.to_b64(), ENV_PREVIOUS_DATA_KEYS: key_a.to_b64()})


def test_interrupted_rotation_leaves_everything_readable_and_a_rerun_finishes(
    seeded: tuple[Engine, int], db_url: str, key_a: DataKey
) -> None:
    engine, platform_id = seeded
    key_b = DataKey.generate()
    batches: list[int] = []

    def crash_after_first_batch(_column: object, rows: int) -> None:
        batches.append(rows)
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        rotate(
            engine,
            KeySource(KeyRing(key_a)),
            new_key=key_b,
            batch_size=2,
            after_batch=crash_after_first_batch,
        )
    assert batches == [2]
    usage = key_usage(engine, present_columns(engine))
    assert usage["accounts.birth_date"] == {key_a.key_id: ACCOUNTS - 2, key_b.key_id: 2}

    # What the operator configures during the rotation: B primary, A previous, digest pinned.
    during = KeyRing(key_b, [key_a], key_a.digest_key)
    mixed = make_engine(db_url, data_key=during)
    try:
        _check_everything_reads(mixed, platform_id)
        result = rotate(mixed, KeySource(during), batch_size=2)  # no new key: finishes
    finally:
        mixed.dispose()
    assert result.ring.primary == key_b
    assert result.stats.rewritten == ACCOUNTS - 2 + 3
    assert result.retired == [key_a.key_id]
    assert _raw_key_ids(engine) == {key_b.key_id}


def test_tampered_ciphertext_still_raises_and_stops_the_rotation(
    seeded: tuple[Engine, int], db_url: str, key_a: DataKey
) -> None:
    engine, platform_id = seeded
    with engine.begin() as connection:
        raw = connection.execute(text("SELECT display_name FROM guardians")).scalar_one()
        key_id, body = raw.split(":")
        flipped = body[:-6] + ("A" if body[-6] != "A" else "B") + body[-5:]
        connection.execute(
            text("UPDATE guardians SET display_name = :v"), {"v": f"{key_id}:{flipped}"}
        )
    plans: list[RotationPlan] = []
    with pytest.raises(DataKeyError, match=r"guardians\.display_name row \d+: .*authentication"):
        rotate(engine, KeySource(KeyRing(key_a)), batch_size=100, on_start=plans.append)
    with session_factory(engine)() as s, pytest.raises(DataKeyError, match="authentication"):
        s.scalars(select(Guardian)).all()
    # Only the tampered value is unreadable: the accounts (rewritten before the guardians)
    # read with the keyring of the rotation, and a re-run stops at the same value.
    during = make_engine(db_url, data_key=plans[0].ring)
    try:
        with session_factory(during)() as s:
            account = repo.get_account(s, platform_id, "a0")
            assert account is not None and account.birth_date == _birth(0)
        with pytest.raises(DataKeyError, match="authentication"):
            rotate(during, KeySource(plans[0].ring))
    finally:
        during.dispose()


def test_unknown_key_ids_are_refused_before_anything_changes(
    seeded: tuple[Engine, int], key_a: DataKey
) -> None:
    engine, _ = seeded
    stranger = DataKey.generate()
    with pytest.raises(DataKeyError, match=rf"{key_a.key_id}.*no configured key opens"):
        rotate(engine, KeySource(KeyRing(stranger)))
    assert _raw_key_ids(engine) == {key_a.key_id}


def test_rotation_without_keys_or_tables_is_refused(db_url: str, key_a: DataKey) -> None:
    engine = make_engine(db_url, data_key=key_a)
    try:
        with pytest.raises(DataKeyError, match="nothing to rotate"):
            rotate(engine, KeySource(None))
        with pytest.raises(DataKeyError, match="no encrypted columns"):
            rotate(engine, KeySource(KeyRing(key_a)))
    finally:
        engine.dispose()


# --- rotation of an SQLite key file ----------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    """An SQLite file database whose key lives in its key file (no key in the environment)."""
    for name in (ENV_DATA_KEY, ENV_PREVIOUS_DATA_KEYS, ENV_DIGEST_KEY):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'q.db'}"
    engine = make_engine(url)
    try:
        platform_id = _seed(engine)
    finally:
        engine.dispose()
    yield url, platform_id


def _rotate_file(url: str, after_batch: BatchHook | None = None) -> RotationResult:
    engine = make_engine(url, provision_key=False)
    try:
        return rotate(engine, key_source(url), batch_size=2, after_batch=after_batch)
    finally:
        engine.dispose()


def test_key_file_rotation(sqlite_file: tuple[str, int], tmp_path: Path) -> None:
    url, platform_id = sqlite_file
    key_file = key_path_for_sqlite(tmp_path / "q.db")
    key_a = read_key_file(key_file).primary
    _rotate_file(url)
    after = read_key_file(key_file)
    assert after.primary != key_a
    assert after.previous == []  # A retired: no value uses it
    assert after.digest_key == key_a.digest_key
    if os.name == "posix":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    reopened = make_engine(url)
    try:
        assert _raw_key_ids(reopened) == {after.primary.key_id}
        _check_everything_reads(reopened, platform_id)
    finally:
        reopened.dispose()


def test_interrupted_key_file_rotation_is_finished_by_a_rerun(
    sqlite_file: tuple[str, int], tmp_path: Path
) -> None:
    url, platform_id = sqlite_file
    key_file = key_path_for_sqlite(tmp_path / "q.db")
    key_a = read_key_file(key_file).primary

    def crash(_column: object, _rows: int) -> None:
        raise RuntimeError("killed after the first batch")

    with pytest.raises(RuntimeError, match="killed"):
        _rotate_file(url, after_batch=crash)
    during = read_key_file(key_file)  # written before the first batch: holds both keys
    key_b = during.primary
    assert key_b != key_a and during.previous == [key_a]
    reopened = make_engine(url)
    try:
        assert _raw_key_ids(reopened) == {key_a.key_id, key_b.key_id}
        _check_everything_reads(reopened, platform_id)
    finally:
        reopened.dispose()

    _rotate_file(url)  # re-run: finishes with B, generates nothing new
    after = read_key_file(key_file)
    assert after.primary == key_b and after.previous == []
    reopened = make_engine(url)
    try:
        assert _raw_key_ids(reopened) == {key_b.key_id}
        _check_everything_reads(reopened, platform_id)
    finally:
        reopened.dispose()


def test_key_source_follows_make_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_DATA_KEY, ENV_PREVIOUS_DATA_KEYS, ENV_DIGEST_KEY):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'none.db'}"
    missing = key_source(url)
    assert missing.ring is None and missing.key_file == tmp_path / "none.db.key"
    assert key_source("postgresql://127.0.0.1/x").ring is None
    with pytest.raises(DataKeyError, match="in-memory"):
        key_source("sqlite://")
    key = DataKey.generate()
    from_env = key_source(url, {ENV_DATA_KEY: key.to_b64()})
    assert from_env.from_env and from_env.ring is not None and from_env.ring.primary == key
