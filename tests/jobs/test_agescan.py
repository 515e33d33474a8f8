"""`qinglang.jobs.agescan`: local and Spark ``local[2]`` runs give the same results on a mixed
input with bad records (JSONL and Parquet), per-record errors, summary counts, progress, and the
`qinglang age scan` command's exit codes.

The Spark checks share one session inside one test, so one JVM starts however xdist splits the
file. A small stand-in scorer keeps these tests independent of the shipped age model; one check
runs the real `score_record` when it is importable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qinglang.age.infer import AgeEstimate, Signal, parse_record
from qinglang.jobs.agescan import (
    RESULT_KEYS,
    ScanInputError,
    ScanSummary,
    confidence_bucket,
    detect_format,
    scan_accounts,
    summary_path,
)

MAX_BYTES = 4000


def stand_in(record: dict[str, Any], model: Any, policy: Any) -> AgeEstimate:
    """A tiny deterministic scorer: 'school' or '学生' in the text means a likely minor."""
    r = parse_record(record)
    text = (r.profile_text + "\n" + r.post_text).lower()
    hits = text.count("school") + text.count("学生")
    p18 = min(0.99, 0.1 + 0.3 * hits)
    p14 = p18 / 2
    signals = tuple(
        Signal(f"kw{i}", 0.5 * (i + 1), "keyword", "关键词") for i in range(min(hits, 5))
    )
    band = None if hits == 0 else ("12to15" if hits < 3 else "8to11")
    return AgeEstimate(r.user_id, p18, p14, band, p18 >= 0.5, p14 >= 0.5, signals, "stand-in")


def _jsonl_lines() -> list[bytes]:
    good = [
        {
            "user_id": f"u{i}",
            "bio": "school " * (i % 4),
            "posts": [{"date": "2024-05-01", "text": "学生" * (i % 2)}],
        }
        for i in range(40)
    ]
    lines = [json.dumps(g, ensure_ascii=False).encode() for g in good]
    bad = [
        b'{"user_id": "m1", "posts": []}',  # empty post list: scored, not an error
        b'{"posts": [{"date": "2024-01-01", "text": "school"}]}',  # missing user_id
        b'{"user_id": "t1", "posts": "school"}',  # posts of the wrong type
        b'{"user_id": "a1", "age": 400}',  # absurd age
        b'{"user_id": "a2", "age": "fifteen"}',  # age of the wrong type
        b'{"user_id": "d1", "posts": [{"date": "yesterday", "text": "x"}]}',  # bad date
        b"{not json",
        b"[1, 2, 3]",  # JSON but not an object
        b'{"user_id": "x\xff"}',  # invalid UTF-8
        b"",  # blank: skipped
        json.dumps({"user_id": "big", "bio": "x" * (MAX_BYTES + 10)}).encode(),  # over-long
    ]
    return lines[:20] + bad + lines[20:]


@pytest.fixture
def jsonl_input(tmp_path: Path) -> Path:
    p = tmp_path / "accounts.jsonl"
    p.write_bytes(b"\n".join(_jsonl_lines()) + b"\n")
    return p


def _parquet_input(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    post = pa.struct([("date", pa.string()), ("text", pa.string())])
    schema = pa.schema(
        [
            ("user_id", pa.string()),
            ("age", pa.int64()),
            ("bio", pa.string()),
            ("posts", pa.list_(post)),
        ]
    )
    rows: list[dict[str, Any]] = [
        {
            "user_id": f"p{i}",
            "age": None,
            "bio": "school" * (i % 3),
            "posts": [{"date": "2024-05-01", "text": "学生" * (i % 2)}],
        }
        for i in range(30)
    ]
    rows[3] = {"user_id": None, "age": None, "bio": "school", "posts": []}  # missing user_id
    rows[7] = {"user_id": "old", "age": 400, "bio": "", "posts": None}  # absurd age
    rows[11] = {"user_id": "neg", "age": -3, "bio": None, "posts": None}  # absurd age
    rows[12] = {"user_id": "empty", "age": None, "bio": None, "posts": []}  # empty posts
    rows[20] = {
        "user_id": "dt",
        "age": 15,
        "bio": "",
        "posts": [{"date": "31/02/2024", "text": "school"}],
    }  # bad date
    # two row groups, so the Spark read has more than one split to keep in order
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=16)
    return path


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_table(path).to_pylist())
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------- local


def test_local_jsonl_rows_errors_and_summary(jsonl_input: Path, tmp_path: Path) -> None:
    out = tmp_path / "res.jsonl"
    calls: list[tuple[int, int | None]] = []
    s = scan_accounts(
        jsonl_input,
        out,
        scorer=stand_in,
        max_line_bytes=MAX_BYTES,
        progress=lambda d, t: calls.append((d, t)),
    )
    rows = _rows(out)
    assert all(tuple(r) == RESULT_KEYS for r in rows)
    assert [r["index"] for r in rows] == sorted(r["index"] for r in rows)
    errors = {r["index"]: r["error"] for r in rows if r["error"]}
    # lines 21..31 are the bad block; line 30 is blank and has no row
    assert 30 not in [r["index"] for r in rows]
    assert sorted(errors) == [22, 23, 24, 25, 26, 27, 28, 29, 31]
    assert "user_id" in errors[22] and "posts" in errors[23]
    assert "400" in errors[24] and "age" in errors[25] and "date" in errors[26]
    assert errors[27].startswith("not JSON") and "object" in errors[28]
    assert errors[29] == "invalid UTF-8 at byte 14"
    assert "over the 4,000-byte limit" in errors[31]
    by_id = {r["user_id"]: r for r in rows}
    assert by_id["m1"]["error"] is None and by_id["m1"]["p_under18"] == 0.1  # empty posts scored
    assert by_id["a1"]["error"] and by_id["a1"]["p_under18"] is None
    assert s.records == 50 and s.scored == 41 and len(s.errors) == 9
    assert s.suspected == sum(1 for r in rows if r["suspected"])
    assert sum(s.by_band.values()) == s.suspected == sum(s.by_confidence.values())
    summary = json.loads(summary_path(out).read_text(encoding="utf-8"))
    assert summary["records"] == 50 and summary["errors"] == 9
    assert summary["error_list"][0] == {"where": "line 22", "error": errors[22]}
    assert list(summary["suspected_by_confidence"]) == ["<0.5", "0.5-0.7", "0.7-0.9", "0.9-1.0"]
    assert calls and calls[-1] == (jsonl_input.stat().st_size, jsonl_input.stat().st_size)


def test_local_parquet(tmp_path: Path) -> None:
    src = _parquet_input(tmp_path / "acc.parquet")
    out = tmp_path / "res.parquet"
    calls: list[tuple[int, int | None]] = []
    s = scan_accounts(src, out, scorer=stand_in, progress=lambda d, t: calls.append((d, t)))
    rows = _rows(out)
    assert [r["index"] for r in rows] == list(range(1, 31))
    errs = {r["index"]: r["error"] for r in rows if r["error"]}
    assert sorted(errs) == [4, 8, 12, 21]
    assert rows[12]["user_id"] == "empty" and rows[12]["error"] is None
    assert s.to_dict()["error_list"][0]["where"] == "row 4"
    assert calls[-1] == (30, 30)


def test_formats_and_buckets(tmp_path: Path) -> None:
    assert detect_format("a.parquet") == "parquet" and detect_format("a.jsonl") == "jsonl"
    assert detect_format("a.data", "parquet") == "parquet"
    with pytest.raises(ScanInputError):
        detect_format("a", "csv")
    with pytest.raises(ScanInputError):
        scan_accounts(tmp_path / "missing.jsonl", tmp_path / "o.jsonl", scorer=stand_in)
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(ScanInputError):
        scan_accounts(tmp_path / "x.parquet", tmp_path / "o.jsonl", scorer=stand_in)
    assert [confidence_bucket(p) for p in (0.2, 0.5, 0.75, 0.9, 1.0)] == [
        "<0.5",
        "0.5-0.7",
        "0.7-0.9",
        "0.9-1.0",
        "0.9-1.0",
    ]
    assert ScanSummary().to_dict()["records"] == 0


# ---------------------------------------------------------------- Spark


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    from pyspark import cloudpickle

    from qinglang.jobs.agescan import spark_session

    # ship the stand-in scorer by value: the Python workers need not import the tests
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    session = spark_session(
        "local[2]",
        {
            "spark.driver.memory": "1g",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.sql.files.maxPartitionBytes": "2048",
        },
    )
    try:
        yield session
    finally:
        session.stop()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_spark_local2_identical_to_local(spark: Any, jsonl_input: Path, tmp_path: Path) -> None:
    # JSONL in, JSONL out: byte-for-byte; the small split size gives several partitions
    local_out, spark_out = tmp_path / "local.jsonl", tmp_path / "spark.jsonl"
    ls = scan_accounts(jsonl_input, local_out, scorer=stand_in, max_line_bytes=MAX_BYTES)
    calls: list[tuple[int, int | None]] = []
    ss = scan_accounts(
        jsonl_input,
        spark_out,
        scorer=stand_in,
        max_line_bytes=MAX_BYTES,
        spark=spark,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert spark.read.text(str(jsonl_input)).rdd.getNumPartitions() > 1
    assert spark_out.read_bytes() == local_out.read_bytes()
    assert summary_path(spark_out).read_bytes() == summary_path(local_out).read_bytes()
    assert ss.to_dict() == ls.to_dict() and len(ss.errors) == 9
    assert calls[-1] == (51, 51)  # 51 lines, one of them blank

    # Parquet in, Parquet and JSONL out
    src = _parquet_input(tmp_path / "acc.parquet")
    for name in ("r.parquet", "r.jsonl"):
        lo, so = tmp_path / f"local-{name}", tmp_path / f"spark-{name}"
        a = scan_accounts(src, lo, scorer=stand_in)
        b = scan_accounts(src, so, scorer=stand_in, spark=spark)
        assert _rows(so) == _rows(lo) and len(_rows(lo)) == 30
        assert a.to_dict() == b.to_dict()
        if name.endswith(".jsonl"):
            assert so.read_bytes() == lo.read_bytes()

    # the real scorer, when the shipped model is there
    try:
        import qinglang.age.infer.model  # noqa: F401
    except ImportError:
        return
    lo, so = tmp_path / "real-local.jsonl", tmp_path / "real-spark.jsonl"
    scan_accounts(jsonl_input, lo, max_line_bytes=MAX_BYTES)
    scan_accounts(jsonl_input, so, max_line_bytes=MAX_BYTES, spark=spark)
    assert so.read_bytes() == lo.read_bytes()


# ---------------------------------------------------------------- the command


def _age_scan_available() -> bool:
    try:
        import qinglang.age.infer.model  # noqa: F401
        from qinglang.commands import age
    except ImportError:
        return False
    return hasattr(age, "scan_command")


def age_scan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "qinglang.cli", "age", "scan", *args],
        capture_output=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.skipif(not _age_scan_available(), reason="qinglang age scan not wired yet")
def test_cli_exit_codes_and_spark(jsonl_input: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"\n".join(_jsonl_lines()[:20]) + b"\n")
    r = age_scan(str(good), "--out", str(tmp_path / "g.jsonl"))
    assert r.returncode == 0, r.stderr
    assert "records" in r.stdout.decode() and (tmp_path / "g.summary.json").exists()

    r = age_scan(
        str(jsonl_input), "--out", str(tmp_path / "l.jsonl"), "--max-line-bytes", str(MAX_BYTES)
    )
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "line 24:" in err and "400" in err and "line 29: invalid UTF-8" in err

    r = age_scan(str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "n.jsonl"))
    assert r.returncode == 2 and "nope.jsonl" in r.stderr.decode()

    r = age_scan(
        str(jsonl_input),
        "--out",
        str(tmp_path / "s.jsonl"),
        "--max-line-bytes",
        str(MAX_BYTES),
        "--spark",
        "local[2]",
        "--spark-conf",
        "spark.driver.memory=1g",
    )
    assert r.returncode == 2, r.stderr
    assert (tmp_path / "s.jsonl").read_bytes() == (tmp_path / "l.jsonl").read_bytes()
