"""Our C++ CPU kernels are built once per machine, loaded from the cache after that, and never in the way."""

import logging
import os
import subprocess
import sys

import pytest

from conftest import ROOT
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
