"""Our C++ CPU kernels are built once per machine, loaded from the cache after that, and never in the way."""

import logging
import os
import subprocess
import sys

import pytest

from conftest import ROOT, smaps_entry
from modeling import ext

LOAD = "import logging, sys; sys.path.insert(0, {root!r}); logging.basicConfig(); from modeling import ext; " \
       "print(ext.kernels() is not None, ext.build_seconds)"


def test_a_failed_build_falls_back_with_one_warning_and_leaves_nothing(tmp_path, monkeypatch, caplog):
    bad = tmp_path / "bad.cpp"
    bad.write_text("this is not C++\n")
    monkeypatch.setattr(ext, "SOURCE", str(bad))
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    ext.kernels.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            assert ext.kernels() is None
    finally:
        ext.kernels.cache_clear()  # the next caller loads the real kernels again
    failed = [r.getMessage() for r in caplog.records if "could not be built" in r.getMessage()]
    assert len(failed) == 1 and "\n" not in failed[0] and "torch's kernels" in failed[0]
    assert os.listdir(tmp_path / "cache" / "santacoder") == []  # no build folder, no partial library


def test_the_library_is_loaded_from_the_cache_and_can_be_turned_off(tmp_path):
    if ext.kernels() is None:
        pytest.skip("our C++ CPU kernels are not available on this machine (no AVX2 or no compiler)")
    assert os.path.exists(ext.cached_library())  # built (by this run or an earlier one) and kept
    run = lambda **env: subprocess.run([sys.executable, "-c", LOAD.format(root=ROOT)], capture_output=True, text=True,  # noqa: E731
                                       env={**os.environ, **env}, check=True)
    out = run()
    assert out.stdout.split() == ["True", "None"] and "compiling" not in out.stderr  # no second build
    assert run(SANTACODER_NO_EXT="1").stdout.split() == ["False", "None"]


def test_huge_empty_gives_aligned_memory_that_outlives_its_mapping_object():
    import gc

    import torch

    from modeling.cpu import HUGE_PAGE, HUGE_PAGES, huge_empty

    small = huge_empty((3, 5), torch.float32)  # under 2 MB: a plain tensor
    assert small.shape == (3, 5) and small.dtype == torch.float32
    t = huge_empty((1024, 4096), torch.int8)
    assert t.shape == (1024, 4096) and t.dtype == torch.int8 and t.is_contiguous()
    t.copy_(torch.arange(4096, dtype=torch.int32).remainder(251).to(torch.int8).expand(1024, -1))
    gc.collect()  # only the tensor refers to the mapping now
    assert int(t[:, 7].sum()) == 7 * 1024 and int(t[1023, 250]) == -6
    if not HUGE_PAGES:
        pytest.skip("no MADV_HUGEPAGE on this OS")
    assert t.data_ptr() % HUGE_PAGE == 0
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read()
    except OSError:
        thp = ""
    if "[never]" in thp or not thp:
        pytest.skip("transparent huge pages are off on this machine")
    assert smaps_entry(t.data_ptr()).get("AnonHugePages", 0) >= 2048  # at least one 2 MB page backs it


def test_gelu_kernel_gives_torchs_bf16_values_and_is_closer_where_they_differ():
    """gelu_tanh_ (the MLP's activation for bf16 on CPU, in place) against torch's tanh GELU and float64: the same
    bf16 values for x >= -2, and nowhere further from float64 than torch (whose tanh loses the tail: it gives 0
    where the value is -1e-30). 8 * 5000 + 3 values: the scalar tail too."""
    import torch
    import torch.nn.functional as F

    if ext.kernels() is None:
        pytest.skip("our CPU kernels are off")
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(40000, generator=g) * 4, torch.linspace(-12, 12, 3)]).bfloat16()
    x[:8] = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 60, -60, 1e-3, -9.25])
    ours = x.clone()
    ext.kernels().gelu_tanh_(ours)
    ref = F.gelu(x, approximate="tanh")
    xd = x.double()
    exact = xd / (1 + torch.exp(-2 * 0.7978845608028654 * (xd + 0.044715 * xd**3)))  # x sigmoid(2u): no cancellation
    near = x >= -2
    assert torch.equal(ours[near], ref[near]) and int((ours != ref).sum()) > 0
    assert bool(((ours.double() - exact).abs() <= (ref.double() - exact).abs()).all())
    assert ours[7] < 0 and ref[7] == 0 and ours[5] == 0  # gelu(-9.25) = -1e-30: torch says 0; gelu(-60) underflows
