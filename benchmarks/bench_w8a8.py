"""Quality of quantized activations: perplexity of the trained fixture on held-out code when the weight codes
are the same and only the activations change.

- our CPU kernels (avx2-int4 / avx2-int8, modeling/csrc): activations rounded to int8 per block of 32 columns,
  against torch's weight-only kernels (cpu-int4 / cpu-int8: bf16 activations), for int4 g128 and int8 per
  channel (RTN); every row goes through the kernel (the long-prompt dequantize + GEMM path is switched off);
- fbgemm's dynamic int8 Linear (torch.ops.quantized.linear_dynamic), activations quantized per tensor (as it
  runs a prompt) and per token (as it runs decode, one row at a time).

    python benchmarks/bench_w8a8.py [--blocks 16]
"""

import argparse
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import calibration_data as cd  # noqa: E402
from modeling import SantaCoderForCausalLM  # noqa: E402
from modeling import ext  # noqa: E402
from quant import GPTQLinear, QuantConfig, quantize_  # noqa: E402
from quant.evaluate import perplexity  # noqa: E402

TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-santacoder")


def dynamic_forward(layer: GPTQLinear, per_token: bool):
    """The layer's own int8 codes and scales through fbgemm's dynamic int8 Linear."""
    q, scales, _, _ = layer.codes()
    w = (q - 128).to(torch.int8)
    qw = torch._make_per_channel_quantized_tensor(w, scales[:, 0].double(), torch.zeros(len(w), dtype=torch.long), 0)
    packed = torch.ops.quantized.linear_prepack(qw, None if layer.bias is None else layer.bias.float())

    def forward(x):
        x2 = x.reshape(-1, x.shape[-1]).float()
        rows = x2.split(1) if per_token else [x2]
        y = torch.cat([torch.ops.quantized.linear_dynamic(r, packed, False) for r in rows])
        return y.to(x.dtype).reshape(*x.shape[:-1], -1)

    return forward


def quantized(bits: int, kernels: str):
    """The fixture, RTN (int4 g128 or int8 per channel), its layers on `kernels`: "ours", "torch", or fbgemm
    "per tensor" / "per token"."""
    real = ext.kernels
    if kernels != "ours":
        ext.kernels = lambda: None  # torch's own kernels are picked instead of ours
    try:
        m = quantize_(SantaCoderForCausalLM.from_pretrained(TINY, dtype="bf16"), QuantConfig(method="rtn", bits=bits))
    finally:
        ext.kernels = real
    for layer in m.modules():
        if isinstance(layer, GPTQLinear):
            layer.gemm_from_rows = float("inf")  # every row through the kernel, as decode runs
            if kernels.startswith("per "):
                layer.forward = dynamic_forward(layer, kernels == "per token")
    kinds = {layer.kernel for layer in m.modules() if isinstance(layer, GPTQLinear)}
    return m, ", ".join(sorted(k for k in kinds if k))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blocks", type=int, default=16, help="held-out blocks of 256 tokens")
    args = p.parse_args()
    torch.set_num_threads(2)
    fp = SantaCoderForCausalLM.from_pretrained(TINY, dtype="bf16")
    held = cd.eval_blocks(fp.tokenizer, "heldout", 256)[:args.blocks]
    base = perplexity(fp, held)
    print(f"bf16 perplexity {base:.4f} on {held.numel()} held-out tokens\n")
    print("| weights | activations | kernel | held-out tokens | perplexity | vs bf16 |\n|---|---|---|---|---|---|")
    cases = [(4, "torch", "bf16"), (4, "ours", "int8 per block of 32"), (8, "torch", "bf16"),
             (8, "ours", "int8 per block of 32"), (8, "per tensor", "int8 per tensor (fbgemm)"),
             (8, "per token", "int8 per token (fbgemm)")]
    for bits, kernels, acts in cases:
        if kernels == "ours" and ext.kernels() is None:
            continue
        if kernels.startswith("per "):
            held = held[:4]  # per token runs row by row: fewer blocks
            base = perplexity(fp, held)
        m, kind = quantized(bits, kernels)
        ppl = perplexity(m, held)
        weights = "int4 g128 RTN (+ head)" if bits == 4 else "int8 per channel RTN"
        print(f"| {weights} | {acts} | {kind if not kernels.startswith('per ') else 'fbgemm'} | {held.numel()} | {ppl:.4f} | "
              f"{100 * (ppl / base - 1):+.2f}% |", flush=True)


if __name__ == "__main__":
    main()
