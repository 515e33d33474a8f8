"""The pure ledger: canonical bodies, link hashes, chain verification and proof bundles."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang.consent.ledger import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    GENESIS,
    Break,
    BundleError,
    Link,
    body_digest,
    check_bundle,
    iso_utc,
    link_hash,
    make_body,
    verify_chain,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SUBJECTS = (None, "c1", "c2")


def entry(platform: int, seq: int, prev: str, subject: str | None = "c1", n: int = 0) -> Link:
    """A well-formed link after `prev`."""
    at = T0 + timedelta(minutes=seq)
    body = make_body(platform, seq, "consent.granted", subject, at, {"n": n})
    columns = {"kind": "consent.granted", "subject": subject, "at": iso_utc(at)}
    return Link(seq, body, prev, link_hash(prev, body_digest(body)), columns)


def chain(n: int, platform: int = 1) -> list[Link]:
    """A valid chain of `n` entries about c1, c2 and nobody in turn."""
    links: list[Link] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        links.append(entry(platform, seq, prev, SUBJECTS[seq % 3], seq))
        prev = links[-1].hash
    return links


def head_of(links: list[Link]) -> tuple[int, str]:
    return (links[-1].seq, links[-1].hash) if links else (0, GENESIS)


def position(links: list[Link], head: tuple[int, str] | None) -> int | None:
    brk = verify_chain(links, head, platform_id=1)
    return None if brk is None else brk.position


# --- bodies and hashes -------------------------------------------------------------------


def test_body_is_canonical_json_with_the_documented_fields() -> None:
    at = datetime(2026, 3, 2, 18, 15, 30, 123456, tzinfo=timezone(timedelta(hours=8)))
    body = make_body(7, 3, "consent.granted", "孩子-1", at, {"b": 1, "a": [1, "é"]}, "ab" * 16)
    assert body == (
        '{"at":"2026-03-02T10:15:30.123456+00:00","data":{"a":[1,"é"],"b":1},'
        '"kind":"consent.granted","nonce":"abababababababababababababababab","platform":7,'
        '"seq":3,"subject":"孩子-1","v":1}'
    )
    assert body_digest(body) == hashlib.sha256(body.encode("utf-8")).hexdigest()


def test_nonce_is_random_so_digests_cannot_be_guessed() -> None:
    bodies = {make_body(1, 1, "k", "c1", T0, {}) for _ in range(20)}
    assert len(bodies) == 20
    nonce = json.loads(bodies.pop())["nonce"]
    assert len(nonce) == 32 and int(nonce, 16) >= 0


def test_link_hash_is_over_raw_bytes() -> None:
    digest = body_digest("x")
    expected = hashlib.sha256(bytes(32) + bytes.fromhex(digest)).hexdigest()
    assert link_hash(GENESIS, digest) == expected
    assert link_hash(GENESIS, digest) != hashlib.sha256((GENESIS + digest).encode()).hexdigest()


@pytest.mark.parametrize(
    ("seq", "at", "data"),
    [
        (0, T0, {}),
        (1, datetime(2026, 3, 1), {}),
        (1, T0, {"x": float("nan")}),
        (1, T0, {"x": [1.0, float("inf")]}),
    ],
)
def test_bad_bodies_are_refused(seq: int, at: datetime, data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_body(1, seq, "k", None, at, data)


# --- chain verification ------------------------------------------------------------------


def test_intact_chains_verify() -> None:
    assert verify_chain([], None) is None
    assert verify_chain([], (0, GENESIS)) is None
    links = chain(20)
    assert verify_chain(links, head_of(links), platform_id=1) is None
    assert verify_chain(iter(links), head_of(links)) is None


def test_break_names_position_and_reason() -> None:
    links = chain(5)
    links[2] = replace(links[2], body=links[2].body.replace('"n":3', '"n":4'))
    brk = verify_chain(links, head_of(links))
    assert brk == Break(3, "entry was changed (its hash does not match its body)")
    assert str(brk) == "position 3: entry was changed (its hash does not match its body)"


@pytest.mark.parametrize(
    ("mutate", "expected", "reason"),
    [
        (lambda ls: ls.pop(3), 4, "entry 4 is missing (found sequence 5 next)"),
        (lambda ls: ls.__delitem__(slice(7, None)), 8, "chain truncated: it ends at 7"),
        (
            lambda ls: ls.__setitem__(2, replace(ls[2], prev_hash=ls[0].hash)),
            3,
            "previous hash does not match the hash of entry 2",
        ),
        (
            lambda ls: ls.__setitem__(0, replace(ls[0], prev_hash="1" * 64)),
            1,
            "previous hash does not match the genesis hash",
        ),
        (
            lambda ls: ls.__setitem__(4, replace(ls[4], columns={"subject": "c9"})),
            5,
            "stored subject 'c9' differs from the body's",
        ),
        (
            lambda ls: ls.__setitem__(4, replace(ls[4], body="[5]")),
            5,
            "body is not a JSON object",
        ),
        (
            lambda ls: ls.__setitem__(1, replace(ls[1], seq=1)),
            2,
            "found sequence 1 where 2 belongs",
        ),
    ],
)
def test_each_kind_of_break(mutate: Any, expected: int, reason: str) -> None:
    links = chain(10)
    head = head_of(links)
    mutate(links)
    brk = verify_chain(links, head, platform_id=1)
    assert brk is not None and brk.position == expected and brk.reason.startswith(reason)


def test_head_checks() -> None:
    links = chain(6)
    assert verify_chain(links, (6, "f" * 64)) == Break(
        6, "entry does not match the recorded head hash"
    )
    assert verify_chain(links, (4, links[3].hash)) == Break(
        5, "entry past the recorded head (sequence 4)"
    )
    assert verify_chain(links, None) == Break(1, "no head is recorded but the chain has entries")
    assert verify_chain(links, (9, "f" * 64)) == Break(
        7, "chain truncated: it ends at 6 but the head is at 9"
    )


def test_entry_of_another_platform_is_refused() -> None:
    links = chain(3, platform=2)
    brk = verify_chain(links, head_of(links), platform_id=1)
    assert brk == Break(1, "body is for platform 2, not 1")


def test_reading_stops_at_the_first_break() -> None:
    links = chain(10)
    links[1] = replace(links[1], hash="0" * 64)
    read: list[int] = []

    def stream() -> Any:
        for link in links:
            read.append(link.seq)
            yield link

    assert position(list(stream()), head_of(links)) == 2
    read.clear()
    assert verify_chain(stream(), head_of(links)) is not None
    assert read == [1, 2]


# --- property: a single mutation of any kind is reported exactly where expected ----------

KINDS = (
    "edit_body",
    "edit_body_rehash",
    "edit_hash",
    "edit_prev",
    "edit_column",
    "delete",
    "insert_forged",
    "insert_naive",
    "swap_seq",
    "swap_stream",
    "truncate",
    "append_past_head",
    "head_hash",
)


def _shift(links: list[Link], start: int) -> list[Link]:
    """Renumber entries from `start` on one up, to make room (bodies unchanged)."""
    return [replace(x, seq=x.seq + 1) if x.seq >= start else x for x in links]


def mutate(links: list[Link], kind: str, draw: Any) -> tuple[list[Link], tuple[int, str], int]:
    """Apply one tampering; return the stored chain (in stored order), head and expected break."""
    n = len(links)
    head = head_of(links)
    links = list(links)
    k = draw(st.integers(1, n))
    old = links[k - 1]
    if kind == "edit_body":
        forged = entry(1, k, old.prev_hash, "c1", n=-1)
        links[k - 1] = replace(old, body=forged.body)
        return links, head, k
    if kind == "edit_body_rehash":
        links[k - 1] = entry(1, k, old.prev_hash, "c1", n=-1)
        return links, head, k + 1 if k < n else n
    if kind == "edit_hash":
        links[k - 1] = replace(old, hash=hashlib.sha256(old.hash.encode()).hexdigest())
        return links, head, k
    if kind == "edit_prev":
        links[k - 1] = replace(old, prev_hash="1" * 64)
        return links, head, k
    if kind == "edit_column":
        links[k - 1] = replace(old, columns={**(old.columns or {}), "kind": "consent.refused"})
        return links, head, k
    if kind == "delete":
        del links[k - 1]
        return links, head, k
    if kind == "insert_forged":
        k = draw(st.integers(1, n + 1))
        prev = links[k - 2].hash if k > 1 else GENESIS
        shifted = _shift(links, k)
        forged = entry(1, k, prev, "c2", n=-1)
        # Consistent itself: caught at the displaced entry after it, at the head, or past it.
        return sorted([*shifted, forged], key=lambda x: x.seq), head, k + 1 if k < n else k
    if kind == "insert_naive":
        shifted = _shift(links, k)
        forged = entry(1, k, "2" * 64, "c2", n=-1)
        return sorted([*shifted, forged], key=lambda x: x.seq), head, k
    if kind == "swap_seq":
        i, j = sorted(draw(st.lists(st.integers(1, n), min_size=2, max_size=2, unique=True)))
        links[i - 1], links[j - 1] = replace(links[j - 1], seq=i), replace(links[i - 1], seq=j)
        return links, head, i
    if kind == "swap_stream":
        i, j = sorted(draw(st.lists(st.integers(1, n), min_size=2, max_size=2, unique=True)))
        links[i - 1], links[j - 1] = links[j - 1], links[i - 1]
        return links, head, i
    if kind == "truncate":
        return links[: k - 1], head, k
    if kind == "append_past_head":
        return [*links, entry(1, n + 1, links[-1].hash)], head, n + 1
    assert kind == "head_hash"
    return links, (head[0], hashlib.sha256(head[1].encode()).hexdigest()), n


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_single_mutation_is_found_at_its_position(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    n = data.draw(st.integers(2 if kind.startswith("swap") else 1, 25), label="n")
    stored, head, expected = mutate(chain(n), kind, data.draw)
    brk = verify_chain(stored, head, platform_id=1)
    assert brk is not None, kind
    assert brk.position == expected, (kind, brk)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["consent.granted", "guardian.verified", "notice.published"]),
            st.none() | st.text(min_size=1, max_size=12),
            st.dictionaries(
                st.text(max_size=8),
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                max_size=4,
            ),
        ),
        max_size=15,
    )
)
def test_any_honest_chain_verifies(events: list[tuple[str, str | None, dict[str, Any]]]) -> None:
    links: list[Link] = []
    prev = GENESIS
    for seq, (kind, subject, data) in enumerate(events, 1):
        body = make_body(3, seq, kind, subject, T0, data)
        links.append(Link(seq, body, prev, link_hash(prev, body_digest(body))))
        prev = links[-1].hash
    assert verify_chain(links, head_of(links) if links else None, platform_id=3) is None


# --- proof bundles -----------------------------------------------------------------------


def bundle_of(links: list[Link], child: str) -> dict[str, Any]:
    """What store.ledger.build_bundle writes, from a list of links."""
    entries: list[dict[str, Any]] = []
    for link in links:
        subject = json.loads(link.body)["subject"]
        shown = {"body": link.body} if subject == child else {"digest": body_digest(link.body)}
        entries.append({"seq": link.seq, **shown, "hash": link.hash})
    seq, h = head_of(links)
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "platform": 1,
        "platform_slug": "demo",
        "child": child,
        "generated_at": iso_utc(T0),
        "head": {"seq": seq, "hash": h},
        "entries": entries,
    }


def bundle_position(bundle: Any, anchors: dict[int, str] | None = None) -> int | None:
    brk = check_bundle(bundle, anchors)
    return None if brk is None else brk.position


def test_bundle_shows_only_the_childs_bodies_and_checks_out() -> None:
    links = chain(12)
    bundle = bundle_of(links, "c1")
    assert check_bundle(bundle) is None
    shown = [e["seq"] for e in bundle["entries"] if "body" in e]
    assert shown == [1, 4, 7, 10]
    assert '"c2"' not in json.dumps(bundle)


def _edit(bundle: dict[str, Any], change: Any) -> dict[str, Any]:
    edited = copy.deepcopy(bundle)
    change(edited)
    return edited


def _reword(e: dict[str, Any]) -> None:
    e["body"] = e["body"].replace("consent.granted", "consent.refused")


@pytest.mark.parametrize(
    ("change", "expected", "reason"),
    [
        (lambda b: _reword(b["entries"][3]), 4, "entry was changed"),
        (lambda b: b["entries"][5].update(digest="ab" * 32), 6, "entry was changed"),
        (lambda b: b["entries"].pop(5), 6, "entry 6 is missing"),
        (lambda b: b["entries"][5].pop("digest"), 6, "entry has neither a body nor a valid"),
        (lambda b: b["entries"][5].update(digest="zz"), 6, "entry has neither a body nor a valid"),
        (lambda b: b["entries"][3].update(digest="ab" * 32), 4, "entry has both"),
        (lambda b: b["entries"].pop(), 12, "bundle truncated: it ends at 11"),
        (lambda b: b["head"].update(hash="ab" * 32), 12, "last hash does not match"),
        (lambda b: b["head"].update(seq=13), 13, "bundle truncated"),
        (lambda b: b["head"].update(seq=11), 11, "last hash does not match"),
        (lambda b: b.update(child="c2"), 1, "body is about 'c1', not 'c2'"),
        (lambda b: b.update(platform=2), 1, "body is for platform 1, not 2"),
        (lambda b: b["entries"][4].pop("hash"), 5, "entry was changed"),
        (lambda b: b["entries"][4].update(seq="5"), 5, "found sequence '5' where 5 belongs"),
        (lambda b: b["entries"].__setitem__(4, []), 5, "entry is not a JSON object"),
    ],
)
def test_bundle_tampering_is_found_at_its_position(change: Any, expected: int, reason: str) -> None:
    bundle = bundle_of(chain(12), "c1")
    brk = check_bundle(_edit(bundle, change))
    assert brk is not None and brk.position == expected and brk.reason.startswith(reason), brk


def test_reordered_bundle_entries() -> None:
    bundle = bundle_of(chain(12), "c1")
    entries = bundle["entries"]
    entries[2], entries[6] = entries[6], entries[2]
    assert bundle_position(bundle) == 3


def test_anchors() -> None:
    links = chain(12)
    bundle = bundle_of(links, "c1")
    assert check_bundle(bundle, {5: links[4].hash, 12: links[11].hash}) is None
    assert bundle_position(bundle, {5: links[5].hash}) == 5
    assert check_bundle(bundle, {20: "ab" * 32}) == Break(
        20, "anchor at 20 is past the bundle's head (12)"
    )


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        ([], "not a ledger proof bundle"),
        ({"format": "x"}, "not a ledger proof bundle"),
        ({"format": BUNDLE_FORMAT, "version": 2}, "unsupported bundle version 2"),
        ({"format": BUNDLE_FORMAT, "version": 1, "platform": "1"}, "'platform' must be"),
        ({"format": BUNDLE_FORMAT, "version": 1, "platform": 1, "child": 3}, "'child' must be"),
        (
            {"format": BUNDLE_FORMAT, "version": 1, "platform": 1, "child": "c", "entries": {}},
            "'entries' must be a list",
        ),
        (
            {
                "format": BUNDLE_FORMAT,
                "version": 1,
                "platform": 1,
                "child": "c",
                "entries": [],
                "head": {"seq": "1"},
            },
            "'head' must be",
        ),
    ],
)
def test_not_a_bundle(bundle: Any, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        check_bundle(bundle)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_single_bundle_change_is_found_at_its_position(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 20), label="n")
    links = chain(n)
    bundle = bundle_of(links, "c1")
    k = data.draw(st.integers(1, n), label="k")
    entry_k = bundle["entries"][k - 1]
    how = data.draw(st.sampled_from(["flip", "drop", "listed_hash"]), label="how")
    if how == "drop":
        del bundle["entries"][k - 1]
    elif how == "listed_hash":
        entry_k["hash"] = hashlib.sha256(entry_k["hash"].encode()).hexdigest()
    elif "body" in entry_k:
        entry_k["body"] = entry_k["body"].replace('"v":1', '"v":2')
    else:
        entry_k["digest"] = hashlib.sha256(entry_k["digest"].encode()).hexdigest()
    assert bundle_position(bundle) == k
