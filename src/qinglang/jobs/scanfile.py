"""Batch scan of a file (or standard input) for personal information: text, JSONL or CSV in,
one JSON line per input record out, one error line per bad record on stderr.

Bad records never stop the run: invalid UTF-8, a malformed JSONL line, a missing column or a
line over the size limit is reported with its line number and skipped; the caller exits 2 if
any record failed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from qinglang.detect import scan

Format = Literal["text", "jsonl", "csv"]
FORMATS: tuple[str, ...] = ("text", "jsonl", "csv")
DEFAULT_MAX_LINE_BYTES = 1 << 20
"""Records longer than this (1 MiB) are rejected: captions, bios and messages are far shorter."""


@dataclass(slots=True)
class ScanStats:
    """What a batch scan did."""

    records: int = 0
    findings: int = 0
    errors: list[str] = field(default_factory=list)
    bytes_read: int = 0


@dataclass(frozen=True, slots=True)
class Record:
    """One input record: its id and text, or the reason it could not be read."""

    line: int
    id: Any
    text: str | None
    error: str | None = None


def _decode(raw: bytes, line: int) -> tuple[str | None, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"line {line}: invalid UTF-8 at byte {exc.start}"


def _lines(
    stream: IO[bytes], max_bytes: int, stats: ScanStats
) -> Iterator[tuple[int, bytes | None, str | None]]:
    """Numbered raw lines without their line ending; over-long lines come back as errors."""
    for n, raw in enumerate(stream, start=1):
        stats.bytes_read += len(raw)
        body = raw.rstrip(b"\r\n")
        if len(body) > max_bytes:
            yield n, None, too_long(n, len(body), max_bytes)
        else:
            yield n, body, None


def too_long(n: int, size: int, max_bytes: int) -> str:
    """The error of a line over the size limit."""
    return f"line {n}: {size:,} bytes, over the {max_bytes:,}-byte limit"


def read_records(
    stream: IO[bytes], fmt: Format, column: str | None, max_bytes: int, stats: ScanStats
) -> Iterator[Record]:
    """Parse the input into records, turning every bad one into an error record."""
    if fmt == "csv":
        yield from _csv_records(stream, column or "text", max_bytes, stats)
        return
    for n, body, err in _lines(stream, max_bytes, stats):
        if err is not None or body is None:
            yield Record(n, n, None, err)
        else:
            yield parse_line(n, body, fmt)


def parse_line(
    n: int, body: bytes, fmt: Format, header: list[str] | None = None, column: str = "text"
) -> Record:
    """One input line (without its line ending, within the size limit) as a record.

    `header` and `column` are for CSV: the header's fields and the column holding the text.
    The local scan and the Spark scan (`qinglang.jobs.scanspark`) both read lines with this.
    """
    text, err = _decode(body, n)
    if text is None:
        return Record(n, n, None, err)
    if fmt == "text":
        return Record(n, n, text)
    if fmt == "jsonl":
        return _jsonl_record(n, text)
    if header is None:
        raise ValueError("a CSV line needs the header")
    return _csv_record(n, text, header, column)


def _jsonl_record(n: int, line: str) -> Record:
    if not line.strip():
        return Record(n, n, None, f'line {n}: empty line, expected {{"id": ..., "text": ...}}')
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return Record(n, n, None, f"line {n}: not valid JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(obj, dict):
        return Record(n, n, None, f"line {n}: expected a JSON object with id and text")
    text = obj.get("text")
    if not isinstance(text, str):
        return Record(n, obj.get("id", n), None, f'line {n}: field "text" missing or not a string')
    return Record(n, obj.get("id", n), text)


def _csv_records(
    stream: IO[bytes], column: str, max_bytes: int, stats: ScanStats
) -> Iterator[Record]:
    lines = _lines(stream, max_bytes, stats)
    header: list[str] | None = None
    for n, body, err in lines:
        text, derr = (None, err) if body is None else _decode(body, n)
        if text is None:
            if header is None:
                raise ValueError(f"line {n}: cannot read the CSV header: {derr}")
            yield Record(n, n, None, derr)
            continue
        if header is None:
            header = csv_header(text, column)
            continue
        yield _csv_record(n, text, header, column)


def csv_header(text: str, column: str) -> list[str]:
    """The fields of a CSV header line; ValueError if `column` is not one of them."""
    header = next(csv.reader(io.StringIO(text)), [])
    if column not in header:
        raise ValueError(f"--column {column!r} is not in the CSV header {header}")
    return header


def _csv_record(n: int, text: str, header: list[str], column: str) -> Record:
    row = next(csv.reader(io.StringIO(text)), [])
    if len(row) != len(header):
        return Record(n, n, None, f"line {n}: {len(row)} fields, the header has {len(header)}")
    values = dict(zip(header, row, strict=True))
    return Record(n, values.get("id", n), values[column])


def scan_row(
    rec: Record, categories: frozenset[str] | None = None, model: bool = False
) -> dict[str, Any]:
    """The result row of one record: ``line``, ``id``, ``findings`` (None for a bad record) and
    ``error`` (None for a good one). A detector failure on one record is that record's error.

    The local scan (`scan_records`) and the Spark scan run every record through this.
    """
    row: dict[str, Any] = {"line": rec.line, "id": rec.id, "findings": None, "error": None}
    if rec.error is not None or rec.text is None:
        row["error"] = rec.error or f"line {rec.line}: no text"
        return row
    try:
        findings = scan(rec.text, categories=categories, model=model)
    except Exception as exc:  # one record must not stop a backlog scan
        row["error"] = f"line {rec.line}: cannot scan: {type(exc).__name__}: {exc}"
        return row
    row["findings"] = [f.to_dict() for f in findings]
    return row


def scan_records(
    records: Iterable[Record],
    write: Callable[[str], Any],
    stats: ScanStats,
    categories: Iterable[str] | None = None,
    on_record: Callable[[], None] | None = None,
    model: bool = False,
) -> None:
    """Scan each good record and write one JSON line; collect the errors of bad ones."""
    cats = None if categories is None else frozenset(categories)
    for rec in records:
        row = scan_row(rec, cats, model)
        if row["error"] is not None:
            stats.errors.append(row["error"])
        else:
            stats.records += 1
            stats.findings += len(row["findings"])
            out = {"id": row["id"], "findings": row["findings"]}
            write(json.dumps(out, ensure_ascii=False) + "\n")
        if on_record is not None:
            on_record()
