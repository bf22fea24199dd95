"""One token through 24 c_fc-sized Linear weights (8192 x 2048, 768 MB in bf16, far beyond cache):
F.linear against oneDNN's prepacked kernel (what modeling.model.Linear uses on CPU).

    python benchmarks/bench_linear.py [--threads 2] [--dtype bf16|fp32]
"""

import argparse
import time

import torch
import torch.nn.functional as F


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
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


if __name__ == "__main__":
    main()
