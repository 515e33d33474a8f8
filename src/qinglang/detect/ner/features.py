"""Vectorised character features shared by training (bench/train_ner.py) and run time.

Every feature is a 64-bit key computed with numpy from the code points of the text, so the
training script and the recogniser compute exactly the same features and no per-character
Python string is built at run time.

Features at position ``i`` (``u`` is the normalised code point, sentinel outside the text):

* character unigrams ``u[i+k]`` for ``k`` in -2..2, bigrams and trigrams around ``i``;
* the character-class pattern of ``i-1, i, i+1`` (Han, digit, Latin, punctuation, ...);
* lexicon roles: position ``i`` begins / is inside / ends a dictionary word (2..7 characters)
  of class person, place, organisation, other proper noun or common word;
* a bias feature.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

U64 = np.uint64
_MUL = U64(0x9E3779B97F4A7C15)
_MUL2 = U64(0xBF58476D1CE4E5B9)
BOS = 0x110001
EOS = 0x110002
MAX_WORD = 7

# lexicon classes (index into LEX_CLASSES)
LEX_CLASSES = ("PER", "LOC", "ORG", "NZ", "W")
_ROLES = ("B", "M", "E")

# character classes
_C_OTHER, _C_HAN, _C_DIGIT, _C_LATIN, _C_PUNCT, _C_CNNUM, _C_SPACE, _C_BOUND = range(8)
_CN_NUMERALS = "零〇一二三四五六七八九十百千万亿两壹贰叁肆伍陆柒捌玖拾佰仟"
_PUNCT = "，。！？；：、,.!?;:'\"“”‘’（）()【】[]《》<>—-…·/\\|~@#%&*+=_"

# unigram/bigram/trigram templates: tuples of offsets
_NGRAM_TEMPLATES: tuple[tuple[int, ...], ...] = (
    (-2,),
    (-1,),
    (0,),
    (1,),
    (2,),
    (-2, -1),
    (-1, 0),
    (0, 1),
    (1, 2),
    (-1, 1),
    (-2, -1, 0),
    (-1, 0, 1),
    (0, 1, 2),
)
N_TEMPLATES = len(_NGRAM_TEMPLATES) + 1  # + class pattern
N_LEX_FEATURES = len(LEX_CLASSES) * len(_ROLES)
_PAD = 2


def _mix(h: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finaliser (wrapping uint64 arithmetic)."""
    h = h ^ (h >> U64(30))
    h = h * _MUL2
    h = h ^ (h >> U64(27))
    h = h * U64(0x94D049BB133111EB)
    return h ^ (h >> U64(31))


def codepoints(text: str) -> NDArray[np.int64]:
    """Normalised code points: full-width ASCII folded, Latin lower-cased, digits → '0'."""
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    fw = (cp >= 0xFF01) & (cp <= 0xFF5E)
    cp = np.where(fw, cp - 0xFEE0, cp)
    cp = np.where(cp == 0x3000, 0x20, cp)
    upper = (cp >= 65) & (cp <= 90)
    cp = np.where(upper, cp + 32, cp)
    digit = (cp >= 48) & (cp <= 57)
    return np.where(digit, 48, cp)


_CLASS_TABLE: dict[int, int] = {}
for _ch in _CN_NUMERALS:
    _CLASS_TABLE[ord(_ch)] = _C_CNNUM
for _ch in _PUNCT:
    _CLASS_TABLE[ord(_ch)] = _C_PUNCT


def char_classes(u: NDArray[np.int64]) -> NDArray[np.int64]:
    cls = np.full(u.shape, _C_OTHER, dtype=np.int64)
    cls[(u >= 0x4E00) & (u <= 0x9FFF)] = _C_HAN
    cls[(u >= 0x3400) & (u <= 0x4DBF)] = _C_HAN
    cls[u == 48] = _C_DIGIT
    cls[(u >= 97) & (u <= 122)] = _C_LATIN
    cls[(u == 32) | (u == 9) | (u == 10) | (u == 13)] = _C_SPACE
    cls[(u >= 0x21) & (u <= 0x2F)] = _C_PUNCT
    if len(u):
        special = np.isin(u, np.fromiter(_CLASS_TABLE, dtype=np.int64))
        if special.any():
            cls[special] = [_CLASS_TABLE[int(c)] for c in u[special]]
    cls[(u == BOS) | (u == EOS)] = _C_BOUND
    return cls


def ngram_hashes(u: NDArray[np.int64], k: int) -> NDArray[np.uint64]:
    """Hash of u[s:s+k] for every start s with s+k <= len(u)."""
    n = len(u) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=U64)
    uu = u.astype(U64)
    h = np.full(n, U64(k), dtype=U64)
    for j in range(k):
        h = (h ^ uu[j : j + n]) * _MUL
    return _mix(h)


def word_hashes(words: list[str]) -> NDArray[np.uint64]:
    """Hashes of whole words, identical to ngram_hashes over the same characters."""
    out = np.zeros(len(words), dtype=U64)
    for i, w in enumerate(words):
        out[i] = ngram_hashes(codepoints(w), len(w))[0]
    return out


def attribute_keys(u: NDArray[np.int64]) -> NDArray[np.uint64]:
    """(n, N_TEMPLATES) feature keys for a normalised sequence of length n."""
    n = len(u)
    p = np.concatenate(
        [np.full(_PAD, BOS, dtype=np.int64), u, np.full(_PAD, EOS, dtype=np.int64)]
    ).astype(U64)
    keys = np.empty((n, N_TEMPLATES), dtype=U64)
    for t, offs in enumerate(_NGRAM_TEMPLATES):
        h = np.full(n, U64(1000 + t), dtype=U64)
        for o in offs:
            h = (h ^ p[_PAD + o : _PAD + o + n]) * _MUL
        keys[:, t] = _mix(h)
    c = char_classes(p.astype(np.int64)).astype(U64)
    h = np.full(n, U64(2000), dtype=U64)
    for o in (-1, 0, 1):
        h = (h ^ c[_PAD + o : _PAD + o + n]) * _MUL
    keys[:, len(_NGRAM_TEMPLATES)] = _mix(h)
    return keys


def lexicon_features(
    u: NDArray[np.int64], lex_keys: NDArray[np.uint64], lex_cls: NDArray[np.uint8]
) -> NDArray[np.bool_]:
    """(n, N_LEX_FEATURES) booleans: role (B/M/E) of position in a lexicon word of each class."""
    n = len(u)
    out = np.zeros((n, N_LEX_FEATURES), dtype=np.bool_)
    if n < 2 or len(lex_keys) == 0:
        return out
    nroles = len(_ROLES)
    for k in range(2, min(MAX_WORD, n) + 1):
        h = ngram_hashes(u, k)
        idx = np.searchsorted(lex_keys, h)
        idx[idx >= len(lex_keys)] = 0
        hit = lex_keys[idx] == h
        if not hit.any():
            continue
        starts = np.nonzero(hit)[0]
        cls = lex_cls[idx[starts]].astype(np.int64)
        out[starts, cls * nroles + 0] = True
        out[starts + k - 1, cls * nroles + 2] = True
        for j in range(1, k - 1):
            out[starts + j, cls * nroles + 1] = True
    return out


def lexicon_feature_names() -> list[str]:
    return [f"L{c}{r}" for c in LEX_CLASSES for r in _ROLES]


# --------------------------------------------------------------------------- batches of texts


def batch_attribute_keys(u: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.uint64]:
    """`attribute_keys` of several texts at once: `u` is their code points one after the other,
    `lengths` their lengths; row ``i`` is the row that `attribute_keys` gives that character in
    its own text (each text padded on its own)."""
    n = len(u)
    b = len(lengths)
    # each text gets its own two BOS before and two EOS after it
    owner = np.repeat(np.arange(b), lengths)
    centres = np.arange(n) + _PAD + 2 * _PAD * owner
    p = np.full(n + 2 * _PAD * b, BOS, dtype=np.int64)
    ends = np.cumsum(lengths) + 2 * _PAD * np.arange(1, b + 1) - _PAD  # first EOS of each text
    p[ends] = EOS
    p[ends + 1] = EOS
    p[centres] = u
    pu = p.astype(U64)
    shifted = {o: pu[centres + o] for o in range(-_PAD, _PAD + 1)}
    keys = np.empty((n, N_TEMPLATES), dtype=U64)
    for t, offs in enumerate(_NGRAM_TEMPLATES):
        h = np.full(n, U64(1000 + t), dtype=U64)
        for o in offs:
            h = (h ^ shifted[o]) * _MUL
        keys[:, t] = _mix(h)
    c = char_classes(p).astype(U64)
    h = np.full(n, U64(2000), dtype=U64)
    for o in (-1, 0, 1):
        h = (h ^ c[centres + o]) * _MUL
    keys[:, len(_NGRAM_TEMPLATES)] = _mix(h)
    return keys


def batch_ngram_hashes(
    u: NDArray[np.int64], room: NDArray[np.int64], k: int
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """Starts ``s`` of the k-grams that stay inside one text (``room[s] >= k``: characters left
    in the text from ``s``) and their hashes, equal to `ngram_hashes` over that text."""
    n = len(u) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=U64)
    starts = np.nonzero(room[:n] >= k)[0]
    uu = u.astype(U64)
    h = np.full(len(starts), U64(k), dtype=U64)
    for j in range(k):
        h = (h ^ uu[starts + j]) * _MUL
    return starts, _mix(h)
