"""The requirement catalogue: every obligation the audit evaluates, loaded from TOML.

The shipped catalogue (``qinglang/audit/data/requirements.toml``) lists each obligation of the
Chinese sections of RULES.md with its area, its check kind and its sources. A requirement of
kind ``automated`` or ``configuration`` names the check that evaluates it (one of `CHECKS`); an
``attested`` one names none and is evidenced by an uploaded document. Loading validates the file
and keeps its order, which is the report's order.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from qinglang.audit.model import AREAS, KINDS, Requirement, Source

AUTOMATED_CHECKS: Final = (
    "consent_coverage",
    "consent_acted_on",
    "stranger_contact",
    "audience_exposure",
    "retention_overdue",
    "rights_on_time",
    "rights_refusal_reasons",
    "alerts_sla",
    "staff_access_logged",
    "decision_replay",
    "ledger_intact",
    "impact_assessment_current",
    "realname_minors",
)
"""Checks that query qinglang's records (requirements of kind ``automated``)."""

CONFIGURATION_CHECKS: Final = (
    "notices_complete",
    "encryption_at_rest",
    "policy_floors",
)
"""Checks that inspect packs, notices and settings (requirements of kind ``configuration``)."""

CHECKS: Final = AUTOMATED_CHECKS + CONFIGURATION_CHECKS
"""Names of the automated and configuration checks a requirement may name."""

_KIND_CHECKS: Final = {"automated": AUTOMATED_CHECKS, "configuration": CONFIGURATION_CHECKS}

ID_RE: Final = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")
"""A requirement id: lowercase dotted, e.g. ``cn.req.consent.guardian_before_processing``."""

_FIELDS: Final = frozenset(
    {"id", "area", "kind", "check", "text_zh", "text_en", "rule_ids", "sources"}
)
_SOURCE_FIELDS: Final = frozenset({"instrument", "article", "verified"})


class CatalogueError(ValueError):
    """A catalogue file is invalid; `requirement_id` and `field` name what is wrong."""

    def __init__(
        self, message: str, requirement_id: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.requirement_id = requirement_id
        self.field = field


def _fail(source: str, rid: str, field: str, problem: str) -> CatalogueError:
    return CatalogueError(f"{source}: requirement {rid}: {field}: {problem}", rid, field)


def _text(raw: Mapping[str, Any], key: str, source: str, rid: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, rid, key, "must be a non-empty string")
    return value


def _sources(raw: Mapping[str, Any], source: str, rid: str) -> tuple[Source, ...]:
    items = raw.get("sources")
    if not isinstance(items, list) or not items:
        raise _fail(source, rid, "sources", "must list at least one source")
    out: list[Source] = []
    for n, item in enumerate(items):
        where = f"sources[{n}]"
        if not isinstance(item, dict):
            raise _fail(source, rid, where, "must be a table {instrument, article, verified}")
        unknown = sorted(set(item) - _SOURCE_FIELDS)
        if unknown:
            raise _fail(source, rid, where, f"unknown keys {unknown}")
        instrument = item.get("instrument")
        article = item.get("article")
        verified = item.get("verified", True)
        if not isinstance(instrument, str) or not instrument.strip():
            raise _fail(source, rid, f"{where}.instrument", "must be a non-empty string")
        if not isinstance(article, str) or not article.strip():
            raise _fail(source, rid, f"{where}.article", "must be a non-empty string")
        if not isinstance(verified, bool):
            raise _fail(source, rid, f"{where}.verified", "must be true or false")
        out.append(Source(instrument=instrument, article=article, verified=verified))
    return tuple(out)


def _requirement(raw: Any, n: int, source: str, seen: set[str]) -> Requirement:
    if not isinstance(raw, dict):
        label = f"#{n + 1}"
        raise CatalogueError(f"{source}: requirement {label}: must be a table", label, None)
    rid = raw.get("id")
    if not isinstance(rid, str) or not ID_RE.fullmatch(rid):
        label = f"#{n + 1}"
        raise CatalogueError(
            f"{source}: requirement {label}: id: must be a lowercase dotted id, got {rid!r}",
            label,
            "id",
        )
    if rid in seen:
        raise _fail(source, rid, "id", "duplicate id")
    seen.add(rid)
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise _fail(source, rid, unknown[0], f"unknown keys {unknown}")
    area = raw.get("area")
    if area not in AREAS:
        raise _fail(source, rid, "area", f"{area!r} is not one of {list(AREAS)}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _fail(source, rid, "kind", f"{kind!r} is not one of {list(KINDS)}")
    check = raw.get("check")
    if kind == "attested":
        if check is not None:
            raise _fail(source, rid, "check", "an attested requirement names no check")
    elif check is None:
        raise _fail(source, rid, "check", f"a {kind} requirement must name its check")
    elif check not in CHECKS:
        raise _fail(source, rid, "check", f"unknown check {check!r}; known: {list(CHECKS)}")
    elif check not in _KIND_CHECKS[kind]:
        raise _fail(source, rid, "check", f"{check!r} is not a {kind} check")
    rule_ids = raw.get("rule_ids", [])
    if not isinstance(rule_ids, list) or not all(isinstance(r, str) and r for r in rule_ids):
        raise _fail(source, rid, "rule_ids", "must be a list of non-empty strings")
    if len(set(rule_ids)) != len(rule_ids):
        raise _fail(source, rid, "rule_ids", "lists a rule twice")
    return Requirement(
        id=rid,
        area=str(area),
        kind=str(kind),
        text_zh=_text(raw, "text_zh", source, rid),
        text_en=_text(raw, "text_en", source, rid),
        sources=_sources(raw, source, rid),
        check=check,
        rule_ids=tuple(rule_ids),
    )


def parse_catalogue(text: str, source: str = "<catalogue>") -> tuple[Requirement, ...]:
    """Parse and validate catalogue TOML; a CatalogueError names the requirement and field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{source}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - {"requirement"})
    if unknown:
        raise CatalogueError(f"{source}: unknown top-level keys {unknown}")
    items = data.get("requirement")
    if not isinstance(items, list) or not items:
        raise CatalogueError(f"{source}: no [[requirement]] tables")
    seen: set[str] = set()
    return tuple(_requirement(raw, n, source, seen) for n, raw in enumerate(items))


@cache
def _shipped() -> tuple[Requirement, ...]:
    res = resources.files("qinglang.audit") / "data" / "requirements.toml"
    return parse_catalogue(res.read_text("utf-8"), "requirements.toml")


def load_catalogue(path: Path | None = None) -> tuple[Requirement, ...]:
    """The shipped catalogue (cached), or the catalogue in `path`, in file order."""
    if path is None:
        return _shipped()
    return parse_catalogue(path.read_text("utf-8"), str(path))


def by_check(reqs: Iterable[Requirement]) -> dict[str, tuple[Requirement, ...]]:
    """Check name → the requirements it evaluates, for every `CHECKS` name (attested left out)."""
    out: dict[str, list[Requirement]] = {c: [] for c in CHECKS}
    for r in reqs:
        if r.check is not None:
            out.setdefault(r.check, []).append(r)
    return {c: tuple(rs) for c, rs in out.items()}


def by_area(reqs: Iterable[Requirement]) -> dict[str, tuple[Requirement, ...]]:
    """Area → its requirements, for every area in `AREAS`, keeping the input order."""
    out: dict[str, list[Requirement]] = {a: [] for a in AREAS}
    for r in reqs:
        out.setdefault(r.area, []).append(r)
    return {a: tuple(rs) for a, rs in out.items()}
