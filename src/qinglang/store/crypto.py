"""Encryption at rest for sensitive columns: data keys, AES-256-GCM column types, keyed digests.

How the key reaches the database layer
--------------------------------------
A :class:`KeyRing` (one primary :class:`DataKey` that encrypts, plus older keys that still
decrypt) is attached to an :class:`~sqlalchemy.engine.Engine` with :func:`attach_keyring`
(``make_engine(url, data_key=...)`` does this). The column types look the keyring up by the
engine's ``Dialect`` object, which SQLAlchemy creates once per engine and hands to every bind
and result processor. The registry is a ``WeakKeyDictionary`` keyed by that dialect, so two
engines in one process (two tests, two tenants) never see each other's keys, nothing leaks
between threads or tasks, and the entry disappears with the engine.

Where the key comes from (see ``qinglang.store.db.make_engine``)
-----------------------------------------------------------------
1. ``make_engine(url, data_key=...)`` — explicit, always wins;
2. env ``QINGLANG_DATA_KEY`` — urlsafe base64 of 32 random bytes (generate one with
   ``python -c "from qinglang.store.crypto import DataKey; print(DataKey.generate().to_b64())"``);
   older keys that must still decrypt go in ``QINGLANG_DATA_KEYS_PREVIOUS`` (comma-separated);
3. SQLite file database and no env key: :func:`load_or_create_key` keeps the key in a file
   named ``<database>.key`` next to the database, created with mode 0600. Back it up with the
   database; without it the encrypted columns are unreadable;
4. in-memory SQLite: a fresh random key for the life of the engine;
5. anything else (PostgreSQL) without a key: no keyring; reading or writing an encrypted column
   raises :class:`DataKeyError` saying how to configure one.

Stored format: ``<key id>:<base64(nonce12 || ciphertext || tag16)>``. The key id is derived from
the key itself (8 characters), so rotation needs no bookkeeping: make the new key primary, keep
the old one in ``QINGLANG_DATA_KEYS_PREVIOUS`` until every row has been rewritten.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import weakref
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import ClassVar, Final, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Text
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

ENV_DATA_KEY: Final = "QINGLANG_DATA_KEY"
ENV_PREVIOUS_DATA_KEYS: Final = "QINGLANG_DATA_KEYS_PREVIOUS"

_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


class DataKeyError(Exception):
    """A data key is missing, malformed, unknown, or does not open the stored ciphertext."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"qinglang/v1/" + purpose
    ).derive(master)


class DataKey:
    """A 32-byte master key; AES-GCM, digest and key-id material are derived from it by HKDF."""

    __slots__ = ("_aead", "_digest_key", "_raw", "key_id")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != _KEY_BYTES:
            raise DataKeyError(f"a data key is exactly {_KEY_BYTES} bytes, got {len(raw)}")
        self._raw = bytes(raw)
        self._aead = AESGCM(_derive(raw, b"aes-256-gcm"))
        self._digest_key = _derive(raw, b"id-number-hmac-sha256")
        self.key_id: str = base64.urlsafe_b64encode(_derive(raw, b"key-id")[:6]).decode("ascii")

    @classmethod
    def generate(cls) -> DataKey:
        """Return a new random key."""
        return cls(secrets.token_bytes(_KEY_BYTES))

    @classmethod
    def from_b64(cls, text: str) -> DataKey:
        """Parse urlsafe base64 of 32 bytes (padding optional), as in QINGLANG_DATA_KEY."""
        cleaned = text.strip()
        try:
            raw = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError) as exc:
            raise DataKeyError(f"data key is not urlsafe base64: {exc}") from None
        return cls(raw)

    def to_b64(self) -> str:
        """Return the key as urlsafe base64 (the QINGLANG_DATA_KEY format); handle with care."""
        return base64.urlsafe_b64encode(self._raw).decode("ascii")

    def __repr__(self) -> str:
        return f"DataKey(key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataKey) and hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self.key_id)


class KeyRing:
    """The primary key that encrypts new values plus older keys that still decrypt."""

    __slots__ = ("_by_id", "primary")

    def __init__(self, primary: DataKey, previous: Iterable[DataKey] = ()) -> None:
        self.primary = primary
        self._by_id: dict[str, DataKey] = {k.key_id: k for k in previous}
        self._by_id[primary.key_id] = primary

    @classmethod
    def of(cls, keys: DataKey | KeyRing) -> KeyRing:
        """Wrap a single key as a keyring; return a keyring unchanged."""
        return keys if isinstance(keys, KeyRing) else cls(keys)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing | None:
        """Read QINGLANG_DATA_KEY (+ QINGLANG_DATA_KEYS_PREVIOUS); None when unset."""
        env = os.environ if environ is None else environ
        primary = env.get(ENV_DATA_KEY, "").strip()
        if not primary:
            return None
        try:
            previous = [
                DataKey.from_b64(part)
                for part in env.get(ENV_PREVIOUS_DATA_KEYS, "").split(",")
                if part.strip()
            ]
            return cls(DataKey.from_b64(primary), previous)
        except DataKeyError as exc:
            raise DataKeyError(f"{ENV_DATA_KEY}/{ENV_PREVIOUS_DATA_KEYS}: {exc}") from None

    @property
    def key_ids(self) -> list[str]:
        """Ids of every key that can decrypt."""
        return sorted(self._by_id)

    def get(self, key_id: str) -> DataKey | None:
        """Return the key with this id, if held."""
        return self._by_id.get(key_id)

    def __repr__(self) -> str:
        return f"KeyRing(primary={self.primary.key_id!r}, key_ids={self.key_ids!r})"


def _aad(purpose: str, key_id: str) -> bytes:
    return f"qinglang:{purpose}:{key_id}".encode("ascii")


def encrypt(keys: DataKey | KeyRing, plaintext: bytes, purpose: str) -> str:
    """Encrypt with the primary key; return ``<key id>:<base64(nonce||ciphertext||tag)>``."""
    key = KeyRing.of(keys).primary
    nonce = os.urandom(_NONCE_BYTES)
    sealed = key._aead.encrypt(nonce, plaintext, _aad(purpose, key.key_id))
    return f"{key.key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def decrypt(keys: DataKey | KeyRing, stored: str, purpose: str) -> bytes:
    """Decrypt a value written by :func:`encrypt`; raise DataKeyError naming what is wrong."""
    ring = KeyRing.of(keys)
    key_id, sep, body = stored.partition(":")
    if not sep:
        raise DataKeyError("stored value is not qinglang ciphertext (no '<key id>:' prefix)")
    key = ring.get(key_id)
    if key is None:
        raise DataKeyError(
            f"value was encrypted with data key id {key_id!r}, but this engine holds only "
            f"{ring.key_ids}; configure that key ({ENV_DATA_KEY} or {ENV_PREVIOUS_DATA_KEYS})"
        )
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"ciphertext under key id {key_id!r} is not valid base64") from None
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise DataKeyError(f"ciphertext under key id {key_id!r} is truncated")
    try:
        return key._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(purpose, key_id))
    except InvalidTag:
        raise DataKeyError(
            f"ciphertext under key id {key_id!r} failed authentication "
            f"(tampered, or stored in a column of another kind than {purpose!r})"
        ) from None


def id_number_digest(keys: DataKey | KeyRing, number: str) -> str:
    """HMAC-SHA256 hex of an identity number (whitespace removed, upper-cased) under a derived key.

    The digest key is derived from the *primary* data key, so rotating the primary key changes
    every digest: re-hash stored identity numbers (or keep the old key primary) when rotating.
    """
    normalised = "".join(number.split()).upper()
    digest_key = KeyRing.of(keys).primary._digest_key
    return hmac.new(digest_key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def key_path_for_sqlite(database: str | os.PathLike[str]) -> Path:
    """Return where the key file of an SQLite database lives: ``<database>.key`` beside it."""
    path = Path(database)
    return path.with_name(path.name + ".key")


def load_or_create_key(path: str | os.PathLike[str]) -> DataKey:
    """Read the key file at ``path``, or create it (mode 0600, exclusive) with a new random key.

    On POSIX an existing key file readable or writable by group or others is refused.
    """
    key_path = Path(path)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if os.name == "posix":
            mode = stat.S_IMODE(key_path.stat().st_mode)
            if mode & 0o077:
                raise DataKeyError(
                    f"key file {key_path} has mode {mode:o}; restrict it with chmod 600"
                ) from None
        return DataKey.from_b64(key_path.read_text(encoding="ascii"))
    key = DataKey.generate()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.to_b64() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


_KEYRINGS: weakref.WeakKeyDictionary[Dialect, KeyRing] = weakref.WeakKeyDictionary()


def attach_keyring(engine: Engine, keys: DataKey | KeyRing) -> None:
    """Make ``keys`` the keyring used by encrypted columns on this engine (replaces any)."""
    _KEYRINGS[engine.dialect] = KeyRing.of(keys)


def keyring_of(engine: Engine) -> KeyRing | None:
    """Return the keyring attached to this engine, if any."""
    return _KEYRINGS.get(engine.dialect)


def _keyring_for(dialect: Dialect) -> KeyRing:
    ring = _KEYRINGS.get(dialect)
    if ring is None:
        raise DataKeyError(
            "no data key configured for this engine: set "
            f"{ENV_DATA_KEY} or pass data_key= to qinglang.store.db.make_engine"
        )
    return ring


_T = TypeVar("_T")


class _Encrypted(TypeDecorator[_T]):
    """Base for AES-GCM encrypted columns stored as TEXT; values cannot be filtered on."""

    impl = Text
    cache_ok = True
    purpose: ClassVar[str]

    def _to_bytes(self, value: object) -> bytes:
        raise NotImplementedError

    def _from_bytes(self, data: bytes) -> _T:
        raise NotImplementedError

    def process_bind_param(self, value: _T | None, dialect: Dialect) -> str | None:
        """Encrypt a Python value for storage."""
        if value is None:
            return None
        return encrypt(_keyring_for(dialect), self._to_bytes(value), self.purpose)

    def process_result_value(self, value: object | None, dialect: Dialect) -> _T | None:
        """Decrypt a stored value."""
        if value is None:
            return None
        return self._from_bytes(decrypt(_keyring_for(dialect), str(value), self.purpose))


class EncryptedText(_Encrypted[str]):
    """A ``str`` column encrypted at rest (AES-256-GCM)."""

    purpose = "text"

    def _to_bytes(self, value: object) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"EncryptedText takes str, got {type(value).__name__}")
        return value.encode("utf-8")

    def _from_bytes(self, data: bytes) -> str:
        return data.decode("utf-8")


class EncryptedDate(_Encrypted[date]):
    """A ``datetime.date`` column encrypted at rest (AES-256-GCM over the ISO date)."""

    purpose = "date"

    def _to_bytes(self, value: object) -> bytes:
        if isinstance(value, datetime) or not isinstance(value, date):
            raise TypeError(f"EncryptedDate takes datetime.date, got {type(value).__name__}")
        return value.isoformat().encode("ascii")

    def _from_bytes(self, data: bytes) -> date:
        return date.fromisoformat(data.decode("ascii"))
