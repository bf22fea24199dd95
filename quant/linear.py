"""QuantLinear: the contract every quantized Linear follows, and the GPTQ-format int4/int8 scheme.

Contract: `from_linear(linear, ...)` (round-to-nearest) or `from_codes(...)` (what GPTQ produces),
`forward(x)`, `dequantize()` -> fp weight [out, in], `extra_repr()`, and the Linear's bias kept.

GPTQLinear's state dict is the GPTQ v1 tensors (qweight, qzeros, scales, g_idx, bias), exactly
what goes on disk. `prepare()` builds the device kernel's own layout from them, once:
- CPU int4: torch._weight_int4pack_mm_for_cpu (bf16 activations, scale and float zero per group);
- CPU int8 (symmetric, per-channel): torch._weight_int8pack_mm (bf16 activations);
- CUDA int4: torch._weight_int4pack_mm (tinygemm, bf16); CUDA int8: torch._weight_int8pack_mm
  (each tried once on the GPU first; both unverified here: no GPU has run them yet);
- anything else: dequantize on the fly (a one-time warning says so).
The CPU kernels are compute-bound on long prompts: from DEQUANT_MIN_ROWS tokens on, the weight is
dequantized into a shared bf16 scratch buffer and multiplied with one GEMM instead. Their layouts
can be read back, so qweight is dropped after prepare() and rebuilt for the state dict.
Act-order checkpoints (g_idx not grouped in order) are handled by permuting the input columns
once at prepare time; the forward pass then permutes x the same way.
"""

from __future__ import annotations

import functools
import logging
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from .primitives import default_g_idx, dequantize_groupwise, pack_gptq, pack_rows, quantize_groupwise, unpack_gptq

log = logging.getLogger(__name__)
_warned: set = set()

INT4_GROUPS = (32, 64, 128, 256)  # group sizes torch's int4 kernels take
# From this many rows (tokens) on, dequantize-to-bf16 + one GEMM beats the CPU kernels, which are
# compute-bound (~0.1 ms per row for an 8192 x 2048 layer). Measured: benchmarks/bench_linear.py --quant
DEQUANT_MIN_ROWS = {"cpu-int4": 128, "cpu-int8": 32, "cuda-int8": 16}  # cuda-int8: not measured (no GPU yet)
DEQUANT_MIN_ROWS_FP32 = {"cpu-int4": 128, "cpu-int8": 96}  # no fast bf16 GEMMs (AVX2: int8 crossover between 64 and 128)
DEQUANT_MAX_WEIGHTS = 2**25  # larger layers (the 49280-row lm_head) keep the kernel: the scratch would be 200 MB
BUILD_CHUNK = 2048  # output columns converted at a time when a kernel layout is built (bounds the temporaries)


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
    def prepare(self, dtype: torch.dtype):
        """Build the kernel layout for this module's device and the activation dtype; once, at load.

        When the kernel layout holds the codes losslessly, qweight is dropped (it would double the
        memory) and rebuilt from the kernel layout when the state dict is asked for.
        """
        N, K = self.out_features, self.in_features
        self.gemm_scales = None  # the long-prompt scales are remade from the new layout when needed
        _, scales, zeros, g_idx = unpack_gptq(None, self.qzeros, self.scales, self.g_idx, self.bits)  # small
        perm = None
        if not bool((g_idx[1:] >= g_idx[:-1]).all()):  # act-order: sort columns by group
            perm = torch.argsort(g_idx, stable=True)
            g_idx = g_idx[perm]
        # re-preparing after qweight was dropped: the codes come back from the previous kernel layout
        whole = self._codes_from_kernel().t().to(torch.uint8) if self.qweight is None else None

        def codes_kn(n0=0, n1=None):  # uint8 (K, n1 - n0): output columns n0..n1, input rows in kernel order
            c = whole[:, n0:n1] if whole is not None else unpack_codes_kn(self.qweight[:, n0:n1], self.bits, K)
            return c if perm is None else c[perm]

        self.perm = perm
        self.act_dtype = dtype
        # long prompts: one GEMM in the activation dtype, or in fp32 where this CPU has no fast bf16 GEMM
        self.gemm_dtype = torch.float32 if self.scales.device.type == "cpu" and not cpu_bf16_gemm_fast() else dtype
        self.bias_c = None if self.bias is None else self.bias.to(dtype)
        dev = self.scales.device.type
        gs = K // scales.shape[1]  # group width after sorting
        uniform = bool(torch.equal(g_idx.long(), torch.arange(K, device=g_idx.device) // gs))
        per_channel_sym = scales.shape[1] == 1 and bool((zeros == 128).all())
        kernel = None
        if dev == "cpu" and dtype == torch.bfloat16 and self.bits == 4 and uniform and N % 16 == 0 \
                and (gs in INT4_GROUPS or gs % 256 == 0):
            kgs = gs if gs in INT4_GROUPS else 256  # whole-row groups: repeat the row's scale per 256 columns
            self.sz = float_zero_scales(scales, zeros, gs // kgs, dtype)
            block = int4pack_cpu_block()
            if block and N % block == 0:  # write torch's layout directly, in column chunks
                self.w4 = torch.empty(N, K // 2, dtype=torch.uint8)
                for n0 in range(0, N, BUILD_CHUNK):
                    self.w4[n0:n0 + BUILD_CHUNK] = pack_int4pack_cpu(codes_kn(n0, n0 + BUILD_CHUNK))
            else:
                self.w4 = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes_kn().t().to(torch.int32).contiguous(), 1)
            self.kgs, kernel = kgs, "cpu-int4"
        elif dev == "cpu" and dtype == torch.bfloat16 and self.bits == 8 and per_channel_sym:
            self.w8 = torch.empty(N, K, dtype=torch.int8)
            for n0 in range(0, N, BUILD_CHUNK):
                self.w8[n0:n0 + BUILD_CHUNK] = (codes_kn(n0, n0 + BUILD_CHUNK).t() ^ 128).view(torch.int8)  # code - 128
            self.s8 = scales[:, 0].to(dtype)
            kernel = "cpu-int8"
        elif dev == "cuda" and self.bits == 4 and uniform and gs in INT4_GROUPS and K % 1024 == 0 and N % 8 == 0 \
                and cuda_kernel_works("int4", self.scales.device):
            # tinygemm: bf16 only, codes as uint8 [N, K/2] (even column in the high nibble), 8 inner k-tiles
            self.w4 = pack_tinygemm(codes_kn().t())
            self.sz = float_zero_scales(scales, zeros, 1, torch.bfloat16)
            self.kgs, kernel = gs, "cuda-int4"
        elif dev == "cuda" and self.bits == 8 and per_channel_sym and cuda_kernel_works("int8", self.scales.device):
            self.w8 = (codes_kn().t() ^ 128).view(torch.int8).contiguous()
            self.s8 = scales[:, 0].to(dtype)
            kernel = "cuda-int8"
        else:
            key = (dev, dtype, self.bits, gs)
            if key not in _warned:
                _warned.add(key)
                log.warning("no fast kernel for %d-bit, group %d, %s activations on %s: dequantizing on the fly",
                            self.bits, gs, dtype, dev)
            kernel = "dequantize"
        self.kernel = kernel
        # layouts that can be read back: dequantize + one GEMM for long prompts, and no second copy of the codes
        readable = kernel in ("cpu-int8", "cuda-int8") or (kernel == "cpu-int4" and bool(int4pack_cpu_block())
                                                              and N % int4pack_cpu_block() == 0)
        long_path = readable and N * K <= DEQUANT_MAX_WEIGHTS
        rows = DEQUANT_MIN_ROWS_FP32 if self.gemm_dtype != dtype else DEQUANT_MIN_ROWS
        self.gemm_from_rows = rows[kernel] if long_path else float("inf")  # decided once, not per call
        if readable:
            self.qweight = None  # rebuilt from the kernel layout by codes() and state_dict()
        elif whole is not None:  # re-prepared for a kernel that cannot give the codes back: keep them packed
            self.qweight = pack_rows(whole, self.bits)
        if kernel == "cuda-int4":  # tinygemm's layout is not read back: the codes wait in host memory, as a plain
            self.host_qweight, self.qweight = self.qweight.cpu(), None  # attribute (.to() must not bring them back)
        self.graph_safe = kernel != "dequantize"  # the dequantize fallback syncs with the host: no CUDA graph
        keep = {"cpu-int4": ("w4", "sz"), "cuda-int4": ("w4", "sz", "host_qweight"), "cpu-int8": ("w8", "s8"),
                "cuda-int8": ("w8", "s8")}
        for stale in {"w4", "sz", "w8", "s8", "host_qweight"} - set(keep.get(kernel, ())):  # of a previous prepare()
            self.__dict__.pop(stale, None)
        return self

    def _codes_from_kernel(self, n0: int = 0, n1: int | None = None) -> torch.Tensor:
        """Codes int32 [n1 - n0, in] of output rows n0..n1 (all by default), in the original column order,
        read back from the kernel layout (n0 and n1 multiples of int4pack_cpu_block() for cpu-int4), or for cuda-int4 from
        the host copy of qweight."""
        n1 = self.out_features if n1 is None else min(n1, self.out_features)
        if self.kernel == "cuda-int4":  # GPTQ order already: no column permutation to undo
            q = unpack_codes_kn(self.host_qweight[:, n0:n1], self.bits, self.in_features).t().to(torch.int32)
            return q.to(self.scales.device)
        if self.kernel == "cpu-int4":
            q = unpack_int4pack_cpu(self.w4[n0:n1], n1 - n0, self.in_features)
        else:  # cpu-int8, cuda-int8
            q = self.w8[n0:n1].to(torch.int32) + 128
        if self.perm is not None:
            q = q[:, torch.argsort(self.perm)]
        return q

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.qweight is None:  # rebuilt in column chunks: bounded temporaries even for the lm_head
            qweight = torch.empty(self.in_features * self.bits // 32, self.out_features, dtype=torch.int32,
                                  device=self.scales.device)
            for n0 in range(0, self.out_features, BUILD_CHUNK):
                chunk = self._codes_from_kernel(n0, n0 + BUILD_CHUNK)
                qweight[:, n0:n0 + chunk.shape[0]] = pack_rows(chunk.t(), self.bits)
            destination[prefix + "qweight"] = qweight

    def _dequantized_for_gemm(self) -> torch.Tensor:
        """The weight in gemm_dtype for long prompts: on CPU written into a shared scratch buffer.

        cpu-int4: (K, N), from the kernel's packed bytes; int8: (N, K) codes, scaled after the GEMM.
        """
        N, K = self.out_features, self.in_features
        if self.kernel == "cuda-int8":  # the CUDA caching allocator makes a fresh buffer cheap
            return self.w8.to(self.act_dtype)
        buf = _scratch(N * K, self.gemm_dtype)
        if self.kernel == "cpu-int8":
            return buf.view(N, K).copy_(self.w8)
        B = int4pack_cpu_block()  # byte (k, j) of a block of B rows holds rows j and j + B/2
        b = self.w4.view(N // B, K, B // 2).permute(1, 0, 2)
        w = buf.view(K, N // B, 2, B // 2)
        w[:, :, 0].copy_(b & 15)
        w[:, :, 1].copy_(b >> 4)
        if self.gemm_scales is None:  # scale and offset per (group, column), made on the first long prompt
            s, sz1 = self.sz[..., 0].float(), self.sz[..., 1].float()  # (K/kgs, N)
            self.gemm_scales = s[:, None].to(self.gemm_dtype), (sz1 - 8 * s)[:, None].to(self.gemm_dtype)
        s, c = self.gemm_scales
        w = w.view(K // self.kgs, self.kgs, N)
        return torch.addcmul(c, w, s, out=w).view(K, N)  # q * s + (sz1 - 8 s) = (q - 8) s + sz1

    def forward(self, x):
        if self.kernel is None:
            self.prepare(x.dtype)
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        if self.perm is not None:
            x = x[:, self.perm]
        kernel = self.kernel
        if x.shape[0] >= self.gemm_from_rows:
            x = x.to(self.gemm_dtype)  # many tokens: dequantize once, then one GEMM (faster than the kernel)
            if kernel == "cpu-int4":
                y = x @ self._dequantized_for_gemm()
            else:
                y = F.linear(x, self._dequantized_for_gemm()) * self.s8
        elif kernel == "cpu-int4":
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(self.act_dtype), self.w4, self.kgs, self.sz)
        elif kernel == "cuda-int4":
            y = torch.ops.aten._weight_int4pack_mm(x.to(torch.bfloat16), self.w4, self.kgs, self.sz)
        elif kernel in ("cpu-int8", "cuda-int8"):
            y = torch.ops.aten._weight_int8pack_mm(x.to(self.act_dtype), self.w8, self.s8)
        else:
            w = self.dequantize(self.act_dtype)
            if self.perm is not None:
                w = w[:, self.perm]
            y = F.linear(x.to(self.act_dtype), w)
        y = y.to(self.act_dtype)
        if self.bias_c is not None:
            y = y + self.bias_c
        return y.reshape(*shape[:-1], self.out_features)


def float_zero_scales(scales, zeros, repeat: int, dtype) -> torch.Tensor:
    """(K/group, N, 2) scale and float zero per group, the form torch's int4 kernels take:
    (q - z) * s == (q - 8) * s + s * (8 - z). `repeat` splits each group into that many kernel groups."""
    s, z = scales.repeat_interleave(repeat, dim=1), zeros.repeat_interleave(repeat, dim=1).float()
    return torch.stack([s.t(), (s * (8 - z)).t()], dim=-1).to(dtype).contiguous()


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


@functools.cache
def cpu_bf16_gemm_fast() -> bool:
    """Whether oneDNN multiplies bf16 matrices natively on this CPU (AVX-512 and newer). Without it (AVX2)
    a bf16 GEMM is emulated: 21 s against 77 ms in fp32 for 179 x 2048 @ 2048 x 8192, so long prompts
    dequantize to fp32 there."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


_scratch_buffers: dict = {}


def _scratch(numel, dtype) -> torch.Tensor:
    """One reusable CPU buffer per dtype (at most DEQUANT_MAX_WEIGHTS elements): with a fresh allocation per
    call, page faults made the 8192 x 2048 dequantize 26 ms instead of about 4 ms."""
    buf = _scratch_buffers.get(dtype)
    if buf is None or buf.numel() < numel:
        with torch.inference_mode(False):  # a normal tensor: writable inside and outside inference mode
            buf = _scratch_buffers[dtype] = torch.empty(numel, dtype=dtype)
    return buf[:numel]
