"""Minimised evidence of an alert: the signals with short excerpts, a timeline of the events they
rest on (ids, kinds and times, never whole messages) and the minors involved (id and age only).

The evidence is what a reviewer needs to decide and what a report to an authority carries; the
platform keeps the original records (未成年人保护法 art. 80: 保存有关记录).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from qinglang.risk.events import Event
from qinglang.risk.types import UNKNOWN, AccountFacts, Alert

EXCERPT_CHARS: Final = 120
"""An excerpt is cut to this many characters (with an ellipsis)."""
TIMELINE_MAX: Final = 200
"""At most this many events in a timeline: the latest ones."""


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str | None:
    """A short excerpt: whitespace collapsed, cut to `limit` characters."""
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def timeline_entry(event: Event) -> dict[str, Any]:
    """One event as the timeline shows it: no message text, only its length."""
    entry: dict[str, Any] = {
        "event_id": event.id,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "actor": event.actor,
    }
    if event.counterpart is not None:
        entry["counterpart"] = event.counterpart
    for name in ("item", "surface", "amount_fen", "delivered"):
        value = getattr(event, name)
        if value is not None:
            entry[name] = value
    if event.text is not None:
        entry["text_chars"] = len(event.text)
    return entry


def build_evidence(
    alert: Alert, events: Mapping[str, Event], facts: Mapping[str, AccountFacts]
) -> dict[str, Any]:
    """The minimised evidence of an alert, from the events it names and what is known of the
    accounts (events not found are listed by id as missing)."""
    wanted = list(alert.event_ids)
    for s in alert.signals:
        wanted.extend(s.event_ids)
    ids = list(dict.fromkeys(wanted))
    found = [events[i] for i in ids if i in events]
    found.sort(key=lambda e: (e.at, e.id))
    timeline = [timeline_entry(e) for e in found[-TIMELINE_MAX:]]
    sender = facts.get(alert.sender, UNKNOWN)
    return {
        "alert": alert.id,
        "sender": {"account": alert.sender, "age": sender.age},
        "level": alert.level,
        "score": round(alert.score, 4),
        "rule_id": alert.rule_id,
        "raised_at": alert.at.isoformat(),
        "signals": [
            {
                "name": s.name,
                "weight": round(s.weight, 4),
                "explanation_zh": s.explanation_zh,
                "explanation_en": s.explanation_en,
                "event_ids": list(s.event_ids),
                "excerpt": excerpt(s.excerpt),
            }
            for s in alert.signals
        ],
        "minors": [
            {"account": m, "age": facts.get(m, UNKNOWN).age} for m in dict.fromkeys(alert.minors)
        ],
        "timeline": timeline,
        "timeline_truncated": len(found) > TIMELINE_MAX,
        "missing_events": [i for i in ids if i not in events],
    }
