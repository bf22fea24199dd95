import functools
import logging
import random
import time

logger = logging.getLogger(__name__)


def retry(exceptions=(Exception,), tries=3, delay=0.5, backoff=2.0, jitter=0.1):
    """Retry the wrapped function when it raises one of ``exceptions``."""
    if tries < 1:
        raise ValueError("tries must be at least 1")

    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            wait = delay
            for attempt in range(1, tries + 1):
                try:
                    return func(*args, **kwargs)
                except exceptions as exc:
                    if attempt == tries:
                        raise
                    logger.warning("%s failed (%s); retry %d/%d in %.2fs",
                                   func.__name__, exc, attempt, tries - 1, wait)
                    time.sleep(wait + random.uniform(0, jitter))
                    wait *= backoff
        return wrapper
    return decorator


def timed(func=None, *, label=None, log_level=logging.DEBUG):
    """Log how long a call took. Usable as @timed or @timed(label="x")."""
    def decorator(f):
        name = label or f.__qualname__

        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                elapsed = (time.perf_counter() - start) * 1000
                logger.log(log_level, "%s took %.1f ms", name, elapsed)
        return wrapper

    if func is not None:
        return decorator(func)
    return decorator


def deprecated(reason):
    def decorator(func):
        warned = False

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            nonlocal warned
            if not warned:
                import warnings
                warnings.warn(f"{func.__name__} is deprecated: {reason}",
                              DeprecationWarning, stacklevel=2)
                warned = True
            return func(*args, **kwargs)
        return wrapper
    return decorator


class CallCounter:
    """Class-based decorator that counts invocations per function."""

    def __init__(self, func):
        functools.update_wrapper(self, func)
        self.func = func
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.func(*args, **kwargs)

    def __get__(self, instance, owner):
        if instance is None:
            return self
        return functools.partial(self.__call__, instance)


def validate_types(**expected):
    """Check keyword/positional arguments against the given types at call time."""
    def decorator(func):
        code = func.__code__
        arg_names = code.co_varnames[:code.co_argcount]

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = dict(zip(arg_names, args), **kwargs)
            for name, typ in expected.items():
                if name in bound and not isinstance(bound[name], typ):
                    raise TypeError(
                        f"{func.__name__}() argument {name!r} must be "
                        f"{typ.__name__}, not {type(bound[name]).__name__}"
                    )
            return func(*args, **kwargs)
        return wrapper
    return decorator


if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG)
    state = {"calls": 0}

    @retry(exceptions=(ConnectionError,), tries=4, delay=0.01)
    @timed
    def unreliable():
        state["calls"] += 1
        if state["calls"] < 3:
            raise ConnectionError("reset by peer")
        return "ok"

    @validate_types(name=str, times=int)
    def greet(name, times=1):
        return " ".join([f"hi {name}"] * times)

    print(unreliable(), "after", state["calls"], "calls")
    print(greet("ada", times=2))
    try:
        greet("ada", times="2")
    except TypeError as e:
        print("TypeError:", e)
