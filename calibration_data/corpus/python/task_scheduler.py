"""Cron-like in-process job scheduler with priorities and retry support."""
import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional

log = logging.getLogger("scheduler")


@dataclass(order=True)
class ScheduledJob:
    run_at: float
    priority: int
    seq: int
    name: str = field(compare=False)
    func: Callable[..., Any] = field(compare=False, repr=False)
    interval: Optional[float] = field(default=None, compare=False)
    max_retries: int = field(default=0, compare=False)
    attempts: int = field(default=0, compare=False)
    cancelled: bool = field(default=False, compare=False)


class Scheduler:
    """Runs callables at given times from a single worker thread.

    Jobs with a lower ``priority`` value run first when two jobs are due at
    the same moment. Recurring jobs are re-queued after each run.
    """

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._queue: List[ScheduledJob] = []
        self._jobs: Dict[str, ScheduledJob] = {}
        self._counter = itertools.count()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self.completed: List[str] = []

    def schedule(self, name: str, func: Callable[[], Any], *, delay: float = 0.0,
                 every: Optional[float] = None, priority: int = 10,
                 retries: int = 0) -> ScheduledJob:
        if every is not None and every <= 0:
            raise ValueError("interval must be positive")
        with self._cv:
            if name in self._jobs and not self._jobs[name].cancelled:
                raise KeyError(f"job {name!r} already scheduled")
            job = ScheduledJob(
                run_at=self._clock() + delay,
                priority=priority,
                seq=next(self._counter),
                name=name,
                func=func,
                interval=every,
                max_retries=retries,
            )
            self._jobs[name] = job
            heapq.heappush(self._queue, job)
            self._cv.notify()
        return job

    def schedule_at(self, name: str, func: Callable[[], Any], when: datetime, **kw) -> ScheduledJob:
        delay = (when - datetime.now()).total_seconds()
        return self.schedule(name, func, delay=max(0.0, delay), **kw)

    def cancel(self, name: str) -> bool:
        with self._cv:
            job = self._jobs.pop(name, None)
            if job is None:
                return False
            job.cancelled = True
            return True

    def pending(self) -> List[str]:
        with self._cv:
            return [j.name for j in sorted(self._queue) if not j.cancelled]

    def run_pending(self) -> int:
        """Run every job that is due now. Returns the number of jobs executed."""
        ran = 0
        while True:
            with self._cv:
                if not self._queue or self._queue[0].run_at > self._clock():
                    return ran
                job = heapq.heappop(self._queue)
            if job.cancelled:
                continue
            self._execute(job)
            ran += 1

    def _execute(self, job: ScheduledJob) -> None:
        job.attempts += 1
        try:
            job.func()
        except Exception as exc:
            log.error("job %s failed on attempt %d: %s", job.name, job.attempts, exc)
            if job.attempts <= job.max_retries:
                backoff = min(60.0, 2 ** job.attempts)
                self._requeue(job, self._clock() + backoff)
                return
        else:
            self.completed.append(job.name)
        job.attempts = 0
        if job.interval is not None and not job.cancelled:
            self._requeue(job, job.run_at + job.interval)
        else:
            with self._cv:
                self._jobs.pop(job.name, None)

    def _requeue(self, job: ScheduledJob, when: float) -> None:
        with self._cv:
            job.run_at = when
            job.seq = next(self._counter)
            heapq.heappush(self._queue, job)
            self._cv.notify()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("scheduler already started")
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._cv:
                if self._stopping:
                    return
                wait = None
                if self._queue:
                    wait = max(0.0, self._queue[0].run_at - self._clock())
                if wait is None or wait > 0:
                    self._cv.wait(timeout=wait)
                    continue
            self.run_pending()

    def __enter__(self) -> "Scheduler":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def human_delta(seconds: float) -> str:
    td = timedelta(seconds=int(seconds))
    return str(td) if td.days == 0 else f"{td.days}d {td.seconds // 3600}h"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    counter = {"n": 0}

    def heartbeat():
        counter["n"] += 1
        log.info("heartbeat %d", counter["n"])

    def flaky():
        if counter["n"] < 3:
            raise ConnectionError("upstream unavailable")
        log.info("flaky job finally succeeded")

    with Scheduler() as sched:
        sched.schedule("heartbeat", heartbeat, every=0.5, priority=1)
        sched.schedule("flaky", flaky, delay=0.2, retries=3)
        time.sleep(2.5)
    print("completed:", sched.completed)
