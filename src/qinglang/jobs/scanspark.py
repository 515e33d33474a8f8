"""Backlog scan for personal information: every record of a text, JSONL or CSV file, locally or on
Apache Spark, one result row per record.

The local run reads the file with `qinglang.jobs.scanfile.read_records` and scans each record
with `scan_row`, as ``qinglang scan`` does; the Spark run reads the lines with Spark's text source
and runs the same `parse_line` and `scan_row` on each line in ``mapPartitionsWithIndex``. Both
encode the rows with `encode` (on Spark, in the executors); the lines come back in input order
and the driver writes them, so the two JSONL outputs are byte-for-byte identical. Line numbers
are those of one input file (a directory of files would be numbered in Spark's split order).

A result row is ``{"line", "id", "findings", "error"}``: the local scan's output object (``id``,
``findings``) with the record's line number and, for a bad record (invalid UTF-8, a malformed
JSONL line, a CSV line with the wrong number of fields, a line over the size limit), the error
and ``findings`` null. Bad records never stop the run; the caller exits 2 if any record failed.
An input that cannot be read at all raises `ScanInputError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from qinglang.jobs.agescan import ScanInputError, spark_session, summary_path
from qinglang.jobs.scanfile import (
    DEFAULT_MAX_LINE_BYTES,
    FORMATS,
    Format,
    Record,
    ScanStats,
    csv_header,
    parse_line,
    read_records,
    scan_row,
    too_long,
)

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import SparkSession

PROGRESS_EVERY: Final = 500
RESULT_KEYS: Final = ("line", "id", "findings", "error")

Row = dict[str, Any]
Tally = tuple[int, str | None, tuple[str, ...]]
"""What the summary needs of a result row: its line, its error, its findings' categories."""
ProgressFn = Callable[[int, int | None], None]
"""Called as the scan goes with (work done, total or None): bytes locally, records on Spark."""


@dataclass(slots=True)
class PiiScanSummary:
    """What a backlog scan found: records, records with findings, findings by category, errors."""

    records: int = 0
    scanned: int = 0
    with_findings: int = 0
    findings: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)

    def add(self, row: Row) -> None:
        """Count one result row."""
        self.count(_tally(row))

    def count(self, tally: Tally) -> None:
        """Count one result row by its tally (line, error, categories of its findings)."""
        line, error, cats = tally
        self.records += 1
        if error is not None:
            self.errors.append((line, error))
            return
        self.scanned += 1
        if cats:
            self.with_findings += 1
            self.findings += len(cats)
            for c in cats:
                self.by_category[c] = self.by_category.get(c, 0) + 1

    def to_dict(self, max_errors: int = 100) -> dict[str, Any]:
        """JSON form, deterministic; at most `max_errors` errors listed (all are counted)."""
        return {
            "records": self.records,
            "scanned": self.scanned,
            "errors": len(self.errors),
            "with_findings": self.with_findings,
            "findings": self.findings,
            "findings_by_category": dict(sorted(self.by_category.items())),
            "error_list": [{"line": n, "error": e} for n, e in self.errors[:max_errors]],
        }


def scan_partition(
    lines: Iterable[tuple[bytes, int]],
    fmt: Format,
    header: list[str] | None,
    column: str,
    categories: frozenset[str] | None,
    model: bool,
    max_bytes: int,
) -> Iterator[Row]:
    """Result rows of (raw line, 1-based line number) pairs: what each Spark partition runs.

    The CSV header (line 1) gives no row. Each line goes through `parse_line` and `scan_row`,
    as in the local scan."""
    for raw, n in lines:
        if fmt == "csv" and n == 1:
            continue
        body = raw.rstrip(b"\r\n")
        if len(body) > max_bytes:
            rec = Record(n, n, None, too_long(n, len(body), max_bytes))
        else:
            rec = parse_line(n, body, fmt, header, column)
        yield scan_row(rec, categories, model)


# ---------------------------------------------------------------- local


def _local_rows(
    path: Path,
    fmt: Format,
    column: str | None,
    categories: frozenset[str] | None,
    model: bool,
    max_bytes: int,
    progress: ProgressFn | None,
) -> Iterator[Row]:
    total = path.stat().st_size
    stats = ScanStats()
    with path.open("rb") as stream:
        records = read_records(stream, fmt, column, max_bytes, stats)
        for i, rec in enumerate(records, start=1):
            yield scan_row(rec, categories, model)
            if progress is not None and i % PROGRESS_EVERY == 0:
                progress(stats.bytes_read, total)
    if progress is not None:
        progress(stats.bytes_read, total)


# ---------------------------------------------------------------- Spark


def _spark_path(path: str | Path) -> str:
    s = str(path)
    return s if "://" in s else str(Path(s).resolve())


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _spark_rows(
    session: SparkSession,
    path: str | Path,
    fmt: Format,
    column: str | None,
    categories: frozenset[str] | None,
    model: bool,
    max_bytes: int,
    progress: ProgressFn | None,
) -> Iterator[tuple[str, Tally]]:
    from pyspark.sql.functions import col, spark_partition_id

    src = _spark_path(path)
    sc = session.sparkContext
    try:
        # split on \n only, as Python reads the file; the raw bytes of each line, decoded per
        # record (invalid UTF-8 is that record's error)
        df = (
            session.read.option("lineSep", "\n")
            .text(src)
            .select(col("value").cast("binary").alias("b"))
        )
        items: RDD[bytes] = df.rdd.map(lambda r: bytes(r[0]))
        # lines per input partition, counted in the JVM, give each partition its first line
        counts = {
            int(r[0]): int(r[1])
            for r in df.select(spark_partition_id().alias("p")).groupBy("p").count().collect()
        }
        first_row = df.first() if fmt == "csv" else None
    except Exception as exc:  # AnalysisException (no such path), or a file Spark cannot read
        first = _first_line(str(exc)) or type(exc).__name__
        raise ScanInputError(f"Spark cannot read {src}: {first}") from None
    starts: list[int] = []
    total = 0
    for pid in range(items.getNumPartitions()):
        starts.append(total)
        total += counts.get(pid, 0)
    col_name = column or "text"
    header = None
    if first_row is not None:
        header = _header(bytes(first_row[0]).rstrip(b"\r\n"), col_name, max_bytes)
    shipped = sc.broadcast((fmt, header, col_name, categories, model, max_bytes, starts))

    def run(pid: int, part: Iterable[bytes]) -> Iterator[tuple[str, Tally]]:
        f, h, c, cats, m, mb, first = shipped.value
        numbered = ((x, first[pid] + j + 1) for j, x in enumerate(part))
        return map(encode, scan_partition(numbered, f, h, c, cats, m, mb))

    results = items.mapPartitionsWithIndex(run)

    def collect() -> Iterator[tuple[str, Tally]]:
        done = 0
        try:
            for item in results.toLocalIterator(prefetchPartitions=True):
                done += 1
                if progress is not None and done % PROGRESS_EVERY == 0:
                    progress(done, total)
                yield item
        finally:
            shipped.unpersist()
        if progress is not None:
            progress(total, total)

    # the input errors above are raised before the output file is opened
    return collect()


def _header(body: bytes, column: str, max_bytes: int) -> list[str]:
    """The CSV header of line 1, with the local scan's errors."""
    if len(body) > max_bytes:
        reason = too_long(1, len(body), max_bytes)
        raise ScanInputError(f"line 1: cannot read the CSV header: {reason}")
    rec = parse_line(1, body, "text")
    if rec.text is None:
        raise ScanInputError(f"line 1: cannot read the CSV header: {rec.error}")
    try:
        return csv_header(rec.text, column)
    except ValueError as exc:
        raise ScanInputError(str(exc)) from None


# ---------------------------------------------------------------- the job


def scan_backlog(
    input: str | Path,
    out: str | Path,
    *,
    fmt: str = "text",
    column: str | None = None,
    categories: Iterable[str] | None = None,
    model: bool = False,
    spark: str | SparkSession | None = None,
    progress: ProgressFn | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    spark_conf: dict[str, str] | None = None,
) -> PiiScanSummary:
    """Scan every record of `input` for personal information; result rows to `out` (JSONL), the
    summary beside it (``NAME.summary.json``).

    `fmt`: text (a record per line), jsonl (``{"id", "text"}`` per line) or csv (a header line,
    the text in `column`, default ``text``). `spark`: None runs in this process; a master URL
    (``local[2]``, ``spark://…``, ``yarn``) or a SparkSession runs the same per-record scan on
    Spark. Raises `ScanInputError` when the input cannot be read at all (no such file, a CSV
    header without `column`, Spark cannot start or read it).
    """
    if fmt not in FORMATS:
        raise ScanInputError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if column is not None and fmt != "csv":
        raise ScanInputError("--column applies to --format csv only")
    in_fmt: Format = "csv" if fmt == "csv" else "jsonl" if fmt == "jsonl" else "text"
    cats = None if categories is None else frozenset(categories)
    out_path = Path(out)
    remote = "://" in str(input)
    if not remote:
        path = Path(input)
        if not path.is_file():
            raise ScanInputError(f"cannot read {input}: no such file")
        if in_fmt == "csv":
            _check_header(path, column or "text", max_line_bytes)
    if spark is None:
        if remote:
            raise ScanInputError(f"cannot read {input} locally: give --spark for remote paths")
        rows = _local_rows(Path(input), in_fmt, column, cats, model, max_line_bytes, progress)
        return _finish(map(encode, rows), out_path)  # the same encoding as Spark's executors
    if isinstance(spark, str):
        try:
            session = spark_session(spark, spark_conf)
        except Exception as exc:  # no Java, a bad master URL or setting
            first = _first_line(str(exc)) or type(exc).__name__
            raise ScanInputError(f"cannot start Spark on {spark}: {first}") from None
        try:
            encoded = _spark_rows(
                session, input, in_fmt, column, cats, model, max_line_bytes, progress
            )
            return _finish(encoded, out_path)
        finally:
            session.stop()
    encoded = _spark_rows(spark, input, in_fmt, column, cats, model, max_line_bytes, progress)
    return _finish(encoded, out_path)


def _check_header(path: Path, column: str, max_bytes: int) -> None:
    """A bad CSV header is a one-line error before anything runs or is written."""
    try:
        with path.open("rb") as f:
            first = f.readline()
    except OSError as exc:
        raise ScanInputError(f"cannot read {path}: {exc.strerror}") from None
    if first:
        _header(first.rstrip(b"\r\n"), column, max_bytes)


def _tally(row: Row) -> Tally:
    return row["line"], row["error"], tuple(f["category"] for f in row["findings"] or ())


def encode(row: Row) -> tuple[str, Tally]:
    """A result row as its output line and its tally: on Spark the executors encode the rows,
    so the driver only writes lines and counts."""
    return json.dumps(row, ensure_ascii=False) + "\n", _tally(row)


def _finish(encoded: Iterable[tuple[str, Tally]], out: Path) -> PiiScanSummary:
    summary = PiiScanSummary()
    with out.open("w", encoding="utf-8") as sink:
        for line, tally in encoded:
            summary.count(tally)
            sink.write(line)
    summary_path(out).write_text(
        json.dumps(summary.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return summary


def summary_table(summary: PiiScanSummary) -> Any:
    """The summary as a Rich table."""
    from rich.table import Table

    t = Table(title="personal information scan", show_header=True)
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_row("records", f"{summary.records:,}")
    t.add_row("scanned", f"{summary.scanned:,}")
    t.add_row("bad records", f"{len(summary.errors):,}")
    t.add_row("records with findings", f"{summary.with_findings:,}")
    t.add_row("findings", f"{summary.findings:,}")
    for cat, n in sorted(summary.by_category.items()):
        t.add_row(f"  {cat}", f"{n:,}")
    return t


__all__ = [
    "RESULT_KEYS",
    "PiiScanSummary",
    "ScanInputError",
    "encode",
    "scan_backlog",
    "scan_partition",
    "spark_session",
    "summary_path",
    "summary_table",
]
