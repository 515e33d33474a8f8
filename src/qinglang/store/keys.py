"""Data-key rotation: find the encrypted columns, count ciphertexts per key id, re-encrypt.

Rotation never depends on the ORM or on the keyring attached to an engine: it reads the stored
text (``<key id>:<base64>``) with plain SQL, decrypts it with the keyring it is given and writes
it back under that keyring's primary key.

Why an interrupted rotation is harmless
---------------------------------------
* The new key is made available to decrypt (the key file is rewritten, or the operator has put
  it in the environment) *before* the first value is rewritten, and the old keys stay until no
  value uses them, so at every moment every value opens with a key the keyring holds.
* Values are rewritten in batches of ``batch_size`` rows of one column, each batch in its own
  transaction (``BEGIN IMMEDIATE`` on SQLite). A kill loses at most the open batch, which rolls
  back; the committed batches are done.
* Each row is written with a compare-and-set (``WHERE id = ? AND col = <old ciphertext>``): a
  value that another process changed meanwhile is left alone (it is not lost, and a re-run
  picks it up if it is still under an old key).
* A re-run finds only the values not yet under the primary key (``substr(col, 1, 9) <>
  '<primary id>:'``) and finishes the job; old keys are dropped only after a full scan shows
  that no value uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, MetaData, Text, bindparam, column, func, inspect, literal_column
from sqlalchemy import select as sa_select
from sqlalchemy import table as sa_table
from sqlalchemy import update as sa_update
from sqlalchemy.engine import make_url
from sqlalchemy.sql.expression import ColumnClause, ColumnElement, TableClause

from qinglang.store.crypto import (
    ENV_DATA_KEY,
    ENV_DIGEST_KEY,
    ENV_PREVIOUS_DATA_KEYS,
    KEY_ID_LENGTH,
    DataKey,
    DataKeyError,
    KeyRing,
    decrypt,
    encrypt,
    encrypted_purpose,
    key_path_for_sqlite,
    read_key_file,
    write_key_file,
)

# One source of truth with make_engine for "is this URL an SQLite file, and which".
from qinglang.store.db import _sqlite_database_file, writer

DEFAULT_BATCH_SIZE: Final = 500
NOT_CIPHERTEXT: Final = "(not ciphertext)"
"""Pseudo key id under which :func:`key_usage` counts stored values with no key-id prefix."""


@dataclass(frozen=True)
class EncryptedColumn:
    """One encrypted column of the schema: its table, single-column primary key and purpose."""

    table: str
    column: str
    primary_key: str
    purpose: str

    @property
    def name(self) -> str:
        """``table.column``."""
        return f"{self.table}.{self.column}"

    def _clauses(self) -> tuple[TableClause, ColumnClause[object], ColumnClause[str]]:
        # A lightweight table with the value typed as plain TEXT: no decryption on the way out.
        pk: ColumnClause[object] = column(self.primary_key)
        value: ColumnClause[str] = column(self.column, Text)
        return sa_table(self.table, pk, value), pk, value


def encrypted_columns(metadata: MetaData | None = None) -> list[EncryptedColumn]:
    """Every column of the schema (``Base.metadata`` by default) stored with an encrypted type."""
    if metadata is None:
        from qinglang.store.models import Base

        metadata = Base.metadata
    found: list[EncryptedColumn] = []
    for tbl in metadata.sorted_tables:
        for col in tbl.columns:
            purpose = encrypted_purpose(col.type)
            if purpose is None:
                continue
            pk = list(tbl.primary_key.columns)
            if len(pk) != 1:
                raise ValueError(f"{tbl.name}.{col.name}: rotation needs a one-column primary key")
            found.append(EncryptedColumn(tbl.name, col.name, pk[0].name, purpose))
    return found


def present_columns(
    engine: Engine, columns: list[EncryptedColumn] | None = None
) -> list[EncryptedColumn]:
    """The encrypted columns that exist in this database (an older revision may lack some)."""
    wanted = encrypted_columns() if columns is None else columns
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    have: dict[str, set[str]] = {}
    present = []
    for col in wanted:
        if col.table not in tables:
            continue
        if col.table not in have:
            have[col.table] = {c["name"] for c in inspector.get_columns(col.table)}
        if col.column in have[col.table]:
            present.append(col)
    return present


def _prefix(value: ColumnClause[str]) -> ColumnElement[str]:
    # An inlined length keeps SELECT and GROUP BY textually identical on PostgreSQL.
    length: ColumnClause[int] = literal_column(str(KEY_ID_LENGTH + 1))
    return func.substr(value, 1, length)


def key_usage(engine: Engine, columns: list[EncryptedColumn]) -> dict[str, dict[str, int]]:
    """Count stored ciphertexts per key id, per column: ``{"table.column": {key id: n}}``.

    Values without a ``<key id>:`` prefix are counted under :data:`NOT_CIPHERTEXT`.
    """
    usage: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for col in columns:
            tbl, _pk, value = col._clauses()
            prefix = _prefix(value)
            query = (
                sa_select(prefix, func.count())
                .select_from(tbl)
                .where(value.is_not(None))
                .group_by(prefix)
            )
            counts: dict[str, int] = {}
            for stored_prefix, count in connection.execute(query):
                text = str(stored_prefix)
                ok = len(text) == KEY_ID_LENGTH + 1 and text.endswith(":")
                key_id = text[:-1] if ok else NOT_CIPHERTEXT
                counts[key_id] = counts.get(key_id, 0) + int(count)
            usage[col.name] = dict(sorted(counts.items()))
    return usage


def used_key_ids(usage: Mapping[str, Mapping[str, int]]) -> set[str]:
    """Every key id (or :data:`NOT_CIPHERTEXT`) that some stored value uses."""
    return {key_id for counts in usage.values() for key_id, n in counts.items() if n}


@dataclass
class ReencryptStats:
    """What :func:`reencrypt` did."""

    rewritten: int = 0
    skipped: int = 0
    """Values changed by another writer between read and write; left as they were."""
    batches: int = 0


BatchHook = Callable[[EncryptedColumn, int], None]
"""Called after each committed batch with the column and how many values the batch held."""


def reencrypt(
    engine: Engine,
    ring: KeyRing,
    columns: list[EncryptedColumn],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after_batch: BatchHook | None = None,
) -> ReencryptStats:
    """Rewrite every value not under ``ring.primary`` with it, one transaction per batch.

    Raises DataKeyError (naming the row) for a value the keyring cannot open, e.g. tampered.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    stats = ReencryptStats()
    target = ring.primary
    prefix_text = target.key_id + ":"
    write_engine = writer(engine)
    for col in columns:
        tbl, pk, value = col._clauses()
        change = (
            sa_update(tbl)
            .where(pk == bindparam("b_pk"), value == bindparam("b_old"))
            .values({col.column: bindparam("b_new")})
        )
        last: object | None = None
        while True:
            with write_engine.begin() as connection:
                query = sa_select(pk, value).where(
                    value.is_not(None), _prefix(value) != prefix_text
                )
                if last is not None:
                    query = query.where(pk > last)
                rows = connection.execute(query.order_by(pk).limit(batch_size)).all()
                if not rows:
                    break
                params = []
                for row_pk, stored in rows:
                    try:
                        plain = decrypt(ring, stored, col.purpose)
                    except DataKeyError as exc:
                        raise DataKeyError(f"{col.name} row {row_pk}: {exc}") from None
                    new = encrypt(ring, plain, col.purpose)
                    params.append({"b_pk": row_pk, "b_old": stored, "b_new": new})
                done = connection.execute(change, params).rowcount
                if done < 0:  # a driver that cannot count executemany rows
                    done = len(rows)
                last = rows[-1][0]
            stats.rewritten += done
            stats.skipped += len(rows) - done
            stats.batches += 1
            if after_batch is not None:
                after_batch(col, len(rows))
    return stats


@dataclass(frozen=True)
class KeySource:
    """Where the keys of a database come from, exactly as ``make_engine`` would find them."""

    ring: KeyRing | None
    key_file: Path | None = None
    """Set when the keys live in the ``<database>.key`` file of an SQLite database."""

    @property
    def from_env(self) -> bool:
        """Whether the keys come from QINGLANG_DATA_KEY and friends."""
        return self.ring is not None and self.key_file is None


def key_source(url: str, environ: Mapping[str, str] | None = None) -> KeySource:
    """Find the keys of the database at ``url``: environment first, then an SQLite key file.

    Raises DataKeyError for an in-memory database or a malformed configuration; a key file that
    does not exist gives ``KeySource(None, path)``.
    """
    from_env = KeyRing.from_env(environ)
    if from_env is not None:
        return KeySource(from_env)
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        return KeySource(None)
    database = _sqlite_database_file(sa_url)
    if database is None:
        raise DataKeyError("an in-memory SQLite database has no lasting key to rotate")
    key_file = key_path_for_sqlite(database)
    if not key_file.exists():
        return KeySource(None, key_file)
    return KeySource(read_key_file(key_file), key_file)


def plan_rotation(current: KeyRing, new_key: DataKey | None = None) -> tuple[KeyRing, bool]:
    """The keyring to rotate to, and whether its primary key was generated here.

    Without ``new_key``: a keyring that still holds previous keys is an unfinished rotation and
    is finished as it is; otherwise a new key is generated. The digest key is always carried.
    """
    if new_key is None:
        if current.previous:
            return current, False
        new_key, generated = DataKey.generate(), True
    else:
        generated = False
    if new_key == current.primary:
        return current, generated
    return KeyRing(new_key, [current.primary, *current.previous], current.digest_key), generated


@dataclass(frozen=True)
class RotationPlan:
    """What a rotation is about to do (handed to ``on_start`` before any value is rewritten)."""

    before: KeyRing
    ring: KeyRing
    generated: bool
    usage: dict[str, dict[str, int]]
    columns: list[EncryptedColumn]

    @property
    def to_rewrite(self) -> int:
        """How many stored values are not yet under the new primary key."""
        primary = self.ring.primary.key_id
        return sum(n for c in self.usage.values() for k, n in c.items() if k != primary)


@dataclass(frozen=True)
class RotationResult:
    """The outcome of :func:`rotate`."""

    plan: RotationPlan
    stats: ReencryptStats
    ring: KeyRing
    """The keyring after the run (retired keys dropped when the keys live in a file)."""
    retired: list[str]
    """Previous key ids that no stored value uses any more."""
    remaining: dict[str, int] = field(default_factory=dict)
    """Previous key ids still used (values written or changed during the run): count."""


def rotate(
    engine: Engine,
    source: KeySource,
    *,
    new_key: DataKey | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_start: Callable[[RotationPlan], None] | None = None,
    after_batch: BatchHook | None = None,
) -> RotationResult:
    """Rotate to a new primary key (or finish an unfinished rotation) and re-encrypt everything.

    With a key file the new key is written to it (atomically, beside the old ones) before any
    value is rewritten, and the old keys are dropped from it once no value uses them. With
    environment keys the caller reports what the operator must change.
    """
    if source.ring is None:
        where = f"no key file {source.key_file}" if source.key_file else f"{ENV_DATA_KEY} unset"
        raise DataKeyError(f"no data key configured ({where}): nothing to rotate")
    columns = present_columns(engine)
    if not columns:
        raise DataKeyError("no encrypted columns in this database (is it migrated?)")
    before = source.ring
    usage = key_usage(engine, columns)
    unknown = sorted(used_key_ids(usage) - set(before.key_ids))
    if unknown:
        raise DataKeyError(
            f"stored values use key id(s) {', '.join(unknown)} that no configured key opens "
            f"(configured: {', '.join(before.key_ids)}); add the missing key(s) first"
        )
    ring, generated = plan_rotation(before, new_key)
    plan = RotationPlan(before, ring, generated, usage, columns)
    if source.key_file is not None and ring is not before:
        write_key_file(source.key_file, ring)
    if on_start is not None:
        on_start(plan)
    stats = reencrypt(engine, ring, columns, batch_size=batch_size, after_batch=after_batch)
    after = key_usage(engine, columns)
    used = used_key_ids(after)
    retired = [k.key_id for k in ring.previous if k.key_id not in used]
    remaining = {
        k.key_id: sum(c.get(k.key_id, 0) for c in after.values())
        for k in ring.previous
        if k.key_id in used
    }
    final = ring
    if source.key_file is not None and retired:
        final = ring.without(retired)
        write_key_file(source.key_file, final)
    return RotationResult(plan, stats, final, retired, remaining)


def env_lines(ring: KeyRing) -> list[str]:
    """The environment that configures ``ring`` (``NAME=value`` lines; secret, show once)."""
    lines = [f"{ENV_DATA_KEY}={ring.primary.to_b64()}"]
    if ring.previous:
        previous = ",".join(k.to_b64() for k in ring.previous)
        lines.append(f"{ENV_PREVIOUS_DATA_KEYS}={previous}")
    lines.append(f"{ENV_DIGEST_KEY}={ring.digest_key.to_b64()}")
    return lines
