"""Grooming detection on PAN 2012 segments: baseline, qinglang's trainable model, default detector.

    .venv/bin/python bench/bench_grooming.py                    # 5 folds × 3 repeats
    .venv/bin/python bench/bench_grooming.py --folds 5 --repeats 1

Every method is judged on the same stratified K-fold test folds (seeded, repeated with seeds
seed, seed+1, …), and nothing is ever chosen on a test fold:

- baseline @0.5: scikit-learn ``TfidfVectorizer()`` + ``LogisticRegression()`` (defaults,
  max_iter raised so it converges), alert at probability 0.5;
- baseline tuned: the same model with its threshold chosen by an inner 5-fold CV on the training
  folds only, two ways: max F0.5 (plain), and max F0.5 subject to precision ≥ 0.95 (as qinglang
  does); qinglang is compared with the best of the three baseline rows;
- qinglang: `qinglang.risk.model.cross_validate`: word 1-2-gram tf-idf + L2 logistic regression
  in numpy; C (from 3, 10, 30) and the threshold picked by an inner 5-fold CV on the training
  folds only;
- default detector: the untrained cue scorer `qinglang.risk.cues.score_conversation`, flagged
  at the pack's ``risk.alert.review_threshold``; it never sees training data, so it is scored on
  every row, and also per test fold for comparison. It is also scored on
  ``tests/risk/data/en_conversations_dev.csv``, English conversations written for qinglang with
  hard negatives (its cues were not tuned on them).

Then, for ``tests/risk/data/zh_scenarios.jsonl`` and ``en_scenarios.jsonl`` (labelled Chinese and
English conversations written for the engine's tests), it runs each conversation as an event
stream through the risk engine and reports how many messages were read before the first alert.

Targets: qinglang F0.5 ≥ 0.95 with precision ≥ 0.95 (mean over folds); default detector
F0.5 ≥ 0.80 (an aim). A missed target prints FAIL but exits 0 (use --strict to exit 1); a leak
(overlapping folds, a fold not covering its rows) exits 1. scikit-learn is a bench-only
dependency (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from qinglang.risk.model import (  # noqa: E402
    Metrics,
    choose_threshold,
    cross_validate,
    read_labelled_csv,
    stratified_folds,
    summarise,
)

DATA = ROOT.parent / "shared" / "data" / "grooming" / "pan12_segments_dev.csv"
DEV_SET = ROOT / "tests" / "risk" / "data" / "en_conversations_dev.csv"
SCENARIOS = tuple(
    ROOT / "tests" / "risk" / "data" / f"{lang}_scenarios.jsonl" for lang in ("zh", "en")
)
TARGET_F05 = 0.95
TARGET_PRECISION = 0.95
AIM_DEFAULT_F05 = 0.80

Labels = np.ndarray[Any, np.dtype[np.int64]]
Scores = np.ndarray[Any, np.dtype[np.float64]]


def check_folds(plan: list[list[np.ndarray[Any, Any]]], n: int) -> None:
    """Each repeat's test folds are disjoint and cover every row once (else exit 1)."""
    for r, folds in enumerate(plan):
        seen = np.concatenate(folds)
        if len(seen) != n or len(np.unique(seen)) != n:
            print(f"LEAK: repeat {r}: test folds overlap or miss rows")
            raise SystemExit(1)


def sklearn_scorer(texts: Sequence[str], y: Labels) -> Callable[[Sequence[str]], Scores]:
    """Fit the baseline on these rows; return its probability scorer."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer()
    clf = LogisticRegression(max_iter=1000)
    clf.fit(vec.fit_transform(texts), y)

    def score(z: Sequence[str]) -> Scores:
        p: Scores = clf.predict_proba(vec.transform(z))[:, 1]
        return p

    return score


def baseline(
    texts: list[str], y: Labels, plan: list[list[np.ndarray[Any, Any]]], seed: int
) -> tuple[list[Metrics], list[Metrics], list[Metrics], list[float], list[float]]:
    """Per-fold metrics of the baseline at 0.5 and at thresholds tuned on training folds (max
    F0.5; max F0.5 with precision ≥ 0.95), and those thresholds."""
    at_half: list[Metrics] = []
    tuned: list[Metrics] = []
    floored: list[Metrics] = []
    thresholds: list[float] = []
    floor_thresholds: list[float] = []
    all_idx = np.arange(len(y))
    for r, folds in enumerate(plan):
        for j, test in enumerate(folds):
            train = np.setdiff1d(all_idx, test)
            assert not np.intersect1d(train, test).size
            tr_texts = [texts[i] for i in train]
            te_texts = [texts[i] for i in test]
            ytr = y[train]
            # threshold from an inner CV on the training rows only
            oof = np.zeros(len(train))
            for inner in stratified_folds(ytr, 5, seed + 7919 * (r + 1) + j):
                rest = np.setdiff1d(np.arange(len(train)), inner)
                f = sklearn_scorer([tr_texts[i] for i in rest], ytr[rest])
                oof[inner] = f([tr_texts[i] for i in inner])
            thr, _ = choose_threshold(oof, ytr, 0.0)
            thr_floor, _ = choose_threshold(oof, ytr, TARGET_PRECISION)
            s = sklearn_scorer(tr_texts, ytr)(te_texts)
            at_half.append(Metrics.of(y[test], s >= 0.5))
            tuned.append(Metrics.of(y[test], s >= thr))
            floored.append(Metrics.of(y[test], s >= thr_floor))
            thresholds.append(thr)
            floor_thresholds.append(thr_floor)
            print(f"  baseline fold {r}.{j} done", file=sys.stderr, flush=True)
    return at_half, tuned, floored, thresholds, floor_thresholds


def default_detector(texts: list[str], pack: str) -> tuple[Scores, float] | str:
    """Scores of the untrained cue detector on every row and the pack's review threshold."""
    try:
        from qinglang.policy import load_pack
        from qinglang.risk.cues import score_conversation
        from qinglang.risk.params import RiskParams

        policy = load_pack(pack)
        review = RiskParams.from_policy(policy).review
    except Exception as exc:  # reported, not fatal: the other figures still stand
        return f"{exc.__class__.__name__}: {exc}"
    scores = np.array([score_conversation(t, policy).score for t in texts], dtype=np.float64)
    return scores, review


def table(name: str, folds: list[Metrics], tags: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Print per-fold rows and mean ± sd; return the summary."""
    print(f"\n{name}")
    print("  rep fold  precision  recall    F0.5    tp   fp   fn    tn")
    for (r, j), m in zip(tags, folds, strict=True):
        print(
            f"  {r:>3} {j:>4} {m.precision:>10.4f} {m.recall:>7.4f} {m.f05:>7.4f} "
            f"{m.tp:>5} {m.fp:>4} {m.fn:>4} {m.tn:>5}"
        )
    out: dict[str, Any] = {}
    for key in ("precision", "recall", "f05"):
        mu, sd = summarise([getattr(m, key) for m in folds])
        out[key] = round(mu, 4)
        out[key + "_sd"] = round(sd, 4)
    print(
        f"  mean ± sd: precision {out['precision']:.4f} ± {out['precision_sd']:.4f}, "
        f"recall {out['recall']:.4f} ± {out['recall_sd']:.4f}, "
        f"F0.5 {out['f05']:.4f} ± {out['f05_sd']:.4f}"
    )
    return out


def scenario_lines(path: Path) -> list[tuple[int, str]]:
    """The labelled Chinese conversations as an events file for `qinglang risk eval --events`."""
    lines: list[str] = []
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    for raw in path.read_text("utf-8").splitlines():
        if not raw.strip():
            continue
        sc = json.loads(raw)
        sid = sc["id"]
        label = 1 if sc["label"] == "grooming" else 0
        s, r = f"{sid}-s", f"{sid}-r"
        lines.append(json.dumps({"scenario": sid, "label": label}))
        lines.append(json.dumps({"scenario": sid, "account": s, "age": sc.get("sender_age")}))
        lines.append(json.dumps({"scenario": sid, "account": r, "age": sc.get("recipient_age")}))
        rel = sc.get("relation", "stranger")
        if rel in ("mutual", "approved", "guardian"):
            lines.append(json.dumps({"scenario": sid, "link": [s, r], rel: True}))
        for k, (who, text) in enumerate(sc["messages"]):
            actor, target = (s, r) if who == "s" else (r, s)
            at = start + timedelta(minutes=2 * k)
            event = {
                "scenario": sid,
                "id": f"{sid}-{k}",
                "kind": "message",
                "at": at.isoformat(),
                "actor": actor,
                "target": target,
                "text": text,
            }
            lines.append(json.dumps(event, ensure_ascii=False))
    return list(enumerate(lines, start=1))


def events_section(pack: str, path: Path) -> dict[str, Any] | None:
    """The risk engine over labelled scenarios: flags and messages read before the alert."""
    if not path.exists():
        print(f"\n(no {path.relative_to(ROOT)}: event-stream section skipped)")
        return None
    try:
        from qinglang.commands.risk import parse_scenarios, run_scenario
        from qinglang.policy import load_pack

        policy = load_pack(pack)
        scenarios = parse_scenarios(scenario_lines(path))
        results = [run_scenario(sc, policy) for sc in scenarios]
    except Exception as exc:
        print(f"\nevent streams: not run ({exc.__class__.__name__}: {exc})")
        return None
    y = np.array([r.label for r in results], dtype=np.int64)
    m = Metrics.of(y, np.array([r.flagged for r in results]))
    found = [r for r in results if r.label == 1 and r.messages_before_alert is not None]
    before = [float(r.messages_before_alert or 0) for r in found]
    share = [(r.messages_before_alert or 0) / max(r.messages, 1) for r in found]
    print(
        f"\nevent streams: {len(results)} labelled conversations "
        f"({path.relative_to(ROOT)}, {int(y.sum())} grooming) through RiskEngine, one "
        "fresh engine each, flagged = any alert"
    )
    print(
        f"  precision {m.precision:.4f}  recall {m.recall:.4f}  F0.5 {m.f05:.4f}  "
        f"(tp {m.tp} fp {m.fp} fn {m.fn} tn {m.tn})"
    )
    out: dict[str, Any] = {"precision": round(m.precision, 4), "recall": round(m.recall, 4)}
    out["f05"] = round(m.f05, 4)
    if found:
        mu, sd = summarise(before)
        print(
            f"  messages read before the alert ({len(found)} flagged grooming scenarios): "
            f"median {np.median(before):g}, mean {mu:.2f} ± {sd:.2f}, range "
            f"{int(min(before))}–{int(max(before))}; {np.mean(share):.0%} of each "
            "conversation on average"
        )
        out["messages_before_alert"] = {
            "median": float(np.median(before)),
            "mean": round(mu, 2),
            "sd": round(sd, 2),
            "mean_share": round(float(np.mean(share)), 4),
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="segment,label CSV")
    ap.add_argument("--folds", type=int, default=5, help="outer folds K (5)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats with fold seeds seed+r (3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pack", default="cn", help="policy pack of the default detector (cn)")
    ap.add_argument("--no-baseline", action="store_true", help="skip scikit-learn")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)

    started = time.perf_counter()
    texts, y = read_labelled_csv(args.data)
    print(
        f"bench_grooming {datetime.now(UTC):%Y-%m-%d}: Python {platform.python_version()}, "
        f"numpy {np.__version__}; {args.data.name}: {len(y)} rows, {int(y.sum())} positive; "
        f"{args.folds}-fold × {args.repeats} (seeds {args.seed}..{args.seed + args.repeats - 1})"
    )
    plan = [stratified_folds(y, args.folds, args.seed + r) for r in range(args.repeats)]
    check_folds(plan, len(y))
    tags = [(r, j) for r in range(args.repeats) for j in range(args.folds)]
    summary: dict[str, Any] = {"date": f"{datetime.now(UTC):%Y-%m-%d}", "rows": len(y)}

    if not args.no_baseline:
        try:
            import sklearn
        except ImportError:
            print("scikit-learn is not installed (pip install -e '.[bench]'): baseline skipped")
        else:
            t = time.perf_counter()
            half, tuned, floored, thrs, floor_thrs = baseline(texts, y, plan, args.seed)
            name = f"baseline: scikit-learn {sklearn.__version__} TfidfVectorizer + LogReg"
            summary["baseline_0.5"] = table(f"{name}, threshold 0.5", half, tags)
            summary["baseline_tuned"] = table(
                f"{name}, threshold for max F0.5 from inner CV on training folds "
                f"(median {np.median(thrs):.3f})",
                tuned,
                tags,
            )
            summary["baseline_tuned_p95"] = table(
                f"{name}, threshold for max F0.5 with precision ≥ {TARGET_PRECISION} from inner"
                f" CV on training folds (median {np.median(floor_thrs):.3f})",
                floored,
                tags,
            )
            print(f"  ({time.perf_counter() - t:.0f} s)")

    t = time.perf_counter()
    results = cross_validate(texts, y, folds=plan, seed=args.seed)
    for res in results:  # the leakage checks: disjoint, and the threshold is the training one
        if np.intersect1d(res.train_idx, res.test_idx).size or len(res.train_idx) + len(
            res.test_idx
        ) != len(y):
            print(f"LEAK: fold {res.repeat}.{res.fold} trains on test rows")
            return 1
    q = table(
        "qinglang.risk.model: word 1-2-gram tf-idf + L2 logistic regression (numpy L-BFGS); "
        "C and threshold from inner 5-fold CV on training folds",
        [r.test for r in results],
        tags,
    )
    cs = [r.c for r in results]
    print(
        f"  C chosen per fold: {', '.join(f'{c:g}' for c in cs)}; thresholds "
        f"{min(r.threshold for r in results):.3f}–{max(r.threshold for r in results):.3f}"
        f"  ({time.perf_counter() - t:.0f} s)"
    )
    summary["qinglang"] = q

    t = time.perf_counter()
    d = default_detector(texts, args.pack)
    if isinstance(d, str):
        print(f"\ndefault detector: not run ({d})")
        summary["default"] = None
    else:
        scores, review = d
        all_rows = Metrics.of(y, scores >= review)
        per_fold = [Metrics.of(y[test], scores[test] >= review) for f in plan for test in f]
        dd = table(
            f"default detector (untrained cues, pack {args.pack}, review threshold {review:g}),"
            " on the same test folds",
            per_fold,
            tags,
        )
        print(
            f"  on all {len(y)} rows: precision {all_rows.precision:.4f}, recall "
            f"{all_rows.recall:.4f}, F0.5 {all_rows.f05:.4f} (tp {all_rows.tp} fp {all_rows.fp}"
            f" fn {all_rows.fn} tn {all_rows.tn})  ({time.perf_counter() - t:.0f} s)"
        )
        dd["all_rows"] = all_rows.to_dict()
        summary["default"] = dd
        if DEV_SET.exists():
            dev_texts, dev_y = read_labelled_csv(DEV_SET)
            dev = default_detector(dev_texts, args.pack)
            if not isinstance(dev, str):
                m = Metrics.of(dev_y, dev[0] >= dev[1])
                print(
                    f"  on {DEV_SET.relative_to(ROOT)} ({len(dev_y)} written conversations, "
                    f"{int(dev_y.sum())} grooming, written for qinglang): precision "
                    f"{m.precision:.4f}, recall {m.recall:.4f}, F0.5 {m.f05:.4f} (tp {m.tp} fp "
                    f"{m.fp} fn {m.fn} tn {m.tn})"
                )
                dd["dev_set"] = m.to_dict()

    summary["events"] = {p.stem: events_section(args.pack, p) for p in SCENARIOS}

    print("\nverdict")
    ok_q = q["f05"] >= TARGET_F05 and q["precision"] >= TARGET_PRECISION
    print(
        f"  qinglang F0.5 {q['f05']:.4f} (≥ {TARGET_F05}) with precision {q['precision']:.4f} "
        f"(≥ {TARGET_PRECISION}): {'PASS' if ok_q else 'FAIL'}"
    )
    rows = [k for k in ("baseline_0.5", "baseline_tuned", "baseline_tuned_p95") if k in summary]
    if rows:
        best = max(rows, key=lambda k: summary[k]["f05"])
        b = summary[best]["f05"]
        print(
            f"  beats the best baseline row ({best}, F0.5 {b:.4f}): "
            f"{'yes' if q['f05'] > b else 'NO'}"
        )
    ok_d = True
    if summary["default"] is not None:
        f = summary["default"]["all_rows"]["f05"]
        ok_d = f >= AIM_DEFAULT_F05
        print(
            f"  default detector F0.5 {f:.4f} on all rows (aim ≥ {AIM_DEFAULT_F05}): "
            f"{'PASS' if ok_d else 'FAIL'}"
        )
    print(f"  total {time.perf_counter() - started:.0f} s")
    print(json.dumps(summary))
    return 1 if args.strict and not (ok_q and ok_d) else 0


if __name__ == "__main__":
    raise SystemExit(main())
