"""The tamper-evident ledger, pure part: entry bodies, link hashes, chain and bundle verification.

Algorithm (also in docs/ledger.md, for third parties):

- Each platform has one chain. Entry *n* (n = 1, 2, ...) has a **body**: the canonical JSON
  (keys sorted, no whitespace, UTF-8) of ``{"v": 1, "platform": P, "seq": n, "kind": K,
  "subject": S, "at": ISO-8601 UTC, "data": {...}, "nonce": 32 hex}``. The nonce keeps the body
  digest of one entry from being guessed from its neighbours' data.
- ``digest_n = SHA-256(body_n)`` (hex) and ``hash_n = SHA-256(bytes(hash_{n-1}) ||
  bytes(digest_n))`` over the raw 32-byte values, with ``hash_0 = 64 × "0"``.
- The head (last seq and hash) is kept apart from the entries; a chain that ends before the
  head was truncated, one that goes on past it was extended behind the ledger's back.

A **proof bundle** (:func:`check_bundle`) shows one child's entries in full and every other
entry as its digest only, so a third party can recompute the chain up to the head.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qinglang.consent.canonical import canonical_json, sha256_hex

GENESIS = "0" * 64
BODY_VERSION = 1
BUNDLE_FORMAT = "qinglang.ledger.proof"
BUNDLE_VERSION = 1

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Link:
    """One stored entry as verification sees it.

    ``columns`` holds the stored copies of body fields (``kind``, ``subject``, ``at`` as in the
    body); each must equal the body's value, so a changed column is caught too.
    """

    seq: int
    body: str
    prev_hash: str
    hash: str
    columns: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Break:
    """Where and why a chain fails verification (position is the 1-based sequence number)."""

    position: int
    reason: str

    def __str__(self) -> str:
        return f"position {self.position}: {self.reason}"


class BundleError(ValueError):
    """A file that is not a proof bundle at all (wrong format, version or top-level fields)."""


def iso_utc(at: datetime) -> str:
    """The body's form of a timestamp: ISO 8601 in UTC with microseconds."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime given to the ledger; attach a timezone")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def make_body(
    platform_id: int,
    seq: int,
    kind: str,
    subject: str | None,
    at: datetime,
    data: Mapping[str, Any],
    nonce: str | None = None,
) -> str:
    """The canonical JSON body of entry `seq` (aware `at`; `data` plain JSON, finite numbers)."""
    if seq < 1:
        raise ValueError(f"ledger sequence numbers start at 1, not {seq}")
    if not _finite(data):
        raise ValueError("ledger data must not contain NaN or infinite numbers")
    return canonical_json(
        {
            "v": BODY_VERSION,
            "platform": platform_id,
            "seq": seq,
            "kind": kind,
            "subject": subject,
            "at": iso_utc(at),
            "data": dict(data),
            "nonce": nonce or secrets.token_hex(16),
        }
    )


def body_digest(body: str) -> str:
    """SHA-256 (hex) of a body."""
    return sha256_hex(body)


def link_hash(prev_hash: str, digest: str) -> str:
    """SHA-256 (hex) of the previous hash's bytes followed by the body digest's bytes."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + bytes.fromhex(digest)).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_body(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, str):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _sequence_break(found: Any, expected: int) -> Break:
    if _is_int(found) and found > expected:
        return Break(expected, f"entry {expected} is missing (found sequence {found} next)")
    return Break(expected, f"found sequence {found!r} where {expected} belongs (out of order)")


def _body_break(
    body: Any, seq: int, platform_id: int | None, child: str | None = None
) -> tuple[dict[str, Any] | None, Break | None]:
    parsed = _parse_body(body)
    if parsed is None:
        return None, Break(seq, "body is not a JSON object")
    embedded = parsed.get("seq")
    if not _is_int(embedded) or embedded != seq:
        return parsed, Break(seq, f"body says sequence {embedded!r} but is stored at {seq}")
    if platform_id is not None and parsed.get("platform") != platform_id:
        found = parsed.get("platform")
        return parsed, Break(seq, f"body is for platform {found!r}, not {platform_id}")
    if child is not None and parsed.get("subject") != child:
        return parsed, Break(seq, f"body is about {parsed.get('subject')!r}, not {child!r}")
    return parsed, None


def _prev_name(seq: int) -> str:
    return "the genesis hash" if seq == 1 else f"the hash of entry {seq - 1}"


def verify_chain(
    links: Iterable[Link], head: tuple[int, str] | None, *, platform_id: int | None = None
) -> Break | None:
    """The first break in a chain read in stored order, or None when it is intact up to `head`.

    `head` is the recorded (seq, hash), None when none is recorded (then the chain must be
    empty). Detects a changed body, hash or column (recomputed values differ), a deleted,
    inserted or reordered entry (sequence, embedded sequence or previous-hash mismatch), a
    truncated tail (chain ends before the head) and entries past the head. `links` is consumed
    lazily and reading stops at the first break.
    """
    head_seq, head_hash = head if head is not None else (0, GENESIS)
    prev = GENESIS
    n = 0
    for link in links:
        n += 1
        if link.seq != n:
            return _sequence_break(link.seq, n)
        parsed, bad = _body_break(link.body, n, platform_id)
        if bad is not None or parsed is None:
            return bad
        if link.prev_hash != prev:
            return Break(n, f"previous hash does not match {_prev_name(n)}")
        if link_hash(prev, body_digest(link.body)) != link.hash:
            return Break(n, "entry was changed (its hash does not match its body)")
        for column, value in (link.columns or {}).items():
            if parsed.get(column) != value:
                return Break(n, f"stored {column} {value!r} differs from the body's")
        if n > head_seq:
            if head is None:
                return Break(n, "no head is recorded but the chain has entries")
            return Break(n, f"entry past the recorded head (sequence {head_seq})")
        if n == head_seq and link.hash != head_hash:
            return Break(n, "entry does not match the recorded head hash")
        prev = link.hash
    if n < head_seq:
        return Break(n + 1, f"chain truncated: it ends at {n} but the head is at {head_seq}")
    return None


def _bundle_fields(bundle: Any) -> tuple[int, str, int, str, list[Any]]:
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a ledger proof bundle (format is not {BUNDLE_FORMAT!r})")
    if bundle.get("version") != BUNDLE_VERSION:
        raise BundleError(f"unsupported bundle version {bundle.get('version')!r}")
    platform: Any = bundle.get("platform")
    child: Any = bundle.get("child")
    head: Any = bundle.get("head")
    entries: Any = bundle.get("entries")
    if not _is_int(platform):
        raise BundleError("bundle field 'platform' must be an integer id")
    if not isinstance(child, str):
        raise BundleError("bundle field 'child' must be a string")
    if not isinstance(entries, list):
        raise BundleError("bundle field 'entries' must be a list")
    if not (
        isinstance(head, dict)
        and _is_int(head.get("seq"))
        and isinstance(head.get("hash"), str)
        and head["seq"] >= 0
    ):
        raise BundleError("bundle field 'head' must be {'seq': int, 'hash': hex}")
    return platform, child, head["seq"], head["hash"], entries


def check_bundle(bundle: Any, anchors: Mapping[int, str] | None = None) -> Break | None:
    """The first break in a proof bundle (parsed JSON), or None when it checks out.

    Each entry is ``{"seq", "hash"}`` plus either ``"body"`` (must be about the bundle's child,
    on its platform, at its sequence) or ``"digest"``. The chain is recomputed from the digests
    (a body's digest is computed here) and must match every listed hash, the head and each
    ``anchors[seq]`` (a head hash published earlier). Raises BundleError when it is not a bundle.
    """
    platform, child, head_seq, head_hash, entries = _bundle_fields(bundle)
    pending = dict(anchors or {})
    h = GENESIS
    n = 0
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            return Break(n, "entry is not a JSON object")
        if entry.get("seq") != n or not _is_int(entry.get("seq")):
            return _sequence_break(entry.get("seq"), n)
        body, digest = entry.get("body"), entry.get("digest")
        if body is not None and digest is not None:
            return Break(n, "entry has both a body and a digest")
        if body is not None:
            _, bad = _body_break(body, n, platform, child)
            if bad is not None:
                return bad
            digest = body_digest(body)
        elif not (isinstance(digest, str) and _HEX64.fullmatch(digest)):
            return Break(n, "entry has neither a body nor a valid digest")
        h = link_hash(h, digest)
        if entry.get("hash") != h:
            return Break(n, "entry was changed (recomputed hash differs from the listed one)")
        if n in pending and pending.pop(n) != h:
            return Break(n, "hash differs from the anchor given for this position")
        if n > head_seq:
            return Break(n, f"entry past the bundle's head (sequence {head_seq})")
        if n == head_seq and h != head_hash:
            return Break(n, "last hash does not match the bundle's head hash")
    if n < head_seq:
        return Break(n + 1, f"bundle truncated: it ends at {n} but the head is at {head_seq}")
    if pending:
        seq = min(pending)
        return Break(seq, f"anchor at {seq} is past the bundle's head ({head_seq})")
    return None
