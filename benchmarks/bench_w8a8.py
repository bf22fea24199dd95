"""Quality of int8 activations through fbgemm's dynamic int8 Linear (torch.ops.quantized.linear_dynamic), the
fast CPU route bench_linear.py --stream measures: perplexity of the trained fixture on held-out code with
int8 per-channel weights (RTN), weight-only (our kernel) against the same codes with activations quantized
by fbgemm per tensor (as it runs a prompt) and per token (as it runs decode, one row at a time).

    python benchmarks/bench_w8a8.py
"""

import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import calibration_data as cd  # noqa: E402
from modeling import SantaCoderForCausalLM  # noqa: E402
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


def int8_model(per_token=None):
    m = quantize_(SantaCoderForCausalLM.from_pretrained(TINY, dtype="bf16"), QuantConfig(method="rtn", bits=8))
    if per_token is not None:
        for layer in m.modules():
            if isinstance(layer, GPTQLinear):
                layer.forward = dynamic_forward(layer, per_token)
    return m


def main():
    torch.set_num_threads(2)
    fp = SantaCoderForCausalLM.from_pretrained(TINY, dtype="bf16")
    held = cd.eval_blocks(fp.tokenizer, "heldout", 256)[:4]  # per token runs row by row: 4 blocks of 256
    base = perplexity(fp, held)
    print(f"bf16 perplexity {base:.4f} on {held.numel()} held-out tokens")
    for name, per_token in (("int8 weight-only", None), ("int8 W8A8 per tensor", False), ("int8 W8A8 per token", True)):
        ppl = perplexity(int8_model(per_token), held)
        print(f"{name:22s} {ppl:.4f}  {100 * (ppl / base - 1):+.2f}%")


if __name__ == "__main__":
    main()
