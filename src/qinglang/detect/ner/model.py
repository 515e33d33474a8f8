"""Character CRF recogniser for person names, addresses and schools (numpy inference).

`NerRecognizer.find_many` tags many texts in one pass: features, emission scores and Viterbi
decoding are computed for all of them at once, row by row exactly as for one text (every
operation treats each character, and each sentence segment, on its own), so that
``find_many(texts)[i] == find(texts[i])``; `find` is ``find_many`` of one text.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from qinglang.detect.ner.features import (
    MAX_WORD,
    N_LEX_FEATURES,
    N_TEMPLATES,
    attribute_keys,
    batch_attribute_keys,
    batch_ngram_hashes,
    codepoints,
    lexicon_features,
)

CATEGORIES = {"PER": "person_name", "ADDR": "address", "SCH": "school"}
# only research models (never packaged) carry Resume's education-level type
_ALL_CATEGORIES = {**CATEGORIES, "EDU": "education_level"}
_SEGMENT_RE = re.compile(r"[^。！？!?；;\n\r]{1,200}[。！？!?；;\n\r]?|[。！？!?；;\n\r]")
_BATCH = 512
_NEG = np.float32(-1e4)
_CHUNK_CHARS = 1 << 14
"""About how many characters `NerRecognizer.find_many` tags in one pass (bounds memory)."""


class KeyTable:
    """Sorted uint64 keys (already well mixed) with an index by their top bits.

    ``lookup(q)`` gives, for each query, its position in the keys or -1: the answer of a
    binary search, found by looking only at the few keys that share the query's top bits.
    """

    __slots__ = ("_keys", "_shift", "_starts")

    def __init__(self, keys: NDArray[np.uint64]) -> None:
        self._keys = keys
        bits = min(20, max(4, len(keys).bit_length() + 2))
        self._shift = np.uint64(64 - bits)
        bucket = (keys >> self._shift).astype(np.int64)
        self._starts = np.searchsorted(bucket, np.arange((1 << bits) + 1)).astype(np.intp)

    def lookup(self, q: NDArray[np.uint64]) -> NDArray[np.int64]:
        """Positions of the keys `q` in the sorted keys (the first if repeated), -1 if absent."""
        out = np.full(len(q), -1, dtype=np.int64)
        last = len(self._keys) - 1
        if last < 0:
            return out
        b = (q >> self._shift).astype(np.intp)
        c = self._starts[b]
        e = self._starts[b + 1]
        todo = np.arange(len(q))
        while len(todo):
            valid = c < e
            at = np.minimum(c, last)
            hit = valid & (self._keys[at] == q)
            out[todo[hit]] = at[hit]
            more = valid & ~hit
            todo, q, c, e = todo[more], q[more], c[more] + 1, e[more]
        return out


@dataclass(frozen=True)
class CrfModel:
    labels: tuple[str, ...]
    keys: NDArray[np.uint64]  # sorted attribute keys
    weights: NDArray[np.float32]  # (len(keys) + 1, L); last row is zeros (unknown key)
    lex_weights: NDArray[np.float32]  # (N_LEX_FEATURES, L)
    bias: NDArray[np.float32]  # (L,)
    trans: NDArray[np.float32]  # (L, L) from -> to, with BIO constraints applied
    start: NDArray[np.float32]  # (L,) penalty for labels that cannot start a sequence
    lex_keys: NDArray[np.uint64]
    lex_cls: NDArray[np.uint8]
    info: dict[str, object]
    key_table: KeyTable = field(init=False, repr=False, compare=False)
    lex_table: KeyTable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_table", KeyTable(self.keys))
        object.__setattr__(self, "lex_table", KeyTable(self.lex_keys))

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, NDArray[np.generic]],
        lex: dict[str, NDArray[np.generic]],
        info: dict[str, object],
    ) -> CrfModel:
        labels = tuple(str(x) for x in arrays["labels"])
        w = arrays["weights"].astype(np.float32)
        weights = np.vstack([w, np.zeros((1, w.shape[1]), dtype=np.float32)])
        trans = arrays["trans"].astype(np.float32).copy()
        start = np.zeros(len(labels), dtype=np.float32)
        for j, lab in enumerate(labels):
            if lab.startswith("I-"):
                start[j] = _NEG
                for i, prev in enumerate(labels):
                    if prev[2:] != lab[2:] or prev == "O":
                        trans[i, j] = _NEG
        return cls(
            labels=labels,
            keys=arrays["keys"].astype(np.uint64),
            weights=weights,
            lex_weights=arrays["lex_weights"].astype(np.float32),
            bias=arrays["bias"].astype(np.float32),
            trans=trans,
            start=start,
            lex_keys=lex["keys"].astype(np.uint64),
            lex_cls=lex["cls"].astype(np.uint8),
            info=info,
        )

    @classmethod
    def load_dir(cls, path: Path) -> CrfModel:
        return cls._load(
            (path / "crf.npz").read_bytes(),
            (path / "lexicon.npz").read_bytes(),
            (path / "model_info.json").read_text(encoding="utf-8"),
        )

    @classmethod
    def _load(cls, crf: bytes, lex: bytes, info: str) -> CrfModel:
        import io

        with np.load(io.BytesIO(crf)) as a, np.load(io.BytesIO(lex)) as b:
            arrays = {k: a[k] for k in a.files}
            lexa = {k: b[k] for k in b.files}
        return cls.from_arrays(arrays, lexa, json.loads(info))

    @classmethod
    def load_packaged(cls) -> CrfModel:
        root = resources.files("qinglang.detect.ner") / "data"
        return cls._load(
            (root / "crf.npz").read_bytes(),
            (root / "lexicon.npz").read_bytes(),
            (root / "model_info.json").read_text(encoding="utf-8"),
        )

    # -- scoring ---------------------------------------------------------------------------

    def emissions(self, text: str) -> NDArray[np.float32]:
        u = codepoints(text)
        n = len(u)
        if n == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        keys = attribute_keys(u).ravel()
        idx = np.searchsorted(self.keys, keys)
        idx[idx >= len(self.keys)] = len(self.keys)
        found = idx < len(self.keys)
        miss = np.ones(len(keys), dtype=np.bool_)
        miss[found] = self.keys[idx[found]] != keys[found]
        idx[miss] = len(self.keys)
        em: NDArray[np.float32] = self.weights[idx.reshape(n, -1)].sum(axis=1)
        lex = lexicon_features(u, self.lex_keys, self.lex_cls)
        em += lex.astype(np.float32) @ self.lex_weights
        em += self.bias
        return em

    def batch_emissions(
        self, u: NDArray[np.int64], lengths: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        """Emission scores of several texts' characters (`u`, one text after the other, of the
        given `lengths`); each row depends only on its character's own text."""
        n = len(u)
        nl = len(self.labels)
        if n == 0:
            return np.zeros((0, nl), dtype=np.float32)
        keys = batch_attribute_keys(u, lengths)
        idx = self.key_table.lookup(keys.ravel()).reshape(keys.shape)
        idx[idx < 0] = len(self.keys)  # the zero row
        w = self.weights
        em: NDArray[np.float32] = w[idx[:, 0]]
        for t in range(1, N_TEMPLATES):  # one template after the other, for every row alike
            em += w[idx[:, t]]
        # the lexicon features' weights summed first, feature by feature (what the product of
        # the 0/1 feature matrix with the weights gives), then added
        lex = self._batch_lexicon(u, lengths)
        lex_sum = np.zeros_like(em)
        for f in range(N_LEX_FEATURES):
            rows = np.nonzero(lex[:, f])[0]
            if len(rows):
                lex_sum[rows] += self.lex_weights[f]
        em += lex_sum
        em += self.bias
        return em

    def _batch_lexicon(self, u: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.bool_]:
        """`lexicon_features` of each text, rows one text after the other."""
        n = len(u)
        out = np.zeros((n, N_LEX_FEATURES), dtype=np.bool_)
        if n < 2 or len(self.lex_keys) == 0:
            return out
        room = np.repeat(np.cumsum(lengths), lengths) - np.arange(n)  # characters left in text
        sizes = range(2, min(MAX_WORD, int(lengths.max())) + 1)
        grams = [batch_ngram_hashes(u, room, k) for k in sizes]
        if not grams:  # every text shorter than two characters
            return out
        found = self.lex_table.lookup(np.concatenate([h for _, h in grams]))  # one lookup
        at = 0
        for k, (starts, h) in zip(sizes, grams, strict=True):
            pos = found[at : at + len(h)]
            at += len(h)
            hit = pos >= 0
            if not hit.any():
                continue
            st = starts[hit]
            col = self.lex_cls[pos[hit]].astype(np.int64) * 3
            out[st, col] = True
            out[st + k - 1, col + 2] = True
            for j in range(1, k - 1):
                out[st + j, col + 1] = True
        return out

    def decode(self, em: NDArray[np.float32], text: str) -> NDArray[np.int64]:
        """Viterbi over sentence segments, batched so the Python loop runs per position."""
        return self.decode_segments(em, _segments(text))

    def decode_segments(
        self, em: NDArray[np.float32], segs: list[tuple[int, int]]
    ) -> NDArray[np.int64]:
        """Viterbi over each segment ``(start, end)`` of `em` on its own (all at once)."""
        n = len(em)
        out = np.zeros(n, dtype=np.int64)
        if n == 0 or not segs:
            return out
        segs = sorted(segs, key=lambda se: se[1] - se[0])
        nl = len(self.labels)
        for b0 in range(0, len(segs), _BATCH):
            batch = segs[b0 : b0 + _BATCH]
            lens = np.array([e - s for s, e in batch])
            m = int(lens.max())
            bsz = len(batch)
            idx = np.zeros((bsz, m), dtype=np.int64)
            for r, (s, e) in enumerate(batch):
                idx[r, : e - s] = np.arange(s, e)
            mask = np.arange(m)[None, :] < lens[:, None]
            e_b = em[idx]  # (B, m, L)
            delta = e_b[:, 0, :] + self.start
            back = np.empty((bsz, m, nl), dtype=np.int64)
            back[:] = np.arange(nl)  # segments that have ended keep their label
            # segments are sorted by length: at step t the ones still going are a suffix
            active = np.searchsorted(lens, np.arange(m), side="right").tolist()
            trans = self.trans[None, :, :]
            for t in range(1, m):
                k = active[t]
                cand = delta[k:, :, None] + trans
                back[k:, t, :] = cand.argmax(axis=1)
                delta[k:] = cand.max(axis=1) + e_b[k:, t, :]
            best = delta.argmax(axis=1)
            path = np.zeros((bsz, m), dtype=np.int64)
            path[:, m - 1] = best
            for t in range(m - 1, 0, -1):
                best = back[np.arange(bsz), t, best]
                path[:, t - 1] = best
            out[idx[mask]] = path[mask]
        return out


def _segments(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _SEGMENT_RE.finditer(text)]


class NerRecognizer:
    """Statistical recogniser of person names, addresses and schools in Chinese text."""

    def __init__(self, model: CrfModel | None = None) -> None:
        self.model = model if model is not None else load_model()
        self._is_b = np.array([lab.startswith("B-") for lab in self.model.labels])
        self._is_i = np.array([lab.startswith("I-") for lab in self.model.labels])

    def find(self, text: str) -> list[tuple[int, int, str, float]]:
        """Spans (start, end exclusive, category, confidence) in ``text``'s own offsets."""
        return self.find_many([text])[0]

    def find_many(self, texts: Sequence[str]) -> list[list[tuple[int, int, str, float]]]:
        """`find` on each text, tagged in passes of about 16,000 characters."""
        out: list[list[tuple[int, int, str, float]]] = [[] for _ in texts]
        chunk: list[int] = []
        size = 0
        for i, text in enumerate(texts):
            if not text:
                continue
            chunk.append(i)
            size += len(text)
            if size >= _CHUNK_CHARS:
                self._tag([texts[j] for j in chunk], [out[j] for j in chunk])
                chunk, size = [], 0
        if chunk:
            self._tag([texts[j] for j in chunk], [out[j] for j in chunk])
        return out

    def _tag(self, texts: list[str], outs: list[list[tuple[int, int, str, float]]]) -> None:
        """Tag non-empty `texts` together; append each one's spans to its list in `outs`."""
        model = self.model
        lengths = np.array([len(t) for t in texts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        u = codepoints("".join(texts))
        em = model.batch_emissions(u, lengths)
        segs = [
            (a + off, b + off)
            for text, off in zip(texts, offsets, strict=False)
            for a, b in _segments(text)
        ]
        path = model.decode_segments(em, segs)
        # local confidence: softmax probability of the chosen label at each position
        z = em - em.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        chosen = p[np.arange(len(path)), path]
        labels = model.labels
        is_b = self._is_b[path]
        for k, spans in enumerate(outs):
            lo, hi = offsets[k], offsets[k + 1]
            starts = np.nonzero(is_b[lo:hi])[0]
            if not len(starts):
                continue
            here = path[lo:hi].tolist()
            n = hi - lo
            for s in starts.tolist():
                lab = labels[here[s]][2:]
                e = s + 1
                inside = "I-" + lab
                while e < n and labels[here[e]] == inside:
                    e += 1
                cat = _ALL_CATEGORIES.get(lab)
                if cat is None:
                    continue
                spans.append((s, e, cat, round(float(chosen[lo + s : lo + e].mean()), 3)))


_LOCK = threading.Lock()
_CACHE: dict[str, CrfModel] = {}


def load_model() -> CrfModel:
    """The packaged model, loaded once per process (offline, from package data)."""
    with _LOCK:
        model = _CACHE.get("packaged")
        if model is None:
            model = CrfModel.load_packaged()
            _CACHE["packaged"] = model
        return model
