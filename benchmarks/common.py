"""Shared by the benchmarks: one case per fresh process, a streaming clock, the report writer."""

import argparse
import json
import os
import subprocess
import sys
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class Clock:
    """put/end streamer recording when each generated token arrives (the first put is the prompt)."""

    def __init__(self):
        self.times, self.prompt_seen = [], False

    def put(self, ids):
        if self.prompt_seen:
            self.times.append(time.perf_counter())
        self.prompt_seen = True

    def end(self):
        pass

    def decode_tok_s(self) -> float:
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def full_size_args(p: argparse.ArgumentParser, out: str, generation: bool = True):
    """The options every full-size benchmark shares, and the hidden --worker flag of its fresh processes."""
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--layers", type=int, default=24)
    if generation:
        p.add_argument("--prompt", type=int, default=128)
        p.add_argument("--new", type=int, default=64)
    p.add_argument("--out", default=os.path.join(RESULTS, out))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)


def decode_tok_s(model, ids, new: int) -> float:
    """Decode speed of a greedy generation of `new` tokens after `ids` (this project's model)."""
    clock = Clock()
    model.generate(ids, max_new_tokens=new, eos_token_id=[], streamer=clock)
    return clock.decode_tok_s()


def best_ms(fn, reps: int = 5) -> float:
    """Fastest of `reps` timed calls of fn, in ms, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def rss_mib() -> float:
    """This process's resident memory now (VmRSS), after a garbage collection and returning freed heap."""
    import gc

    from quant.serialization import release_freed_memory

    gc.collect()
    release_freed_memory()  # glibc keeps freed blocks (the replaced bf16 weights) otherwise
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def run_fresh(script: str, args: list, keep_going: bool = False) -> dict | None:
    """Run `script --worker ARGS` in a new Python process (its own peak RSS) and return its JSON row.

    keep_going: a worker that exits with "skip: REASON" (an optional package missing) gives None, and
    one that fails gives {"error": its last line} instead of ending the benchmark.
    """
    out = subprocess.run([sys.executable, script, "--worker", *map(str, args)], capture_output=True, text=True)
    last = (out.stderr.strip().splitlines() or [""])[-1]
    if out.returncode and keep_going:
        print(f"{' '.join(map(str, args))}: {last}", file=sys.stderr)
        return None if last.startswith("skip:") else {"error": last}
    if out.returncode:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{out.stderr[-2000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(row, file=sys.stderr)
    return row


def save_report(out: str, lines: list, rows: list):
    """Print the markdown report and write it as OUT.md with the raw rows as OUT.json."""
    report = "\n".join(lines)
    print(report)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".md", "w") as f:
        f.write(report + "\n")
    with open(out + ".json", "w") as f:
        json.dump(rows, f, indent=1)
