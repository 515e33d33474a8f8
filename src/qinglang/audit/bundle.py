"""Signed audit bundles: an Ed25519 signature over a manifest of SHA-256 hashes.

A bundle is a directory (the report, ``result.json``, ``evidence/*``, ledger proofs...) plus:

* ``MANIFEST.json``: canonical JSON (sorted keys, no whitespace, UTF-8, no trailing newline)::

      {"files": [{"bytes": n, "path": "evidence/x.csv", "sha256": "<hex>"}, ...],
       "format": "qinglang-audit-bundle/1",
       "key_fingerprint": "<sha256 hex of the raw 32-byte public key>",
       "public_key": "<base64 of the raw 32-byte public key>"}

  listing every file of the directory (relative POSIX paths, sorted) except the three bundle
  files themselves;
* ``MANIFEST.sig``: the raw 64-byte Ed25519 signature over the exact bytes of MANIFEST.json;
* ``public_key.pem``: the signer's public key (SubjectPublicKeyInfo PEM).

The included key only proves the bundle was not changed after signing; that it comes from the
platform needs the fingerprint compared with one the platform published out of band (or
``qinglang audit verify DIR --key trusted.pem``).

Verifying offline, without qinglang (OpenSSL >= 3.0, coreutils, and jq or python3), in the
bundle directory:

1. The signature over the manifest (prints ``Signature Verified Successfully``)::

       openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin \\
           -in MANIFEST.json -sigfile MANIFEST.sig

   With a key obtained from the platform, use it as ``-inkey`` instead of public_key.pem. The
   fingerprint of a PEM key (compare with ``key_fingerprint``)::

       openssl pkey -pubin -in public_key.pem -outform DER | tail -c 32 | sha256sum

2. Every listed file's hash (each line must end in ``OK``)::

       jq -r '.files[] | "\\(.sha256)  \\(.path)"' MANIFEST.json | sha256sum -c -

   or without jq::

       python3 - <<'EOF'
       import hashlib, json
       for f in json.load(open("MANIFEST.json"))["files"]:
           ok = hashlib.sha256(open(f["path"], "rb").read()).hexdigest() == f["sha256"]
           print(f["path"], "OK" if ok else "FAILED")
       EOF

3. No file was added (no output means none)::

       find . -type f ! -path ./MANIFEST.json ! -path ./MANIFEST.sig ! -path ./public_key.pem \\
           | sed 's|^\\./||' | sort | comm -23 - <(jq -r '.files[].path' MANIFEST.json | sort)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from qinglang.consent.canonical import canonical_json

FORMAT: Final = "qinglang-audit-bundle/1"
MANIFEST: Final = "MANIFEST.json"
SIGNATURE: Final = "MANIFEST.sig"
PUBLIC_KEY: Final = "public_key.pem"
BUNDLE_FILES: Final = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY})
"""The bundle's own files at its top level, never listed in the manifest."""
_CHUNK: Final = 1 << 20


class BundleError(ValueError):
    """The bundle cannot be checked at all: its manifest is missing or unreadable."""


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of the bundle: relative POSIX path, SHA-256 hex and size in bytes."""

    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """What MANIFEST.json says: the files and the signer's public key."""

    files: tuple[ManifestEntry, ...]
    public_key: str
    """Base64 of the raw 32-byte Ed25519 public key."""
    key_fingerprint: str
    format: str = FORMAT

    def to_json(self) -> bytes:
        """The canonical JSON bytes that are written and signed."""
        value = {
            "format": self.format,
            "files": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes} for f in self.files],
            "public_key": self.public_key,
            "key_fingerprint": self.key_fingerprint,
        }
        return canonical_json(value).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one file of a bundle."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `verify_bundle`: ok only when there is no problem at all."""

    ok: bool
    key_source: Literal["trusted", "included"]
    """Whether the signature was checked against the caller's trusted key or the bundle's own."""
    key_fingerprint: str | None
    """Fingerprint of the key the signature was checked against (None: no usable key)."""
    files_checked: int
    problems: tuple[Problem, ...]


# --- keys ---------------------------------------------------------------------------------


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 hex of the raw 32-byte public key."""
    return hashlib.sha256(_raw(public_key)).hexdigest()


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode`, refusing to overwrite anything."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # O_CREAT applies the umask: set the mode exactly


def generate_key(path: Path) -> str:
    """Write a new Ed25519 private key (PKCS8 PEM, 0600) and its .pub; return the fingerprint."""
    pub_path = path.with_suffix(".pub")
    if pub_path == path:
        raise ValueError(f"{path}: the private key path must not end in .pub")
    for p in (path, pub_path):
        if p.exists() or p.is_symlink():
            raise FileExistsError(f"{p} exists: refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(path, pem, 0o600)
    _write_new(pub_path, _public_pem(key.public_key()), 0o644)
    return fingerprint(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from an unencrypted PEM file (PKCS8)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo)."""
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


# --- files --------------------------------------------------------------------------------


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _walk(root: Path) -> tuple[list[str], list[str]]:
    """(regular files, other entries such as symlinks) under root, as sorted relative paths."""
    files: list[str] = []
    others: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            p = base / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                others.append(rel)
            elif name in filenames:
                if p.is_file():
                    files.append(rel)
                else:
                    others.append(rel)
    return sorted(files), sorted(others)


def sign_bundle(dir: Path, private_key_path: Path) -> Manifest:
    """Hash every file of `dir` into MANIFEST.json, sign it (MANIFEST.sig), add public_key.pem."""
    key = load_private_key(private_key_path)
    files, others = _walk(dir)
    if others:
        raise ValueError(f"{dir}: not regular files, cannot be bundled: {', '.join(others)}")
    entries = []
    for rel in files:
        if rel in BUNDLE_FILES:
            continue
        sha, size = _sha256(dir / rel)
        entries.append(ManifestEntry(path=rel, sha256=sha, bytes=size))
    public = key.public_key()
    manifest = Manifest(
        files=tuple(entries),
        public_key=base64.b64encode(_raw(public)).decode("ascii"),
        key_fingerprint=fingerprint(public),
    )
    data = manifest.to_json()
    (dir / MANIFEST).write_bytes(data)
    (dir / SIGNATURE).write_bytes(key.sign(data))
    (dir / PUBLIC_KEY).write_bytes(_public_pem(public))
    return manifest


# --- verification -------------------------------------------------------------------------


def _parse_manifest(data: bytes) -> Manifest:
    """MANIFEST.json's bytes as a Manifest; BundleError when it is not one."""
    try:
        value = json.loads(data.decode("utf-8"))
        files = tuple(
            ManifestEntry(path=str(f["path"]), sha256=str(f["sha256"]), bytes=int(f["bytes"]))
            for f in value["files"]
        )
        return Manifest(
            files=files,
            public_key=str(value["public_key"]),
            key_fingerprint=str(value["key_fingerprint"]),
            format=str(value["format"]),
        )
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{MANIFEST} is not a qinglang bundle manifest: {exc}") from exc


def _safe_path(rel: str) -> bool:
    """A manifest path must stay inside the bundle: relative, no '..', no backslash."""
    p = PurePosixPath(rel)
    return (
        bool(rel)
        and not p.is_absolute()
        and ".." not in p.parts
        and "\\" not in rel
        and p.as_posix() == rel
    )


def verify_bundle(dir: Path, trusted_key: Path | None = None) -> VerifyReport:
    """Check the signature, every listed file's hash and size, and that nothing was added."""
    try:
        data = (dir / MANIFEST).read_bytes()
    except OSError as exc:
        raise BundleError(f"{dir / MANIFEST}: cannot be read: {exc}") from exc
    manifest = _parse_manifest(data)
    problems: list[Problem] = []
    if manifest.format != FORMAT:
        problems.append(Problem(MANIFEST, f"format {manifest.format!r}, expected {FORMAT!r}"))

    # The key the signature is checked against.
    key: Ed25519PublicKey | None = None
    source: Literal["trusted", "included"] = "included" if trusted_key is None else "trusted"
    if trusted_key is not None:
        try:
            key = load_public_key(trusted_key)
        except (OSError, ValueError) as exc:
            raise BundleError(f"{trusted_key}: trusted key cannot be read: {exc}") from exc
    else:
        try:
            key = load_public_key(dir / PUBLIC_KEY)
        except (OSError, ValueError) as exc:
            problems.append(Problem(PUBLIC_KEY, f"missing or unreadable: {exc}"))
    try:
        named = base64.b64decode(manifest.public_key, validate=True)
    except (binascii.Error, ValueError):
        named = b""
        problems.append(Problem(MANIFEST, "public_key is not base64"))
    if key is not None:
        raw = _raw(key)
        if named and named != raw:
            which = "the trusted key" if source == "trusted" else PUBLIC_KEY
            problems.append(Problem(MANIFEST, f"public_key is not {which}"))
        if manifest.key_fingerprint != fingerprint(key):
            problems.append(
                Problem(MANIFEST, f"key_fingerprint {manifest.key_fingerprint} does not match")
            )

    # The signature.
    try:
        signature = (dir / SIGNATURE).read_bytes()
    except OSError:
        problems.append(Problem(SIGNATURE, "missing or unreadable"))
    else:
        if len(signature) != 64:
            problems.append(Problem(SIGNATURE, f"{len(signature)} bytes, expected 64"))
        elif key is not None:
            try:
                key.verify(signature, data)
            except InvalidSignature:
                problems.append(
                    Problem(
                        SIGNATURE,
                        f"does not verify over {MANIFEST} with the {source} key {fingerprint(key)}",
                    )
                )

    # The files.
    listed: set[str] = set()
    for entry in manifest.files:
        if not _safe_path(entry.path) or entry.path in BUNDLE_FILES:
            problems.append(Problem(entry.path, "path not allowed in a bundle manifest"))
            continue
        if entry.path in listed:
            problems.append(Problem(entry.path, "listed twice"))
            continue
        listed.add(entry.path)
        path = dir / entry.path
        if path.is_symlink() or not path.is_file():
            problems.append(Problem(entry.path, "missing"))
            continue
        try:
            sha, size = _sha256(path)
        except OSError as exc:
            problems.append(Problem(entry.path, f"unreadable: {exc}"))
            continue
        if size != entry.bytes:
            problems.append(Problem(entry.path, f"{size} bytes, manifest says {entry.bytes}"))
        if sha != entry.sha256:
            problems.append(Problem(entry.path, "SHA-256 differs from the manifest"))
    files, others = _walk(dir)
    for rel in files:
        if rel not in listed and rel not in BUNDLE_FILES:
            problems.append(Problem(rel, "not listed in the manifest"))
    for rel in others:
        problems.append(Problem(rel, "not a regular file (symlink or special file)"))

    return VerifyReport(
        ok=not problems,
        key_source=source,
        key_fingerprint=fingerprint(key) if key is not None else None,
        files_checked=len(listed),
        problems=tuple(problems),
    )
