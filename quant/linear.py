"""QuantLinear: the contract every quantized Linear follows, and the GPTQ-format int4/int8 scheme.

Contract: `from_linear(linear, ...)` (round-to-nearest) or `from_codes(...)` (what GPTQ produces),
`forward(x)`, `dequantize()` -> fp weight [out, in], `extra_repr()`, and the Linear's bias kept.

GPTQLinear's state dict is the GPTQ v1 tensors (qweight, qzeros, scales, g_idx, bias), exactly
what goes on disk. `prepare()` builds the device kernel's own layout from them, once:
- CPU int4: torch._weight_int4pack_mm_for_cpu (bf16 activations, scale and float zero per group);
- CPU int8 (symmetric, per-channel): torch._weight_int8pack_mm (bf16 activations);
- anything else: dequantize on the fly (a one-time warning says so).
Act-order checkpoints (g_idx not grouped in order) are handled by permuting the input columns
once at prepare time; the forward pass then permutes x the same way.
"""

from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from .primitives import default_g_idx, dequantize_groupwise, pack_gptq, quantize_groupwise, unpack_gptq

log = logging.getLogger(__name__)
_warned: set = set()

INT4_CPU_GROUPS = (32, 64, 128, 256)  # group sizes torch's CPU int4 kernel takes


def dense_weight(linear: nn.Linear) -> torch.Tensor:
    w = linear.weight.detach()
    return w.to_dense() if w.is_mkldnn else w


class QuantLinear(nn.Module):
    """Base class: a weight-only quantized replacement for nn.Linear (bias kept)."""

    in_features: int
    out_features: int

    def dequantize(self) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError


class GPTQLinear(QuantLinear):
    def __init__(self, in_features, out_features, bits, group_size, bias=True, device=None):
        super().__init__()
        self.in_features, self.out_features, self.bits, self.group_size = in_features, out_features, bits, group_size
        groups = 1 if group_size == -1 else in_features // group_size
        per = 32 // bits
        kw = dict(device=device)
        self.register_buffer("qweight", torch.empty(in_features // per, out_features, dtype=torch.int32, **kw))
        self.register_buffer("qzeros", torch.empty(groups, out_features // per, dtype=torch.int32, **kw))
        self.register_buffer("scales", torch.empty(groups, out_features, dtype=torch.float16, **kw))
        self.register_buffer("g_idx", torch.empty(in_features, dtype=torch.int32, **kw))
        self.register_buffer("bias", torch.empty(out_features, dtype=torch.float16, **kw) if bias else None)
        self.kernel = None  # set by prepare()

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_codes(cls, q, scales, zeros, g_idx, bits, group_size, bias=None):
        """From codes q [out, in], scales/zeros [out, groups], g_idx [in] (GPTQ's output)."""
        out_f, in_f = q.shape
        m = cls(in_f, out_f, bits, group_size, bias=bias is not None, device=q.device)
        for k, v in pack_gptq(q, scales, zeros, g_idx, bits).items():
            getattr(m, k).copy_(v)
        if bias is not None:
            m.bias.copy_(bias.detach().to(torch.float16))
        return m

    @classmethod
    def from_linear(cls, linear: nn.Linear, bits: int = 4, group_size: int = 128, sym: bool = True, name: str = ""):
        """Round-to-nearest quantization of an nn.Linear."""
        w = dense_weight(linear)
        if group_size != -1 and w.shape[1] % group_size:
            raise ValueError(f"{name or 'linear'}: in_features={w.shape[1]} is not divisible by group_size={group_size}")
        q, scales, zeros = quantize_groupwise(w, bits, group_size, sym)
        return cls.from_codes(q, scales, zeros, default_g_idx(w.shape[1], group_size, w.device), bits, group_size,
                              linear.bias)

    def codes(self):
        """(q [out, in], scales fp32 [out, groups], zeros int32 [out, groups], g_idx [in])."""
        return unpack_gptq(self.qweight, self.qzeros, self.scales, self.g_idx, self.bits)

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        q, scales, zeros, g_idx = self.codes()
        return dequantize_groupwise(q, scales, zeros, g_idx=g_idx, dtype=dtype)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
                f"group_size={self.group_size}, bias={self.bias is not None}, kernel={self.kernel}")

    # -- kernels -----------------------------------------------------------------------------------
    def prepare(self, dtype: torch.dtype):
        """Build the kernel layout for this module's device and the activation dtype; once, at load."""
        q, scales, zeros, g_idx = self.codes()
        perm = None
        if not bool((g_idx[1:] >= g_idx[:-1]).all()):  # act-order: sort columns by group
            perm = torch.argsort(g_idx, stable=True)
            q, g_idx = q[:, perm], g_idx[perm]
        self.perm = perm
        self.act_dtype = dtype
        self.bias_c = None if self.bias is None else self.bias.to(dtype)
        cpu = self.qweight.device.type == "cpu"
        gs = self.in_features // scales.shape[1]  # group width after sorting
        uniform = bool(torch.equal(g_idx.long(), torch.arange(self.in_features, device=g_idx.device) // gs))
        if cpu and dtype == torch.bfloat16 and self.bits == 4 and uniform and (gs in INT4_CPU_GROUPS or gs % 256 == 0):
            kgs = gs if gs in INT4_CPU_GROUPS else 256  # whole-row groups: repeat the row's scale per 256 columns
            rep = gs // kgs
            s = scales.repeat_interleave(rep, dim=1)
            z = zeros.repeat_interleave(rep, dim=1).float()
            # (q - z) * s == (q - 8) * s + s * (8 - z): the kernel's float-zero form
            self.sz = torch.stack([s.t(), (s * (8 - z)).t()], dim=-1).to(dtype).contiguous()  # (K/kgs, N, 2)
            self.w4 = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32).contiguous(), 1)
            self.kgs, self.kernel = kgs, "cpu-int4"
        elif cpu and dtype == torch.bfloat16 and self.bits == 8 and scales.shape[1] == 1 and bool((zeros == 128).all()):
            self.w8 = (q.to(torch.int16) - 128).to(torch.int8).contiguous()
            self.s8 = scales[:, 0].to(dtype)
            self.kernel = "cpu-int8"
        else:
            key = (self.qweight.device.type, dtype, self.bits, gs)
            if key not in _warned:
                _warned.add(key)
                log.warning("no fast kernel for %d-bit, group %d, %s activations on %s: dequantizing on the fly",
                            self.bits, gs, dtype, self.qweight.device.type)
            self.kernel = "dequantize"
        return self

    def forward(self, x):
        if self.kernel is None:
            self.prepare(x.dtype)
        shape = x.shape
        x = x.reshape(-1, shape[-1]).to(self.act_dtype)
        if self.perm is not None:
            x = x[:, self.perm]
        if self.kernel == "cpu-int4":
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.w4, self.kgs, self.sz)
        elif self.kernel == "cpu-int8":
            y = torch.ops.aten._weight_int8pack_mm(x, self.w8, self.s8)
        else:
            w = self.dequantize(self.act_dtype)
            if self.perm is not None:
                w = w[:, self.perm]
            y = F.linear(x, w)
        if self.bias_c is not None:
            y = y + self.bias_c
        return y.reshape(*shape[:-1], self.out_features)
