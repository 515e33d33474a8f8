"""Property tests of the token bucket on a fake clock (qinglang.realname.ratelimit)."""

from __future__ import annotations

import itertools
import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang.realname.ratelimit import TOLERANCE, TokenBucket


class FakeClock:
    """A clock that only moves when slept on (or advanced by the test); thread-safe."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        with self._lock:
            self.sleeps.append(seconds)
            self.t += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds


def slack(rate: float, grants: int) -> float:
    """Allowed float slack: each grant may come TOLERANCE seconds early."""
    return rate * TOLERANCE * (grants + 1) + 1e-9


rates = st.floats(min_value=0.5, max_value=500.0)
capacities = st.sampled_from([1.0, 1.0, 2.0, 3.5, 10.0])
# (idle time before the call, use try_acquire instead of acquire)
ops = st.lists(
    st.tuples(
        st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=3.0)),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


def run(
    rate: float, capacity: float, plan: list[tuple[float, bool]]
) -> tuple[list[float], list[float], list[float]]:
    """Run a plan; return grant times, waits and the tokens seen before each call."""
    clock = FakeClock()
    bucket = TokenBucket(rate, capacity, clock=clock, sleep=clock.sleep)
    grants: list[float] = []
    waits: list[float] = []
    before: list[float] = []
    for idle, trying in plan:
        clock.advance(idle)
        tokens = bucket.tokens
        before.append(tokens)
        assert 0.0 <= tokens <= capacity
        if trying:
            sleeps = len(clock.sleeps)
            ok = bucket.try_acquire()
            assert len(clock.sleeps) == sleeps  # never blocks
            assert ok == (tokens >= 1 - rate * TOLERANCE)
            if ok:
                grants.append(clock())
            waits.append(0.0)
        else:
            waited = bucket.acquire()
            grants.append(clock())
            waits.append(waited)
        assert bucket.tokens >= 0.0
    assert bucket.grants == len(grants)
    return grants, waits, before


@settings(max_examples=200, deadline=None)
@given(rate=rates, capacity=capacities, plan=ops)
def test_grants_in_any_window_bounded(
    rate: float, capacity: float, plan: list[tuple[float, bool]]
) -> None:
    grants, _, _ = run(rate, capacity, plan)
    # The busiest window of length T starts and ends at grants: check every such pair.
    for i in range(len(grants)):
        for j in range(i, len(grants)):
            count = j - i + 1
            span = grants[j] - grants[i]
            assert count <= rate * span + capacity + slack(rate, count), (i, j, span)


@settings(max_examples=200, deadline=None)
@given(rate=rates, capacity=capacities, plan=ops)
def test_waits_are_minimal(rate: float, capacity: float, plan: list[tuple[float, bool]]) -> None:
    _, waits, before = run(rate, capacity, plan)
    for (_, trying), waited, tokens in zip(plan, waits, before, strict=True):
        if trying:
            continue
        needed = max(0.0, (1 - tokens) / rate)
        if tokens >= 1:
            assert waited == 0.0  # a token was available: not delayed at all
        # waited exactly as long as needed: not less (rate) and not more (minimal)
        assert abs(waited - needed) <= 2 * TOLERANCE + 1e-9 * needed


@settings(max_examples=100, deadline=None)
@given(rate=st.floats(min_value=1.0, max_value=300.0), n=st.integers(2, 80))
def test_capacity_one_spaces_back_to_back_requests(rate: float, n: int) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(n):
        bucket.acquire()
        times.append(clock())
    assert times[0] == 1000.0  # the first request goes at once
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 1 / rate - 2 * TOLERANCE for g in gaps)
    assert all(g <= 1 / rate + 1e-9 for g in gaps)
    # so a server counting any (half-open) sliding second sees at most `rate` requests
    # (rounded up when the rate is not a whole number)
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[i:] if u < t + 1 - n * TOLERANCE)
        assert in_window <= math.ceil(rate)


def test_burst_up_to_capacity_then_paced() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, capacity=3, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.1)
    assert not bucket.try_acquire()
    clock.advance(0.05)
    assert not bucket.try_acquire()
    clock.advance(0.05)
    assert bucket.try_acquire()
    clock.advance(100)
    assert bucket.tokens == 3.0  # never more than capacity


def test_acquire_n_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, capacity=4, clock=clock, sleep=clock.sleep)
    assert bucket.acquire(4) == 0.0
    assert bucket.acquire(3) == pytest.approx(1.5)
    assert bucket.waited == pytest.approx(1.5)


def test_clock_going_backwards_does_not_add_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    clock.advance(-5)
    assert bucket.tokens == 0.0
    assert not bucket.try_acquire()


@pytest.mark.parametrize(("rate", "capacity"), [(0, 1), (-1, 1), (1, 0.5), (float("nan"), 1)])
def test_rejects_bad_parameters(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, capacity)


def test_rejects_requests_above_capacity() -> None:
    bucket = TokenBucket(1, capacity=2)
    with pytest.raises(ValueError, match="capacity"):
        bucket.acquire(3)
    with pytest.raises(ValueError):
        bucket.try_acquire(0)


def test_thread_safe_under_contention() -> None:
    clock = FakeClock(start=0.0)
    rate, capacity, threads, each = 50.0, 2.0, 8, 40
    bucket = TokenBucket(rate, capacity, clock=clock, sleep=clock.sleep)
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(each):
            bucket.acquire()
            with lock:
                granted.append(1)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in pool)
    total = threads * each
    assert len(granted) == total == bucket.grants
    # the fake clock only advances through sleeps: total grants bound the elapsed time
    assert clock() >= (total - capacity) / rate - total * TOLERANCE
    assert bucket.tokens >= 0.0
