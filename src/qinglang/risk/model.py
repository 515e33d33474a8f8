"""A trainable grooming classifier for whole conversations, in numpy only.

Features: word unigrams and bigrams (lower-cased, punctuation runs and emoticons kept as tokens,
single-letter chat words such as "u" and "r" kept), with sublinear term frequency, smoothed
inverse document frequency and L2 row normalisation; optionally character n-grams inside word
boundaries. The classifier is L2-regularised logistic regression with balanced class weights,
fitted by L-BFGS. The regularisation strength C is picked from a small grid, and the alert
threshold is picked to maximise F0.5 subject to a precision floor, both on out-of-fold scores of
an inner cross-validation over the training rows only: nothing is ever chosen on rows it is
later judged on.

A model is one ``.npz`` file (no pickle) holding the vocabulary, idf, weights and a JSON
metadata record (features, training data, date, threshold, cross-validated metrics). No model is
shipped with qinglang: a platform trains its own with ``qinglang risk train``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FORMAT: Final = "qinglang.risk.model/1"
TEXT_COLUMN: Final = "segment"
LABEL_COLUMN: Final = "label"
MAX_LINE_BYTES: Final = 1 << 22
"""A labelled row longer than this (4 MiB) is refused."""

Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) while training or cross-validating."""


class DataError(ValueError):
    """A labelled CSV that cannot be used; the message names the line."""


class ModelError(ValueError):
    """A model file that cannot be loaded."""


# ---------------------------------------------------------------- data


def read_labelled_csv(path: str | os.PathLike[str]) -> tuple[list[str], IntArray]:
    """Read ``segment,label`` rows (label 0 or 1) from a UTF-8 CSV, one record a line."""
    try:
        stream = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise DataError(f"cannot read {os.fspath(path)}: {exc.strerror}") from None
    with stream:
        return parse_labelled_csv(stream)


def parse_labelled_csv(lines: Iterable[bytes]) -> tuple[list[str], IntArray]:
    """Parse labelled CSV lines (bytes); the first bad line raises DataError naming it."""
    texts: list[str] = []
    labels: list[int] = []
    header: list[str] | None = None
    ti = li = 0
    n = 0
    for n, raw in enumerate(lines, start=1):
        body = raw.rstrip(b"\r\n")
        if len(body) > MAX_LINE_BYTES:
            raise DataError(
                f"line {n}: {len(body):,} bytes, over the {MAX_LINE_BYTES:,}-byte limit"
            )
        if b"\0" in body:
            raise DataError(f"line {n}: contains a NUL byte (not a text CSV)")
        try:
            text = body.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"line {n}: invalid UTF-8 at byte {exc.start}") from None
        if header is not None and not text.strip():
            continue
        try:
            row = next(csv.reader(io.StringIO(text), strict=True), [])
        except csv.Error as exc:
            raise DataError(f"line {n}: not valid CSV ({exc})") from None
        if header is None:
            header = [h.strip() for h in row]
            missing = [c for c in (TEXT_COLUMN, LABEL_COLUMN) if c not in header]
            if missing:
                shown = ",".join(header)[:80]
                raise DataError(
                    f"line 1: the CSV header needs columns {TEXT_COLUMN} and {LABEL_COLUMN} "
                    f"(missing {', '.join(missing)}; got {shown!r})"
                )
            ti, li = header.index(TEXT_COLUMN), header.index(LABEL_COLUMN)
            continue
        if len(row) != len(header):
            raise DataError(f"line {n}: {len(row)} fields, the header has {len(header)}")
        label = row[li].strip()
        if label not in ("0", "1"):
            raise DataError(f"line {n}: label must be 0 or 1, got {label[:20]!r}")
        texts.append(row[ti])
        labels.append(int(label))
    if header is None:
        raise DataError("line 1: empty file, expected a CSV header segment,label")
    if not texts:
        raise DataError(f"line {n}: no data rows after the header")
    return texts, np.asarray(labels, dtype=np.int64)


# ---------------------------------------------------------------- features

_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]+")
_REPEAT = re.compile(r"(.)\1{3,}")


def tokens(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens; runs of one character cut to three."""
    return _TOKEN.findall(_REPEAT.sub(r"\1\1\1", text.lower()))


def word_ngrams(text: str, lo: int, hi: int) -> Counter[str]:
    """Counts of word n-grams of lengths lo..hi (joined with a space)."""
    toks = tokens(text)
    counts: Counter[str] = Counter()
    for k in range(lo, hi + 1):
        if k == 1:
            counts.update(toks)
        else:
            counts.update(" ".join(toks[i : i + k]) for i in range(len(toks) - k + 1))
    return counts


def char_ngrams(text: str, lo: int, hi: int) -> Counter[str]:
    """Counts of character n-grams inside space-padded words (like scikit-learn's char_wb)."""
    counts: Counter[str] = Counter()
    for tok in tokens(text):
        w = f" {tok} "
        for k in range(lo, hi + 1):
            if len(w) < k:
                break
            counts.update(w[i : i + k] for i in range(len(w) - k + 1))
    return counts


@dataclass(frozen=True, slots=True)
class Csr:
    """A compressed sparse row matrix with the two products logistic regression needs."""

    data: FloatArray
    indices: IntArray
    indptr: IntArray
    n_cols: int

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.indptr) - 1

    def rows(self) -> IntArray:
        """The row index of every stored value."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), np.diff(self.indptr))

    def take(self, idx: IntArray) -> Csr:
        """The sub-matrix of these rows, in this order."""
        starts, ends = self.indptr[idx], self.indptr[idx + 1]
        lengths = ends - starts
        indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        pos = (
            np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
            if len(idx)
            else np.zeros(0, dtype=np.int64)
        )
        return Csr(self.data[pos], self.indices[pos], indptr, self.n_cols)


@dataclass(frozen=True, slots=True)
class _Design:
    """A Csr with its row ids precomputed, for repeated products."""

    x: Csr
    rows: IntArray

    @classmethod
    def of(cls, x: Csr) -> _Design:
        return cls(x, x.rows())

    def dot(self, w: FloatArray) -> FloatArray:
        weights = self.x.data * w[self.x.indices]
        out = np.bincount(self.rows, weights=weights, minlength=self.x.n_rows)
        return np.asarray(out, dtype=np.float64)

    def tdot(self, g: FloatArray) -> FloatArray:
        weights = self.x.data * g[self.rows]
        out = np.bincount(self.x.indices, weights=weights, minlength=self.x.n_cols)
        return np.asarray(out, dtype=np.float64)


def _tfidf(counts: Csr, idf: FloatArray) -> Csr:
    """Sublinear tf (1 + ln count) times idf, each row scaled to unit length."""
    rows = counts.rows()
    vals = (1.0 + np.log(counts.data)) * idf[counts.indices]
    norms = np.sqrt(np.bincount(rows, weights=vals * vals, minlength=counts.n_rows))
    norms[norms == 0] = 1.0
    return replace(counts, data=vals / norms[rows])


def _count_matrix(docs: Sequence[Counter[str]], index: dict[str, int], n_cols: int) -> Csr:
    """Raw counts of known terms, one row a document, columns sorted."""
    data: list[float] = []
    indices: list[int] = []
    indptr = [0]
    for d in docs:
        cols = sorted((index[t], c) for t, c in d.items() if t in index)
        indices.extend(i for i, _ in cols)
        data.extend(float(c) for _, c in cols)
        indptr.append(len(indices))
    return Csr(
        np.asarray(data, dtype=np.float64),
        np.asarray(indices, dtype=np.int64),
        np.asarray(indptr, dtype=np.int64),
        n_cols,
    )


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Terms and their idf; turns n-gram counts into L2-normalised sublinear tf-idf rows."""

    terms: tuple[str, ...]
    idf: FloatArray
    index: dict[str, int] = field(compare=False, repr=False)

    @classmethod
    def build(cls, terms: Sequence[str], idf: FloatArray) -> Vocabulary:
        """A vocabulary from its terms (in column order) and idf."""
        return cls(tuple(terms), idf, {t: i for i, t in enumerate(terms)})

    def transform(self, docs: Sequence[Counter[str]]) -> Csr:
        """The tf-idf matrix of these documents (unknown terms dropped)."""
        return _tfidf(_count_matrix(docs, self.index, len(self.terms)), self.idf)


@dataclass(frozen=True, slots=True)
class _Family:
    """Raw n-gram counts of a corpus for one feature family, over all terms seen in it.

    Column ids are the corpus's sorted terms: numbering is not learning, so it may span every
    row; which terms are kept and their idf are fitted on training rows only (`_select_terms`).
    """

    name: str
    terms: tuple[str, ...]
    counts: Csr

    @classmethod
    def of(cls, name: str, docs: Sequence[Counter[str]]) -> _Family:
        terms = sorted(set().union(*(d.keys() for d in docs))) if docs else []
        index = {t: i for i, t in enumerate(terms)}
        return cls(name, tuple(terms), _count_matrix(docs, index, len(terms)))

    def take(self, idx: IntArray) -> _Family:
        return _Family(self.name, self.terms, self.counts.take(idx))


def _select_terms(counts: Csr, min_df: int, max_terms: int) -> tuple[IntArray, FloatArray]:
    """Column ids seen in at least min_df rows (the max_terms most frequent), and their idf."""
    df = np.bincount(counts.indices, minlength=counts.n_cols)
    kept = np.flatnonzero(df >= min_df)
    if len(kept) > max_terms:
        kept = np.sort(kept[np.lexsort((kept, -df[kept]))[:max_terms]])
    n = counts.n_rows
    idf = np.log((1.0 + n) / (1.0 + df[kept])) + 1.0
    return kept.astype(np.int64), idf


def _restrict(counts: Csr, kept: IntArray) -> Csr:
    """The counts of the kept columns only, renumbered 0..len(kept)-1."""
    remap = np.full(counts.n_cols, -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept), dtype=np.int64)
    new_cols = remap[counts.indices]
    keep = new_cols >= 0
    rows = counts.rows()[keep]
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=counts.n_rows))))
    return Csr(counts.data[keep], new_cols[keep], indptr.astype(np.int64), len(kept))


# ---------------------------------------------------------------- logistic regression


def _dot(a: FloatArray, b: FloatArray) -> float:
    """a·b without BLAS: a threaded BLAS dot is far slower on short vectors on a busy machine."""
    return float(np.multiply(a, b).sum())


def _log1pexp(z: FloatArray) -> FloatArray:
    """log(1 + exp(z)) without overflow."""
    return np.logaddexp(0.0, z)


def _sigmoid(z: FloatArray) -> FloatArray:
    """1 / (1 + exp(-z)) without overflow."""
    out: FloatArray = np.exp(-np.logaddexp(0.0, -z))
    return out


def fit_logistic(
    x: Csr,
    y: IntArray,
    c: float,
    sample_weight: FloatArray | None = None,
    max_iter: int = 500,
    tol: float = 1e-5,
    memory: int = 10,
) -> tuple[FloatArray, float]:
    """L2 logistic regression (weights w, intercept b) by L-BFGS.

    Minimises 0.5·|w|² + C·Σ sᵢ·log(1 + exp(-yᵢ(xᵢ·w + b))) with yᵢ in {-1, +1}; the intercept
    is not penalised. Deterministic.
    """
    design = _Design.of(x)
    ys = np.where(y > 0, 1.0, -1.0)
    s = np.ones(x.n_rows) if sample_weight is None else np.asarray(sample_weight, np.float64)
    cs = c * s
    d = x.n_cols

    def f_and_g(theta: FloatArray) -> tuple[float, FloatArray]:
        w, b = theta[:d], theta[d]
        z = design.dot(w) + b
        m = -ys * z
        loss = 0.5 * _dot(w, w) + _dot(cs, _log1pexp(m))
        r = -cs * ys * _sigmoid(m)
        g = np.empty(d + 1)
        g[:d] = w + design.tdot(r)
        g[d] = r.sum()
        return loss, g

    theta = np.zeros(d + 1)
    theta = _lbfgs(f_and_g, theta, max_iter=max_iter, tol=tol, memory=memory)
    return theta[:d].copy(), float(theta[d])


def _lbfgs(
    fg: Callable[[FloatArray], tuple[float, FloatArray]],
    x0: FloatArray,
    max_iter: int,
    tol: float,
    memory: int,
) -> FloatArray:
    """Minimise a smooth convex function by L-BFGS with a backtracking Armijo line search."""
    x = x0
    f, g = fg(x)
    g0 = max(float(np.abs(g).max()), 1e-12)
    ss: list[FloatArray] = []
    yy: list[FloatArray] = []
    for _ in range(max_iter):
        if float(np.abs(g).max()) <= tol * max(1.0, g0):
            break
        # two-loop recursion
        q = g.copy()
        alphas: list[float] = []
        rhos = [1.0 / _dot(yk, sk) for sk, yk in zip(ss, yy, strict=True)]
        for sk, yk, rho in zip(reversed(ss), reversed(yy), reversed(rhos), strict=True):
            a = rho * _dot(sk, q)
            alphas.append(a)
            q -= a * yk
        if ss:
            q *= _dot(ss[-1], yy[-1]) / _dot(yy[-1], yy[-1])
        else:
            q /= max(1.0, math.sqrt(_dot(g, g)))
        for sk, yk, rho, a in zip(ss, yy, rhos, reversed(alphas), strict=True):
            bcoef = rho * _dot(yk, q)
            q += (a - bcoef) * sk
        direction = -q
        slope = _dot(g, direction)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            ss.clear()
            yy.clear()
            direction = -g / max(1.0, math.sqrt(_dot(g, g)))
            slope = _dot(g, direction)
        step = 1.0
        for _ls in range(40):
            xn = x + step * direction
            fn, gn = fg(xn)
            if fn <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        sk, yk = xn - x, gn - g
        if _dot(sk, yk) > 1e-12:
            ss.append(sk)
            yy.append(yk)
            if len(ss) > memory:
                ss.pop(0)
                yy.pop(0)
        converged = abs(f - fn) <= 1e-10 * max(1.0, abs(f))
        x, f, g = xn, fn, gn
        if converged:
            break
    return x


def balanced_weights(y: IntArray) -> FloatArray:
    """Sample weights n / (2·n_class), as scikit-learn's class_weight='balanced'."""
    n = len(y)
    pos = int(y.sum())
    neg = n - pos
    w_pos = n / (2 * pos) if pos else 0.0
    w_neg = n / (2 * neg) if neg else 0.0
    return np.where(y > 0, w_pos, w_neg)


# ---------------------------------------------------------------- metrics and folds


@dataclass(frozen=True, slots=True)
class Metrics:
    """Confusion counts with precision, recall and F0.5 (0 when undefined)."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, labels: IntArray, predicted: npt.NDArray[np.bool_]) -> Metrics:
        """Counts for predictions against labels."""
        pos = labels > 0
        return cls(
            int((predicted & pos).sum()),
            int((predicted & ~pos).sum()),
            int((~predicted & pos).sum()),
            int((~predicted & ~pos).sum()),
        )

    @property
    def precision(self) -> float:
        """tp / (tp + fp)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f05(self) -> float:
        """F-beta with beta 0.5: precision weighs four times as much as recall."""
        p, r = self.precision, self.recall
        return 1.25 * p * r / (0.25 * p + r) if p + r else 0.0

    @property
    def n(self) -> int:
        """Number of rows."""
        return self.tp + self.fp + self.fn + self.tn

    def to_dict(self) -> dict[str, float | int]:
        """Counts and the three rates, rounded to 4 places."""
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f05": round(self.f05, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


def stratified_folds(labels: IntArray, k: int, seed: int) -> list[IntArray]:
    """Disjoint test-index sets covering all rows, each class spread evenly; seeded."""
    if k < 2:
        raise ValueError("need at least 2 folds")
    rng = np.random.default_rng(seed)
    buckets: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for cls in (1, 0):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        for j, i in enumerate(idx):
            buckets[(j + offset) % k].append(int(i))
        offset += len(idx)
    return [np.sort(np.asarray(b, dtype=np.int64)) for b in buckets]


def choose_threshold(
    scores: FloatArray, labels: IntArray, min_precision: float
) -> tuple[float, Metrics]:
    """The score threshold (alert when score ≥ it) with the best F0.5 among those reaching
    min_precision, or with the best F0.5 if none does; set midway to the next lower score."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order] > 0
    tps = np.cumsum(y)
    fps = np.cumsum(~y)
    # only cut where the score changes
    last = np.r_[s[1:] != s[:-1], True]
    cut = np.flatnonzero(last)
    tp, fp = tps[cut], fps[cut]
    npos = int(y.sum())
    prec = tp / np.maximum(tp + fp, 1)
    rec = tp / max(npos, 1)
    f = np.where(prec + rec > 0, 1.25 * prec * rec / np.maximum(0.25 * prec + rec, 1e-12), 0.0)
    ok = prec >= min_precision - 1e-12
    pick_from = np.flatnonzero(ok & (f > 0)) if (ok & (f > 0)).any() else np.arange(len(cut))
    best = pick_from[np.argmax(f[pick_from])]  # first (highest threshold) among ties
    j = cut[best]
    lower = s[j + 1] if j + 1 < len(s) else s[j] - 1e-6
    thr = float((s[j] + lower) / 2)
    return thr, Metrics.of(labels, scores >= thr)


# ---------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Config:
    """Features and training settings of a model."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] | None = None
    """Character n-grams inside words, e.g. (2, 5); None: words only."""
    min_df: int = 2
    max_terms: int = 300_000
    c_grid: tuple[float, ...] = (3.0, 10.0, 30.0)
    """Candidate inverse regularisation strengths; the inner CV picks one."""
    inner_folds: int = 5
    min_precision: float = 0.95
    max_iter: int = 500

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Inverse of to_dict."""
        d = dict(d)
        d["word_ngrams"] = tuple(d["word_ngrams"])
        if d.get("char_ngrams") is not None:
            d["char_ngrams"] = tuple(d["char_ngrams"])
        d["c_grid"] = tuple(d["c_grid"])
        return cls(**d)


def _family_docs(texts: Sequence[str], config: Config) -> list[tuple[str, list[Counter[str]]]]:
    """N-gram counts of each text for each feature family of the config."""
    fams = [("word", [word_ngrams(t, *config.word_ngrams) for t in texts])]
    if config.char_ngrams is not None:
        fams.append(("char", [char_ngrams(t, *config.char_ngrams) for t in texts]))
    return fams


@dataclass(frozen=True, slots=True)
class _Counts:
    """A corpus's n-gram counts per feature family (computed once, reused across folds)."""

    families: tuple[_Family, ...]

    @classmethod
    def of(cls, texts: Sequence[str], config: Config) -> _Counts:
        return cls(tuple(_Family.of(n, docs) for n, docs in _family_docs(texts, config)))

    def take(self, idx: IntArray) -> _Counts:
        return _Counts(tuple(f.take(idx) for f in self.families))

    @property
    def n_rows(self) -> int:
        return self.families[0].counts.n_rows


@dataclass(frozen=True, slots=True)
class _Part:
    """One feature family's kept terms, idf and logistic-regression weights."""

    name: str
    idf: FloatArray
    coef: FloatArray
    intercept: float
    kept: IntArray | None = None
    """Column ids in the corpus it was fitted on (during training and cross-validation)."""
    vocab: Vocabulary | None = None
    """The kept terms by name (a finished or loaded model)."""

    def logits(self, x: Csr) -> FloatArray:
        return _Design.of(x).dot(self.coef) + self.intercept


def _fit_parts(counts: _Counts, y: IntArray, config: Config, c: float) -> list[_Part]:
    parts = []
    sw = balanced_weights(y)
    for fam in counts.families:
        kept, idf = _select_terms(fam.counts, config.min_df, config.max_terms)
        x = _tfidf(_restrict(fam.counts, kept), idf)
        coef, b = fit_logistic(x, y, c, sw, max_iter=config.max_iter)
        parts.append(_Part(fam.name, idf, coef, b, kept=kept))
    return parts


def _score_parts(parts: Sequence[_Part], counts: _Counts) -> FloatArray:
    """Mean probability over the feature families, for rows of the corpus the parts know."""
    total = np.zeros(counts.n_rows)
    for part, fam in zip(parts, counts.families, strict=True):
        assert part.kept is not None
        total += _sigmoid(part.logits(_tfidf(_restrict(fam.counts, part.kept), part.idf)))
    out: FloatArray = total / len(parts)
    return out


@dataclass(frozen=True, slots=True)
class Selection:
    """What the inner cross-validation over the training rows chose, and its evidence."""

    c: float
    threshold: float
    metrics: Metrics
    """Out-of-fold metrics of the chosen C at the chosen threshold (training rows only)."""
    by_c: dict[float, float]
    """Out-of-fold F0.5 (at its own best threshold) for each candidate C."""


def select(
    counts: _Counts,
    y: IntArray,
    config: Config,
    seed: int,
    progress: Progress | None = None,
) -> Selection:
    """Pick C and the threshold by inner cross-validation on these (training) rows only."""
    folds = stratified_folds(y, min(config.inner_folds, _max_folds(y)), seed)
    all_idx = np.arange(len(y))
    total = len(folds) * len(config.c_grid)
    done = 0
    best: Selection | None = None
    by_c: dict[float, float] = {}
    for c in config.c_grid:
        oof = np.zeros(len(y))
        for test in folds:
            train = np.setdiff1d(all_idx, test)
            parts = _fit_parts(counts.take(train), y[train], config, c)
            oof[test] = _score_parts(parts, counts.take(test))
            done += 1
            if progress is not None:
                progress("inner cross-validation", done, total)
        thr, m = choose_threshold(oof, y, config.min_precision)
        by_c[c] = m.f05
        key = (m.precision >= config.min_precision, m.f05)
        if best is None or key > (best.metrics.precision >= config.min_precision, best.metrics.f05):
            best = Selection(c, thr, m, by_c)
    assert best is not None
    return replace(best, by_c=by_c)


def _max_folds(y: IntArray) -> int:
    pos = int(y.sum())
    k = min(pos, len(y) - pos)
    if k < 2:
        raise DataError("training needs at least 2 positive and 2 negative rows")
    return k


@dataclass(frozen=True, slots=True)
class GroomingModel:
    """A trained conversation classifier: score(text) in [0, 1], alert at score ≥ threshold."""

    config: Config
    parts: tuple[_Part, ...]
    threshold: float
    meta: dict[str, Any]

    def scores(self, texts: Sequence[str]) -> FloatArray:
        """Probability-like scores of these conversations."""
        total = np.zeros(len(texts))
        for part, (_name, docs) in zip(self.parts, _family_docs(texts, self.config), strict=True):
            assert part.vocab is not None
            total += _sigmoid(part.logits(part.vocab.transform(docs)))
        out: FloatArray = total / len(self.parts)
        return out

    def score(self, text: str) -> float:
        """The score of one conversation."""
        return float(self.scores([text])[0])

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Alert (True) for each conversation scoring at or above the threshold."""
        out: npt.NDArray[np.bool_] = self.scores(texts) >= self.threshold
        return out

    def top_terms(self, k: int = 20) -> list[tuple[str, float]]:
        """The k word features pushing hardest towards an alert."""
        part = self.parts[0]
        assert part.vocab is not None
        order = np.argsort(-part.coef, kind="stable")[:k]
        return [(part.vocab.terms[i], float(part.coef[i])) for i in order]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to one .npz file (atomically; no pickle)."""
        arrays: dict[str, Any] = {
            "meta": np.frombuffer(
                json.dumps(
                    {
                        "format": FORMAT,
                        "config": self.config.to_dict(),
                        "threshold": self.threshold,
                        "parts": [p.name for p in self.parts],
                        **self.meta,
                    },
                    ensure_ascii=False,
                ).encode("utf-8"),
                dtype=np.uint8,
            )
        }
        for p in self.parts:
            assert p.vocab is not None
            arrays[f"{p.name}_terms"] = np.frombuffer(
                "\n".join(p.vocab.terms).encode("utf-8"), dtype=np.uint8
            )
            arrays[f"{p.name}_idf"] = p.idf
            arrays[f"{p.name}_coef"] = p.coef
            arrays[f"{p.name}_intercept"] = np.array([p.intercept])
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".npz", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, **arrays)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GroomingModel:
        """Read a model written by save (offline; ModelError if it is not one)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise ModelError(f"{os.fspath(path)}: not a {FORMAT} model")
                config = Config.from_dict(meta.pop("config"))
                threshold = float(meta.pop("threshold"))
                parts = []
                for name in meta.pop("parts"):
                    raw_terms = bytes(z[f"{name}_terms"]).decode("utf-8")
                    terms = raw_terms.split("\n") if raw_terms else []
                    idf = np.asarray(z[f"{name}_idf"], dtype=np.float64)
                    coef = np.asarray(z[f"{name}_coef"], dtype=np.float64)
                    if not len(terms) == len(idf) == len(coef):
                        raise ModelError(f"{os.fspath(path)}: {name} arrays disagree in length")
                    b = float(z[f"{name}_intercept"][0])
                    parts.append(_Part(name, idf, coef, b, vocab=Vocabulary.build(terms, idf)))
                meta.pop("format")
        except ModelError:
            raise
        except OSError as exc:
            raise ModelError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            detail = " ".join(str(exc).split())[:120]
            raise ModelError(f"{os.fspath(path)}: not a qinglang risk model ({detail})") from None
        if not parts:
            raise ModelError(f"{os.fspath(path)}: model has no feature families")
        return cls(config, tuple(parts), threshold, meta)


def train(
    texts: Sequence[str],
    labels: IntArray,
    config: Config | None = None,
    seed: int = 0,
    data_name: str = "",
    progress: Progress | None = None,
    _counts: _Counts | None = None,
) -> GroomingModel:
    """Train on all rows: inner CV picks C and the threshold, then one fit on every row."""
    config = config or Config()
    y = np.asarray(labels, dtype=np.int64)
    if len(texts) != len(y):
        raise ValueError("texts and labels differ in length")
    _max_folds(y)
    counts = _counts if _counts is not None else _Counts.of(texts, config)
    sel = select(counts, y, config, seed, progress)
    parts = [
        replace(p, kept=None, vocab=Vocabulary.build([fam.terms[i] for i in p.kept], p.idf))
        for p, fam in zip(_fit_parts(counts, y, config, sel.c), counts.families, strict=True)
        if p.kept is not None
    ]
    if progress is not None:
        progress("final fit", 1, 1)
    meta = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": data_name,
        "rows": len(y),
        "positives": int(y.sum()),
        "seed": seed,
        "c": sel.c,
        "inner_cv": {
            "folds": min(config.inner_folds, _max_folds(y)),
            "f05_by_c": {str(k): round(v, 4) for k, v in sel.by_c.items()},
            "metrics_at_threshold": sel.metrics.to_dict(),
        },
        "vocabulary": {p.name: len(p.idf) for p in parts},
    }
    return GroomingModel(config, tuple(parts), sel.threshold, meta)


@dataclass(frozen=True, slots=True)
class FoldResult:
    """One outer fold: which rows it trained and tested on, what was chosen, how it scored."""

    repeat: int
    fold: int
    train_idx: IntArray
    test_idx: IntArray
    c: float
    threshold: float
    inner: Metrics
    """Out-of-fold metrics on the training rows at the chosen threshold."""
    test: Metrics


def cross_validate(
    texts: Sequence[str],
    labels: IntArray,
    k: int = 5,
    repeats: int = 1,
    seed: int = 0,
    config: Config | None = None,
    progress: Progress | None = None,
    folds: Sequence[Sequence[IntArray]] | None = None,
) -> list[FoldResult]:
    """K-fold (repeated) cross-validated training and evaluation, nested: each outer fold's
    model, C and threshold come from its training rows only."""
    config = config or Config()
    y = np.asarray(labels, dtype=np.int64)
    plan = (
        [list(f) for f in folds]
        if folds is not None
        else [stratified_folds(y, k, seed + r) for r in range(repeats)]
    )
    counts = _Counts.of(texts, config)
    all_idx = np.arange(len(y))
    results = []
    total = sum(len(f) for f in plan)
    for r, fold_set in enumerate(plan):
        for j, test in enumerate(fold_set):
            train_idx = np.setdiff1d(all_idx, test)
            sub = counts.take(train_idx)
            model = train(
                [texts[i] for i in train_idx],
                y[train_idx],
                config,
                seed=seed + 1000 * (r + 1) + j,
                _counts=sub,
            )
            scores = model.scores([texts[i] for i in test])
            m = Metrics.of(y[test], scores >= model.threshold)
            inner = model.meta["inner_cv"]["metrics_at_threshold"]
            results.append(
                FoldResult(
                    r,
                    j,
                    train_idx,
                    np.asarray(test, dtype=np.int64),
                    float(model.meta["c"]),
                    model.threshold,
                    Metrics(inner["tp"], inner["fp"], inner["fn"], inner["tn"]),
                    m,
                )
            )
            if progress is not None:
                progress("outer folds", len(results), total)
    return results


def summarise(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for fewer than two values)."""
    a = np.asarray(values, dtype=np.float64)
    if not len(a):
        return 0.0, 0.0
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0
