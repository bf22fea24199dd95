"""The C++ CPU kernels (quant/csrc/cpu_kernels.cpp), compiled on first use and cached.

torch's cpp_extension builds them once per machine and torch version into its cache folder
(TORCH_EXTENSIONS_DIR, by default ~/.cache/torch_extensions); later processes load the cached library.
When this CPU has no AVX2, no compiler is found, the build fails, or SANTACODER_NO_EXT=1 is set,
`kernels()` returns None with one warning and the layers use torch's own kernels.
"""

from __future__ import annotations

import functools
import logging
import os
import time

import torch

log = logging.getLogger(__name__)
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "cpu_kernels.cpp")
FLAGS = ["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp"]  # -fopenmp: at::parallel_for is a no-op without it
build_seconds: float | None = None  # set when this process compiled the kernels (not when loaded from the cache)


@functools.cache
def kernels():
    """The compiled module (q4_mm, q8_mm), or None where it cannot be had."""
    global build_seconds
    if os.environ.get("SANTACODER_NO_EXT", "") not in ("", "0"):
        return None
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        log.warning("no AVX2 on this CPU: the int8-activation CPU kernels are off (torch's kernels are used)")
        return None
    from torch.utils import cpp_extension

    name = "santacoder_cpu_kernels"
    build_dir = cpp_extension._get_build_directory(name, verbose=False)
    cached = os.path.exists(os.path.join(build_dir, name + ".so"))
    t = time.perf_counter()
    try:
        if not cached:
            log.warning("compiling the CPU kernels (once per machine; cached in %s)", build_dir)
        mod = cpp_extension.load(name, [SOURCE], extra_cflags=FLAGS, extra_ldflags=["-fopenmp"], verbose=False)
    except Exception as e:  # no compiler, no ninja, a failed build: torch's kernels still work
        msg = str(e).strip().splitlines()
        log.warning("the CPU kernels could not be built (%s): using torch's kernels", msg[-1] if msg else type(e).__name__)
        return None
    if not cached:
        build_seconds = time.perf_counter() - t
        log.warning("CPU kernels compiled in %.0f s", build_seconds)
    return mod
