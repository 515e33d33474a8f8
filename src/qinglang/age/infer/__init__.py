"""Age inference: signals of age from profile text, posts, detector findings, behaviour and the
social graph; a shipped interpretable default and a trainable model; calibrated p(under 18),
p(under 14) and an age band.

The entry point for the batch scan and the API is `score_record`: pure and deterministic.

>>> est = score_record({"user_id": "u1", "bio": "初二学生，14岁"})
>>> est.suspected, est.band
(True, '12to15')
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from qinglang.age.infer.estimate import AgeEstimate, Signal
from qinglang.age.infer.records import AgeRecord, Post, RecordError, parse_record

if TYPE_CHECKING:
    from qinglang.age.infer.model import AgeModel
    from qinglang.policy import Policy

__all__ = [
    "AgeEstimate",
    "AgeRecord",
    "Post",
    "RecordError",
    "Signal",
    "parse_record",
    "score_record",
]


def score_record(
    record: AgeRecord | dict[str, Any],
    model: AgeModel | None = None,
    policy: Policy | None = None,
    *,
    on: date | None = None,
    detector: bool = True,
) -> AgeEstimate:
    """Score one account: p(under 18), p(under 14), band, signals and the pack's suspect flag.

    `record` is an `AgeRecord` or a dict as in the JSONL input (parsed with `parse_record`,
    which raises `RecordError` for a bad record). `model` defaults to the shipped interpretable
    model; `policy` to the ``cn`` pack. Ages in text are read as of `on`, else the record's
    ``as_of``, else its latest post date, else today (Asia/Shanghai): pass `on` or ``as_of``
    for results that do not depend on the day. `detector=False` skips the PII detector.
    """
    from qinglang.age.infer.model import score

    return score(record, model, policy, on=on, detector=detector)
