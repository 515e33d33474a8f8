"""A thread-safe token bucket that spaces requests to stay under a server's QPS limit.

The bucket holds at most `capacity` tokens and gains `rate` tokens per second. With the default
capacity of 1 a grant needs a full token, so grants are spaced at least `1 / rate` seconds apart
and a server counting requests in any sliding second (a half-open window) never sees more than
`rate` of them (`ceil(rate)` for a fractional rate). In general, over any window of length T at
most `rate * T + capacity` grants happen, and the token count never goes negative.

The clock and the sleep function are injectable so that tests can run on a fake clock; `sleep`
must let `clock` advance (a fake sleep advances the fake clock by its argument). Time arithmetic
is in floats, so a grant may come up to `TOLERANCE` seconds (1 ns) early to absorb rounding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TOLERANCE = 1e-9  # seconds: float rounding absorbed when deciding a token is available


class TokenBucket:
    """A token bucket: `rate` tokens per second, at most `capacity` held, thread-safe."""

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if not capacity >= 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._last = clock()
        self.grants = 0  # successful acquire()/try_acquire() calls
        self.waited = 0.0  # total seconds callers of acquire() waited

    @property
    def tokens(self) -> float:
        """The tokens available now (never negative)."""
        with self._lock:
            self._refill(self._clock())
            return self._tokens

    def _refill(self, now: float) -> None:
        """Add the tokens earned since the last update (the clock never moves the count back)."""
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def _take(self, n: float) -> float:
        """Take `n` tokens and return 0.0, or take nothing and return the seconds to wait."""
        self._refill(self._clock())
        wait = (n - self._tokens) / self.rate
        if wait <= TOLERANCE:
            self._tokens = max(0.0, self._tokens - n)
            self.grants += 1
            return 0.0
        return wait

    def _check(self, n: float) -> None:
        """Reject a request that could never be granted."""
        if not 0 < n <= self.capacity:
            raise ValueError(f"n must be in (0, capacity={self.capacity}], got {n}")

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if they are available now, without waiting; return whether it did."""
        self._check(n)
        with self._lock:
            return self._take(n) == 0.0

    def acquire(self, n: float = 1) -> float:
        """Block until `n` tokens are available, take them, and return the seconds waited."""
        self._check(n)
        start = self._clock()
        while True:
            with self._lock:
                wait = self._take(n)
                if wait == 0.0:
                    waited = max(0.0, self._clock() - start)
                    self.waited += waited
                    return waited
            self._sleep(wait)
