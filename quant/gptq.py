"""GPTQ (Frantar et al., 2022), written for this project: one Linear at a time, then the whole model.

For a Linear with weight W [out, in] and inputs X, GPTQ quantizes the columns of W one by one and
spreads each column's rounding error over the columns not yet quantized, weighted by the inverse
of the Hessian H = 2 X^T X / n, which keeps ||W X - Q X|| small rather than ||W - Q||.

Model level (`gptq_quantize_model`): blocks are quantized in order, each calibrated on the outputs
of the already-quantized blocks before it; inside a block the Linears go in execution order
(c_attn -> attn.c_proj -> mlp.c_fc -> mlp.c_proj), each one's inputs recomputed after the previous
one is quantized ("true sequential"). Only one block and its activations sit on `device` at a time.
"""

from __future__ import annotations

import logging
import math

import torch
from tqdm import tqdm

from .modules import set_module
from .primitives import group_count, quant_params

log = logging.getLogger(__name__)


class Hessian:
    """Running H = 2/n * sum x x^T over every input row a Linear sees (fp32, on the inputs' device)."""

    def __init__(self, in_features: int, device=None):
        self.H = torch.zeros(in_features, in_features, dtype=torch.float32, device=device)
        self.n = 0

    def add(self, x: torch.Tensor):
        x = x.reshape(-1, x.shape[-1]).float()  # (rows, in)
        rows = x.shape[0]
        self.H *= self.n / (self.n + rows)
        self.n += rows
        x = x * math.sqrt(2 / self.n)
        self.H.addmm_(x.t(), x)


def gptq_quantize_weight(W: torch.Tensor, H: torch.Tensor, bits: int = 4, group_size: int = 128, sym: bool = True,
                         act_order: bool = False, static_groups: bool = False, damp_percent: float = 0.01,
                         block_size: int = 128, name: str = "linear"):
    """GPTQ on one weight W [out, in] with Hessian H [in, in].

    Returns codes q uint8 [out, in], scales fp32 [out, groups], zeros int32 [out, groups], g_idx int32
    [in] (the group of each input column: not sorted when act_order forms groups over the permuted
    columns), and the damping that was used. Scales are rounded to fp16 before use, as they are stored.
    """
    W = W.detach().float().clone()
    H = H.detach().float().clone()
    out_f, in_f = W.shape
    groups = group_count(in_f, group_size)
    gs = in_f // groups
    maxq = 2**bits - 1

    dead = torch.diag(H) == 0  # columns never active: any value works, zero them
    H[dead, dead] = 1
    W[:, dead] = 0

    def params(cols):  # scale (fp16-rounded) and zero of each row of cols [out, n]
        scale, zero = quant_params(cols, bits, sym)
        return scale.half().float(), zero

    static = [params(W[:, g * gs:(g + 1) * gs]) for g in range(groups)] if static_groups or groups == 1 else None

    perm = None
    if act_order:  # quantize the columns with the largest Hessian diagonal (most input energy) first
        perm = torch.argsort(torch.diag(H), descending=True)
        W, H = W[:, perm], H[perm][:, perm]

    Hinv, damp = _inverse_cholesky(H, damp_percent, name)

    Q = torch.zeros(out_f, in_f, dtype=torch.uint8, device=W.device)
    scales = torch.zeros(out_f, groups, device=W.device)
    zeros = torch.zeros(out_f, groups, dtype=torch.int32, device=W.device)
    col_group = torch.zeros(in_f, dtype=torch.int32, device=W.device)  # group of each (permuted) column
    scale = zero = None
    for i1 in range(0, in_f, block_size):
        i2 = min(i1 + block_size, in_f)
        W1, Err1, Hinv1 = W[:, i1:i2].clone(), torch.zeros(out_f, i2 - i1, device=W.device), Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            orig = col if perm is None else int(perm[col])
            if static is not None:
                g = orig // gs
                scale, zero = static[g]
            elif col % gs == 0:  # a new group starts: its parameters from the error-updated columns
                g = col // gs
                cols = W1[:, i:i + gs] if i + gs <= i2 - i1 else torch.cat([W1[:, i:], W[:, i2:col + gs]], dim=1)
                scale, zero = params(cols)
            scales[:, g], zeros[:, g], col_group[col] = scale, zero, g
            w, d = W1[:, i], Hinv1[i, i]
            q = torch.clamp(torch.round(w / scale) + zero, 0, maxq)
            Q[:, col] = q.to(torch.uint8)
            err = (w - scale * (q - zero)) / d
            W1[:, i:] -= err[:, None] * Hinv1[i, i:][None, :]  # spread the error over the block's later columns
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]  # ...and, lazily, over every column after the block

    g_idx = col_group
    if perm is not None:
        inv = torch.argsort(perm)
        Q, g_idx = Q[:, inv], col_group[inv]
    return Q, scales, zeros, g_idx.to(torch.int32), damp


def _inverse_cholesky(H, damp_percent, name, max_tries: int = 6):
    """Upper Cholesky factor of H^-1 (what the column updates use), damping H by damp_percent of its mean
    diagonal; the damping grows tenfold while H is not positive definite."""
    mean_diag = torch.mean(torch.diag(H))
    idx = torch.arange(H.shape[0], device=H.device)
    damp = damp_percent
    for _ in range(max_tries):
        Hd = H.clone()
        Hd[idx, idx] += damp * mean_diag
        L, info = torch.linalg.cholesky_ex(Hd)
        if info == 0:
            Hinv = torch.cholesky_inverse(L)
            U, info = torch.linalg.cholesky_ex(Hinv, upper=True)
            if info == 0:
                if damp != damp_percent:
                    log.warning("%s: Hessian not positive definite with damp %.3g; used %.3g", name, damp_percent, damp)
                return U, damp
        damp *= 10
    raise RuntimeError(f"{name}: GPTQ Hessian is not positive definite even with damp_percent={damp / 10:g}; "
                       f"calibrate on more or longer samples")


# -- the whole model ---------------------------------------------------------------------------------
class _StopForward(Exception):
    pass


def _stop(_):
    raise _StopForward


@torch.no_grad()
def gptq_quantize_model(model, calibration: torch.Tensor, config, device=None, batch_size: int = 8):
    """Quantize `model` in place with GPTQ on token blocks `calibration` (n, T)."""
    device = torch.device(device) if device is not None else model.device
    dtype = model.dtype
    tr = model.transformer
    if calibration.dim() != 2 or calibration.shape[0] < 1 or calibration.dtype != torch.long:
        raise ValueError(f"calibration must be token ids of shape (n_samples >= 1, seq_len), got "
                         f"{tuple(calibration.shape)} {calibration.dtype}")
    n, T = calibration.shape
    if T > model.config.n_positions:
        raise ValueError(f"calibration blocks of {T} tokens are longer than n_positions={model.config.n_positions}")
    batches = [calibration[i:i + batch_size] for i in range(0, n, batch_size)]
    # inputs of block 0: the model's fp32 residual stream after the embeddings, kept on the CPU
    pos = torch.arange(T, device=model.device).unsqueeze(0)
    xs = [model.embed(b.to(model.device), pos).cpu() for b in batches]  # (b, T, C) each
    with tqdm(total=len(tr.h) * len(config.modules) + int(bool(config.lm_head)), desc="GPTQ",
              unit="linear") as bar:  # closed before an exception (Ctrl-C) reaches the caller
        for i, block in enumerate(tr.h):
            if device != model.device:
                _unpack_linears(block)  # oneDNN-packed CPU weights cannot move to another device
                block.to(device)
            for name in config.modules:  # true sequential: one Linear at a time, in execution order
                full = f"transformer.h.{i}.{name}"
                bar.set_postfix_str(full)
                lin = block.get_submodule(name)
                hess = Hessian(lin.in_features, device)
                hook = lin.register_forward_pre_hook(lambda mod, inp: _stop(hess.add(inp[0])))
                for x in xs:
                    try:
                        block(x.to(device), None, None, dtype)
                    except _StopForward:  # the rest of the block is not needed for this Linear's inputs
                        pass
                hook.remove()
                set_module(block, name, _gptq_linear(lin, hess.H, config, dtype, full))
                bar.update()
            xs = [block(x.to(device), None, None, dtype).cpu() for x in xs]  # inputs of the next block
            if device != model.device:  # GPTQLinear rebuilds its kernel layout for the model's device
                block.to(model.device)
        if config.lm_head:  # an untied copy, calibrated on the final hidden states
            hess = Hessian(model.config.n_embd, device)
            for x in xs:
                hess.add(model.final_norm(x.to(model.device)).to(device))
            lm_head = _gptq_linear(model.lm_head, hess.H, config, dtype, "lm_head")
            model.lm_head = lm_head.to(model.device)
            bar.update()


def _gptq_linear(lin, H, config, dtype, name):
    """A GPTQLinear on H's device, prepared for its kernel (a raised damping is logged by gptq_quantize_weight)."""
    from .linear import GPTQLinear, dense_weight

    q, scales, zeros, g_idx, _ = gptq_quantize_weight(
        dense_weight(lin).to(H.device), H, config.bits, config.group_size, config.sym, config.act_order,
        config.static_groups, config.damp_percent, name=name)
    bias = None if lin.bias is None else lin.bias.detach().to(H.device)
    return GPTQLinear.from_codes(q, scales, zeros, g_idx, config.bits, config.group_size, bias).prepare(dtype)


def _unpack_linears(block):
    for m in block.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.is_mkldnn:
            m.weight = torch.nn.Parameter(w.detach().to_dense(), requires_grad=False)
