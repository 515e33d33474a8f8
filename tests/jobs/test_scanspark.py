"""`qinglang.jobs.scanspark`: the personal-information backlog scan gives the same rows locally
and on Spark ``local[2]`` (JSONL, CSV and text input, several partitions), bad records are error
rows in both, and ``qinglang scan --spark`` writes the results and exits 0, or 2 on bad input.

The Spark checks share one session inside one test, so one JVM starts however xdist splits the
file; they skip when pyspark or Java is missing, as the age scan's do.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from qinglang.jobs.scanfile import ScanStats, read_records, scan_records
from qinglang.jobs.scanspark import (
    RESULT_KEYS,
    PiiScanSummary,
    ScanInputError,
    scan_backlog,
    summary_path,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
MAX_BYTES = 2000
N_RECORDS = 300


def make_id(birth: date, region: str = "110105", seq: str = "001") -> str:
    """A resident identity number with a correct check character (as tests/detect builds them)."""
    head = f"{region}{birth:%Y%m%d}{seq}"
    return head + "10X98765432"[sum(int(c) * w for c, w in zip(head, WEIGHTS, strict=True)) % 11]


STREETS = ("中关村大街", "南京西路", "天河路", "人民路", "解放大道")
CITIES = ("北京市海淀区", "上海市静安区", "广州市天河区", "成都市武侯区", "武汉市江汉区")


def _text(rng: random.Random) -> str:
    """A short post: Chinese or English, with a phone, identity number, address, email or QQ
    number, or none."""
    phone = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
    birth = date(rng.randint(1970, 2019), rng.randint(1, 12), rng.randint(1, 28))
    ident = make_id(birth, rng.choice(("110105", "310106", "440106")), f"{rng.randint(0, 999):03}")
    addr = f"{rng.choice(CITIES)}{rng.choice(STREETS)}{rng.randint(1, 300)}号"
    email = f"user{rng.randint(1, 9999)}@example.com"
    qq = str(rng.randint(10_000_000, 999_999_999))
    return rng.choice(
        (
            f"我的电话是{phone}，有事联系",
            f"call me on +86 {phone[:3]} {phone[3:7]} {phone[7:]} after school",
            f"身份证号：{ident}",
            f"my ID number is {ident}, don't share it",
            f"住址：{addr}，欢迎来玩",
            f"send the parcel to {addr} please",
            f"邮箱 {email}，QQ号{qq}",
            f"email {email} or add my QQ {qq}",
            "今天天气很好，我们去公园玩吧",
            "nothing personal here, just a picture of my cat",
            f"电话{phone}，地址{addr}，身份证{ident}",
        )
    )


def _records(n: int = N_RECORDS, seed: int = 20261128) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"r{i}", _text(rng)) for i in range(n)]


BAD_JSONL = [
    b'{"id": "broken", "text": ',  # not JSON
    b"",  # empty line
    b'{"id": "u", "text": "\xff\xfe"}',  # invalid UTF-8
    b'{"id": "nt", "body": "x"}',  # no text field
    b"[1, 2]",  # not an object
    json.dumps({"id": "big", "text": "x" * (MAX_BYTES + 10)}).encode(),  # over-long
]


@pytest.fixture
def jsonl_input(tmp_path: Path) -> Path:
    lines = [json.dumps({"id": i, "text": t}, ensure_ascii=False).encode() for i, t in _records()]
    mixed = lines[:100] + BAD_JSONL[:3] + lines[100:200] + BAD_JSONL[3:] + lines[200:]
    p = tmp_path / "posts.jsonl"
    p.write_bytes(b"\n".join(mixed) + b"\n")
    return p


@pytest.fixture
def csv_input(tmp_path: Path) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["id", "caption", "likes"])
    for i, (rid, t) in enumerate(_records(200, seed=7)):
        w.writerow([rid, t, i])
        if i == 50:
            buf.write("only-two,fields\r\n")  # wrong number of fields
    p = tmp_path / "captions.csv"
    p.write_text(buf.getvalue(), encoding="utf-8")
    return p


@pytest.fixture
def text_input(tmp_path: Path) -> Path:
    body = "\n".join(t for _, t in _records(300, seed=3)).encode()
    p = tmp_path / "bios.txt"
    p.write_bytes(body + b"\n\n\xc3\x28 broken\r\nlast line 13912345678")  # blank, bad UTF-8
    return p


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------- local


def test_local_rows_errors_and_summary(jsonl_input: Path, tmp_path: Path) -> None:
    out = tmp_path / "res.jsonl"
    calls: list[tuple[int, int | None]] = []
    s = scan_backlog(
        jsonl_input,
        out,
        fmt="jsonl",
        max_line_bytes=MAX_BYTES,
        progress=lambda d, t: calls.append((d, t)),
    )
    rows = _rows(out)
    assert all(tuple(r) == RESULT_KEYS for r in rows)
    assert [r["line"] for r in rows] == list(range(1, N_RECORDS + len(BAD_JSONL) + 1))
    errors = {r["line"]: r["error"] for r in rows if r["error"]}
    assert sorted(errors) == [101, 102, 103, 204, 205, 206]
    assert "not valid JSON" in errors[101] and "empty line" in errors[102]
    assert "invalid UTF-8" in errors[103] and '"text"' in errors[204]
    assert "JSON object" in errors[205] and "over the 2,000-byte limit" in errors[206]
    assert all(r["findings"] is None for r in rows if r["error"])
    cats = s.by_category
    assert {"phone", "id_number", "address", "email", "qq"} <= set(cats)
    assert s.records == N_RECORDS + 6 and s.scanned == N_RECORDS and len(s.errors) == 6
    assert s.findings == sum(cats.values()) == sum(len(r["findings"] or []) for r in rows)
    assert 0 < s.with_findings < s.scanned
    summary = json.loads(summary_path(out).read_text(encoding="utf-8"))
    assert summary == s.to_dict() and summary["error_list"][0]["line"] == 101
    size = jsonl_input.stat().st_size
    assert calls[-1] == (size, size)

    # the same findings as the local `qinglang scan` output, record for record
    stats = ScanStats()
    lines: list[str] = []
    with jsonl_input.open("rb") as f:
        scan_records(read_records(f, "jsonl", None, MAX_BYTES, stats), lines.append, stats)
    good = [{"id": r["id"], "findings": r["findings"]} for r in rows if r["error"] is None]
    assert [json.loads(x) for x in lines] == good
    assert stats.errors == [r["error"] for r in rows if r["error"]]


def test_bad_input_raises(tmp_path: Path) -> None:
    with pytest.raises(ScanInputError, match="no such file"):
        scan_backlog(tmp_path / "missing.jsonl", tmp_path / "o.jsonl", fmt="jsonl")
    f = tmp_path / "in.csv"
    f.write_text("id,caption\n1,hello\n", encoding="utf-8")
    with pytest.raises(ScanInputError, match="nope"):
        scan_backlog(f, tmp_path / "o.jsonl", fmt="csv", column="nope")
    with pytest.raises(ScanInputError, match="format"):
        scan_backlog(f, tmp_path / "o.jsonl", fmt="xml")
    assert not (tmp_path / "o.jsonl").exists()
    assert PiiScanSummary().to_dict()["records"] == 0


# ---------------------------------------------------------------- Spark


def _java() -> bool:
    home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(home and Path(home, "bin", "java").exists())


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    if not _java():
        pytest.skip("Spark needs Java (none on PATH or in JAVA_HOME)")
    from qinglang.jobs.scanspark import spark_session

    session = spark_session(
        "local[2]",
        {
            "spark.driver.memory": "1g",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.sql.files.maxPartitionBytes": "8192",
        },
    )
    try:
        yield session
    finally:
        session.stop()


def test_spark_local2_identical_to_local(
    spark: Any, jsonl_input: Path, csv_input: Path, text_input: Path, tmp_path: Path
) -> None:
    cases: list[tuple[Path, dict[str, Any], list[int]]] = [
        (jsonl_input, {"fmt": "jsonl"}, [101, 102, 103, 204, 205, 206]),
        (csv_input, {"fmt": "csv", "column": "caption"}, [53]),
        (text_input, {"fmt": "text"}, [302]),
    ]
    for src, kw, bad in cases:
        assert spark.read.text(str(src)).rdd.getNumPartitions() > 1, src
        lo, so = tmp_path / f"local-{src.name}.jsonl", tmp_path / f"spark-{src.name}.jsonl"
        ls = scan_backlog(src, lo, max_line_bytes=MAX_BYTES, **kw)
        calls: list[tuple[int, int | None]] = []
        ss = scan_backlog(
            src,
            so,
            max_line_bytes=MAX_BYTES,
            spark=spark,
            progress=lambda d, t: calls.append((d, t)),  # noqa: B023
            **kw,
        )
        local_rows, spark_rows = _rows(lo), _rows(so)
        assert sorted(spark_rows, key=lambda r: r["line"]) == local_rows, src
        assert so.read_bytes() == lo.read_bytes(), src  # already in input order
        assert ss.to_dict() == ls.to_dict()
        assert [n for n, _ in ss.errors] == bad, src
        assert ss.findings > 0 and ss.records == len(local_rows)
        assert calls[-1][0] == calls[-1][1]
    text_rows = _rows(tmp_path / "spark-bios.txt.jsonl")
    assert text_rows[300]["findings"] == []  # the blank line is a record in text format
    assert text_rows[302]["findings"][0]["category"] == "phone"  # after a \r\n line ending
    csv_rows = _rows(tmp_path / "spark-captions.csv.jsonl")
    assert csv_rows[0]["line"] == 2 and csv_rows[0]["id"] == "r0"
    assert "2 fields, the header has 3" in csv_rows[51]["error"]

    # categories narrow the scan the same way on both
    lo, so = tmp_path / "cat-local.jsonl", tmp_path / "cat-spark.jsonl"
    a = scan_backlog(jsonl_input, lo, fmt="jsonl", categories=["phone"], max_line_bytes=MAX_BYTES)
    b = scan_backlog(
        jsonl_input, so, fmt="jsonl", categories=["phone"], max_line_bytes=MAX_BYTES, spark=spark
    )
    assert so.read_bytes() == lo.read_bytes() and set(a.by_category) == {"phone"} == set(
        b.by_category
    )

    # a bad CSV header, or a path Spark cannot read, is a typed error and writes nothing
    with pytest.raises(ScanInputError, match="nope"):
        scan_backlog(csv_input, tmp_path / "x.jsonl", fmt="csv", column="nope", spark=spark)
    with pytest.raises(ScanInputError, match="Spark cannot read"):
        scan_backlog(f"file://{tmp_path}/none.txt", tmp_path / "x.jsonl", spark=spark)
    assert not (tmp_path / "x.jsonl").exists()


# ---------------------------------------------------------------- the command


def scan_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "qinglang.cli", "scan", *args],
        capture_output=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


def _error_lines(r: subprocess.CompletedProcess[bytes]) -> list[str]:
    return [ln for ln in r.stderr.decode().splitlines() if ln.strip()]


@pytest.mark.parametrize(
    "args",
    [
        ("--spark", "local[2]"),  # no --out
        ("--spark", "local[2]", "--out", "o.jsonl", "--output", "x.jsonl"),
        ("--out", "o.jsonl"),  # --out without --spark
        ("--spark", "local[2]", "--out", "o.jsonl", "--spark-conf", "novalue"),
        ("-", "--spark", "local[2]", "--out", "o.jsonl"),  # standard input
        ("missing.txt", "--spark", "local[2]", "--out", "o.jsonl"),
    ],
)
def test_cli_spark_bad_arguments_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("电话13812345678\n", encoding="utf-8")
    if args[0] not in ("-", "missing.txt"):
        args = ("in.txt", *args)
    r = scan_cli(*args, cwd=tmp_path)
    assert r.returncode == 2
    lines = _error_lines(r)
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_spark_writes_results(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    if not _java():
        pytest.skip("Spark needs Java (none on PATH or in JAVA_HOME)")
    src = tmp_path / "posts.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
            for i, t in _records(120, seed=11)
        ),
        encoding="utf-8",
    )
    r = scan_cli(
        str(src),
        "--format",
        "jsonl",
        "--spark",
        "local[2]",
        "--out",
        str(tmp_path / "s.jsonl"),
        "--spark-conf",
        "spark.driver.memory=1g",
    )
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert "records with findings" in r.stdout.decode()
    scan_backlog(src, tmp_path / "l.jsonl", fmt="jsonl")
    assert (tmp_path / "s.jsonl").read_bytes() == (tmp_path / "l.jsonl").read_bytes()
    assert len(_rows(tmp_path / "s.jsonl")) == 120
    assert json.loads((tmp_path / "s.summary.json").read_text())["records"] == 120
