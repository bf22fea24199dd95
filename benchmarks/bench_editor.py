"""Editor latency: a typing session replayed against our completion server and llama.cpp's llama-server.

A function body is removed from a real source file (default: `filter` in Python's own fnmatch.py) and
typed back character by character; every --every characters an editor would send POST /infill with up
to --before lines before the cursor and --after lines after it, asking for --n-predict tokens, greedy.
The requests go one at a time, interleaved across the servers (each server sees the same sequence), to:
  ours (spm), ours (psm)   serve.py on the int4 g128 folder, in each FIM order
  llama.cpp Q4_0, ...      llama-server on GGUFs of the same weights (default order PSM; "+spm" adds
                           --spm-infill), built and converted by benchmarks/llamacpp.py
All serve the full-size SantaCoder with random weights (fixed seed), with --threads threads each. The
first request to a server is its cold start; the rest are the warm latencies (p50 / p90 / max, client
side, HTTP included). llama-server answers only the first --peer-requests requests (it is slow in PSM
order); the ratio is taken over those same requests.

    python benchmarks/llamacpp.py setup          # once: llama-server, the int4 folder and the GGUFs
    python benchmarks/bench_editor.py            # writes benchmarks/results/editor_cpu.md
"""

import argparse
import ast
import http.client
import inspect
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import llamacpp  # noqa: E402
from benchmarks.common import RESULTS, save_report  # noqa: E402


def typing_session(path: str, function: str, before: int, after: int, every: int, chars: int | None):
    """(prefix, suffix) at each request while the body of `function` in `path` is typed back."""
    with open(path) as f:
        src = f.read()
    lines = src.splitlines(keepends=True)
    node = next(n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef) and n.name == function)
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and len(node.body) > 1:
        first = node.body[1]  # keep the docstring: the editor has it
    start, end = first.lineno - 1, node.end_lineno
    head, body, tail = "".join(lines[:start]), "".join(lines[start:end]), "".join(lines[end:])
    suffix = "".join(tail.splitlines(keepends=True)[:after])
    return [("".join((head + body[:i]).splitlines(keepends=True)[-before:]), suffix)
            for i in range(0, min(len(body), chars or len(body)) + 1, every)]


def start_ours(folder, port, mode, threads):
    os.makedirs(llamacpp.path("logs"), exist_ok=True)
    log = open(llamacpp.path("logs", f"serve-{port}.log"), "w")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "serve.py"), folder, "--port", str(port),
                             "--threads", str(threads), "--fim-mode", mode], stdout=log, stderr=subprocess.STDOUT)
    return llamacpp.wait_healthy(proc, port, f"serve.py (see {log.name})")


def infill(port, prefix, suffix, n_predict):
    body = {"input_prefix": prefix, "input_suffix": suffix, "n_predict": n_predict, "temperature": 0, "top_k": 1,
            "cache_prompt": True, "stream": False}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t = time.perf_counter()
    conn.request("POST", "/infill", body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    seconds = time.perf_counter() - t
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"port {port}: HTTP {resp.status}: {data}")
    return seconds, data


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def folder_mib(path):
    files = [os.path.join(path, f) for f in os.listdir(path)] if os.path.isdir(path) else [path]
    return sum(os.path.getsize(f) for f in files) / 2**20


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=None, help="a Python file (default: the fnmatch.py of this Python)")
    p.add_argument("--function", default="filter")
    p.add_argument("--every", type=int, default=4, help="characters typed between requests")
    p.add_argument("--chars", type=int, default=None, help="type only this many characters of the body")
    p.add_argument("--before", type=int, default=256)
    p.add_argument("--after", type=int, default=64)
    p.add_argument("--n-predict", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modes", default="spm,psm", help="our server's FIM orders to run")
    p.add_argument("--peers", default="q4_0,q4_0+spm,q4_k_m+spm", help="llama-server GGUFs ('' for none)")
    p.add_argument("--peer-requests", type=int, default=16, help="requests each peer (and ours in PSM) answers")
    p.add_argument("--ours", default=None, help="our folder (default: the int4 folder llamacpp.py made)")
    p.add_argument("--out", default=os.path.join(RESULTS, "editor_cpu"))
    args = p.parse_args()

    import fnmatch
    source = args.source or inspect.getsourcefile(fnmatch)
    session = typing_session(source, args.function, args.before, args.after, args.every, args.chars)
    folder = args.ours or llamacpp.path("santacoder-full-int4")
    servers = {}  # name -> (port, Popen, how many requests it answers)
    port = 8190
    try:
        for mode in filter(None, args.modes.split(",")):
            port += 1
            limit = len(session) if mode == "spm" else args.peer_requests
            servers[f"ours int4 g128 ({mode})"] = (port, start_ours(folder, port, mode, args.threads), limit)
        for peer in filter(None, args.peers.split(",")):
            kind, spm = peer.split("+")[0], peer.endswith("+spm")
            port += 1
            proc = llamacpp.start_server(llamacpp.gguf_path(kind), port, threads=args.threads,
                                         extra_args=["--spm-infill"] if spm else [])
            servers[f"llama.cpp {kind.upper()} ({'spm' if spm else 'psm'})"] = (port, proc, args.peer_requests)
        rows = {name: [] for name in servers}
        for i, (prefix, suffix) in enumerate(session):
            for name, (port, proc, limit) in servers.items():
                if i < limit:
                    seconds, r = infill(port, prefix, suffix, args.n_predict)
                    t = r.get("timings", {})
                    rows[name].append({"s": seconds, "prompt_n": t.get("prompt_n"), "predicted_n": t.get("predicted_n"),
                                       "tokens": r.get("tokens_evaluated")})
            print(f"{i + 1}/{len(session)} " + "  ".join(f"{n.split(' (')[0][:14]}:{rows[n][-1]['s']:.2f}s"
                                                          for n in servers if len(rows[n]) == i + 1),
                  file=sys.stderr, flush=True)
        memory = {name: rss_mib(proc.pid) for name, (port, proc, limit) in servers.items()}
    finally:
        for port, proc, limit in servers.values():
            proc.terminate()
            proc.wait()

    k = args.peer_requests
    ref = next(iter(rows))
    lines = [f"Typing `{args.function}` back into {os.path.basename(source)} (Python {sys.version.split()[0]}): "
             f"{len(session)} /infill requests, one every {args.every} characters, up to {args.before} lines before "
             f"and {args.after} after the cursor, {args.n_predict} tokens greedy; full-size SantaCoder, random "
             f"weights, {args.threads} threads per server, requests interleaved across servers. Warm = all "
             f"requests after the first; 'same {k}' = warm p50 over the first {k} requests, the ones every server "
             f"answered, and its ratio to {ref}.", "",
             "| server | cold first | prompt tokens (cold / warm mean evaluated) | warm p50 | warm p90 | warm max "
             f"| same {k}: p50 | ratio | RSS (peak) |", "|---|---|---|---|---|---|---|---|---|"]
    base = statistics.median(r["s"] for r in rows[ref][1:k])
    for name, rs in rows.items():
        warm = [r["s"] for r in rs[1:]]
        same = statistics.median(r["s"] for r in rs[1:k])
        evaluated = statistics.mean(r["prompt_n"] for r in rs[1:] if r["prompt_n"] is not None)
        rss, hwm = memory[name]
        lines.append(f"| {name} | {rs[0]['s']:.2f} s | {rs[0]['tokens'] or rs[0]['prompt_n']} / {evaluated:.0f} | "
                     f"{pct(warm, 0.5):.2f} s | {pct(warm, 0.9):.2f} s | {max(warm):.2f} s | {same:.2f} s | "
                     f"{same / base:.2f}× | {rss:.0f} ({hwm:.0f}) MiB |")
    lines += ["", f"Our folder: {folder_mib(folder):.0f} MiB on disk; "
              + "; ".join(f"{os.path.basename(llamacpp.gguf_path(k.split('+')[0]))} "
                          f"{folder_mib(llamacpp.gguf_path(k.split('+')[0])):.0f} MiB"
                          for k in dict.fromkeys(p.split("+")[0] for p in filter(None, args.peers.split(","))))]
    save_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
