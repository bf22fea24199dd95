"""What this CPU's matrix products are good at, and one reusable scratch buffer per dtype.

Shared by the model's Linear (modeling/model.py) and the quantized layers (quant/backends.py).
"""

from __future__ import annotations

import functools
import mmap

import torch
import torch.nn.functional as F

MAX_SCRATCH = 2**25  # elements: larger weights (the 49280-row lm_head) keep their kernel for prompts too
# elements (8 MiB in fp32): a weight is dequantized for a prompt this many at a time. Against the whole weight at
# once, 1186 tokens through int4 8192 x 2048 / 2048 x 8192 took 470 / 352 ms against 517 / 454 ms (2 threads, this
# AVX2 host, medians of 6 interleaved runs): the chunk stays in cache for its GEMM.
SCRATCH_CHUNK = 2**21


@functools.cache
def native_bf16_gemm() -> bool:
    """Whether oneDNN multiplies bf16 matrices natively on this CPU (AVX-512 and newer). Without it (AVX2) a bf16
    GEMM is emulated: 209 ms against 58 ms for 128 x 2048 @ 2048 x 8192 with the weight copied to fp32 first
    (`python benchmarks/bench_linear.py --bf16-rows`)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


HUGE_PAGE = 2 << 20
# Linux's anonymous private mappings can take transparent huge pages (MADV_HUGEPAGE; THP "madvise" or "always")
HUGE_PAGES = hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap, "MAP_PRIVATE")


def nbytes_of(shape, dtype) -> int:
    return torch.Size(shape).numel() * torch.empty(0, dtype=dtype).element_size()


def huge_empty(shape, dtype) -> torch.Tensor:
    """An uninitialised CPU tensor in transparent huge pages where the OS gives them (Linux), else torch.empty.

    For the weight layouts the decode kernels stream through once per token: with 2 MB pages the TLB covers
    them and the int4 decode step took 0.89x the time (median of 14 interleaved runs, full-size model, this
    2-core AVX2 host). The memory is an anonymous mapping held by the tensor, freed with it."""
    nbytes = nbytes_of(shape, dtype)
    if not HUGE_PAGES or nbytes < HUGE_PAGE:
        return torch.empty(shape, dtype=dtype)
    mm = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    raw = torch.frombuffer(mm, dtype=torch.uint8)  # keeps the mapping alive as long as a view of it lives
    start = -raw.data_ptr() % HUGE_PAGE  # huge pages cover 2 MB-aligned ranges
    # whole huge pages only: a last one only partly used would make up to 2 MB more resident (c_attn's 2.25 MiB)
    mm.madvise(mmap.MADV_HUGEPAGE, start, nbytes // HUGE_PAGE * HUGE_PAGE)
    return raw[start:start + nbytes].view(dtype).view(shape)


def lazy_zeros(shape, dtype) -> torch.Tensor:
    """A CPU tensor of zeros in fresh anonymous memory (Linux, macOS), resident only where it is written: a KV
    cache sized for the whole context costs what its filled positions hold (torch.zeros writes every page)."""
    nbytes = nbytes_of(shape, dtype)
    if not hasattr(mmap, "MAP_PRIVATE") or nbytes < 1 << 20:
        return torch.zeros(shape, dtype=dtype)
    mm = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        mm.madvise(mmap.MADV_NOHUGEPAGE)  # where THP is "always", one write would make 2 MB resident
    return torch.frombuffer(mm, dtype=dtype).view(shape)


_buffers: dict = {}


def scratch(numel: int, dtype) -> torch.Tensor:
    """One reusable CPU buffer per dtype (at most MAX_SCRATCH elements): with a fresh allocation per call, page
    faults made the 8192 x 2048 dequantize 26 ms instead of about 4 ms."""
    buf = _buffers.get(dtype)
    if buf is None or buf.numel() < numel:
        with torch.inference_mode(False):  # a normal tensor: writable inside and outside inference mode
            buf = _buffers[dtype] = torch.empty(numel, dtype=dtype)
    return buf[:numel]


def linear_in_chunks(x: torch.Tensor, n_out: int, fill, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x (M, K) @ W.T (+ bias) for a weight W (n_out, K) that `fill(n0, n1, w)` writes, rows n0..n1, into w (n1 - n0, K) of
    x's dtype: one GEMM per chunk of at most SCRATCH_CHUNK elements of W, through the shared scratch buffer, so a
    long prompt leaves 8 MiB of dequantized weight (not 64 MiB for mlp.c_proj) for the life of the process."""
    K = x.shape[-1]
    step = max(1, SCRATCH_CHUNK // K)
    step -= step % 16 if step >= 16 else 0  # whole blocks of 16 rows (the avx512-int4 layout)
    if step >= n_out:
        w = scratch(n_out * K, x.dtype).view(n_out, K)
        fill(0, n_out, w)
        return F.linear(x, w, bias)
    y = torch.empty(x.shape[0], n_out, dtype=x.dtype)
    for n0 in range(0, n_out, step):
        n1 = min(n0 + step, n_out)
        w = scratch((n1 - n0) * K, x.dtype).view(n1 - n0, K)
        fill(n0, n1, w)
        y[:, n0:n1] = F.linear(x, w, None if bias is None else bias[n0:n1])
    return y
