"""Ours against llama.cpp on the same machine, in the same run: decode tok/s, prefill time and peak RSS.

Needs the peers made by `python benchmarks/llamacpp.py setup` (llama.cpp built from the llama-cpp-python
sdist; the full-size SantaCoder with random weights as a Hugging Face folder, our int4 and int8 folders
and GGUFs f16 / Q8_0 / Q4_0 / Q4_K_M made from the same weights). Every case runs in a fresh process,
the cases interleaved, `--rounds` rounds; the best of the rounds is reported.

- ours: the folder loaded with from_pretrained (bf16 activations); prefill = one forward of a 128- or
  1024-token prompt into the KV cache; decode = 64 greedy tokens after a 128-token prompt;
- llama.cpp: llama-bench, prefill `-p 128,1024 -n 0`, decode `-n 64 -d 128` (64 tokens after 128 in the
  cache), one repetition per round;
- peak RSS: VmHWM of our worker; for llama.cpp the largest child RSS (ru_maxrss) of its worker.

    python benchmarks/bench_peers.py                  # -> benchmarks/results/peers_cpu.md
    python benchmarks/bench_peers.py --rounds 1 --cases int4 q4_0
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import RESULTS, Clock, run_fresh, save_report  # noqa: E402
from benchmarks.llamacpp import bin_path, gguf_path, path  # noqa: E402

OURS = {"bf16": "santacoder-full", "int8": "santacoder-full-int8", "int4": "santacoder-full-int4"}
LLAMA = ("f16", "q8_0", "q4_0", "q4_k_m")
PAIRS = (("bf16", "f16"), ("int8", "q8_0"), ("int4", "q4_k_m"), ("int4", "q4_0"))  # the ratios reported


def ours_worker(case: str, threads: int) -> dict:
    import torch

    from modeling import SantaCoderForCausalLM
    from modeling.memory import peak_rss_mib

    torch.set_num_threads(threads)
    model = SantaCoderForCausalLM.from_pretrained(path(OURS[case]), dtype="bf16")
    ids = torch.randint(0, 2000, (1, 1024), generator=torch.Generator().manual_seed(0))
    row = {}
    with torch.inference_mode():
        model(ids[:, :16], cache=model.new_cache(1, 16), last_only=True)  # warm-up
        for T in (128, 1024):
            cache = model.new_cache(1, T)
            t = time.perf_counter()
            model(ids[:, :T], cache=cache, last_only=True)
            row[f"prefill_{T}_s"] = time.perf_counter() - t
    clock = Clock()
    model.generate(ids[:, :128], max_new_tokens=64, eos_token_id=[], streamer=clock)
    row["decode_tok_s"] = clock.decode_tok_s()
    row["peak_rss_mib"] = peak_rss_mib()
    return row


def llama_worker(case: str, threads: int) -> dict:
    def bench(*args):
        cmd = [bin_path("llama-bench"), "-m", gguf_path(case), "-t", threads, "-r", 1, "-o", "json", *args]
        out = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    row = {}
    for r in bench("-p", "128,1024", "-n", 0):
        row[f"prefill_{r['n_prompt']}_s"] = r["n_prompt"] / r["avg_ts"]
    row["decode_tok_s"] = bench("-p", 0, "-n", 64, "-d", 128)[0]["avg_ts"]
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return row


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        flags = next(line for line in info.splitlines() if line.startswith("flags")).split()
        isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
        vnni = " VNNI" if "avx512_vnni" in flags or "avx_vnni" in flags else ""
        return f"{name}, {os.cpu_count()} cores, {isa}{vnni}"
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cases", nargs="+", default=[*OURS, *LLAMA], choices=[*OURS, *LLAMA])
    p.add_argument("--out", default=os.path.join(RESULTS, "peers_cpu"))
    p.add_argument("--worker", nargs=2, metavar=("CASE", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        case, threads = args.worker[0], int(args.worker[1])
        print(json.dumps(ours_worker(case, threads) if case in OURS else llama_worker(case, threads)))
        return
    missing = [c for c in args.cases if not os.path.exists(path(OURS[c]) if c in OURS else gguf_path(c))]
    if missing or not os.path.exists(bin_path("llama-bench")):
        sys.exit(f"missing peers ({', '.join(missing) or 'llama-bench'}): run python benchmarks/llamacpp.py setup")
    best = {}
    for _ in range(args.rounds):
        for case in args.cases:  # interleaved: every case once per round
            row = run_fresh(os.path.abspath(__file__), [case, args.threads])
            b = best.setdefault(case, dict(row))
            for k, v in row.items():
                b[k] = max(b[k], v) if k == "decode_tok_s" else min(b[k], v)
    who = {c: ("ours " if c in OURS else "llama.cpp ") + c.upper() for c in best}
    lines = ["# Ours against llama.cpp on CPU", "",
             f"`python benchmarks/bench_peers.py` on {cpu_name()}, {args.threads} threads, best of {args.rounds} "
             "interleaved rounds, each case in a fresh process. Full-size SantaCoder, random weights (seed 0), "
             "the same weights in every format.", "",
             "| runtime | decode tok/s | prefill 128 | prefill 1024 | peak RSS |", "|---|---|---|---|---|"]
    for c, r in best.items():
        lines.append(f"| {who[c]} | {r['decode_tok_s']:.1f} | {r['prefill_128_s']:.2f} s | {r['prefill_1024_s']:.1f} s | "
                     f"{r['peak_rss_mib']:.0f} MiB |")
    pairs = [(a, b) for a, b in PAIRS if a in best and b in best]
    if pairs:
        lines += ["", "| ours / llama.cpp | decode (higher is better) | prefill 128 time (lower is better) | "
                  "prefill 1024 time |", "|---|---|---|---|"]
        for a, b in pairs:
            ra, rb = best[a], best[b]
            lines.append(f"| {who[a]} / {who[b]} | {ra['decode_tok_s'] / rb['decode_tok_s']:.2f}x | "
                         f"{ra['prefill_128_s'] / rb['prefill_128_s']:.2f}x | "
                         f"{ra['prefill_1024_s'] / rb['prefill_1024_s']:.2f}x |")
    save_report(args.out, lines, best)


if __name__ == "__main__":
    main()
