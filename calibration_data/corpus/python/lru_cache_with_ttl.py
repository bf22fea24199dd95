import threading
import time
from collections import OrderedDict
from functools import wraps
from typing import Any, Callable, Generic, Hashable, Optional, Tuple, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class TTLCache(Generic[K, V]):
    """A thread-safe LRU cache where every entry also expires after ``ttl`` seconds.

    >>> cache = TTLCache(maxsize=2, ttl=60)
    >>> cache.set("a", 1)
    >>> cache.get("a")
    1
    """

    def __init__(self, maxsize: int = 128, ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if maxsize <= 0:
            raise ValueError("maxsize must be > 0")
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._data: "OrderedDict[K, Tuple[float, V]]" = OrderedDict()
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            self._purge()
            return len(self._data)

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING  # type: ignore[arg-type]

    def get(self, key: K, default: Any = None) -> Any:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                self.misses += 1
                return default
            expires_at, value = entry
            if expires_at <= self._clock():
                del self._data[key]
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def set(self, key: K, value: V, ttl: Optional[float] = None) -> None:
        lifetime = self.ttl if ttl is None else ttl
        with self._lock:
            self._data[key] = (self._clock() + lifetime, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def delete(self, key: K) -> bool:
        with self._lock:
            return self._data.pop(key, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def _purge(self) -> None:
        now = self._clock()
        stale = [k for k, (exp, _) in self._data.items() if exp <= now]
        for k in stale:
            del self._data[k]

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def cached(ttl: float = 60.0, maxsize: int = 256):
    """Decorator that memoizes a function's results in a TTLCache.

    Keyword arguments are included in the key, sorted by name, so that
    ``f(1, b=2)`` and ``f(1, b=2)`` share an entry regardless of order.
    """

    def decorator(func):
        cache: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl)

        @wraps(func)
        def wrapper(*args, **kwargs):
            key = (args, tuple(sorted(kwargs.items())))
            result = cache.get(key, _MISSING)
            if result is _MISSING:
                result = func(*args, **kwargs)
                cache.set(key, result)
            return result

        wrapper.cache = cache  # type: ignore[attr-defined]
        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        return wrapper

    return decorator


class FakeClock:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


if __name__ == "__main__":
    clock = FakeClock()
    c: TTLCache[str, int] = TTLCache(maxsize=3, ttl=10, clock=clock)
    for i, name in enumerate("abcd"):
        c.set(name, i)
    assert "a" not in c, "oldest entry should have been evicted"
    clock.advance(11)
    assert c.get("b") is None
    print("hit rate:", c.hit_rate)

    calls = []

    @cached(ttl=5)
    def slow_square(x):
        calls.append(x)
        return x * x

    slow_square(3)
    slow_square(3)
    print("computed", len(calls), "time(s)")
