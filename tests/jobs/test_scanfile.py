"""`qinglang scan` on files: formats, per-line errors, exit codes, output shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PHONE = "13812345678"
ID_CHILD = "110105201505010022"  # born 2015-05-01: a child


def scan_cli(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "qinglang.cli", "scan", *args],
        input=stdin,
        capture_output=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


def out_lines(r: subprocess.CompletedProcess[bytes]) -> list[dict[str, object]]:
    return [json.loads(x) for x in r.stdout.decode().splitlines() if x.strip()]


def test_text_lines(tmp_path: Path) -> None:
    f = tmp_path / "in.txt"
    f.write_text(f"我的电话是{PHONE}\n今天天气很好\n", encoding="utf-8")
    r = scan_cli(str(f))
    assert r.returncode == 0, r.stderr
    rows = out_lines(r)
    assert [row["id"] for row in rows] == [1, 2]
    found = rows[0]["findings"]
    assert isinstance(found, list) and found[0]["category"] == "phone"
    assert set(found[0]) == {"start", "end", "category", "value", "confidence", "minor_signal"}
    text = f"我的电话是{PHONE}"
    assert text[found[0]["start"] : found[0]["end"]].replace(" ", "") == PHONE
    assert rows[1]["findings"] == []


def test_jsonl_ids_and_minor_signal() -> None:
    lines = [
        json.dumps({"id": "a", "text": f"身份证{ID_CHILD}"}, ensure_ascii=False),
        json.dumps({"id": 7, "text": "no pii here"}),
    ]
    r = scan_cli("-", "--format", "jsonl", stdin=("\n".join(lines) + "\n").encode())
    assert r.returncode == 0, r.stderr
    rows = out_lines(r)
    assert rows[0]["id"] == "a" and rows[1]["id"] == 7
    f = rows[0]["findings"][0]  # type: ignore[index]
    assert f["category"] == "id_number" and f["minor_signal"]["age"] < 14


def test_csv_column(tmp_path: Path) -> None:
    f = tmp_path / "in.csv"
    f.write_text(f"id,caption\nv1,call {PHONE}\nv2,hello\n", encoding="utf-8")
    r = scan_cli(str(f), "--format", "csv", "--column", "caption")
    assert r.returncode == 0, r.stderr
    rows = out_lines(r)
    assert [row["id"] for row in rows] == ["v1", "v2"] and rows[0]["findings"]
    bad = scan_cli(str(f), "--format", "csv", "--column", "nope")
    assert bad.returncode == 2 and b"nope" in bad.stderr


def test_bad_lines_are_reported_and_the_rest_processed(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    good = json.dumps({"id": "ok", "text": f"电话{PHONE}"}, ensure_ascii=False).encode()
    huge = json.dumps({"id": "big", "text": "x" * (10 * 1024 * 1024)}).encode()
    f.write_bytes(
        b"\n".join(
            [
                good,
                b'{"id": "broken", "text": ',
                b"",
                b'{"id": "u", "text": "\xff\xfe"}',
                huge,
                good,
            ]
        )
        + b"\n"
    )
    r = scan_cli(str(f), "--format", "jsonl", "--output", str(tmp_path / "out.jsonl"))
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("error:")]
    assert [e.split(":")[1].strip() for e in errors] == ["line 2", "line 3", "line 4", "line 5"]
    assert "not valid JSON" in errors[0] and "empty line" in errors[1]
    assert "invalid UTF-8" in errors[2] and "limit" in errors[3]
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == ["ok", "ok"]
    assert "Traceback" not in r.stderr.decode()


@pytest.mark.parametrize(
    "args",
    [("--format", "xml"), ("--category", "horoscope"), ("missing-file.txt",), ("--column", "x")],
)
def test_bad_arguments_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    r = scan_cli(*args, stdin=b"", cwd=tmp_path)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.decode().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")


def test_model_flag_adds_names() -> None:
    text = "我叫张伟，在北京市海淀区中关村大街上学\n".encode()
    plain = out_lines(scan_cli("-", stdin=text))[0]["findings"]
    with_model = out_lines(scan_cli("-", "--model", stdin=text))[0]["findings"]
    assert not any(f["category"] == "person_name" for f in plain)  # type: ignore[union-attr,index]
    assert any(f["category"] == "person_name" for f in with_model)  # type: ignore[union-attr,index]
