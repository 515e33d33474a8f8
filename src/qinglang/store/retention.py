"""Retention: purge personal information whose retention period (pack rules) has passed.

Each category of personal information qinglang holds has a rule ``retention.<category>_days``
in the platform's policy (pack tightened by its overlay). A run computes, per category, the
rows older than ``at - days`` first, then deletes them (unless a dry run), so a dry run
reports exactly what a real run at the same instant would purge. The ledger is never purged:
a real run appends one ``retention.run`` entry with the counts.

Categories:

- ``decision_logs``: sampled decision logs, by their time;
- ``closed_rights_requests``: completed or refused data-rights requests (and their history),
  by when they were closed;
- ``inactive_consents``: refused or withdrawn consent rows, by when that was decided (the
  ledger keeps the proof);
- ``revoked_guardian_links``: revoked guardian links and their verification evidence, by when
  they were revoked;
- ``unlinked_guardians``: guardians with no link and no consent row left, by last update;
- ``cancelled_accounts``: the remains of cancelled accounts (the row and anything still
  attached to it), by when they were cancelled;
- ``events``: stored platform events (message text is personal information), by when they were
  received; only those the risk consumer has processed (``seq`` at or below its checkpoint) and
  that no alert holds as evidence. The others stay and are reported as ``held``, by reason:
  ``unprocessed``; ``legal_hold`` (evidence of an alert under legal hold, until released);
  ``evidence_hold`` (evidence of an open or in-review alert); ``actioned_alert`` (evidence of an
  actioned alert, kept ``retention.actioned_alert_evidence_days`` after it closed). Evidence of a
  dismissed alert without a hold is not kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from qinglang.policy import Policy, PolicyError
from qinglang.store import ledger
from qinglang.store.models import (
    Account,
    Consent,
    DecisionLog,
    Guardian,
    GuardianLink,
    Platform,
    RightsRequest,
    RightsRequestEvent,
    RiskConsumer,
    StoredEvent,
)
from qinglang.store.review import HOLD_REASONS, held_evidence

CATEGORIES: Final = (
    "decision_logs",
    "closed_rights_requests",
    "inactive_consents",
    "revoked_guardian_links",
    "unlinked_guardians",
    "cancelled_accounts",
    "events",
)
_CHUNK: Final = 500
ACTIONED_EVIDENCE: Final = "actioned_alert_evidence"
"""The pack period (``retention.actioned_alert_evidence_days``) of an actioned alert's evidence."""
HELD_WHY: Final[dict[str, str]] = {
    "unprocessed": "not yet processed by the risk consumer",
    "legal_hold": "evidence of an alert under legal hold (未成年人保护法 art. 80), until released",
    "evidence_hold": "evidence of an open or in-review alert (未成年人保护法 art. 80)",
    "actioned_alert": "evidence of an actioned alert, kept for the pack's period after it closed",
}
"""Why overdue rows were kept, by held reason."""


def topic_of(category: str) -> str:
    """The pack topic holding a category's retention period in days."""
    return f"retention.{category}_days"


@dataclass(frozen=True)
class CategoryResult:
    """One category of a run: its rule, period, cutoff and how many rows were (to be) purged."""

    category: str
    rule_id: str
    days: int
    cutoff: datetime
    count: int
    #: Overdue rows kept, by reason (events: ``unprocessed``, ``legal_hold``,
    #: ``evidence_hold``, ``actioned_alert``; only reasons that kept some).
    held: dict[str, int] = field(default_factory=dict)
    #: Rules behind the held reasons (events: the actioned-alert evidence period), rule id → days.
    hold_rules: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "category": self.category,
            "rule_id": self.rule_id,
            "days": self.days,
            "cutoff": self.cutoff.isoformat(),
            "count": self.count,
            "held": dict(self.held),
            "hold_rules": dict(self.hold_rules),
        }


@dataclass(frozen=True)
class RetentionReport:
    """What a run purged (or, in a dry run, would purge) for one platform."""

    platform_id: int
    at: datetime
    dry_run: bool
    categories: list[CategoryResult] = field(default_factory=list)
    ledger_seq: int | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Category → rows purged."""
        return {c.category: c.count for c in self.categories}

    @property
    def held(self) -> dict[str, dict[str, int]]:
        """Category → overdue rows kept, by reason (only categories that kept some)."""
        return {c.category: dict(c.held) for c in self.categories if any(c.held.values())}

    @property
    def total(self) -> int:
        """Rows purged in all categories."""
        return sum(c.count for c in self.categories)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "platform_id": self.platform_id,
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "categories": [c.to_dict() for c in self.categories],
            "total": self.total,
            "held": self.held,
            "ledger_seq": self.ledger_seq,
        }


def _days(policy: Policy, category: str) -> tuple[int, str]:
    rule = policy.require(topic_of(category))
    v = rule.value
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise PolicyError(f"rule {rule.id}: a retention period is a whole number of days", rule.id)
    return v, rule.id


def _ids(session: Session, stmt: Any) -> list[int]:
    return [int(i) for i in session.execute(stmt).scalars()]


def _overdue_events(
    session: Session,
    platform_id: int,
    cutoff: datetime,
    at: datetime,
    actioned_days: int,
    keep_ids: bool = True,
) -> tuple[list[int], int, dict[str, int]]:
    """The platform's events received before `cutoff` that may go (their ids, unless
    `keep_ids` is false, and how many), and how many were kept by reason: not yet processed by
    the risk consumer, or evidence an alert holds. The events are streamed, not held."""
    checkpoint = session.scalar(
        select(RiskConsumer.checkpoint).where(RiskConsumer.platform_id == platform_id)
    )
    done = int(checkpoint or 0)
    rows = session.execute(
        select(StoredEvent.id, StoredEvent.seq, StoredEvent.event_id)
        .where(StoredEvent.platform_id == platform_id, StoredEvent.received_at < cutoff)
        .execution_options(yield_per=10_000)
    )
    counts = dict.fromkeys(("unprocessed", *HOLD_REASONS), 0)
    evidence: dict[str, str] | None = None
    ids: list[int] = []
    n = 0
    for r in rows:
        if r.seq > done:
            counts["unprocessed"] += 1
            continue
        if evidence is None:  # read once, and only if some processed event is overdue
            evidence = held_evidence(session, platform_id, at, actioned_days)
        reason = evidence.get(r.event_id)
        if reason is None:
            n += 1
            if keep_ids:
                ids.append(int(r.id))
        else:
            counts[reason] += 1
    return ids, n, {k: v for k, v in counts.items() if v}


def _overdue(platform_id: int, category: str, cutoff: datetime) -> Any:
    """The ids of the platform's rows of `category` whose retention ended before `cutoff`
    (a select)."""
    if category == "decision_logs":
        return select(DecisionLog.id).where(
            DecisionLog.platform_id == platform_id, DecisionLog.at < cutoff
        )
    if category == "closed_rights_requests":
        return select(RightsRequest.id).where(
            RightsRequest.platform_id == platform_id,
            RightsRequest.status.in_(("completed", "refused")),
            RightsRequest.closed_at.is_not(None),
            RightsRequest.closed_at < cutoff,
        )
    if category == "inactive_consents":
        return select(Consent.id).where(
            Consent.platform_id == platform_id,
            Consent.status.in_(("refused", "withdrawn")),
            Consent.decided_at < cutoff,
        )
    if category == "revoked_guardian_links":
        return (
            select(GuardianLink.id)
            .join(Guardian, Guardian.id == GuardianLink.guardian_id)
            .where(
                Guardian.platform_id == platform_id,
                GuardianLink.revoked_at.is_not(None),
                GuardianLink.revoked_at < cutoff,
            )
        )
    if category == "unlinked_guardians":
        return select(Guardian.id).where(
            Guardian.platform_id == platform_id,
            Guardian.updated_at < cutoff,
            ~exists().where(GuardianLink.guardian_id == Guardian.id),
            ~exists().where(Consent.guardian_id == Guardian.id),
        )
    if category == "cancelled_accounts":
        return select(Account.id).where(
            Account.platform_id == platform_id,
            Account.cancelled_at.is_not(None),
            Account.cancelled_at < cutoff,
        )
    raise ValueError(f"unknown retention category {category!r}")


_MODELS: Final[dict[str, Any]] = {
    "decision_logs": DecisionLog,
    "closed_rights_requests": RightsRequest,
    "inactive_consents": Consent,
    "revoked_guardian_links": GuardianLink,
    "unlinked_guardians": Guardian,
    # Deleting the account cascades to what is still attached to it (content, flags,
    # relationships, consents, guardian links); decision logs and rights requests keep their
    # rows with the account link set to NULL. The ledger is never touched.
    "cancelled_accounts": Account,
    "events": StoredEvent,
}


def _purge(session: Session, category: str, ids: list[int]) -> None:
    if category == "closed_rights_requests":
        session.execute(delete(RightsRequestEvent).where(RightsRequestEvent.request_id.in_(ids)))
    model = _MODELS[category]
    session.execute(delete(model).where(model.id.in_(ids)))


def run_retention(
    session: Session, platform: Platform, policy: Policy, at: datetime, dry_run: bool = False
) -> RetentionReport:
    """Purge the platform's overdue rows per category (unless `dry_run`) and ledger the run."""
    if at.tzinfo is None:
        raise ValueError("run_retention needs an aware datetime")
    plan: list[tuple[CategoryResult, list[int]]] = []
    for category in CATEGORIES:
        days, rule_id = _days(policy, category)
        cutoff = at - timedelta(days=days)
        held: dict[str, int] = {}
        hold_rules: dict[str, int] = {}
        ids: list[int] = []
        if category == "events":
            keep_days, keep_rule = _days(policy, ACTIONED_EVIDENCE)
            ids, n, held = _overdue_events(
                session, platform.id, cutoff, at, keep_days, keep_ids=not dry_run
            )
            hold_rules[keep_rule] = keep_days
        elif dry_run:  # counted in the database, nothing held in memory
            stmt = _overdue(platform.id, category, cutoff)
            n = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        else:
            ids = _ids(session, _overdue(platform.id, category, cutoff))
            n = len(ids)
        result = CategoryResult(category, rule_id, days, cutoff, n, held, hold_rules)
        plan.append((result, ids))
    results = [r for r, _ in plan]
    if dry_run:
        return RetentionReport(platform.id, at, True, results)
    for result, ids in plan:
        for i in range(0, len(ids), _CHUNK):
            _purge(session, result.category, ids[i : i + _CHUNK])
    session.flush()
    session.expire_all()
    entry = ledger.append(
        session,
        platform.id,
        "retention.run",
        None,
        {
            "counts": {r.category: r.count for r in results},
            "rules": {r.category: r.rule_id for r in results},
            "days": {r.category: r.days for r in results},
            "held": {r.category: dict(r.held) for r in results if any(r.held.values())},
            "hold_rules": {r.category: dict(r.hold_rules) for r in results if r.hold_rules},
        },
        at=at,
    )
    return RetentionReport(platform.id, at, False, results, entry.seq)
