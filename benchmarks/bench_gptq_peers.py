"""Our GPTQ settings against GPTQModel's, side by side: the same calibration blocks, int4 group 128, lm_head
not quantized (except where the row says so), and one evaluator for every folder (our fp32 loader with
torch's kernels, so the weights alone are judged; perplexity on the bundled held-out code), on the small trained fixture and on a larger trained model.

    python benchmarks/bench_gptq_peers.py                         # -> benchmarks/results/gptq_peers.md
    python benchmarks/bench_gptq_peers.py --no-gptqmodel          # ours only
    python benchmarks/bench_gptq_peers.py --models tests/fixtures/tiny-santacoder
    python benchmarks/bench_gptq_peers.py --models tests/fixtures/tiny-santacoder --seeds 8 --rows \\
        "**ours default**: group-aware + clip search" "GPTQModel default (GAR on)" "GPTQModel desc_act" \\
        --out benchmarks/results/gptq_peers_fixture        # -> benchmarks/results/gptq_peers_fixture_seeds.md

The larger model (6 layers, width 384) is not in git; train it once (about 45 minutes on 2 cores) with
    python tests/fixtures/make_tiny_santacoder.py --out ../models/small-santacoder --n-embd 384 \\
        --n-layer 6 --n-head 6 --n-inner 1536 --seed 1 --minutes 45
GPTQModel (extra `.[interop]`) is optional: its rows are skipped when it is not installed.
"""

import argparse
import importlib.util
import os
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
import calibration_data as cd  # noqa: E402
from benchmarks.common import save_report  # noqa: E402
from modeling import SantaCoderForCausalLM  # noqa: E402
from quant import QuantConfig, quantize_  # noqa: E402
from quant.evaluate import perplexity  # noqa: E402

MODELS = [os.path.join(ROOT, "tests", "fixtures", "tiny-santacoder"), os.path.join(ROOT, "..", "models", "small-santacoder")]
OURS = {  # row name -> QuantConfig kwargs (int4 g128 throughout)
    "RTN": dict(method="rtn", clip=False),
    "RTN + clip search (default RTN)": dict(method="rtn"),
    "ours GPTQ (columns)": dict(order="columns", clip=False),
    "ours GPTQ + clip search": dict(order="columns", clip=True),
    "ours group-aware": dict(order="group-aware", clip=False),
    "**ours default**: group-aware + clip search": dict(),
    "ours act-order": dict(order="act-order", clip=False),
    "ours act-order + clip search": dict(order="act-order", clip=True),
    "ours per-layer choice (order auto)": dict(order="auto"),
    "ours default + quantized lm_head (int4 g128)": dict(lm_head=True),
    "ours default + quantized lm_head int8": dict(lm_head=True, lm_head_bits=8),
}
THEIRS = {  # row name -> GPTQModel QuantizeConfig kwargs
    "GPTQModel GPTQ (desc_act off, GAR off)": dict(desc_act=False, act_group_aware=False),
    "GPTQModel default (GAR on)": dict(),
    "GPTQModel desc_act": dict(desc_act=True, act_group_aware=False),
}


def ours(path, blocks, kw):
    model = SantaCoderForCausalLM.from_pretrained(path, dtype=torch.float32)
    t = time.perf_counter()
    quantize_(model, QuantConfig(bits=4, group_size=128, **{"lm_head": False, **kw}), calibration=blocks)
    return model, time.perf_counter() - t


def gptqmodel(path, blocks, kw, tmp):
    from gptqmodel import GPTQModel, QuantizeConfig

    t = time.perf_counter()
    model = GPTQModel.load(path, QuantizeConfig(bits=4, group_size=128, **kw), device="cpu")
    model.quantize([{"input_ids": b.tolist(), "attention_mask": [1] * len(b)} for b in blocks])
    seconds = time.perf_counter() - t
    out = os.path.join(tmp, "gptqmodel")
    model.save(out)
    del model
    return SantaCoderForCausalLM.from_pretrained(out, dtype=torch.float32), seconds


def weights_only():
    """Evaluate what the weights give: our AVX2 kernels round activations to int8 (as decode does), which costs an
    int8 or int4 lm_head most of a point on the fixture; torch's kernels dequantize for long prompts instead."""
    from modeling import ext

    ext.kernels = lambda: None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--n-samples", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--fim-rate", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rows", nargs="*", default=None, help="only these rows (names as in the table)")
    p.add_argument("--no-gptqmodel", action="store_true")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="calibration seeds 0..N-1 (another sample of the corpus each); N > 1 writes OUT_seeds.md")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gptq_peers"))
    args = p.parse_args()
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1 (got {args.seeds})")
    torch.set_num_threads(args.threads)
    weights_only()
    have_theirs = not args.no_gptqmodel and importlib.util.find_spec("gptqmodel") is not None
    models = [m for m in args.models if os.path.isdir(m)]
    for m in set(args.models) - set(models):
        print(f"skipped {m}: not found (see this script's docstring to train it)", file=sys.stderr)
    names = {}
    rows, table = [], {}
    for path in models:
        name = os.path.basename(os.path.normpath(path))
        base = SantaCoderForCausalLM.from_pretrained(path, dtype=torch.float32)
        tok = base.tokenizer
        held_out = cd.eval_blocks(tok, "heldout", args.seq_len)
        ref = perplexity(base, held_out)
        names[name] = (sum(p.numel() for p in base.parameters()), ref, held_out.numel())
        runs = [(row, "ours", kw) for row, kw in OURS.items()]
        runs += [(row, "theirs", kw) for row, kw in THEIRS.items() if have_theirs]
        runs = [run for run in runs if not args.rows or run[0] in args.rows]
        for seed in range(args.seeds):
            blocks = cd.calibration_blocks(tok, "bundled", args.n_samples, args.seq_len, fim_rate=args.fim_rate,
                                           seed=seed)
            for row, who, kw in runs:
                with tempfile.TemporaryDirectory() as tmp:
                    model, seconds = ours(path, blocks, kw) if who == "ours" else gptqmodel(path, blocks, kw, tmp)
                    ppl = perplexity(model, held_out)
                choices = getattr(model.quant_config, "choices", None) or {}
                picked = {c: sum(v == c for v in choices.values()) for c in sorted(set(choices.values()))}
                r = dict(model=name, row=row, seed=seed, ppl=ppl, delta=100 * (ppl / ref - 1), seconds=seconds,
                         choices=picked)
                rows.append(r)
                table.setdefault(row, {}).setdefault(name, []).append(r)
                print(r, file=sys.stderr)
    lines = [f"int4 group 128, GPTQ on the same {args.n_samples} x {args.seq_len}-token blocks of the bundled corpus "
             f"(FIM rate {args.fim_rate}), lm_head not quantized unless the row says so; perplexity of each folder "
             f"(weights only: torch's kernels, which dequantize for long prompts) "
             f"with our fp32 loader on the bundled held-out code, delta against the fp32 model; torch "
             f"{torch.__version__}, {args.threads} threads.", ""]
    for name, (params, ref, tokens) in names.items():
        lines.append(f"- {name}: {params / 1e6:.1f} M parameters, fp32 perplexity {ref:.3f} on {tokens} tokens")
    if args.seeds > 1:
        lines += ["", f"Calibration seeds 0-{args.seeds - 1}: delta per seed, then the mean.", "",
                  "| model | setting | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " | mean |",
                  "|---|---|" + "---|" * (args.seeds + 1)]
        for row, per in table.items():
            for n, rs in per.items():
                mean = sum(r["delta"] for r in rs) / len(rs)
                lines.append(f"| {n} | {row} | " + " | ".join(f"{r['delta']:+.2f}%" for r in rs) + f" | {mean:+.2f}% |")
        save_report(args.out + "_seeds", lines, rows)
        return
    lines += ["", "| setting | " + " | ".join(f"{n} delta ppl" for n in names) + " | quantize s |",
              "|---|" + "---|" * len(names) + "---|"]
    for row, per in table.items():
        cells = [f"{per[n][0]['delta']:+.2f}%" if n in per else "" for n in names]
        secs = " / ".join(f"{per[n][0]['seconds']:.0f}" for n in names if n in per)
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {secs} |")
    picks = [f"- {r['model']}, {r['row']}: " + ", ".join(f"{c} x{k}" for c, k in r["choices"].items())
             for r in rows if r["choices"] and "auto" in r["row"]]
    if picks:
        lines += ["", "What the per-layer choice kept (Linears per setting):", *picks]
    save_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
