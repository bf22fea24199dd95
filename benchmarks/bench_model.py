"""Full-size SantaCoder on CPU: this project's fused model vs transformers' GPTBigCodeForCausalLM.

Random weights from the 1.1B config (values do not change speed), the same thread count for both,
each case in a fresh process so peak RSS is its own. Decode speed is measured between the first
and the last streamed token of a greedy generation; prefill is a forward over the prompt.

    python benchmarks/bench_model.py                      # bf16 and fp32, 2 threads -> results/model_cpu.md
    python benchmarks/bench_model.py --dtypes bf16 --new 32
"""

import argparse
import json
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import Clock, best_ms, full_size_args, run_fresh, save_report  # noqa: E402
from modeling.memory import peak_rss_mib  # noqa: E402


def build(impl, dtype, n_layer):
    from modeling import SantaCoderConfig, SantaCoderForCausalLM

    cfg = SantaCoderConfig(n_layer=n_layer)
    if impl == "ours":
        return SantaCoderForCausalLM.from_config(cfg, dtype=dtype)
    from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM

    hf_cfg = GPTBigCodeConfig(**{k: v for k, v in cfg.to_dict().items() if k in GPTBigCodeConfig().to_dict()})
    hf_cfg._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = GPTBigCodeForCausalLM(hf_cfg)
    model = model.to_empty(device="cpu").to(dtype)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.empty(p.shape).normal_(0, 0.02, generator=g))
            else:
                p.fill_(1.0 if "ln" in name and name.endswith("weight") else 0.0)
        n = hf_cfg.n_positions
        model.transformer.bias = torch.tril(torch.ones(n, n, dtype=torch.bool))
    model.tie_weights()
    return model.eval()


def worker(args):
    torch.set_num_threads(args.threads)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    t0 = time.perf_counter()
    model = build(args.impl, dtype, args.layers)
    t_build = time.perf_counter() - t0
    x = torch.randint(0, 49152, (1, args.prompt), generator=torch.Generator().manual_seed(1))

    def run(n_new):
        clock = Clock()
        if args.impl == "ours":
            model.generate(x, max_new_tokens=n_new, eos_token_id=[], streamer=clock)
        else:
            model.generate(x, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False, streamer=clock,
                           pad_token_id=0)
        return clock

    def prefill():
        with torch.inference_mode():
            if args.impl == "ours":
                model(x, cache=model.new_cache(1, args.prompt + 1), last_only=True)
            else:
                model(x, use_cache=True)

    run(4)  # warm-up
    prefill_ms = best_ms(prefill, reps=3)
    decode_tps = run(args.new).decode_tok_s()
    return dict(impl=args.impl, dtype=args.dtype, threads=args.threads, layers=args.layers,
                prompt=args.prompt, new=args.new, prefill_ms=round(prefill_ms, 1),
                decode_tok_s=round(decode_tps, 2), build_s=round(t_build, 1),
                peak_rss_mib=round(peak_rss_mib()))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtypes", nargs="+", default=["bf16", "fp32"])
    p.add_argument("--impls", nargs="+", default=["ours", "transformers"])
    full_size_args(p, "model_cpu")
    p.add_argument("--impl", help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    common = ["--threads", args.threads, "--layers", args.layers, "--prompt", args.prompt, "--new", args.new]
    rows = [run_fresh(__file__, ["--impl", impl, "--dtype", dtype, *common])
            for dtype in args.dtypes for impl in args.impls]
    lines = [f"Full-size SantaCoder ({args.layers} layers, random weights), CPU, {args.threads} threads, "
             f"prompt {args.prompt} tokens, {args.new} new tokens (greedy), torch {torch.__version__}.", "",
             f"| model | dtype | decode tok/s | prefill {args.prompt} ms | peak RSS MiB | decode vs transformers |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        base = next((b for b in rows if b["impl"] == "transformers" and b["dtype"] == r["dtype"]), None)
        ratio = f"{r['decode_tok_s'] / base['decode_tok_s']:.2f}x" if base else "-"
        lines.append(f"| {r['impl']} | {r['dtype']} | {r['decode_tok_s']} | {r['prefill_ms']} | "
                     f"{r['peak_rss_mib']} | {ratio} |")
    save_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
