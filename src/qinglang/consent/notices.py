"""Privacy notices: the elements a child notice must carry, content hashes, and which consents
a new version makes stale.

A notice is a document of *elements* (free text per required element, e.g. where data is stored)
and *items*: one per purpose, naming the PI categories processed for it, how, in what scope and,
for purposes that disclose content, the widest audience. Consents are given per item purpose ×
category and are tied to the notice version that was shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qinglang.consent.canonical import canonical_json, sha256_hex
from qinglang.policy import AUDIENCES, Policy

_ID = r"^[a-z][a-z0-9_]{0,63}$"
LANGUAGES = ("zh", "en")
NOTICE_AUDIENCES = ("child", "minor", "general")


class NoticeError(ValueError):
    """A notice that cannot be published; `field` names the offending part."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


class NoticeItem(BaseModel):
    """One purpose of processing and the PI categories it uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    purpose: str = Field(pattern=_ID)
    categories: list[str] = Field(min_length=1)
    method: str = Field(min_length=1)
    scope: str = Field(min_length=1)
    audience: str | None = None
    """For purposes that show content to others: the widest audience consent can grant."""
    retention: str = ""

    def key(self) -> dict[str, Any]:
        """What a guardian consented to for this item (everything but the purpose id)."""
        return {
            "method": self.method,
            "scope": self.scope,
            "audience": self.audience,
            "retention": self.retention,
        }


class NoticeDoc(BaseModel):
    """The body of a notice: required elements (text) and processing items."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1)
    elements: dict[str, str]
    items: list[NoticeItem] = Field(min_length=1)

    def item(self, purpose: str) -> NoticeItem | None:
        """The item for a purpose, if the notice has one."""
        for it in self.items:
            if it.purpose == purpose:
                return it
        return None

    def pairs(self) -> set[tuple[str, str]]:
        """Every purpose × category pair a consent can be given for under this notice."""
        return {(it.purpose, c) for it in self.items for c in it.categories}


def parse_notice(body: Any) -> NoticeDoc:
    """Validate a notice body; a NoticeError names the first bad field."""
    try:
        doc = NoticeDoc.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise NoticeError(f"{where}: {err['msg']}", f"body.{where}" if where else "body") from None
    seen: set[str] = set()
    for i, it in enumerate(doc.items):
        if it.purpose in seen:
            raise NoticeError(f"purpose {it.purpose!r} appears twice", f"body.items.{i}.purpose")
        seen.add(it.purpose)
        if it.audience is not None and it.audience not in AUDIENCES:
            raise NoticeError(
                f"audience {it.audience!r} is not one of {list(AUDIENCES)}",
                f"body.items.{i}.audience",
            )
    return doc


def missing_elements(doc: NoticeDoc, policy: Policy, audience: str) -> list[str]:
    """Required elements (pack rule) that the notice lacks or leaves blank, in pack order."""
    if audience == "general":
        return []
    rule = policy.require("consent.notice_required_elements", 0)
    required = rule.value if isinstance(rule.value, list) else []
    return [e for e in required if not doc.elements.get(e, "").strip()]


def check_publishable(doc: NoticeDoc, policy: Policy, audience: str) -> None:
    """Raise NoticeError naming every missing element (with the rule id and citation)."""
    missing = missing_elements(doc, policy, audience)
    if missing:
        rule = policy.require("consent.notice_required_elements", 0)
        raise NoticeError(
            f"notice lacks required elements: {', '.join(missing)} "
            f"({rule.id}: {rule.citation.short()})",
            "body.elements",
        )


def content_hash(doc: NoticeDoc) -> str:
    """SHA-256 of the canonical JSON of the notice body."""
    return sha256_hex(canonical_json(doc.model_dump(mode="json")))


def stale_pairs(old: NoticeDoc, new: NoticeDoc) -> set[tuple[str, str]]:
    """Purpose × category pairs of `old` whose consent the change from `old` to `new` invalidates.

    A pair is stale when its purpose is gone or no longer covers the category, when the
    purpose's method, scope, audience or retention changed, or when the set of purposes that
    process the category changed (the category is now used for more, or other, purposes).
    """
    out: set[tuple[str, str]] = set()
    uses_old = _uses(old.items)
    uses_new = _uses(new.items)
    for it in old.items:
        n = new.item(it.purpose)
        for c in it.categories:
            if (
                n is None
                or c not in n.categories
                or n.key() != it.key()
                or uses_old.get(c) != uses_new.get(c)
            ):
                out.add((it.purpose, c))
    return out


def _uses(items: Iterable[NoticeItem]) -> dict[str, frozenset[str]]:
    uses: dict[str, set[str]] = {}
    for it in items:
        for c in it.categories:
            uses.setdefault(c, set()).add(it.purpose)
    return {c: frozenset(p) for c, p in uses.items()}
