"""GPTQ (Frantar et al., 2022), written for this project: one Linear at a time, then the whole model.

For a Linear with weight W [out, in] and inputs X, GPTQ quantizes the columns of W one by one and
spreads each column's rounding error over the columns not yet quantized, weighted by the inverse
of the Hessian H = 2 X^T X / n, which keeps ||W X - Q X|| small rather than ||W - Q||. Which column
goes first is `order` (column_order); each group's range can be searched (clip, weighted by diag H).

Model level (`gptq_quantize_model`): blocks are quantized in order, each calibrated on the outputs
of the already-quantized blocks before it; inside a block the Linears go in execution order
(c_attn -> attn.c_proj -> mlp.c_fc -> mlp.c_proj), each one's inputs recomputed after the previous
one is quantized ("true sequential"); what is already quantized is not run again (the attention and the MLP
replayed as their c_proj over its kept inputs, the attention's outputs recorded once; kept in a temporary
file). Only one block and its activations sit on `device` at a time. With order="auto" each Linear keeps the
(order, clip) candidate with the smallest output error.
"""

from __future__ import annotations

import logging
import math
import mmap
import tempfile

import torch
import torch.nn as nn
from tqdm import tqdm

from .config import ORDERS
from .modules import set_module
from .primitives import clip_quant_params, dequantize_groupwise, group_count, quant_params
from .serialization import release_freed_memory

log = logging.getLogger(__name__)


class Hessian:
    """Running H = 2/n * sum x x^T over every input row a Linear sees (fp32, on the inputs' device).

    Inputs of 2048 or more accumulate only the blocks of 1024 columns on and above the diagonal (mlp.c_proj's
    8192: 36 of 64 products; 2048: 3 of 4) and mirror them when H is read. The same H bit for bit as with
    blocks of 2048 (10 of 16 / all 4), in 0.83x / 0.86x the time (4096 rows, 2 threads, Intel AVX-512 host);
    blocks of 512 were no faster for 8192 and changed the sums' order.

    bf16 inputs on a CPU with AMX (a bf16 model's Linears) go to our kernel instead (`gram_bf16`): the same
    exact products (bf16 x bf16 fits fp32) summed in fp32 in another order, unscaled, as blocks of 32 x 32 on
    and above the diagonal, scaled by 2/n when H is first read (later inputs take the fp32 path).
    """

    def __init__(self, in_features: int, device=None, block: int = 1024):
        self.in_features, self.device = in_features, device
        self._H = self._S = self._work = None  # _work: gram_bf16's tiles, kept from batch to batch
        self.n, self.block = 0, block if in_features >= 2 * block else in_features

    def _amx(self, x) -> bool:
        if not (x.dtype == torch.bfloat16 and x.device.type == "cpu" and self.in_features % 32 == 0):
            return False
        k = _cpp()
        return k is not None and k.amx_bf16()

    def add(self, x: torch.Tensor):
        x = x.reshape(-1, x.shape[-1])
        if self._S is None and self._H is None:  # the first batch chooses the path
            if self._amx(x):
                blocks = self.in_features // 32
                self._S = torch.zeros(blocks * (blocks + 1) // 2 * 1024, device=x.device)
            else:
                self._H = torch.zeros(self.in_features, self.in_features, dtype=torch.float32, device=self.device)
        if self._S is not None:
            if x.dtype != torch.bfloat16:
                raise ValueError(f"Hessian: bf16 inputs so far, now {x.dtype}")
            need = 2 * -(-x.shape[0] // 32) * 32 * x.shape[1]
            if self._work is None or self._work.numel() < need:
                self._work = None
                self._work = torch.empty(need, dtype=torch.bfloat16)
            _cpp().gram_bf16(self._S, x, self._work)
            self.n += x.shape[0]
            return
        x = x.float()
        rows = x.shape[0]
        self._H *= self.n / (self.n + rows)
        self.n += rows
        x = x * math.sqrt(2 / self.n)
        b, n = self.block, x.shape[1]
        for i in range(0, n, b):
            self._H[i:i + b, i:].addmm_(x[:, i:i + b].t(), x[:, i:])

    @property
    def H(self) -> torch.Tensor:
        if self._S is not None:
            self._H = torch.empty(self.in_features, self.in_features)
            _cpp().gram_unpack(self._S, self._H, 2 / self.n)
            self._S = self._work = None
            return self._H
        if self._H is None:  # no inputs
            return torch.zeros(self.in_features, self.in_features, device=self.device)
        b, n = self.block, self._H.shape[0]
        for i in range(b, n, b):  # the blocks below the diagonal from those above it
            self._H[i:i + b, :i] = self._H[:i, i:i + b].t()
        return self._H


def column_order(hdiag: torch.Tensor, group_size: int, order: str):
    """The order in which GPTQ quantizes the input columns (a permutation, None = as stored).

    "act-order" (GPTQ's desc_act): by decreasing Hessian diagonal, so the columns with the most input energy
    go first, while the most columns are left to absorb their error; groups are then formed over the
    permuted columns, which scatters them (g_idx not sorted). "group-aware": the same idea without moving
    any column out of its group (after Gafni et al., "Dual Precision Quantization", CVPRW 2025): groups
    by decreasing largest diagonal, columns inside each group by decreasing diagonal, so every group stays
    the contiguous block of stored columns it was (g_idx static, every kernel applies).
    """
    if order == "columns":
        return None
    if order == "act-order":
        return torch.argsort(hdiag, descending=True)
    if order != "group-aware":
        raise ValueError(f"order={order!r} is not one of {', '.join(ORDERS[1:])}")  # "auto" is the caller's
    n = hdiag.numel()
    d = hdiag.view(n // group_size, group_size)  # (groups, group_size)
    within = torch.argsort(d, dim=1, descending=True, stable=True)
    groups = torch.argsort(d.amax(dim=1), descending=True, stable=True)
    return (within + torch.arange(0, n, group_size, device=hdiag.device)[:, None])[groups].reshape(n)


def gptq_quantize_weight(W: torch.Tensor, H: torch.Tensor, bits: int = 4, group_size: int = 128, sym: bool = True,
                         act_order: bool = False, static_groups: bool = False, damp_percent: float = 0.01,
                         block_size: int = 128, name: str = "linear", order: str | None = None, clip: bool = False,
                         factor=None):
    """GPTQ on one weight W [out, in] with Hessian H [in, in].

    `order`: "columns" | "group-aware" | "act-order" (act_order=True is "act-order"); `clip`: each group's
    range searched to minimise its Hessian-diagonal-weighted error (primitives.clip_quant_params).
    Returns codes q uint8 [out, in], scales fp32 [out, groups], zeros int32 [out, groups], g_idx int32
    [in] (the group of each input column: not sorted when act-order forms groups over the permuted
    columns), and the damping that was used. Scales are rounded to fp16 before use, as they are stored.
    `factor`: a (perm, U, damp) from hessian_factor for this H and order, to share it between calls.
    """
    order = order or ("act-order" if act_order else "columns")
    W = W.detach().float()  # never written: Wt below is a copy
    H = H.detach().float()
    out_f, in_f = W.shape
    groups = group_count(in_f, group_size)
    gs = in_f // groups
    maxq = 2**bits - 1

    dead = torch.diag(H) == 0  # columns never active: any value works, zero them
    if dead.any():
        H, W = H.clone(), W.clone()
        H[dead, dead] = 1
        W[:, dead] = 0
    hdiag = torch.diag(H)

    def params(cols, imp):  # scale (fp16-rounded) and zero of each row of cols [out, n] with column weights imp [n]
        if clip:
            return clip_quant_params(cols, bits, sym, imp)
        scale, zero = quant_params(cols, bits, sym)
        return scale.half().float(), zero

    static = None
    if static_groups or groups == 1:
        static = [params(W[:, g * gs:(g + 1) * gs], hdiag[g * gs:(g + 1) * gs]) for g in range(groups)]

    perm, U, damp = factor if factor is not None else hessian_factor(H, group_size, order, damp_percent, name)
    Wt = (W if perm is None else W[:, perm]).t().contiguous()  # (in, out): one column of W per contiguous row
    del W
    d = hdiag if perm is None else hdiag[perm]
    orig = torch.arange(in_f, device=Wt.device) if perm is None else perm  # stored column of each step

    Qt = torch.zeros(in_f, out_f, dtype=torch.uint8, device=Wt.device)
    scales = torch.zeros(out_f, groups, device=Wt.device)
    zeros = torch.zeros(out_f, groups, dtype=torch.int32, device=Wt.device)
    col_group = torch.zeros(in_f, dtype=torch.int32, device=Wt.device)  # group of each (permuted) column
    # with groups formed in stored order, a group's columns may be quantized in any order inside it
    stored_groups = order != "act-order"
    step_group = (orig // gs).tolist() if static is not None else None
    scale = zero = None
    columns = _columns_cpp if Wt.device.type == "cpu" and _cpp() is not None else _columns_torch
    for i1 in range(0, in_f, block_size):
        i2 = min(i1 + block_size, in_f)
        W1, U1 = Wt[i1:i2].clone(), U[i1:i2, i1:i2].contiguous()  # (b, out), (b, b)
        Err1 = torch.empty_like(W1)
        i = 0
        while i < i2 - i1:  # one group's run of steps at a time
            col = i1 + i
            if static is not None:
                g, j = step_group[col], i + 1
                while j < i2 - i1 and step_group[i1 + j] == g:
                    j += 1
                scale, zero = static[g]
            else:
                if col % gs == 0:  # a new group starts: its parameters from the error-updated columns
                    g = int(orig[col]) // gs if stored_groups else col // gs
                    rows = W1[i:i + gs] if i + gs <= i2 - i1 else torch.cat([W1[i:], Wt[i2:col + gs]])
                    scale, zero = params(rows.t(), d[col:col + gs])
                    scales[:, g], zeros[:, g] = scale, zero
                j = min(i2 - i1, i + gs - col % gs)
            col_group[col:i1 + j] = g
            columns(W1, U1, scale, zero, maxq, i, j, Qt[i1:i2], Err1)
            i = j
        Wt[i2:].addmm_(U[i1:i2, i2:].t(), Err1, alpha=-1)  # ...and, lazily, over every column after the block
    if static is not None:
        for g, (scale, zero) in enumerate(static):
            scales[:, g], zeros[:, g] = scale, zero

    Q, g_idx = Qt.t(), col_group
    if perm is not None:
        inv = torch.argsort(perm)
        Q, g_idx = Q[:, inv], col_group[inv]
    return Q.contiguous(), scales, zeros, g_idx.to(torch.int32), damp


def _columns_torch(W1, U1, scale, zero, maxq, a, b, Q1, Err1):
    """GPTQ's steps a .. b of a block W1 (b, out) with one group's scale and zero: codes into Q1, errors (divided
    by U1's diagonal) into Err1, each spread over the block's later steps."""
    for i in range(a, b):
        w = W1[i]
        q = torch.clamp(torch.round(w / scale) + zero, 0, maxq)
        Q1[i] = q.to(torch.uint8)
        err = (w - scale * (q - zero)) / U1[i, i]
        W1[i + 1:].addr_(U1[i, i + 1:], err, alpha=-1)  # spread the error over the block's later columns
        Err1[i] = err


def _columns_cpp(W1, U1, scale, zero, maxq, a, b, Q1, Err1):
    """_columns_torch in our C++ (gptq_columns): the same operations per element, one call per group's run instead
    of a dozen tensor ops per column."""
    _cpp().gptq_columns(W1, U1, scale.float().contiguous(), zero.to(torch.int32).contiguous(), maxq, a, b, Q1, Err1)


CPP = True  # our C++ for GPTQ on CPU (AMX Hessians, the column loop); tests and benchmarks turn it off to compare


def _cpp():
    """Our compiled CPU kernels where CPP is on and they could be built, else None (torch ops then)."""
    if not CPP:
        return None
    from modeling.ext import kernels

    return kernels()


def hessian_factor(H, group_size: int, order: str, damp_percent: float = 0.01, name: str = "linear"):
    """(perm, U, damp): the column order for `order` and the upper Cholesky factor of the damped, permuted H's
    inverse that GPTQ's updates use (a zero diagonal, a column never active, counts as 1)."""
    dead = torch.diag(H) == 0
    if dead.any():
        H = H.clone()
        H[dead, dead] = 1
    gs = H.shape[0] if group_size == -1 else group_size
    perm = column_order(torch.diag(H), gs, order)
    copy = None if perm is None else lambda: _permuted(H, perm)
    U, damp = _inverse_cholesky(H, damp_percent, name, copy=copy)
    return perm, U, damp


def _permuted(H, perm, rows: int = 512):
    """H[perm][:, perm], a block of rows at a time: one new n x n matrix, not two (268 MB each for mlp.c_proj)."""
    out = torch.empty_like(H)
    for r in range(0, H.shape[0], rows):
        out[r:r + rows] = H[perm[r:r + rows]][:, perm]
    return out


def output_error(W: torch.Tensor, Wq: torch.Tensor, H: torch.Tensor) -> float:
    """sum over rows of (w - wq) H (w - wq)^T: with H = 2 X^T X / n, twice the mean squared error of the
    Linear's outputs over its n calibration rows, ||W X - Q X||^2 without the inputs (2 * out * in^2 flops:
    _gptq_linear passes every k-th output row only and scales the sum up)."""
    D = (W.float() - Wq.float())
    return float(((D @ H) * D).sum())


def _inverse_cholesky(H, damp_percent, name, max_tries: int = 6, copy=None):
    """Upper Cholesky factor U of H^-1 (H^-1 = U^T U, what the column updates use), damping H by damp_percent
    of its mean diagonal; the damping grows tenfold while H is not positive definite.

    One factorization and one triangular inverse, both in place in one copy of H (peak: H and one more n x n,
    268 MB each for mlp.c_proj, where LAPACK's factor, its flipped copies and an inverse held four): H = R R^T
    with R upper (a Cholesky from the last row up), so H^-1 = R^-T R^-1 and U = R^-1. `copy()` gives that copy
    (default H.clone(); hessian_factor's: H in GPTQ's column order).
    """
    mean_diag = torch.mean(torch.diag(H))
    damp = damp_percent
    for _ in range(max_tries):
        A = H.clone() if copy is None else copy()
        A.diagonal().add_(damp * mean_diag)
        if _upper_cholesky_(A):
            U = _upper_inverse_(A)
            if bool(torch.isfinite(torch.diag(U)).all()):
                if damp != damp_percent:
                    log.warning("%s: Hessian not positive definite with damp %.3g; used %.3g", name, damp_percent, damp)
                return U, damp
        del A
        damp *= 10
    raise RuntimeError(f"{name}: GPTQ Hessian is not positive definite even with damp_percent={damp / 10:g}; "
                       f"calibrate on more or longer samples")


FACTOR_BLOCK = 256  # rows per block of the in-place factorizations: GEMMs of (n x 256) @ (256 x 256) do the work


def _upper_cholesky_(A: torch.Tensor, b: int = FACTOR_BLOCK) -> bool:
    """In place: a symmetric positive definite A (its upper triangle is read) becomes the upper triangular R with
    A = R R^T, zeros below the diagonal. Blocked, from the last block up: with A = [[P, Q], [Q^T, D]], D = R22 R22^T
    (LAPACK's lower factor of D reversed), R12 = Q R22^-T, and P - R12 R12^T is factored the same way (only its
    blocks on and above the diagonal updated). False, A spoilt, when A is not positive definite."""
    n = A.shape[0]
    starts = range(0, n, b)
    for s in reversed(starts):
        e = min(s + b, n)
        L, info = torch.linalg.cholesky_ex(A[s:e, s:e].flip(0, 1))  # reads D's upper triangle (flipped: lower)
        if info != 0 or not bool(torch.isfinite(L.diagonal()).all()):
            return False
        R = L.flip(0, 1)  # upper, R R^T = D
        A[s:e, s:e] = R
        A[s:e, :s] = 0
        if s == 0:
            break
        X = torch.linalg.solve_triangular(R.t(), A[:s, s:e], upper=False, left=False)  # X R^T = Q
        A[:s, s:e] = X
        for t in range(0, s, b):
            A[:t + b, t:t + b].addmm_(X[:t + b], X[t:t + b].t(), alpha=-1)
    return True


def _upper_inverse_(A: torch.Tensor, b: int = FACTOR_BLOCK) -> torch.Tensor:
    """In place: an upper triangular A (zeros below the diagonal) becomes A^-1, a block column at a time from the
    left ([[U11, -U11 R12 Ukk], [0, Ukk]] with U11 the inverse already in place and Ukk the diagonal block's);
    products with U11 skip its zero blocks."""
    n = A.shape[0]
    for s in range(0, n, b):
        e = min(s + b, n)
        Ukk = torch.linalg.solve_triangular(A[s:e, s:e], torch.eye(e - s, dtype=A.dtype, device=A.device), upper=True)
        if s > 0:
            T = torch.zeros(s, e - s, dtype=A.dtype, device=A.device)
            for t in range(0, s, b):
                T[:t + b].addmm_(A[:t + b, t:t + b], A[t:t + b, s:e])
            A[:s, s:e] = -(T @ Ukk)
        A[s:e, s:e] = Ukk
    return A


# -- the whole model ---------------------------------------------------------------------------------
class _StopForward(Exception):
    pass


REPLAY = True  # record and replay finished submodules (tests turn it off to check that the numbers are the same)


class _Replay(nn.Module):
    """Stands in for a module whose outputs are already known (or not needed: None): returns them in order, one
    per batch."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs, self.i = outputs, 0

    def forward(self, *args, **kwargs):
        self.i += 1
        return None if self.outputs is None else self.outputs[self.i - 1]


@torch.no_grad()
def gptq_quantize_model(model, calibration: torch.Tensor, config, device=None, batch_size: int = 8) -> dict:
    """Quantize `model` in place with GPTQ on token blocks `calibration` (n, T).

    Returns {module name: relative output error ||WX - QX||^2 / ||WX||^2 on its calibration inputs}.
    """
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
    errors = {}
    with tqdm(total=len(tr.h) * len(config.modules) + int(bool(config.lm_head)), desc="GPTQ",
              unit="linear") as bar:  # closed before an exception (Ctrl-C) reaches the caller
        for i, block in enumerate(tr.h):
            release_freed_memory()  # what the last block freed, before this one allocates
            if device != model.device:
                _unpack_linears(block)  # oneDNN-packed CPU weights cannot move to another device
                block.to(device)

            def quantize(name, H):
                full = f"transformer.h.{i}.{name}"
                bar.set_postfix_str(full)
                q, errors[full] = _gptq_linear(block.get_submodule(name), H, config, dtype, full)
                set_module(block, name, q)
                bar.update()

            xs = _block_sequentially(block, xs, config.modules, quantize, device, dtype)
            if device != model.device:  # GPTQLinear rebuilds its kernel layout for the model's device
                block.to(model.device)
        if config.lm_head:  # an untied copy, calibrated on the final hidden states
            release_freed_memory()
            hess = Hessian(model.config.n_embd, device)
            while xs:  # each batch freed once counted: the lm_head's GPTQ runs without them
                hess.add(model.final_norm(xs.pop(0).to(model.device)).to(device))
            head = config.for_lm_head()
            lm_head, errors["lm_head"] = _gptq_linear(model.lm_head, hess.H, head, dtype, "lm_head")
            if head is not config and head.choices:
                config.choices = {**(config.choices or {}), **head.choices}
            model.lm_head = lm_head.to(model.device)
            bar.update()
    return errors


# Block modules that return their last Linear's output unchanged (Attention and MLP end in `return self.c_proj(...)`):
# once that Linear is quantized, the module's output is that Linear applied to the inputs seen in its Hessian pass
ENDS_IN = {"attn": "attn.c_proj", "mlp": "mlp.c_proj"}
FED_BY = {"attn": "ln_1", "mlp": "ln_2"}  # the LayerNorm whose output only that module reads: not run while it is replayed


class _Spill:
    """Recorded batches kept in an unnamed temporary file (TMPDIR), read back through private maps of the page
    cache: out of the process's memory (the inputs of mlp.c_proj are 1 GB for 128 x 512 tokens), out of malloc's
    heap, where 16-19 MB batches outlived the temporaries around them and pinned the freed memory between them,
    and off the GPU when the block runs there (a batch goes back to its device when read). A write that fails (a
    full disk) drops the whole record: the module is then run again instead."""

    warned = False

    def __init__(self):
        self.file, self.items, self.end, self.ok = None, [], 0, True

    def put(self, t: torch.Tensor):
        if not self.ok:
            return
        try:
            if self.file is None:
                self.file = tempfile.TemporaryFile(prefix="gptq-")
            data = t.detach().contiguous().cpu()
            self.file.seek(self.end)
            self.file.write(memoryview(data.view(-1).view(torch.uint8).numpy()))
            self.file.flush()
            self.items.append((self.end, data.nbytes, data.shape, data.dtype, t.device))
            self.end += -(-data.nbytes // mmap.ALLOCATIONGRANULARITY) * mmap.ALLOCATIONGRANULARITY  # maps start on pages
        except OSError as e:
            if not _Spill.warned:  # once per process: the same happens in every block
                log.warning("GPTQ: could not keep recorded batches in a temporary file (%s); running the modules "
                            "again instead", e)
                _Spill.warned = True
            self.close()
            self.ok = False

    def __len__(self):
        return len(self.items) if self.ok else 0

    def __getitem__(self, i) -> torch.Tensor:
        offset, nbytes, shape, dtype, device = self.items[i]
        mm = mmap.mmap(self.file.fileno(), nbytes, access=mmap.ACCESS_COPY, offset=offset)
        return torch.frombuffer(mm, dtype=dtype).view(shape).to(device)  # unmapped when the tensor is freed

    def close(self):
        if self.file is not None:
            try:
                self.file.close()
            except OSError:  # flushing what a full disk refused: the batches are dropped anyway
                pass
        self.file, self.items = None, []


class _Through(nn.Module):
    """Stands in for a module that ends in Linear `last`: `last` applied to that Linear's recorded inputs."""

    def __init__(self, last, inputs):
        super().__init__()
        self.last, self.inputs, self.i = last, inputs, 0

    def forward(self, *args, **kwargs):
        self.i += 1
        return self.last(self.inputs[self.i - 1])


def _block_sequentially(block, xs, names, quantize, device, dtype):
    """True sequential GPTQ of one block: its Linears `names` one at a time in execution order, each calibrated
    on the inputs it gets once every Linear before it is quantized; returns the block's outputs for `xs` (in xs).

    Each pass over the batches runs the block up to the next Linear's input; the last one writes the outputs over
    the inputs in `xs`, batch by batch. What is already quantized gives the same numbers in every later pass, so it
    is not run again: the inputs of a Linear that ends its module (ENDS_IN) are kept from its own pass and the module
    is replayed as that Linear over them (the attention without its c_attn and scores; the MLP without its c_fc,
    computed once instead of twice), and the attention's outputs are recorded the first time they are computed and
    replayed after. The same numbers as running the whole block for every Linear.
    """
    parts = [m for m in ("attn", *names) if m == "attn" or m.startswith("attn.")] if REPLAY else []
    done, records, through = set(), {}, {}  # through: module -> _Spill of the inputs of the Linear it ends in

    def fixed(m):  # every quantized Linear inside m is done
        return all(n in done for n in names if n == m or n.startswith(m + "."))

    def inside(m, others):
        return any(m.startswith(o + ".") for o in others)

    kept = []  # every _Spill of this block: closed at the end, also when a pass raises

    def new_spill():
        kept.append(_Spill())
        return kept[-1]

    try:
        for target in [*names, None]:  # None: the last pass, the block's outputs
            sources = {**through, **records}
            replay = [m for m in sources if not inside(m, sources)]
            for m in [m for m in records if m not in replay]:
                records.pop(m).close()  # inside a replayed module: never needed again
            for m in [m for m in through if m not in replay]:
                through.pop(m).close()
            ends = next((m for m, last in ENDS_IN.items() if last == target), None) if REPLAY else None
            record = [m for m in parts if target is not None and fixed(m) and m not in records]
            record = [m for m in record if not inside(m, record) and not inside(m, replay)
                      and not (ends and inside(m, [ends]))]  # ends is replayed through its Linear after
            stand_ins = {m: _Replay(records[m]) if m in records else
                         _Through(block.get_submodule(ENDS_IN[m]), through[m]) for m in replay}
            stand_ins.update({FED_BY[m]: _Replay(None) for m in replay if m in FED_BY})  # its output is not read
            originals = {m: block.get_submodule(m) for m in stand_ins}
            lin = None if target is None else block.get_submodule(target)
            seen = {m: new_spill() for m in record}
            hess, spill, hooks = None, new_spill() if ends else None, []
            try:
                for m, stand_in in stand_ins.items():
                    set_module(block, m, stand_in)
                hooks += [block.get_submodule(m).register_forward_hook(lambda mod, inp, out, m=m: seen[m].put(out))
                          for m in record]
                if lin is not None:
                    hess = Hessian(lin.in_features, device)

                    def counted(mod, inp):
                        hess.add(inp[0])
                        if spill is not None:
                            spill.put(inp[0])
                        raise _StopForward  # the rest of the block is not needed for this Linear's inputs

                    hooks.append(lin.register_forward_pre_hook(counted))
                for k in range(len(xs)):
                    try:
                        out = block(xs[k].to(device), None, None, dtype).cpu()
                    except _StopForward:
                        continue
                    xs[k] = out  # the last pass: the block's outputs take their inputs' place (512 MB not held twice)
            finally:
                for h in hooks:
                    h.remove()
                for m, mod in originals.items():
                    set_module(block, m, mod)
            for m, outputs in seen.items():
                if len(outputs) == len(xs):
                    records[m] = outputs
                    if m in through:
                        through.pop(m).close()  # its outputs are recorded now
                else:
                    outputs.close()
            if target is None:
                return xs
            if spill is not None and len(spill) == len(xs):
                through[ends] = spill
            elif spill is not None:
                spill.close()
            quantize(target, hess.H)
            done.add(target)
            del hess
    finally:
        for s in kept:
            s.close()


ERROR_ROWS = 512  # output rows the error of a candidate is measured on (every k-th one; 1/4 of mlp.c_fc's)


def _gptq_linear(lin, H, config, dtype, name):
    """A GPTQLinear on H's device, prepared for its kernel: GPTQ with each of config.candidates(), keeping the
    one with the smallest output error; its choice and relative error go to config.choices[name]."""
    from .linear import GPTQLinear, dense_weight

    W = dense_weight(lin).to(H.device).float()
    step = max(1, W.shape[0] // ERROR_ROWS)  # errors from every step-th output row (scaled up)
    best, factor = None, (None, None)
    for order, clip in config.candidates():
        if factor[0] != order:  # the factorization depends on the order only: shared by clip on / off
            factor = (None, None)  # free the last one first
            factor = (order, hessian_factor(H, config.group_size, order, config.damp_percent, name))
        q, scales, zeros, g_idx, _ = gptq_quantize_weight(
            W, H, config.bits, config.group_size, config.sym, static_groups=config.static_groups,
            damp_percent=config.damp_percent, name=name, order=order, clip=clip, factor=factor[1])
        Wq = dequantize_groupwise(q[::step], scales[::step], zeros[::step], g_idx)  # the sampled rows only
        err = step * output_error(W[::step], Wq, H)
        if best is None or err < best[0]:
            best = (err, order + ("+clip" if clip else ""), q, scales, zeros, g_idx)
    err, choice, q, scales, zeros, g_idx = best
    rel = err / max(step * output_error(W[::step], torch.zeros_like(W[::step]), H), 1e-30)
    config.choices = {**(config.choices or {}), name: choice}
    log.info("%s: %s, relative output error %.3g", name, choice, rel)
    bias = None if lin.bias is None else lin.bias.detach().to(H.device)
    return GPTQLinear.from_codes(q, scales, zeros, g_idx, config.bits, config.group_size, bias).prepare(dtype), rel


def _unpack_linears(block):
    for m in block.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.is_mkldnn:
            m.weight = torch.nn.Parameter(w.detach().to_dense(), requires_grad=False)
