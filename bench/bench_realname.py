"""Real-name reports: 10,000 login/logout reports uploaded through the emulator, the uploader
SIGKILLed mid-way and restarted (issue 7's outbox figure), on SQLite and PostgreSQL.

The driver is ``tests/crash/realname_driver.py`` (``tests/crash/test_realname_crash.py`` runs it
in the test suite). This prints, per backend: reports queued and received (distinct and
duplicates), requests and the largest batch, the most loginout requests in any sliding second
against the endpoint's QPS, 1006 answers, what was left in the outbox, and the time taken.
Exits 1 when a check failed. Speed is reported, never enforced.

    .venv/bin/python bench/bench_realname.py                       # both backends, 10,000
    .venv/bin/python bench/bench_realname.py --backend sqlite --reports 20000 --kill-after 9000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "crash"))
sys.path.insert(0, str(ROOT / "bench"))

import realname_driver  # noqa: E402
from crash_consents import DEFAULT_POSTGRES_URL, postgres_schema  # noqa: E402

from qinglang.realname.protocol import load_protocol  # noqa: E402
from qinglang.store.crypto import DataKey  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    """Run the outbox crash scenario on each backend and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--reports", type=int, default=10_000)
    ap.add_argument("--kill-after", type=int, default=3_000)
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get("QINGLANG_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
    )
    args = ap.parse_args(argv)
    os.environ["QINGLANG_DATA_KEY"] = DataKey.generate().to_b64()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    failed = False
    qps = load_protocol().endpoints["loginout"].qps
    for backend in backends:
        if backend == "sqlite":
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                r = realname_driver.run(
                    f"sqlite:///{tmp}/outbox.db", reports=args.reports, kill_after=args.kill_after
                )
        else:
            with postgres_schema(args.postgres_url, keep=False) as url:
                r = realname_driver.run(url, reports=args.reports, kill_after=args.kill_after)
        print(
            f"{backend}: {r.queued:,} queued, {r.distinct:,} received distinct "
            f"(+{r.duplicates} duplicates), killed after {r.killed_after:,}; "
            f"{r.requests} requests, largest {r.largest_batch} items; "
            f"max {r.max_per_second} loginout requests in a sliding second (limit {qps}); "
            f"1006 answers {r.busy_errors}; waiting after {r.waiting_after}; "
            f"upload {r.upload_seconds:.1f} s ({r.distinct / r.upload_seconds:,.0f} reports/s)"
        )
        for p in r.problems:
            print(f"  FAILED: {p}")
        failed |= bool(r.problems)
        print(json.dumps({"backend": backend, **r.to_dict()}))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
