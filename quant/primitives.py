"""Pure quantization primitives: no modules, no devices (tensors in, tensors out, on their own device).

Conventions (GPTQ's, so our tensors are GPTQ v1 tensors):
- weights are [out, in] as in nn.Linear;
- `q` holds unsigned codes in [0, 2**bits - 1]; the real value is `scale * (q - zero)`;
- symmetric means zero = 2**(bits-1) for every group (8 for int4, 128 for int8) and
  scale = 2 * max|w| / (2**bits - 1);
- group g covers input columns [g*group_size, (g+1)*group_size); group_size -1 = the whole row.

GPTQ v1 on-disk layout (what `pack_gptq` writes and `unpack_gptq` reads):
- qweight int32 [in * bits / 32, out]: the codes of input rows 32/bits*i .. 32/bits*i + 32/bits - 1
  packed into row i, lowest bits first;
- qzeros int32 [groups, out * bits / 32]: zero - 1, packed along the output dimension;
- scales fp16 [groups, out]; g_idx int32 [in]: the group of each input column.
"""

from __future__ import annotations

import torch

from modeling import ext

BITS = (4, 8)


def _check_bits(bits: int):
    if bits not in BITS:
        raise ValueError(f"bits={bits} is not supported; use 4 or 8")


def group_count(in_features: int, group_size: int) -> int:
    """Number of groups per row; raises if in_features is not a multiple of group_size."""
    if group_size == -1:
        return 1
    if group_size <= 0 or in_features % group_size:
        raise ValueError(f"in_features={in_features} is not divisible by group_size={group_size}")
    return in_features // group_size


def quant_params(w: torch.Tensor, bits: int, sym: bool):
    """Scale and integer zero for each row of w [..., n] (reduced over the last dim), as GPTQ does.

    Asymmetric zeros are kept in [1, maxq]: GPTQ v1 stores zero - 1, so zero 0 cannot be written.
    """
    _check_bits(bits)
    maxq = 2**bits - 1
    w = w.float()
    if sym:
        scale = 2 * w.abs().amax(dim=-1) / maxq
        zero = torch.full_like(scale, (maxq + 1) // 2)
    else:
        lo, hi = w.amin(dim=-1).clamp(max=0), w.amax(dim=-1).clamp(min=0)
        scale = (hi - lo) / maxq
        zero = torch.round(-lo / scale.clamp(min=1e-12)).clamp(1, maxq)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row: any scale works
    return scale, zero.to(torch.int32)


CLIP_SHRINKS = tuple(1 - i / 40 for i in range(20))  # range factors searched by clip_quant_params: 1.0 .. 0.525


def clip_quant_params(w: torch.Tensor, bits: int, sym: bool, importance: torch.Tensor | None = None,
                      shrinks=CLIP_SHRINKS):
    """Scale and zero for each row of w [..., n] that minimise sum_j importance_j * (w_j - dequant(quant(w_j)))^2
    over the ranges quant_params gives for w * p, p in `shrinks` (1.0 first: never worse than no search).

    `importance` [n] weights the columns (GPTQ passes the Hessian diagonal, so the error counts as much as the
    input energy of its column); None weighs them equally. Scales are rounded to fp16 before they are
    tried, as they are stored; ties keep the larger range. On a CPU with our kernels the search runs in C++
    (modeling/csrc: the same arithmetic but for the order of the error's sum; 4096 groups of 128 in 4 ms against
    49 ms, 2048 rows of 8192 in 0.12 s against 6.7 s, 2 threads), else in torch.
    """
    _check_bits(bits)
    w = w.float()
    imp = torch.ones(w.shape[-1], device=w.device) if importance is None else importance.float()
    kernels = ext.kernels() if w.device.type == "cpu" and w.numel() else None
    if kernels is None:
        return clip_search_torch(w, bits, sym, imp, shrinks)
    scale, zero = kernels.clip_search(w.reshape(-1, w.shape[-1]), imp, bits, sym, [float(p) for p in shrinks])
    return scale.view(w.shape[:-1]), zero.view(w.shape[:-1])


def clip_search_torch(w: torch.Tensor, bits: int, sym: bool, imp: torch.Tensor, shrinks=CLIP_SHRINKS):
    """clip_quant_params in torch ops (any device): w [..., n] fp32, imp [n] fp32."""
    maxq = 2**bits - 1
    best_scale = best_zero = best_err = None
    for p in shrinks:
        scale, zero = quant_params(w * p, bits, sym)
        scale = scale.half().float()
        q = torch.clamp(torch.round(w / scale[..., None]) + zero[..., None], 0, maxq)
        err = ((w - scale[..., None] * (q - zero[..., None])) ** 2 @ imp)  # (...)
        if best_err is None:
            best_scale, best_zero, best_err = scale, zero, err
        else:
            better = err < best_err
            best_scale = torch.where(better, scale, best_scale)
            best_zero = torch.where(better, zero, best_zero)
            best_err = torch.where(better, err, best_err)
    return best_scale, best_zero


def quantize_groupwise(w: torch.Tensor, bits: int, group_size: int = 128, sym: bool = True, clip: bool = False):
    """Round-to-nearest group-wise quantization of w [out, in]; clip=True searches each group's range
    (clip_quant_params, unweighted: round-to-nearest has no inputs to weigh by).

    Returns q uint8 [out, in] (codes), scales fp32 [out, groups], zeros int32 [out, groups].
    """
    out_f, in_f = w.shape
    groups = group_count(in_f, group_size)
    wg = w.float().reshape(out_f, groups, in_f // groups)  # (out, groups, group_size)
    scale, zero = clip_quant_params(wg, bits, sym) if clip else quant_params(wg, bits, sym)
    q = torch.round(wg / scale[..., None]) + zero[..., None]
    q = q.clamp(0, 2**bits - 1).to(torch.uint8).reshape(out_f, in_f)
    return q, scale, zero


def dequantize_groupwise(q, scales, zeros, g_idx=None, dtype=torch.float32):
    """w [out, in] = scale * (q - zero) for the group of each input column.

    The group of column i is g_idx[i] when given, else i // (in / groups), groups = scales.shape[1].
    """
    out_f, in_f = q.shape
    G = scales.shape[1]
    if g_idx is None or torch.equal(g_idx.long(), torch.arange(in_f, device=q.device) // (in_f // G)):
        # groups in column order: broadcast each group's scale and zero (2.3x faster than gathering)
        w = (q.view(out_f, G, in_f // G).float() - zeros[..., None].float()) * scales[..., None].float()
        return w.view(out_f, in_f).to(dtype)
    g = g_idx.long()
    return ((q.float() - zeros[:, g].float()) * scales[:, g].float()).to(dtype)


def quantize_int8_per_channel(w: torch.Tensor):
    """Symmetric per-output-channel int8 (what torch._weight_int8pack_mm takes).

    Returns q int8 [out, in] and scales fp32 [out]; w ~= q * scales[:, None]. Same codes as
    quantize_groupwise(w, 8, -1, sym=True) shifted by its zero, 128.
    """
    q, scale, zero = quantize_groupwise(w, 8, -1, sym=True)
    return (q.to(torch.int16) - zero).to(torch.int8), scale[:, 0]


PACK_CHUNK = 2**22  # codes packed at a time


def pack_rows(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack unsigned codes [rows, cols] along rows into int32 [rows * bits / 32, cols], lowest bits first."""
    per = 32 // bits
    rows, cols = codes.shape
    if rows % per:
        raise ValueError(f"{rows} rows cannot be packed {per} per int32")
    shifts = (torch.arange(per, device=codes.device, dtype=torch.int64) * bits)[None, :, None]
    out = torch.empty(rows // per, cols, dtype=torch.int32, device=codes.device)
    step = max(1, PACK_CHUNK // rows)  # columns at a time: int64 temporaries of 32 MB, not 1.6 GB for the lm_head
    for c0 in range(0, cols, step):
        c = codes[:, c0:c0 + step].to(torch.int64).reshape(rows // per, per, -1)
        packed = (c << shifts).sum(dim=1)  # < 2**32
        out[:, c0:c0 + step] = torch.where(packed >= 2**31, packed - 2**32, packed)
    return out


def unpack_rows(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of pack_rows: int32 [rows * bits / 32, cols] -> int32 codes [rows, cols]."""
    per = 32 // bits
    shifts = (torch.arange(per, device=packed.device, dtype=torch.int32) * bits)[None, :, None]
    codes = (packed[:, None, :] >> shifts) & (2**bits - 1)  # arithmetic shift, then mask
    return codes.reshape(-1, packed.shape[1])


def pack_gptq(q, scales, zeros, g_idx, bits: int):
    """GPTQ v1 tensors from codes q [out, in], scales/zeros [out, groups] and g_idx [in].

    Returns dict(qweight, qzeros, scales, g_idx) in the on-disk dtypes and shapes.
    """
    _check_bits(bits)
    if ((zeros < 1) | (zeros > 2**bits - 1)).any():
        raise ValueError("GPTQ v1 stores zero - 1: zero points must lie in [1, 2**bits - 1]")
    return dict(
        qweight=pack_rows(q.t(), bits),  # (in, out) packed along in
        qzeros=pack_rows(zeros - 1, bits).t().contiguous(),  # (out, groups) packed along out, transposed
        scales=scales.t().contiguous().to(torch.float16),
        g_idx=g_idx.to(torch.int32),
    )


def unpack_gptq(qweight, qzeros, scales, g_idx, bits: int):
    """Codes q [out, in] (None when qweight is None), scales fp32 [out, groups], zeros int32 [out, groups]
    (the +1 restored), g_idx."""
    _check_bits(bits)
    q = None if qweight is None else unpack_rows(qweight, bits).t().contiguous()
    zeros = unpack_rows(qzeros.t().contiguous(), bits) + 1  # (out, groups)
    return q, scales.t().float().contiguous(), zeros, g_idx.to(torch.int32)


def default_g_idx(in_features: int, group_size: int, device=None) -> torch.Tensor:
    """g_idx of a checkpoint without act-order: column i is in group i // group_size."""
    gs = in_features if group_size == -1 else group_size
    return (torch.arange(in_features, device=device) // gs).to(torch.int32)
