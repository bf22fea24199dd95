"""Our C++ CPU kernels (modeling/csrc/cpu_kernels.cpp: int4 / int8 for quant/backends.py, bf16 for the model's
Linear), compiled on first use and cached.

The first process on a machine builds them with torch's cpp_extension (about 30 s on 2 cores) in a fresh
temporary folder, then moves the library into the cache (TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions,
under santacoder/), named by a hash of the source, the flags and the torch version; later processes load
it from there. A build that is interrupted leaves nothing behind that a later one waits on. When this CPU has
no AVX2, no compiler is found, the build fails, or SANTACODER_NO_EXT=1 is set, `kernels()` returns None with
one warning and the layers use torch's own kernels.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time

import torch

log = logging.getLogger(__name__)
NAME = "santacoder_cpu_kernels"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "cpu_kernels.cpp")
# -fopenmp: at::parallel_for is serial without it; -ffp-contract=off: no mul + add fused behind our back, so that
# every row gets the same rounding however many rows come with it
FLAGS = ["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp", "-ffp-contract=off"]
build_seconds: float | None = None  # set when this process compiled the kernels (not when loaded from the cache)


def cached_library() -> str:
    """Where the library for this source, these flags and this torch lives."""
    with open(SOURCE, "rb") as f:
        key = hashlib.sha256(f.read() + " ".join(FLAGS).encode() + torch.__version__.encode()).hexdigest()[:16]
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "torch_extensions")
    return os.path.join(root, "santacoder", f"{NAME}_{key}.so")


@functools.cache
def kernels():
    """The compiled module (q4_mm, q4n_mm, q8_mm, bf16_mm, ...), or None where it cannot be had."""
    if os.environ.get("SANTACODER_NO_EXT", "") not in ("", "0"):
        return None
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        log.warning("no AVX2 on this CPU: our CPU kernels are off (torch's kernels are used)")
        return None
    so = cached_library()
    try:
        if os.path.exists(so):
            spec = importlib.util.spec_from_file_location(NAME, so)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
        return _build(so)
    except Exception as e:  # no compiler, no ninja, a failed build: torch's kernels still work
        msg = str(e).strip().splitlines()
        log.warning("our CPU kernels could not be built or loaded (%s): using torch's kernels",
                    msg[-1] if msg else type(e).__name__)
        return None


def _build(so: str):
    global build_seconds
    from torch.utils import cpp_extension

    os.makedirs(os.path.dirname(so), exist_ok=True)
    log.warning("compiling our CPU kernels (once per machine and torch version; cached in %s)", os.path.dirname(so))
    t = time.perf_counter()
    tmp = tempfile.mkdtemp(dir=os.path.dirname(so), prefix="build-")
    try:
        mod = cpp_extension.load(NAME, [SOURCE], extra_cflags=FLAGS, extra_ldflags=["-fopenmp"],
                                 build_directory=tmp, verbose=False)
        part = f"{so}.{os.getpid()}.part"
        shutil.copyfile(os.path.join(tmp, NAME + ".so"), part)
        os.replace(part, so)  # atomic: another process sees the whole library or none
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    build_seconds = time.perf_counter() - t
    log.warning("CPU kernels compiled in %.0f s", build_seconds)
    return mod
