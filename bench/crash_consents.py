"""Crash safety of consent writes: concurrent writers while the server is SIGKILLed and restarted.

The driver is ``tests/crash/crash_driver.py`` (``tests/crash/test_consent_crash.py`` runs it in
the normal test suite with the defaults). This script runs it by hand with other sizes, on one
or both backends, and keeps the server logs when asked:

- SQLite: a temporary database file, ``--workers 1`` by default (one writer process);
- PostgreSQL: a fresh schema in ``--postgres-url`` (default: env QINGLANG_TEST_POSTGRES_URL or
  ``postgresql+psycopg://127.0.0.1:5432/test``), ``--workers 2`` by default; the schema is
  dropped afterwards unless ``--keep``.

The server listens on a free port of 127.0.0.1 only. It prints the figures of each run
(acknowledged writes, replays, kills, ledger entries, time) and exits 1 when a check failed:
an acknowledged write missing or stored twice, a consent row that disagrees with the ledger, a
chain that does not verify. Speed is reported, never enforced.

    .venv/bin/python bench/crash_consents.py                          # both backends, 10 s
    .venv/bin/python bench/crash_consents.py --backend postgresql --duration 20 --kill-at 3 8 14
    .venv/bin/python bench/crash_consents.py --kill-at                # no kills: concurrency only
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "crash"))

import crash_driver  # noqa: E402

from qinglang.store.crypto import DataKey  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"


@contextlib.contextmanager
def postgres_schema(base_url: str, keep: bool) -> Iterator[str]:
    """A URL on a fresh schema of `base_url` (dropped afterwards unless `keep`)."""
    url = make_url(base_url)
    if url.host not in (None, "", "127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing a PostgreSQL server that is not on loopback: {url.host}")
    schema = f"qlcrash_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept schema {schema}")
        else:
            with admin.begin() as c:
                c.execute(text("SET LOCAL lock_timeout = '10s'"))
                c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> crash_driver.Figures:
    workdir.mkdir(parents=True, exist_ok=True)
    common = {
        "clients": args.clients,
        "duration": args.duration,
        "kill_at": tuple(args.kill_at),
        "seed": args.seed,
    }
    if backend == "sqlite":
        return crash_driver.run(
            f"sqlite:///{workdir / 'qinglang.db'}", workdir, workers=args.workers or 1, **common
        )
    with postgres_schema(args.postgres_url, args.keep) as url:
        return crash_driver.run(
            url,
            workdir,
            workers=args.workers or 2,
            data_key=DataKey.generate().to_b64(),
            **common,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--duration", type=float, default=crash_driver.DURATION)
    parser.add_argument("--clients", type=int, default=crash_driver.CLIENTS)
    parser.add_argument(
        "--kill-at",
        type=float,
        nargs="*",
        default=list(crash_driver.KILL_AT),
        help="seconds after the load starts at which to SIGKILL the server (none: no kills)",
    )
    parser.add_argument("--workers", type=int, default=0, help="default: 1 SQLite, 2 PostgreSQL")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("QINGLANG_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
    )
    parser.add_argument("--keep", action="store_true", help="keep the server logs and databases")
    args = parser.parse_args(argv)

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    top = Path(tempfile.mkdtemp(prefix="qinglang-crash-"))
    failed = False
    try:
        for backend in backends:
            figures = run_backend(backend, args, top / backend)
            print(figures.summary(), flush=True)
            failed = failed or bool(figures.problems)
    finally:
        if args.keep:
            print(f"kept server logs and files in {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
