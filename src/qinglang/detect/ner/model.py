"""Character CRF recogniser for person names, addresses and schools (numpy inference)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from qinglang.detect.ner.features import (
    attribute_keys,
    codepoints,
    lexicon_features,
)

CATEGORIES = {"PER": "person_name", "ADDR": "address", "SCH": "school"}
# only research models (never packaged) carry Resume's education-level type
_ALL_CATEGORIES = {**CATEGORIES, "EDU": "education_level"}
_SEGMENT_RE = re.compile(r"[^。！？!?；;\n\r]{1,200}[。！？!?；;\n\r]?|[。！？!?；;\n\r]")
_BATCH = 512
_NEG = np.float32(-1e4)


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

    def decode(self, em: NDArray[np.float32], text: str) -> NDArray[np.int64]:
        """Viterbi over sentence segments, batched so the Python loop runs per position."""
        n = len(em)
        out = np.zeros(n, dtype=np.int64)
        if n == 0:
            return out
        segs = _segments(text)
        segs.sort(key=lambda se: se[1] - se[0])
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
            back = np.zeros((bsz, m, nl), dtype=np.int64)
            ident = np.broadcast_to(np.arange(nl), (bsz, nl))
            for t in range(1, m):
                cand = delta[:, :, None] + self.trans[None, :, :]
                bp = cand.argmax(axis=1)
                new = np.take_along_axis(cand, bp[:, None, :], axis=1)[:, 0, :] + e_b[:, t, :]
                mt = mask[:, t]
                delta = np.where(mt[:, None], new, delta)
                back[:, t, :] = np.where(mt[:, None], bp, ident)
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
        if not text:
            return []
        em = self.model.emissions(text)
        path = self.model.decode(em, text)
        labels = self.model.labels
        # local confidence: softmax probability of the chosen label at each position
        z = em - em.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        chosen = p[np.arange(len(path)), path]
        spans: list[tuple[int, int, str, float]] = []
        starts = np.nonzero(self._is_b[path])[0]
        n = len(path)
        for s in starts.tolist():
            lab = labels[path[s]][2:]
            e = s + 1
            inside = "I-" + lab
            while e < n and labels[path[e]] == inside:
                e += 1
            cat = _ALL_CATEGORIES.get(lab)
            if cat is None:
                continue
            spans.append((s, e, cat, round(float(chosen[s:e].mean()), 3)))
        return spans


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
