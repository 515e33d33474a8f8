"""p(under 14): the trained under-14 classifier, its fallback to the rule, the model file."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from qinglang.age.infer import score_record
from qinglang.age.infer.estimate import Signal
from qinglang.age.infer.model import (
    MIN_CHILD_ROWS,
    DefaultModel,
    TrainedModel,
    auc,
    brier,
    cross_validate_ages,
    score,
    train,
)
from qinglang.age.infer.records import AgeRecord, parse_record
from qinglang.risk.model import ModelError
from tests.age.infer.test_age_infer_model import synthetic, zh_rows


def three_ages(n: int = 120, seed: int = 0) -> list[AgeRecord]:
    """Children (11), teens (16) and adults (30) with separable vocabularies."""
    rnd = random.Random(seed)
    vocab = {
        11: ["recess", "crayons", "cartoon", "lunchbox", "grade4", "sticker", "toys"],
        16: ["homework", "prom", "exam", "driving", "crush", "highschool", "gym"],
        30: ["work", "my wife", "office", "mortgage", "boss", "meeting", "taxes"],
    }
    common = ["today", "the", "weather", "movie", "music", "friends", "weekend"]
    out = []
    for i in range(n):
        age = (11, 16, 30)[i % 3]
        words = vocab[age] * 2 + common * 3
        posts = [
            {"date": "2004-06-01", "text": " ".join(rnd.choice(words) for _ in range(30))}
            for _ in range(3)
        ]
        out.append(parse_record({"user_id": str(i), "age": age, "posts": posts}))
    return out


@pytest.fixture(scope="module")
def fitted() -> TrainedModel:
    return train(three_ages(), data_name="three")


def test_under14_classifier_is_fitted_and_saved(fitted: TrainedModel, tmp_path: Path) -> None:
    u14 = fitted.meta["under14"]
    assert u14["fitted"] and u14["positives"] == 40
    assert u14["inner_cv"]["auc"] > 0.9 and 0 <= u14["inner_cv"]["brier"] <= 1
    assert fitted.child is not None
    path = tmp_path / "m.npz"
    fitted.save(path)
    back = TrainedModel.load(path)
    assert back.child is not None and back.child_platt == pytest.approx(fitted.child_platt)
    for r in three_ages(12, seed=1):
        a, b = score(r, fitted, None), score(r, back, None)
        assert a.p_under18 == pytest.approx(b.p_under18)
        assert a.p_under14 == pytest.approx(b.p_under14)
        assert 0 <= a.p_under14 <= a.p_under18 <= 1
        assert (a.p_under14 > 0.5) == (r.age == 11), (r.age, a.p_under14)


def test_child_calibration_is_monotonic_and_in_unit_interval(fitted: TrainedModel) -> None:
    z = np.linspace(-30, 30, 601)
    for p in (fitted.calibrated(z), fitted.calibrated_child(z)):
        assert np.all((p >= 0) & (p <= 1))
        assert np.all(np.diff(p) >= 0)
    assert fitted.child_platt[0] > 0


def test_p14_never_exceeds_p18_even_if_the_classifiers_disagree(fitted: TrainedModel) -> None:
    rec = three_ages(3)[0]
    sigs: list[Signal] = []
    assert fitted.p_under14(rec, sigs, 0.01) <= 0.01
    assert DefaultModel().p_under14(rec, sigs, 0.2) <= 0.2


def test_too_few_children_falls_back_to_the_rule(tmp_path: Path) -> None:
    recs = synthetic()  # ages 15 and 30 only
    m = train(recs)
    u14 = m.meta["under14"]
    assert not u14["fitted"] and u14["positives"] == 0 and "rule" in u14
    assert m.child is None
    path = tmp_path / "rule.npz"
    m.save(path)
    back = TrainedModel.load(path)
    assert back.child is None and not back.meta["under14"]["fitted"]
    est = score(recs[0], back, None)
    dflt = DefaultModel()
    assert est.p_under14 == pytest.approx(dflt.p_under14(recs[0], est.signals, est.p_under18))
    few = three_ages(3 * (MIN_CHILD_ROWS - 1))
    assert not train(few).meta["under14"]["fitted"]


def test_older_model_files_still_load(tmp_path: Path) -> None:
    m = train(synthetic())
    meta = {k: v for k, v in m.meta.items() if k != "under14"} | {"kind": "qinglang.age.model/1"}
    path = tmp_path / "old.npz"
    TrainedModel(type(m.inner)(m.inner.config, m.inner.parts, 0.5, meta), m.platt).save(path)
    old = TrainedModel.load(path)
    assert old.child is None
    rec = synthetic(2)[0]
    assert score(rec, old, None).p_under18 == pytest.approx(score(rec, m, None).p_under18)


def test_load_refuses_child_parts_without_meta(fitted: TrainedModel, tmp_path: Path) -> None:
    meta = {k: v for k, v in fitted.meta.items() if k != "under14"}
    assert fitted.child is not None
    bad = TrainedModel(
        type(fitted.inner)(fitted.inner.config, fitted.inner.parts, 0.5, meta),
        fitted.platt,
        child=fitted.child,
    )
    path = tmp_path / "bad.npz"
    bad.save(path)
    with pytest.raises(ModelError, match="under-14"):
        TrainedModel.load(path)


def test_cross_validate_ages_reports_both() -> None:
    cv = cross_validate_ages(three_ages(150), k=3)
    assert cv.child_fitted == [True, True, True]
    assert auc(cv.y14, cv.p14) > 0.9 and auc(cv.y18, cv.p18) > 0.9
    assert np.all(cv.p14 <= cv.p18)


def test_shipped_default_under14_on_zh_set() -> None:
    """Development figure: the rule was set by the authors with this set in view."""
    rows = zh_rows()
    ests = [score_record(r) for r in rows]
    y = np.asarray([int(r["age"] < 14) for r in rows])  # type: ignore[operator]
    p14 = np.asarray([e.p_under14 for e in ests])
    assert all(0 <= e.p_under14 <= e.p_under18 <= 1 for e in ests)
    assert int(y.sum()) >= 60
    assert auc(y, p14) >= 0.9 and brier(y, p14) <= 0.15
