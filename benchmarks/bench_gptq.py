"""Quantization quality on the small trained SantaCoder (tests/fixtures/tiny-santacoder): perplexity
on the bundled held-out code, plain and in FIM form, for RTN and GPTQ at int4/int8, and the time
GPTQ takes per block of the full-size model (random weights; values do not change the time).

    python benchmarks/bench_gptq.py                  # -> benchmarks/results/gptq_quality.md
    python benchmarks/bench_gptq.py --skip-full-size
    python benchmarks/bench_gptq.py --lm-head-seeds 4   # -> benchmarks/results/gptq_lm_head.md
    python benchmarks/bench_gptq.py --settings-seeds 4  # -> benchmarks/results/gptq_seeds.md
    python benchmarks/bench_gptq.py --linears-seeds 4   # -> benchmarks/results/gptq_linears.md (one Linear at a time)
    python benchmarks/bench_gptq.py --full-size-only [--kernels-ab 2 | --replay-ab 2]   # one full-size block; with
        # --kernels-ab, N pairs of runs alternating our C++ GPTQ kernels (AMX Hessians, column loop) on and off; with
        # --replay-ab, the attention and the MLP replayed through their c_proj (quant.gptq.ENDS_IN) on and off
"""

import argparse
import os
import sys
import time

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # as quantize.py runs GPTQ (huge pages); =0 to compare without

import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import calibration_data as cd  # noqa: E402
from benchmarks.common import save_report  # noqa: E402
from modeling import SantaCoderConfig, SantaCoderForCausalLM  # noqa: E402
from quant import QuantConfig, quantize_  # noqa: E402
from quant.config import BLOCK_LINEARS  # noqa: E402
from quant.evaluate import perplexity  # noqa: E402

TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-santacoder")
VARIANTS = {  # name -> (QuantConfig kwargs, calibration FIM rate); lm_head quantized (int4) unless noted
    "rtn int4 g128": (dict(method="rtn", bits=4, clip=False), None),
    "rtn int4 g128 + clip search (RTN default)": (dict(method="rtn", bits=4), None),
    "gptq int4 g128 (default: group-aware + clip search)": (dict(method="gptq", bits=4), 0.5),
    "gptq int4 g128, no FIM in calibration": (dict(method="gptq", bits=4), 0.0),
    "gptq int4 g128, columns in stored order, no clip search": (dict(method="gptq", bits=4, order="columns",
                                                                      clip=False), 0.5),
    "gptq int4 g128 act-order, no clip search": (dict(method="gptq", bits=4, act_order=True, clip=False), 0.5),
    "gptq int4 g128, lm_head bf16": (dict(method="gptq", bits=4, lm_head=False), 0.5),
    "gptq int4 g128, lm_head int8": (dict(method="gptq", bits=4, lm_head_bits=8), 0.5),
    "rtn int8": (dict(method="rtn", bits=8, group_size=-1), None),
    "gptq int8": (dict(method="gptq", bits=8, group_size=-1), 0.5),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-samples", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-full-size", action="store_true")
    p.add_argument("--full-size-only", action="store_true", help="print the full-size timing, write no report")
    p.add_argument("--kernels-ab", type=int, default=0, metavar="N",
                   help="with --full-size-only: N pairs of runs, our C++ GPTQ kernels on / off (quant.gptq.CPP)")
    p.add_argument("--replay-ab", type=int, default=0, metavar="N",
                   help="with --full-size-only: N pairs of runs, modules replayed through their c_proj on / off")
    p.add_argument("--lm-head-seeds", type=int, default=0, metavar="N",
                   help="only the lm_head settings over N calibration seeds (fp32, no FIM, 128 x 512 tokens)")
    p.add_argument("--settings-seeds", type=int, default=0, metavar="N",
                   help="the block settings of SETTINGS over N calibration seeds (fp32, no FIM, lm_head not quantized)")
    p.add_argument("--linears-seeds", type=int, default=0, metavar="N",
                   help="the default GPTQ of one kind of block Linear at a time (the others unquantized) over N seeds")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gptq_quality"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.full_size_only:
        from quant import gptq

        ends = dict(gptq.ENDS_IN)
        for on in [True, False] * (args.kernels_ab or args.replay_ab) or [True]:
            what = "replay through c_proj" if args.replay_ab else "our GPTQ kernels"
            if args.replay_ab:
                gptq.ENDS_IN = ends if on else {}
            else:
                gptq.CPP = on
            secs, head, rss, _ = full_size_block_seconds(args)
            print(f"{what} {'on ' if on else 'off'}: block {secs:.1f} s, lm_head {head:.1f} s, "
                  f"peak RSS so far {rss:.2f} GB", flush=True)
        return
    if args.lm_head_seeds:
        seeds_table(args, LM_HEAD, "the blocks' default settings, the lm_head as the row says", "gptq_lm_head",
                    "not quantized")
        return
    if args.settings_seeds:
        seeds_table(args, {k: dict(lm_head=False, **kw) for k, kw in SETTINGS.items()},
                    "the lm_head not quantized, the blocks' settings as the row says", "gptq_seeds", None)
        return
    if args.linears_seeds:
        rows = {"all four (the default)": {}, **{f"`{m}` only": dict(modules=(m,)) for m in BLOCK_LINEARS}}
        seeds_table(args, {k: dict(lm_head=False, **kw) for k, kw in rows.items()},
                    "the lm_head not quantized, the default GPTQ of the block Linears the row names (the others fp32)",
                    "gptq_linears", None)
        return
    base = SantaCoderForCausalLM.from_pretrained(TINY, dtype=torch.bfloat16)
    tok = base.tokenizer
    code, fim = cd.eval_blocks(tok, "heldout", args.seq_len), cd.eval_blocks(tok, "heldout", args.seq_len, fim_rate=1.0)
    ref = {"code": perplexity(base, code), "fim": perplexity(base, fim)}
    rows = [dict(variant="bf16", code_ppl=ref["code"], fim_ppl=ref["fim"], seconds=0.0)]
    for name, (kw, fim_rate) in VARIANTS.items():
        model = SantaCoderForCausalLM.from_pretrained(TINY, dtype=torch.bfloat16)
        cal = None if fim_rate is None else cd.calibration_blocks(tok, "bundled", args.n_samples, args.seq_len,
                                                                  fim_rate=fim_rate)
        t = time.perf_counter()
        quantize_(model, QuantConfig(**kw), calibration=cal)
        rows.append(dict(variant=name, code_ppl=perplexity(model, code), fim_ppl=perplexity(model, fim),
                         seconds=time.perf_counter() - t))
        print(rows[-1], file=sys.stderr)
    lines = [f"Small trained SantaCoder ({TINY.split(os.sep)[-1]}), bf16, {code.numel()} held-out tokens "
             f"({args.seq_len}-token blocks), GPTQ calibrated on {args.n_samples} x {args.seq_len} tokens of the "
             f"bundled corpus (half of the documents in FIM form unless noted), torch {torch.__version__}.", "",
             "| variant | held-out ppl | delta | held-out FIM ppl | delta | quantize s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['code_ppl']:.3f} | {100 * (r['code_ppl'] / ref['code'] - 1):+.2f}% | "
                     f"{r['fim_ppl']:.3f} | {100 * (r['fim_ppl'] / ref['fim'] - 1):+.2f}% | {r['seconds']:.1f} |")
    if not args.skip_full_size:
        secs, head, rss, model_gb = full_size_block_seconds(args)
        rows.append(dict(variant="full-size block", seconds=secs, lm_head_seconds=head, peak_rss_gb=rss))
        full_gb = 2 * bf16_params(SantaCoderConfig()) / 1e9  # bf16 weights of the 1.1B model
        lines += ["", f"GPTQ int4 g128 (defaults: group-aware + clip search, lm_head too) on one block of the full-size "
                      f"model ({args.n_samples} x {args.seq_len} calibration tokens, {args.threads} CPU threads): "
                      f"{secs:.0f} s per block and {head:.0f} s for the lm_head, so about "
                      f"{(24 * secs + head) / 60:.0f} min for the whole model. Peak RSS of that run {rss:.2f} GB with "
                      f"{model_gb:.2f} GB of weights: for the whole model about {full_gb + rss - model_gb:.1f} GB "
                      f"({rss - model_gb:.1f} GB over its {full_gb:.1f} GB of bf16 weights)."]
    save_report(args.out, lines, rows)


LM_HEAD = {"not quantized": dict(lm_head=False), "int4 g128 (default)": {},
           "int4 g32 (--lm-head-group-size 32)": dict(lm_head_group_size=32), "int8 (--lm-head-bits 8)": dict(lm_head_bits=8)}
SETTINGS = {"default (group-aware + clip search)": {}, "order auto (per Linear)": dict(order="auto"),
            "act-order + clip search": dict(order="act-order"), "columns + clip search": dict(order="columns"),
            "group-aware, no clip search": dict(clip=False), "damp 0.001": dict(damp_percent=0.001),
            "damp 0.05": dict(damp_percent=0.05), "damp 0.1": dict(damp_percent=0.1),
            "asymmetric (`--asym`) + clip search": dict(sym=False)}


def seeds_table(args, rows: dict, what: str, out: str, baseline: str | None):
    """Perplexity delta on the fixture per calibration seed for each row's QuantConfig kwargs: GPTQ int4 g128 in fp32
    (the setting of test_default_int4_is_under_gptqmodels_default_on_the_fixture), 128 x 512 tokens, no FIM."""
    base = SantaCoderForCausalLM.from_pretrained(TINY, dtype=torch.float32)
    held_out = cd.eval_blocks(base.tokenizer, "heldout", args.seq_len)
    ref = perplexity(base, held_out)
    seeds = list(range(args.lm_head_seeds or args.settings_seeds or args.linears_seeds))
    deltas = {name: [] for name in rows}
    for seed in seeds:
        cal = cd.calibration_blocks(base.tokenizer, "bundled", args.n_samples, args.seq_len, fim_rate=0.0, seed=seed)
        for name, kw in rows.items():
            model = SantaCoderForCausalLM.from_pretrained(TINY, dtype=torch.float32)
            quantize_(model, QuantConfig(method="gptq", bits=4, **kw), calibration=cal)
            deltas[name].append(100 * (perplexity(model, held_out) / ref - 1))
            print(name, seed, f"{deltas[name][-1]:+.2f}%", file=sys.stderr)
    mean = {k: sum(v) / len(v) for k, v in deltas.items()}
    lines = [f"The fixture in fp32, GPTQ int4 g128 on {args.n_samples} x {args.seq_len} tokens of the bundled corpus without "
             f"FIM per calibration seed, {what}; perplexity delta on {held_out.numel()} held-out tokens; torch "
             f"{torch.__version__}, {args.threads} threads.", "",
             "| setting | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |" + (" its cost (mean) |" if baseline else ""),
             "|---|" + "---|" * (len(seeds) + 1 + bool(baseline))]
    for name, v in deltas.items():
        cost = "" if not baseline else " – |" if name == baseline else f" {mean[name] - mean[baseline]:.2f} point |"
        lines.append(f"| {name} | " + " | ".join(f"{d:+.2f}%" for d in v) + f" | {mean[name]:+.2f}% |" + cost)
    save_report(os.path.join(ROOT, "benchmarks", "results", out), lines, [dict(deltas=deltas)])


def bf16_params(c) -> int:
    C, kv, inner = c.n_embd, 2 * c.n_kv_head * (c.n_embd // c.n_head), c.n_inner or 4 * c.n_embd
    block = C * (C + kv) + (C + kv) + C * C + C + 2 * C * inner + inner + C + 4 * C
    return c.n_layer * block + (c.vocab_size + c.n_positions) * C + 2 * C


def full_size_block_seconds(args):
    """Seconds for one block and for the lm_head, peak RSS (GB) and the weights' GB of that one-block model."""
    import resource

    from quant import gptq

    model = SantaCoderForCausalLM.from_config(SantaCoderConfig(n_layer=1), dtype=torch.bfloat16)
    model_gb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9
    cal = torch.randint(0, 49152, (args.n_samples, args.seq_len), generator=torch.Generator().manual_seed(0))
    head, inner = [0.0], gptq._gptq_linear

    def timed(lin, H, config, dtype, name):
        t = time.perf_counter()
        out = inner(lin, H, config, dtype, name)
        if name == "lm_head":
            head[0] = time.perf_counter() - t
        return out

    gptq._gptq_linear = timed
    t = time.perf_counter()
    quantize_(model, QuantConfig(method="gptq", bits=4), calibration=cal)
    total = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
    return total - head[0], head[0], rss, model_gb


if __name__ == "__main__":
    main()
