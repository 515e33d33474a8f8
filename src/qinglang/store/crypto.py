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
   older keys that must still decrypt go in ``QINGLANG_DATA_KEYS_PREVIOUS`` (comma-separated),
   and then the identity-number digest key in ``QINGLANG_DIGEST_KEY``;
3. SQLite file database and no env key: :func:`load_or_create_key` keeps the keys in a file
   named ``<database>.key`` next to the database, created with mode 0600 (format: see
   :func:`parse_key_file`; rewritten atomically by :func:`write_key_file`). Back it up with the
   database; without it the encrypted columns are unreadable;
4. in-memory SQLite: a fresh random key for the life of the engine;
5. anything else (PostgreSQL) without a key: no keyring; reading or writing an encrypted column
   raises :class:`DataKeyError` saying how to configure one.

Stored format: ``<key id>:<base64(nonce12 || ciphertext || tag16)>``. The key id is derived from
the key itself (8 characters), so rotation needs no bookkeeping beyond the keyring: make the new
key primary, keep the old one to decrypt until every value has been rewritten
(``qinglang keys rotate``, :mod:`qinglang.store.keys`), then drop it.

Identity-number digests
-----------------------
:func:`id_number_digest` is an HMAC under the keyring's :class:`DigestKey`. It must never change:
qinglang keeps no plaintext identity numbers, so digests cannot be recomputed. A single-key
keyring derives it from its data key (HKDF, as it always did); a configuration with more than
one data key must give it explicitly (``QINGLANG_DIGEST_KEY``, or the ``digest`` line of the
key file; refused otherwise), and rotation writes it. Only the derived HMAC key is kept, so
a retired data key can be destroyed while lookups by identity number go on working.
See ``docs/security.md``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
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
ENV_DIGEST_KEY: Final = "QINGLANG_DIGEST_KEY"
KEY_ID_LENGTH: Final = 8
"""Every key id is 8 characters of urlsafe base64 (6 bytes of HKDF output)."""

_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


class DataKeyError(Exception):
    """A data key is missing, malformed, unknown, or does not open the stored ciphertext."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"qinglang/v1/" + purpose
    ).derive(master)


def _key_id(raw: bytes, purpose: bytes) -> str:
    return base64.urlsafe_b64encode(_derive(raw, purpose)[:6]).decode("ascii")


def _b64_key(text: str, what: str) -> bytes:
    cleaned = text.strip()
    try:
        raw = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DataKeyError(f"{what} is not urlsafe base64: {exc}") from None
    if len(raw) != _KEY_BYTES:
        raise DataKeyError(f"a {what} is exactly {_KEY_BYTES} bytes, got {len(raw)}")
    return raw


class DataKey:
    """A 32-byte master key; AES-GCM, digest and key-id material are derived from it by HKDF."""

    __slots__ = ("_aead", "_digest_key", "_raw", "key_id")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != _KEY_BYTES:
            raise DataKeyError(f"a data key is exactly {_KEY_BYTES} bytes, got {len(raw)}")
        self._raw = bytes(raw)
        self._aead = AESGCM(_derive(raw, b"aes-256-gcm"))
        self._digest_key = _derive(raw, b"id-number-hmac-sha256")
        self.key_id: str = _key_id(raw, b"key-id")

    @classmethod
    def generate(cls) -> DataKey:
        """Return a new random key."""
        return cls(secrets.token_bytes(_KEY_BYTES))

    @classmethod
    def from_b64(cls, text: str) -> DataKey:
        """Parse urlsafe base64 of 32 bytes (padding optional), as in QINGLANG_DATA_KEY."""
        return cls(_b64_key(text, "data key"))

    @property
    def digest_key(self) -> DigestKey:
        """The identity-number digest key derived from this data key (HKDF)."""
        return DigestKey(self._digest_key)

    def to_b64(self) -> str:
        """Return the key as urlsafe base64 (the QINGLANG_DATA_KEY format); handle with care."""
        return base64.urlsafe_b64encode(self._raw).decode("ascii")

    def __repr__(self) -> str:
        return f"DataKey(key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataKey) and hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self.key_id)


class DigestKey:
    """The 32-byte HMAC key of identity-number digests; it cannot decrypt anything."""

    __slots__ = ("_raw", "key_id")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != _KEY_BYTES:
            raise DataKeyError(f"a digest key is exactly {_KEY_BYTES} bytes, got {len(raw)}")
        self._raw = bytes(raw)
        self.key_id: str = _key_id(raw, b"digest-key-id")

    @classmethod
    def from_b64(cls, text: str) -> DigestKey:
        """Parse urlsafe base64 of 32 bytes, as in QINGLANG_DIGEST_KEY."""
        return cls(_b64_key(text, "digest key"))

    def to_b64(self) -> str:
        """Return the key as urlsafe base64 (the QINGLANG_DIGEST_KEY format); handle with care."""
        return base64.urlsafe_b64encode(self._raw).decode("ascii")

    def digest(self, number: str) -> str:
        """HMAC-SHA256 hex of an identity number, whitespace removed and upper-cased."""
        normalised = "".join(number.split()).upper()
        return hmac.new(self._raw, normalised.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"DigestKey(key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DigestKey) and hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self.key_id)


class KeyRing:
    """The primary key that encrypts new values, older keys that still decrypt, the digest key.

    ``KeyRing(ring, more_previous)`` copies a keyring (adding decrypt-only keys). The digest key
    defaults to the one derived from the primary key, which is only right while a single key has
    ever been used; a keyring with previous keys should be given the digest key explicitly.
    """

    __slots__ = ("_by_id", "digest_key", "primary")

    def __init__(
        self,
        primary: DataKey | KeyRing,
        previous: Iterable[DataKey] = (),
        digest_key: DigestKey | None = None,
    ) -> None:
        if isinstance(primary, KeyRing):
            base = primary
            previous = [*base.previous, *previous]
            digest_key = digest_key if digest_key is not None else base.digest_key
            primary = base.primary
        self.primary: DataKey = primary
        self._by_id: dict[str, DataKey] = {}
        for key in previous:
            if key.key_id != primary.key_id:
                self._by_id.setdefault(key.key_id, key)
        self._by_id[primary.key_id] = primary
        self.digest_key: DigestKey = digest_key if digest_key is not None else primary.digest_key

    @classmethod
    def of(cls, keys: DataKey | KeyRing) -> KeyRing:
        """Wrap a single key as a keyring; return a keyring unchanged."""
        return keys if isinstance(keys, KeyRing) else cls(keys)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing | None:
        """Read QINGLANG_DATA_KEY (+ _DATA_KEYS_PREVIOUS, QINGLANG_DIGEST_KEY); None when unset.

        Previous keys without QINGLANG_DIGEST_KEY are refused: the digest key would silently
        follow the new primary key and every lookup by identity number would miss.
        """
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
            digest_text = env.get(ENV_DIGEST_KEY, "").strip()
            digest_key = DigestKey.from_b64(digest_text) if digest_text else None
            ring = cls(DataKey.from_b64(primary), previous, digest_key)
        except DataKeyError as exc:
            raise DataKeyError(
                f"{ENV_DATA_KEY}/{ENV_PREVIOUS_DATA_KEYS}/{ENV_DIGEST_KEY}: {exc}"
            ) from None
        if ring.previous and digest_key is None:
            raise DataKeyError(
                f"{ENV_PREVIOUS_DATA_KEYS} is set but {ENV_DIGEST_KEY} is not: identity-number "
                f"digests would follow the primary key and lookups would miss; set "
                f"{ENV_DIGEST_KEY} (`qinglang keys digest-key`, see docs/security.md)"
            )
        return ring

    @property
    def key_ids(self) -> list[str]:
        """Ids of every key that can decrypt."""
        return sorted(self._by_id)

    @property
    def previous(self) -> list[DataKey]:
        """The decrypt-only keys (every key but the primary), in configuration order."""
        return [k for k in self._by_id.values() if k is not self.primary]

    def get(self, key_id: str) -> DataKey | None:
        """Return the key with this id, if held."""
        return self._by_id.get(key_id)

    def without(self, key_ids: Iterable[str]) -> KeyRing:
        """A copy without these previous keys (the primary and digest key always stay)."""
        drop = set(key_ids) - {self.primary.key_id}
        return KeyRing(
            self.primary, [k for k in self.previous if k.key_id not in drop], self.digest_key
        )

    def __repr__(self) -> str:
        return (
            f"KeyRing(primary={self.primary.key_id!r}, key_ids={self.key_ids!r}, "
            f"digest_key_id={self.digest_key.key_id!r})"
        )


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
    """HMAC-SHA256 hex of an identity number (whitespace removed, upper-cased) under the digest key.

    The keyring's :class:`DigestKey` stays the same across data-key rotation, so a digest stored
    before a rotation is still found after it (see the module doc).
    """
    return KeyRing.of(keys).digest_key.digest(number)


def key_path_for_sqlite(database: str | os.PathLike[str]) -> Path:
    """Return where the key file of an SQLite database lives: ``<database>.key`` beside it."""
    path = Path(database)
    return path.with_name(path.name + ".key")


KEY_FILE_HEADER: Final = """\
# qinglang data keys (docs/security.md). Keep mode 0600 and back it up with the database:
# without it the encrypted columns are unreadable. The first key line encrypts ("primary");
# later "previous" lines only decrypt and are dropped by `qinglang keys rotate` once no value
# uses them. "digest" keys the identity-number digests and must never change.
"""


def parse_key_file(text: str, source: str = "key file") -> KeyRing:
    """Parse a key file: ``[primary|previous] <b64>`` lines (first = primary), ``digest <b64>``.

    A single bare base64 line (the original format) is a one-key ring. ``#`` starts a comment.
    Errors name the line, never the key material.
    """
    data_keys: list[DataKey] = []
    digest_key: DigestKey | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{source}, line {number}"
        if len(fields) == 1:
            label, value = "", fields[0]
        elif len(fields) == 2:
            label, value = fields
        else:
            raise DataKeyError(f"{where}: expected '[primary|previous|digest] <base64 key>'")
        try:
            if label == "digest":
                if digest_key is not None:
                    raise DataKeyError("a second digest key")
                digest_key = DigestKey.from_b64(value)
                continue
            if label not in ("", "primary", "previous"):
                raise DataKeyError(f"unknown label {label!r}")
            if label == "primary" and data_keys:
                raise DataKeyError("'primary' must be the first key line")
            if label == "previous" and not data_keys:
                raise DataKeyError("the first key line is the primary key, not 'previous'")
            data_keys.append(DataKey.from_b64(value))
        except DataKeyError as exc:
            raise DataKeyError(f"{where}: {exc}") from None
    if not data_keys:
        raise DataKeyError(f"{source}: no data key in it")
    ring = KeyRing(data_keys[0], data_keys[1:], digest_key)
    if ring.previous and digest_key is None:
        raise DataKeyError(
            f"{source}: several data keys but no 'digest' line; add the digest key of the data "
            "key the identity numbers were hashed with (`qinglang keys digest-key`)"
        )
    return ring


def format_key_file(ring: KeyRing) -> str:
    """The key-file text of a keyring (the digest line only when not derivable from the primary).

    A one-key ring whose digest key is its own is written as the original single-line format.
    """
    if not ring.previous and ring.digest_key == ring.primary.digest_key:
        return ring.primary.to_b64() + "\n"
    lines = [KEY_FILE_HEADER.rstrip("\n")]
    lines.append(f"primary {ring.primary.to_b64()}  # key id {ring.primary.key_id}")
    lines.extend(f"previous {k.to_b64()}  # key id {k.key_id}" for k in ring.previous)
    lines.append(f"digest {ring.digest_key.to_b64()}  # digest key id {ring.digest_key.key_id}")
    return "\n".join(lines) + "\n"


def _check_mode(key_path: Path) -> None:
    if os.name == "posix":
        mode = stat.S_IMODE(key_path.stat().st_mode)
        if mode & 0o077:
            raise DataKeyError(f"key file {key_path} has mode {mode:o}; restrict it with chmod 600")


def read_key_file(path: str | os.PathLike[str]) -> KeyRing:
    """Read the keyring in an existing key file (refused if group/others may read it on POSIX)."""
    key_path = Path(path)
    _check_mode(key_path)
    return parse_key_file(key_path.read_text(encoding="ascii"), str(key_path))


def write_key_file(path: str | os.PathLike[str], ring: KeyRing) -> None:
    """Replace the key file atomically: a 0600 temp file beside it, fsync, rename, fsync the dir.

    A crash leaves either the old file or the new one, never a partial file.
    """
    key_path = Path(path)
    # mkstemp creates the file with mode 0600, so the key is never readable by others.
    fd, temp_name = tempfile.mkstemp(prefix=f".{key_path.name}.", dir=key_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(format_key_file(ring))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, key_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    if os.name == "posix":
        dir_fd = os.open(key_path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_or_create_key(path: str | os.PathLike[str]) -> KeyRing:
    """Read the keyring in the key file at ``path``, or create the file (0600, exclusive).

    A new file holds one new random key (single-line format). On POSIX an existing key file
    readable or writable by group or others is refused.
    """
    key_path = Path(path)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key_file(key_path)
    key = DataKey.generate()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.to_b64() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return KeyRing(key)


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

    cache_ok = True  # SQLAlchemy reads it from each class, not from the base
    purpose = "text"

    def _to_bytes(self, value: object) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"EncryptedText takes str, got {type(value).__name__}")
        return value.encode("utf-8")

    def _from_bytes(self, data: bytes) -> str:
        return data.decode("utf-8")


class EncryptedDate(_Encrypted[date]):
    """A ``datetime.date`` column encrypted at rest (AES-256-GCM over the ISO date)."""

    cache_ok = True
    purpose = "date"

    def _to_bytes(self, value: object) -> bytes:
        if isinstance(value, datetime) or not isinstance(value, date):
            raise TypeError(f"EncryptedDate takes datetime.date, got {type(value).__name__}")
        return value.isoformat().encode("ascii")

    def _from_bytes(self, data: bytes) -> date:
        return date.fromisoformat(data.decode("ascii"))


def encrypted_purpose(column_type: object) -> str | None:
    """The AAD purpose ("text", "date") of an encrypted column type; None for any other type."""
    return column_type.purpose if isinstance(column_type, _Encrypted) else None
