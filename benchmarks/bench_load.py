"""Loading quantized folders of the full-size SantaCoder (random weights, RTN): folder size, load time,
and peak RSS of load + a 64-token generation, each in a fresh process.

The folders are written once into --workdir (kept between runs). Targets: int4 load <= 2 s
and peak RSS <= 1.2 x folder size + 300 MB.

    python benchmarks/bench_load.py                   # -> benchmarks/results/load_cpu.md
"""

import argparse
import json
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import decode_tok_s, full_size_args, run_fresh, save_report  # noqa: E402

VARIANTS = {  # name -> QuantConfig kwargs (None = the bf16 checkpoint itself)
    "bf16": None,
    "int8": dict(method="rtn", bits=8, group_size=-1, lm_head=False),
    "int4-g128+head": dict(method="rtn", bits=4, group_size=128, lm_head=True),
    "int4-g128": dict(method="rtn", bits=4, group_size=128, lm_head=False),
}
TOKENIZER = os.path.join(ROOT, "tests", "fixtures", "tiny-santacoder")  # any tokenizer: ids are random


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def make_folder(variant, path, layers):
    """Write the variant's folder in a separate process (its memory must not count)."""
    from modeling import SantaCoderConfig, SantaCoderForCausalLM
    from quant import QuantConfig, quantize_

    model = SantaCoderForCausalLM.from_config(SantaCoderConfig(n_layer=layers), dtype=torch.bfloat16)
    if VARIANTS[variant] is not None:
        quantize_(model, QuantConfig(**VARIANTS[variant]))
    model.source = TOKENIZER
    model.save_pretrained(path)


def worker(args):
    from modeling.memory import peak_rss_mib

    torch.set_num_threads(args.threads)
    base = peak_rss_mib()  # python + torch, before anything is loaded
    from modeling import SantaCoderForCausalLM

    t = time.perf_counter()
    model = SantaCoderForCausalLM.from_pretrained(args.path)
    t_load = time.perf_counter() - t
    load_peak = peak_rss_mib()
    tps = decode_tok_s(model, torch.randint(0, 2000, (1, 16)), 64)
    return dict(variant=args.variant, folder_mb=round(folder_bytes(args.path) / 1e6), load_s=round(t_load, 2),
                base_rss_mib=round(base), load_peak_rss_mib=round(load_peak), peak_rss_mib=round(peak_rss_mib()),
                decode_tok_s=round(tps, 1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    full_size_args(p, "load_cpu", generation=False)
    p.add_argument("--workdir", default=os.path.join(ROOT, "benchmarks", "results", "folders"))
    p.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.make:
        make_folder(args.variant, args.path, args.layers)
        print(json.dumps({}))
        return
    if args.worker:
        print(json.dumps(worker(args)))
        return
    rows = []
    for v in args.variants:
        path = os.path.join(args.workdir, f"{v}-{args.layers}l")
        if not os.path.exists(path):
            run_fresh(__file__, ["--make", "--variant", v, "--path", path, "--layers", args.layers])
        rows.append(run_fresh(__file__, ["--variant", v, "--path", path, "--threads", args.threads]))
    lines = [f"Full-size SantaCoder ({args.layers} layers, random weights, RTN), CPU, {args.threads} threads, "
             f"each load in a fresh process (files in the page cache), torch {torch.__version__}. Peak RSS is the "
             f"whole process (python + torch alone: {rows[0]['base_rss_mib']} MiB).", "",
             "| variant | folder MB | load s | peak RSS after load MiB | peak RSS load + 64 tokens MiB | "
             "target 1.2 x folder + 300 MB | decode tok/s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        target = (1.2 * r["folder_mb"] * 1e6 + 300e6) / 2**20
        lines.append(f"| {r['variant']} | {r['folder_mb']} | {r['load_s']} | {r['load_peak_rss_mib']} | "
                     f"{r['peak_rss_mib']} | {target:.0f} MiB | {r['decode_tok_s']} |")
    save_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
