"""Full-size SantaCoder on a GPU: this project's fp16 / int8 / int4, eager and CUDA-graph decode, against
transformers' GPTBigCodeForCausalLM in fp16 and bitsandbytes NF4 / LLM.int8 through transformers.

Random weights from the 1.1B config (values do not change speed), each case in a fresh process.
Off CUDA (--device cpu) the dtype is bf16 and the static step runs eagerly. Our decode runs both ways,
interleaved in one process: the growing-cache loop ("dynamic") and the static step as a CUDA graph.
Reports decode tok/s (greedy, streamed), prefill time at two prompt lengths, time to the first token
(it includes the graph capture), peak GPU memory while generating, the weight bytes one decode step
reads and the achieved GB/s against the card's copy bandwidth measured in the same process. Then the
memory budget: the int4 model loaded from a folder under a 2 GiB cap
(torch.cuda.set_per_process_memory_fraction) generates a 2048-token context (1536 prompt + 512 new).

    python benchmarks/bench_gpu.py                  # -> benchmarks/results/gpu.md (needs CUDA)
    python benchmarks/bench_gpu.py --device cpu --layers 2 --prompt 32 --long-prompt 64 --new 8 \\
        --out /tmp/gpu_smoke                        # the script's own check on CPU (bf16, eager)
"""

import argparse
import json
import os
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.bench_model import build as build_transformers  # noqa: E402
from benchmarks.bench_quant import bytes_per_token  # noqa: E402
from benchmarks.common import Clock, best_ms, full_size_args, run_fresh, save_report  # noqa: E402
from modeling.memory import peak_memory_mib  # noqa: E402

CASES = {  # name -> (implementation, QuantConfig kwargs or bitsandbytes kind)
    "fp16": ("ours", None),
    "int8": ("ours", dict(method="rtn", bits=8, group_size=-1)),
    "int4": ("ours", dict(method="rtn", bits=4, group_size=128, lm_head=False)),
    "int4+head": ("ours", dict(method="rtn", bits=4, group_size=128, lm_head=True)),
    "transformers fp16": ("transformers", None),
    "transformers bnb nf4": ("transformers", "nf4"),
    "transformers bnb int8": ("transformers", "int8"),
}
REPS = 3  # generations per decode mode, interleaved; the fastest of each is reported
BUDGET_MIB = 2048


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth_gbs(device) -> float:
    """Bytes read + written per second by a 1 GiB device-to-device copy (best of 5)."""
    x = torch.empty(2**29, dtype=torch.float16, device=device)
    y = torch.empty_like(x)
    ms = best_ms(lambda: (y.copy_(x), sync(device)))  # each call ends synchronized: the next starts clean
    return 2 * 2**30 / ms / 1e6


def build_ours(spec, dtype, device, layers):
    from modeling import SantaCoderConfig, SantaCoderForCausalLM
    from quant import QuantConfig, quantize_

    model = SantaCoderForCausalLM.from_config(SantaCoderConfig(n_layer=layers), dtype=dtype, device=device)
    if spec is not None:
        quantize_(model, QuantConfig(**spec))
    return model


def build_hf(kind, dtype, device, layers, folder):
    """transformers' model: fp16 built in place; bitsandbytes quantizes while loading a saved fp16 copy."""
    if kind is None:
        return build_transformers("transformers", dtype, layers).to(device)
    try:
        from transformers import BitsAndBytesConfig, GPTBigCodeForCausalLM
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"skip: {e}")
    q = (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
         if kind == "nf4" else BitsAndBytesConfig(load_in_8bit=True))
    dev_map = {"": device.index or 0} if device.type == "cuda" else {"": "cpu"}
    return GPTBigCodeForCausalLM.from_pretrained(folder, quantization_config=q, device_map=dev_map, dtype=dtype).eval()


def worker(args):
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    impl, spec = CASES[args.case]
    t0 = time.perf_counter()
    if impl == "ours":
        model = build_ours(spec, dtype, device, args.layers)
    else:
        model = build_hf(spec, dtype, device, args.layers, args.hf_folder)
    t_build = time.perf_counter() - t0
    nbytes = bytes_per_token(model) if impl == "ours" else hf_bytes_per_token(model)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 49152, (1, args.prompt), generator=g).to(device)
    # ours: the growing-cache loop against the static step (a CUDA graph on CUDA, eager elsewhere)
    modes = ["dynamic", "graph" if device.type == "cuda" else "eager"] if impl == "ours" else [None]

    def generate(n_new, mode):
        clock = Clock()
        t = time.perf_counter()
        if impl == "ours":
            model.generate(x, max_new_tokens=n_new, eos_token_id=[], streamer=clock, decode=mode)
        else:
            model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n_new, min_new_tokens=n_new,
                           do_sample=False, streamer=clock, pad_token_id=0)
        return clock.decode_tok_s(), (clock.times[0] - t) * 1e3

    @torch.inference_mode()
    def prefill_ms(n):
        ids = torch.randint(0, 49152, (1, n), generator=g).to(device)
        if impl == "ours":
            fwd = lambda: model(ids, cache=model.new_cache(1, n + 1), last_only=True)  # noqa: E731
        else:
            fwd = lambda: model(ids, use_cache=True, logits_to_keep=1)  # noqa: E731  the last logits, as ours
        return round(best_ms(lambda: (fwd(), sync(device)), reps=3), 1)

    for mode in modes:
        generate(4, mode)  # warm-up (kernels, cuBLAS handles)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = {m: [] for m in modes}
    for _ in range(REPS):  # interleaved, so machine noise hits both modes alike
        for m in modes:
            runs[m].append(generate(args.new, m))
    peak = peak_memory_mib(device)
    fast = modes[-1]
    tps = {str(m): round(max(r[0] for r in runs[m]), 1) for m in modes}
    bw = copy_bandwidth_gbs(device)  # after the peak is read: its 2 GiB of buffers are not the model's
    return dict(case=args.case, dtype=str(dtype)[6:], fast_mode=fast or "-", decode_tok_s=tps,
                best_tok_s=tps[str(fast)], first_token_ms=round(min(r[1] for r in runs[fast]), 1),
                prefill_ms=prefill_ms(args.prompt), prefill_long_ms=prefill_ms(args.long_prompt), peak_mib=round(peak),
                weight_mb_per_token=round(nbytes / 1e6), achieved_gbs=round(nbytes * tps[str(fast)] / 1e9, 1),
                bandwidth_gbs=round(bw), build_s=round(t_build, 1),
                device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")


def hf_bytes_per_token(model) -> int:
    """Weights of transformers' blocks and lm_head (bnb's packed weights and their scales included)."""
    total = sum(t.numel() * t.element_size() for n, t in model.named_parameters() if ".h." in n)
    total += sum(t.numel() * t.element_size() for n, t in model.named_buffers() if ".h." in n and "bias" not in n)
    return total + model.lm_head.weight.numel() * model.lm_head.weight.element_size()


def budget_worker(args):
    """Load the int4 folder onto the GPU under a 2 GiB cap and generate a 2048-token context."""
    from modeling import SantaCoderForCausalLM

    device = torch.device(args.device)
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(BUDGET_MIB * 2**20 / total, device)
    model = SantaCoderForCausalLM.from_pretrained(args.budget_folder, device=device)
    prompt, new = args.budget_context - 512, 512
    x = torch.randint(0, 49152, (1, prompt), generator=torch.Generator().manual_seed(3)).to(device)
    clock = Clock()
    out = model.generate(x, max_new_tokens=new, eos_token_id=[], streamer=clock)
    return dict(case="int4 under a 2 GiB cap", context=out.shape[1], decode_tok_s=round(clock.decode_tok_s(), 1),
                peak_mib=round(peak_memory_mib(device)),
                peak_reserved_mib=round(torch.cuda.max_memory_reserved(device) / 2**20) if device.type == "cuda" else None)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--device", default="cuda")
    full_size_args(p, "gpu")
    p.add_argument("--long-prompt", type=int, default=2048 - 1)
    p.add_argument("--budget-context", type=int, default=2048)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--hf-folder", help=argparse.SUPPRESS)
    p.add_argument("--budget-folder", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(budget_worker(args) if args.budget_folder else worker(args)))
        return
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: --device cuda but CUDA is not available (use --device cpu for the script's own check)")
    common = ["--device", args.device, "--threads", args.threads, "--layers", args.layers, "--prompt", args.prompt,
              "--long-prompt", args.long_prompt, "--new", args.new]
    with tempfile.TemporaryDirectory() as tmp:
        if any(CASES[c][0] == "transformers" and CASES[c][1] for c in args.cases):  # bnb loads from a folder
            build_transformers("transformers", torch.float16, args.layers).save_pretrained(os.path.join(tmp, "hf"))
        rows = []
        for c in args.cases:
            row = run_fresh(__file__, ["--case", c, "--hf-folder", os.path.join(tmp, "hf"), *common], keep_going=True)
            if row:
                rows.append(dict(row, case=c))
        folder = os.path.join(tmp, "int4")
        model = build_ours(dict(method="rtn", bits=4, group_size=128, lm_head=True), torch.bfloat16, torch.device("cpu"),
                           args.layers)
        model.save_pretrained(folder)
        del model
        budget = run_fresh(__file__, ["--budget-folder", folder, "--budget-context", args.budget_context, *common],
                           keep_going=True)
    budget = budget or {"error": "skipped"}
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    base = next((r for r in rows if r["case"] == "transformers fp16"), None)
    nf4 = next((r for r in rows if r["case"] == "transformers bnb nf4"), None)
    dev = rows[0]["device"] if rows else args.device
    fast = "graph" if args.device.startswith("cuda") else "static step (eager)"
    lines = [f"Full-size SantaCoder ({args.layers} layers, random weights) on {dev}, batch 1, prompt {args.prompt}, "
             f"{args.new} new tokens (greedy), best of {REPS} interleaved runs per mode, torch {torch.__version__}; "
             f"copy bandwidth {rows[0]['bandwidth_gbs'] if rows else '?'} GB/s.", "",
             f"| case | dtype | decode tok/s, dynamic | decode tok/s, {fast} | speed-up | vs transformers | vs bnb nf4 "
             f"| first token ms | prefill {args.prompt} ms | prefill {args.long_prompt} ms | peak MiB "
             f"| weights/token MB | achieved GB/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["decode_tok_s"]
        dyn = t.get("dynamic", "-")
        speedup = f"{r['best_tok_s'] / dyn:.2f}x" if "dynamic" in t else "-"
        vs = [f"{r['best_tok_s'] / b['best_tok_s']:.2f}x" if b else "-" for b in (base, nf4)]
        lines.append(f"| {r['case']} | {r['dtype']} | {dyn} | {r['best_tok_s']} | {speedup} | {vs[0]} | {vs[1]} | "
                     f"{r['first_token_ms']} | {r['prefill_ms']} | {r['prefill_long_ms']} | {r['peak_mib']} | "
                     f"{r['weight_mb_per_token']} | {r['achieved_gbs']} ({r['achieved_gbs'] / r['bandwidth_gbs']:.0%}) |")
    cap = f"under a {BUDGET_MIB} MiB cap" if args.device.startswith("cuda") else "(no cap off CUDA; peak RSS)"
    if "error" in budget:
        lines += ["", f"Memory budget: int4 g128 + head loaded from a folder {cap} FAILED: {budget['error']}"]
    else:
        lines += ["", f"Memory budget: int4 g128 + head loaded from a folder {cap}, {budget['context']}-token "
                  f"context: peak allocated {budget['peak_mib']} MiB (reserved {budget['peak_reserved_mib']}), "
                  f"decode {budget['decode_tok_s']} tok/s."]
    lines += [f"- {r['case']} failed: {r['error']}" for r in failed]
    save_report(args.out, lines, rows + failed + [budget])


if __name__ == "__main__":
    main()
