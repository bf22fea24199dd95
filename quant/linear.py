"""QuantLinear: the contract every quantized Linear follows, and the GPTQ-format int4/int8 scheme.

Contract: `from_linear(linear, ...)` (round-to-nearest) or `from_codes(...)` (what GPTQ produces),
`forward(x)`, `dequantize()` -> fp weight [out, in], `extra_repr()`, and the Linear's bias kept.

GPTQLinear's state dict is the GPTQ v1 tensors (qweight, qzeros, scales, g_idx, bias), exactly
what goes on disk. `prepare()` picks a backend for the device and activation dtype (quant/backends.py:
torch's CPU int4 / int8 kernels, the CUDA ones, or dequantizing on the fly) and builds its layout
once. Layouts that give the codes back let qweight be dropped after prepare(); it is rebuilt for the
state dict. Long prompts (from DEQUANT_MIN_ROWS tokens on the CPU kernels) are dequantized once into a
shared scratch buffer and multiplied with one GEMM instead. Act-order checkpoints (g_idx not grouped in
order) are handled by permuting the input columns once at prepare time; the forward pass then permutes
x the same way.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import backends
from .backends import (DEQUANT_MIN_ROWS, DEQUANT_MIN_ROWS_FP32, Codes,  # noqa: F401
                       int4pack_cpu_block, pack_int4pack_cpu, select_backend, unpack_codes_kn, unpack_int4pack_cpu)
from .primitives import default_g_idx, dequantize_groupwise, pack_gptq, pack_rows, quantize_groupwise, unpack_gptq


def dense_weight(linear: nn.Linear) -> torch.Tensor:
    w = linear.weight.detach()
    return w.to_dense() if w.is_mkldnn else w


class QuantLinear(nn.Module):
    """Base class: a weight-only quantized replacement for nn.Linear (bias kept)."""

    in_features: int
    out_features: int
    graph_safe = True  # its CUDA forward can be captured in a CUDA graph (modeling/decode.py)

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
        self.backend = self.perm = None  # set by prepare()

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
    def from_linear(cls, linear: nn.Linear, bits: int = 4, group_size: int = 128, sym: bool = True, name: str = "",
                    clip: bool = False):
        """Round-to-nearest quantization of an nn.Linear (clip: each group's range searched, unweighted)."""
        w = dense_weight(linear)
        if group_size != -1 and w.shape[1] % group_size:
            raise ValueError(f"{name or 'linear'}: in_features={w.shape[1]} is not divisible by group_size={group_size}")
        q, scales, zeros = quantize_groupwise(w, bits, group_size, sym, clip=clip)
        return cls.from_codes(q, scales, zeros, default_g_idx(w.shape[1], group_size, w.device), bits, group_size,
                              linear.bias)

    def codes(self):
        """(q [out, in], scales fp32 [out, groups], zeros int32 [out, groups], g_idx [in])."""
        q, scales, zeros, g_idx = unpack_gptq(self.qweight, self.qzeros, self.scales, self.g_idx, self.bits)
        if q is None:  # qweight was dropped by prepare(): the kernel layout holds the codes
            q = self._codes_from_kernel()
        return q, scales, zeros, g_idx

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        q, scales, zeros, g_idx = self.codes()
        return dequantize_groupwise(q, scales, zeros, g_idx=g_idx, dtype=dtype)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
                f"group_size={self.group_size}, bias={self.bias is not None}, kernel={self.kernel}")

    # -- kernels -----------------------------------------------------------------------------------
    @property
    def kernel(self) -> str | None:
        return None if self.backend is None else self.backend.name

    @property
    def graph_safe(self) -> bool:
        return self.backend is None or self.backend.graph_safe

    def prepare(self, dtype: torch.dtype):
        """Build the backend (quant/backends.py) for this module's device and the activation dtype; once, at load.

        When the backend's layout holds the codes, qweight is dropped (it would double the memory) and
        rebuilt from that layout when the state dict is asked for.
        """
        N, K = self.out_features, self.in_features
        _, scales, zeros, g_idx = unpack_gptq(None, self.qzeros, self.scales, self.g_idx, self.bits)  # small
        perm = None
        if not bool((g_idx[1:] >= g_idx[:-1]).all()):  # act-order: sort columns by group
            perm = torch.argsort(g_idx, stable=True)
            g_idx = g_idx[perm]
        # re-preparing after qweight was dropped: the codes come back from the previous backend's layout
        whole = self._codes_from_kernel().t().to(torch.uint8) if self.qweight is None else None

        def kn(n0=0, n1=None):  # uint8 (K, n1 - n0): output columns n0..n1, input rows in kernel order
            c = whole[:, n0:n1] if whole is not None else unpack_codes_kn(self.qweight[:, n0:n1], self.bits, K)
            return c if perm is None else c[perm]

        codes = Codes(N, K, self.bits, scales, zeros, kn)
        dev = self.scales.device
        uniform = bool(torch.equal(g_idx.long(), torch.arange(K, device=g_idx.device) // codes.group_size))
        cls = select_backend(codes, dev, dtype, uniform)
        self.backend = None  # the old layout goes before the new one is built
        try:
            backend = cls(codes, dtype, self)
        except BaseException:  # out of memory, Ctrl-C: the codes stay in qweight, not lost with the old layout
            if whole is not None:
                self.qweight = pack_rows(whole, self.bits)
            raise
        if not backend.readable and whole is not None:  # re-prepared for a layout that cannot give the codes back
            self.qweight = pack_rows(whole, self.bits)  # whole is in the original column order
        self.backend, self.perm, self.act_dtype, self.prepared_on = backend, perm, dtype, dev
        self.bias_c = None if self.bias is None else self.bias.to(dtype)
        self.bias_f = None if self.bias is None else self.bias.float()  # for kernels that add it (fused)
        # long prompts: one GEMM in the activation dtype, or in fp32 where this CPU has no fast bf16 GEMM
        self.gemm_dtype = torch.float32 if dev.type == "cpu" and not backends.cpu_bf16_gemm_fast() else dtype
        self.bias_g = None if self.bias is None else self.bias.to(self.gemm_dtype)
        small = N * K <= backends.DEQUANT_MAX_WEIGHTS  # the lm_head's scratch would be 200 MB
        self.gemm_from_rows = backend.long_rows(self.gemm_dtype != dtype) if small else float("inf")
        if backend.readable:
            self.qweight = None  # rebuilt from the backend's layout by codes() and state_dict()
        return self

    def _apply(self, fn, recurse=True):
        """.to(), .cuda(), .half() ...: the GPTQ tensors keep their dtypes (fp16 scales and bias, as stored),
        and a backend whose buffers changed device or dtype is rebuilt for the new device from its codes."""
        stored = {k: getattr(self, k) for k in ("scales", "bias") if getattr(self, k) is not None}
        layout = {k: (v.device, v.dtype) for k, v in self.backend.named_buffers()} if self.backend is not None else {}
        super()._apply(fn, recurse)
        for k, v in stored.items():
            if getattr(self, k).dtype != v.dtype:  # cast back from the original values, not from the cast ones
                setattr(self, k, v.to(getattr(self, k).device))
        if self.backend is not None:
            now = {k: (v.device, v.dtype) for k, v in self.backend.named_buffers()}
            if now != layout or self.scales.device != self.prepared_on:
                self.prepare(self.act_dtype)
        return self

    def _codes_from_kernel(self, n0: int = 0, n1: int | None = None) -> torch.Tensor:
        """Codes int32 [n1 - n0, in] of output rows n0..n1 (all by default), in the original column order,
        read back from the backend's layout (n0 and n1 multiples of int4pack_cpu_block() for cpu-int4)."""
        n1 = self.out_features if n1 is None else min(n1, self.out_features)
        q = self.backend.codes(n0, n1)  # perm may still be on the old device inside .to()
        return q if self.perm is None else q[:, torch.argsort(self.perm).to(q.device)]

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.qweight is None:  # rebuilt in column chunks: bounded temporaries even for the lm_head
            qweight = torch.empty(self.in_features * self.bits // 32, self.out_features, dtype=torch.int32,
                                  device=self.scales.device)
            step = backends.BUILD_CHUNK
            for n0 in range(0, self.out_features, step):
                chunk = self._codes_from_kernel(n0, n0 + step)
                qweight[:, n0:n0 + chunk.shape[0]] = pack_rows(chunk.t(), self.bits)
            destination[prefix + "qweight"] = qweight

    def forward(self, x):
        if self.backend is None:
            self.prepare(x.dtype)
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        if self.perm is not None:
            x = x[:, self.perm]
        if x.shape[0] >= self.gemm_from_rows:  # many tokens: dequantize once, then one GEMM (faster than the kernel)
            if self.backend.long_bias:  # the bias added by the GEMM, not by another pass over its output
                y = self.backend.long_forward(x.to(self.gemm_dtype), self.bias_g).to(self.act_dtype)
                return y.reshape(*shape[:-1], self.out_features)
            y = self.backend.long_forward(x.to(self.gemm_dtype))
        elif self.backend.fused:  # our CPU kernels (fp32 or bf16 activations) add the bias and write act_dtype
            y = self.backend.forward_biased(x.to(self.act_dtype), self.bias_f, self.act_dtype)
            return y.reshape(*shape[:-1], self.out_features)
        else:
            y = self.backend.forward(x.to(self.act_dtype))  # not __call__: no hook machinery per token
        y = y.to(self.act_dtype)
        if self.bias_c is not None:
            y = y + self.bias_c
        return y.reshape(*shape[:-1], self.out_features)
