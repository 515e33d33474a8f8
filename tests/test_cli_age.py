"""`qinglang age train` and `qinglang age eval` as a user runs them: the last line is JSON, bad
records are reported per line and the rest are scored, a reliability PNG is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.age.infer.test_age_infer_model import ZH, synthetic


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qinglang.cli import main; main()", "age", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


def last_json(stdout: str) -> dict[str, object]:
    out = json.loads(stdout.strip().splitlines()[-1])
    assert isinstance(out, dict)
    return out


def write_synthetic(path: Path, n: int = 60) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for r in synthetic(n):
            posts = [
                {"date": p.date.isoformat() if p.date else None, "text": p.text} for p in r.posts
            ]
            fh.write(json.dumps({"user_id": r.user_id, "age": r.age, "posts": posts}) + "\n")
    return path


def test_eval_default_on_zh_set(tmp_path: Path) -> None:
    plot = tmp_path / "zh.png"
    res = run("eval", str(ZH), "--plot", str(plot))
    assert res.returncode == 0, res.stderr
    j = last_json(res.stdout)
    assert j["n"] >= 300 and float(j["auc"]) >= 0.95  # type: ignore[arg-type]
    assert {"auc", "brier", "n", "precision", "recall", "precision_at_90_recall"} <= set(j)
    # Under 14 on the same set: the shipped default uses its rule; measured, not fitted.
    assert j["under14"] == "rule" and j["positives14"] == 71
    assert 0 <= float(j["brier14"]) <= 1 and float(j["auc14"]) >= 0.9  # type: ignore[arg-type]
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_eval_reports_bad_records_and_scores_the_rest(tmp_path: Path) -> None:
    data = tmp_path / "mixed.jsonl"
    data.write_text(
        "\n".join(
            [
                json.dumps({"user_id": "a", "age": 14, "bio": "初二学生"}, ensure_ascii=False),
                "{broken",
                json.dumps({"user_id": "b", "age": 500, "bio": "x"}),
                json.dumps({"user_id": "c", "bio": "no age"}),
                json.dumps({"user_id": "d", "age": "old"}),
                json.dumps({"user_id": "e", "age": 35, "posts": []}),
                json.dumps({"user_id": "f", "age": 40, "bio": "宝妈一枚"}, ensure_ascii=False),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    res = run("eval", str(data), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "line 2:" in res.stderr and "line 3: age" in res.stderr
    assert "line 4: age" in res.stderr and "line 5: age" in res.stderr
    j = last_json(res.stdout)
    assert j["n"] == 3 and j["errors"] == 4
    assert (tmp_path / "mixed.default.reliability.png").exists()


def test_train_then_eval_model(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "train.jsonl")
    model = tmp_path / "age.npz"
    res = run("train", str(data), "--out", str(model))
    assert res.returncode == 0, res.stderr
    assert model.exists()
    res = run("eval", str(data), "--model", str(model))
    assert res.returncode == 0, res.stderr
    j = last_json(res.stdout)
    assert j["mode"] == "model" and float(j["auc"]) > 0.9  # type: ignore[arg-type]
    assert (tmp_path / "age.reliability.png").exists()


def test_eval_cv(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "d.jsonl")
    res = run("eval", str(data), "--cv", "3", "--plot", str(tmp_path / "cv.png"))
    assert res.returncode == 0, res.stderr
    assert last_json(res.stdout)["mode"] == "cv3"


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    res = run("eval", str(tmp_path / "missing.jsonl"))
    assert res.returncode == 2 and "cannot read" in res.stderr
    bad = tmp_path / "bad.npz"
    bad.write_text("x")
    res = run("eval", str(ZH), "--model", str(bad))
    assert res.returncode == 2
    one_sided = tmp_path / "one.jsonl"
    one_sided.write_text(json.dumps({"user_id": "a", "age": 30}) + "\n")
    res = run("train", str(one_sided), "--out", str(tmp_path / "m.npz"))
    assert res.returncode == 2 and "at least 2" in res.stderr


def test_train_fits_under14_when_the_data_has_children(tmp_path: Path) -> None:
    from qinglang.age.infer.model import TrainedModel
    from tests.age.infer.test_age_infer_under14 import three_ages

    data = tmp_path / "ages.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for r in three_ages(90):
            posts = [{"date": "2004-06-01", "text": p.text} for p in r.posts]
            fh.write(json.dumps({"user_id": r.user_id, "age": r.age, "posts": posts}) + "\n")
    model = tmp_path / "age14.npz"
    res = run("train", str(data), "--out", str(model))
    assert res.returncode == 0, res.stderr
    m = TrainedModel.load(model)
    assert m.child is not None and m.meta["under14"]["fitted"]
    res = run("eval", str(data), "--model", str(model))
    assert res.returncode == 0, res.stderr
    j = last_json(res.stdout)
    assert {"auc", "brier", "n"} <= set(j) and float(j["auc"]) > 0.9  # type: ignore[arg-type]
