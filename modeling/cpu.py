"""What this CPU's matrix products are good at, and one reusable scratch buffer per dtype.

Shared by the model's Linear (modeling/model.py) and the quantized layers (quant/backends.py).
"""

from __future__ import annotations

import functools
import mmap

import torch

MAX_SCRATCH = 2**25  # elements (128 MiB in fp32): larger weights (the 49280-row lm_head) never get a scratch copy


@functools.cache
def native_bf16_gemm() -> bool:
    """Whether oneDNN multiplies bf16 matrices natively on this CPU (AVX-512 and newer). Without it (AVX2) a bf16
    GEMM is emulated: 209 ms against 58 ms for 128 x 2048 @ 2048 x 8192 with the weight copied to fp32 first
    (`python benchmarks/bench_linear.py --bf16-rows`)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


HUGE_PAGE = 2 << 20
# Linux's anonymous private mappings can take transparent huge pages (MADV_HUGEPAGE; THP "madvise" or "always")
HUGE_PAGES = hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap, "MAP_PRIVATE")


def huge_empty(shape, dtype) -> torch.Tensor:
    """An uninitialised CPU tensor in transparent huge pages where the OS gives them (Linux), else torch.empty.

    For the weight layouts the decode kernels stream through once per token: with 2 MB pages the TLB covers
    them and the int4 decode step took 0.89x the time (median of 14 interleaved runs, full-size model, this
    2-core AVX2 host). The memory is an anonymous mapping held by the tensor, freed with it."""
    numel = torch.Size(shape).numel()
    nbytes = numel * torch.empty(0, dtype=dtype).element_size()
    if not HUGE_PAGES or nbytes < HUGE_PAGE:
        return torch.empty(shape, dtype=dtype)
    mm = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    mm.madvise(mmap.MADV_HUGEPAGE)
    raw = torch.frombuffer(mm, dtype=torch.uint8)  # keeps the mapping alive as long as a view of it lives
    start = -raw.data_ptr() % HUGE_PAGE  # the huge pages cover 2 MB-aligned ranges only
    return raw[start:start + nbytes].view(dtype).view(shape)


_buffers: dict = {}


def scratch(numel: int, dtype) -> torch.Tensor:
    """One reusable CPU buffer per dtype (at most MAX_SCRATCH elements): with a fresh allocation per call, page
    faults made the 8192 x 2048 dequantize 26 ms instead of about 4 ms."""
    buf = _buffers.get(dtype)
    if buf is None or buf.numel() < numel:
        with torch.inference_mode(False):  # a normal tensor: writable inside and outside inference mode
            buf = _buffers[dtype] = torch.empty(numel, dtype=dtype)
    return buf[:numel]
