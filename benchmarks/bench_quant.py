"""Full-size SantaCoder on CPU: bf16 against weight-only int8 / int4 (ours, RTN) and bitsandbytes.

Random weights from the 1.1B config (values do not change speed), 2 threads, each variant in a
fresh process. Reports decode tok/s, prefill time at two prompt lengths, the resident memory once
quantized (peak RSS also counts the bf16 model being quantized), the weight bytes read per decoded
token, and the achieved GB/s as a fraction of the read bandwidth measured in the same process
(summing a 1 GiB tensor; noisy on a shared machine).

    python benchmarks/bench_quant.py                 # -> benchmarks/results/quant_cpu.md
    python benchmarks/bench_quant.py --variants bf16 int4
"""

import argparse
import json
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import best_ms, decode_tok_s, full_size_args, rss_mib, run_fresh, save_report  # noqa: E402
from modeling.memory import peak_rss_mib  # noqa: E402

VARIANTS = {  # name -> QuantConfig kwargs (None = unquantized bf16)
    "bf16": None,
    "int8": dict(method="rtn", bits=8, group_size=-1, lm_head=False),
    "int8+head": dict(method="rtn", bits=8, group_size=-1, lm_head=True),
    "int4-g128": dict(method="rtn", bits=4, group_size=128, lm_head=False),
    "int4-g128+head": dict(method="rtn", bits=4, group_size=128, lm_head=True),
    "bnb-int8": dict(method="bnb", bits=8),
    "bnb-nf4": dict(method="bnb", bits=4),
}


def read_bandwidth_gbs() -> float:
    x = torch.ones(2**28, dtype=torch.float32)  # 1 GiB
    x.sum()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - t)
    return x.numel() * 4 / best / 1e9


def bytes_per_token(model) -> int:
    """Bytes of weights one decode step reads: each block Linear (in its kernel's layout) and the lm_head."""
    total = 0
    for m in list(model.transformer.h.modules()) + [model.lm_head]:
        if not isinstance(m, torch.nn.Linear) and not hasattr(m, "kernel"):
            continue  # containers, LayerNorms
        if getattr(m, "kernel", None) in ("cpu-int4", "cpu-int8", "cuda-int4", "cuda-int8"):  # GPTQ buffers unread
            tensors = list(m.backend.buffers()) + [m.bias_c]
        else:
            tensors = list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))
        total += sum(t.numel() * t.element_size() for t in tensors if t is not None)
    return total


def worker(args):
    from modeling import SantaCoderConfig, SantaCoderForCausalLM
    from quant import QuantConfig, quantize_

    torch.set_num_threads(args.threads)
    bw = read_bandwidth_gbs()
    model = SantaCoderForCausalLM.from_config(SantaCoderConfig(n_layer=args.layers), dtype=torch.bfloat16)
    spec = VARIANTS[args.variant]
    t0 = time.perf_counter()
    if spec is not None:
        quantize_(model, QuantConfig(**spec))
    t_quant = time.perf_counter() - t0
    x = torch.randint(0, 49152, (1, args.prompt), generator=torch.Generator().manual_seed(1))

    @torch.inference_mode()
    def prefill_ms(n):
        ids = torch.randint(0, 49152, (1, n), generator=torch.Generator().manual_seed(2))
        return round(best_ms(lambda: model(ids, cache=model.new_cache(1, n + 1), last_only=True), reps=3), 1)

    decode_tok_s(model, x, 4)  # warm-up
    prefill, prefill_long = prefill_ms(args.prompt), prefill_ms(args.long_prompt)
    tps = decode_tok_s(model, x, args.new)
    nbytes = bytes_per_token(model)
    return dict(variant=args.variant, decode_tok_s=round(tps, 2), prefill_ms=prefill, prefill_long_ms=prefill_long,
                rss_mib=round(rss_mib()), peak_rss_mib=round(peak_rss_mib()), weight_mb_per_token=round(nbytes / 1e6),
                achieved_gbs=round(nbytes * tps / 1e9, 1), bandwidth_gbs=round(bw, 1),
                bandwidth_fraction=round(nbytes * tps / 1e9 / bw, 2), quantize_s=round(t_quant, 1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    full_size_args(p, "quant_cpu")
    p.add_argument("--long-prompt", type=int, default=512)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    common = ["--threads", args.threads, "--layers", args.layers, "--prompt", args.prompt,
              "--long-prompt", args.long_prompt, "--new", args.new]
    rows = [run_fresh(__file__, ["--variant", v, *common]) for v in args.variants]
    base = next((r for r in rows if r["variant"] == "bf16"), None)
    lines = [f"Full-size SantaCoder ({args.layers} layers, random weights), CPU, {args.threads} threads, prompt "
             f"{args.prompt}, {args.new} new tokens, torch {torch.__version__}.", "",
             f"| variant | decode tok/s | vs bf16 | prefill {args.prompt} ms | prefill {args.long_prompt} ms "
             f"| weights read/token MB | achieved GB/s | of measured bandwidth | RSS MiB (peak) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['decode_tok_s'] / base['decode_tok_s']:.2f}x" if base else "-"
        lines.append(f"| {r['variant']} | {r['decode_tok_s']} | {ratio} | {r['prefill_ms']} | {r['prefill_long_ms']} "
                     f"| {r['weight_mb_per_token']} | {r['achieved_gbs']} | {r['bandwidth_fraction']:.0%} of "
                     f"{r['bandwidth_gbs']} | {r['rss_mib']} ({r['peak_rss_mib']}) |")
    save_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
