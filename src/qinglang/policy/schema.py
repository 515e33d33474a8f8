"""Schema of a policy pack: rules with ids, citations and bilingual messages.

A pack is data. Every threshold, window and age band the engine enforces is a `Rule` here,
and every rule says which way is stricter so an overlay can be checked against it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Stricter = Literal["lower", "higher", "true", "false", "narrower", "wider", "outcome", "none"]
"""How to tell a stricter value from a looser one.

- ``lower`` / ``higher``: numbers (a missing value, ``None``, means "no limit" for ``lower``);
- ``true`` / ``false``: booleans, the named value is the strict one;
- ``narrower`` / ``wider``: time windows or sets of days/purposes; a subset / superset is stricter;
- ``outcome``: ``deny`` > ``needs_guardian`` > ``allow``;
- ``none``: a convention with no stricter direction (changing it is a loosening of nothing,
  so only non-binding rules may use it).
"""

OUTCOME_STRICTNESS = {"allow": 0, "needs_guardian": 1, "deny": 2}
AUDIENCES = ("nobody", "owner", "friends", "followers", "public")
"""Audience levels, narrowest first: who may see or reach something."""

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
RuleValue = int | float | bool | str | list[str] | None


class Citation(BaseModel):
    """Where a rule comes from: instrument, article and whether the fact was verified."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instrument: str
    article: str
    verified: bool = True
    note: str = ""

    def short(self) -> str:
        """One-line form used in decisions and tables."""
        text = f"{self.instrument} {self.article}".strip()
        return text if self.verified else f"{text} [unverified]"


class Rule(BaseModel):
    """One enforceable value: a threshold, window, default or switch, with its citation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")]
    topic: Annotated[str, Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")]
    value: RuleValue = None
    """None: no value set (for a `lower` rule, no limit); TOML has no null, so omit the key."""
    unit: str | None = None
    stricter: Stricter
    binding: bool
    """A legal floor: an overlay or a guardian may tighten it but never loosen it."""
    age_min: int | None = Field(default=None, ge=0, le=150)
    age_max: int | None = Field(default=None, ge=1, le=150)
    """Applies to ages in [age_min, age_max); None on both sides means every age."""
    citation: Citation
    message_zh: str
    message_en: str

    @model_validator(mode="after")
    def _check_shape(self) -> Rule:
        if self.age_min is not None and self.age_max is not None and self.age_min >= self.age_max:
            raise ValueError(f"rule {self.id}: age_min must be below age_max")
        v = self.value
        if self.stricter in ("lower", "higher") and not (
            v is None or (isinstance(v, int | float) and not isinstance(v, bool))
        ):
            raise ValueError(f"rule {self.id}: a '{self.stricter}' rule needs a number")
        if self.stricter in ("true", "false") and not isinstance(v, bool):
            raise ValueError(f"rule {self.id}: a '{self.stricter}' rule needs true or false")
        if self.stricter == "outcome" and v not in OUTCOME_STRICTNESS:
            raise ValueError(f"rule {self.id}: value must be one of {sorted(OUTCOME_STRICTNESS)}")
        if self.unit == "audience":
            if v not in AUDIENCES or self.stricter != "narrower":
                raise ValueError(
                    f"rule {self.id}: an audience is one of {list(AUDIENCES)}, stricter = narrower"
                )
        elif self.stricter in ("narrower", "wider"):
            if not isinstance(v, list):
                raise ValueError(f"rule {self.id}: a '{self.stricter}' rule needs a list")
            if self.unit == "window":
                for w in v:
                    if not _WINDOW.match(w):
                        raise ValueError(f"rule {self.id}: window {w!r} is not HH:MM-HH:MM")
        if self.stricter == "none" and self.binding:
            raise ValueError(f"rule {self.id}: a binding rule needs a stricter direction")
        return self

    def covers(self, age: int | None) -> bool:
        """Whether this rule applies to a person of this age (None: age unknown)."""
        if self.age_min is None and self.age_max is None:
            return True
        if age is None:
            return False
        lo = 0 if self.age_min is None else self.age_min
        return lo <= age and (self.age_max is None or age < self.age_max)


class Band(BaseModel):
    """A named age band: ages in [min_age, max_age)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    min_age: int = Field(ge=0)
    max_age: int | None = Field(default=None, ge=1)
    label_zh: str
    label_en: str


class PackMeta(BaseModel):
    """Identity of a pack: id, version, jurisdiction and local time zone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: str
    jurisdiction: str
    timezone: str
    title_zh: str
    title_en: str
    base: str | None = None
    """For an overlay: the id of the pack it tightens."""


class BandSet(BaseModel):
    """A family of bands (e.g. content bands) with the citation that defines them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    citation: Citation
    bands: list[Band]


class PackFile(BaseModel):
    """The TOML document of a base pack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pack: PackMeta
    bandsets: list[BandSet] = []
    rules: list[Rule]


class Override(BaseModel):
    """An overlay's change to one rule of its base pack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    value: RuleValue = None
    """None: no value set (for a `lower` rule, no limit); TOML has no null, so omit the key."""
    note: str = ""


class OverlayFile(BaseModel):
    """The TOML document of a platform overlay: changes to rules of a base pack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pack: PackMeta
    overrides: list[Override] = []
