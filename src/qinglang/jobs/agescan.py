"""Batch age scan: score every account of a JSONL or Parquet file, locally or on Apache Spark.

Each record goes through one pure function, `score_item` (parse, score, shape the result row), so
the local run and the Spark run (the same function in ``mapPartitions``) give the same rows. The
rows come back in input order and are written on the driver by the same writer, so a JSONL
output is byte-for-byte identical between the two and a Parquet output has equal rows.

Bad records never stop the run: invalid UTF-8, a line that is not JSON, a missing or mistyped
field, an absurd age or a line over the size limit becomes a result row with ``error`` set (its
line or row number in ``index``); the rest are scored. The caller exits 2 if any record failed.

`apply_results` applies a results file (of a local or a Spark run) to one platform's accounts
in a qinglang database: each scored row whose ``user_id`` is an account of the platform goes
through the same state machine as ``POST /v1/age/score`` (`qinglang.store.assessments`), in
transactions of `chunk` rows, so a killed run leaves whole chunks and a re-run changes nothing
that was applied.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal

from qinglang.jobs.scanfile import ScanStats, _lines

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import SparkSession
    from sqlalchemy.orm import Session

    from qinglang.age.infer import AgeEstimate

InFormat = Literal["jsonl", "parquet"]
IN_FORMATS: Final[tuple[str, ...]] = ("jsonl", "parquet")
TOP_SIGNALS: Final = 3
"""Signals kept per result row: the strongest by absolute weight."""
CONFIDENCE_BUCKETS: Final[tuple[tuple[float, str], ...]] = (
    (0.9, "0.9-1.0"),
    (0.7, "0.7-0.9"),
    (0.5, "0.5-0.7"),
    (0.0, "<0.5"),
)
"""Buckets of p(under 18) for the suspected accounts, highest first: (lower bound, label)."""
DEFAULT_MAX_LINE_BYTES: Final = 16 << 20
"""JSONL records longer than this (16 MiB) are refused: an account with years of posts fits."""
PROGRESS_EVERY: Final = 500
BATCH_ROWS: Final = 8192

Scorer = Callable[[dict[str, Any], Any, Any], "AgeEstimate"]
"""(record dict, model, policy) -> AgeEstimate; `qinglang.age.infer.score_record` by default."""
ProgressFn = Callable[[int, int | None], None]
"""Called as the scan goes with (work done, total work or None): bytes for a local JSONL input,
records otherwise."""
Row = dict[str, Any]

RESULT_KEYS: Final = (
    "index",
    "user_id",
    "p_under18",
    "p_under14",
    "band",
    "suspected",
    "suspected_child",
    "signals",
    "error",
)


class ScanInputError(ValueError):
    """The scan cannot run: missing input, unknown format, not Parquet, Spark cannot start."""


@dataclass(slots=True)
class ScanSummary:
    """What a batch age scan found: counts, suspected minors by band and confidence, errors."""

    records: int = 0
    scored: int = 0
    suspected: int = 0
    suspected_child: int = 0
    by_band: dict[str, int] = field(default_factory=dict)
    by_confidence: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    input_format: str = "jsonl"

    def add(self, row: Row) -> None:
        """Count one result row."""
        self.records += 1
        if row["error"] is not None:
            self.errors.append((row["index"], row["error"]))
            return
        self.scored += 1
        if row["suspected_child"]:
            self.suspected_child += 1
        if row["suspected"]:
            self.suspected += 1
            band = row["band"] or "unknown"
            self.by_band[band] = self.by_band.get(band, 0) + 1
            b = confidence_bucket(row["p_under18"])
            self.by_confidence[b] = self.by_confidence.get(b, 0) + 1

    def where(self, index: int) -> str:
        """How an error location reads: "line N" for JSONL input, "row N" for Parquet."""
        return f"{'row' if self.input_format == 'parquet' else 'line'} {index}"

    def to_dict(self, max_errors: int = 100) -> dict[str, Any]:
        """JSON form, deterministic; at most `max_errors` errors listed (all are counted)."""
        return {
            "records": self.records,
            "scored": self.scored,
            "errors": len(self.errors),
            "suspected": self.suspected,
            "suspected_child": self.suspected_child,
            "suspected_by_band": dict(sorted(self.by_band.items(), key=_band_order)),
            "suspected_by_confidence": {
                label: self.by_confidence.get(label, 0) for _, label in reversed(CONFIDENCE_BUCKETS)
            },
            "error_list": [
                {"where": self.where(i), "error": e} for i, e in self.errors[:max_errors]
            ],
        }


def _band_order(item: tuple[str, int]) -> tuple[int, str]:
    """Bands by their lowest age ("3to7" before "12to15"), then by name."""
    digits = ""
    for ch in item[0]:
        if not ch.isdigit():
            break
        digits += ch
    return (int(digits) if digits else 1 << 30, item[0])


def confidence_bucket(p: float) -> str:
    """The confidence bucket label of a p(under 18)."""
    for low, label in CONFIDENCE_BUCKETS:
        if p >= low:
            return label
    return CONFIDENCE_BUCKETS[-1][1]


# ---------------------------------------------------------------- the pure per-record function


def _plain(v: Any) -> Any:
    """Parquet/Spark values as JSON would give them: dates and instants as ISO strings."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def _error_row(index: int, user_id: Any, reason: str) -> Row:
    uid = str(user_id) if isinstance(user_id, str | int) and not isinstance(user_id, bool) else None
    return {
        "index": index,
        "user_id": uid,
        "p_under18": None,
        "p_under14": None,
        "band": None,
        "suspected": None,
        "suspected_child": None,
        "signals": [],
        "error": reason,
    }


def _default_scorer(record: dict[str, Any], model: Any, policy: Any) -> AgeEstimate:
    from qinglang.age.infer import score_record

    return score_record(record, model, policy)


def score_item(
    index: int,
    item: bytes | dict[str, Any],
    model: Any = None,
    policy: Any = None,
    scorer: Scorer | None = None,
    max_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Row | None:
    """Score one input line (bytes) or Parquet row (dict) into a result row; None: blank line."""
    from qinglang.age.infer import RecordError

    obj: Any
    if isinstance(item, bytes | bytearray):
        if len(item) > max_bytes:
            return _error_row(
                index, None, f"{len(item):,} bytes, over the {max_bytes:,}-byte limit"
            )
        try:
            text = bytes(item).decode("utf-8")
        except UnicodeDecodeError as exc:
            return _error_row(index, None, f"invalid UTF-8 at byte {exc.start}")
        if not text.strip():
            return None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            return _error_row(index, None, f"not JSON ({exc.msg} at column {exc.colno})")
    else:
        obj = _plain(item)
    uid = obj.get("user_id") if isinstance(obj, dict) else None
    try:
        est = (scorer or _default_scorer)(obj, model, policy)
    except RecordError as exc:
        return _error_row(index, uid, str(exc))
    except Exception as exc:  # a scorer failure on one record must not stop the run
        return _error_row(index, uid, f"cannot score: {type(exc).__name__}: {exc}")
    top = sorted(est.signals, key=lambda s: (-abs(s.weight), s.name))[:TOP_SIGNALS]
    return {
        "index": index,
        "user_id": est.user_id,
        "p_under18": round(float(est.p_under18), 4),
        "p_under14": round(float(est.p_under14), 4),
        "band": est.band,
        "suspected": bool(est.suspected),
        "suspected_child": bool(est.suspected_child),
        "signals": [{"name": s.name, "weight": round(float(s.weight), 4)} for s in top],
        "error": None,
    }


def score_partition(
    items: Iterable[tuple[bytes | dict[str, Any], int]],
    model: Any = None,
    policy: Any = None,
    scorer: Scorer | None = None,
    max_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Row]:
    """`score_item` over (item, 0-based position in the input) pairs."""
    for item, i in items:
        row = score_item(i + 1, item, model, policy, scorer, max_bytes)
        if row is not None:
            yield row


# ---------------------------------------------------------------- reading


def detect_format(path: str | Path, fmt: str | None = None) -> InFormat:
    """The input format: `fmt` if given, else from the extension (.parquet/.pq, else JSONL)."""
    if fmt is not None and fmt != "auto":
        if fmt not in IN_FORMATS:
            raise ScanInputError(f"--format: expected one of jsonl, parquet, got {fmt!r}")
        return "parquet" if fmt == "parquet" else "jsonl"
    suffix = Path(str(path)).suffix.lower()
    return "parquet" if suffix in (".parquet", ".pq") else "jsonl"


def _local_rows(
    path: Path,
    fmt: InFormat,
    model: Any,
    policy: Any,
    scorer: Scorer | None,
    max_bytes: int,
    progress: ProgressFn | None,
) -> Iterator[Row]:
    if fmt == "parquet":
        pf = _parquet_file(path)
        total = pf.metadata.num_rows
        index = 0
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            for rec in batch.to_pylist():
                index += 1
                row = score_item(index, rec, model, policy, scorer, max_bytes)
                if row is not None:
                    yield row
                if progress is not None and index % PROGRESS_EVERY == 0:
                    progress(index, total)
        if progress is not None:
            progress(index, total)
        return
    total_bytes = path.stat().st_size
    stats = ScanStats()
    with path.open("rb") as stream:
        for n, body, err in _lines(stream, max_bytes, stats):
            if err is not None or body is None:
                # _lines only refuses over-long lines; report them in our own words
                reason = (err or "").split(": ", 1)[-1]
                yield _error_row(n, None, reason)
            else:
                row = score_item(n, body, model, policy, scorer, max_bytes)
                if row is not None:
                    yield row
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(stats.bytes_read, total_bytes)
    if progress is not None:
        progress(stats.bytes_read, total_bytes)


def _arrow() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet (untyped), or a clear error when pyarrow is missing."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - depends on the install
        raise ScanInputError("Parquet needs pyarrow: pip install 'qinglang[parquet]'") from None
    return pa, pq


def _parquet_file(path: Path) -> Any:
    _pa, pq = _arrow()
    try:
        return pq.ParquetFile(path)
    except Exception as exc:
        raise ScanInputError(f"cannot read {path} as Parquet: {exc}") from None


# ---------------------------------------------------------------- Spark


def spark_session(
    master: str, conf: dict[str, str] | None = None, app: str = "qinglang-age-scan"
) -> SparkSession:
    """A Spark session on `master` (``local[2]``, ``spark://…``, ``yarn``, ``k8s://…``)."""
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        # local executors run this interpreter, which has qinglang installed
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    for k, v in (conf or {}).items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def _spark_path(path: str | Path) -> str:
    s = str(path)
    return s if "://" in s else str(Path(s).resolve())


def _spark_rows(
    session: SparkSession,
    path: str | Path,
    fmt: InFormat,
    model: Any,
    policy: Any,
    scorer: Scorer | None,
    max_bytes: int,
    progress: ProgressFn | None,
) -> Iterator[Row]:
    from pyspark.sql.functions import col, spark_partition_id

    src = _spark_path(path)
    sc = session.sparkContext
    items: RDD[Any]
    try:
        if fmt == "parquet":
            df = session.read.parquet(src)
            items = df.rdd.map(lambda r: r.asDict(recursive=True))
        else:
            # the text source keeps each line's raw bytes; cast to binary to decode them here
            df = session.read.text(src).select(col("value").cast("binary").alias("b"))
            items = df.rdd.map(lambda r: bytes(r[0]))
    except Exception as exc:  # AnalysisException (no such path), or a file Spark cannot read
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScanInputError(f"Spark cannot read {src}: {first}") from None
    # records per input partition, counted in the JVM (the same file splits as `items`), give
    # each partition the position of its first record: zipWithIndex without a Python pass
    counts = {
        int(r[0]): int(r[1])
        for r in df.select(spark_partition_id().alias("p")).groupBy("p").count().collect()
    }
    starts: list[int] = []
    total = 0
    for pid in range(items.getNumPartitions()):
        starts.append(total)
        total += counts.get(pid, 0)
    shipped = sc.broadcast((model, policy, scorer, max_bytes, starts))

    def run(pid: int, part: Iterable[Any]) -> Iterator[Row]:
        m, p, s, mb, first = shipped.value
        return score_partition(((x, first[pid] + j) for j, x in enumerate(part)), m, p, s, mb)

    results = items.mapPartitionsWithIndex(run)
    done = 0
    try:
        for row in results.toLocalIterator(prefetchPartitions=True):
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
            yield row
    finally:
        shipped.unpersist()
    if progress is not None:
        progress(total, total)  # blank lines give no row but count as read


# ---------------------------------------------------------------- writing


def _parquet_schema() -> Any:
    pa, _pq = _arrow()
    signal = pa.struct([("name", pa.string()), ("weight", pa.float64())])
    return pa.schema(
        [
            ("index", pa.int64()),
            ("user_id", pa.string()),
            ("p_under18", pa.float64()),
            ("p_under14", pa.float64()),
            ("band", pa.string()),
            ("suspected", pa.bool_()),
            ("suspected_child", pa.bool_()),
            ("signals", pa.list_(signal)),
            ("error", pa.string()),
        ]
    )


def _write_jsonl(rows: Iterable[Row], sink: IO[str]) -> None:
    for row in rows:
        sink.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_parquet(rows: Iterable[Row], out: Path) -> None:
    pa, pq = _arrow()
    schema = _parquet_schema()
    with pq.ParquetWriter(out, schema) as writer:
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))


def summary_path(out: Path) -> Path:
    """Where the summary JSON goes: beside the results, ``NAME.summary.json``."""
    return out.with_name(out.stem + ".summary.json")


# ---------------------------------------------------------------- the job


def scan_accounts(
    input: str | Path,
    out: str | Path,
    *,
    model: Any = None,
    policy: Any = None,
    spark: str | SparkSession | None = None,
    progress: ProgressFn | None = None,
    fmt: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    spark_conf: dict[str, str] | None = None,
    scorer: Scorer | None = None,
) -> ScanSummary:
    """Score every account of `input`, write the result rows to `out` and the summary beside it.

    `spark`: None runs in this process; a master URL or a SparkSession runs the same scoring on
    Spark. `model` and `policy` go to the scorer (`qinglang.age.infer.score_record`), shipped to
    Spark executors by broadcast. Output is Parquet when `out` ends in .parquet/.pq, else JSONL.
    """
    in_fmt = detect_format(input, fmt)
    out_path = Path(out)
    if spark is None:
        path = Path(input)
        if not path.is_file():
            raise ScanInputError(f"cannot read {input}: no such file")
        if in_fmt == "parquet":
            _parquet_file(path)  # a clear error before the output file is created
        rows = _local_rows(path, in_fmt, model, policy, scorer, max_line_bytes, progress)
        return _finish(rows, out_path, in_fmt)
    if isinstance(spark, str):
        if "://" not in str(input):
            if not Path(input).is_file():
                raise ScanInputError(f"cannot read {input}: no such file")
            if in_fmt == "parquet":
                _parquet_file(Path(input))  # a one-line error, not a failed Spark job
        try:
            session = spark_session(spark, spark_conf)
        except Exception as exc:  # no Java, a bad master URL or setting
            raise ScanInputError(f"cannot start Spark on {spark}: {exc}") from None
        try:
            rows = _spark_rows(
                session, input, in_fmt, model, policy, scorer, max_line_bytes, progress
            )
            return _finish(rows, out_path, in_fmt)
        finally:
            session.stop()
    rows = _spark_rows(spark, input, in_fmt, model, policy, scorer, max_line_bytes, progress)
    return _finish(rows, out_path, in_fmt)


def _finish(rows: Iterator[Row], out: Path, in_fmt: InFormat) -> ScanSummary:
    summary = ScanSummary(input_format=in_fmt)

    def counted() -> Iterator[Row]:
        for row in rows:
            summary.add(row)
            yield row

    if out.suffix.lower() in (".parquet", ".pq"):
        _write_parquet(counted(), out)
    else:
        with out.open("w", encoding="utf-8") as sink:
            _write_jsonl(counted(), sink)
    summary_path(out).write_text(
        json.dumps(summary.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return summary


def summary_table(summary: ScanSummary) -> Any:
    """The summary as a Rich table."""
    from rich.table import Table

    t = Table(title="age scan", show_header=True)
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_row("records", f"{summary.records:,}")
    t.add_row("scored", f"{summary.scored:,}")
    t.add_row("bad records", f"{len(summary.errors):,}")
    t.add_row("suspected under 18", f"{summary.suspected:,}")
    t.add_row("suspected under 14", f"{summary.suspected_child:,}")
    d = summary.to_dict(max_errors=0)
    for band, n in d["suspected_by_band"].items():
        t.add_row(f"  suspected, band {band}", f"{n:,}")
    for label, n in d["suspected_by_confidence"].items():
        t.add_row(f"  suspected, p(<18) {label}", f"{n:,}")
    return t


# ---------------------------------------------------------------- applying results to a database

APPLY_CHUNK: Final = 500
"""Result rows applied per transaction."""
APPLY_ACTOR: Final = "batch-scan"
"""Who the transitions of an applied scan are recorded as (ledger ``age.*`` entries)."""
UNKNOWN_SAMPLE: Final = 20
"""Unknown account ids listed in the summary (all are counted)."""


class ResultRowError(ValueError):
    """A results row that cannot be applied (not a result of `qinglang age scan`)."""


@dataclass(slots=True)
class ApplySummary:
    """What applying scan results to a platform did (or, in a dry run, would do)."""

    platform: str
    dry_run: bool
    rows: int = 0
    applied: int = 0
    newly_suspected: int = 0
    unchanged: int = 0
    unknown: int = 0
    skipped_verified: int = 0
    skipped_cancelled: int = 0
    not_scored: int = 0
    chunks: int = 0
    unknown_sample: list[str] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "platform": self.platform,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "applied": self.applied,
            "newly_suspected": self.newly_suspected,
            "unchanged": self.unchanged,
            "unknown": self.unknown,
            "skipped_verified": self.skipped_verified,
            "skipped_cancelled": self.skipped_cancelled,
            "not_scored": self.not_scored,
            "invalid": len(self.invalid),
            "chunks": self.chunks,
            "unknown_sample": list(self.unknown_sample),
            "invalid_list": [{"row": i, "error": e} for i, e in self.invalid[:100]],
        }


def _prob(row: Row, key: str) -> float:
    v = row.get(key)
    if not isinstance(v, int | float) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
        raise ResultRowError(f"{key}: expected a probability in [0, 1], got {v!r}")
    return float(v)


def _scored(row: Row) -> dict[str, Any]:
    """The fields `apply_score` needs from a scored result row (ResultRowError if malformed)."""
    uid = row.get("user_id")
    if not isinstance(uid, str) or not uid:
        raise ResultRowError(f"user_id: expected a non-empty string, got {uid!r}")
    p_under18, p_under14 = _prob(row, "p_under18"), _prob(row, "p_under14")
    band = row.get("band")
    if band is not None and not isinstance(band, str):
        raise ResultRowError(f"band: expected a string or null, got {band!r}")
    child = row.get("suspected_child")
    if not isinstance(child, bool):
        raise ResultRowError(f"suspected_child: expected true or false, got {child!r}")
    signals: list[tuple[str, float]] = []
    for s in row.get("signals") or []:
        name = s.get("name") if isinstance(s, dict) else None
        weight = s.get("weight") if isinstance(s, dict) else None
        if (
            not isinstance(name, str)
            or not isinstance(weight, int | float)
            or isinstance(weight, bool)
        ):
            raise ResultRowError(f"signals: expected {{name, weight}} objects, got {s!r}")
        signals.append((name, float(weight)))
    return {
        "user_id": uid,
        "p_under18": p_under18,
        "p_under14": p_under14,
        "band": band,
        "suspected_child": child,
        "signals": signals,
    }


def read_results(path: str | Path) -> Iterator[tuple[int, Row | str]]:
    """(1-based row number, result row or why it is unreadable) for a results file of
    `scan_accounts`: JSONL, or Parquet when it ends in .parquet/.pq."""
    p = Path(path)
    if not p.is_file():
        raise ScanInputError(f"cannot read {path}: no such file")
    if p.suffix.lower() in (".parquet", ".pq"):
        pf = _parquet_file(p)
        n = 0
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            for rec in batch.to_pylist():
                n += 1
                yield n, rec
        return
    with p.open("rb") as stream:
        n = 0
        for raw in stream:
            n += 1
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                yield n, "not a JSON result row"
                continue
            yield n, obj if isinstance(obj, dict) else "not a JSON object"


def apply_results(
    results: str | Path,
    tx: Callable[[], AbstractContextManager[Session]],
    platform_id: int,
    platform_slug: str,
    *,
    threshold: float,
    model: str = "default",
    actor: str = APPLY_ACTOR,
    chunk: int = APPLY_CHUNK,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
) -> ApplySummary:
    """Apply a results file to the platform's accounts (matched by external id = user_id).

    Each chunk of `chunk` rows is one transaction from `tx` (commit on success). Rows with an
    error are counted as not scored; accounts the platform does not know are counted and
    sampled, never created; cancelled accounts and verified assessments are skipped; the rest go
    through `qinglang.store.assessments.apply_score` with the platform's `threshold`.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    summary = ApplySummary(platform_slug, dry_run)
    pending: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        if not pending:
            return
        with tx() as session:
            _apply_chunk(session, platform_id, pending, summary, threshold, model, actor, dry_run)
        summary.chunks += 1
        pending.clear()
        if progress is not None:
            progress(summary.rows, None)

    for n, row in read_results(results):
        summary.rows += 1
        if isinstance(row, str):
            summary.invalid.append((n, row))
            continue
        if row.get("error") is not None:
            summary.not_scored += 1
            continue
        try:
            pending.append((n, _scored(row)))
        except ResultRowError as exc:
            summary.invalid.append((n, str(exc)))
            continue
        if len(pending) >= chunk:
            flush()
    flush()
    return summary


def _apply_chunk(
    session: Session,
    platform_id: int,
    rows: list[tuple[int, dict[str, Any]]],
    summary: ApplySummary,
    threshold: float,
    model: str,
    actor: str,
    dry_run: bool,
) -> None:
    from sqlalchemy import select

    from qinglang.store.assessments import apply_score
    from qinglang.store.models import Account, utcnow

    ids = sorted({r["user_id"] for _, r in rows})
    accounts: dict[str, Account] = {
        a.external_id: a
        for a in session.scalars(
            select(Account).where(Account.platform_id == platform_id, Account.external_id.in_(ids))
        )
    }
    at = utcnow()
    for _, r in rows:
        account = accounts.get(r["user_id"])
        if account is None:
            summary.unknown += 1
            if len(summary.unknown_sample) < UNKNOWN_SAMPLE:
                summary.unknown_sample.append(r["user_id"])
            continue
        if account.cancelled_at is not None:
            summary.skipped_cancelled += 1
            continue
        outcome, transitions = apply_score(
            session,
            account,
            p_under18=r["p_under18"],
            p_under14=r["p_under14"],
            band=r["band"],
            suspected_child=r["suspected_child"],
            signals=r["signals"],
            model=model,
            threshold=threshold,
            actor=actor,
            at=at,
            dry_run=dry_run,
        )
        if outcome == "applied":
            summary.applied += 1
            summary.newly_suspected += int("suspect" in transitions)
        elif outcome == "unchanged":
            summary.unchanged += 1
        else:
            summary.skipped_verified += 1


def apply_table(summary: ApplySummary) -> Any:
    """The apply summary as a Rich table."""
    from rich.table import Table

    verb = "would apply" if summary.dry_run else "applied"
    title = f"age assessments on {summary.platform}" + (" (dry run)" if summary.dry_run else "")
    t = Table(title=title, show_header=True)
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_row("result rows", f"{summary.rows:,}")
    t.add_row(verb, f"{summary.applied:,}")
    t.add_row("  of which newly suspected", f"{summary.newly_suspected:,}")
    t.add_row("unchanged", f"{summary.unchanged:,}")
    t.add_row("unknown to the platform", f"{summary.unknown:,}")
    t.add_row("skipped: verified", f"{summary.skipped_verified:,}")
    t.add_row("skipped: cancelled", f"{summary.skipped_cancelled:,}")
    t.add_row("not scored (bad records)", f"{summary.not_scored:,}")
    t.add_row("invalid result rows", f"{len(summary.invalid):,}")
    return t


__all__ = [
    "IN_FORMATS",
    "RESULT_KEYS",
    "ApplySummary",
    "ScanInputError",
    "ScanSummary",
    "apply_results",
    "apply_table",
    "confidence_bucket",
    "detect_format",
    "read_results",
    "scan_accounts",
    "score_item",
    "score_partition",
    "spark_session",
    "summary_path",
    "summary_table",
]
