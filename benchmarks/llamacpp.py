"""llama.cpp as a same-machine peer: llama-server, llama-quantize and llama-bench built (Release, CPU only)
from the llama.cpp tree vendored in the llama-cpp-python sdist, and the full-size SantaCoder with random
weights (fixed seed) as a Hugging Face folder, as our int4 and int8 folders and as GGUF files (f16, Q4_0,
Q4_K_M, Q8_0).

    python benchmarks/llamacpp.py setup                 # each step is skipped when its output exists
    python benchmarks/llamacpp.py setup --dir /tmp/peers

Under --dir, else $SANTACODER_PEERS, else /work/peers:
    src/llama_cpp_python-0.3.36/vendor/llama.cpp   pip download --no-deps --no-binary :all: (pip index)
    build/bin/llama-{server,quantize,bench}        cmake + ninja
    santacoder-full/                               fp16, seed 0, tokenizer of tests/fixtures/tiny-santacoder
    santacoder-full-int4/                          quantize.py --method rtn --bits 4 (g128, + lm_head)
    santacoder-full-int8/                          quantize.py --method rtn --bits 8 (per channel)
    santacoder-full-{f16,q4_0,q4_k_m,q8_0}.gguf    vendored convert_hf_to_gguf.py, then llama-quantize

In code: start_server(gguf_path("q4_0"), port) -> Popen of a llama-server on 127.0.0.1 that answers /health
(output in logs/llama-server-PORT.log); bin_path("llama-bench").
"""

import argparse
import json
import os
import runpy
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
LLAMA_CPP_PYTHON = "0.3.36"  # vendors llama.cpp at commit 0c1e570 (ggml 0.25.3)
TOKENIZER = os.path.join(ROOT, "tests", "fixtures", "tiny-santacoder")  # trained BPE, 2005 tokens incl. FIM
SEED = 0  # the int4 folder and the GGUFs all come from these weights
TARGETS = ("llama-server", "llama-quantize", "llama-bench")
QUANTS = ("Q4_0", "Q4_K_M", "Q8_0")
# The tokenizer pre-splits like GPT-2 (ByteLevel, use_regex, no digit split): llama.cpp's "gpt-2". Its hash
# is not in the converter's table. ("starcoder" would also split digits one by one, as bigcode's tokenizer.)
FALLBACK_PRE = "gpt-2"


def path(*parts):
    return os.path.join(os.environ.get("SANTACODER_PEERS", "/work/peers"), *parts)


def bin_path(name):
    return path("build", "bin", name)


def gguf_path(kind):
    """kind: f16, q4_0, q4_k_m or q8_0."""
    return path(f"santacoder-full-{kind.lower()}.gguf")


def run(cmd):
    cmd = list(map(str, cmd))
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def llama_cpp_dir():
    """The vendored llama.cpp tree, extracting (and first downloading) the sdist when missing."""
    name = f"llama_cpp_python-{LLAMA_CPP_PYTHON}"
    tree = path("src", name, "vendor", "llama.cpp")
    if not os.path.exists(tree):
        if not os.path.exists(path("src", name + ".tar.gz")):
            run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", path("src")])
        tmp = tempfile.mkdtemp(dir=path("src"))  # renamed into place whole: never a half-extracted tree
        with tarfile.open(path("src", name + ".tar.gz")) as tar:
            tar.extractall(tmp, filter="data")
        os.rename(os.path.join(tmp, name), path("src", name))
        os.rmdir(tmp)
    return tree


def build():
    if all(os.path.exists(bin_path(t)) for t in TARGETS):
        return
    t = time.perf_counter()
    # -march=native minus AMX: on this Sapphire Rapids VM ggml's AMX matmul dies of SIGILL at its first tile
    # instruction in a worker thread (cf. llama.cpp PR #26954); the AVX-512 (VNNI, BF16) kernels remain.
    no_amx = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    run(["cmake", "-S", llama_cpp_dir(), "-B", path("build"), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
         "-DGGML_NATIVE=ON", f"-DCMAKE_C_FLAGS={no_amx}", f"-DCMAKE_CXX_FLAGS={no_amx}", "-DBUILD_SHARED_LIBS=OFF",
         "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_TESTS=OFF",
         "-DLLAMA_BUILD_EXAMPLES=OFF"])
    run(["cmake", "--build", path("build"), "--target", *TARGETS, "-j", os.cpu_count()])
    print(f"built in {time.perf_counter() - t:.0f} s")


def make_model(folder):
    """Full-size SantaCoderConfig, random weights (seed SEED), fp16, the fixture's tokenizer files."""
    import torch
    from modeling import SantaCoderConfig, SantaCoderForCausalLM

    with open(os.path.join(TOKENIZER, "tokenizer.json")) as f:
        eos = next(t["id"] for t in json.load(f)["added_tokens"] if t["content"] == "<|endoftext|>")
    config = SantaCoderConfig(bos_token_id=eos, eos_token_id=eos)  # vocab 49280: ids >= 2005 are unused
    model = SantaCoderForCausalLM.from_config(config, dtype=torch.float16, seed=SEED)
    model.source = TOKENIZER
    model.save_pretrained(folder)


def convert(folder, out, outtype="f16"):
    """convert_hf_to_gguf.py in this process, an unknown pre-tokenizer hash answered with FALLBACK_PRE."""
    src = llama_cpp_dir()
    sys.path[:0] = [src, os.path.join(src, "gguf-py")]
    from conversion.base import TextModel

    known = TextModel.get_vocab_base_pre

    def vocab_pre(self, tokenizer):
        try:
            return known(self, tokenizer)
        except NotImplementedError:
            print(f"pre-tokenizer hash unknown: using {FALLBACK_PRE!r}")
            return FALLBACK_PRE

    TextModel.get_vocab_base_pre = vocab_pre
    sys.argv = ["convert_hf_to_gguf.py", folder, "--outfile", out, "--outtype", outtype]
    runpy.run_path(os.path.join(src, "convert_hf_to_gguf.py"), run_name="__main__")


def setup():
    os.makedirs(path(), exist_ok=True)
    build()
    hf, int4, int8 = path("santacoder-full"), path("santacoder-full-int4"), path("santacoder-full-int8")
    if not os.path.exists(os.path.join(hf, "config.json")):
        make_model(hf)
    for folder, bits in ((int4, 4), (int8, 8)):
        if not os.path.exists(os.path.join(folder, "config.json")):
            run([sys.executable, os.path.join(ROOT, "quantize.py"), hf, "--out", folder, "--method", "rtn", "--bits", bits])
    if not os.path.exists(gguf_path("f16")):  # a fresh process: the converter imports its own gguf package
        run([sys.executable, os.path.abspath(__file__), "convert", hf, gguf_path("f16") + ".tmp"])
        os.replace(gguf_path("f16") + ".tmp", gguf_path("f16"))
    for q in QUANTS:
        if not os.path.exists(gguf_path(q)):
            run([bin_path("llama-quantize"), gguf_path("f16"), gguf_path(q) + ".tmp", q, os.cpu_count()])
            os.replace(gguf_path(q) + ".tmp", gguf_path(q))
    for p in [hf, int4, int8] + [gguf_path(k) for k in ("f16",) + QUANTS]:
        files = [os.path.join(p, f) for f in os.listdir(p)] if os.path.isdir(p) else [p]
        print(f"{sum(map(os.path.getsize, files)) / 1e6:8.0f} MB  {p}")


def start_server(gguf, port, threads=2, ctx=2048, extra_args=(), timeout=300):
    """llama-server on 127.0.0.1:port; returns its Popen once GET /health answers 200 (raises otherwise)."""
    os.makedirs(path("logs"), exist_ok=True)
    log_path = path("logs", f"llama-server-{port}.log")
    cmd = [bin_path("llama-server"), "-m", gguf, "--host", "127.0.0.1", "--port", port, "-t", threads, "-c", ctx,
           *extra_args]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(list(map(str, cmd)), stdout=log, stderr=subprocess.STDOUT)
    return wait_healthy(proc, port, f"llama-server (see {log_path})", timeout)


def wait_healthy(proc, port, name, timeout=300):
    """proc once GET 127.0.0.1:port/health answers 200; killed and RuntimeError if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:  # refused while starting, 503 while loading
            pass
        time.sleep(0.2)
    why = f"exited with {proc.returncode}" if proc.poll() is not None else f"not healthy after {timeout} s"
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{name} {why}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["setup", "convert"], help="convert FOLDER OUT: one step of setup")
    p.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--dir", help="artifacts folder (default: $SANTACODER_PEERS or /work/peers)")
    args = p.parse_args()
    if args.dir:  # the environment, so that the convert subprocess sees it too
        os.environ["SANTACODER_PEERS"] = os.path.abspath(args.dir)
    if args.command == "convert":
        convert(*args.args)
    else:
        setup()


if __name__ == "__main__":
    main()
