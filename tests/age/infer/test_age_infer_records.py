"""Records: per-record errors name the field; good records parse; nothing else escapes."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang.age.infer import AgeRecord, RecordError, parse_record, score_record
from qinglang.age.infer.records import read_records


def test_blog_shaped_record() -> None:
    r = parse_record(
        {"user_id": 12, "age": 15, "posts": [{"date": "2004-05-29 00:00:00", "text": "hi"}]}
    )
    assert r == AgeRecord("12", 15, posts=r.posts)
    assert r.posts[0].date == date(2004, 5, 29)
    assert r.reference_date() == date(2004, 5, 29)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"age": 15}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"user_id": "a", "age": "fifteen"}, "age"),
        ({"user_id": "a", "age": -3}, "age"),
        ({"user_id": "a", "age": 999}, "age"),
        ({"user_id": "a", "bio": 5}, "bio"),
        ({"user_id": "a", "posts": "text"}, "posts"),
        ({"user_id": "a", "posts": [3]}, "posts[0]"),
        ({"user_id": "a", "posts": [{"text": 3}]}, "posts[0].text"),
        ({"user_id": "a", "posts": [{"text": "x", "date": "yesterday"}]}, "posts[0].date"),
        ({"user_id": "a", "events": [{"at": "noon"}]}, "events[0].at"),
        ({"user_id": "a", "friends_minor_share": 2}, "friends_minor_share"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_records_name_the_field(record: Any, field: str) -> None:
    with pytest.raises(RecordError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_record(record)


def test_empty_posts_and_missing_fields_are_fine() -> None:
    est = score_record({"user_id": "x", "posts": []})
    assert 0.0 < est.p_under18 < 1.0
    assert est.signals == ()


def test_jsonl_reports_each_bad_line_and_keeps_the_rest() -> None:
    lines = [
        json.dumps({"user_id": "a", "age": 14, "bio": "初二"}),
        "not json",
        json.dumps({"user_id": "b", "age": 400}),
        "",
        json.dumps({"user_id": "c", "age": 30, "bio": "打工人"}),
        b"\xff\xfe",
    ]
    got = list(read_records(lines))
    kinds = [(n, type(x).__name__) for n, x in got]
    assert kinds == [
        (1, "AgeRecord"),
        (2, "RecordError"),
        (3, "RecordError"),
        (5, "AgeRecord"),
        (6, "RecordError"),
    ]
    assert "age" in str(got[2][1])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_fields = st.sampled_from(
    [
        "user_id",
        "age",
        "nickname",
        "bio",
        "posts",
        "comments",
        "events",
        "friends_minor_share",
        "as_of",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_fields, _json))
def test_any_json_either_scores_or_raises_record_error(d: dict[str, Any]) -> None:
    try:
        est = score_record(d)
    except RecordError:
        return
    assert 0.0 <= est.p_under14 <= est.p_under18 <= 1.0


def test_doctests_of_the_infer_package() -> None:
    import doctest

    import qinglang.age.infer as pkg
    from qinglang.age.infer import records, signals

    for module in (pkg, records, signals):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__
