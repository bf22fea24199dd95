"""Multi-query attention on CPU at SantaCoder's shapes (16 query heads, 1 K/V head, head dim 128).

Compares, for prefill (T new tokens) and decode (1 token against S cached):
- fold:        query heads folded into the sequence, (1, T*16, 128) @ (1, 128, S), fp32 softmax
               (what modeling/model.py does);
- fold-sdpa:   the same folded layout through F.scaled_dot_product_attention with a boolean mask;
- sdpa-gqa:    unfolded (1, 16, T, 128) queries, 1 K/V head, enable_gqa=True, is_causal for prefill.

    python benchmarks/bench_attention.py [--threads 2] [--dtype bf16]
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import best_ms  # noqa: E402

NH, HD = 16, 128


def fold(q, k, v, mask):
    att = torch.matmul(q, k.transpose(-1, -2)).float()
    if mask is not None:
        att = att.masked_fill(~mask, torch.finfo(torch.float32).min)
    return torch.matmul(att.softmax(-1).to(v.dtype), v)


def fold_sdpa(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)


def sdpa_gqa(q, k, v, causal):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=1.0, enable_gqa=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dt = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    print("| case | fold (ms) | fold-sdpa (ms) | sdpa-gqa (ms) |\n|---|---|---|---|")
    for T in (128, 512, 2048):  # prefill: T tokens, no cache
        q = torch.randn(1, NH, T, HD, dtype=dt)
        k, v = torch.randn(1, 1, T, HD, dtype=dt), torch.randn(1, 1, T, HD, dtype=dt)
        qf = q.transpose(1, 2).reshape(1, 1, T * NH, HD)
        mask = torch.ones(T, T, dtype=torch.bool).tril()[:, None, :].expand(T, NH, T).reshape(1, 1, T * NH, T)
        reps = 5 if T < 2048 else 2
        r = [best_ms(lambda: fold(qf, k, v, mask), reps), best_ms(lambda: fold_sdpa(qf, k, v, mask), reps),
             best_ms(lambda: sdpa_gqa(q, k, v, True), reps)]
        print(f"| prefill T={T} | " + " | ".join(f"{x:.2f}" for x in r) + " |")
    for S in (128, 512, 2048):  # decode: 1 token against S cached positions
        q = torch.randn(1, NH, 1, HD, dtype=dt)
        k, v = torch.randn(1, 1, S, HD, dtype=dt), torch.randn(1, 1, S, HD, dtype=dt)
        qf = q.reshape(1, 1, NH, HD)
        r = [best_ms(lambda: fold(qf, k, v, None), 50), best_ms(lambda: fold_sdpa(qf, k, v, None), 50),
             best_ms(lambda: sdpa_gqa(q, k, v, False), 50)]
        print(f"| decode S={S} | " + " | ".join(f"{x:.3f}" for x in r) + " |")


if __name__ == "__main__":
    main()
