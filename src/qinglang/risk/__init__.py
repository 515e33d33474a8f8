"""Contact risk: grooming detection over platform events and messages.

Pure and fast: events in, per-sender and per-conversation risk out, with the signals that
produced it. Thresholds and windows come from the policy pack. Storage, HTTP intake and the
review queue are shells around it.
"""

from qinglang.risk.cues import CueClass, CueHit, detect_cues, load_lexicon, score_conversation
from qinglang.risk.directory import MemoryDirectory
from qinglang.risk.engine import LEVELS, EngineStats, RiskEngine
from qinglang.risk.events import Event, EventError, parse_event
from qinglang.risk.params import RiskParams
from qinglang.risk.stages import STAGE_ORDER
from qinglang.risk.types import (
    STRANGERS,
    UNKNOWN,
    AccountFacts,
    Alert,
    Directory,
    Link,
    Risk,
    Signal,
)

__all__ = [
    "LEVELS",
    "STAGE_ORDER",
    "STRANGERS",
    "UNKNOWN",
    "AccountFacts",
    "Alert",
    "CueClass",
    "CueHit",
    "Directory",
    "EngineStats",
    "Event",
    "EventError",
    "Link",
    "MemoryDirectory",
    "Risk",
    "RiskEngine",
    "RiskParams",
    "Signal",
    "detect_cues",
    "load_lexicon",
    "parse_event",
    "score_conversation",
]
