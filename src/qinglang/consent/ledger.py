"""The tamper-evident ledger, pure part: entry bodies, link hashes and chain verification.

Algorithm (also in docs/ledger.md, for third parties):

- Each platform has one chain. Entry *n* (n = 1, 2, ...) has a **body**: the canonical JSON
  (keys sorted, no whitespace, UTF-8) of ``{"v": 1, "platform": P, "seq": n, "kind": K,
  "subject": S, "at": ISO-8601 UTC, "data": {...}, "nonce": 32 hex}``. The nonce keeps the body
  digest of one entry from being guessed from its neighbours' data.
- ``digest_n = SHA-256(body_n)`` (hex) and ``hash_n = SHA-256(bytes(hash_{n-1}) ||
  bytes(digest_n))`` over the raw 32-byte values, with ``hash_0 = 64 × "0"``.
- The head (last seq and hash) is kept apart from the entries; a chain that ends before the
  head was truncated.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qinglang.consent.canonical import canonical_json, sha256_hex

GENESIS = "0" * 64
BODY_VERSION = 1


@dataclass(frozen=True, slots=True)
class Link:
    """One stored entry as verification sees it."""

    seq: int
    body: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Break:
    """Where and why a chain fails verification (position is the 1-based sequence number)."""

    position: int
    reason: str

    def __str__(self) -> str:
        return f"position {self.position}: {self.reason}"


def make_body(
    platform_id: int,
    seq: int,
    kind: str,
    subject: str | None,
    at: datetime,
    data: Mapping[str, Any],
    nonce: str | None = None,
) -> str:
    """The canonical JSON body of entry `seq`."""
    return canonical_json(
        {
            "v": BODY_VERSION,
            "platform": platform_id,
            "seq": seq,
            "kind": kind,
            "subject": subject,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
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


def verify_chain(links: Iterable[Link], head: tuple[int, str] | None) -> Break | None:
    """The first break in a chain read in stored order, or None when it is intact up to `head`.

    Detects a changed body or hash (recomputed hash differs), a deleted, inserted or reordered
    entry (sequence or previous-hash mismatch) and a truncated tail (chain ends before the head).
    """
    prev = GENESIS
    expected = 1
    for link in links:
        if link.seq != expected:
            what = "missing entry" if link.seq > expected else "entry out of order or inserted"
            return Break(expected, f"{what} (found sequence {link.seq})")
        try:
            embedded = json.loads(link.body).get("seq")
        except (ValueError, AttributeError):
            return Break(expected, "body is not a JSON object")
        if embedded != link.seq:
            return Break(expected, f"body says sequence {embedded}, stored at {link.seq}")
        if link.prev_hash != prev:
            return Break(expected, "previous hash does not match the preceding entry")
        if link_hash(prev, body_digest(link.body)) != link.hash:
            return Break(expected, "entry was changed (hash does not match its body)")
        prev = link.hash
        expected += 1
    last = expected - 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq > last:
            return Break(last + 1, f"chain truncated: ends at {last}, head is at {head_seq}")
        if head_seq < last:
            return Break(head_seq + 1, f"entries after the head ({head_seq}) were appended")
        if head_hash != prev:
            return Break(last, "last entry does not match the recorded head hash")
    return None
