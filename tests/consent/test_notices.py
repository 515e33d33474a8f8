"""Notices: required elements, hashing, and which consents a new version makes stale."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.consent.notices import (
    NoticeDoc,
    NoticeError,
    check_publishable,
    content_hash,
    missing_elements,
    parse_notice,
    stale_pairs,
)
from qinglang.policy import load_pack

POLICY = load_pack("cn")
REQUIRED = list(POLICY.require("consent.notice_required_elements", 0).value)  # type: ignore[arg-type]


def doc(*items: dict[str, Any], elements: dict[str, str] | None = None) -> NoticeDoc:
    body = {
        "title": "t",
        "elements": elements if elements is not None else {e: "text" for e in REQUIRED},
        "items": list(items),
    }
    return parse_notice(body)


def item(
    purpose: str, *categories: str, scope: str = "s", audience: str | None = None
) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "categories": list(categories),
        "method": "m",
        "scope": scope,
        "audience": audience,
    }


def test_every_required_element_of_the_pack_is_checked() -> None:
    assert len(REQUIRED) == 9
    for name in REQUIRED:
        elements = {e: "text" for e in REQUIRED if e != name}
        d = doc(item("p", "c"), elements=elements)
        assert missing_elements(d, POLICY, "child") == [name]
        with pytest.raises(NoticeError, match=name) as exc:
            check_publishable(d, POLICY, "child")
        assert exc.value.field == "body.elements"
    # A general (adult) notice is not held to the child notice's list.
    assert missing_elements(doc(item("p", "c"), elements={}), POLICY, "general") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "t", "elements": {}, "items": []}, "body.items"),
        (
            {"title": "t", "elements": {}, "items": [item("p", "c"), item("p", "d")]},
            "body.items.1.purpose",
        ),
        (
            {"title": "t", "elements": {}, "items": [item("p", "c", audience="galaxy")]},
            "body.items.0.audience",
        ),
        ({"title": "t", "elements": {}, "items": [item("Bad Name", "c")]}, "body.items.0.purpose"),
        ({"elements": {}, "items": [item("p", "c")]}, "body.title"),
        ({"title": "t", "elements": {}, "items": [item("p", "c")], "extra": 1}, "body.extra"),
    ],
)
def test_bad_notice_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(NoticeError) as exc:
        parse_notice(body)
    assert exc.value.field == field


def test_hash_is_canonical() -> None:
    a = doc(item("p", "c"), item("q", "d"))
    b = parse_notice(copy.deepcopy(a.model_dump(mode="json")))
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(doc(item("p", "c", scope="other"), item("q", "d")))


def test_staleness_rules() -> None:
    v1 = doc(item("publish", "content", audience="followers"), item("nearby", "location"))
    assert stale_pairs(v1, v1) == set()
    # A new purpose for the same category makes that category's consents stale, not others.
    v2 = doc(
        item("publish", "content", audience="followers"),
        item("recommend", "content", audience="public"),
        item("nearby", "location"),
    )
    assert stale_pairs(v1, v2) == {("publish", "content")}
    # A changed scope, a removed category or a removed purpose.
    v3 = doc(item("publish", "content", audience="public"), item("nearby", "location"))
    assert stale_pairs(v1, v3) == {("publish", "content")}
    v4 = doc(item("publish", "content", audience="followers"))
    assert stale_pairs(v1, v4) == {("nearby", "location")}
    v5 = doc(item("publish", "content", audience="followers"), item("nearby", "face"))
    assert stale_pairs(v1, v5) == {("nearby", "location")}


names = st.sampled_from(["a", "b", "c", "d"])


@st.composite
def notices(draw: st.DrawFn) -> NoticeDoc:
    purposes = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    return doc(
        *(
            item(
                p,
                *draw(st.lists(names, min_size=1, max_size=3, unique=True)),
                scope=draw(st.sampled_from(["s", "t"])),
            )
            for p in purposes
        )
    )


@given(notices(), notices())
def test_stale_pairs_properties(old: NoticeDoc, new: NoticeDoc) -> None:
    stale = stale_pairs(old, new)
    assert stale <= old.pairs()
    assert stale_pairs(old, old) == set()
    for purpose, category in old.pairs() - stale:
        # What stays valid is offered unchanged and its category serves the same purposes.
        o, n = old.item(purpose), new.item(purpose)
        assert o is not None and n is not None and category in n.categories and o.key() == n.key()
        assert _uses(old, category) == _uses(new, category)


def _uses(d: NoticeDoc, category: str) -> set[str]:
    return {it.purpose for it in d.items if category in it.categories}
