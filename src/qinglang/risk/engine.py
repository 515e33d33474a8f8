"""The risk engine: platform events in, per-sender and per-conversation risk and alerts out.

``RiskEngine(policy, directory)`` keeps, for each account that shows a risk signal, a few sliding
windows over EVENT time, and for each sender→recipient conversation with a cue, the evidence of
`qinglang.risk.stages`. ``process(event)`` updates them and returns the alerts the event raised.

Signals of a sender (each weight from the pack, combined by a noisy OR):

- ``fanout_minors``: distinct minors who are not friends messaged (or sent gifts) by an adult
  or unknown-age account within ``risk.fanout.window_hours``;
- ``fanout_follows``: distinct minors who are not friends followed within the same window;
- ``chain_shown_follow_message``: minors whose content the account was shown (impression or
  profile view), whom it then followed and messaged within ``risk.chain.window_hours`` — the
  chain of the case that started qinglang;
- ``cue_fanout``: distinct minors who are not friends with whom a conversation reached
  ``risk.cue_fanout.min_score`` within the window (the same script sent to many children);
- ``restricted_attempt``: contact attempts with minors by an account already restricted;
- ``blocked_by_minors`` / ``reported_by_minors``: minors who blocked or reported the account;
- ``conversation``: the riskiest conversation of the account with a stranger (cues, stages,
  age gap);
- ``conversation_related``: the riskiest conversation with a mutual friend, a guardian-approved
  contact or a guardian.

The sender's score is the noisy OR of all but the last, or the last if higher: what an account
does with its own children, pupils or friends does not add up with what it does to strangers.

Who is a minor: the directory's `AccountFacts.is_minor`, or a recipient who stated an age under
the pack's minor age (or a school year) in the conversation. An account of unknown age counts as
"adult or unknown" when it sends; an unknown recipient is not a known minor. Mutual friends,
guardian-approved contacts and guardians are never stranger contact, but their cues still count,
multiplied by ``risk.factor.mutual`` / ``risk.factor.trusted``; cues between minors count with
``risk.factor.minor_sender``; cues to a known adult with ``risk.factor.adult_recipient``, to an
unknown-age account with nothing suggesting a minor with ``risk.factor.no_minor_context``.
Unless the recipient is a known minor, cues of the exclusivity and escalation stages that no
trust or isolation stage came before count with ``risk.stage.unprepared_factor``.

Alerts and their de-duplication: a sender's score reaching ``risk.alert.review_threshold`` raises
one ``review`` alert; reaching ``risk.alert.restrict_threshold`` raises one ``restrict`` alert
(also when it jumps straight there: one alert, level ``restrict``). Each level is raised once per
sender until `acknowledge` (after which only a score higher than the acknowledged one raises
again) or `reset`; a sender whose state expired (no activity for the longest window) starts
afresh. Alert ids are deterministic: the same stream raises the same alerts.

Bad input, as documented behaviour (`stats` counts every case, so nothing is lost silently):

- duplicates: an event id seen among the last ``recent_ids`` ids is ignored (`stats.duplicates`);
  the shell also de-duplicates durably;
- out of order: events are applied in arrival order; windows use event time, so a late event
  counts in every window that still covers its time (a late message still counts in the
  fan-out; a late cue takes its place in the conversation's stage order). A chain is checked
  when its message is applied: a follow that arrives after the message counts for the messages
  applied after it. An event older than the engine clock minus the longest window can change no
  window and is counted in `stats.stale`, not applied;
- the engine clock follows event time but moves at most ``max_clock_step`` seconds per event, so
  one event with a wild timestamp cannot expire everyone's state;
- unknown accounts: the directory answers `UNKNOWN` (age unknown, not a minor).

Memory is bounded by the windows: state older than the longest window is evicted on a sweep
every ``sweep_seconds`` of event time, and an account gets state only once it shows a signal.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from qinglang.policy import Policy
from qinglang.risk.cues import DISCLOSURE, CueHit, detect_cues, excerpt, load_lexicon
from qinglang.risk.events import Event
from qinglang.risk.params import RiskParams
from qinglang.risk.stages import (
    ConversationEvidence,
    conversation_signals,
    noisy_or,
    ramp,
    score_value,
)
from qinglang.risk.types import AccountFacts, Alert, Directory, Risk, Signal

__all__ = ["LEVELS", "EngineStats", "RiskEngine"]

LEVELS: Final = ("review", "restrict")
"""Alert levels, weakest first."""

_MAX_LISTED: Final = 50
"""At most this many minors and event ids are listed in an alert."""


@dataclass(frozen=True, slots=True)
class EngineStats:
    """What the engine did with the events it received (received = applied + duplicates + stale)."""

    received: int
    applied: int
    duplicates: int
    stale: int
    alerts: int
    senders: int
    """Accounts with state now."""
    conversations: int
    """Sender→recipient conversations with state now."""


class _Seen:
    """When a key was first and last seen in a window, and the event that saw it last."""

    __slots__ = ("event_id", "first", "last")

    def __init__(self, t: float, event_id: str) -> None:
        self.first = t
        self.last = t
        self.event_id = event_id


class _Times:
    """Keys seen within a sliding event-time window, expired lazily from the oldest."""

    __slots__ = ("entries", "order", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self.entries: dict[str, _Seen] = {}
        self.order: deque[tuple[float, str]] = deque()

    def add(self, key: str, t: float, event_id: str) -> None:
        """Record key at time t (late times are placed in order)."""
        e = self.entries.get(key)
        if e is None:
            self.entries[key] = _Seen(t, event_id)
        else:
            if t < e.first:
                e.first = t
            if t <= e.last:
                return
            e.last = t
            e.event_id = event_id
        order = self.order
        if not order or order[-1][0] <= t:
            order.append((t, key))
            if order[0][0] <= t - self.window:
                self.expire(t)
        else:
            i = len(order)
            while i > 0 and order[i - 1][0] > t:
                i -= 1
            order.insert(i, (t, key))
        if len(order) > 4 * len(self.entries) + 64:
            self.order = deque(sorted((v.last, k) for k, v in self.entries.items()))

    def expire(self, now: float) -> None:
        """Forget keys last seen at or before now - window."""
        cutoff = now - self.window
        order = self.order
        entries = self.entries
        while order and order[0][0] <= cutoff:
            _, k = order.popleft()
            e = entries.get(k)
            if e is not None and e.last <= cutoff:
                del entries[k]

    def count(self, now: float, mutate: bool = True) -> int:
        """Keys seen in the window ending at now."""
        if mutate:
            self.expire(now)
            return len(self.entries)
        cutoff = now - self.window
        return sum(1 for e in self.entries.values() if cutoff < e.last <= now)

    def live(self, now: float) -> list[tuple[str, float, str]]:
        """(key, last, event id) of the keys in the window ending at now, latest first."""
        cutoff = now - self.window
        out = [(k, e.last, e.event_id) for k, e in self.entries.items() if cutoff < e.last <= now]
        out.sort(key=lambda x: (-x[1], x[0]))
        return out


class _Pair:
    """A sender→recipient conversation with evidence."""

    __slots__ = ("ev", "factor", "last", "oldest", "recipient", "related", "score")

    def __init__(self) -> None:
        self.ev = ConversationEvidence()
        self.factor = 1.0
        """Relation factor (friends, trusted contacts, minors among themselves)."""
        self.related = False
        """Mutual friends, a guardian-approved contact or a guardian."""
        self.recipient = "unknown"
        """What the directory says of the recipient: minor, adult or unknown."""
        self.last = float("-inf")
        self.oldest = float("inf")
        """The earliest `last` among the cue records (when the next one expires)."""
        self.score = 0.0


class _Account:
    """Everything the engine keeps about one account as a sender of risk."""

    __slots__ = (
        "ack",
        "blocked_by",
        "chains",
        "cued",
        "follows",
        "follows_chain",
        "messaged",
        "now",
        "pairs",
        "raised",
        "reported_by",
        "restricted",
        "shown",
    )

    def __init__(self) -> None:
        self.now = float("-inf")
        self.shown: _Times | None = None
        self.follows: _Times | None = None
        self.follows_chain: _Times | None = None
        self.messaged: _Times | None = None
        self.chains: _Times | None = None
        self.cued: _Times | None = None
        self.restricted: _Times | None = None
        self.blocked_by: _Times | None = None
        self.reported_by: _Times | None = None
        self.pairs: dict[str, _Pair] = {}
        self.raised = 0
        self.ack = -1.0


class RiskEngine:
    """Grooming and contact risk over a stream of platform events (see the module docstring)."""

    def __init__(
        self,
        policy: Policy,
        directory: Directory,
        *,
        recent_ids: int = 200_000,
        max_clock_step: float = 3600.0,
        sweep_seconds: float = 3600.0,
    ) -> None:
        self.params = RiskParams.from_policy(policy)
        self.policy = policy
        self.directory = directory
        self._recent_cap = max(1, recent_ids)
        self._recent: deque[str] = deque()
        self._seen: set[str] = set()
        self._max_step = max_clock_step
        self._sweep_every = sweep_seconds
        self._clock: float | None = None
        self._next_sweep = float("inf")
        self._accounts: dict[str, _Account] = {}
        self._seq = 0
        self._received = self._duplicates = self._stale = self._alerts = 0
        p = self.params
        self._review_rule = p.rule("alert.review_threshold").id
        self._restrict_rule = p.rule("alert.restrict_threshold").id
        self._handlers: dict[str, Callable[[Event, float], list[Alert]]] = {
            "message": self._message,
            "gift": self._gift,
            "follow": self._follow,
            "impression": self._shown,
            "profile_view": self._shown,
            "block": self._blocked,
            "report": self._blocked,
            "unfollow": self._nothing,
        }

    # ------------------------------------------------------------------------- public API

    @property
    def horizon(self) -> timedelta:
        """How far back state reaches: the longest window of the pack (replays need this much)."""
        return timedelta(seconds=self.params.horizon)

    @property
    def clock(self) -> datetime | None:
        """The engine clock: the event time the engine has reached (None before any event)."""
        return None if self._clock is None else datetime.fromtimestamp(self._clock, UTC)

    @property
    def stats(self) -> EngineStats:
        """Counts of received, applied, duplicate and stale events, alerts and state held."""
        return EngineStats(
            self._received,
            self._received - self._duplicates - self._stale,
            self._duplicates,
            self._stale,
            self._alerts,
            len(self._accounts),
            sum(len(a.pairs) for a in self._accounts.values()),
        )

    def process(self, event: Event) -> list[Alert]:
        """Apply one event; return the alerts it newly raised (usually none)."""
        self._received += 1
        eid = event.id
        if eid in self._seen:
            self._duplicates += 1
            return []
        self._seen.add(eid)
        recent = self._recent
        recent.append(eid)
        if len(recent) > self._recent_cap:
            self._seen.discard(recent.popleft())
        t = event.at.timestamp()
        clock = self._clock
        if clock is None:
            self._clock = t
            self._next_sweep = t + self._sweep_every
        elif t > clock:
            self._clock = min(t, clock + self._max_step)
        elif t <= clock - self.params.horizon:
            self._stale += 1
            return []
        self._seq += 1
        alerts = self._handlers[event.kind](event, t)
        if self._clock >= self._next_sweep:  # type: ignore[operator]
            self._sweep()
        if alerts:
            self._alerts += len(alerts)
        return alerts

    def process_many(self, events: Iterable[Event]) -> list[Alert]:
        """Apply events in order; return every alert they raised, in order."""
        out: list[Alert] = []
        process = self.process
        for e in events:
            found = process(e)
            if found:
                out.extend(found)
        return out

    def sender_risk(self, sender: str, at: datetime | None = None) -> Risk:
        """The risk of an account as a sender, at `at` (default: the engine clock)."""
        acc = self._accounts.get(sender)
        if acc is None:
            return Risk(0.0)
        now, mutate = self._query_time(acc, at)
        signals = self._signals(acc, now, mutate)
        return Risk(self._score(acc, now, mutate), tuple(signals))

    def conversation_risk(self, sender: str, recipient: str, at: datetime | None = None) -> Risk:
        """The risk of the conversation sender→recipient, at `at` (default: the engine clock)."""
        acc = self._accounts.get(sender)
        pair = None if acc is None else acc.pairs.get(recipient)
        if acc is None or pair is None:
            return Risk(0.0)
        now, _ = self._query_time(acc, at)
        ev = self._window_evidence(pair, now)
        signals = conversation_signals(
            self.params, ev, self._pair_factor(pair), gate=pair.recipient != "minor"
        )
        return Risk(noisy_or(s.weight for s in signals), tuple(signals))

    def acknowledge(self, sender: str) -> None:
        """A reviewer saw the sender's alerts: re-arm them, for a score above today's only."""
        acc = self._accounts.get(sender)
        if acc is not None:
            acc.raised = 0
            acc.ack = self._score(acc, acc.now, True)

    def reset(self, sender: str) -> None:
        """Forget everything about a sender (e.g. after review found a false alarm)."""
        self._accounts.pop(sender, None)

    # ------------------------------------------------------------------------- handlers

    def _account(self, account: str) -> _Account:
        acc = self._accounts.get(account)
        if acc is None:
            acc = self._accounts[account] = _Account()
        return acc

    def _nothing(self, event: Event, t: float) -> list[Alert]:
        return []

    def _is_minor(self, facts: AccountFacts, acc: _Account | None, recipient: str) -> bool:
        if facts.is_minor:
            return True
        if acc is None:
            return False
        pair = acc.pairs.get(recipient)
        return pair is not None and pair.ev.minor_context

    def _relation_factor(
        self, sender: AccountFacts, sender_id: str, recipient: str
    ) -> tuple[float, bool]:
        link = self.directory.link(sender_id, recipient)
        p = self.params
        f = 1.0
        if link.approved or link.guardian:
            f = p.factor_trusted
        if link.mutual:
            f = min(f, p.factor_mutual)
        if sender.is_minor:
            f *= p.factor_minor_sender
        return f, link.mutual or link.approved or link.guardian

    def _message(self, event: Event, t: float) -> list[Alert]:
        a = event.actor
        b = event.target
        assert b is not None
        d = self.directory
        af = d.facts(a)
        bf = d.facts(b)
        text = event.text or ""
        hits = detect_cues(text) if text else []
        alerts: list[Alert] = []
        if hits:
            alerts.extend(self._context_from(a, b, af, hits, event, t))
        acc = self._accounts.get(a)
        minor = self._is_minor(bf, acc, b)
        weighted = [h for h in hits if h.stage != "context"]
        if not (minor or weighted or af.restricted):
            if acc is not None and b in acc.pairs:
                self._touch_pair(acc.pairs[b], af, a, b, bf, t)
            return alerts
        link = d.link(a, b)
        related = link.mutual or link.approved or link.guardian
        changed = False
        if acc is None:
            acc = self._account(a)
        if t > acc.now:
            acc.now = t
        p = self.params
        if minor and af.restricted:
            if acc.restricted is None:
                acc.restricted = _Times(p.fanout_window)
            acc.restricted.add(event.id, t, event.id)
            changed = True
        stranger = minor and not related and not af.is_minor
        if stranger:
            if acc.messaged is None:
                acc.messaged = _Times(p.fanout_window)
            acc.messaged.add(b, t, event.id)
            changed = True
            self._check_chain(acc, b, t, event.id)
        if weighted:
            pair = acc.pairs.get(b)
            if pair is None:
                pair = acc.pairs[b] = _Pair()
            classes = load_lexicon().classes
            for h in weighted:
                pair.ev.note_cue(
                    h.cue, h.stage, t, self._seq, event.id, excerpt(text, h.start, h.end)
                )
                if classes[h.cue].suggests_minor:
                    pair.ev.minor_context = True
            self._touch_pair(pair, af, a, b, bf, t)
            changed = True
            if stranger and pair.score >= p.cue_fanout_min_score:
                if acc.cued is None:
                    acc.cued = _Times(p.fanout_window)
                acc.cued.add(b, t, event.id)
        if changed:
            alerts.extend(self._evaluate(a, acc, event))
        return alerts

    def _context_from(
        self, a: str, b: str, af: AccountFacts, hits: list[CueHit], event: Event, t: float
    ) -> list[Alert]:
        """What a's message says about a (stated age, a minor's life), for the b→a conversation."""
        minor_below = self.params.minor_below
        context = [h for h in hits if h.cue == DISCLOSURE or h.stage == "context"]
        if not context:
            return []
        ages = [h.age for h in context if h.cue == DISCLOSURE and h.age is not None]
        if ages:  # a's own stated age, for the age gap of the a→b conversation
            own = self._account(a)
            mine = own.pairs.get(b)
            if mine is None:
                mine = own.pairs[b] = _Pair()
                self._touch_pair(mine, af, a, b, self.directory.facts(b), t)
            for age in ages:
                mine.ev.note_age(age, minor_below, context=False)
            if t > own.now:
                own.now = t
        back = self._account(b)
        pair = back.pairs.get(a)
        if pair is None:
            pair = back.pairs[a] = _Pair()
        before = pair.ev.minor_context
        for h in context:
            if h.cue == DISCLOSURE:
                assert h.age is not None
                pair.ev.note_age(h.age, minor_below)
            else:
                pair.ev.minor_context = True
        if t > pair.last:
            pair.last = t
        if t > back.now:
            back.now = t
        if pair.ev.cues and (pair.ev.minor_context != before or pair.ev.youngest is not None):
            self._rescore(pair)
            return self._evaluate(b, back, event)
        return []

    def _touch_pair(
        self, pair: _Pair, af: AccountFacts, a: str, b: str, bf: AccountFacts, t: float
    ) -> None:
        pair.factor, pair.related = self._relation_factor(af, a, b)
        pair.recipient = "minor" if bf.is_minor else "unknown" if bf.age is None else "adult"
        if t > pair.last:
            pair.last = t
        self._rescore(pair)

    def _pair_factor(self, pair: _Pair) -> float:
        p = self.params
        if pair.recipient == "minor" or pair.ev.minor_context:
            context = 1.0
        elif pair.recipient == "adult":
            context = p.factor_adult_recipient
        else:
            context = p.factor_no_minor_context
        return pair.factor * context

    def _rescore(self, pair: _Pair) -> None:
        pair.ev.expire(pair.last - self.params.conversation_window)
        pair.oldest = min((r.last for r in pair.ev.cues.values()), default=float("inf"))
        pair.score = score_value(
            self.params, pair.ev, self._pair_factor(pair), pair.recipient != "minor"
        )

    def _check_chain(self, acc: _Account, minor: str, t: float, event_id: str) -> None:
        shown, follows = acc.shown, acc.follows_chain
        if shown is None or follows is None:
            return
        shown.expire(acc.now)
        follows.expire(acc.now)
        s = shown.entries.get(minor)
        f = follows.entries.get(minor)
        if s is None or f is None:
            return
        if s.first <= f.last <= t and t - s.first <= self.params.chain_window:
            if acc.chains is None:
                acc.chains = _Times(self.params.chain_window)
            acc.chains.add(minor, t, event_id)

    def _gift(self, event: Event, t: float) -> list[Alert]:
        a = event.actor
        b = event.target
        assert b is not None
        d = self.directory
        af = d.facts(a)
        bf = d.facts(b)
        acc = self._accounts.get(a)
        if not self._is_minor(bf, acc, b):
            return []
        acc = self._account(a)
        if t > acc.now:
            acc.now = t
        p = self.params
        link = d.link(a, b)
        if af.restricted:
            if acc.restricted is None:
                acc.restricted = _Times(p.fanout_window)
            acc.restricted.add(event.id, t, event.id)
        if not (link.mutual or link.approved or link.guardian) and not af.is_minor:
            if acc.messaged is None:
                acc.messaged = _Times(p.fanout_window)
            acc.messaged.add(b, t, event.id)
        pair = acc.pairs.get(b)
        if pair is None:
            pair = acc.pairs[b] = _Pair()
        amount = event.amount_fen or 0
        pair.ev.note_cue(
            "gifts", "trust", t, self._seq, event.id, f"gift {amount / 100:.2f} CNY / 礼物"
        )
        self._touch_pair(pair, af, a, b, bf, t)
        return self._evaluate(a, acc, event)

    def _follow(self, event: Event, t: float) -> list[Alert]:
        a = event.actor
        b = event.target
        assert b is not None
        d = self.directory
        af = d.facts(a)
        acc = self._accounts.get(a)
        if not self._is_minor(d.facts(b), acc, b):
            return []
        link = d.link(a, b)
        stranger = not (link.mutual or link.approved or link.guardian) and not af.is_minor
        if not (stranger or af.restricted):
            return []
        acc = self._account(a)
        if t > acc.now:
            acc.now = t
        p = self.params
        if af.restricted:
            if acc.restricted is None:
                acc.restricted = _Times(p.fanout_window)
            acc.restricted.add(event.id, t, event.id)
        if stranger:
            if acc.follows is None:
                acc.follows = _Times(p.fanout_window)
                acc.follows_chain = _Times(p.chain_window)
            acc.follows.add(b, t, event.id)
            assert acc.follows_chain is not None
            acc.follows_chain.add(b, t, event.id)
        return self._evaluate(a, acc, event)

    def _shown(self, event: Event, t: float) -> list[Alert]:
        viewer = event.actor
        owner = event.counterpart
        if owner is None or owner == viewer:
            return []
        d = self.directory
        if not d.facts(owner).is_minor or d.facts(viewer).is_minor:
            return []
        link = d.link(viewer, owner)
        if link.mutual or link.approved or link.guardian:
            return []
        acc = self._account(viewer)
        if t > acc.now:
            acc.now = t
        if acc.shown is None:
            acc.shown = _Times(self.params.chain_window)
        acc.shown.add(owner, t, event.id)
        return []

    def _blocked(self, event: Event, t: float) -> list[Alert]:
        minor, target = event.actor, event.target
        assert target is not None
        if not self.directory.facts(minor).is_minor:
            return []
        acc = self._account(target)
        if t > acc.now:
            acc.now = t
        window = self.params.conversation_window
        if event.kind == "block":
            if acc.blocked_by is None:
                acc.blocked_by = _Times(window)
            acc.blocked_by.add(minor, t, event.id)
        else:
            if acc.reported_by is None:
                acc.reported_by = _Times(window)
            acc.reported_by.add(minor, t, event.id)
        return self._evaluate(target, acc, event)

    # ------------------------------------------------------------------------- scoring

    def _query_time(self, acc: _Account, at: datetime | None) -> tuple[float, bool]:
        if at is None:
            now = acc.now if self._clock is None else max(acc.now, self._clock)
        else:
            now = at.timestamp()
        return now, now == acc.now

    def _pair_score(self, pair: _Pair, now: float, mutate: bool) -> float:
        """A conversation's score in the window ending at now (cached unless cues expired)."""
        cutoff = now - self.params.conversation_window
        if pair.oldest > cutoff:
            return pair.score
        if not mutate:
            return score_value(
                self.params,
                self._window_evidence(pair, now),
                self._pair_factor(pair),
                pair.recipient != "minor",
            )
        pair.ev.expire(cutoff)
        pair.oldest = min((r.last for r in pair.ev.cues.values()), default=float("inf"))
        pair.score = score_value(
            self.params, pair.ev, self._pair_factor(pair), pair.recipient != "minor"
        )
        return pair.score

    def _best_pairs(
        self, acc: _Account, now: float, mutate: bool
    ) -> tuple[tuple[str, _Pair, float] | None, tuple[str, _Pair, float] | None]:
        """The riskiest conversation with a stranger, and with a friend or trusted contact."""
        cutoff = now - self.params.conversation_window
        best: list[tuple[str, _Pair, float] | None] = [None, None]
        stale: list[str] = []
        for who, pair in acc.pairs.items():
            if pair.last <= cutoff:
                stale.append(who)
                continue
            score = self._pair_score(pair, now, mutate)
            if score <= 0.0:
                continue
            cur = best[pair.related]
            if cur is None or score > cur[2] or (score == cur[2] and who < cur[0]):
                best[pair.related] = (who, pair, score)
        if mutate:
            for who in stale:
                del acc.pairs[who]
        return best[0], best[1]

    def _window_evidence(self, pair: _Pair, now: float) -> ConversationEvidence:
        cutoff = now - self.params.conversation_window
        if pair.oldest > cutoff:
            return pair.ev
        ev = replace(pair.ev, cues=dict(pair.ev.cues))
        ev.expire(cutoff)
        return ev

    def _score(self, acc: _Account, now: float, mutate: bool) -> float:
        """max(noisy OR of the contact signals and the riskiest stranger conversation,
        the riskiest conversation with a friend or trusted contact)."""
        p = self.params
        keep = 1.0
        if acc.messaged is not None:
            n = acc.messaged.count(now, mutate)
            keep *= 1.0 - p.fanout_weight * ramp(n, p.fanout_start, p.fanout_full)
        if acc.follows is not None:
            n = acc.follows.count(now, mutate)
            keep *= 1.0 - p.follow_weight * ramp(n, p.follow_start, p.follow_full)
        if acc.chains is not None:
            k = acc.chains.count(now, mutate)
            keep *= 1.0 - min(p.chain_max, 1.0 - (1.0 - p.chain_weight) ** k)
        if acc.cued is not None:
            n = acc.cued.count(now, mutate)
            keep *= 1.0 - p.cue_fanout_weight * ramp(n, p.cue_fanout_start, p.cue_fanout_full)
        if acc.restricted is not None:
            keep *= (1.0 - p.restricted_weight) ** acc.restricted.count(now, mutate)
        if acc.blocked_by is not None:
            keep *= (1.0 - p.blocked_weight) ** acc.blocked_by.count(now, mutate)
        if acc.reported_by is not None:
            keep *= (1.0 - p.reported_weight) ** acc.reported_by.count(now, mutate)
        related = 0.0
        if acc.pairs:
            stranger, friend = self._best_pairs(acc, now, mutate)
            if stranger is not None:
                keep *= 1.0 - stranger[2]
            if friend is not None:
                related = friend[2]
        return max(1.0 - keep, related)

    def _evaluate(self, account: str, acc: _Account, event: Event) -> list[Alert]:
        score = self._score(acc, acc.now, True)
        p = self.params
        level = 2 if score >= p.restrict else 1 if score >= p.review else 0
        if level <= acc.raised or score <= acc.ack:
            return []
        acc.raised = level
        signals = self._signals(acc, acc.now, True)
        detail: list[Signal] = []
        for best in sorted(
            (b for b in self._best_pairs(acc, acc.now, True) if b is not None),
            key=lambda b: -b[2],
        ):
            pair = best[1]
            detail.extend(
                conversation_signals(
                    p, pair.ev, self._pair_factor(pair), gate=pair.recipient != "minor"
                )
            )
        name = LEVELS[level - 1]
        ids = [event.id]
        for s in (*signals, *detail):
            ids.extend(s.event_ids)
        digest = hashlib.sha256(f"{account}\x00{name}\x00{event.id}".encode()).hexdigest()
        return [
            Alert(
                id=f"risk-{digest[:24]}",
                sender=account,
                level=name,
                score=score,
                at=event.at,
                signals=tuple(signals) + tuple(detail),
                minors=self._minors(acc, acc.now),
                event_ids=tuple(dict.fromkeys(ids))[:_MAX_LISTED],
                rule_id=self._restrict_rule if level == 2 else self._review_rule,
            )
        ]

    def _minors(self, acc: _Account, now: float) -> tuple[str, ...]:
        latest: dict[str, float] = {}
        for w in (
            acc.messaged,
            acc.chains,
            acc.cued,
            acc.follows,
            acc.blocked_by,
            acc.reported_by,
        ):
            if w is not None:
                for k, last, _ in w.live(now):
                    latest[k] = max(latest.get(k, last), last)
        for who, pair in acc.pairs.items():
            if pair.recipient == "minor" or pair.ev.minor_context:
                latest[who] = max(latest.get(who, pair.last), pair.last)
        ranked = sorted(latest, key=lambda k: (-latest[k], k))
        return tuple(ranked[:_MAX_LISTED])

    def _signals(self, acc: _Account, now: float, mutate: bool) -> list[Signal]:
        p = self.params
        out: list[Signal] = []
        hours = p.fanout_window / 3600

        def add(name: str, topic: str, weight: float, en: str, zh: str, ids: list[str]) -> None:
            if weight > 0:
                rule = p.rule(topic)
                out.append(
                    Signal(
                        name,
                        weight,
                        f"{rule.message_en}: {en}",
                        f"{rule.message_zh}：{zh}",
                        tuple(ids[:10]),
                    )
                )

        for name, window, topic, weight, start, full in (
            ("fanout_minors", acc.messaged, "fanout.weight", p.fanout_weight, p.fanout_start,
             p.fanout_full),
            ("fanout_follows", acc.follows, "follow.weight", p.follow_weight, p.follow_start,
             p.follow_full),
            ("cue_fanout", acc.cued, "cue_fanout.weight", p.cue_fanout_weight,
             p.cue_fanout_start, p.cue_fanout_full),
        ):  # fmt: skip
            if window is not None:
                if mutate:
                    window.expire(now)
                live = window.live(now)
                add(
                    name,
                    topic,
                    weight * ramp(len(live), start, full),
                    f"{len(live)} minors in {hours:g} h",
                    f"{hours:g}小时内{len(live)}名未成年人",
                    [x[2] for x in live],
                )
        if acc.chains is not None:
            live = acc.chains.live(now)
            k = len(live)
            add(
                "chain_shown_follow_message",
                "chain.weight",
                min(p.chain_max, 1.0 - (1.0 - p.chain_weight) ** k),
                f"{k} minors within {p.chain_window / 3600:g} h",
                f"{p.chain_window / 3600:g}小时内{k}名未成年人",
                [x[2] for x in live],
            )
        for name, window, topic, w in (
            ("restricted_attempt", acc.restricted, "restricted.weight", p.restricted_weight),
            ("blocked_by_minors", acc.blocked_by, "blocked.weight", p.blocked_weight),
            ("reported_by_minors", acc.reported_by, "reported.weight", p.reported_weight),
        ):
            if window is not None:
                live = window.live(now)
                k = len(live)
                add(name, topic, 1.0 - (1.0 - w) ** k, f"{k} times", f"{k}次", [x[2] for x in live])
        if acc.pairs:
            lex = load_lexicon().classes
            for best, name, en_kind, zh_kind in zip(
                self._best_pairs(acc, now, mutate),
                ("conversation", "conversation_related"),
                ("", " (a friend or trusted contact; combined by maximum)"),
                ("", "（好友或受信任的联系人，按最大值合并）"),
                strict=True,
            ):
                if best is None:
                    continue
                who, pair, score = best
                ev = self._window_evidence(pair, now)
                cues = sorted(ev.cues, key=lambda c: (-p.cue_weights.get(c, 0.0), c))
                ids = [r.event_id for r in ev.cues.values() if r.event_id]
                top = ev.cues[cues[0]] if cues else None
                labels_en = ", ".join(lex[c].label_en for c in cues if c in lex)
                labels_zh = "、".join(lex[c].label_zh for c in cues if c in lex)
                out.append(
                    Signal(
                        name,
                        score,
                        f"Conversation with {who}{en_kind}: {labels_en}",
                        f"与 {who} 的会话{zh_kind}：{labels_zh}",
                        tuple(ids[:10]),
                        top.excerpt if top is not None else None,
                    )
                )
        out.sort(key=lambda s: (-s.weight, s.name))
        return out

    # ------------------------------------------------------------------------- memory

    def _sweep(self) -> None:
        """Evict accounts whose latest activity is older than the longest window."""
        assert self._clock is not None
        cutoff = self._clock - self.params.horizon
        gone = [k for k, acc in self._accounts.items() if acc.now <= cutoff]
        for k in gone:
            del self._accounts[k]
        self._next_sweep = self._clock + self._sweep_every
