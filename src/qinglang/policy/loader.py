"""Load policy packs from TOML, apply platform overlays, and answer rule look-ups fast.

A platform overlay may tighten any rule; it may loosen only rules that are not legal floors
(``binding = false``). Loosening a floor fails with a `PolicyError` naming the rule.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from qinglang.policy.schema import (
    AUDIENCES,
    OUTCOME_STRICTNESS,
    Band,
    BandSet,
    OverlayFile,
    PackFile,
    PackMeta,
    Rule,
    RuleValue,
)

MAX_AGE = 150


class PolicyError(ValueError):
    """A pack or overlay is invalid; `rule_id` names the offending rule when there is one."""

    def __init__(self, message: str, rule_id: str | None = None) -> None:
        super().__init__(message)
        self.rule_id = rule_id


def window_minutes(windows: Iterable[str]) -> frozenset[int]:
    """Minutes of the day (0..1439) covered by windows like ``22:00-06:00`` (may wrap midnight)."""
    covered: set[int] = set()
    for w in windows:
        start_s, end_s = w.split("-")
        start = int(start_s[:2]) * 60 + int(start_s[3:])
        end = int(end_s[:2]) * 60 + int(end_s[3:])
        if end <= start:
            covered.update(range(start, 1440))
            covered.update(range(0, end))
        else:
            covered.update(range(start, end))
    return frozenset(covered)


def _as_set(rule: Rule, value: RuleValue) -> frozenset[Any]:
    assert isinstance(value, list)
    return window_minutes(value) if rule.unit == "window" else frozenset(value)


def is_looser(rule: Rule, new: RuleValue) -> bool:
    """Whether replacing the rule's value with `new` would loosen it."""
    old = rule.value
    s = rule.stricter
    if s == "lower":
        if new is None:
            return old is not None
        return old is not None and new > old  # type: ignore[operator]
    if s == "higher":
        if old is None:
            return False
        return new is None or new < old  # type: ignore[operator]
    if s in ("true", "false"):
        strict = s == "true"
        return old == strict and new != strict
    if s == "outcome":
        return OUTCOME_STRICTNESS[str(new)] < OUTCOME_STRICTNESS[str(old)]
    if rule.unit == "audience":
        return AUDIENCES.index(str(new)) > AUDIENCES.index(str(old))
    if s == "narrower":
        return not _as_set(rule, new) <= _as_set(rule, old)
    if s == "wider":
        return not _as_set(rule, new) >= _as_set(rule, old)
    return False


def _check_type(rule: Rule, new: RuleValue) -> None:
    try:
        Rule.model_validate({**rule.model_dump(), "value": new})
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"]
        raise PolicyError(f"rule {rule.id}: invalid value {new!r}: {msg}", rule.id) from None


class Policy:
    """A loaded, validated pack (possibly tightened by an overlay) with O(1) look-ups by age."""

    def __init__(
        self,
        meta: PackMeta,
        rules: Iterable[Rule],
        bandsets: Iterable[BandSet] = (),
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.meta = meta
        self.rules: dict[str, Rule] = {}
        for r in rules:
            if r.id in self.rules:
                raise PolicyError(f"duplicate rule id {r.id}", r.id)
            self.rules[r.id] = r
        self.bandsets: dict[str, BandSet] = {b.id: b for b in bandsets}
        self.overrides: dict[str, str] = dict(overrides or {})
        """Rule id → note, for rules an overlay changed."""
        self.tz = ZoneInfo(meta.timezone)
        self._by_age: dict[int | None, dict[str, Rule]] = {}
        topics: dict[str, list[Rule]] = {}
        for r in self.rules.values():
            topics.setdefault(r.topic, []).append(r)
        self.topics = topics
        self._check_overlaps()

    def _check_overlaps(self) -> None:
        for topic, rules in self.topics.items():
            for age in [None, *range(0, MAX_AGE)]:
                hits = [r for r in rules if r.covers(age)]
                spans = {_span(r) for r in hits}
                if len(spans) != len(hits):
                    ids = ", ".join(r.id for r in hits)
                    raise PolicyError(f"topic {topic}: rules {ids} cover age {age} equally", ids)

    def table(self, age: int | None) -> dict[str, Rule]:
        """Topic → the most specific rule that applies at this age (cached per age)."""
        key = None if age is None else min(max(age, 0), MAX_AGE)
        t = self._by_age.get(key)
        if t is None:
            t = {}
            for topic, rules in self.topics.items():
                hits = [r for r in rules if r.covers(key)]
                if hits:
                    t[topic] = min(hits, key=_span)
            self._by_age[key] = t
        return t

    def rule(self, topic: str, age: int | None) -> Rule | None:
        """The rule for `topic` that applies at `age`, or None."""
        return self.table(age).get(topic)

    def require(self, topic: str, age: int | None = None) -> Rule:
        """Like `rule`, but a missing rule is a pack error naming the topic."""
        r = self.table(age).get(topic)
        if r is None:
            raise PolicyError(f"pack {self.meta.id} has no rule for {topic} at age {age}")
        return r

    def bands(self, bandset: str) -> list[Band]:
        """The bands of a named band set, e.g. ``content``."""
        return self.bandsets[bandset].bands

    def tightened(self, overlay: OverlayFile) -> Policy:
        """A new policy with the overlay's overrides applied; loosening a floor raises."""
        if overlay.pack.base != self.meta.id:
            raise PolicyError(
                f"overlay {overlay.pack.id} is for pack {overlay.pack.base!r}, not {self.meta.id!r}"
            )
        rules = dict(self.rules)
        notes = dict(self.overrides)
        for o in overlay.overrides:
            base = rules.get(o.id)
            if base is None:
                raise PolicyError(f"overlay changes unknown rule {o.id}", o.id)
            _check_type(base, o.value)
            if base.binding and is_looser(base, o.value):
                raise PolicyError(
                    f"overlay {overlay.pack.id} loosens legal floor {o.id} "
                    f"({base.citation.short()}): {base.value!r} → {o.value!r}",
                    o.id,
                )
            rules[o.id] = base.model_copy(update={"value": o.value})
            notes[o.id] = o.note or f"set by overlay {overlay.pack.id}"
        meta = self.meta.model_copy(
            update={"id": self.meta.id, "version": f"{self.meta.version}+{overlay.pack.id}"}
        )
        return Policy(meta, rules.values(), self.bandsets.values(), notes)


def _span(r: Rule) -> int:
    lo = 0 if r.age_min is None else r.age_min
    hi = MAX_AGE + 1 if r.age_max is None else r.age_max
    return hi - lo


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from None


def _validation_message(source: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{source}: {where}: {err['msg']}"


def parse_pack(text: str, source: str = "<pack>") -> Policy:
    """Parse and validate a base pack from TOML text."""
    data = _parse_toml(text, source)
    try:
        doc = PackFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_validation_message(source, exc)) from None
    return Policy(doc.pack, doc.rules, doc.bandsets)


def parse_overlay(text: str, source: str = "<overlay>") -> OverlayFile:
    """Parse and validate a platform overlay from TOML text."""
    data = _parse_toml(text, source)
    try:
        return OverlayFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_validation_message(source, exc)) from None


def available_packs() -> list[str]:
    """Ids of the packs shipped with qinglang."""
    root = resources.files("qinglang.policy") / "packs"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


@lru_cache(maxsize=16)
def load_pack(pack_id: str) -> Policy:
    """Load a shipped pack by id (e.g. ``cn``); cached, packs are immutable."""
    if pack_id not in available_packs():
        raise PolicyError(f"unknown policy pack {pack_id!r}; available: {available_packs()}")
    text = (resources.files("qinglang.policy") / "packs" / f"{pack_id}.toml").read_text("utf-8")
    return parse_pack(text, f"{pack_id}.toml")


def load_policy(pack_id: str, overlay: str | Path | None = None) -> Policy:
    """A shipped pack, tightened by an overlay given as TOML text or a file path."""
    policy = load_pack(pack_id)
    if overlay is None:
        return policy
    if isinstance(overlay, Path):
        text, source = overlay.read_text("utf-8"), str(overlay)
    else:
        text, source = overlay, "<overlay>"
    return policy.tightened(parse_overlay(text, source))
