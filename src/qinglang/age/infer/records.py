"""Input records for age inference, parsed one at a time with a clear error per bad record.

A record is one JSON object: ``user_id`` (string or integer), optionally ``age`` (verified age
in years, the label for training and evaluation), ``nickname``, ``bio``, ``background`` (text),
``posts`` (a list of ``{date, text}``; comments may be given the same way as ``comments``),
``events`` (a list of ``{at, kind, category?}``: activity with an ISO instant),
``friends_minor_share`` (0..1: share of friends whose age is known to be under 18),
``as_of`` (ISO date of the snapshot: ages stated in text are read as of it).

>>> r = parse_record({"user_id": 7, "age": 15, "posts": [{"date": "2004-05-01", "text": "hi"}]})
>>> r.user_id, r.age, r.posts[0].text
('7', 15, 'hi')
>>> parse_record({"user_id": "x", "age": 400})
Traceback (most recent call last):
    ...
qinglang.age.infer.records.RecordError: age: 400 is not a plausible age (0..120)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

__all__ = ["AgeRecord", "Event", "Post", "RecordError", "parse_record", "read_records"]

MAX_AGE: Final = 120
MAX_TEXT: Final = 1 << 20
"""Characters kept per text field (longer texts are cut, not refused)."""


class RecordError(ValueError):
    """A record that cannot be scored; the message names the field."""


@dataclass(frozen=True, slots=True)
class Post:
    """A post or comment: its text and the date it was written (None if not given)."""

    text: str
    date: date | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """An activity event: when (aware or naive local instant), what kind, content category."""

    at: datetime
    kind: str = "active"
    category: str = ""


@dataclass(frozen=True, slots=True)
class AgeRecord:
    """One account's evidence of age, and its verified age when known (for training)."""

    user_id: str
    age: int | None = None
    nickname: str = ""
    bio: str = ""
    background: str = ""
    posts: tuple[Post, ...] = ()
    comments: tuple[Post, ...] = ()
    events: tuple[Event, ...] = ()
    friends_minor_share: float | None = None
    as_of: date | None = None

    @property
    def profile_text(self) -> str:
        """Nickname, bio and background joined by newlines."""
        return "\n".join(t for t in (self.nickname, self.bio, self.background) if t)

    @property
    def post_text(self) -> str:
        """All posts and comments joined by newlines."""
        return "\n".join(p.text for p in (*self.posts, *self.comments))

    def reference_date(self) -> date | None:
        """`as_of`, else the latest post date: ages stated in text are read as of it."""
        if self.as_of is not None:
            return self.as_of
        dates = [p.date for p in (*self.posts, *self.comments) if p.date is not None]
        return max(dates) if dates else None


def _text(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise RecordError(f"{key}: expected a string, got {type(v).__name__}")
    return v[:MAX_TEXT]


def _date(v: Any, where: str) -> date | None:
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise RecordError(f"{where}: expected an ISO date string, got {type(v).__name__}")
    try:
        return datetime.fromisoformat(v.strip()).date()
    except ValueError:
        raise RecordError(f"{where}: not an ISO date: {v[:40]!r}") from None


def _posts(d: dict[str, Any], key: str) -> tuple[Post, ...]:
    v = d.get(key)
    if v is None:
        return ()
    if not isinstance(v, list):
        raise RecordError(f"{key}: expected a list, got {type(v).__name__}")
    out = []
    for i, p in enumerate(v):
        where = f"{key}[{i}]"
        if isinstance(p, str):
            out.append(Post(p[:MAX_TEXT]))
            continue
        if not isinstance(p, dict):
            raise RecordError(f"{where}: expected an object {{date, text}}, got {type(p).__name__}")
        text = p.get("text")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise RecordError(f"{where}.text: expected a string, got {type(text).__name__}")
        out.append(Post(text[:MAX_TEXT], _date(p.get("date"), f"{where}.date")))
    return tuple(out)


def _events(d: dict[str, Any]) -> tuple[Event, ...]:
    v = d.get("events")
    if v is None:
        return ()
    if not isinstance(v, list):
        raise RecordError(f"events: expected a list, got {type(v).__name__}")
    out = []
    for i, e in enumerate(v):
        where = f"events[{i}]"
        if not isinstance(e, dict):
            raise RecordError(f"{where}: expected an object {{at, kind}}, got {type(e).__name__}")
        at = e.get("at")
        if not isinstance(at, str):
            raise RecordError(f"{where}.at: expected an ISO instant string")
        try:
            t = datetime.fromisoformat(at.strip())
        except ValueError:
            raise RecordError(f"{where}.at: not an ISO instant: {at[:40]!r}") from None
        kind, cat = e.get("kind", "active"), e.get("category", "")
        if not isinstance(kind, str) or not isinstance(cat, str):
            raise RecordError(f"{where}: kind and category must be strings")
        out.append(Event(t, kind, cat))
    return tuple(out)


def parse_record(d: Any) -> AgeRecord:
    """Validate one decoded JSON object into an `AgeRecord`; RecordError names the bad field."""
    if isinstance(d, AgeRecord):
        return d
    if not isinstance(d, dict):
        raise RecordError(f"expected a JSON object, got {type(d).__name__}")
    uid = d.get("user_id")
    if isinstance(uid, bool) or not isinstance(uid, str | int) or uid == "":
        raise RecordError("user_id: missing or not a string/integer")
    age = d.get("age")
    if age is not None:
        if isinstance(age, float) and math.isfinite(age) and age.is_integer():
            age = int(age)
        if isinstance(age, bool) or not isinstance(age, int):
            raise RecordError(f"age: expected an integer, got {type(age).__name__}")
        if not 0 <= age <= MAX_AGE:
            raise RecordError(f"age: {age} is not a plausible age (0..{MAX_AGE})")
    share = d.get("friends_minor_share")
    if share is not None:
        if (
            isinstance(share, bool)
            or not isinstance(share, int | float)
            or not (math.isfinite(share) and 0.0 <= share <= 1.0)
        ):
            raise RecordError("friends_minor_share: expected a number between 0 and 1")
        share = float(share)
    return AgeRecord(
        user_id=str(uid),
        age=age,
        nickname=_text(d, "nickname"),
        bio=_text(d, "bio"),
        background=_text(d, "background"),
        posts=_posts(d, "posts"),
        comments=_posts(d, "comments"),
        events=_events(d),
        friends_minor_share=share,
        as_of=_date(d.get("as_of"), "as_of"),
    )


def read_records(
    lines: Iterable[str | bytes],
) -> Iterator[tuple[int, AgeRecord | RecordError]]:
    """Parse JSONL lines: yield (line number, record or the RecordError for that line)."""
    for n, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            yield n, RecordError(f"invalid UTF-8 at byte {exc.start}")
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield n, RecordError(f"not JSON ({exc.msg} at column {exc.colno})")
            continue
        try:
            yield n, parse_record(obj)
        except RecordError as exc:
            yield n, exc
