"""The kernels behind GPTQLinear, one small module each.

GPTQLinear's GPTQ v1 tensors (qweight, qzeros, scales, g_idx) are the one source of truth; a backend is
built from them by `GPTQLinear.prepare()` and holds only its kernel's own layout, as non-persistent
buffers (`.to()` moves them, the state dict never sees them). Each backend says when it applies
(`fits`), how it multiplies (`forward`), from how many rows long prompts are better served by
dequantizing once and one GEMM (`long_rows`, `long_forward`), and whether its layout gives the codes
back (`readable`, `codes`), which lets GPTQLinear drop qweight instead of keeping the codes twice.

    avx2-int4   our C++ kernel (modeling/csrc, built on first use): activations quantized to int8 per block of 32,
                integer dot products; in_features a multiple of 64, groups of 32 or multiples of 64 (or whole
                rows), any zero points
    avx512-int4 the same products for CPUs with AVX-512 VNNI (VPDPBUSD), and AMX tiles from 8 rows on where the CPU
                has them; its own layout (n-blocks of 16 rows); groups of a multiple of 32, out_features a multiple of 16
    avx2-int8   the same for symmetric per-channel int8
    cpu-int4    torch._weight_int4pack_mm_for_cpu, bf16 activations, groups of 32-256 (or whole rows)
    cpu-int8    torch._weight_int8pack_mm, bf16 activations, symmetric per-channel int8
    cuda-int4   torch._weight_int4pack_mm (tinygemm), bf16; tried once on the GPU first (unverified here)
    cuda-int8   torch._weight_int8pack_mm, symmetric per-channel int8; tried once first (unverified here)
    dequantize  anything else: the weight dequantized on every call (one warning per kind)

`select_backend` takes the first that fits, in that order; SANTACODER_NO_AVX512=1 turns avx512-int4 off (avx2-int4
then), SANTACODER_NO_EXT=1 all of ours
(as does a CPU without AVX2 or a machine where they do not compile: modeling/ext.py).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from modeling import ext
from modeling.cpu import MAX_SCRATCH as DEQUANT_MAX_WEIGHTS  # larger layers keep the kernel (the lm_head)
from modeling.cpu import huge_empty, linear_in_chunks
from modeling.cpu import native_bf16_gemm as cpu_bf16_gemm_fast
from modeling.cpu import scratch as _scratch

from .primitives import pack_rows

log = logging.getLogger(__name__)
_warned: set = set()

INT4_GROUPS = (32, 64, 128, 256)  # group sizes torch's int4 kernels take
# From this many rows (tokens) on, dequantize + one GEMM beats the CPU kernels, which are compute-bound with
# many rows. Measured with benchmarks/bench_linear.py --quant: torch's kernels on an AVX-512 host (native bf16
# GEMMs) and on an AVX2 one (fp32 GEMMs); ours on the AVX2 host (AMD Zen 3), where the kernel stays ahead up to
# 512 rows (int4 120.7 against 124.5 ms, int8 110.3 against 131.7 ms at 512), and on a native-bf16 host (Intel,
# AMX), where a bf16 GEMM after our int4 dequantization wins from about 32 rows (10.2 against 11.9 ms) and
# after int8's from about 16 (7.5 against 8.2 ms).
DEQUANT_MIN_ROWS = {"avx512-int4": 32, "avx2-int4": 32, "avx2-int8": 16, "cpu-int4": 128, "cpu-int8": 32, "cuda-int8": 16}  # cuda-int8: not measured (no GPU yet)
DEQUANT_MIN_ROWS_FP32 = {"avx512-int4": 1024, "avx2-int4": 1024, "avx2-int8": 1024, "cpu-int4": 128, "cpu-int8": 96}  # no fast bf16 GEMMs (AVX2)
BUILD_CHUNK = 2048  # output columns converted at a time when a kernel layout is built (bounds the temporaries)


@dataclass
class Codes:
    """What prepare() knows of a layer's stored tensors, columns sorted by group (act-order undone)."""

    out_features: int
    in_features: int
    bits: int
    scales: torch.Tensor  # fp32 [N, groups]
    zeros: torch.Tensor  # int32 [N, groups]
    kn: Callable  # kn(n0, n1) -> codes uint8 (K, n1 - n0) of output columns n0..n1, in kernel column order

    @property
    def group_size(self) -> int:  # group width after sorting
        return self.in_features // self.scales.shape[1]

    @property
    def per_channel_sym(self) -> bool:
        return self.scales.shape[1] == 1 and bool((self.zeros == 2 ** (self.bits - 1)).all())


class Backend(nn.Module):
    """Built by GPTQLinear.prepare() as cls(codes, activation dtype, the layer)."""

    name = ""
    readable = False  # the layout gives the codes back
    fused = False  # forward_biased() adds the bias and writes the activation dtype itself (our CPU kernels)
    graph_safe = True  # its CUDA forward can be captured in a CUDA graph (modeling/decode.py)
    long_bias = False  # long_forward(x, bias) adds the bias inside its GEMM

    @classmethod
    def fits(cls, c: Codes, device: torch.device, dtype: torch.dtype, uniform: bool) -> bool:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (M, K) in the kernel's column order -> (M, N) without the bias."""
        raise NotImplementedError

    def forward_biased(self, x: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """x (M, K) -> (M, N) + bias (fp32), added in fp32 and returned in `dtype` (fp32 or bf16)."""
        raise NotImplementedError

    def codes(self, n0: int, n1: int) -> torch.Tensor:
        """Codes int32 [n1 - n0, K] of output rows n0..n1 in the kernel's column order (readable backends)."""
        raise NotImplementedError

    def long_rows(self, fp32_gemm: bool) -> float:
        """Rows from which long_forward is used (inf: never)."""
        return float("inf")


class Avx2Int4(Backend):
    """Codes uint8 (N, K/2) in blocks of 32 columns: byte j of a block holds columns j (low nibble) and j + 16
    (high nibble); the stored fp16 scale s and the zero point z (uint8) per (row, group): a weight is s * (q - z)."""

    name, readable, fused, long_bias = "avx2-int4", True, True, True
    mm, dequant = "q4_mm", "q4_dequant"  # its kernels in modeling/csrc

    @classmethod
    def fits(cls, c, device, dtype, uniform):
        return device.type == "cpu" and dtype in (torch.bfloat16, torch.float32) and c.bits == 4 and uniform \
            and c.in_features % 64 == 0 and (c.group_size == 32 or c.group_size % 64 == 0) and ext.kernels() is not None

    def __init__(self, c: Codes, dtype, layer):
        super().__init__()
        N, K = c.out_features, c.in_features
        w4 = huge_empty((N, K // 2), torch.uint8)
        for n0 in range(0, N, BUILD_CHUNK):
            q = c.kn(n0, n0 + BUILD_CHUNK).t().reshape(-1, K // 32, 2, 16)
            w4[n0:n0 + BUILD_CHUNK] = (q[:, :, 0] | (q[:, :, 1] << 4)).view(-1, K // 2)
        self.register_buffer("w4", w4, persistent=False)
        self.register_buffer("s", c.scales.half().contiguous(), persistent=False)  # the folder's fp16 values, exactly
        self.register_buffer("z", c.zeros.to(torch.uint8).contiguous(), persistent=False)
        self.group = c.group_size

    def forward(self, x):
        return getattr(ext.kernels(), self.mm)(x.contiguous(), self.w4, self.s, self.z, self.group)

    def forward_biased(self, x, bias, dtype):
        return getattr(ext.kernels(), self.mm)(x.contiguous(), self.w4, self.s, self.z, self.group, bias,
                                               dtype == torch.bfloat16)

    def codes(self, n0, n1):
        b = self.w4[n0:n1].view(n1 - n0, -1, 1, 16)
        return torch.cat([b & 15, b >> 4], dim=2).view(n1 - n0, -1).to(torch.int32)

    def long_rows(self, fp32_gemm):
        return (DEQUANT_MIN_ROWS_FP32 if fp32_gemm else DEQUANT_MIN_ROWS)[self.name]

    def long_forward(self, x, bias=None):
        def fill(n0, n1, w):  # s * (q - z) rounded once to x's dtype
            getattr(ext.kernels(), self.dequant)(self.w4, self.s, self.z, self.group, n0, w)

        return linear_in_chunks(x, self.w4.shape[0], fill, bias)


class Avx512Int4(Avx2Int4):
    """For CPUs with AVX-512 VNNI, AMX tiles where they exist (modeling/csrc: q4n_mm). Codes uint8 (N, K/2) in
    n-blocks of 16 rows: per block of 32 columns, byte r * 64 + n * 4 + j holds row n's columns 4 r + j (low nibble)
    and 16 + 4 r + j (high nibble); fp16 scales and uint8 zero points (N / 16, groups, 16). The same products as
    avx2-int4 (activations int8 per block of 32, exact integer dot products) with the float sums in another order."""

    name, mm, dequant = "avx512-int4", "q4n_mm", "q4n_dequant"

    @classmethod
    def fits(cls, c, device, dtype, uniform):
        return device.type == "cpu" and dtype in (torch.bfloat16, torch.float32) and c.bits == 4 and uniform \
            and c.out_features % 16 == 0 and c.in_features % 32 == 0 and c.group_size % 32 == 0 \
            and ext.kernels() is not None and ext.kernels().avx512_vnni() \
            and os.environ.get("SANTACODER_NO_AVX512", "") in ("", "0")

    def __init__(self, c: Codes, dtype, layer):
        Backend.__init__(self)  # its own layout, not avx2-int4's
        N, K, G = c.out_features, c.in_features, c.scales.shape[1]
        w4 = huge_empty((N, K // 2), torch.uint8)
        for n0 in range(0, N, BUILD_CHUNK):  # BUILD_CHUNK: a multiple of 16
            q = c.kn(n0, n0 + BUILD_CHUNK).t()
            q = q.reshape(-1, 16, K // 32, 2, 4, 4).permute(0, 2, 3, 4, 1, 5)  # n-block, block, half, r, n, j
            w4[n0:n0 + BUILD_CHUNK] = (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(-1, K // 2)
        self.register_buffer("w4", w4, persistent=False)
        by_block = lambda t: t.reshape(N // 16, 16, G).transpose(1, 2).contiguous()  # noqa: E731
        self.register_buffer("s", by_block(c.scales.half()), persistent=False)  # the folder's fp16 values, exactly
        self.register_buffer("z", by_block(c.zeros.to(torch.uint8)), persistent=False)
        self.group = c.group_size

    def codes(self, n0, n1):
        b0, b1 = n0 // 16, -(-n1 // 16)
        K = self.w4.shape[1] * 2
        w = self.w4[b0 * 16:b1 * 16].view(b1 - b0, K // 32, 1, 4, 16, 4)
        q = torch.cat([w & 15, w >> 4], dim=2)  # n-block, block, half, r, n, j
        q = q.permute(0, 4, 1, 2, 3, 5).reshape((b1 - b0) * 16, K)
        return q[n0 - b0 * 16:n1 - b0 * 16].to(torch.int32)


class CpuInt4(Backend):
    name, readable = "cpu-int4", True

    @classmethod
    def fits(cls, c, device, dtype, uniform):
        gs = c.group_size
        return device.type == "cpu" and dtype == torch.bfloat16 and c.bits == 4 and uniform \
            and c.out_features % 16 == 0 and (gs in INT4_GROUPS or gs % 256 == 0)

    def __init__(self, c: Codes, dtype, layer):
        super().__init__()
        N, K, gs = c.out_features, c.in_features, c.group_size
        self.kgs = gs if gs in INT4_GROUPS else 256  # whole-row groups: the row's scale repeated per 256 columns
        self.register_buffer("sz", float_zero_scales(c.scales, c.zeros, gs // self.kgs, dtype), persistent=False)
        block = int4pack_cpu_block()
        # the layout can be read back (and written directly, in column chunks) when its block is known
        self.readable = bool(block) and N % block == 0
        if self.readable:
            w4 = torch.empty(N, K // 2, dtype=torch.uint8)
            for n0 in range(0, N, BUILD_CHUNK):
                w4[n0:n0 + BUILD_CHUNK] = pack_int4pack_cpu(c.kn(n0, n0 + BUILD_CHUNK))
        else:
            w4 = torch.ops.aten._convert_weight_to_int4pack_for_cpu(c.kn(0, N).t().to(torch.int32).contiguous(), 1)
        self.register_buffer("w4", w4, persistent=False)
        self.gemm_scales = None  # scale and offset per (group, column) for long prompts, made on the first one

    def forward(self, x):
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.w4, self.kgs, self.sz)

    def codes(self, n0, n1):
        return unpack_int4pack_cpu(self.w4[n0:n1], n1 - n0, self.sz.shape[0] * self.kgs)

    def long_rows(self, fp32_gemm):  # dequantizing reads the layout: only a readable one
        return (DEQUANT_MIN_ROWS_FP32 if fp32_gemm else DEQUANT_MIN_ROWS)[self.name] if self.readable else float("inf")

    def dequantized(self, dtype) -> torch.Tensor:
        """The weight (K, N) in `dtype`, written into the shared scratch buffer from the packed bytes."""
        K, N = self.sz.shape[0] * self.kgs, self.w4.shape[0]
        B = int4pack_cpu_block()  # byte (k, j) of a block of B rows holds rows j and j + B/2
        b = self.w4.view(N // B, K, B // 2).permute(1, 0, 2)
        w = _scratch(N * K, dtype).view(K, N // B, 2, B // 2)
        w[:, :, 0].copy_(b & 15)
        w[:, :, 1].copy_(b >> 4)
        if self.gemm_scales is None or self.gemm_scales[0].dtype != dtype:
            s, sz1 = self.sz[..., 0].float(), self.sz[..., 1].float()  # (K/kgs, N)
            self.gemm_scales = s[:, None].to(dtype), (sz1 - 8 * s)[:, None].to(dtype)
        s, c = self.gemm_scales
        w = w.view(K // self.kgs, self.kgs, N)
        return torch.addcmul(c, w, s, out=w).view(K, N)  # q * s + (sz1 - 8 s) = (q - 8) s + sz1

    def long_forward(self, x):
        return x @ self.dequantized(x.dtype)


class CpuInt8(Backend):
    name, readable = "cpu-int8", True
    scale_dtype = None  # the scales in the activation dtype

    @classmethod
    def fits(cls, c, device, dtype, uniform):
        return device.type == "cpu" and dtype == torch.bfloat16 and c.bits == 8 and c.per_channel_sym

    def __init__(self, c: Codes, dtype, layer):
        super().__init__()
        N, K = c.out_features, c.in_features
        w8 = huge_empty((N, K), torch.int8) if c.scales.device.type == "cpu" else \
            torch.empty(N, K, dtype=torch.int8, device=c.scales.device)
        for n0 in range(0, N, BUILD_CHUNK):
            w8[n0:n0 + BUILD_CHUNK] = (c.kn(n0, n0 + BUILD_CHUNK).t() ^ 128).view(torch.int8)  # code - 128
        self.register_buffer("w8", w8, persistent=False)
        self.register_buffer("s8", c.scales[:, 0].to(self.scale_dtype or dtype).contiguous(), persistent=False)

    def forward(self, x):
        return torch.ops.aten._weight_int8pack_mm(x, self.w8, self.s8)

    def codes(self, n0, n1):
        return self.w8[n0:n1].to(torch.int32) + 128

    def long_rows(self, fp32_gemm):
        return (DEQUANT_MIN_ROWS_FP32 if fp32_gemm else DEQUANT_MIN_ROWS)[self.name]

    def long_forward(self, x):
        return linear_in_chunks(x, self.w8.shape[0], lambda n0, n1, w: w.copy_(self.w8[n0:n1])) * self.s8


class Avx2Int8(CpuInt8):
    """cpu-int8's layout (codes - 128, int8) with fp32 scales, through our kernel."""

    name, scale_dtype, fused = "avx2-int8", torch.float32, True

    @classmethod
    def fits(cls, c, device, dtype, uniform):
        return device.type == "cpu" and dtype in (torch.bfloat16, torch.float32) and c.bits == 8 \
            and c.per_channel_sym and c.in_features % 32 == 0 and ext.kernels() is not None

    def forward(self, x):
        return ext.kernels().q8_mm(x.contiguous(), self.w8, self.s8)

    def forward_biased(self, x, bias, dtype):
        return ext.kernels().q8_mm(x.contiguous(), self.w8, self.s8, bias, dtype == torch.bfloat16)


class CudaInt4(Backend):
    """tinygemm's layout is not read back: the codes wait in host memory, as a plain attribute (.to() must
    not bring them back to the GPU)."""

    name, readable = "cuda-int4", True  # read back from the host copy

    @classmethod
    def fits(cls, c, device, dtype, uniform):
        return device.type == "cuda" and c.bits == 4 and uniform and c.group_size in INT4_GROUPS \
            and c.in_features % 1024 == 0 and c.out_features % 8 == 0 and cuda_kernel_works("int4", device)

    def __init__(self, c: Codes, dtype, layer):
        super().__init__()
        kn = c.kn(0, c.out_features)
        # tinygemm: bf16 only, codes as uint8 [N, K/2] (even column in the high nibble), 8 inner k-tiles
        self.register_buffer("w4", pack_tinygemm(kn.t()), persistent=False)
        self.register_buffer("sz", float_zero_scales(c.scales, c.zeros, 1, torch.bfloat16), persistent=False)
        self.kgs = c.group_size
        kn = kn.cpu()  # packed on the host in column chunks: pack_rows' int64 temporaries stay small and off the GPU
        self.host_qweight = torch.cat([pack_rows(kn[:, n0:n0 + BUILD_CHUNK], 4)
                                       for n0 in range(0, c.out_features, BUILD_CHUNK)], dim=1)

    def forward(self, x):
        return torch.ops.aten._weight_int4pack_mm(x.to(torch.bfloat16), self.w4, self.kgs, self.sz)

    def codes(self, n0, n1):
        K = self.sz.shape[0] * self.kgs
        return unpack_codes_kn(self.host_qweight[:, n0:n1], 4, K).t().to(torch.int32).to(self.w4.device)


class CudaInt8(CpuInt8):
    """The same layout and kernel as cpu-int8, on the GPU (fp16 or bf16 activations)."""

    name = "cuda-int8"

    @classmethod
    def fits(cls, c, device, dtype, uniform):
        return device.type == "cuda" and c.bits == 8 and c.per_channel_sym and cuda_kernel_works("int8", device)

    def long_rows(self, fp32_gemm):
        return DEQUANT_MIN_ROWS[self.name]

    def long_forward(self, x):  # the CUDA caching allocator makes a fresh buffer cheap
        return F.linear(x, self.w8.to(x.dtype)) * self.s8


class Dequantize(Backend):
    """No kernel: the weight is dequantized from the GPTQ tensors on every call. GPTQLinear keeps qweight."""

    name, graph_safe = "dequantize", False  # reads values back to the host: no CUDA graph

    @classmethod
    def fits(cls, c, device, dtype, uniform):
        key = (device.type, dtype, c.bits, c.group_size)
        if key not in _warned:
            _warned.add(key)
            log.warning("no fast kernel for %d-bit, group %d, %s activations on %s: dequantizing on the fly",
                        c.bits, c.group_size, dtype, device.type)
        return True

    def __init__(self, c: Codes, dtype, layer):
        super().__init__()
        self.layer = [layer]  # in a list: not a child module (the layer owns this backend, not the reverse)

    def forward(self, x):
        m = self.layer[0]
        w = m.dequantize(x.dtype)
        return F.linear(x, w if m.perm is None else w[:, m.perm])


BACKENDS = (Avx512Int4, Avx2Int4, Avx2Int8, CpuInt4, CpuInt8, CudaInt4, CudaInt8, Dequantize)


def select_backend(c: Codes, device: torch.device, dtype: torch.dtype, uniform: bool) -> type[Backend]:
    return next(b for b in BACKENDS if b.fits(c, device, dtype, uniform))


# -- layouts and probes ------------------------------------------------------------------------------

def unpack_codes_kn(qweight: torch.Tensor, bits: int, in_features: int) -> torch.Tensor:
    """GPTQ qweight int32 (in * bits / 32, out) -> codes uint8 (in, out), with one small temporary per nibble."""
    rows, cols = qweight.shape
    if sys.byteorder == "little":  # byte c of each int32 holds the codes of input rows per*r + c*(8/bits) ...
        b = qweight.view(torch.uint8).view(rows, cols, 4)
        if bits == 8:
            return b.transpose(1, 2).reshape(in_features, cols)
        out = torch.empty(rows, 4, 2, cols, dtype=torch.uint8, device=qweight.device)
        out[:, :, 0] = (b & 15).transpose(1, 2)  # low nibble: the even row of the pair
        out[:, :, 1] = (b >> 4).transpose(1, 2)
        return out.view(in_features, cols)
    per = 32 // bits
    out = torch.empty(qweight.shape[0], per, qweight.shape[1], dtype=torch.uint8, device=qweight.device)
    for i in range(per):
        out[:, i] = (qweight >> (bits * i)) & (2**bits - 1)
    return out.view(in_features, qweight.shape[1])


def float_zero_scales(scales, zeros, repeat: int, dtype) -> torch.Tensor:
    """(K/group, N, 2) scale and float zero per group, the form torch's int4 kernels take:
    (q - z) * s == (q - 8) * s + s * (8 - z). `repeat` splits each group into that many kernel groups."""
    s, z = scales.repeat_interleave(repeat, dim=1), zeros.repeat_interleave(repeat, dim=1).float()
    return torch.stack([s.t(), (s * (8 - z)).t()], dim=-1).to(dtype).contiguous()


def pack_int4pack_cpu(codes_kn: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """Codes uint8 (K, N) -> torch's CPU int4 kernel layout, uint8 (N, K/2); needs N % block == 0.

    The inverse of unpack_int4pack_cpu: in each block of `block` output rows (int4pack_cpu_block()),
    byte (k, j) holds row j in its low nibble and row j + block/2 in its high nibble.
    """
    K, N = codes_kn.shape
    block = block or int4pack_cpu_block()
    c = codes_kn.view(K, N // block, 2, block // 2)
    packed = c[:, :, 0] | (c[:, :, 1] << 4)  # (K, N/block, block/2)
    return packed.permute(1, 0, 2).contiguous().view(N, K // 2)


def unpack_int4pack_cpu(w4: torch.Tensor, out_features: int, in_features: int, block: int | None = None) -> torch.Tensor:
    """Codes int32 [N, K] from torch's CPU int4 layout (uint8 [N, K/2]; needs N % block == 0).

    Each block of `block` output rows (64 where torch's kernel uses AVX-512, 32 with AVX2) is K x block/2
    bytes; byte (k, j) holds row j (low nibble) and row j + block/2 (high nibble) of column k.
    """
    N, K = out_features, in_features
    block = block or int4pack_cpu_block()
    b = w4.view(N // block, K, block // 2)
    q = torch.stack([b & 15, b >> 4], dim=2)  # (N/block, K, 2, block/2)
    return q.permute(0, 2, 3, 1).reshape(N, K).to(torch.int32)


def pack_tinygemm(codes_nk: torch.Tensor) -> torch.Tensor:
    """Codes uint8 [N, K] -> torch's CUDA int4 (tinygemm) layout: two codes per byte, the even column in
    the high nibble, converted with 8 inner k-tiles."""
    return torch.ops.aten._convert_weight_to_int4pack(((codes_nk[:, ::2] << 4) | codes_nk[:, 1::2]).contiguous(), 8)


@functools.cache
def cuda_kernel_works(kind: str, device: torch.device) -> bool:
    """Whether torch's CUDA int4 (tinygemm: sm80 and newer) or int8 weight-only kernel runs on this GPU and
    build and computes what our layout means (random codes against the dequantized product, once per
    device); if not, layers dequantize on the fly."""
    g = torch.Generator().manual_seed(0)
    N, K = 64, 1024
    x = torch.randn(3, K, generator=g).to(device)
    try:
        if kind == "int4":
            q = torch.randint(0, 16, (N, K), generator=g, dtype=torch.uint8)
            s, z = torch.rand(N, K // 128, generator=g) / 8 + 0.01, torch.randint(0, 16, (N, K // 128), generator=g)
            ref = x @ ((q.float() - z.repeat_interleave(128, 1)) * s.repeat_interleave(128, 1)).t().to(device)
            sz = float_zero_scales(s.half(), z, 1, torch.bfloat16).to(device)
            y = torch.ops.aten._weight_int4pack_mm(x.bfloat16(), pack_tinygemm(q.to(device)), 128, sz)
        else:
            w8 = torch.randint(-128, 128, (N, K), generator=g, dtype=torch.int8)
            s8 = torch.rand(N, generator=g) / 64 + 0.001
            ref = x @ (w8.float() * s8[:, None]).t().to(device)
            y = torch.ops.aten._weight_int8pack_mm(x.half(), w8.to(device), s8.half().to(device))
        err = (y.float() - ref).pow(2).mean() / ref.pow(2).mean()
        if not err < 1e-3:  # SQNR under 30 dB: a layout or convention that is not ours
            log.warning("torch's CUDA %s kernel disagrees with the dequantized weight (relative error %.2g); "
                        "dequantizing on the fly", kind, float(err))
            return False
        return True
    except (RuntimeError, NotImplementedError) as e:
        log.warning("torch's CUDA %s kernel is not available here (%s); dequantizing on the fly", kind,
                    str(e).splitlines()[0])
        return False


@functools.cache
def int4pack_cpu_block() -> int | None:
    """Output rows per block of this torch's CPU int4 layout, found once by converting known codes: the
    layout follows the CPU the kernel dispatches to (64 with AVX-512, 32 with AVX2). None when it is
    neither: then qweight is kept beside the kernel layout and long prompts do not dequantize."""
    q = torch.randint(0, 16, (128, 256), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    w4 = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
    return next((b for b in (64, 32) if torch.equal(unpack_int4pack_cpu(w4, 128, 256, b), q)), None)
