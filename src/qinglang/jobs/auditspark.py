"""Audit evidence on Apache Spark: the per-minor parts of a compliance audit read as one Spark
task per slice.

The per-minor parts are what an audit cannot read in aggregate SQL: processing records judged
against each child's consent history, messages to minors judged by the relationship at the
time, pushed impressions of minors' content against the consented audience, contact decisions
towards minors and minors' game sessions. `qinglang.store.audit.plan_slices` cuts each part's
table by its key (record ids, event sequence numbers) into slices of about `rows` rows; each
Spark task opens its own connection to the database, reads its slice with
`qinglang.store.audit.read_slice` (the minor candidates among the accounts the slice names, then
the slice's rows) and returns the slice's figures. The driver adds them up in slice order, so
the counts, the sets and the evidence samples, in their order, are those of a single pass
(tests/audit/test_slices.py, tests/jobs/test_auditspark.py). Everything else in an audit
(retention, rights, alerts, ledger, replay, report, signature) stays in the driver.

What the executors need: to reach the database at the URL the driver uses (the URL, with its
password, travels in the task closure, so run Spark with its RPC encryption on a shared
cluster), and the data key, to read birth dates: ``QINGLANG_DATA_KEY`` in their environment
(``spark.executorEnv.QINGLANG_DATA_KEY``) or, for SQLite, the key file beside the database.
They never create a key. A task that cannot connect or has no key makes the run fail with one
line naming the cause.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import make_url
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from qinglang.audit.run import PerMinorReader
from qinglang.policy import Policy
from qinglang.store import audit as store_audit
from qinglang.store.crypto import DataKeyError, KeyRing, key_path_for_sqlite, keyring_of
from qinglang.store.models import Platform

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_SLICE_ROWS: Final = 1_000_000
"""Rows of a part's table per Spark task (an operational default, not a legal value)."""
KEY_HINT: Final = (
    "set QINGLANG_DATA_KEY in the executors' environment (spark.executorEnv.QINGLANG_DATA_KEY)"
)

ProgressFn = Callable[[int, int], None]
"""Called with (slices done, slices in all)."""


class AuditSparkError(RuntimeError):
    """The audit's Spark job cannot run: Spark does not start, or a task cannot read."""


# ---------------------------------------------------------------- the driver's side


def executor_url(url: str | URL) -> str:
    """The database URL for the executors: the driver's, with its password, and a relative
    SQLite path made absolute (executors run in another directory)."""
    sa = make_url(url)
    if sa.get_backend_name() == "sqlite":
        db = sa.database
        if not db or db == ":memory:" or db.startswith("file:") or sa.query.get("mode") == "memory":
            raise AuditSparkError("an in-memory SQLite database cannot be read by Spark executors")
        sa = sa.set(database=str(Path(db).resolve()))
    return sa.render_as_string(hide_password=False)


def spark_reader(
    spark: str | SparkSession,
    db_url: str | URL,
    rows: int = DEFAULT_SLICE_ROWS,
    conf: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
) -> PerMinorReader:
    """A reader of the per-minor evidence (for `qinglang.audit.run.audit`) that runs one Spark
    task per slice of about `rows` rows; `spark` is a master URL (a session is started and
    stopped) or a running session."""
    if rows < 1:
        raise AuditSparkError("--slice-rows must be at least 1")
    url = executor_url(db_url)

    def read(
        session: Session, platform: Platform, policy: Policy, w: store_audit.Window
    ) -> store_audit.PerMinor:
        spark_session = _start(spark, conf)  # before any work: a bad master fails at once
        try:
            slices = store_audit.plan_slices(session, platform.id, w, rows)
            if progress is not None:
                progress(0, len(slices))
            total = store_audit.PerMinor()
            total.contacts.sample_rate = float(platform.decision_sample_rate)
            if not slices:
                return total
            results = _run(spark_session, url, platform.id, policy, w, slices)
        finally:
            if spark_session is not spark:
                spark_session.stop()
        for done, (_, outcome) in enumerate(sorted(results, key=lambda r: r[0]), 1):
            if isinstance(outcome, str):
                raise AuditSparkError(outcome)
            total.add(outcome)
            if progress is not None:
                progress(done, len(slices))
        return total

    return read


def _start(spark: str | SparkSession, conf: dict[str, str] | None) -> SparkSession:
    """The session to run on: started on a master URL, or the one given."""
    if not isinstance(spark, str):
        return spark
    from qinglang.jobs.agescan import spark_session

    try:
        return spark_session(spark, conf, app="qinglang-audit")
    except Exception as exc:  # no Java, a bad master URL or setting
        raise AuditSparkError(f"cannot start Spark on {spark}: {_first_line(exc)}") from None


def _run(
    session: SparkSession,
    url: str,
    platform_id: int,
    policy: Policy,
    w: store_audit.Window,
    slices: list[store_audit.Slice],
) -> list[tuple[int, store_audit.PerMinor | str]]:
    """Run the slices as Spark tasks (one partition each) and collect their results."""
    task = _SliceTask(url, platform_id, policy, w)
    rdd = session.sparkContext.parallelize(list(enumerate(slices)), len(slices))
    try:
        return rdd.map(task).collect()
    except Exception as exc:  # a task failed for a reason it did not report itself
        raise AuditSparkError(f"the audit's Spark job failed: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    """The most telling line of an error (for a Python error raised in an executor, its last
    line, which names it)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.split(":", 1)[0].endswith(("Error", "Exception")) and "py4j" not in ln:
            return ln
    return lines[0] if lines else exc.__class__.__name__


# ---------------------------------------------------------------- the executors' side

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str) -> Engine:
    """The executor's engine for `url` (one per Python worker, reused across its tasks), with
    the data key from the environment or the SQLite key file; never a new key."""
    from qinglang.store import make_engine

    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        sa = make_url(url)
        if sa.get_backend_name() == "sqlite" and KeyRing.from_env() is None:
            key_file = key_path_for_sqlite(str(sa.database))
            if not key_file.exists():
                raise DataKeyError(f"no data key on the executor: no {key_file}, and {KEY_HINT}")
            engine = make_engine(url)
        else:
            engine = make_engine(url, provision_key=False)
            if keyring_of(engine) is None:
                engine.dispose()
                raise DataKeyError(f"no data key on the executor: {KEY_HINT}")
        _ENGINES[url] = engine
        return engine


class _SliceTask:
    """What each Spark task runs: read one slice in its own read-only transaction."""

    def __init__(self, url: str, platform_id: int, policy: Policy, w: store_audit.Window) -> None:
        self.url = url
        self.platform_id = platform_id
        self.policy = policy
        self.w = w

    def __call__(
        self, item: tuple[int, store_audit.Slice]
    ) -> tuple[int, store_audit.PerMinor | str]:
        """(index, the slice's figures), or (index, a one-line error) if it cannot read."""
        index, piece = item
        try:
            engine = _engine(self.url)
            with Session(engine) as session:
                out = store_audit.read_slice(session, self.platform_id, self.policy, self.w, piece)
                session.rollback()  # a read: nothing to keep, the temporary table goes with it
            return index, out
        except (DataKeyError, SQLAlchemyError, OSError) as exc:
            where = f"{piece.part} [{piece.lo}, {piece.hi})"
            first = (str(exc).strip().splitlines() or [""])[0]
            return index, f"slice {where}: {exc.__class__.__name__}: {first}"


__all__ = [
    "DEFAULT_SLICE_ROWS",
    "AuditSparkError",
    "executor_url",
    "spark_reader",
]
