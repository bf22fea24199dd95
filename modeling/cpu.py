"""What this CPU's matrix products are good at, and one reusable scratch buffer per dtype.

Shared by the model's Linear (modeling/model.py) and the quantized layers (quant/backends.py).
"""

from __future__ import annotations

import functools

import torch

MAX_SCRATCH = 2**25  # elements (128 MiB in fp32): larger weights (the 49280-row lm_head) never get a scratch copy


@functools.cache
def native_bf16_gemm() -> bool:
    """Whether oneDNN multiplies bf16 matrices natively on this CPU (AVX-512 and newer). Without it (AVX2) a bf16
    GEMM is emulated: 209 ms against 58 ms for 128 x 2048 @ 2048 x 8192 with the weight copied to fp32 first
    (`python benchmarks/bench_linear.py --bf16-rows`)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


_buffers: dict = {}


def scratch(numel: int, dtype) -> torch.Tensor:
    """One reusable CPU buffer per dtype (at most MAX_SCRATCH elements): with a fresh allocation per call, page
    faults made the 8192 x 2048 dequantize 26 ms instead of about 4 ms."""
    buf = _buffers.get(dtype)
    if buf is None or buf.numel() < numel:
        with torch.inference_mode(False):  # a normal tensor: writable inside and outside inference mode
            buf = _buffers[dtype] = torch.empty(numel, dtype=dtype)
    return buf[:numel]
