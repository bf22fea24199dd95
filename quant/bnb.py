"""bitsandbytes scheme: LLM.int8 (Linear8bitLt) and NF4/FP4 (Linear4bit), with bnb's own state-dict keys.

Imported only when method="bnb" is asked for, so bitsandbytes stays an optional extra.
bitsandbytes' CPU 4-bit forward in eval mode rewrites the quantization state in place (absmax,
nested absmax): a state dict taken afterwards no longer matches the weights. Bnb4bitLinear
therefore refuses to be saved once it has run such a forward; save right after quantizing.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .linear import QuantLinear, dense_weight

try:
    import bitsandbytes as bnb
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError('method="bnb" needs bitsandbytes: pip install -e ".[bnb]" in this project\'s folder') from e


INT8_THRESHOLD = 6.0  # LLM.int8 outlier threshold (bnb's and transformers' default)
# bnb layers are not captured in CUDA graphs (their forwards branch on host-side state, and LLM.int8
# splits outliers by value): with them the static decode step runs eagerly.


class Bnb8bitLinear(bnb.nn.Linear8bitLt, QuantLinear):
    """LLM.int8: int8 weights with one absmax scale per output row (bnb's `SCB`)."""

    graph_safe = False

    @classmethod
    def from_linear(cls, linear: nn.Linear, threshold: float = INT8_THRESHOLD):
        w = dense_weight(linear)
        m = cls(w.shape[1], w.shape[0], bias=linear.bias is not None, has_fp16_weights=False, threshold=threshold)
        m.weight = bnb.nn.Int8Params(w.float().clone(), requires_grad=False, has_fp16_weights=False)
        if linear.bias is not None:
            m.bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        return m.to(w.device)  # bnb quantizes on .to()

    def dequantize(self, dtype=torch.float32):
        scb = self.weight.SCB if self.weight.SCB is not None else self.state.SCB  # bnb moves it at first forward
        return (self.weight.data.float() * scb.float()[:, None] / 127).to(dtype)


class Bnb4bitLinear(bnb.nn.Linear4bit, QuantLinear):
    """NF4 or FP4 with bnb's blockwise absmax (block 64) and double quantization of the absmax."""

    graph_safe = False

    @classmethod
    def from_linear(cls, linear: nn.Linear, quant_type: str = "nf4", compute_dtype=torch.bfloat16):
        if quant_type not in ("nf4", "fp4"):
            raise ValueError(f"bnb 4-bit quant_type={quant_type!r} is not supported; use nf4 or fp4")
        w = dense_weight(linear)
        m = cls(w.shape[1], w.shape[0], bias=linear.bias is not None, compute_dtype=compute_dtype,
                quant_type=quant_type)
        m.weight = bnb.nn.Params4bit(w.float().clone(), requires_grad=False, quant_type=quant_type)
        if linear.bias is not None:
            m.bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        m.ran_eval_on_cpu = False
        return m.to(w.device)

    def dequantize(self, dtype=torch.float32):
        return bnb.functional.dequantize_4bit(self.weight.data, self.weight.quant_state).to(dtype)

    def forward(self, x):
        if not self.training and x.device.type == "cpu":
            self.ran_eval_on_cpu = True
        return super().forward(x)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        if getattr(self, "ran_eval_on_cpu", False):
            raise RuntimeError(
                f"{prefix.rstrip('.') or 'Bnb4bitLinear'}: bitsandbytes' CPU 4-bit forward in eval mode has rewritten "
                f"this layer's quantization state, so saving it now would write corrupted weights; "
                f"save right after quantizing, before running the model"
            )
        super()._save_to_state_dict(destination, prefix, keep_vars)


def bnb_module_from_tensors(bits: int, in_features: int, out_features: int, tensors: dict, compute_dtype,
                            quant_type: str = "nf4", device="cpu"):
    """A bnb layer rebuilt from its saved state (keys relative to the module: weight, bias, SCB or weight.*)."""
    bias = tensors.get("bias")
    with torch.device("meta"):  # no fp weight is allocated: the quantized tensors are assigned below
        m = (Bnb8bitLinear(in_features, out_features, bias=bias is not None, has_fp16_weights=False,
                           threshold=INT8_THRESHOLD) if bits == 8 else
             Bnb4bitLinear(in_features, out_features, bias=bias is not None, compute_dtype=compute_dtype,
                           quant_type=quant_type))
    if bits == 8:
        w = bnb.nn.Int8Params(tensors["weight"].to(device), requires_grad=False, has_fp16_weights=False)
        w.CB, w.SCB = w.data, tensors["SCB"].to(device)  # what Int8Params holds after quantizing
        m.weight = w
    else:
        stats = {k[len("weight."):]: v for k, v in tensors.items() if k.startswith("weight.")}
        m.weight = bnb.nn.Params4bit.from_prequantized(tensors["weight"], stats, requires_grad=False, device=device,
                                                       module=m)
        m.ran_eval_on_cpu = False
    if bias is not None:
        m.bias = nn.Parameter(bias.to(device), requires_grad=False)
    return m
