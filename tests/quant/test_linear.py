"""GPTQLinear: each kernel against the dequantized reference, SQNR vs the fp Linear, bias, act-order."""

import logging

import pytest
import torch
import torch.nn as nn

from quant import GPTQLinear, QuantConfig
from quant.primitives import quantize_groupwise


def sqnr(ref, x):
    return (10 * torch.log10(ref.float().pow(2).mean() / (ref.float() - x.float()).pow(2).mean())).item()


def gaussian_linear(in_f=512, out_f=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(in_f, out_f)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(out_f, in_f, generator=g) / in_f**0.5)
        lin.bias.copy_(torch.randn(out_f, generator=g))
    return lin


X = torch.randn(5, 512, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("bits,group_size,sym,kernel", [
    (4, 32, True, "cpu-int4"), (4, 64, False, "cpu-int4"), (4, 128, True, "cpu-int4"), (4, 128, False, "cpu-int4"),
    (4, 256, True, "cpu-int4"), (4, -1, False, "cpu-int4"), (8, -1, True, "cpu-int8"), (8, 128, True, "dequantize"),
    (8, -1, False, "dequantize"),
])
def test_kernel_matches_dequantized_reference(bits, group_size, sym, kernel):
    lin = gaussian_linear()
    q = GPTQLinear.from_linear(lin, bits, group_size, sym).prepare(torch.bfloat16)
    assert q.kernel == kernel
    ref = X @ q.dequantize().t() + q.bias.float()  # fp32 reference of the same quantized weight
    got = q(X.to(torch.bfloat16)).float()
    assert sqnr(ref, got) > 40, f"{kernel}: {sqnr(ref, got):.1f} dB"  # only bf16 rounding separates them


@pytest.mark.parametrize("bits,group_size,bound", [(8, -1, 38), (4, 128, 18), (4, 32, 19)])
def test_sqnr_vs_fp_linear(bits, group_size, bound):
    """Output SQNR against the fp32 Linear on Gaussian weights (measured: int8 ~41, int4 g128 ~19-20, g32 ~20.5)."""
    lin = gaussian_linear(2048, 512)
    x = torch.randn(8, 2048, generator=torch.Generator().manual_seed(2))
    q = GPTQLinear.from_linear(lin, bits, group_size).prepare(torch.bfloat16)
    with torch.no_grad():
        ref = x @ lin.weight.t()  # without bias: the bias is kept exactly and would inflate the SQNR
    assert sqnr(ref, q(x.to(torch.bfloat16)).float() - q.bias.float()) > bound


def test_bias_kept_and_optional():
    lin = gaussian_linear()
    q = GPTQLinear.from_linear(lin, 4, 128)
    assert torch.equal(q.bias, lin.bias.detach().half())
    nobias = nn.Linear(512, 256, bias=False)
    qn = GPTQLinear.from_linear(nobias, 4, 128).prepare(torch.bfloat16)
    assert qn.bias is None and "bias" not in dict(qn.named_buffers())
    assert qn(X.to(torch.bfloat16)).shape == (5, 256)


@pytest.mark.parametrize("bits", [4, 8])
def test_act_order_g_idx_is_permuted_once_and_matches(bits):
    """A GPTQ act-order layer: groups are formed over a permutation of the input columns."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(256, 512, generator=g)
    perm = torch.randperm(512, generator=g)
    q_sorted, scales, zeros = quantize_groupwise(w[:, perm], bits, 128, sym=False)  # groups over permuted columns
    inv = torch.argsort(perm)
    g_idx = (torch.arange(512) // 128)[inv].to(torch.int32)  # group of each original column
    m = GPTQLinear.from_codes(q_sorted[:, inv], scales, zeros, g_idx, bits, 128).prepare(torch.bfloat16)
    assert m.perm is not None and m.kernel in ("cpu-int4", "dequantize")
    dq = m.dequantize()
    # dequantize() honours g_idx: it is the permuted-group weight put back in the original column order
    ref_w = (q_sorted.float() - zeros.repeat_interleave(128, 1)) * scales.half().float().repeat_interleave(128, 1)
    assert torch.allclose(dq, ref_w[:, inv], atol=1e-6)
    assert sqnr(X @ dq.t(), m(X.to(torch.bfloat16)).float()) > 40


def test_bad_input_and_fallback_warning(caplog):
    with pytest.raises(ValueError, match="transformer.h.0.mlp.c_proj: in_features=100 is not divisible by group_size=128"):
        GPTQLinear.from_linear(nn.Linear(100, 64), 4, 128, name="transformer.h.0.mlp.c_proj")
    with pytest.raises(ValueError, match="bits=3"):
        QuantConfig(method="rtn", bits=3)
    with pytest.raises(ValueError, match="method='awq'"):
        QuantConfig(method="awq")
    with caplog.at_level(logging.WARNING):
        a = GPTQLinear.from_linear(gaussian_linear(), 8, 64).prepare(torch.float32)
        GPTQLinear.from_linear(gaussian_linear(), 8, 64).prepare(torch.float32)
    assert a.kernel == "dequantize"
    assert caplog.text.count("dequantizing on the fly") == 1
