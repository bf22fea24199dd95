#!/usr/bin/env python3
"""Parse web server access logs and print traffic statistics.

Handles the common "combined" log format, optionally gzip-compressed.
"""
import argparse
import gzip
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator, Optional, TextIO

LINE_RE = re.compile(
    r'(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] '
    r'"(?P<method>[A-Z]+) (?P<path>\S+) (?P<proto>[^"]+)" '
    r'(?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
    r'(?: (?P<duration>\d+\.\d+))?'
)
TS_FORMAT = "%d/%b/%Y:%H:%M:%S %z"


@dataclass
class Hit:
    ip: str
    when: datetime
    method: str
    path: str
    status: int
    size: int
    agent: str
    duration: Optional[float]


def open_log(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def parse_lines(stream: TextIO) -> Iterator[Hit]:
    for raw in stream:
        m = LINE_RE.match(raw)
        if not m:
            continue
        try:
            when = datetime.strptime(m["ts"], TS_FORMAT)
        except ValueError:
            continue
        yield Hit(
            ip=m["ip"],
            when=when,
            method=m["method"],
            path=m["path"].split("?", 1)[0],
            status=int(m["status"]),
            size=0 if m["size"] == "-" else int(m["size"]),
            agent=m["agent"] or "",
            duration=float(m["duration"]) if m["duration"] else None,
        )


def percentile(sorted_values, pct):
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * pct / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class Stats:
    def __init__(self):
        self.total = 0
        self.bytes = 0
        self.status = Counter()
        self.paths = Counter()
        self.ips = Counter()
        self.per_hour = Counter()
        self.durations = defaultdict(list)
        self.bots = 0

    def add(self, hit: Hit) -> None:
        self.total += 1
        self.bytes += hit.size
        self.status[hit.status // 100 * 100] += 1
        self.paths[(hit.method, hit.path)] += 1
        self.ips[hit.ip] += 1
        self.per_hour[hit.when.strftime("%Y-%m-%d %H:00")] += 1
        if hit.duration is not None:
            self.durations[hit.path].append(hit.duration)
        if "bot" in hit.agent.lower() or "spider" in hit.agent.lower():
            self.bots += 1

    def render(self, top: int, out: TextIO) -> None:
        w = out.write
        w(f"requests: {self.total}\n")
        w(f"bytes:    {self.bytes / 1024 / 1024:.1f} MiB\n")
        w(f"bots:     {self.bots} ({100 * self.bots / max(self.total, 1):.1f}%)\n\n")
        w("status classes:\n")
        for code, n in sorted(self.status.items()):
            w(f"  {code // 100}xx  {n:>8}\n")
        w(f"\ntop {top} paths:\n")
        for (method, path), n in self.paths.most_common(top):
            w(f"  {n:>8}  {method:<6} {path}\n")
        w(f"\ntop {top} clients:\n")
        for ip, n in self.ips.most_common(top):
            w(f"  {n:>8}  {ip}\n")
        slow = []
        for path, values in self.durations.items():
            if len(values) >= 5:
                values.sort()
                slow.append((percentile(values, 95), statistics.median(values), path))
        if slow:
            w("\nslowest paths (p95 / median seconds):\n")
            for p95, med, path in sorted(slow, reverse=True)[:top]:
                w(f"  {p95:8.3f} {med:8.3f}  {path}\n")
        if self.per_hour:
            peak_hour, peak = self.per_hour.most_common(1)[0]
            w(f"\npeak hour: {peak_hour} with {peak} requests\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="access log statistics")
    ap.add_argument("files", nargs="*", default=["-"])
    ap.add_argument("-n", "--top", type=int, default=10)
    ap.add_argument("--status", type=int, action="append",
                    help="only count these status codes (repeatable)")
    ap.add_argument("--since", help="ignore hits before this date (YYYY-MM-DD)")
    args = ap.parse_args(argv)

    since = None
    if args.since:
        since = datetime.strptime(args.since, "%Y-%m-%d").date()

    stats = Stats()
    for name in args.files:
        try:
            stream = open_log(name)
        except OSError as exc:
            print(f"{name}: {exc.strerror}", file=sys.stderr)
            continue
        with stream if stream is not sys.stdin else open(0, closefd=False) as fh:
            for hit in parse_lines(fh):
                if args.status and hit.status not in args.status:
                    continue
                if since and hit.when.date() < since:
                    continue
                stats.add(hit)

    if stats.total == 0:
        print("no matching requests", file=sys.stderr)
        return 1
    stats.render(args.top, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
