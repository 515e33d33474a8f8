"""Benchmark the batch age scan (`qinglang.jobs.agescan`) on Spark ``local[2]`` and locally.

1. Generates ``--n`` synthetic profiles (default 1,000,000) into a Parquet file, fixed seed:
   nickname, bio, 1-5 short posts with dates, an optional verified age; about one in five carries
   a minor's cue (a stated age, a school grade, 初二, "8th grade").
2. Runs ``scan_accounts(..., spark="local[2]")`` with bounded memory (``--driver-memory``, also
   set as executor memory, and ``spark.python.worker.memory``), Parquet out, and samples the RSS
   of this process, the JVM and the Python workers every 0.2 s from /proc (peak of the sum, and
   of each part).
3. Runs the local (one-process) scan on the first ``--local-n`` profiles for the rate to compare.
4. Checks that the Spark and local results agree on those first profiles (exit 1 if not).

    .venv/bin/python bench/bench_agescan.py                      # 1,000,000 profiles
    .venv/bin/python bench/bench_agescan.py --n 50000 --local-n 5000   # quick run

Timings are reported, not enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from qinglang.jobs.agescan import scan_accounts

CUES = [
    "我今年{a}岁",
    "初二的作业好多",
    "I'm in 8th grade",
    "my mom says i have to finish homework before school tomorrow",
    "{a} years old and bored",
    "高一新生报到",
]
PLAIN = [
    "went to the market and bought some vegetables",
    "周末加班，好累",
    "new phone arrived today",
    "the commute was terrible again",
    "watched a film with friends",
    "今天天气不错，出去走走",
    "reading a book about history",
]
NICKS = ["小明", "sunny", "tiger_99", "阿伟", "moon", "coder", "lily", "快乐每一天"]


def generate(path: Path, n: int, seed: int = 7, batch: int = 50_000) -> None:
    """Write `n` synthetic profiles to a Parquet file."""
    rng = random.Random(seed)
    post = pa.struct([("date", pa.string()), ("text", pa.string())])
    schema = pa.schema(
        [
            ("user_id", pa.string()),
            ("age", pa.int64()),
            ("nickname", pa.string()),
            ("bio", pa.string()),
            ("posts", pa.list_(post)),
        ]
    )
    with pq.ParquetWriter(path, schema) as w:
        for start in range(0, n, batch):
            rows = []
            for i in range(start, min(n, start + batch)):
                minor = rng.random() < 0.2
                a = rng.randint(9, 17) if minor else rng.randint(18, 60)
                posts = []
                for _ in range(rng.randint(1, 5)):
                    t = rng.choice(CUES if minor and rng.random() < 0.5 else PLAIN)
                    d = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                    posts.append({"date": d, "text": t.format(a=a)})
                rows.append(
                    {
                        "user_id": f"u{i:07d}",
                        "age": a if rng.random() < 0.3 else None,
                        "nickname": rng.choice(NICKS),
                        "bio": rng.choice(CUES).format(a=a) if minor and rng.random() < 0.4 else "",
                        "posts": posts,
                    }
                )
            w.write_table(pa.Table.from_pylist(rows, schema=schema))


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class RssSampler(threading.Thread):
    """Peak RSS of this process and its descendants (JVM, Python workers), sampled from /proc."""

    def __init__(self, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.stop = threading.Event()
        self.peak_total = self.peak_jvm = self.peak_py = self.peak_self = 0
        self.max_workers = 0

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            todo, seen = _children(me), []
            while todo:
                p = todo.pop()
                seen.append(p)
                todo += _children(p)
            jvm = sum(_rss(p) for p in seen if _name(p) == "java")
            py_pids = [p for p in seen if _name(p).startswith("python")]
            py = sum(_rss(p) for p in py_pids)
            mine = _rss(me)
            self.peak_total = max(self.peak_total, mine + jvm + py)
            self.peak_jvm = max(self.peak_jvm, jvm)
            self.peak_py = max(self.peak_py, py)
            self.peak_self = max(self.peak_self, mine)
            self.max_workers = max(self.max_workers, len(py_pids))
            self.stop.wait(self.every)


def _mib(b: int) -> str:
    return f"{b / (1 << 20):,.0f} MiB"


def main() -> int:
    """Run the benchmark and print a table (and one JSON line)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="profiles to generate and scan")
    ap.add_argument("--local-n", type=int, default=20_000, help="profiles for the local rate")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="2g")
    ap.add_argument("--python-worker-memory", default="512m")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="agescan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"profiles-{args.n}.parquet"
    t0 = time.perf_counter()
    if not src.exists():
        generate(src, args.n)
    gen_s = time.perf_counter() - t0
    print(f"input: {src} ({src.stat().st_size / (1 << 20):,.1f} MiB, generated in {gen_s:.1f} s)")

    conf = {
        "spark.driver.memory": args.driver_memory,
        "spark.executor.memory": args.driver_memory,
        "spark.python.worker.memory": args.python_worker_memory,
        "spark.sql.files.maxPartitionBytes": str(4 << 20),
    }
    sampler = RssSampler()
    sampler.start()
    t0 = time.perf_counter()
    spark_out = work / "spark-results.parquet"
    summary = scan_accounts(src, spark_out, spark=args.master, spark_conf=conf)
    spark_s = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()

    # the local rate on a prefix of the same profiles
    prefix = work / f"prefix-{args.local_n}.parquet"
    pq.write_table(pq.ParquetFile(src).read_row_groups([0]).slice(0, args.local_n), prefix)
    t0 = time.perf_counter()
    local_out = work / "local-results.parquet"
    local = scan_accounts(prefix, local_out)
    local_s = time.perf_counter() - t0

    spark_rows = pq.read_table(spark_out).slice(0, local.records).to_pylist()
    agree = spark_rows == pq.read_table(local_out).to_pylist()

    res: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "n": args.n,
        "master": args.master,
        "driver_memory": args.driver_memory,
        "spark_seconds": round(spark_s, 1),
        "spark_rows_per_s": round(summary.records / spark_s),
        "peak_rss_total_mib": round(sampler.peak_total / (1 << 20)),
        "peak_rss_jvm_mib": round(sampler.peak_jvm / (1 << 20)),
        "peak_rss_python_workers_mib": round(sampler.peak_py / (1 << 20)),
        "peak_rss_driver_python_mib": round(sampler.peak_self / (1 << 20)),
        "python_workers": sampler.max_workers,
        "local_n": local.records,
        "local_seconds": round(local_s, 1),
        "local_rows_per_s": round(local.records / local_s),
        "scored": summary.scored,
        "errors": len(summary.errors),
        "suspected": summary.suspected,
        "spark_equals_local_on_prefix": agree,
    }
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(
            f"{k:<{width}}  {v:,}"
            if isinstance(v, int) and not isinstance(v, bool)
            else f"{k:<{width}}  {v}"
        )
    print(json.dumps(res))
    return 0 if agree and summary.records == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
