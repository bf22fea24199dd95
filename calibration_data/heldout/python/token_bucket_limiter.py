"""Token bucket and sliding-window rate limiters keyed by client id."""
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, Optional


class RateLimited(Exception):
    def __init__(self, key: str, retry_after: float):
        super().__init__(f"rate limit exceeded for {key}; retry in {retry_after:.2f}s")
        self.key = key
        self.retry_after = retry_after


class TokenBucket:
    """Allows bursts of up to ``capacity`` requests, refilled at ``rate`` per second."""

    def __init__(self, rate: float, capacity: int, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._updated = now

    def try_acquire(self, tokens: int = 1) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= tokens:
                self._tokens -= tokens
                return True
            return False

    def wait_time(self, tokens: int = 1) -> float:
        with self._lock:
            self._refill()
            missing = tokens - self._tokens
            return max(0.0, missing / self.rate)

    def acquire(self, tokens: int = 1, timeout: Optional[float] = None) -> bool:
        deadline = None if timeout is None else self._clock() + timeout
        while not self.try_acquire(tokens):
            pause = self.wait_time(tokens)
            if deadline is not None and self._clock() + pause > deadline:
                return False
            time.sleep(pause)
        return True


class SlidingWindowLimiter:
    """At most ``limit`` events per ``window`` seconds for each key."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: Dict[str, Deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            q = self._events.setdefault(key, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                raise RateLimited(key, q[0] + self.window - now)
            q.append(now)

    def remaining(self, key: str) -> int:
        now = self._clock()
        with self._lock:
            q = self._events.get(key, deque())
            active = sum(1 for t in q if t > now - self.window)
            return max(0, self.limit - active)


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


if __name__ == "__main__":
    clock = ManualClock()
    bucket = TokenBucket(rate=2, capacity=5, clock=clock)
    granted = [bucket.try_acquire() for _ in range(7)]
    print("burst:", granted)
    clock.t += 1.0
    print("after 1s:", bucket.try_acquire(), bucket.try_acquire(), bucket.try_acquire())

    limiter = SlidingWindowLimiter(limit=3, window=10, clock=clock)
    for i in range(4):
        try:
            limiter.hit("10.0.0.1")
            print("request", i, "ok; remaining", limiter.remaining("10.0.0.1"))
        except RateLimited as exc:
            print("request", i, "blocked:", exc)
        clock.t += 2
