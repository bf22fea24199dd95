"""One token through 24 c_fc-sized Linear weights (8192 x 2048, 768 MB in bf16, far beyond cache):
F.linear against oneDNN's prepacked kernel (what modeling.model.Linear uses on CPU).

With --quant: one 8192 x 2048 GPTQLinear (int4 g128, int8) at M tokens, through our CPU kernel, torch's,
and dequantize + one GEMM; where the GEMM wins sets quant.backends.DEQUANT_MIN_ROWS(_FP32).

With --stream: one token through the 96 block Linears of the full-size model (random weights), as a
decode step streams them from memory: torch's int4 kernel (GPTQLinear int4 g128), its int8 kernel
(GPTQLinear int8 per channel) and fbgemm's dynamic int8 Linear (activations quantized to int8 per token,
as llama.cpp computes); the lever for the CPU kernels on hosts where the int4 kernel is compute-bound.

With --int4-kernels: our int4 kernels against each other, interleaved: one 8192 x 2048 int4 g128 layer at M
rows (from cache) through avx2-int4 and avx512-int4 (VPDPBUSD for every row count, AMX tiles for every row count),
then the full-size model (int4 g128 + lm_head: --folder, or RTN of random weights) running M tokens after 430
cached ones with avx512-int4 (AMX from quant's default row count on) and with avx2-int4: what verifying a
prompt-lookup draft of M - 1 tokens costs.

With --bf16-rows: bf16 F.linear against an fp32 copy of the weight + fp32 GEMM by rows (where a CPU has no
native bf16 GEMM, modeling.model.Linear switches from FP32_GEMM_MIN_ROWS rows on).

    python benchmarks/bench_linear.py [--threads 2] [--dtype bf16|fp32] [--quant | --stream | --bf16-rows]
    python benchmarks/bench_linear.py --int4-kernels [--folder FULL_SIZE_INT4_FOLDER]
"""

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import best_ms  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--quant", action="store_true", help="kernel vs dequantize + GEMM for the quantized Linear")
    p.add_argument("--stream", action="store_true", help="int4 / int8 kernels over the model's 96 block Linears")
    p.add_argument("--bf16-rows", action="store_true",
                   help="bf16 GEMM against an fp32 copy of the weight + fp32 GEMM, by rows (modeling.model.Linear)")
    p.add_argument("--int4-kernels", action="store_true", help="avx2-int4 / VPDPBUSD / AMX, one layer and the model")
    p.add_argument("--folder", help="--int4-kernels: a full-size int4 folder (default: RTN of random weights)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.int4_kernels:
        return int4_kernels(args.folder)
    if args.quant:
        return quant_crossover()
    if args.bf16_rows:
        return bf16_rows()
    if args.stream:
        return stream_block_linears()
    dt = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    weights = [torch.randn(8192, 2048, dtype=dt) for _ in range(24)]
    packed = [torch.ops.mkldnn._reorder_linear_weight(w, 1) for w in weights]
    bias = torch.randn(8192, dtype=dt)
    gb = sum(w.numel() * w.element_size() for w in weights) / 1e9

    def run(fn, M):
        x = torch.randn(M, 2048, dtype=dt)
        fn(x, 0)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            for i in range(len(weights)):
                fn(x, i)
            best = min(best, time.perf_counter() - t)
        return best

    plain = lambda x, i: F.linear(x, weights[i], bias)  # noqa: E731
    onednn = lambda x, i: torch.ops.mkldnn._linear_pointwise(x, packed[i], bias, "none", [], "")  # noqa: E731
    print("| tokens | F.linear ms (GB/s) | packed ms (GB/s) | speedup |\n|---|---|---|---|")
    for M in (1, 4, 128):
        a, b = run(plain, M), run(onednn, M)
        print(f"| {M} | {a * 1e3:.1f} ({gb / a:.1f}) | {b * 1e3:.1f} ({gb / b:.1f}) | {a / b:.2f}x |")


def bf16_rows():
    """One 8192 x 2048 bf16 weight: F.linear in bf16 against the weight copied into an fp32 scratch buffer and an
    fp32 GEMM, at M rows; where the second wins sets modeling.model.FP32_GEMM_MIN_ROWS (CPUs without native bf16)."""
    from modeling.cpu import native_bf16_gemm, scratch

    w = torch.randn(8192, 2048, dtype=torch.bfloat16)
    print(f"native bf16 GEMM on this CPU: {native_bf16_gemm()}")
    print("| rows M | bf16 F.linear ms | fp32 copy + GEMM ms | ratio |\n|---|---|---|---|")
    for M in (1, 8, 16, 24, 32, 64, 128, 512):
        x = torch.randn(M, 2048, dtype=torch.bfloat16)
        a = best_ms(lambda: F.linear(x, w))
        b = best_ms(lambda: F.linear(x.float(), scratch(w.numel(), torch.float32).view(8192, 2048).copy_(w)).bfloat16())
        print(f"| {M} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")


def quant_crossover():
    """One 8192 x 2048 layer at M rows: our kernel (avx2-*), torch's (cpu-*) and dequantize + one GEMM (in the
    dtype GPTQLinear uses on this CPU); where the GEMM wins sets quant.backends.DEQUANT_MIN_ROWS(_FP32)."""
    from modeling import ext
    from quant import linear as ql

    lin = torch.nn.Linear(2048, 8192)
    gemm_w = lin.weight.detach().to(torch.bfloat16)
    ours = ext.kernels
    mods = {}
    for bits in (4, 8):
        for who in ("ours", "torch"):
            ext.kernels = ours if who == "ours" else (lambda: None)
            mods[bits, who] = ql.GPTQLinear.from_linear(lin, bits, 128 if bits == 4 else -1).prepare(torch.bfloat16)
    ext.kernels = ours
    names = {k: m.kernel for k, m in mods.items()}
    print(f"GEMM dtype: {mods[4, 'ours'].gemm_dtype}")
    print("| tokens M | bf16 GEMM ms | " + " | ".join(f"{names[b, 'ours']} ms | {names[b, 'torch']} ms | int{b} dequant+GEMM ms"
                                                      for b in (4, 8)) + " |")
    print("|---|---|" + "---|---|---|" * 2)
    for M in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512):
        x = torch.randn(M, 2048, dtype=torch.bfloat16)
        row = [best_ms(lambda: F.linear(x, gemm_w))]
        for bits in (4, 8):
            for who, threshold in (("ours", float("inf")), ("torch", float("inf")), ("ours", 1)):
                m = mods[bits, who]
                m.gemm_from_rows = threshold  # inf: the kernel only; 1: dequantize + GEMM always
                row.append(best_ms(lambda: m(x)))
        print(f"| {M} | " + " | ".join(f"{v:.2f}" for v in row) + " |", flush=True)


def int4_kernels(folder: str | None):
    from modeling import ext

    k = ext.kernels()
    if k is None or not k.avx512_vnni():
        sys.exit("--int4-kernels compares avx2-int4 with avx512-int4: this CPU has no AVX-512 VNNI (or no kernels)")
    amx_rows = k.amx_min_rows()

    def build(wide: bool, make):  # avx512-int4, or avx2-int4 where it would be chosen (SANTACODER_NO_AVX512)
        os.environ["SANTACODER_NO_AVX512"] = "0" if wide else "1"
        try:
            return make()
        finally:
            del os.environ["SANTACODER_NO_AVX512"]

    def with_rows(rows, fn):  # rows: amx_min_rows for fn
        k.set_amx_min_rows(rows)
        try:
            return fn()
        finally:
            k.set_amx_min_rows(amx_rows)

    from quant.linear import GPTQLinear

    lin = torch.nn.Linear(2048, 8192)
    narrow = build(False, lambda: GPTQLinear.from_linear(lin, 4, 128).prepare(torch.bfloat16))
    wide = build(True, lambda: GPTQLinear.from_linear(lin, 4, 128).prepare(torch.bfloat16))
    assert (narrow.kernel, wide.kernel) == ("avx2-int4", "avx512-int4")
    amx = k.amx()
    print(f"one 8192 x 2048 int4 g128 layer, kernel only (AMX on this CPU: {amx})")
    print("| rows M | avx2-int4 ms | avx512-int4 VPDPBUSD ms | avx512-int4 AMX ms |\n|---|---|---|---|")
    for M in (1, 2, 4, 8, 16, 32, 128):
        x = torch.randn(M, 2048, dtype=torch.bfloat16)
        row = [best_ms(lambda: narrow.backend.forward(x)), with_rows(0, lambda: best_ms(lambda: wide.backend.forward(x)))]
        row.append(with_rows(1, lambda: best_ms(lambda: wide.backend.forward(x))) if amx else float("nan"))
        print(f"| {M} | " + " | ".join(f"{v:.2f}" for v in row) + " |", flush=True)

    from modeling import SantaCoderConfig, SantaCoderForCausalLM
    from quant import QuantConfig, quantize_

    def load():
        if folder:
            return SantaCoderForCausalLM.from_pretrained(folder)
        torch.manual_seed(0)
        model = SantaCoderForCausalLM.from_config(SantaCoderConfig(), dtype=torch.bfloat16)
        return quantize_(model, QuantConfig(method="rtn", bits=4, group_size=128, lm_head=True))

    models = {"avx512-int4": build(True, load), "avx2-int4": build(False, load)}
    x = torch.randint(0, 2000, (1, 430), generator=torch.Generator().manual_seed(1))
    rows = (1, 2, 4, 6, 8, 12, 16)
    best = {}
    with torch.inference_mode():
        caches = {name: m.new_cache(1, 430 + max(rows)) for name, m in models.items()}
        for name, m in models.items():
            m(x, cache=caches[name], last_only=True)
        for _ in range(4):
            for name, m in models.items():
                for M in rows:
                    caches[name].length = 430
                    t = time.perf_counter()
                    m(torch.full((1, M), 5), cache=caches[name], last_only=M == 1)
                    best[name, M] = min(best.get((name, M), float("inf")), time.perf_counter() - t)
    print(f"\nthe full-size model, M tokens after 430 cached (best of 4, interleaved; AMX from {amx_rows} rows on)")
    print("| rows M | " + " | ".join(f"{n} ms (x one row)" for n in models) + " |\n|---|---|---|")
    for M in rows:
        print(f"| {M} | " + " | ".join(f"{best[n, M] * 1e3:.1f} ({best[n, M] / best[n, 1]:.2f}x)" for n in models) + " |")


def stream_block_linears():
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from quant.linear import GPTQLinear

    warnings.filterwarnings("ignore")  # torch.ao's deprecation notices
    shapes = [(2048, 2304), (2048, 2048), (2048, 8192), (8192, 2048)] * 24  # c_attn, c_proj, c_fc, mlp c_proj
    int4, int8, fbgemm = [], [], []
    for k, n in shapes:
        lin = torch.nn.Linear(k, n)
        int4.append(GPTQLinear.from_linear(lin, 4, 128).prepare(torch.bfloat16))
        int8.append(GPTQLinear.from_linear(lin, 8, -1).prepare(torch.bfloat16))
        q = quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
        fbgemm.append(q[0])
    kinds = {"torch int4 g128 (bf16 activations)": int4, "torch int8 per channel (bf16 activations)": int8,
             "fbgemm dynamic int8 (int8 activations)": fbgemm}
    print("| kernel | weight GB | ms per pass (best of 5, interleaved) | GB/s |\n|---|---|---|---|")
    best = dict.fromkeys(kinds, float("inf"))
    with torch.inference_mode():
        for _ in range(5):
            for name, layers in kinds.items():
                dt = torch.float32 if name.startswith("fbgemm") else torch.bfloat16
                xs = {k: torch.randn(1, k, dtype=dt) for k in (2048, 8192)}
                t = time.perf_counter()
                for layer, (k, _) in zip(layers, shapes):
                    layer(xs[k])
                best[name] = min(best[name], time.perf_counter() - t)
    for name in kinds:
        gb = sum(k * n for k, n in shapes) * (0.5 if "int4" in name else 1) / 1e9
        print(f"| {name} | {gb:.2f} | {best[name] * 1e3:.1f} | {gb / best[name]:.1f} |")


if __name__ == "__main__":
    main()
