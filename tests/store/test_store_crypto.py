"""Data keys, AES-256-GCM values, key files and identity-number digests (no database needed)."""

from __future__ import annotations

import os
import stat
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.store.crypto import (
    ENV_DATA_KEY,
    ENV_DIGEST_KEY,
    ENV_PREVIOUS_DATA_KEYS,
    DataKey,
    DataKeyError,
    DigestKey,
    EncryptedDate,
    EncryptedText,
    KeyRing,
    decrypt,
    encrypt,
    encrypted_purpose,
    format_key_file,
    id_number_digest,
    key_path_for_sqlite,
    load_or_create_key,
    parse_key_file,
    read_key_file,
    write_key_file,
)

KEY = DataKey.generate()


@given(st.binary(max_size=2048), st.sampled_from(["text", "date", "other"]))
def test_encrypt_decrypt_round_trip(plaintext: bytes, purpose: str) -> None:
    stored = encrypt(KEY, plaintext, purpose)
    assert stored.startswith(KEY.key_id + ":")
    assert decrypt(KEY, stored, purpose) == plaintext


@given(st.text(max_size=300))
def test_text_type_round_trip(value: str) -> None:
    column = EncryptedText()
    ring = KeyRing(KEY)
    stored = encrypt(ring, column._to_bytes(value), column.purpose)
    assert column._from_bytes(decrypt(ring, stored, column.purpose)) == value


@given(st.dates())
def test_date_type_round_trip(value: date) -> None:
    column = EncryptedDate()
    stored = encrypt(KEY, column._to_bytes(value), column.purpose)
    assert value.isoformat() not in stored
    assert column._from_bytes(decrypt(KEY, stored, column.purpose)) == value


def test_same_plaintext_encrypts_differently() -> None:
    assert encrypt(KEY, b"2012-05-01", "date") != encrypt(KEY, b"2012-05-01", "date")


def test_wrong_key_is_named_in_the_error() -> None:
    stored = encrypt(KEY, b"secret", "text")
    other = DataKey.generate()
    with pytest.raises(DataKeyError, match=rf"key id '{KEY.key_id}'.*holds only"):
        decrypt(other, stored, "text")


def test_tampering_and_purpose_swap_fail_authentication() -> None:
    stored = encrypt(KEY, b"secret", "text")
    key_id, body = stored.split(":")
    flipped = body[:-6] + ("A" if body[-6] != "A" else "B") + body[-5:]
    with pytest.raises(DataKeyError, match="failed authentication"):
        decrypt(KEY, f"{key_id}:{flipped}", "text")
    with pytest.raises(DataKeyError, match="failed authentication"):
        decrypt(KEY, stored, "date")
    with pytest.raises(DataKeyError, match="not qinglang ciphertext"):
        decrypt(KEY, "2012-05-01", "date")
    with pytest.raises(DataKeyError, match="truncated"):
        decrypt(KEY, f"{key_id}:AAAA", "text")


def test_rotation_old_values_still_decrypt() -> None:
    old, new = DataKey.generate(), DataKey.generate()
    written_before = encrypt(old, b"before", "text")
    ring = KeyRing(new, [old])
    written_after = encrypt(ring, b"after", "text")
    assert written_after.startswith(new.key_id + ":")
    assert decrypt(ring, written_before, "text") == b"before"
    assert decrypt(ring, written_after, "text") == b"after"
    assert ring.key_ids == sorted({old.key_id, new.key_id})


def test_key_b64_round_trip_and_validation() -> None:
    assert DataKey.from_b64(KEY.to_b64()) == KEY
    assert DataKey.from_b64(KEY.to_b64().rstrip("=") + "\n").key_id == KEY.key_id
    with pytest.raises(DataKeyError, match="exactly 32 bytes"):
        DataKey.from_b64("c2hvcnQ=")
    with pytest.raises(DataKeyError, match="base64"):
        DataKey.from_b64("not base64 at all!!")


def test_repr_does_not_leak_key_material() -> None:
    assert KEY.to_b64() not in repr(KEY)
    assert KEY.to_b64() not in repr(KeyRing(KEY))


def test_keyring_from_env() -> None:
    old = DataKey.generate()
    assert KeyRing.from_env({}) is None
    ring = KeyRing.from_env(
        {
            ENV_DATA_KEY: KEY.to_b64(),
            ENV_PREVIOUS_DATA_KEYS: old.to_b64(),
            ENV_DIGEST_KEY: old.digest_key.to_b64(),
        }
    )
    assert ring is not None
    assert ring.primary == KEY
    assert ring.get(old.key_id) == old
    assert ring.previous == [old]
    assert ring.digest_key == old.digest_key
    with pytest.raises(DataKeyError, match=ENV_DATA_KEY):
        KeyRing.from_env({ENV_DATA_KEY: "garbage"})
    with pytest.raises(DataKeyError, match=ENV_DIGEST_KEY):
        KeyRing.from_env({ENV_DATA_KEY: KEY.to_b64(), ENV_DIGEST_KEY: "c2hvcnQ="})


def test_previous_keys_without_a_pinned_digest_key_are_refused() -> None:
    """Otherwise digests would silently follow the new primary and lookups would miss."""
    old = DataKey.generate()
    with pytest.raises(DataKeyError, match=f"{ENV_DIGEST_KEY} is not"):
        KeyRing.from_env({ENV_DATA_KEY: KEY.to_b64(), ENV_PREVIOUS_DATA_KEYS: old.to_b64()})
    single = KeyRing.from_env({ENV_DATA_KEY: KEY.to_b64()})
    assert single is not None and single.digest_key == KEY.digest_key  # as before rotation


def test_load_or_create_key_creates_0600_file_once(tmp_path: Path) -> None:
    path = key_path_for_sqlite(tmp_path / "qinglang.db")
    assert path == tmp_path / "qinglang.db.key"
    created = load_or_create_key(path)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_key(path)
    assert again.primary == created.primary and again.previous == []
    # A new file keeps the original single-line format.
    assert DataKey.from_b64(path.read_text()) == created.primary


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_load_or_create_key_refuses_a_readable_key_file(tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    load_or_create_key(path)
    path.chmod(0o644)
    with pytest.raises(DataKeyError, match="chmod 600"):
        load_or_create_key(path)


def test_id_number_digest() -> None:
    number = "11010520120501123x"
    digest = id_number_digest(KEY, number)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest == id_number_digest(KEY, " 110105 20120501 123X ")
    assert digest != id_number_digest(DataKey.generate(), number)
    assert digest != id_number_digest(KEY, "110105201205011231")
    assert number.upper() not in digest


@given(st.text(min_size=1, max_size=40))
def test_digest_is_not_the_encryption_key_stream(number: str) -> None:
    """The digest key is derived separately: the digest never equals a plain SHA-256 of input."""
    import hashlib

    normalised = "".join(number.split()).upper()
    assert id_number_digest(KEY, number) != hashlib.sha256(normalised.encode()).hexdigest()


def test_date_type_rejects_datetimes_and_text_rejects_bytes() -> None:
    from datetime import datetime

    with pytest.raises(TypeError):
        EncryptedDate()._to_bytes(datetime(2012, 5, 1))
    with pytest.raises(TypeError):
        EncryptedText()._to_bytes(b"bytes")


# --- digest key across rotation -----------------------------------------------------------


def test_digest_is_stable_across_rotation_when_the_digest_key_is_carried() -> None:
    old, new = DataKey.generate(), DataKey.generate()
    before = id_number_digest(old, "11010520120501123X")
    during = KeyRing(new, [old], old.digest_key)
    after = KeyRing(new, digest_key=old.digest_key)  # old data key destroyed
    assert id_number_digest(during, "11010520120501123X") == before
    assert id_number_digest(after, "11010520120501123X") == before
    assert KeyRing(after).digest_key == old.digest_key  # copying keeps it
    assert after.without([new.key_id]).primary == new
    # The legacy derivation is unchanged: digests written before this change still match.
    import hashlib
    import hmac

    legacy_key = old._digest_key
    legacy = hmac.new(legacy_key, b"11010520120501123X", hashlib.sha256).hexdigest()
    assert before == legacy


def test_digest_key_b64_round_trip_and_repr() -> None:
    key = KEY.digest_key
    assert DigestKey.from_b64(key.to_b64()) == key
    assert key.to_b64() not in repr(key)
    assert key.key_id != KEY.key_id
    with pytest.raises(DataKeyError, match="digest key"):
        DigestKey.from_b64("c2hvcnQ=")


# --- key files ----------------------------------------------------------------------------


def test_key_file_single_line_format_is_still_read() -> None:
    ring = parse_key_file(KEY.to_b64() + "\n")
    assert ring.primary == KEY and ring.previous == [] and ring.digest_key == KEY.digest_key
    assert format_key_file(ring) == KEY.to_b64() + "\n"


def test_key_file_several_keys_round_trip() -> None:
    old, older = DataKey.generate(), DataKey.generate()
    ring = KeyRing(KEY, [old, older], older.digest_key)
    text = format_key_file(ring)
    assert text.startswith("#") and f"primary {KEY.to_b64()}" in text
    parsed = parse_key_file(text)
    assert parsed.primary == KEY
    assert parsed.previous == [old, older]
    assert parsed.digest_key == older.digest_key
    # Labels are optional: bare lines are data keys, the first one primary.
    bare = f"{KEY.to_b64()}\n{old.to_b64()}\ndigest {older.digest_key.to_b64()}\n"
    assert parse_key_file(bare).previous == [old]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no data key"),
        ("# only a comment\n", "no data key"),
        ("previous {k}\n", "line 1: the first key line is the primary"),
        ("{k}\nprimary {o}\n", "line 2: 'primary' must be the first"),
        ("{k}\nsecret {o}\n", "line 2: unknown label"),
        ("{k} {o} {k}\n", "line 1: expected"),
        ("{k}\nnot-a-key\n", "line 2: data key is not urlsafe base64|line 2: a data key"),
        ("{k}\n{o}\n", "no 'digest' line"),
        ("{k}\ndigest {d}\ndigest {d}\n", "line 3: a second digest key"),
    ],
)
def test_key_file_errors_name_the_line_not_the_key(text: str, message: str) -> None:
    other = DataKey.generate()
    filled = text.format(k=KEY.to_b64(), o=other.to_b64(), d=KEY.digest_key.to_b64())
    with pytest.raises(DataKeyError, match=message) as caught:
        parse_key_file(filled, "q.db.key")
    assert KEY.to_b64() not in str(caught.value)
    assert other.to_b64() not in str(caught.value)


def test_write_key_file_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "q.db.key"
    load_or_create_key(path)
    old = read_key_file(path).primary
    ring = KeyRing(KEY, [old], old.digest_key)
    write_key_file(path, ring)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["q.db.key"]  # no temp file left
    reread = load_or_create_key(path)
    assert reread.primary == KEY and reread.previous == [old]
    assert reread.digest_key == old.digest_key


def test_encrypted_purpose() -> None:
    assert encrypted_purpose(EncryptedText()) == "text"
    assert encrypted_purpose(EncryptedDate()) == "date"
    from sqlalchemy import Text

    assert encrypted_purpose(Text()) is None
