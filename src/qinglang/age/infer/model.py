"""Age models: the shipped interpretable default and the trainable text + signals model.

The default (`DefaultModel`) adds the weights of the signals (`qinglang.age.infer.signals`;
weights and lexicons in ``qinglang/age/data/age_lexicon.json``, hand-set by the qinglang
authors) to a bias and maps the sum through a Platt curve to p(under 18). Nothing in it was
trained on third-party data; see docs/model_card_age.md.

The trainable model (`train`) is the word TF-IDF + logistic regression of `qinglang.risk.model`
(reused, not copied) over post and profile text, with the signals appended as pseudo-terms.
The inner cross-validation on the training rows picks C by AUC and fits the Platt calibration
on the out-of-fold scores of the chosen C, so nothing is calibrated on rows it is judged on.
When the training rows hold at least `MIN_CHILD_ROWS` records under 14 and as many at or over
14, a second classifier for under 14 is fitted on the same features the same way (own inner CV
for C, own out-of-fold Platt calibration). It is saved as one ``.npz`` file (no pickle) in the
risk model's format with ``meta.kind`` set to ``qinglang.age.model/2``; the under-14 feature
families are stored with a ``u14_`` prefix and ``meta.under14`` says whether one was fitted.
Files of kind ``qinglang.age.model/1`` (no under-14 classifier) still load and use the rule.

The rule (the shipped default, and a trained model without an under-14 classifier):
p(under 14) = p(under 18) × q, where q is P(under 14 | under 18): high when a signal states an
age under 14, low when it states 14–17, else the prior (all in the lexicon file).
Every model returns p(under 14) ≤ p(under 18).
"""

from __future__ import annotations

import itertools
import math
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from qinglang.age.bands import band_for
from qinglang.age.infer.estimate import AgeEstimate, Signal
from qinglang.age.infer.records import AgeRecord, parse_record
from qinglang.age.infer.signals import lexicon, logit, record_signals
from qinglang.risk import model as rm

__all__ = [
    "KIND",
    "MIN_CHILD_ROWS",
    "AgeCV",
    "AgeModel",
    "DefaultModel",
    "Metrics",
    "TrainedModel",
    "auc",
    "brier",
    "cross_validate",
    "cross_validate_ages",
    "evaluate",
    "precision_at_recall",
    "reliability_png",
    "score",
    "train",
]

KIND: Final = "qinglang.age.model/2"
KINDS: Final = frozenset({"qinglang.age.model/1", KIND})
"""Kinds `TrainedModel.load` reads (/1: under-18 classifier only)."""
MIN_CHILD_ROWS: Final = 20
"""Fewest under-14 rows (and rows at or over 14) to fit an under-14 classifier; else the rule."""
CHILD_PREFIX: Final = "u14_"
FloatArray = rm.FloatArray
IntArray = rm.IntArray


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _reference_date(record: AgeRecord, on: date | None) -> date:
    """Ages in text are read as of `on`, else the record's as_of or latest post, else today."""
    if on is not None:
        return on
    ref = record.reference_date()
    if ref is not None:
        return ref
    from qinglang.age.ages import SHANGHAI

    return datetime.now(SHANGHAI).date()


def _p14(p18: float, signals: Sequence[Signal], minor_below: int, child_below: int) -> float:
    q = lexicon().default["q_child_given_minor"]
    aged = [s for s in signals if s.age is not None and s.weight > 0]
    if aged:
        best = max(aged, key=lambda s: s.weight)
        assert best.age is not None
        qq = q["stated_child"] if best.age < child_below else q["stated_teen"]
        if best.age >= minor_below:
            qq = q["stated_teen"]
    else:
        qq = q["prior"]
    return min(p18 * float(qq), p18)


def _point_age(p18: float, p14: float, signals: Sequence[Signal], minor_below: int) -> int:
    rep = lexicon().default["representative_age"]
    aged = [s for s in signals if s.age is not None and s.weight != 0]
    if aged:
        best = max(aged, key=lambda s: abs(s.weight))
        assert best.age is not None
        if (best.age < minor_below) == (p18 >= 0.5):
            return best.age
    if p18 < 0.5:
        return int(rep["adult"])
    return int(rep["child"]) if p14 >= 0.5 else int(rep["teen"])


@dataclass(frozen=True, slots=True)
class DefaultModel:
    """The shipped interpretable model: additive signal weights, Platt-calibrated."""

    name: str = "default"

    def logit(self, signals: Sequence[Signal]) -> float:
        """Uncalibrated additive score."""
        k = lexicon().default
        return logit(signals, float(k["bias"]), float(k["clip"]))

    def p_under18(self, record: AgeRecord, signals: Sequence[Signal]) -> float:
        """Calibrated probability of being under 18."""
        k = lexicon().default
        return _sigmoid(float(k["platt_a"]) * self.logit(signals) + float(k["platt_b"]))

    def p_under14(
        self,
        record: AgeRecord,
        signals: Sequence[Signal],
        p18: float,
        minor_below: int = 18,
        child_below: int = 14,
    ) -> float:
        """p(under 14) by the rule (p(under 18) × q), never above `p18`."""
        return _p14(p18, signals, minor_below, child_below)


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A platform's own model: risk-model TF-IDF + LR over text and signal tokens, calibrated."""

    inner: rm.GroomingModel
    platt: tuple[float, float]
    name: str = "trained"
    child: rm.GroomingModel | None = None
    """The under-14 classifier; None: p(under 14) by the rule (too few under-14 rows)."""
    child_platt: tuple[float, float] = (1.0, 0.0)

    @property
    def meta(self) -> dict[str, Any]:
        """Training metadata (data, date, C, inner-CV metrics)."""
        return self.inner.meta

    def logits(
        self, records: Sequence[AgeRecord], signals: Sequence[Sequence[Signal]]
    ) -> FloatArray:
        """Uncalibrated log-odds for these records."""
        return _log_odds(self.inner.scores(_docs(records, signals)))

    def p_under18(self, record: AgeRecord, signals: Sequence[Signal]) -> float:
        """Calibrated probability of being under 18."""
        return float(self.calibrated(self.logits([record], [signals]))[0])

    def calibrated(self, z: FloatArray) -> FloatArray:
        """Platt map of log-odds to probabilities."""
        return _platt(self.platt, z)

    def child_logits(
        self, records: Sequence[AgeRecord], signals: Sequence[Sequence[Signal]]
    ) -> FloatArray:
        """Uncalibrated under-14 log-odds (needs the under-14 classifier)."""
        if self.child is None:
            raise ValueError("this model has no under-14 classifier")
        return _log_odds(self.child.scores(_docs(records, signals)))

    def calibrated_child(self, z: FloatArray) -> FloatArray:
        """Platt map of under-14 log-odds to probabilities."""
        return _platt(self.child_platt, z)

    def p_under14(
        self,
        record: AgeRecord,
        signals: Sequence[Signal],
        p18: float,
        minor_below: int = 18,
        child_below: int = 14,
    ) -> float:
        """Calibrated p(under 14) of the under-14 classifier, else the rule; never above `p18`."""
        if self.child is None:
            return _p14(p18, signals, minor_below, child_below)
        p = float(self.calibrated_child(self.child_logits([record], [signals]))[0])
        return min(p, p18)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write one .npz file (no pickle); the under-14 families carry the ``u14_`` prefix."""
        parts = self.inner.parts
        if self.child is not None:
            parts += tuple(replace(p, name=CHILD_PREFIX + p.name) for p in self.child.parts)
        replace(self.inner, parts=parts).save(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainedModel:
        """Read a model written by save (kind /1 or /2); ModelError if it is not an age model."""
        whole = rm.GroomingModel.load(path)
        kind = whole.meta.get("kind")
        if kind not in KINDS:
            raise rm.ModelError(f"{os.fspath(path)}: not a qinglang age model (kind {kind!r})")
        main = tuple(p for p in whole.parts if not p.name.startswith(CHILD_PREFIX))
        kids = tuple(
            replace(p, name=p.name[len(CHILD_PREFIX) :])
            for p in whole.parts
            if p.name.startswith(CHILD_PREFIX)
        )
        a, b = whole.meta["platt"]
        u14 = whole.meta.get("under14") or {}
        child, child_platt = None, (1.0, 0.0)
        if u14.get("fitted"):
            if len(kids) != len(main):
                raise rm.ModelError(f"{os.fspath(path)}: under-14 classifier parts missing")
            child = replace(whole, parts=kids)
            ca, cb = u14["platt"]
            child_platt = (float(ca), float(cb))
        elif kids:
            raise rm.ModelError(f"{os.fspath(path)}: under-14 parts without meta.under14")
        return cls(
            replace(whole, parts=main),
            (float(a), float(b)),
            child=child,
            child_platt=child_platt,
        )


def _log_odds(p: FloatArray) -> FloatArray:
    """Log-odds of probabilities, clipped away from 0 and 1."""
    s = np.clip(p, 1e-9, 1 - 1e-9)
    out: FloatArray = np.log(s / (1 - s))
    return out


def _platt(ab: tuple[float, float], z: FloatArray) -> FloatArray:
    """Logistic map a·z + b to probabilities."""
    a, b = ab
    out: FloatArray = 1.0 / (1.0 + np.exp(-(a * np.asarray(z, dtype=np.float64) + b)))
    return out


AgeModel = DefaultModel | TrainedModel


def _signal_tokens(signals: Sequence[Signal]) -> str:
    toks = []
    for s in signals:
        tag = s.name.replace(":", "_")
        if s.age is not None:
            tag += "_u18" if s.weight > 0 else "_adult"
        toks.append(f"zzsig{tag.replace('_', '')}")
    return " ".join(toks)


def _docs(records: Sequence[AgeRecord], signals: Sequence[Sequence[Signal]]) -> list[str]:
    return [
        f"{r.profile_text}\n{r.post_text}\n{_signal_tokens(s)}"
        for r, s in zip(records, signals, strict=True)
    ]


def _policy_numbers(policy: Any) -> tuple[int, int, float, float, Any]:
    """Minor and child ages, suspect thresholds and content bands from the pack."""
    if policy is None:
        from qinglang.policy import load_policy

        policy = _default_policy(load_policy)
    minor = int(policy.require("age.minor_below").value)
    child = int(policy.require("age.child_below").value)
    t18 = policy.rule("age.infer.suspect_under18", None)
    t14 = policy.rule("age.infer.suspect_under14", None)
    return (
        minor,
        child,
        float(t18.value) if t18 is not None and t18.value is not None else 0.5,
        float(t14.value) if t14 is not None and t14.value is not None else 0.5,
        policy.bands("content") if "content" in policy.bandsets else [],
    )


_POLICY_CACHE: dict[str, Any] = {}


def _default_policy(load: Callable[[str], Any]) -> Any:
    if "cn" not in _POLICY_CACHE:
        _POLICY_CACHE["cn"] = load("cn")
    return _POLICY_CACHE["cn"]


def score(
    record: AgeRecord | dict[str, Any],
    model: AgeModel | None = None,
    policy: Any = None,
    *,
    on: date | None = None,
    detector: bool = True,
) -> AgeEstimate:
    """Score one record (see `qinglang.age.infer.score_record`)."""
    rec = parse_record(record)
    m: AgeModel = model if model is not None else DefaultModel()
    minor, child, t18, t14, bands = _policy_numbers(policy)
    tz = getattr(policy, "tz", None)
    signals = record_signals(rec, _reference_date(rec, on), minor, tz, detector)
    p18 = m.p_under18(rec, signals)
    p14 = m.p_under14(rec, signals, p18, minor, child)
    b = band_for(_point_age(p18, p14, signals, minor), bands) if bands else None
    ordered = tuple(sorted(signals, key=lambda s: -abs(s.weight)))
    return AgeEstimate(
        rec.user_id,
        p18,
        p14,
        b.id if b is not None else None,
        p18 >= t18,
        p14 >= t14,
        ordered,
        m.name,
    )


# ---------------------------------------------------------------- metrics


def auc(labels: IntArray, scores: FloatArray) -> float:
    """Area under the ROC curve (ties count half); nan with one class only."""
    y = np.asarray(labels) > 0
    npos, nneg = int(y.sum()), int((~y).sum())
    if not npos or not nneg:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = np.asarray(scores)[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    return float((r[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def brier(labels: IntArray, probs: FloatArray) -> float:
    """Mean squared error of probabilities against 0/1 labels."""
    return float(np.mean((np.asarray(probs) - (np.asarray(labels) > 0)) ** 2))


def precision_at_recall(labels: IntArray, scores: FloatArray, recall: float) -> tuple[float, float]:
    """(precision, threshold) at the highest threshold whose recall reaches `recall`."""
    y = np.asarray(labels) > 0
    order = np.argsort(-np.asarray(scores), kind="stable")
    s, yy = np.asarray(scores)[order], y[order]
    tp = np.cumsum(yy)
    need = math.ceil(recall * int(y.sum()) - 1e-9)
    k = int(np.searchsorted(tp, need))
    k = min(k, len(s) - 1)
    thr = s[k]
    sel = np.asarray(scores) >= thr
    return float((sel & y).sum() / max(int(sel.sum()), 1)), float(thr)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Evaluation figures at a probability threshold."""

    n: int
    positives: int
    auc: float
    brier: float
    threshold: float
    precision: float
    recall: float
    precision_at_90_recall: float

    def to_dict(self) -> dict[str, float | int]:
        """JSON form, rounded to 4 places."""
        return {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in (
                ("n", self.n),
                ("positives", self.positives),
                ("auc", self.auc),
                ("brier", self.brier),
                ("threshold", self.threshold),
                ("precision", self.precision),
                ("recall", self.recall),
                ("precision_at_90_recall", self.precision_at_90_recall),
            )
        }


def evaluate(labels: IntArray, probs: FloatArray, threshold: float) -> Metrics:
    """AUC, Brier, precision and recall at `threshold`, precision at 90 % recall."""
    y = np.asarray(labels) > 0
    p = np.asarray(probs, dtype=np.float64)
    sel = p >= threshold
    tp = int((sel & y).sum())
    return Metrics(
        len(y),
        int(y.sum()),
        auc(y.astype(np.int64), p),
        brier(y.astype(np.int64), p),
        threshold,
        tp / max(int(sel.sum()), 1),
        tp / max(int(y.sum()), 1),
        precision_at_recall(y.astype(np.int64), p, 0.9)[0],
    )


def fit_platt(z: FloatArray, labels: IntArray) -> tuple[float, float]:
    """Platt scaling (a, b) on scores z by Newton's method with Platt's smoothed targets."""
    y = np.asarray(labels) > 0
    npos, nneg = int(y.sum()), int((~y).sum())
    t = np.where(y, (npos + 1) / (npos + 2), 1 / (nneg + 2))
    a, b = 1.0, 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a * z + b)))
        w = np.maximum(p * (1 - p), 1e-12)
        g = np.array([np.sum((p - t) * z), np.sum(p - t)])
        h = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]])
        h += 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - float(step[0]), b - float(step[1])
        if float(np.abs(step).max()) < 1e-10:
            break
    return a, b


# ---------------------------------------------------------------- training


Progress = Callable[[str, int, int], None]
CONFIG: Final = rm.Config(
    word_ngrams=(1, 1), min_df=2, max_terms=300_000, c_grid=(10.0, 30.0, 100.0)
)


def _labels(records: Sequence[AgeRecord], minor_below: int) -> IntArray:
    if any(r.age is None for r in records):
        raise ValueError("every training record needs a verified age")
    return np.asarray([int(r.age is not None and r.age < minor_below) for r in records], np.int64)


@dataclass(frozen=True, slots=True)
class _Fit:
    """One calibrated classifier fitted by nested CV: final parts, Platt, C and inner figures."""

    parts: tuple[rm._Part, ...]
    platt: tuple[float, float]
    c: float
    folds: int
    auc_by_c: dict[str, float]
    inner_auc: float
    inner_brier: float


def _fit(
    counts: Any,
    y: IntArray,
    config: rm.Config,
    seed: int,
    progress: Progress | None,
    stage: str,
) -> _Fit:
    """Inner CV picks C by AUC; Platt on the out-of-fold scores of that C; refit on all rows."""
    k = min(config.inner_folds, rm._max_folds(y))
    folds = rm.stratified_folds(y, k, seed)
    all_idx = np.arange(len(y))
    best: tuple[float, float, FloatArray] | None = None
    by_c: dict[str, float] = {}
    total, done = len(folds) * len(config.c_grid), 0
    for c in config.c_grid:
        oof = np.zeros(len(y))
        for test in folds:
            tr = np.setdiff1d(all_idx, test)
            parts = rm._fit_parts(counts.take(tr), y[tr], config, c)
            oof[test] = rm._score_parts(parts, counts.take(test))
            done += 1
            if progress is not None:
                progress(stage, done, total)
        a = auc(y, oof)
        by_c[str(c)] = round(a, 4)
        if best is None or a > best[1]:
            best = (c, a, oof)
    assert best is not None
    c, inner_auc, oof = best
    zo = np.log(np.clip(oof, 1e-9, 1 - 1e-9) / np.clip(1 - oof, 1e-9, 1))
    platt = fit_platt(zo, y)
    fams = counts.families
    final = tuple(
        replace(p, kept=None, vocab=rm.Vocabulary.build([fam.terms[i] for i in p.kept], p.idf))
        for p, fam in zip(rm._fit_parts(counts, y, config, c), fams, strict=True)
        if p.kept is not None
    )
    inner_brier = brier(y, _platt(platt, zo))
    return _Fit(final, platt, c, k, by_c, inner_auc, inner_brier)


def train(
    records: Sequence[AgeRecord],
    minor_below: int = 18,
    config: rm.Config = CONFIG,
    seed: int = 0,
    data_name: str = "",
    progress: Progress | None = None,
    _counts: Any = None,
    _signals: Sequence[Sequence[Signal]] | None = None,
    child_below: int = 14,
) -> TrainedModel:
    """Train from verified ages: under 18, and under 14 when there are enough such rows."""
    y = _labels(records, minor_below)
    y14 = _labels(records, child_below)
    sigs = _signals if _signals is not None else [_sig(r, minor_below) for r in records]
    docs = _docs(records, sigs)
    counts = _counts if _counts is not None else rm._Counts.of(docs, config)
    f18 = _fit(counts, y, config, seed, progress, "inner cross-validation")
    n14 = int(y14.sum())
    child: rm.GroomingModel | None = None
    child_platt = (1.0, 0.0)
    under14: dict[str, Any] = {"fitted": False, "positives": n14, "child_below": child_below}
    if min(n14, len(y14) - n14) >= MIN_CHILD_ROWS:
        f14 = _fit(counts, y14, config, seed, progress, "under-14 inner cross-validation")
        child = rm.GroomingModel(config, f14.parts, 0.5, {})
        child_platt = f14.platt
        under14 |= {
            "fitted": True,
            "platt": list(f14.platt),
            "c": f14.c,
            "inner_cv": {
                "folds": f14.folds,
                "auc_by_c": f14.auc_by_c,
                "auc": round(f14.inner_auc, 4),
                "brier": round(f14.inner_brier, 4),
            },
        }
    else:
        under14["rule"] = (
            f"{n14} rows under {child_below} and {len(y14) - n14} at or over it (fewer than "
            f"{MIN_CHILD_ROWS} on a side): p(under {child_below}) = p(under {minor_below}) × q, "
            "q from the strongest stated age (lexicon default_model.q_child_given_minor)"
        )
    meta = {
        "kind": KIND,
        "platt": list(f18.platt),
        "minor_below": minor_below,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": data_name,
        "rows": len(y),
        "positives": int(y.sum()),
        "seed": seed,
        "c": f18.c,
        "inner_cv": {"folds": f18.folds, "auc_by_c": f18.auc_by_c, "auc": round(f18.inner_auc, 4)},
        "under14": under14,
    }
    if child is not None:
        child = replace(child, meta=meta)
    return TrainedModel(
        rm.GroomingModel(config, f18.parts, 0.5, meta),
        f18.platt,
        child=child,
        child_platt=child_platt,
    )


def _sig(r: AgeRecord, minor_below: int) -> list[Signal]:
    return record_signals(r, _reference_date(r, None), minor_below, detector=False)


@dataclass(frozen=True, slots=True)
class AgeCV:
    """Out-of-fold results of nested CV for under 18 and under 14."""

    y18: IntArray
    p18: FloatArray
    y14: IntArray
    p14: FloatArray
    folds: list[IntArray]
    child_fitted: list[bool]
    """Per outer fold: True if an under-14 classifier was fitted, False if the rule was used."""


def cross_validate_ages(
    records: Sequence[AgeRecord],
    k: int = 5,
    seed: int = 0,
    minor_below: int = 18,
    config: rm.Config = CONFIG,
    progress: Progress | None = None,
    child_below: int = 14,
) -> AgeCV:
    """Nested K-fold CV (folds stratified on under 18): out-of-fold p(under 18), p(under 14)."""
    y = _labels(records, minor_below)
    y14 = _labels(records, child_below)
    sigs = [_sig(r, minor_below) for r in records]
    docs = _docs(records, sigs)
    counts = rm._Counts.of(docs, config)
    folds = rm.stratified_folds(y, k, seed)
    all_idx = np.arange(len(y))
    probs = np.zeros(len(y))
    p14 = np.zeros(len(y))
    fitted: list[bool] = []
    for j, test in enumerate(folds):
        tr = np.setdiff1d(all_idx, test)
        m = train(
            [records[i] for i in tr],
            minor_below,
            config,
            seed + 1 + j,
            _counts=counts.take(tr),
            _signals=[sigs[i] for i in tr],
            child_below=child_below,
        )
        recs, ss = [records[i] for i in test], [sigs[i] for i in test]
        probs[test] = m.calibrated(m.logits(recs, ss))
        p14[test] = [
            m.p_under14(r, s, float(p), minor_below, child_below)
            for r, s, p in zip(recs, ss, probs[test], strict=True)
        ]
        fitted.append(m.child is not None)
        if progress is not None:
            progress("outer folds", j + 1, len(folds))
    return AgeCV(y, probs, y14, p14, folds, fitted)


def cross_validate(
    records: Sequence[AgeRecord],
    k: int = 5,
    seed: int = 0,
    minor_below: int = 18,
    config: rm.Config = CONFIG,
    progress: Progress | None = None,
) -> tuple[IntArray, FloatArray, list[IntArray]]:
    """Nested K-fold CV: (labels, out-of-fold calibrated p(under 18), the test folds)."""
    cv = cross_validate_ages(records, k, seed, minor_below, config, progress)
    return cv.y18, cv.p18, cv.folds


# ---------------------------------------------------------------- reliability plot


def reliability_png(
    labels: IntArray, probs: FloatArray, path: str | os.PathLike[str], bins: int = 10
) -> list[tuple[float, float, int]]:
    """Write a reliability diagram (PNG, numpy + zlib only); return (mean p, rate, n) per bin.

    Grey diagonal: perfect calibration; blue squares: observed rate of positives per bin of
    predicted probability (square size grows with the bin's count); red line joins them.
    """
    y = np.asarray(labels) > 0
    p = np.clip(np.asarray(probs, dtype=np.float64), 0, 1)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    pts = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            pts.append((float(p[sel].mean()), float(y[sel].mean()), int(sel.sum())))
    size, pad = 400, 30
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    span = size - 2 * pad

    def xy(px: float, py: float) -> tuple[int, int]:
        return pad + round(px * span), size - pad - round(py * span)

    def line(
        a: tuple[float, float], b: tuple[float, float], col: tuple[int, int, int], w: int
    ) -> None:
        (x0, y0), (x1, y1) = xy(*a), xy(*b)
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for t in np.linspace(0, 1, n + 1):
            x, yv = round(x0 + t * (x1 - x0)), round(y0 + t * (y1 - y0))
            img[max(yv - w, 0) : yv + w + 1, max(x - w, 0) : x + w + 1] = col

    line((0, 0), (1, 0), (0, 0, 0), 0)
    line((0, 0), (0, 1), (0, 0, 0), 0)
    for t in (0.25, 0.5, 0.75, 1.0):
        line((t, 0), (t, 0.02), (0, 0, 0), 0)
        line((0, t), (0.02, t), (0, 0, 0), 0)
    line((0, 0), (1, 1), (170, 170, 170), 0)
    for (pa, ra, _), (pb, rb, _) in itertools.pairwise(pts):
        line((pa, ra), (pb, rb), (200, 30, 30), 1)
    total = max(len(p), 1)
    for mp, rate, n in pts:
        x, yv = xy(mp, rate)
        r = 2 + round(8 * math.sqrt(n / total))
        img[max(yv - r, 0) : yv + r + 1, max(x - r, 0) : x + r + 1] = (30, 80, 200)
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = size.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    Path(path).write_bytes(png)
    return pts
