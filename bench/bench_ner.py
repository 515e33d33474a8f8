"""Benchmark qinglang.detect.ner on the dev splits: strict span F1, speed, peak memory.

    .venv/bin/python bench/bench_ner.py                     # packaged (shipped) model
    .venv/bin/python bench/bench_ner.py --model-dir /tmp/qinglang-ner-research

Strict span F1: a predicted span counts only if its category and both boundaries match a
gold span exactly. Gold labels are mapped to the recogniser's categories per target below.
Speed is measured on one core (CPU affinity pinned, BLAS threads 1) over the CLUENER dev text
joined with newlines; memory is the peak RSS of a fresh process that loads the model and scans
that text. The jieba ``posseg`` tag ``nr`` baseline needs jieba (bench-only dependency).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from train_ner import SCHOOL_RE, load_split  # noqa: E402

from qinglang.detect.ner import CrfModel, NerRecognizer  # noqa: E402

# (corpus, gold label, category, target F1)
TARGETS = (
    ("cluener", "name", "person_name", 0.85),
    ("cluener", "address", "address", 0.65),
    ("weibo", "PER.NAM", "person_name", 0.65),
    ("resume", "NAME", "person_name", 0.95),
    # Resume EDU is the education level (大学本科, 硕士研究生), not a school name; only a
    # research model has that type, so the shipped model scores 0 here by construction.
    ("resume", "EDU", "education_level", 0.90),
    # informational (no goal): school names = Resume ORG spans ending in a school suffix
    ("resume", "ORG~school", "school", None),
)
SPEED_TARGET_MBS = 0.5
RSS_TARGET_MB = 300.0

Spans = set[tuple[int, int, int]]


def prf(gold: Spans, pred: Spans) -> tuple[float, float, float]:
    tp = len(gold & pred)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(gold) if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def evaluate(
    rec: NerRecognizer,
) -> list[tuple[str, str, float, float, float, float | None, int]]:
    rows = []
    cache: dict[str, list[tuple[str, list[tuple[int, int, str]]]]] = {}
    preds: dict[str, list[list[tuple[int, int, str, float]]]] = {}
    for corpus, lab, cat, target in TARGETS:
        if corpus not in cache:
            cache[corpus] = load_split(corpus, "dev")
            preds[corpus] = [rec.find(t) for t, _ in cache[corpus]]
        gold: Spans = set()
        pred: Spans = set()
        for i, ((_text, spans), found) in enumerate(zip(cache[corpus], preds[corpus], strict=True)):
            if lab == "ORG~school":
                gold |= {
                    (i, s, e) for s, e, lb in spans if lb == "ORG" and SCHOOL_RE.search(_text[s:e])
                }
            else:
                gold |= {(i, s, e) for s, e, lb in spans if lb == lab}
            pred |= {(i, s, e) for s, e, c, _ in found if c == cat}
        p, r, f = prf(gold, pred)
        rows.append((f"{corpus} {lab}", cat, p, r, f, target, len(gold)))
    return rows


def jieba_baseline() -> list[tuple[str, float, float, float, float]]:
    try:
        import jieba
        import jieba.posseg as pseg
    except ImportError:
        return []
    jieba.setLogLevel(60)
    out = []
    for corpus, lab, cat, _t in TARGETS:
        if cat != "person_name":
            continue
        data = load_split(corpus, "dev")
        gold: Spans = set()
        pred: Spans = set()
        nbytes = 0
        t0 = time.perf_counter()
        for i, (text, spans) in enumerate(data):
            gold |= {(i, s, e) for s, e, lb in spans if lb == lab}
            pos = 0
            for w, flag in pseg.cut(text):
                if flag == "nr":
                    pred.add((i, pos, pos + len(w)))
                pos += len(w)
            nbytes += len(text.encode("utf-8"))
        dt = time.perf_counter() - t0
        p, r, f = prf(gold, pred)
        out.append((f"{corpus} {lab}", p, r, f, nbytes / dt / 1e6))
    return out


def speed_text() -> str:
    return "\n".join(t for t, _ in load_split("cluener", "dev"))


def measure_speed(rec: NerRecognizer, text: str, repeat: int = 5) -> float:
    rec.find(text[:1000])  # warm up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        rec.find(text)
        best = min(best, time.perf_counter() - t0)
    return len(text.encode("utf-8")) / best / 1e6


def measure_speed_lines(rec: NerRecognizer, lines: list[str], repeat: int = 5) -> float:
    """MB/s of ``find_many(lines)``, after checking that it equals `find` line by line."""
    if rec.find_many(lines) != [rec.find(t) for t in lines]:
        raise AssertionError("find_many differs from find line by line")
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        rec.find_many(lines)
        best = min(best, time.perf_counter() - t0)
    return sum(len(t.encode("utf-8")) for t in lines) / best / 1e6


_RSS_CHILD = """
import os, resource, sys, json
sys.path.insert(0, {src!r}); sys.path.insert(0, {bench!r})
from train_ner import load_split
text = "\\n".join(t for t, _ in load_split("cluener", "dev"))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from qinglang.detect.ner import CrfModel, NerRecognizer
model_dir = {model_dir!r}
rec = NerRecognizer(CrfModel.load_dir(__import__("pathlib").Path(model_dir))) if model_dir \\
    else NerRecognizer()
n = sum(len(rec.find(text)) for _ in range(2))
hwm = 0
if os.path.exists("/proc/self/status"):
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
print(json.dumps({{"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   "vmhwm_kb": hwm, "before_model_kb": base, "findings": n}}))
"""


def measure_rss(model_dir: str | None) -> dict[str, int]:
    code = _RSS_CHILD.format(src=str(HERE.parent / "src"), bench=str(HERE), model_dir=model_dir)
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[0]})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=None, help="evaluate a model directory instead")
    ap.add_argument("--no-baseline", action="store_true")
    a = ap.parse_args()
    pin_one_core()
    # first, while this process is small: on Linux ru_maxrss survives fork+exec
    rss = measure_rss(a.model_dir)

    t0 = time.perf_counter()
    model = CrfModel.load_dir(Path(a.model_dir)) if a.model_dir else CrfModel.load_packaged()
    load_s = time.perf_counter() - t0
    rec = NerRecognizer(model)
    info = model.info
    print(f"model: {info.get('variant')} trained {info.get('trained')} ({info.get('licence')})")
    print(f"       {info.get('features')} features; load {load_s:.2f}s\n")

    ok = True
    print(
        f"{'target (dev, strict span)':<22}{'category':<16}{'P':>6}{'R':>7}{'F1':>7}"
        f"{'goal':>7}{'n':>6}  result"
    )
    for name, cat, p, r, f, target, n in evaluate(rec):
        if target is None:
            print(f"{name:<22}{cat:<16}{p:6.3f}{r:7.3f}{f:7.3f}{'-':>7}{n:6d}  (info)")
            continue
        res = "PASS" if f >= target else "FAIL"
        ok &= f >= target
        print(f"{name:<22}{cat:<16}{p:6.3f}{r:7.3f}{f:7.3f}{target:7.2f}{n:6d}  {res}")

    if not a.no_baseline:
        print("\nbaseline: jieba posseg tag nr as person_name")
        for name, p, r, f, mbs in jieba_baseline():
            print(f"{name:<22}{'person_name':<16}{p:6.3f}{r:7.3f}{f:7.3f}   ({mbs:.2f} MB/s)")

    text = speed_text()
    mbs = measure_speed(rec, text)
    res = "PASS" if mbs >= SPEED_TARGET_MBS else "FAIL"
    ok &= mbs >= SPEED_TARGET_MBS
    nbytes = len(text.encode("utf-8"))
    print(
        f"\nspeed, model path, one core: {mbs:.2f} MB/s over {nbytes / 1e6:.2f} MB "
        f"CLUENER dev text (goal {SPEED_TARGET_MBS})  {res}"
    )
    lines = text.split("\n")
    print(
        f"speed, find_many over the {len(lines)} dev lines as separate texts: "
        f"{measure_speed_lines(rec, lines):.2f} MB/s (the same spans as find line by line)"
    )
    peak = max(rss["peak_kb"], rss["vmhwm_kb"]) / 1024
    res = "PASS" if peak <= RSS_TARGET_MB else "FAIL"
    ok &= peak <= RSS_TARGET_MB
    print(
        f"peak RSS, fresh process (python + numpy + model + scan): {peak:.0f} MB "
        f"(before model {rss['before_model_kb'] / 1024:.0f} MB; goal {RSS_TARGET_MB:.0f})  {res}"
    )
    print("\nALL PASS" if ok else "\nSOME FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
