"""The shipped default on the Chinese set (AUC ≥ 0.95), score_record, and the trainable model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from qinglang.age.infer import score_record
from qinglang.age.infer.model import (
    TrainedModel,
    auc,
    cross_validate,
    evaluate,
    fit_platt,
    precision_at_recall,
    reliability_png,
    score,
    train,
)
from qinglang.age.infer.records import AgeRecord, parse_record
from qinglang.policy import load_policy
from qinglang.risk.model import ModelError

ZH = Path(__file__).parent / "data" / "zh_profiles.jsonl"


def zh_rows() -> list[dict[str, object]]:
    return [json.loads(line) for line in ZH.read_text("utf-8").splitlines() if line.strip()]


def test_zh_set_is_big_and_has_the_hard_negatives() -> None:
    rows = zh_rows()
    assert len(rows) >= 300
    kinds = {r["kind"] for r in rows}
    assert {"parent", "teacher", "adult_fan", "gen00_adult"} <= kinds
    for r in rows:
        assert isinstance(r["age"], int)
        assert (r["age"] < 18) == str(r["kind"]).startswith("minor"), r


def test_shipped_default_auc_on_zh_set() -> None:
    rows = zh_rows()
    y = np.asarray([int(r["age"] < 18) for r in rows])  # type: ignore[operator]
    p = np.asarray([score_record(r).p_under18 for r in rows])
    assert auc(y, p) >= 0.95
    hard = [i for i, r in enumerate(rows) if r["kind"] in ("parent", "teacher", "gen00_adult")]
    assert np.mean(p[hard] >= 0.5) < 0.1


def test_score_record_is_deterministic_and_explains() -> None:
    rec = {"user_id": "u1", "bio": "初二学生，14岁", "as_of": "2026-06-01"}
    a, b = score_record(rec), score_record(rec)
    assert a == b
    assert a.suspected and a.band == "12to15"
    assert a.p_under14 <= a.p_under18
    assert a.signals[0].weight >= a.signals[-1].weight
    d = a.to_dict()
    assert d["signals"][0]["explanation_zh"]


def test_child_band_and_flag() -> None:
    est = score_record({"user_id": "c", "bio": "我今年9岁，三年级", "as_of": "2026-06-01"})
    assert est.suspected_child and est.band == "8to11"


def test_adult_band() -> None:
    est = score_record({"user_id": "a", "bio": "程序员 已婚 加班中"})
    assert not est.suspected and est.band == "adult"


def test_policy_threshold_is_used() -> None:
    policy = load_policy("cn")
    est = score({"user_id": "x", "bio": "追番"}, None, policy)
    assert est.suspected == (est.p_under18 >= 0.5)


def test_metrics() -> None:
    y = np.asarray([0, 0, 1, 1])
    assert auc(y, np.asarray([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert auc(y, np.asarray([0.5, 0.5, 0.5, 0.5])) == 0.5
    prec, _thr = precision_at_recall(y, np.asarray([0.1, 0.4, 0.35, 0.8]), 0.9)
    assert prec == pytest.approx(2 / 3)
    m = evaluate(y, np.asarray([0.0, 0.0, 1.0, 1.0]), 0.5)
    assert m.brier == 0 and m.auc == 1 and m.precision == 1 and m.recall == 1


def test_platt_recovers_a_known_curve() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=20_000)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(2 * z - 0.5)))).astype(np.int64)
    a, b = fit_platt(z, y)
    assert a == pytest.approx(2, abs=0.15) and b == pytest.approx(-0.5, abs=0.1)


def synthetic(n: int = 80, seed: int = 0) -> list[AgeRecord]:
    rnd = random.Random(seed)
    young = ["homework", "my mom", "school", "math test", "grounded", "lol", "teacher"]
    old = ["work", "my wife", "office", "mortgage", "boss", "meeting", "taxes"]
    common = ["today", "the", "weather", "movie", "music", "friends", "weekend"]
    out = []
    for i in range(n):
        minor = i % 2 == 0
        words = (young if minor else old) * 2 + common * 3
        posts = [
            {"date": "2004-06-01", "text": " ".join(rnd.choice(words) for _ in range(30))}
            for _ in range(3)
        ]
        out.append(parse_record({"user_id": str(i), "age": 15 if minor else 30, "posts": posts}))
    return out


def test_train_save_load_round_trip(tmp_path: Path) -> None:
    recs = synthetic()
    m = train(recs, data_name="synthetic")
    path = tmp_path / "age.npz"
    m.save(path)
    m2 = TrainedModel.load(path)
    a = score(recs[0], m, None)
    b = score(recs[0], m2, None)
    assert a.p_under18 == pytest.approx(b.p_under18)
    assert a.p_under18 > 0.5 > score(recs[1], m2, None).p_under18
    assert m2.meta["inner_cv"]["auc"] > 0.9


def test_load_refuses_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        TrainedModel.load(bad)


def test_cross_validate_is_nested_and_good_on_separable_data() -> None:
    y, p, folds = cross_validate(synthetic(60), k=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(60))
    assert auc(y, p) > 0.9


def test_reliability_png(tmp_path: Path) -> None:
    path = tmp_path / "r.png"
    pts = reliability_png(np.asarray([0, 1, 1, 0]), np.asarray([0.1, 0.9, 0.7, 0.3]), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sum(n for _, _, n in pts) == 4
