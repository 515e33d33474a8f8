"""`qinglang risk train` and `qinglang risk eval` as a user runs them: the last line is JSON,
bad input exits 2 with one line naming the line, events report messages read before the alert."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from qinglang.risk.events import event_to_dict
from qinglang.risk.types import Risk
from tests.risk.test_model import synthetic


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qinglang.cli import main; main()", "risk", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def last_json(stdout: str) -> dict[str, object]:
    lines = stdout.strip().splitlines()
    assert lines, "no output"
    out = json.loads(lines[-1])
    assert isinstance(out, dict)
    return out


def write_csv(path: Path, texts: list[str], labels: list[int]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["segment", "label"])
        w.writerows(zip(texts, labels, strict=True))
    return path


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, y = synthetic()
    return write_csv(tmp_path_factory.mktemp("risk") / "train.csv", texts, y.tolist())


@pytest.fixture(scope="module")
def model_path(data_csv: Path) -> Path:
    path = data_csv.parent / "model.npz"
    r = run("train", str(data_csv), "--out", str(path), "--seed", "1", "--inner-folds", "3")
    assert r.returncode == 0, r.stderr
    info = last_json(r.stdout)
    assert info["model"] == str(path) and 0 < float(info["threshold"]) < 1  # type: ignore[arg-type]
    assert "trained on 160 rows (40 positive)" in r.stdout
    return path


def test_train_then_eval_with_the_model(model_path: Path, tmp_path: Path) -> None:
    texts, y = synthetic(100, 25, seed=42)
    fresh = write_csv(tmp_path / "fresh.csv", texts, y.tolist())
    r = run("eval", str(fresh), "--model", str(model_path))
    assert r.returncode == 0, r.stderr
    out = last_json(r.stdout)
    assert {"precision", "recall", "f05"} <= set(out)
    assert out["mode"] == "model" and out["n"] == 100
    assert float(out["f05"]) >= 0.85  # type: ignore[arg-type]
    assert "precision" in r.stdout.splitlines()[1]
    assert "counts    tp" in r.stdout


def test_eval_cross_validation(data_csv: Path) -> None:
    r = run("eval", str(data_csv), "--cv", "3", "--seed", "2")
    assert r.returncode == 0, r.stderr
    out = last_json(r.stdout)
    assert out["mode"] == "cv" and out["folds"] == 3 and out["repeats"] == 1
    assert {"precision", "recall", "f05", "sd", "pooled"} <= set(out)
    assert "mean ± sd" in r.stdout and "nested" in r.stdout
    pooled = out["pooled"]
    assert isinstance(pooled, dict) and sum(pooled[k] for k in ("tp", "fp", "fn", "tn")) == 160
    # --folds is the same option
    again = run("eval", str(data_csv), "--folds", "3", "--seed", "2")
    assert last_json(again.stdout) == out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"segment,label\nhello,1\nbye,maybe\n", "line 3: label must be 0 or 1"),
        (b"text,label\nhello,1\n", "line 1: the CSV header needs columns segment and label"),
        (b"segment,label\nhello,1\n\xc3\x28,0\n", "line 3: invalid UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1: invalid UTF-8"),
        (b'{"segment": "hi", "label": 1}\n', "line 1: the CSV header needs columns"),
        (b"segment,label\nhello,1,2\n", "line 2: 3 fields"),
    ],
)
def test_bad_csv_exits_2_naming_the_line(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    for args in (("eval", str(bad), "--threshold", "0.5"), ("train", str(bad), "--out", "x")):
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        err = r.stderr.strip()
        assert len(err.splitlines()) == 1 and message in err and "bad.csv" in err, err
    assert not (tmp_path / "x").exists()


def test_bad_arguments_exit_2(tmp_path: Path, data_csv: Path, model_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"nope")
    cases = [
        (("eval", str(tmp_path / "missing.csv"), "--threshold", "0.5"), "cannot read"),
        (("train", str(tmp_path / "missing.csv"), "--out", "m.npz"), "cannot read"),
        (("eval", str(data_csv), "--model", str(junk)), "not a qinglang risk model"),
        (("eval", str(data_csv), "--model", str(model_path), "--cv", "3"), "give one of them"),
        (("eval", str(data_csv), "--cv", "1"), "--cv"),
        (("eval",), "give a CSV FILE"),
        (("train", str(data_csv), "--out", str(tmp_path)), "is a directory"),
        (("eval", str(data_csv), "--events", str(data_csv)), "--events"),
    ]
    for args, message in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, (args, r.stderr)


def test_too_few_rows_for_the_folds(tmp_path: Path) -> None:
    small = write_csv(tmp_path / "small.csv", ["a", "b", "c", "d"], [1, 1, 0, 0])
    r = run("eval", str(small), "--cv", "3")
    assert r.returncode == 2 and "needs at least 3 positive" in r.stderr


# ---------------------------------------------------------------- the default detector


def cli_inprocess(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    from qinglang.cli import main

    monkeypatch.setattr(sys, "argv", ["qinglang", "risk", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exc:
        main()
    cap = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), cap.out, cap.err


def test_default_detector_is_the_cue_scorer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A stand-in for qinglang.risk.cues: the CLI calls score_conversation on every row."""
    calls: list[str] = []

    def score_conversation(text: str, policy: object = None) -> Risk:
        calls.append(text)
        return Risk(0.9 if "secret" in text else 0.1)

    fake = types.ModuleType("qinglang.risk.cues")
    fake.score_conversation = score_conversation  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qinglang.risk.cues", fake)
    f = write_csv(
        tmp_path / "d.csv",
        ["our secret ok", "hello there", "a secret between adults", "keep it secret"],
        [1, 0, 0, 1],
    )
    code, out, err = cli_inprocess(monkeypatch, capsys, "eval", str(f), "--threshold", "0.5")
    assert code == 0, err
    assert len(calls) == 4
    res = last_json(out)
    assert res == {
        "precision": 0.6667,
        "recall": 1.0,
        "f05": 0.7143,
        "n": 4,
        "mode": "cues",
        "threshold": 0.5,
    }
    assert "default cue detector" in out and "tp 2  fp 1  fn 0  tn 1" in out


def test_default_detector_uses_the_packs_review_threshold(data_csv: Path) -> None:
    r = run("eval", str(data_csv))
    assert r.returncode == 0, r.stderr
    out = last_json(r.stdout)
    assert out["mode"] == "cues" and out["n"] == 160
    assert "risk.alert.review_threshold" in r.stdout


# ---------------------------------------------------------------- event streams


def scenario_lines(label: int, trusted: bool) -> list[dict[str, object]]:
    from qinglang.risk.simulate import case_scenario, trusted_scenario

    sc = trusted_scenario(seed=1) if trusted else case_scenario(seed=1)
    sid = "trusted" if trusted else "case"
    d = sc.directory
    lines: list[dict[str, object]] = [{"scenario": sid, "label": label}]
    for acc in [sc.sender, *sc.children]:
        lines.append({"scenario": sid, "account": acc, "age": d.facts(acc).age})
        link = d.link(sc.sender, acc)
        if acc != sc.sender and link.approved:
            lines.append({"scenario": sid, "link": [sc.sender, acc], "approved": True})
    lines += [{"scenario": sid, **event_to_dict(e)} for e in sc.events]
    return lines


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_events_report_messages_read_before_the_alert(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "ev.jsonl", scenario_lines(1, trusted=False) + scenario_lines(0, trusted=True)
    )
    r = run("eval", "--events", str(f))
    assert r.returncode == 0, r.stderr
    out = last_json(r.stdout)
    assert out["mode"] == "events" and out["n"] == 2 and out["recall"] == 1.0
    before = out["messages_before_alert"]
    assert isinstance(before, dict) and before["flagged_grooming"] == 1
    # the case sends 36 messages (12 children × 3); the alert comes well before the last
    assert 1 <= before["min"] <= before["max"] < 36
    assert "messages read before the alert" in r.stdout


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"scenario": "a", "id": "1", "kind": "follow", "at": 0, "actor": "x"}], "line 1: target"),
        ([{"label": 1}], 'line 1: "scenario" missing'),
        ([{"scenario": "a", "account": "x", "age": 3}], "line 1: scenario 'a' has no label"),
        ([{"scenario": "a", "label": 2}], "line 1: label must be 0 or 1"),
        (
            [{"scenario": "a", "label": 1}, {"scenario": "a", "label": 0}],
            "line 2: label 0 contradicts",
        ),
        ([{"scenario": "a", "label": 1, "link": ["x"]}], "line 1: link must be"),
        ([{"scenario": "a", "label": 1, "account": "x", "age": "ten"}], "line 1: age must be"),
    ],
)
def test_bad_events_exit_2_naming_the_line(
    tmp_path: Path, rows: list[dict[str, object]], message: str
) -> None:
    f = write_jsonl(tmp_path / "bad.jsonl", rows)
    r = run("eval", "--events", str(f))
    assert r.returncode == 2, r.stdout
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr


def test_events_not_json_or_utf8(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_bytes(b'{"scenario": "a", "label": 1}\nnot json\n')
    r = run("eval", "--events", str(f))
    assert r.returncode == 2 and "line 2: not valid JSON" in r.stderr
    f.write_bytes(b'{"scenario": "a", "label": 1}\n\xff\n')
    r = run("eval", "--events", str(f))
    assert r.returncode == 2 and "line 2: invalid UTF-8" in r.stderr
