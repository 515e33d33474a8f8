"""Benchmark qinglang.age.ric against python-stdnum's stdnum.cn.ric: agreement, then speed.

(a) Agreement of ``is_valid`` on N mixed 18-character strings (pure random digit/X strings and
    near-misses of valid numbers: one digit changed, adjacent transposition, wrong check
    character, impossible date, unknown or expired region, future birth date — the last three
    with a correct check character so that the date and region branches are reached) and on N
    generated valid numbers. The only allowed disagreement is the documented one: stdnum accepts
    a birth date after today (Asia/Shanghai), qinglang does not. stdnum 2.2 raises KeyError for a
    known province with an unknown county; that is counted separately and treated as "invalid".
(b) Speed of ``is_valid`` on the same 2N inputs (best of 3 with time.perf_counter), and of
    ``validate`` on the N valid numbers.

Exits 1 on an undocumented disagreement, 2 if qinglang is less than --min-ratio times faster.

    .venv/bin/python bench/bench_ric.py [--n 100000] [--seed 20261128]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import stdnum
from stdnum.cn import ric as stdnum_ric

from qinglang.age import regions
from qinglang.age import ric as qinglang_ric

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
DIGITS = "0123456789"
TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
OPEN_END = 10_000  # regions' sentinel for "no end year"


def check_char(first17: str) -> str:
    """GB 11643 check character by the literal weighted sum (independent of qinglang)."""
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def with_check(first17: str) -> str:
    return first17 + check_char(first17)


class Generator:
    """Seeded generator of valid numbers and of near-misses of each kind."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        table = regions._load()  # the same loc.dat table qinglang uses (parsed from stdnum)
        self.table = table
        self.spans = [  # (code, first year, last year) within [1900, this year]
            (code, max(1900, first), min(TODAY.year, last))
            for code, entries in table.items()
            for first, last, _ in entries
            if max(1900, first) <= min(TODAY.year, last)
        ]
        self.open_ended = sorted(  # codes with a division that still exists
            code for code, entries in table.items() if any(e[1] == OPEN_END for e in entries)
        )
        self.bounded = sorted(
            code for code, entries in table.items() if any(e[1] != OPEN_END for e in entries)
        )
        self.provinces = sorted({code[:2] for code in table})

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(DIGITS) for _ in range(n))

    def valid(self) -> str:
        code, lo, hi = self.rng.choice(self.spans)
        year = self.rng.randint(lo, hi)
        start = date(year, 1, 1).toordinal()
        end = min(date(year, 12, 31), TODAY).toordinal()
        birth = date.fromordinal(self.rng.randint(start, end))
        return with_check(f"{code}{birth:%Y%m%d}{self.rng.randrange(1000):03d}")

    def random(self) -> str:
        return "".join(self.rng.choice("0123456789X") for _ in range(18))

    def one_digit(self) -> str:
        n = self.valid()
        i = self.rng.randrange(17)
        new = self.rng.choice(DIGITS.replace(n[i], ""))
        return n[:i] + new + n[i + 1 :]

    def transposition(self) -> str:
        n = self.valid()
        candidates = [i for i in range(17) if n[i] != n[i + 1]]
        i = self.rng.choice(candidates)
        return n[:i] + n[i + 1] + n[i] + n[i + 2 :]

    def wrong_check(self) -> str:
        n = self.valid()
        return n[:17] + self.rng.choice("0123456789X".replace(n[17], ""))

    def bad_date(self) -> str:
        n = self.valid()
        year, month, day = n[6:10], n[10:12], n[12:14]
        kind = self.rng.randrange(6)
        if kind == 0:
            month = self.rng.choice(["00", *(f"{m}" for m in range(13, 100))])
        elif kind == 1:
            day = self.rng.choice(["00", *(f"{d}" for d in range(32, 100))])
        elif kind == 2:  # a day past the end of a short month
            month, day = self.rng.choice([("02", "30"), ("02", "31"), ("04", "31"), ("06", "31")])
        elif kind == 3:  # 29 February in a common year
            year = str(self.rng.choice([y for y in range(1900, TODAY.year) if y % 4 or y == 1900]))
            month, day = "02", "29"
        elif kind == 4:
            year = "0000"
        else:
            month, day = f"{self.rng.randrange(100):02d}", f"{self.rng.randrange(100):02d}"
            try:
                date(int(year), int(month), int(day))
                day = "00"
            except ValueError:
                pass
        return with_check(n[:6] + year + month + day + n[14:17])

    def bad_region(self) -> str:
        n = self.valid()
        kind = self.rng.randrange(3)
        if kind == 0:  # not in the table at all (often an unknown province)
            code = self.digits(6)
            while code in self.table:
                code = self.digits(6)
            return with_check(code + n[6:17])
        if kind == 1:  # known province, unknown county (stdnum 2.2: KeyError)
            code = self.rng.choice(self.provinces) + self.digits(4)
            while code in self.table:
                code = self.rng.choice(self.provinces) + self.digits(4)
            return with_check(code + n[6:17])
        while True:  # a real code, but not in the birth year
            code = self.rng.choice(self.bounded)
            year = self.rng.randint(1900, TODAY.year - 1)  # so the date is never future
            month_day = n[10:14] if n[10:14] != "0229" else "0228"
            if regions.region_name(code, year) is None:
                return with_check(f"{code}{year:04d}{month_day}{n[14:17]}")

    def future(self) -> str:
        code = self.rng.choice(self.open_ended)
        start = (TODAY + timedelta(days=1)).toordinal()
        end = date(self.rng.choice([2100, 2200, 9999]), 12, 31).toordinal()
        birth = date.fromordinal(self.rng.randint(start, end))
        return with_check(f"{code}{birth:%Y%m%d}{self.rng.randrange(1000):03d}")


def stdnum_verdict(number: str) -> bool | None:
    """stdnum's is_valid, or None when it raises (KeyError in stdnum 2.2)."""
    try:
        return bool(stdnum_ric.is_valid(number))
    except KeyError:
        return None


def birth_is_future(number: str) -> bool:
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14])) > TODAY
    except ValueError:
        return False


def qinglang_reason(number: str) -> str:
    try:
        qinglang_ric.validate(number)
    except qinglang_ric.InvalidIdentityNumber as e:
        return e.reason
    return "valid"


def agreement(sets: dict[str, list[str]]) -> int:
    """Print the agreement table; return the number of undocumented disagreements."""
    columns = [
        "n",
        "agree",
        "both valid",
        "both invalid",
        "future(doc)",
        "stdnum KeyError",
        "OTHER",
    ]
    print(f"  {'set':<14}" + "".join(f"{c:>16}" for c in columns))
    totals: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    examples: list[str] = []
    for name, numbers in sets.items():
        row: Counter[str] = Counter(n=len(numbers))
        reasons[name] = Counter(qinglang_reason(n) for n in numbers)
        for number in numbers:
            ours, theirs = qinglang_ric.is_valid(number), stdnum_verdict(number)
            if theirs is None:
                row["stdnum KeyError"] += 1
                theirs = False
            if ours == theirs:
                row["agree"] += 1
                row["both valid" if ours else "both invalid"] += 1
            elif theirs and not ours and birth_is_future(number):
                row["future(doc)"] += 1
            else:
                row["OTHER"] += 1
                if len(examples) < 20:
                    examples.append(f"{number}: qinglang={ours} stdnum={theirs}")
        totals.update(row)
        print(f"  {name:<14}" + "".join(f"{row[c]:>16}" for c in columns))
    print(f"  {'total':<14}" + "".join(f"{totals[c]:>16}" for c in columns))
    print("  qinglang validate() reasons per set:")
    for name, counter in reasons.items():
        print(f"    {name:<14} " + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())))
    for line in examples:
        print("  DISAGREEMENT", line)
    return totals["OTHER"]


def best_of(fn: Callable[[str], object], inputs: Sequence[str], repeat: int = 3) -> float:
    """Best wall time over `repeat` runs of fn over all inputs (same loop shape for both)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for number in inputs:
            # Not contextlib.suppress: a context manager per call would dominate the timing.
            try:  # noqa: SIM105
                fn(number)
            except (KeyError, ValueError):  # stdnum 2.2's KeyError; validate's errors
                pass
        best = min(best, time.perf_counter() - start)
    return best


def speed(
    label: str,
    ours: Callable[[str], object],
    theirs: Callable[[str], object],
    inputs: Sequence[str],
) -> float:
    t_ours, t_theirs = best_of(ours, inputs), best_of(theirs, inputs)
    n = len(inputs)
    print(f"  {label} on {n} inputs (best of 3):")
    print(f"    qinglang {n / t_ours:>12,.0f} ops/s  ({t_ours / n * 1e9:7.0f} ns/op)")
    print(f"    stdnum   {n / t_theirs:>12,.0f} ops/s  ({t_theirs / n * 1e9:7.0f} ns/op)")
    ratio = t_theirs / t_ours
    print(f"    ratio    {ratio:.1f}x")
    return ratio


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="size of each input set")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--min-ratio", type=float, default=5.0)
    args = parser.parse_args(argv)

    print(
        f"qinglang.age.ric vs python-stdnum {stdnum.__version__} stdnum.cn.ric "
        f"(Python {sys.version.split()[0]}, seed {args.seed}, n {args.n}, "
        f"today {TODAY} Asia/Shanghai)"
    )
    started = time.perf_counter()
    qinglang_ric.is_valid("11010519491231002X")
    print(f"  one-time region table load: {(time.perf_counter() - started) * 1e3:.1f} ms")
    stdnum_ric.is_valid("11010519491231002X")

    gen = Generator(args.seed)
    makers: dict[str, Callable[[], str]] = {
        "random": gen.random,
        "one-digit": gen.one_digit,
        "transposition": gen.transposition,
        "wrong-check": gen.wrong_check,
        "bad-date": gen.bad_date,
        "bad-region": gen.bad_region,
        "future-date": gen.future,
    }
    weights = [0.3] + [0.7 / 6] * 6
    kinds = gen.rng.choices(list(makers), weights=weights, k=args.n)
    mixed: dict[str, list[str]] = {name: [] for name in makers}
    for kind in kinds:
        mixed[kind].append(makers[kind]())
    valid = [gen.valid() for _ in range(args.n)]

    print(f"\n(a) agreement of is_valid with stdnum ({args.n} mixed + {args.n} valid)")
    other = agreement({**mixed, "valid": valid})

    mixed_inputs = [n for numbers in mixed.values() for n in numbers]
    gen.rng.shuffle(mixed_inputs)
    inputs = mixed_inputs + valid
    gen.rng.shuffle(inputs)

    print("\n(b) speed")
    ratio = speed("is_valid", qinglang_ric.is_valid, stdnum_ric.is_valid, inputs)
    ratio_validate = speed(
        "validate (valid numbers)", qinglang_ric.validate, stdnum_ric.validate, valid
    )

    print()
    if other:
        print(f"FAIL: {other} undocumented disagreements")
        return 1
    if min(ratio, ratio_validate) < args.min_ratio:
        print(f"FAIL: speed ratio below {args.min_ratio}x")
        return 2
    print(
        f"OK: only documented differences; is_valid {ratio:.1f}x, validate "
        f"{ratio_validate:.1f}x faster than stdnum (required {args.min_ratio}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
