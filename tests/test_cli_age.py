"""`qinglang age train` and `qinglang age eval` as a user runs them: the last line is JSON, bad
records are reported per line and the rest are scored, a reliability PNG is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# ---------------------------------------------------------------- scan, then apply to a database


def _seed_db(url: str) -> str:
    """A migrated database with platform 'video' and accounts teen, adult, kyc (verified adult);
    returns the data key."""
    from qinglang.store import assessments, make_engine, repo, session_factory, transaction
    from qinglang.store import upgrade as migrate
    from qinglang.store.crypto import DataKey

    key = DataKey.generate()
    engine = make_engine(url, data_key=key)
    try:
        migrate(engine)
        with transaction(session_factory(engine)) as s:
            p = repo.create_platform(s, "video", "Video")
            for name in ("teen", "adult", "kyc"):
                repo.upsert_account(s, p.id, name)
            kyc = repo.get_account(s, p.id, "kyc")
            assert kyc is not None
            assessments.verify(s, kyc, minor=False, method="id_number", actor="kyc")
    finally:
        engine.dispose()
    return key.to_b64()


def _states(url: str, key: str) -> dict[str, str]:
    from sqlalchemy import select

    from qinglang.store import make_engine, session_factory
    from qinglang.store.crypto import DataKey
    from qinglang.store.models import Account, AgeAssessment

    engine = make_engine(url, data_key=DataKey.from_b64(key))
    try:
        with session_factory(engine)() as s:
            rows = s.execute(
                select(Account.external_id, AgeAssessment.state).join(
                    AgeAssessment, AgeAssessment.account_id == Account.id
                )
            )
            return {e: st for e, st in rows}
    finally:
        engine.dispose()


def _accounts(path: Path) -> Path:
    bios = (("teen", "初二学生，今年13岁"), ("adult", "上班族，两个孩子的爸爸"), ("kyc", "高三党"))
    lines = [json.dumps({"user_id": u, "bio": b}, ensure_ascii=False) for u, b in bios]
    lines.append(json.dumps({"user_id": "ghost", "bio": "高三党，明年高考"}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_key(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qinglang.cli import main; main()", "age", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", "QINGLANG_DATA_KEY": key},
    )


def test_scan_applies_results_to_a_platform(db_url: str, tmp_path: Path) -> None:
    key = _seed_db(db_url)
    accounts, results = _accounts(tmp_path / "acc.jsonl"), tmp_path / "res.jsonl"
    dry = run_key("scan", str(accounts), "--out", str(results), "--db", db_url, key=key)
    assert dry.returncode == 0, dry.stderr
    assert "would apply" in dry.stdout and "dry run: nothing written" in dry.stdout
    assert _states(db_url, key) == {"kyc": "verified_adult"}

    res = run_key(
        "scan", str(accounts), "--out", str(results), "--db", db_url, "--platform", "video",
        "--apply", "--chunk", "2", key=key,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for needle in ("applied", "newly suspected", "unchanged", "unknown to the platform"):
        assert needle in out
    assert "skipped: verified" in out and "unknown to the platform: ghost" in out
    assert "2 assessments written" in out
    assert _states(db_url, key) == {
        "teen": "verification_requested",
        "adult": "clear",
        "kyc": "verified_adult",
    }
    again = run_key("apply", str(results), "--db", db_url, "--apply", key=key)
    assert again.returncode == 0, again.stderr
    assert "0 assessments written" in again.stdout


def test_apply_bad_input_is_one_line_exit_2(db_url: str, tmp_path: Path) -> None:
    key = _seed_db(db_url)
    accounts = _accounts(tmp_path / "acc.jsonl")
    cases = [
        (("scan", str(accounts), "--out", str(tmp_path / "r.jsonl"), "--apply"), "--apply"),
        (("apply", str(tmp_path / "none.jsonl"), "--db", db_url), "no such file"),
        (("apply", str(accounts), "--db", db_url, "--platform", "nope"), "no platform 'nope'"),
        (("apply", str(accounts), "--db", db_url, "--chunk", "0"), "--chunk"),
        (("apply", str(accounts), "--db", db_url, "--model-name", " "), "--model-name"),
    ]
    for args, needle in cases:
        r = run_key(*args, key=key)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    # a file that is not scan results: each row is reported, nothing is written, exit 2
    r = run_key("apply", str(accounts), "--db", db_url, "--apply", key=key)
    assert r.returncode == 2 and "results row 1: p_under18" in r.stderr
    assert _states(db_url, key) == {"kyc": "verified_adult"}


def test_spark_scan_applies_the_same(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    url = f"sqlite:///{tmp_path / 'q.db'}"
    key = _seed_db(url)
    accounts = _accounts(tmp_path / "acc.jsonl")
    res = run_key(
        "scan", str(accounts), "--out", str(tmp_path / "s.parquet"), "--spark", "local[1]",
        "--spark-conf", "spark.driver.memory=1g", "--db", url, "--apply", key=key,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "2 assessments written" in res.stdout
    assert _states(url, key) == {
        "teen": "verification_requested",
        "adult": "clear",
        "kyc": "verified_adult",
    }
