"""Grooming stages and the score of one conversation: cues, stage progression and the age gap.

A conversation that grooms a child moves through stages (O'Connell 2003; the PAN 2012 task):
contact and information gathering → trust (flattery, affection, gifts) → risk assessment and
isolation (is the child alone, secrecy, estrangement) → exclusivity (another app, images) →
escalation (sexual content, meeting offline). The score of a conversation combines, by a noisy
OR, the weight of each cue class present (once per class), a progression signal that grows with
the stages reached and is discounted when they appear out of order, and the gap between an adult
age and a minor age stated in it. Every weight is multiplied by a factor for who is talking
(strangers 1; friends, trusted contacts, minors among themselves less; see the pack's
``risk.factor.*``). All functions here are pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from qinglang.risk.types import Risk, Signal

if TYPE_CHECKING:
    from qinglang.risk.params import RiskParams

STAGE_ORDER: Final = ("contact", "trust", "isolation", "exclusivity", "escalation")
"""Grooming stages in the order a groomer moves through them."""
_RANK: Final = {s: i for i, s in enumerate(STAGE_ORDER)}

_STAGE_ZH: Final = {
    "contact": "接触",
    "trust": "建立信任",
    "isolation": "隔离",
    "exclusivity": "转移平台",
    "escalation": "性内容或见面",
}


def noisy_or(weights: Iterable[float]) -> float:
    """Combine independent pieces of evidence: 1 - prod(1 - w), in [0, 1]."""
    keep = 1.0
    for w in weights:
        keep *= 1.0 - min(1.0, max(0.0, w))
    return 1.0 - keep


def ramp(n: int, start: int, full: int) -> float:
    """0 below `start`, rising linearly to 1 at `full` (counts of accounts)."""
    if n < start:
        return 0.0
    return min(1.0, (n - start + 1) / (full - start + 1))


@dataclass(slots=True)
class CueRecord:
    """One cue class seen in a conversation: when first and last, and its evidence."""

    stage: str
    first: float
    seq: int
    last: float
    event_id: str | None = None
    excerpt: str | None = None


@dataclass(slots=True)
class ConversationEvidence:
    """What a conversation has shown so far: cue classes, stated ages, signs of a minor."""

    cues: dict[str, CueRecord] = field(default_factory=dict)
    minor_context: bool = False
    """Something in the conversation suggests a minor (a stated age under 18, a school year…)."""
    youngest: int | None = None
    """The lowest stated age under the minor age."""
    oldest: int | None = None
    """The highest stated adult age."""

    def note_cue(
        self,
        cue: str,
        stage: str,
        at: float,
        seq: int = 0,
        event_id: str | None = None,
        excerpt: str | None = None,
    ) -> None:
        """Record a cue seen at time (or position) `at`; the first sighting keeps the evidence."""
        rec = self.cues.get(cue)
        if rec is None:
            self.cues[cue] = CueRecord(stage, at, seq, at, event_id, excerpt)
            return
        if (at, seq) < (rec.first, rec.seq):  # a late event: it becomes the first sighting
            rec.first, rec.seq, rec.event_id, rec.excerpt = at, seq, event_id, excerpt
        if at > rec.last:
            rec.last = at

    def note_age(self, age: int, minor_below: int, context: bool = True) -> None:
        """Record an age a party stated about themselves (`context`: it may mark a minor)."""
        if age < minor_below:
            if context:
                self.minor_context = True
            self.youngest = age if self.youngest is None else min(self.youngest, age)
        else:
            self.oldest = age if self.oldest is None else max(self.oldest, age)

    def expire(self, cutoff: float) -> None:
        """Forget cue classes last seen at or before `cutoff`."""
        stale = [c for c, r in self.cues.items() if r.last <= cutoff]
        for c in stale:
            del self.cues[c]


def stage_progression(
    params: RiskParams, cues: Mapping[str, CueRecord]
) -> tuple[float, tuple[str, ...], float]:
    """Weight of the stages reached, the stages in order of first appearance, and concordance.

    Concordance is the share of stage pairs that appeared in grooming order (1.0: in order);
    the weight is the sum of the stage weights reached, capped, times a factor between the
    pack's unordered factor (concordance 0) and 1 (concordance 1). One stage alone scores 0.
    """
    first: dict[str, tuple[float, int]] = {}
    for r in cues.values():
        if r.stage in _RANK:
            key = (r.first, r.seq)
            if r.stage not in first or key < first[r.stage]:
                first[r.stage] = key
    if len(first) < 2:
        return 0.0, tuple(first), 1.0
    order = tuple(sorted(first, key=lambda s: (first[s], _RANK[s])))
    pairs = concordant = 0
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            pairs += 1
            concordant += _RANK[order[i]] < _RANK[order[j]]
    concordance = concordant / pairs
    total = min(params.stage_max, sum(params.stage_weights[s] for s in order))
    factor = params.stage_unordered + (1.0 - params.stage_unordered) * concordance
    return total * factor, order, concordance


_PREPARES: Final = frozenset({"trust", "isolation"})
_GATED: Final = frozenset({"exclusivity", "escalation"})


def _prepared_from(cues: Mapping[str, CueRecord]) -> tuple[float, int] | None:
    """When the conversation first reached a trust or isolation stage (None: never)."""
    keys = [(r.first, r.seq) for r in cues.values() if r.stage in _PREPARES]
    return min(keys) if keys else None


def _unprepared(rec: CueRecord, prepared: tuple[float, int] | None) -> bool:
    return rec.stage in _GATED and (prepared is None or prepared > (rec.first, rec.seq))


def _factor_note(factor: float) -> tuple[str, str]:
    if factor >= 1.0:
        return "", ""
    return f"（按系数 {factor:.2f} 计）", f" (counted at ×{factor:.2f})"


def conversation_signals(
    params: RiskParams,
    ev: ConversationEvidence,
    factor: float,
    excerpts: Mapping[str, str] | None = None,
    gate: bool = True,
) -> list[Signal]:
    """The signals of one conversation, each weight already multiplied by `factor`.

    With `gate`, exclusivity and escalation cues that no trust or isolation stage came before
    count with the pack's ``risk.stage.unprepared_factor`` (grooming is a process; sexual talk
    between strangers alone is not it). The engine gates unless the recipient is a known minor.
    """
    prepared = _prepared_from(ev.cues) if gate else None
    out: list[Signal] = []
    for cue, rec in ev.cues.items():
        w = params.cue_weights.get(cue)
        if not w:
            continue
        f = factor
        if gate and _unprepared(rec, prepared):
            f *= params.stage_unprepared
        zh_note, en_note = _factor_note(f)
        rule = params.rule(f"cue.{cue}")
        ex = rec.excerpt if rec.excerpt is not None else (excerpts or {}).get(cue)
        out.append(
            Signal(
                f"cue.{cue}",
                w * f,
                rule.message_en + en_note,
                rule.message_zh + zh_note,
                (rec.event_id,) if rec.event_id else (),
                ex,
            )
        )
    zh_note, en_note = _factor_note(factor)
    weight, order, concordance = stage_progression(params, ev.cues)
    if weight > 0:
        top = max(order, key=lambda s: _RANK[s])
        rule = params.rule(f"stage.{top}")
        ids = tuple(
            dict.fromkeys(
                r.event_id
                for r in sorted(ev.cues.values(), key=lambda r: (r.first, r.seq))
                if r.event_id
            )
        )
        in_order_en = "in grooming order" if concordance == 1.0 else "partly out of order"
        in_order_zh = "顺序与诱骗进程一致" if concordance == 1.0 else "顺序部分不一致"
        out.append(
            Signal(
                "stage.progression",
                weight * factor,
                f"{rule.message_en}: {len(order)} stages ({' → '.join(order)}), {in_order_en}"
                + en_note,
                f"{rule.message_zh}：经历{len(order)}个阶段"
                f"（{' → '.join(_STAGE_ZH[s] for s in order)}），{in_order_zh}" + zh_note,
                ids[:20],
            )
        )
    if (
        ev.youngest is not None
        and ev.oldest is not None
        and ev.oldest - ev.youngest >= params.age_gap_years
    ):
        rule = params.rule("age_gap.weight")
        out.append(
            Signal(
                "age_gap",
                params.age_gap_weight * factor,
                f"{rule.message_en}: {ev.oldest} and {ev.youngest}" + en_note,
                f"{rule.message_zh}：{ev.oldest}岁与{ev.youngest}岁" + zh_note,
            )
        )
    out.sort(key=lambda s: -s.weight)
    return out


def score_evidence(
    params: RiskParams,
    ev: ConversationEvidence,
    factor: float,
    excerpts: Mapping[str, str] | None = None,
    gate: bool = True,
) -> Risk:
    """The risk of one conversation from its evidence (noisy OR of its signals)."""
    signals = conversation_signals(params, ev, factor, excerpts, gate)
    return Risk(noisy_or(s.weight for s in signals), tuple(signals))


def score_value(
    params: RiskParams, ev: ConversationEvidence, factor: float, gate: bool = True
) -> float:
    """`score_evidence(...).score` without building signals (the engine's hot path)."""
    keep = 1.0
    weights = params.cue_weights
    prepared = _prepared_from(ev.cues) if gate else None
    for cue, rec in ev.cues.items():
        w = weights.get(cue)
        if w:
            if gate and _unprepared(rec, prepared):
                keep *= 1.0 - w * factor * params.stage_unprepared
            else:
                keep *= 1.0 - w * factor
    if len(ev.cues) > 1:
        weight = stage_progression(params, ev.cues)[0]
        keep *= 1.0 - weight * factor
    if (
        ev.youngest is not None
        and ev.oldest is not None
        and ev.oldest - ev.youngest >= params.age_gap_years
    ):
        keep *= 1.0 - params.age_gap_weight * factor
    return 1.0 - keep
