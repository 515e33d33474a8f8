"""Benchmark ``qinglang.detect.scan`` against Microsoft Presidio on the same Chinese corpus.

One process pinned to one core, fixed seed. The corpus is the ``text`` field of CLUENER train +
dev (``/work/shared/data/ner/cluener/*.json``), about 10 % of its lines carrying one evasive or
plain PII sentence from ``tests/detect/evasion.py`` spliced in at a random clause boundary;
lines are cycled (or cut) to ``--mb`` megabytes of UTF-8. Measured, line by line:

1. qinglang fast path: ``scan(line, categories=STRUCTURED)`` (normalisation + structured
   recognisers, no model), and for comparison ``scan_many(lines, categories=STRUCTURED)``;
2. qinglang full path: ``scan(line, model=True)`` (categories=None, with the model the package ships
   one) line by line, and ``scan_many(lines, model=True)`` (one call; the model tags all the lines
   in one pass), whose findings are checked to be the same line by line;
3. Presidio ``AnalyzerEngine.analyze(line, language="zh")`` with a registry holding only regex
   ``PatternRecognizer``s equivalent to qinglang's structured categories (CN mobile/landline,
   resident ID with the MOD 11-2 check, passport, HK/Macao permit, bank card with Luhn, email,
   QQ and WeChat after a keyword, IPv4, GPS pair, licence plate, birthday after a keyword, age,
   grade/class), with context words, on a blank spaCy ``zh`` pipeline (character segmenter, no
   model download) wrapped in a ``SpacyNlpEngine``.

Timings are the best of ``--repeats`` runs (time.perf_counter, gc paused during a timed run).
MB/s is UTF-8 megabytes (10^6 bytes) of input per second. Peak RSS (ru_maxrss) is printed after
each stage; the qinglang stages run before Presidio/spaCy are imported. The load average is
printed before and after. Also printed: findings per category and the recall on the injected
PII for each engine (a finding of the expected category overlapping the expected span).

Targets (issue 3): fast path (line by line) >= 20x Presidio; full path >= 0.5 MB/s, judged on
``scan_many``, the API for many texts. Reported, not asserted: the exit status is 1 only when
qinglang.detect cannot be imported or ``scan_many`` does not give the findings of ``scan``.

    .venv/bin/python bench/bench_detect.py               # ~1.25 MB, best of 3
    .venv/bin/python bench/bench_detect.py --mb 0.3      # quick run
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "detect"))

from evasion import Case, Expect, generate  # noqa: E402

from qinglang.detect import MODEL_CATEGORIES, STRUCTURED_CATEGORIES  # noqa: E402

CLUENER = Path("/work/shared/data/ner/cluener")
STRUCTURED = STRUCTURED_CATEGORIES
TARGET_RATIO = 20.0
TARGET_FULL_MBS = 0.5
QUOTED_PRESIDIO_MBS = 0.44
BOUNDARIES = "，。；！？,;!?"


# --------------------------------------------------------------------------- environment


def pin_one_core() -> str:
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "TOKENIZERS_PARALLELISM",
    ):
        os.environ[var] = "false" if var == "TOKENIZERS_PARALLELISM" else "1"
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def load_avg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


# --------------------------------------------------------------------------- corpus


class Line:
    __slots__ = ("expected", "text")

    def __init__(self, text: str, expected: list[Expect]) -> None:
        self.text = text
        self.expected = expected


def cluener_texts() -> list[str]:
    texts = []
    for name in ("train.json", "dev.json"):
        with (CLUENER / name).open(encoding="utf-8") as f:
            texts.extend(json.loads(line)["text"] for line in f if line.strip())
    return texts


def splice(text: str, case: Case, rng: random.Random) -> Line:
    """Insert case.text at a clause boundary of text (or at the end), shifting the spans."""
    cuts = [i + 1 for i, c in enumerate(text) if c in BOUNDARIES] or [len(text)]
    at = rng.choice(cuts)
    if at == len(text):  # append, after a comma unless the line already ends a clause
        head, tail = text + ("" if text[-1:] in BOUNDARIES else "，"), ""
    else:  # text[:at] ends with a boundary character
        head, tail = text[:at], "，" + text[at:]
    shift = len(head)
    expected = [e._replace(start=e.start + shift, end=e.end + shift) for e in case.expected]
    return Line(head + case.text + tail, expected)


def build_corpus(mb: float, inject: float, seed: int) -> list[Line]:
    rng = random.Random(seed)
    base = cluener_texts()
    pool = generate(max(240, int(len(base) * inject * 1.2)), seed)
    lines: list[Line] = []
    target = int(mb * 1_000_000)
    size = 0
    i = 0
    while size < target:
        text = base[i % len(base)]
        i += 1
        if rng.random() < inject:
            line = splice(text, pool[rng.randrange(len(pool))], rng)
        else:
            line = Line(text, [])
        lines.append(line)
        size += len(line.text.encode("utf-8"))
    return lines


# --------------------------------------------------------------------------- presidio


def build_presidio() -> tuple[Any, dict[str, str], str]:
    """AnalyzerEngine over a blank spaCy zh pipeline, with regex recognisers only."""
    import spacy
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class BlankZhNlpEngine(SpacyNlpEngine):  # type: ignore[misc]
        """SpacyNlpEngine whose 'model' is spacy.blank("zh") with the character segmenter."""

        def load(self) -> None:
            self.nlp = {
                "zh": spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "char"}}})
            }

    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

    class IdRecognizer(PatternRecognizer):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            s = pattern_text.upper()
            total = sum(int(d) * w for d, w in zip(s[:17], weights, strict=True))
            return "10X98765432"[total % 11] == s[17]

    class LuhnRecognizer(PatternRecognizer):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            digits = [int(c) for c in pattern_text if c.isdigit()]
            total = 0
            for i, d in enumerate(reversed(digits)):
                if i % 2:
                    d *= 2
                    d -= 9 if d > 9 else 0
                total += d
            return total % 10 == 0

    kw_sep = r"\s*(?:号|號)?\s*(?:是|为|為)?\s*[:：]?\s*"
    provinces = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
    zh_num = "一二三四五六七八九十"
    # (entity, qinglang category, recognizer class, [(name, regex, score)], context words)
    spec: list[tuple[str, str, type, list[tuple[str, str, float]], list[str]]] = [
        (
            "CN_PHONE",
            "phone",
            PatternRecognizer,
            [
                ("mobile", r"(?<!\d)(?:(?:\+|00)86[- ]?)?1[3-9]\d{9}(?!\d)", 0.6),
                ("landline", r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)", 0.4),
            ],
            ["电话", "手机", "联系", "號碼", "号码", "phone", "call", "tel"],
        ),
        (
            "CN_ID",
            "id_number",
            IdRecognizer,
            [
                (
                    "ric18",
                    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
                    r"(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])",
                    0.5,
                )
            ],
            ["身份证", "身份證", "证件", "实名"],
        ),
        (
            "CN_PASSPORT",
            "passport",
            PatternRecognizer,
            [
                (
                    "passport",
                    r"(?<![0-9A-Za-z])(?:E[0-9A-HJ-NP-Z]\d{7}|[EGD]\d{8})(?![0-9A-Za-z])",
                    0.3,
                )
            ],
            ["护照", "護照", "passport"],
        ),
        (
            "CN_TRAVEL_PERMIT",
            "travel_permit",
            PatternRecognizer,
            [("permit", r"(?<![0-9A-Za-z])[CHMLT]\d{8,10}(?![0-9A-Za-z])", 0.3)],
            ["通行证", "通行證", "回乡证", "台胞证"],
        ),
        (
            "CN_BANK_CARD",
            "bank_card",
            LuhnRecognizer,
            [("card", r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)", 0.5)],
            ["银行卡", "銀行卡", "卡号", "卡號", "card"],
        ),
        (
            "EMAIL",
            "email",
            PatternRecognizer,
            [("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", 0.8)],
            ["邮箱", "郵箱", "email", "mail"],
        ),
        (
            "CN_QQ",
            "qq",
            PatternRecognizer,
            [("qq", rf"(?<=(?:QQ|扣扣|企鹅|企鵝|Q号){kw_sep})[1-9]\d{{4,10}}(?!\d)", 0.6)],
            ["QQ", "扣扣", "企鹅"],
        ),
        (
            "CN_WECHAT",
            "wechat",
            PatternRecognizer,
            [
                (
                    "wechat",
                    rf"(?<=(?:微信|wechat|wx|vx|v信|薇信|威信){kw_sep})"
                    r"[A-Za-z][-_A-Za-z0-9]{5,19}(?![-_A-Za-z0-9])",
                    0.6,
                )
            ],
            ["微信", "wechat", "vx"],
        ),
        (
            "IP_ADDRESS",
            "ip_address",
            PatternRecognizer,
            [
                (
                    "ipv4",
                    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}"
                    r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])",
                    0.6,
                )
            ],
            ["IP", "服务器", "地址"],
        ),
        (
            "GPS",
            "gps",
            PatternRecognizer,
            [
                (
                    "latlon",
                    r"(?<![\d.])-?\d{1,3}\.\d{4,8}\s*[,，]\s*-?\d{1,3}\.\d{4,8}(?![\d.])",
                    0.4,
                )
            ],
            ["坐标", "定位", "经纬度", "location"],
        ),
        (
            "CN_LICENCE_PLATE",
            "licence_plate",
            PatternRecognizer,
            [
                (
                    "plate",
                    rf"[{provinces}][A-HJ-NP-Z][·•\s]?[A-HJ-NP-Z0-9]{{4,5}}[A-HJ-NP-Z0-9挂学警港澳]",
                    0.5,
                )
            ],
            ["车牌", "車牌", "plate"],
        ),
        (
            "BIRTHDAY",
            "birthday",
            PatternRecognizer,
            [
                (
                    "after_kw",
                    r"(?<=(?:生日|出生|birthday|born)\D{0,6})(?:19|20)\d{2}\s*[年./-]\s*"
                    r"\d{1,2}\s*[月./-]\s*\d{1,2}\s*日?",
                    0.6,
                ),
                ("before_kw", r"(?:19|20)\d{2}年\d{1,2}月\d{1,2}日(?=\s*出生)", 0.6),
            ],
            ["生日", "出生", "birthday"],
        ),
        (
            "AGE",
            "age",
            PatternRecognizer,
            [
                ("zh", rf"(?<![\d{zh_num}])[\d{zh_num}]{{1,3}}\s*(?:周岁|週歲|岁|歲)", 0.5),
                ("en", r"\b(?:I'?m|I am)\s+\d{1,2}\b(?:\s*(?:years?\s*old|yo))?", 0.4),
                ("generation", r"(?<!\d)[01]0后", 0.4),
            ],
            ["今年", "年龄", "age"],
        ),
        (
            "GRADE_CLASS",
            "grade_class",
            PatternRecognizer,
            [
                (
                    "zh",
                    rf"(?:[一二三四五六]年[级級]|[初高][一二三])\s*"
                    rf"(?:[(（]?\d{{1,2}}[)）]?|[{zh_num}]{{1,2}})?\s*班?",
                    0.5,
                ),
                ("en", r"\b(?:Grade|Year)\s*\d{1,2}\b", 0.4),
            ],
            ["年级", "班", "grade", "school"],
        ),
    ]
    recognizers = []
    entity_to_category: dict[str, str] = {}
    for entity, category, cls, patterns, context in spec:
        recognizers.append(
            cls(
                supported_entity=entity,
                name=f"{entity}_recognizer",
                supported_language="zh",
                patterns=[Pattern(name, regex, score) for name, regex, score in patterns],
                context=context,
            )
        )
        entity_to_category[entity] = category
    nlp_engine = BlankZhNlpEngine(models=[{"lang_code": "zh", "model_name": "blank:zh"}])
    nlp_engine.load()
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["zh"])
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["zh"])
    config = (
        f"presidio-analyzer {pkg_version('presidio-analyzer')}, spaCy {pkg_version('spacy')}: "
        'AnalyzerEngine(nlp_engine=SpacyNlpEngine over spacy.blank("zh", segmenter="char"), '
        f"registry={len(recognizers)} regex PatternRecognizers "
        f"({', '.join(entity_to_category)}), "
        "ID with MOD 11-2 and card with Luhn validate_result, context words, "
        'default LemmaContextAwareEnhancer), analyze(text, language="zh") per line'
    )
    return analyzer, entity_to_category, config


# --------------------------------------------------------------------------- timing


Finding = tuple[str, int, int]  # (qinglang category, start, end)


def timed(
    fn: Callable[[str], list[Finding]], lines: Sequence[Line], repeats: int
) -> tuple[float, list[list[Finding]]]:
    best = float("inf")
    results: list[list[Finding]] = []
    for _ in range(repeats):
        out: list[list[Finding]] = []
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            for line in lines:
                out.append(fn(line.text))
            dt = time.perf_counter() - t0
        finally:
            gc.enable()
        best = min(best, dt)
        results = out
    return best, results


def timed_many(
    fn: Callable[[list[str]], list[list[Finding]]], lines: Sequence[Line], repeats: int
) -> tuple[float, list[list[Finding]]]:
    """Best time of one call on all the lines (gc paused), and its findings."""
    texts = [line.text for line in lines]
    best = float("inf")
    results: list[list[Finding]] = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            results = fn(texts)
            dt = time.perf_counter() - t0
        finally:
            gc.enable()
        best = min(best, dt)
    return best, results


def summarise(lines: Sequence[Line], results: Sequence[list[Finding]]) -> tuple[str, str, str]:
    """Findings per category, recall on the injected PII, findings outside the injected spans."""
    per_cat: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    hit = total = 0
    for line, found in zip(lines, results, strict=True):
        per_cat.update(c for c, _, _ in found)
        for e in line.expected:
            total += 1
            hit += any(c == e.category and s < e.end and e.start < t for c, s, t in found)
        outside.update(
            c for c, s, t in found if not any(s < e.end and e.start < t for e in line.expected)
        )
    cats = ", ".join(f"{c}={n}" for c, n in sorted(per_cat.items())) or "none"
    extra = ", ".join(f"{c}={n}" for c, n in sorted(outside.items())) or "none"
    recall = f"{hit}/{total} = {hit / total:.3f}" if total else "-"
    return cats, recall, extra


def describe_recognisers(detect: Any) -> str:
    """Names and categories of the default registry's recognisers, when the package says."""
    try:
        registry = detect.default_registry(model=True)
        recs = registry.select(None, frozenset({"zh", "en"}))
        parts = []
        for r in recs:
            cats = ",".join(sorted(getattr(r, "categories", ())))
            parts.append(f"{getattr(r, 'name', type(r).__name__)}({cats})")
    except Exception as exc:  # the registry API is not part of the scan contract
        return f"unknown ({exc!r})"
    has_names = any("person_name" in getattr(r, "categories", ()) for r in recs)
    return " ".join(parts) + (
        "" if has_names else "  [no person_name recogniser: no model wired in]"
    )


def row(name: str, nbytes: int, seconds: float) -> float:
    mbs = nbytes / 1e6 / seconds
    print(f"  {name:<34} {seconds:>9.3f} s {mbs:>9.3f} MB/s")
    return mbs


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=1.25, help="corpus size in MB of UTF-8 (1.25)")
    ap.add_argument("--repeats", type=int, default=3, help="best of N for qinglang (3)")
    ap.add_argument("--presidio-repeats", type=int, default=3, help="best of N for Presidio (3)")
    ap.add_argument("--inject", type=float, default=0.10, help="share of lines with PII (0.10)")
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--no-presidio", action="store_true", help="skip Presidio")
    ap.add_argument("--no-full", action="store_true", help="skip the full path (model)")
    args = ap.parse_args(argv)

    pinned = pin_one_core()
    print(f"bench_detect: Python {platform.python_version()}, {platform.machine()}, {pinned}")
    print(f"load average at start: {load_avg()}")
    lines = build_corpus(args.mb, args.inject, args.seed)
    nbytes = sum(len(line.text.encode("utf-8")) for line in lines)
    n_pii = sum(1 for line in lines if line.expected)
    nchars = sum(len(line.text) for line in lines)
    print(
        f"corpus: {len(lines)} lines, {nbytes / 1e6:.3f} MB UTF-8, {nchars} chars, "
        f"{n_pii} lines with injected PII ({n_pii / len(lines):.1%})"
    )
    print(f"peak RSS after corpus: {peak_rss_mb():.1f} MB")

    try:
        from qinglang import detect
    except ImportError as exc:
        print(f"qinglang.detect is not importable: {exc!r}")
        return 1
    if not hasattr(detect, "scan"):
        print("qinglang.detect has no scan()")
        return 1
    scan = detect.scan
    scan_many = detect.scan_many

    def q_fast(text: str) -> list[Finding]:
        return [(f.category, f.start, f.end) for f in scan(text, categories=STRUCTURED)]

    def q_full(text: str) -> list[Finding]:
        return [(f.category, f.start, f.end) for f in scan(text, model=True)]

    def q_fast_many(texts: list[str]) -> list[list[Finding]]:
        found = scan_many(texts, categories=STRUCTURED)
        return [[(f.category, f.start, f.end) for f in fs] for fs in found]

    def q_full_many(texts: list[str]) -> list[list[Finding]]:
        found = scan_many(texts, model=True)
        return [[(f.category, f.start, f.end) for f in fs] for fs in found]

    same = True

    print(f"\n{'':<36} {'best time':>11} {'throughput':>14}")
    rss0 = current_rss_mb()
    q_fast(lines[0].text)  # warm-up: compile patterns, load tables
    t_fast, r_fast = timed(q_fast, lines, args.repeats)
    fast_mbs = row(f"qinglang fast path (best of {args.repeats})", nbytes, t_fast)
    t_fast_many, r_fast_many = timed_many(q_fast_many, lines, args.repeats)
    row("  fast path, scan_many", nbytes, t_fast_many)
    same &= r_fast_many == r_fast
    rss_fast = peak_rss_mb()

    full_mbs = full_many_mbs = None
    r_full: list[list[Finding]] = []
    if not args.no_full:
        t_load = time.perf_counter()
        q_full(lines[0].text)  # loads the model if there is one
        t_load = time.perf_counter() - t_load
        t_full, r_full = timed(q_full, lines, args.repeats)
        full_mbs = row(f"qinglang full path (best of {args.repeats})", nbytes, t_full)
        t_full_many, r_full_many = timed_many(q_full_many, lines, args.repeats)
        full_many_mbs = row("  full path, scan_many", nbytes, t_full_many)
        same &= r_full_many == r_full
        print(f"  {'(first full call, incl. model load)':<34} {t_load:>9.3f} s")
    rss_full = peak_rss_mb()

    presidio_mbs = None
    r_pres: list[list[Finding]] = []
    config = ""
    if not args.no_presidio:
        analyzer, ent2cat, config = build_presidio()

        def p_run(text: str) -> list[Finding]:
            return [
                (ent2cat[r.entity_type], r.start, r.end)
                for r in analyzer.analyze(text=text, language="zh")
            ]

        p_run(lines[0].text)
        t_pres, r_pres = timed(p_run, lines, args.presidio_repeats)
        presidio_mbs = row(f"Presidio regex (best of {args.presidio_repeats})", nbytes, t_pres)
    rss_pres = peak_rss_mb()

    print()
    if presidio_mbs:
        ratio = fast_mbs / presidio_mbs
        verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
        print(f"fast path / Presidio: {ratio:.1f}x ({verdict} the >= {TARGET_RATIO:.0f}x target)")
        print(
            f"fast path / {QUOTED_PRESIDIO_MBS} MB/s (the Presidio figure quoted in issue 3): "
            f"{fast_mbs / QUOTED_PRESIDIO_MBS:.1f}x"
        )
    if full_mbs is not None and full_many_mbs is not None:
        verdict = "meets" if full_many_mbs >= TARGET_FULL_MBS else "BELOW"
        print(
            f"full path: scan_many {full_many_mbs:.3f} MB/s ({verdict} the >= {TARGET_FULL_MBS}"
            f" MB/s target); line by line {full_mbs:.3f} MB/s"
        )
    print(
        "scan_many findings = scan line by line: " + ("yes" if same else "NO (correctness failure)")
    )
    print(
        f"peak RSS: {rss_fast:.1f} MB after the fast path (RSS before it {rss0:.1f} MB), "
        f"{rss_full:.1f} MB after the full path"
        + ("" if args.no_presidio else f", {rss_pres:.1f} MB after Presidio + spaCy")
    )

    print("\nrecall on injected PII (a finding of the category overlapping the span); findings:")
    for name, res in (("qinglang fast", r_fast), ("qinglang full", r_full), ("Presidio", r_pres)):
        if res:
            cats, recall, extra = summarise(lines, res)
            print(f"  {name:<14} recall {recall}")
            print(f"  {'':<14} all findings: {cats}")
            print(f"  {'':<14} outside the injected PII (CLUENER text): {extra}")
    model_found = Counter(c for found in r_full for c, _, _ in found if c in MODEL_CATEGORIES)
    if r_full:
        print(
            f"  person_name/address/school findings in the full path: {dict(model_found) or 'none'}"
        )
        print(f"  full-path recognisers: {describe_recognisers(detect)}")
    if config:
        print(f"\nPresidio configuration: {config}")
    print(f"load average at end: {load_avg()}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
