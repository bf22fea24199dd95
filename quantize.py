"""Quantize a SantaCoder checkpoint into a small folder (GPTQ v1 tensors, loads with from_pretrained).

    python quantize.py bigcode/santacoder --out santacoder-int4                 # GPTQ int4 g128 (group-aware order,
                                                                                # clip search) on the bundled corpus
    python quantize.py SRC --out DST --method rtn --bits 8                      # round to nearest, no data
    python quantize.py SRC --out DST --order auto --calibration 'my/code/**/*.py' --eval
    python quantize.py SRC --out DST --method bnb --bits 4                      # bitsandbytes NF4 (extra: .[bnb])

The output is written to a temporary folder next to DST and renamed at the end: an interrupted run
leaves no half-written DST. An existing non-empty DST is only replaced with --force, and only when it is
a model folder (it has a config.json). DST may never be SRC, lie inside it or contain it. GPTQ keeps the
activations it records for a block in an unnamed temporary file in TMPDIR (up to 1.3 GB, computed, for the
full-size model and 128 x 512 tokens; gone when the process ends).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

# torch's CPU allocator asks for transparent huge pages for every tensor of 2 MB or more (Linux with THP "madvise" or
# "always"; read once, before torch allocates): GPTQ allocates and frees tensors of 16-128 MB for every batch, and
# each was faulted in anew 4 KB at a time. One full-size block (`python benchmarks/bench_gptq.py --full-size-only`,
# alternating): 35.0 / 30.6 s against 43.6 / 38.3 s, page faults 0.29-0.31 M against 3.4-3.8 M, peak RSS no higher.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import torch  # noqa: E402

from modeling.cli import ArgumentParser  # noqa: E402
from quant.config import METHODS, ORDERS, QuantConfig  # noqa: E402

DEFAULTS = QuantConfig()


def parse_args(argv=None):
    p = ArgumentParser(prog=os.path.basename(__file__), description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="SantaCoder checkpoint folder or hub id (any layout, any of the published branches)")
    p.add_argument("--out", required=True, help="destination folder")
    p.add_argument("--method", choices=METHODS, default=DEFAULTS.method)
    p.add_argument("--bits", type=int, choices=[4, 8], default=DEFAULTS.bits)
    p.add_argument("--group-size", type=int, default=None,
                   help="columns per scale; -1 = whole row (default: 128 for int4, -1 for int8)")
    p.add_argument("--asym", action="store_true", help="asymmetric (a zero point per group) instead of symmetric")
    p.add_argument("--order", choices=ORDERS, default=None,
                   help="GPTQ column order: group-aware (default: groups stay whole, g_idx static), columns, act-order "
                        "(desc_act), or auto (per Linear, the order and --clip setting with the smallest output error)")
    p.add_argument("--act-order", action="store_true", help="the same as --order act-order")
    p.add_argument("--clip", action=argparse.BooleanOptionalAction, default=DEFAULTS.clip,
                   help="search each group's range (GPTQ: weighted by the Hessian diagonal)")
    p.add_argument("--static-groups", action="store_true",
                   help="group scales from the weights before GPTQ updates them (with --act-order: groups stay in column order)")
    p.add_argument("--damp-percent", type=float, default=DEFAULTS.damp_percent)
    p.add_argument("--lm-head", action=argparse.BooleanOptionalAction, default=None,
                   help="also quantize an untied lm_head (default: on for int4)")
    p.add_argument("--lm-head-bits", type=int, choices=[4, 8], default=None,
                   help="bits of the quantized lm_head (default: --bits; 8 = per channel)")
    p.add_argument("--lm-head-group-size", type=int, default=None, metavar="N",
                   help="group size of the quantized lm_head (default: the blocks' for int4, -1 = per channel for int8)")
    p.add_argument("--calibration", default="bundled", help="bundled | folder | glob | file | hub:NAME")
    p.add_argument("--n-samples", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--fim-rate", type=float, default=0.5, help="share of calibration documents in FIM form")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval", action="store_true", help="perplexity on the bundled held-out code, before and after")
    p.add_argument("--revision", default=None, help="hub branch, e.g. mha, fim, no-fim")
    p.add_argument("--device", default="cpu", help="where GPTQ runs each block: cpu or cuda")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out folder")
    args = p.parse_args(argv)
    try:
        check_destination(args.out, args.force, args.src if os.path.isdir(args.src) else None)
    except ValueError as e:
        p.error(str(e))
    try:
        if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
            p.error("--device cuda: CUDA is not available here; use --device cpu")
    except RuntimeError:
        p.error(f"--device {args.device!r} is not a device; use cpu or cuda")
    if args.n_samples < 1 or args.seq_len < 2:
        p.error("--n-samples must be >= 1 and --seq-len >= 2")
    if not 0 <= args.fim_rate <= 1:
        p.error(f"--fim-rate {args.fim_rate} must lie in [0, 1]")
    try:
        args.config = QuantConfig(method=args.method, bits=args.bits, group_size=args.group_size, sym=not args.asym,
                                  order=args.order, act_order=args.act_order, clip=args.clip,
                                  static_groups=args.static_groups,
                                  damp_percent=args.damp_percent, lm_head=args.lm_head,
                                  lm_head_bits=args.lm_head_bits, lm_head_group_size=args.lm_head_group_size)
    except ValueError as e:
        p.error(str(e))
    return args


def overlap(a: str, b: str) -> bool:
    """Whether two paths are the same folder or one lies inside the other (symlinks resolved)."""
    a, b = os.path.realpath(a), os.path.realpath(b)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep) or b.startswith(a.rstrip(os.sep) + os.sep)


def check_destination(out: str, force: bool, src_folder: str | None):
    """Refuse, before any work, a destination that could destroy data: the source itself, a folder inside
    it or containing it (even with --force), a file, or a non-empty folder without --force or that is not a
    model folder (no config.json: --force replaces model folders only)."""
    if src_folder is not None and overlap(src_folder, out):
        raise ValueError(f"--out {out} is the source {src_folder}, inside it or contains it; "
                         f"choose another folder (the source is never replaced)")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file, not a folder")
    parent = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"--out {out}: {parent} is a file, not a folder")
    if os.path.isdir(out) and os.listdir(out):
        if not force:
            raise ValueError(f"--out {out} exists and is not empty; pass --force to replace it")
        if not os.path.exists(os.path.join(out, "config.json")):
            raise ValueError(f"--out {out} is not a model folder (no config.json); --force only replaces "
                             f"model folders, so choose an empty or new folder")


def folder_weight_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)
               if f.endswith((".safetensors", ".bin")))


def main(argv=None) -> int:
    args = parse_args(argv)
    args.saved = False
    try:
        return run(args)
    except KeyboardInterrupt:  # save_model removes its temporary folder; the source is only ever read
        what = f"{args.out} had been written" if args.saved else "nothing was written"
        print(f"\ninterrupted; {what}", file=sys.stderr)
        return 130


def run(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    import calibration_data
    from modeling import CheckpointError, ConfigError, SantaCoderForCausalLM
    from quant import quantize_
    from quant.evaluate import perplexity

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    try:
        model = SantaCoderForCausalLM.from_pretrained(args.src, revision=args.revision, dtype=torch.bfloat16)
        check_destination(args.out, args.force, model.source)  # a hub id's folder is known only now
        if model.config.quantization_config is not None:
            raise ValueError(f"{args.src} is already quantized; give the fp16/bf16/fp32 checkpoint it came from")
        params = sum(p.numel() for p in model.parameters())
        src_bytes = folder_weight_bytes(model.source)
        tok = model.tokenizer
        seq_len = min(args.seq_len, model.config.n_positions)
        blocks = None
        if args.config.method == "gptq":
            blocks = calibration_data.calibration_blocks(tok, args.calibration, args.n_samples, seq_len,
                                                         fim_rate=args.fim_rate, seed=args.seed)
        if args.eval:
            held_out = calibration_data.eval_blocks(tok, "heldout", seq_len)
            ppl_before = perplexity(model, held_out)
        t1 = time.perf_counter()
        quantize_(model, args.config, calibration=blocks, device=args.device)
        t_quant = time.perf_counter() - t1
        model.save_pretrained(args.out)  # before any forward: bnb's CPU 4-bit forward alters what it would save
        args.saved = True
        if args.eval:
            ppl_after = perplexity(model, held_out)
    except (CheckpointError, ConfigError, ValueError, RuntimeError, ImportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out_bytes = folder_weight_bytes(args.out)
    c = args.config
    if c.method == "gptq":
        setting = " auto (order and clip search chosen per layer)" if c.order == "auto" else \
            f" {c.order}{' + clip search' if c.clip else ''}"
    else:
        setting = " clip search" if c.clip and c.method == "rtn" else ""
    what = f"{c.method} int{c.bits} group {c.group_size}{setting}{' asym' if not c.sym else ''}" \
           f"{f' +lm_head int{c.lm_head_bits} group {c.lm_head_group_size}' if c.lm_head else ''}"
    print(f"{what}: {args.out}\n"
          f"  weights {src_bytes / 1e6:.1f} MB -> {out_bytes / 1e6:.1f} MB ({out_bytes / params:.2f} bytes/parameter, "
          f"{src_bytes / out_bytes:.1f}x smaller)\n"
          f"  time {time.perf_counter() - t0:.1f} s (quantization {t_quant:.1f} s)", file=sys.stderr)
    errors = getattr(model, "quant_errors", None)
    if errors:  # GPTQ's relative output error ||WX - QX||^2 / ||WX||^2 on the calibration inputs
        blocks_err = [v for k, v in errors.items() if k != "lm_head"]
        line = f"  output error of the block Linears: median {sorted(blocks_err)[len(blocks_err) // 2]:.2e}, " \
               f"worst {max(blocks_err):.2e} ({max((k for k in errors if k != 'lm_head'), key=errors.get)})"
        if "lm_head" in errors:
            line += f"; lm_head {errors['lm_head']:.2e}"
        print(line, file=sys.stderr)
        if c.order == "auto" and c.choices:
            kept = sorted(set(c.choices.values()))
            print("  kept per Linear: " + ", ".join(f"{k} x{list(c.choices.values()).count(k)}" for k in kept),
                  file=sys.stderr)
    if args.eval:
        print(f"  perplexity on held-out code: {ppl_before:.3f} -> {ppl_after:.3f} "
              f"({100 * (ppl_after / ppl_before - 1):+.2f}%)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
