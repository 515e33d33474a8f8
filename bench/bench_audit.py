"""Audit at scale: a platform of 1,000,000 accounts and 10,000,000 logged decisions on
PostgreSQL; `qinglang audit run` for the year must write its report in under 2 minutes within
2 GB of memory (issue 9).

The data is generated in a fresh schema (dropped afterwards unless --keep): accounts (a share
with encrypted birth dates, a share of them minors), consent grants in the hash-chained ledger
for a share of the children, processing records, message and impression events, follows, and
the decision log (a share of the contact decisions with their request, for the replay). The
audit then runs as the user runs it, in its own process; its wall time and peak resident
memory (getrusage of the child) are printed.

With --modes the audit runs once per way of reading the per-minor evidence: in one pass (the
default), in slices in the process (--slice-rows), and on Spark (--spark, one task per slice;
the peak printed is the driver's). The bundles of the
modes must be byte-identical; the script says which files differ if they are not.

    .venv/bin/python bench/bench_audit.py                      # the issue's size
    .venv/bin/python bench/bench_audit.py --accounts 100000 --decisions 1000000   # quicker
    .venv/bin/python bench/bench_audit.py --modes one-pass,sliced,spark
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash_consents import DEFAULT_POSTGRES_URL, postgres_schema

from qinglang.consent.ledger import GENESIS, body_digest, link_hash, make_body
from qinglang.store import upgrade
from qinglang.store.crypto import DataKey, encrypt

console = Console()
SERIES = "generate_series(CAST(0 AS bigint), CAST(:n AS bigint) - 1) g"
LEDGER_COLUMNS = ("platform_id", "seq", "kind", "subject", "body", "prev_hash", "hash", "at")
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = (("contact", 0.4), ("exposure", 0.4), ("collection", 0.1), ("playtime", 0.05))
"""Decision kinds and their shares (the rest: spending)."""


def _copy(
    raw: object, table: str, columns: tuple[str, ...], rows: list[tuple[object, ...]]
) -> None:
    """COPY rows into a table through psycopg (tab-separated text)."""
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row))
        buf.write("\n")
    with (
        raw.cursor() as cur,
        cur.copy(  # type: ignore[attr-defined]
            f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        ) as copy,
    ):
        copy.write(buf.getvalue())


def generate(url: str, key: DataKey, accounts: int, decisions: int, rng: random.Random) -> int:
    """Fill the schema; return the platform id."""
    engine = create_engine(url, poolclass=NullPool)
    upgrade(engine)
    minors = accounts // 5
    dated = minors + accounts // 10
    children = minors // 2
    consented = children // 2
    with engine.begin() as c:
        pid = c.execute(
            text(
                "INSERT INTO platforms (slug, name, jurisdiction, decision_sample_rate) "
                "VALUES ('bench', 'Bench', 'cn', 0.01) RETURNING id"
            )
        ).scalar_one()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("accounts", total=accounts)
        step = 100_000
        conn = engine.raw_connection()
        try:
            for lo in range(0, accounts, step):
                rows = []
                for n in range(lo, min(lo + step, accounts)):
                    born: date | None = None
                    if n < children:
                        born = date(2013 + n % 6, 1 + n % 12, 1 + n % 28)
                    elif n < minors:
                        born = date(2009 + n % 4, 1 + n % 12, 1 + n % 28)
                    elif n < dated:
                        born = date(1970 + n % 30, 1 + n % 12, 1 + n % 28)
                    enc = encrypt(key, born.isoformat().encode(), "date") if born else None
                    rows.append((pid, f"a{n}", enc, "self_declared" if born else None))
                _copy(
                    conn,
                    "accounts",
                    ("platform_id", "external_id", "birth_date", "age_source"),
                    rows,
                )
                conn.commit()
                progress.update(task, advance=len(rows))
            with engine.connect() as c:
                ids = dict(
                    c.execute(
                        text("SELECT external_id, id FROM accounts WHERE platform_id = :p"),
                        {"p": pid},
                    ).all()
                )
            task = progress.add_task("consent ledger", total=consented)
            prev, rows = GENESIS, []
            at0 = YEAR_START - timedelta(days=30)
            for seq in range(1, consented + 1):
                subject = f"a{seq - 1}"
                at = at0 + timedelta(seconds=seq)
                data = {
                    "purpose": "registration",
                    "category": "account",
                    "audience": None,
                    "given_by": "guardian",
                    "guardian": f"g{seq}",
                    "notice": {"id": 1, "version": 1, "hash": "0" * 64},
                }
                body = make_body(
                    pid, seq, "consent.granted", subject, at, data, nonce=f"{seq:032x}"
                )
                h = link_hash(prev, body_digest(body))
                rows.append((pid, seq, "consent.granted", subject, body, prev, h, at.isoformat()))
                prev = h
                if len(rows) == 50_000 or seq == consented:
                    _copy(
                        conn,
                        "ledger_entries",
                        (
                            "platform_id",
                            "seq",
                            "kind",
                            "subject",
                            "body",
                            "prev_hash",
                            "hash",
                            "at",
                        ),
                        rows,
                    )
                    conn.commit()
                    progress.update(task, advance=len(rows))
                    rows = []
            with engine.begin() as c:
                c.execute(
                    text("INSERT INTO ledger_heads (platform_id, seq, hash) VALUES (:p, :s, :h)"),
                    {"p": pid, "s": consented, "h": prev},
                )
        finally:
            conn.close()
        lo_id, hi_id = min(ids.values()), max(ids.values())
        child_hi = ids[f"a{children - 1}"]
        task = progress.add_task("processing, events, follows", total=4)
        with engine.begin() as c:
            params = {"p": pid, "lo": lo_id, "hi": hi_id, "chi": child_hi, "t0": YEAR_START}
            c.execute(
                text(
                    "INSERT INTO processing_records (platform_id, account_id, purpose, category, "
                    "at, source) SELECT :p, :lo + (g * 7919) % (:hi - :lo + 1), 'registration', "
                    "(ARRAY['account','location','contacts','face'])[1 + g % 4], "
                    ":t0 + (g % 28000000) * interval '1 second', 'import' "
                    "FROM generate_series(CAST(0 AS bigint), CAST(:n AS bigint) - 1) g"
                ),
                {**params, "n": accounts},
            )
            progress.update(task, advance=1)
            c.execute(
                text(
                    "INSERT INTO events (platform_id, seq, event_id, kind, at, actor, target, "
                    "received_at) SELECT :p, g + 1, 'm' || g, 'message', "
                    ":t0 + (g % 28000000) * interval '1 second', 'a' || ((g * 7) % :n), "
                    f"'a' || ((g * 13) % :n), :t0 FROM {SERIES}"
                ),
                {**params, "n": accounts},
            )
            c.execute(
                text(
                    "INSERT INTO events (platform_id, seq, event_id, kind, at, actor, item, owner, "
                    "surface, received_at) SELECT :p, :n + g + 1, 'i' || g, 'impression', "
                    ":t0 + (g % 28000000) * interval '1 second', 'a' || ((g * 11) % :n), "
                    "'v' || ((g * 17) % :n), 'a' || ((g * 17) % :n), "
                    "(ARRAY['recommended','searched','viewed'])[1 + g % 3], :t0 "
                    "FROM generate_series(CAST(0 AS bigint), CAST(:n AS bigint) - 1) g"
                ),
                {**params, "n": accounts},
            )
            c.execute(
                text("INSERT INTO event_heads (platform_id, seq) VALUES (:p, :s)"),
                {"p": pid, "s": 2 * accounts},
            )
            progress.update(task, advance=1)
            c.execute(
                text(
                    "INSERT INTO relationships (platform_id, src_account_id, dst_account_id, kind) "
                    "SELECT :p, :lo + (g * 31) % (:hi - :lo + 1), "
                    ":lo + (g * 37 + 1) % (:hi - :lo + 1), "
                    f"'follow' FROM {SERIES} ON CONFLICT DO NOTHING"
                ),
                {**params, "n": accounts // 2},
            )
            progress.update(task, advance=2)
        task = progress.add_task("decision log", total=decisions)
        step = 1_000_000
        for lo in range(0, decisions, step):
            n = min(step, decisions - lo)
            with engine.begin() as c:
                c.execute(
                    text(
                        "INSERT INTO decision_logs (platform_id, kind, subject_account_id, "
                        "other_account_id, action, outcome, rule_ids, at, request) "
                        "SELECT :p, k.kind, :lo + (g * 7919) % (:hi - :lo + 1), "
                        "CASE WHEN k.kind = 'contact' "
                        "THEN :lo + (g * 104729) % (:hi - :lo + 1) END, "
                        "CASE k.kind WHEN 'contact' THEN 'dm' WHEN 'exposure' THEN 'recommend' "
                        "ELSE 'x' END, "
                        "(ARRAY['allow','deny','allow','needs_guardian'])[1 + g % 4], "
                        "'[]'::jsonb, :t0 + (g % 28000000) * interval '1 second', "
                        "CASE WHEN k.kind = 'contact' AND g % 1000 = 0 THEN jsonb_build_object("
                        "'action', 'dm', 'sender', 'a' || ((g * 7919) % :na), "
                        "'recipient', 'a' || ((g * 104729) % :na)) END "
                        "FROM generate_series(CAST(:g0 AS bigint), CAST(:g1 AS bigint)) g, "
                        "LATERAL (SELECT CASE "
                        "WHEN g % 20 < 8 THEN 'contact' WHEN g % 20 < 16 THEN 'exposure' "
                        "WHEN g % 20 < 18 THEN 'collection' WHEN g % 20 < 19 THEN 'playtime' "
                        "ELSE 'spending' END AS kind) k"
                    ),
                    {**params, "g0": lo, "g1": lo + n - 1, "na": accounts},
                )
            progress.update(task, advance=n)
        with engine.begin() as c:
            c.execute(text("ANALYZE"))
    engine.dispose()
    return int(pid)


def main() -> None:
    """Generate the platform, run the audit in a child process per mode, print time and memory
    and whether the bundles are byte-identical."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--postgres-url", default=os.environ.get("QINGLANG_TEST_POSTGRES", DEFAULT_POSTGRES_URL)
    )
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--decisions", type=int, default=10_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the schema")
    ap.add_argument(
        "--reuse",
        metavar="URL",
        help="audit a schema kept by --keep (its key in QINGLANG_DATA_KEY); sizes as generated",
    )
    ap.add_argument("--out", type=Path, default=None, help="where to write the bundles")
    ap.add_argument(
        "--modes",
        default="one-pass",
        help="comma-separated: one-pass, sliced (in process, --slice-rows), spark (--spark)",
    )
    ap.add_argument("--spark", default="local[2]", help="Spark master for the spark mode")
    ap.add_argument("--slice-rows", type=int, default=1_000_000)
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        ap.error(f"--modes: unknown {', '.join(sorted(unknown))}")
    rng = random.Random(9)
    key = DataKey.generate()
    if args.reuse:
        from_env = os.environ.get("QINGLANG_DATA_KEY")
        if not from_env:
            ap.error("--reuse needs the schema's QINGLANG_DATA_KEY in the environment")
        key = DataKey.from_b64(from_env)
    kept = contextlib.nullcontext(args.reuse) if args.reuse else None
    with (
        kept or postgres_schema(args.postgres_url, keep=args.keep) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        if not args.reuse:
            t0 = time.perf_counter()
            generate(url, key, args.accounts, args.decisions, rng)
            console.print(f"generated in {time.perf_counter() - t0:.0f} s")
        if args.keep:
            console.print(f"schema kept: {url}\nQINGLANG_DATA_KEY={key.to_b64()}")
        signing = Path(tmp) / "key.pem"
        from qinglang.audit.bundle import generate_key

        generate_key(signing)
        root = args.out or Path(tmp)
        env = {**os.environ, "QINGLANG_DATA_KEY": key.to_b64(), "COLUMNS": "120"}
        first: Path | None = None
        for mode in modes:
            out = root / f"bundle-{mode}"
            extra = MODES[mode](args)
            wall, driver_mb = _audit(url, signing, out, extra, env)
            pdf = (out / "report.pdf").stat().st_size
            same = ""
            if first is None:
                first = out
            else:
                differ = _differences(first, out)
                same = (
                    f", bundle identical to {first.name}" if not differ else f", DIFFERS: {differ}"
                )
            console.print(
                f"\\[{mode}] accounts {args.accounts:,}, decisions {args.decisions:,}: audit run "
                f"{wall:.1f} s (limit 120 s, {wall / 120:.2f} of it), driver peak RSS "
                f"{driver_mb:.0f} MB (limit 2048 MB, {driver_mb / 2048:.2f} of it), "
                f"report.pdf {pdf / 1024:.0f} KiB{same}"
            )


MODES = {
    "one-pass": lambda a: [],
    "sliced": lambda a: ["--slice-rows", str(a.slice_rows)],
    "spark": lambda a: ["--spark", a.spark, "--slice-rows", str(a.slice_rows)],
}
"""How each mode reads the per-minor evidence: extra `audit run` options."""

MEASURE = (
    "import resource, sys\n"
    "from qinglang.cli import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    print(f'PEAK {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n"
)
"""The audit in a child process that prints its own peak RSS (KiB). Spark's JVM and Python
workers are not measured: a forked child's peak counts the parent's pages at the fork, so
getrusage cannot tell them apart."""


def _audit(
    url: str, signing: Path, out: Path, extra: list[str], env: dict[str, str]
) -> tuple[float, float]:
    """Run `qinglang audit run` in a child; (wall s, its peak RSS MB)."""
    cmd = [sys.executable, "-c", MEASURE, "audit", "run", "--period", "2026"]
    cmd += ["--as-of", "2026-11-28T00:00:00Z", "--out", str(out), "--key", str(signing)]
    cmd += ["--db", url, *extra]
    t1 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t1
    console.print(done.stdout[-3000:])
    if done.returncode != 0:
        console.print(done.stderr[-3000:])
        raise SystemExit(done.returncode)
    peak = [ln for ln in done.stderr.splitlines() if ln.startswith("PEAK ")][-1].split()
    return wall, int(peak[1]) / 1024


def _differences(a: Path, b: Path) -> list[str]:
    """Files of two bundles whose bytes differ (or that only one has)."""
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    names |= {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    return sorted(
        str(n)
        for n in names
        if not (a / n).is_file()
        or not (b / n).is_file()
        or (a / n).read_bytes() != (b / n).read_bytes()
    )


if __name__ == "__main__":
    main()
