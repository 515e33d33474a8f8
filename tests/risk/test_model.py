"""The trainable grooming classifier: it learns, saves and loads, is deterministic, and its
cross-validation never lets a test row choose anything."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from qinglang.risk import model as M
from qinglang.risk.model import (
    Config,
    Csr,
    DataError,
    GroomingModel,
    Metrics,
    ModelError,
    choose_threshold,
    cross_validate,
    fit_logistic,
    parse_labelled_csv,
    stratified_folds,
    train,
)

NEUTRAL = (
    "hi",
    "hey whats up",
    "lol",
    "school was boring today",
    "watching tv",
    "my dog is so funny",
    "pizza tonight",
    "ok",
    "cool",
    "haha",
    "what music u like",
    "i like video games",
    "bye",
    "brb",
    "my brother is annoying",
)
SEXUAL = ("ur so hot", "im horny", "send nudes", "wanna sex", "kiss u all over")
GROOMING = (
    "how old r u",
    "r u alone right now",
    "dont tell ur mom about me",
    "delete our chat ok",
    "ur so mature for ur age",
    "i can pick u up after school",
    "is ur mom home",
    "our little secret",
)
ADULT = ("asl", "22 m here", "m or f", "bored at work", "my girlfriend left", "wanna cam")

FAST = Config(c_grid=(1.0, 10.0), inner_folds=3, min_precision=0.9)


def synthetic(n: int = 160, positives: int = 40, seed: int = 1) -> tuple[list[str], np.ndarray]:
    """Conversations where sexual words occur in both classes and grooming moves separate them."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[int] = []
    for i in range(n):
        pos = i < positives
        parts = [rng.choice(NEUTRAL) for _ in range(rng.randint(8, 20))]
        parts += [rng.choice(SEXUAL) for _ in range(rng.randint(0, 3))]
        if pos:
            parts += [rng.choice(GROOMING) for _ in range(rng.randint(2, 4))]
        else:
            parts += [rng.choice(ADULT) for _ in range(rng.randint(1, 3))]
            parts += [rng.choice(GROOMING) for _ in range(rng.random() < 0.1)]
        rng.shuffle(parts)
        texts.append(" ".join(parts) + f" #{i}")  # every text unique
        labels.append(int(pos))
    order = list(range(n))
    rng.shuffle(order)
    return [texts[i] for i in order], np.array([labels[i] for i in order], dtype=np.int64)


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray]:
    return synthetic()


@pytest.fixture(scope="module")
def trained(data: tuple[list[str], np.ndarray]) -> GroomingModel:
    texts, y = data
    return train(texts, y, FAST, seed=3, data_name="synthetic")


# ---------------------------------------------------------------- learning


def test_learns_the_synthetic_task(data: tuple[list[str], np.ndarray]) -> None:
    texts, y = data
    fresh_texts, fresh_y = synthetic(120, 30, seed=99)
    m = train(texts, y, FAST, seed=0)
    pred = m.predict(fresh_texts)
    got = Metrics.of(fresh_y, pred)
    assert got.f05 >= 0.9, got
    # the words that separate are the grooming moves, not the sexual words both classes share
    top = [t for t, _ in m.top_terms(15)]
    assert any(g.split()[0] in " ".join(top) for g in GROOMING)
    assert m.score("r u alone right now dont tell ur mom our little secret") > m.score(
        "asl 22 m here bored at work ur so hot"
    )


def test_cross_validation_on_synthetic_data(data: tuple[list[str], np.ndarray]) -> None:
    texts, y = data
    res = cross_validate(texts, y, k=4, seed=0, config=FAST)
    assert len(res) == 4
    assert np.mean([r.test.f05 for r in res]) >= 0.85


def test_fit_logistic_matches_a_newton_solution() -> None:
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(60, 5))
    y = (dense @ np.array([1.0, -2.0, 0.5, 0.0, 1.0]) + rng.normal(size=60) > 0).astype(np.int64)
    rows, cols = np.nonzero(dense)
    x = Csr(
        dense[rows, cols],
        cols.astype(np.int64),
        np.searchsorted(rows, np.arange(61)).astype(np.int64),
        5,
    )
    c = 2.0
    w, b = fit_logistic(x, y, c, tol=1e-10, max_iter=2000)
    # Newton on [w, b] for 0.5|w|^2 + C Σ log(1 + exp(-y z))
    a = np.hstack([dense, np.ones((60, 1))])
    ys = np.where(y > 0, 1.0, -1.0)
    theta = np.zeros(6)
    reg = np.diag([1.0] * 5 + [0.0])
    for _ in range(50):
        z = a @ theta
        p = 1 / (1 + np.exp(ys * z))
        g = reg @ theta - c * a.T @ (ys * p)
        h = reg + c * (a.T * (p * (1 - p))) @ a
        theta -= np.linalg.solve(h, g)
    assert np.allclose(w, theta[:5], atol=1e-4)
    assert b == pytest.approx(theta[5], abs=1e-4)


def test_csr_take_matches_dense_rows() -> None:
    dense = np.array([[0, 1, 0], [2, 0, 3], [0, 0, 0], [4, 5, 6]], dtype=np.float64)
    rows, cols = np.nonzero(dense)
    x = Csr(dense[rows, cols], cols.astype(np.int64), np.array([0, 1, 3, 3, 6]), 3)
    sub = x.take(np.array([3, 0, 2], dtype=np.int64))
    back = np.zeros((3, 3))
    for r in range(3):
        for k in range(sub.indptr[r], sub.indptr[r + 1]):
            back[r, sub.indices[k]] = sub.data[k]
    assert np.array_equal(back, dense[[3, 0, 2]])
    assert x.take(np.zeros(0, dtype=np.int64)).n_rows == 0


def test_scoring_by_term_names_equals_scoring_in_the_corpus(
    data: tuple[list[str], np.ndarray],
) -> None:
    texts, y = data
    idx = np.arange(0, len(y), 2)
    rest = np.arange(1, len(y), 2)
    counts = M._Counts.of(texts, FAST)
    parts = M._fit_parts(counts.take(idx), y[idx], FAST, 10.0)
    inside = M._score_parts(parts, counts.take(rest))
    fam = counts.families[0]
    named = [
        M._Part(
            p.name,
            p.idf,
            p.coef,
            p.intercept,
            vocab=M.Vocabulary.build([fam.terms[i] for i in p.kept], p.idf),
        )
        for p in parts
        if p.kept is not None
    ]
    model = GroomingModel(FAST, tuple(named), 0.5, {})
    assert np.allclose(model.scores([texts[i] for i in rest]), inside, atol=1e-12)


# ---------------------------------------------------------------- threshold and folds


def test_choose_threshold_respects_the_precision_floor() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    labels = np.array([1, 1, 0, 1, 1, 1, 0])
    thr, m = choose_threshold(scores, labels, min_precision=1.0)
    assert thr == pytest.approx(0.75) and m.precision == 1.0 and m.tp == 2
    thr, m = choose_threshold(scores, labels, min_precision=0.0)
    assert thr == pytest.approx(0.35) and m.tp == 5 and m.fp == 1
    # nothing reaches the floor: the best F0.5 anyway
    thr, m = choose_threshold(np.array([0.9, 0.1]), np.array([0, 1]), min_precision=0.99)
    assert m.f05 > 0


def test_stratified_folds_are_disjoint_cover_everything_and_balance_classes() -> None:
    y = np.array([1] * 23 + [0] * 77, dtype=np.int64)
    folds = stratified_folds(y, 5, seed=4)
    joined = np.concatenate(folds)
    assert sorted(joined.tolist()) == list(range(100))
    assert {int(y[f].sum()) for f in folds} <= {4, 5}
    assert [f.tolist() for f in folds] == [f.tolist() for f in stratified_folds(y, 5, seed=4)]
    assert [f.tolist() for f in folds] != [f.tolist() for f in stratified_folds(y, 5, seed=5)]


def test_cross_validation_never_trains_or_chooses_on_test_rows(
    data: tuple[list[str], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    texts, y = data
    folds = stratified_folds(y, 4, seed=2)
    seen: list[set[str]] = []
    real_train = M.train

    def spy(texts_: list[str], labels: np.ndarray, *a: object, **kw: object) -> GroomingModel:
        seen.append(set(texts_))
        return real_train(texts_, labels, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(M, "train", spy)
    res = cross_validate(texts, y, folds=[folds], seed=0, config=FAST)
    assert len(res) == 4 and len(seen) == 4
    for r, trained_on in zip(res, seen, strict=True):
        test_texts = {texts[i] for i in r.test_idx}
        assert not trained_on & test_texts
        assert not set(r.train_idx.tolist()) & set(r.test_idx.tolist())
        assert len(r.train_idx) + len(r.test_idx) == len(y)
        assert trained_on == {texts[i] for i in r.train_idx}
    monkeypatch.undo()
    # The test rows' labels cannot move what a fold chose: flip them all and nothing changes
    flipped = y.copy()
    flipped[folds[0]] = 1 - flipped[folds[0]]
    a = cross_validate(texts, y, folds=[[folds[0]]], seed=0, config=FAST)[0]
    b = cross_validate(texts, flipped, folds=[[folds[0]]], seed=0, config=FAST)[0]
    assert (a.c, a.threshold, a.inner) == (b.c, b.threshold, b.inner)
    assert a.test != b.test
    # and the fold's threshold is exactly the one training on its training rows alone gives
    alone = train([texts[i] for i in a.train_idx], y[a.train_idx], FAST, seed=1000)
    assert alone.threshold == a.threshold


# ---------------------------------------------------------------- save, load, determinism


def test_save_load_round_trip(
    trained: GroomingModel, data: tuple[list[str], np.ndarray], tmp_path: Path
) -> None:
    texts, _ = data
    path = tmp_path / "m.npz"
    trained.save(path)
    back = GroomingModel.load(path)
    assert back.threshold == trained.threshold
    assert back.config == trained.config
    assert np.array_equal(back.scores(texts), trained.scores(texts))
    assert back.meta["data"] == "synthetic" and back.meta["rows"] == len(texts)
    assert {"trained_at", "c", "inner_cv", "seed"} <= set(back.meta)
    assert back.meta["inner_cv"]["metrics_at_threshold"]["f05"] > 0.8
    assert [p.name for p in back.parts] == ["word"]
    assert list(tmp_path.iterdir()) == [path]  # written atomically, no temporary left


def test_round_trip_with_character_ngrams(
    data: tuple[list[str], np.ndarray], tmp_path: Path
) -> None:
    texts, y = data
    cfg = Config(c_grid=(10.0,), inner_folds=3, char_ngrams=(2, 4))
    m = train(texts[:80], y[:80], cfg, seed=0)
    m.save(tmp_path / "c.npz")
    back = GroomingModel.load(tmp_path / "c.npz")
    assert [p.name for p in back.parts] == ["word", "char"]
    assert np.allclose(back.scores(texts[80:]), m.scores(texts[80:]))


def test_training_is_deterministic_for_a_seed(data: tuple[list[str], np.ndarray]) -> None:
    texts, y = data
    a = train(texts, y, FAST, seed=7)
    b = train(texts, y, FAST, seed=7)
    assert a.threshold == b.threshold
    assert a.meta["c"] == b.meta["c"]
    for pa, pb in zip(a.parts, b.parts, strict=True):
        assert np.array_equal(pa.coef, pb.coef) and pa.intercept == pb.intercept
        assert pa.vocab is not None and pb.vocab is not None
        assert pa.vocab.terms == pb.vocab.terms
    ra = cross_validate(texts, y, k=3, seed=5, config=FAST)
    rb = cross_validate(texts, y, k=3, seed=5, config=FAST)
    assert [(r.threshold, r.test) for r in ra] == [(r.threshold, r.test) for r in rb]


def test_load_refuses_what_is_not_a_model(tmp_path: Path, trained: GroomingModel) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ModelError, match=r"junk\.npz"):
        GroomingModel.load(junk)
    with pytest.raises(ModelError, match="cannot read"):
        GroomingModel.load(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.frombuffer(b'{"format": "something/else"}', dtype=np.uint8))
    with pytest.raises(ModelError, match="not a"):
        GroomingModel.load(other)
    part = tmp_path / "part.npz"
    trained.save(part)
    with np.load(part) as z:
        arrays = {k: z[k] for k in z.files if k != "word_coef"}
    np.savez(part, **arrays)
    with pytest.raises(ModelError, match="word_coef"):
        GroomingModel.load(part)


def test_training_needs_both_classes() -> None:
    with pytest.raises(DataError, match="2 positive and 2 negative"):
        train(["a b", "c d", "e f"], np.array([1, 0, 0]), FAST)


# ---------------------------------------------------------------- reading labelled CSV


def lines(text: bytes) -> list[bytes]:
    return text.splitlines(keepends=True)


def test_parse_labelled_csv_reads_rows() -> None:
    texts, y = parse_labelled_csv(
        lines(b'\xef\xbb\xbfsegment,label\r\n"hi, there",0\r\nbye,1\r\n\r\n"say ""x""",1\n')
    )
    assert texts == ["hi, there", "bye", 'say "x"'] and y.tolist() == [0, 1, 1]
    texts, y = parse_labelled_csv(lines(b"id,label,segment\n7,1,hello\n"))
    assert texts == ["hello"] and y.tolist() == [1]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "line 1: empty file"),
        (b"text,label\nhi,1\n", "line 1: the CSV header needs columns segment and label"),
        (b"segment,label\n", "no data rows"),
        (b"segment,label\nhi,1\nbye,2\n", "line 3: label must be 0 or 1, got '2'"),
        (b"segment,label\nhi,1\nbye,yes\n", "line 3: label must be 0 or 1"),
        (b"segment,label\nhi,1\n\xff\xfe,0\n", "line 3: invalid UTF-8 at byte 0"),
        (b"segment,label\nhi,1,extra\n", "line 2: 3 fields, the header has 2"),
        (b'segment,label\n"open quote,1\n', "line 2: not valid CSV"),
        (b"segment,label\nhi\x00,1\n", "line 2: contains a NUL byte"),
    ],
)
def test_parse_labelled_csv_names_the_bad_line(raw: bytes, message: str) -> None:
    with pytest.raises(DataError) as exc:
        parse_labelled_csv(lines(raw))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_read_labelled_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        M.read_labelled_csv(tmp_path / "nope.csv")
