"""Replay of logged decisions: each sampled decision is decided again by the current engine and
policy pack, from the request it logged, at the instant it was logged, over the records as they
stand now; differences are listed.

A difference is *explained* when an account the decision concerned changed after it was logged
(a consent, a setting, a restriction or an age source bumps the account row): the same request
would now meet different facts. An unexplained difference means the engine or the pack now
decides otherwise on the same facts, which an auditor must look at.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from qinglang.store.audit import iso_z
from qinglang.store.models import Account, DecisionLog, Platform

if TYPE_CHECKING:
    from qinglang.api.service import Service


@dataclass(slots=True)
class Replay:
    """What the replay of a sample found."""

    sampled: int = 0
    same: int = 0
    explained: int = 0
    """Different, and an account involved changed since."""
    unexplained: int = 0
    not_replayable: int = 0
    """Requests the current engine cannot take (an account erased, a kind no longer known)."""
    by_kind: Counter[str] = field(default_factory=Counter)
    differences: list[tuple[int, str, str, str, str, str, str]] = field(default_factory=list)
    """(log id, kind, action, at, outcome then, outcome now, explained|unexplained)."""


def _changed_since(session: Session, ids: list[int], at: datetime) -> bool:
    rows = session.execute(select(Account.updated_at).where(Account.id.in_(ids))).scalars()
    return any(u is not None and u > at for u in rows)


def replay(
    session: Session, service: Service, platform: Platform, logs: list[DecisionLog]
) -> Replay:
    """Decide each logged request again and compare outcomes and rule ids."""
    from qinglang.api.problems import Problem
    from qinglang.api.routers.decisions import DECIDERS

    out = Replay()
    for log in logs:
        out.sampled += 1
        out.by_kind[log.kind] += 1
        entry = DECIDERS.get(log.kind)
        if entry is None or log.request is None:
            out.not_replayable += 1
            continue
        model, decide = entry
        try:
            body: Any = model.model_validate(log.request)
            d, _, _ = decide(session, service, platform, body, log.at)
        except (ValidationError, Problem):
            out.not_replayable += 1
            continue
        if d.outcome.value == log.outcome and sorted(d.rule_ids) == sorted(log.rule_ids or []):
            out.same += 1
            continue
        ids = [i for i in (log.subject_account_id, log.other_account_id) if i is not None]
        explained = _changed_since(session, ids, log.at)
        if explained:
            out.explained += 1
        else:
            out.unexplained += 1
        out.differences.append(
            (
                int(log.id),
                log.kind,
                log.action,
                iso_z(log.at),
                log.outcome,
                d.outcome.value,
                "explained" if explained else "unexplained",
            )
        )
    return out
