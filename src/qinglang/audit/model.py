"""The audit's data: requirements, findings, charts and evidence tables, and the result of a run.

Plain frozen dataclasses, no I/O: the checks fill them, the report renders them, the bundle
hashes what the report wrote. Everything here is deterministic for the same records (sorted,
no wall-clock time): the same data gives a byte-identical report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Final

AREAS: Final = (
    "registration",
    "storage",
    "use",
    "sharing",
    "contact",
    "content",
    "time",
    "spending",
    "governance",
)
"""Areas of the case's 34 measures and of the requirement catalogue."""

KINDS: Final = ("automated", "configuration", "attested")
"""How a requirement is checked: a query over qinglang's records, the configuration (packs,
notices, settings), or an uploaded document with its owner and date."""


class Status(StrEnum):
    """A finding's status."""

    PASS = "pass"
    FAIL = "fail"
    NOT_EVIDENCED = "not_evidenced"


@dataclass(frozen=True, slots=True)
class Source:
    """Where an obligation comes from: instrument, article, and whether RULES.md verified it."""

    instrument: str
    article: str
    verified: bool = True


@dataclass(frozen=True, slots=True)
class Requirement:
    """One obligation of the catalogue."""

    id: str
    area: str
    kind: str
    text_zh: str
    text_en: str
    sources: tuple[Source, ...]
    check: str | None = None
    """Name of the automated or configuration check that evaluates it (None: attested)."""
    rule_ids: tuple[str, ...] = ()
    """Policy-pack rules (or band sets, as "bandset.<id>") that implement it, if any."""


@dataclass(frozen=True, slots=True)
class Figure:
    """A number a finding rests on, with its label in both languages."""

    name: str
    value: int | float | str | None
    label_zh: str
    label_en: str


@dataclass(frozen=True, slots=True)
class Finding:
    """What the audit found for one requirement."""

    requirement_id: str
    status: Status
    summary_zh: str
    summary_en: str
    figures: tuple[Figure, ...] = ()
    evidence: tuple[str, ...] = ()
    """Names of the evidence tables (`EvidenceTable.name`) behind this finding."""


@dataclass(frozen=True, slots=True)
class Chart:
    """A bar chart: labels on one axis, one or more named series of values."""

    id: str
    title_zh: str
    title_en: str
    labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]
    """(series name, one value per label)."""


@dataclass(frozen=True, slots=True)
class EvidenceTable:
    """Rows behind a finding, written to the bundle as CSV and JSON (identifiers only, no PI)."""

    name: str
    """File stem in the bundle's evidence/ directory: [a-z0-9_]+."""
    title_zh: str
    title_en: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str | int | float | None, ...], ...]
    total: int | None = None
    """How many rows matched when `rows` is a capped sample (None: rows are all of them)."""


@dataclass(frozen=True, slots=True)
class AuditResult:
    """One audit run: the platform, the period, the catalogue, findings, charts and evidence."""

    platform_slug: str
    platform_name: str
    period: str
    """The period's label, e.g. "2026" or "2026-01-01..2026-06-30"."""
    start: date
    end: date
    """Inclusive first and last day, in the pack's time zone."""
    as_of: datetime
    """The instant the records were read as of (UTC); fixed by the caller, never the clock."""
    pack: str
    """Policy pack name and version, e.g. "cn 2026.1"."""
    engine_version: str
    requirements: tuple[Requirement, ...]
    findings: tuple[Finding, ...]
    charts: tuple[Chart, ...] = ()
    evidence: tuple[EvidenceTable, ...] = ()
    ledger_head: tuple[int, str] | None = None
    """(seq, hash) of the platform's ledger head at `as_of`, if the ledger has entries."""
    notes: tuple[str, ...] = field(default=())
    since: datetime | None = None
    """Activity read from this instant on (UTC), when later than the period's start."""

    def finding(self, requirement_id: str) -> Finding | None:
        """The finding for a requirement, if it was evaluated."""
        for f in self.findings:
            if f.requirement_id == requirement_id:
                return f
        return None

    def counts(self) -> dict[Status, int]:
        """How many findings have each status."""
        out = {s: 0 for s in Status}
        for f in self.findings:
            out[f.status] += 1
        return out
