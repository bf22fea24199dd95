"""GPTQLinear: each kernel against the dequantized reference, SQNR vs the fp Linear, bias, act-order."""

import logging

import pytest
import torch
import torch.nn as nn

from conftest import sqnr
from quant import GPTQLinear, QuantConfig
from quant.linear import (DEQUANT_MIN_ROWS, int4pack_cpu_block, pack_int4pack_cpu, unpack_codes_kn,
                          unpack_int4pack_cpu)
from quant.primitives import pack_rows, quantize_groupwise


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
def test_kernel_matches_dequantized_reference(bits, group_size, sym, kernel, cpu_kernels):
    lin = gaussian_linear()
    q = GPTQLinear.from_linear(lin, bits, group_size, sym).prepare(torch.bfloat16)
    assert q.kernel == cpu_kernels(kernel)
    ref = X @ q.dequantize().t() + q.bias.float()  # fp32 reference of the same quantized weight
    got = q(X.to(torch.bfloat16)).float()
    # only bf16 rounding separates them (and ours quantizes activations to int8 per block of 32: ~44-45 dB)
    assert sqnr(ref, got) > 40, f"{kernel}: {sqnr(ref, got):.1f} dB"


@pytest.mark.parametrize("bits,group_size,bound", [(8, -1, 38), (4, 128, 18), (4, 32, 19)])
def test_sqnr_vs_fp_linear(bits, group_size, bound, cpu_kernels):
    """Output SQNR against the fp32 Linear on Gaussian weights (measured: int8 ~41, int4 g128 ~19-20, g32 ~20.5)."""
    lin = gaussian_linear(2048, 512)
    x = torch.randn(8, 2048, generator=torch.Generator().manual_seed(2))
    q = GPTQLinear.from_linear(lin, bits, group_size).prepare(torch.bfloat16)
    with torch.no_grad():
        ref = x @ lin.weight.t()  # without bias: the bias is kept exactly and would inflate the SQNR
    assert sqnr(ref, q(x.to(torch.bfloat16)).float() - q.bias.float()) > bound


@pytest.mark.parametrize("bits,group_size", [(4, 128), (8, -1)])
def test_bias_kept_and_optional(bits, group_size, cpu_kernels):
    lin = gaussian_linear()
    q = GPTQLinear.from_linear(lin, bits, group_size).prepare(torch.bfloat16)
    assert torch.equal(q.bias, lin.bias.detach().half())
    nobias = nn.Linear(512, 256, bias=False)
    with torch.no_grad():
        nobias.weight.copy_(lin.weight)
    qn = GPTQLinear.from_linear(nobias, bits, group_size).prepare(torch.bfloat16)
    assert qn.bias is None and "bias" not in dict(qn.named_buffers())
    x = X.to(torch.bfloat16)
    assert sqnr(X @ qn.dequantize().t(), qn(x).float()) > 40  # the same weight, nothing added
    assert sqnr(lin.bias.detach().expand(5, -1), (q(x) - qn(x)).float()) > 35  # the bias, added once


@pytest.mark.parametrize("bits", [4, 8])
def test_act_order_g_idx_is_permuted_once_and_matches(bits, cpu_kernels):
    """A GPTQ act-order layer: groups are formed over a permutation of the input columns."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(256, 512, generator=g)
    perm = torch.randperm(512, generator=g)
    q_sorted, scales, zeros = quantize_groupwise(w[:, perm], bits, 128, sym=False)  # groups over permuted columns
    inv = torch.argsort(perm)
    g_idx = (torch.arange(512) // 128)[inv].to(torch.int32)  # group of each original column
    m = GPTQLinear.from_codes(q_sorted[:, inv], scales, zeros, g_idx, bits, 128).prepare(torch.bfloat16)
    assert m.perm is not None and m.kernel == (cpu_kernels("cpu-int4") if bits == 4 else "dequantize")
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


def test_int4pack_cpu_layout_reads_back_and_is_written_directly():
    assert int4pack_cpu_block() in (32, 64)  # this CPU's layout (AVX2 or AVX-512) is one we read
    q = torch.randint(0, 16, (192, 512), generator=torch.Generator().manual_seed(4), dtype=torch.int32)
    w4 = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
    assert torch.equal(unpack_int4pack_cpu(w4, 192, 512), q)
    assert torch.equal(pack_int4pack_cpu(q.t().to(torch.uint8).contiguous()), w4)  # what prepare() builds
    for block in (32, 64):  # both layouts, whichever this CPU uses: pack and unpack are inverses
        assert torch.equal(unpack_int4pack_cpu(pack_int4pack_cpu(q.t().to(torch.uint8).contiguous(), block), 192, 512,
                                               block), q)


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("bits", [4, 8])
def test_codes_unpacked_to_bytes_in_input_major_order(bits, byteorder, monkeypatch):
    import quant.backends as qb

    monkeypatch.setattr(qb.sys, "byteorder", byteorder)  # "big": the shift-and-mask path (no byte views)
    q = torch.randint(0, 2**bits, (96, 256), generator=torch.Generator().manual_seed(5), dtype=torch.int32)
    qweight = pack_rows(q.t().contiguous(), bits)
    assert torch.equal(unpack_codes_kn(qweight, bits, 256), q.t().to(torch.uint8))


@pytest.mark.parametrize("bits,group_size,sym,act_order", [
    (4, 128, True, False), (4, 32, False, False), (4, -1, True, False), (4, 128, False, True), (8, -1, True, False),
])
def test_prepare_drops_qweight_and_state_dict_rebuilds_it(bits, group_size, sym, act_order, cpu_kernels):
    lin = gaussian_linear()
    m = GPTQLinear.from_linear(lin, bits, group_size, sym)
    if act_order:  # the same weight quantized over a column permutation, as GPTQ's desc_act writes it
        perm = torch.randperm(512, generator=torch.Generator().manual_seed(5))
        q, s, z = quantize_groupwise(lin.weight.detach()[:, perm], bits, group_size, sym)
        inv = torch.argsort(perm)
        m = GPTQLinear.from_codes(q[:, inv], s, z, (torch.arange(512) // group_size)[inv], bits, group_size, lin.bias)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    dq = m.dequantize()
    m.prepare(torch.bfloat16)
    assert m.qweight is None and "qweight" not in dict(m.named_buffers())  # one copy of the codes, not two
    after = m.state_dict()
    assert set(after) == set(before)
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert torch.equal(m.dequantize(), dq)
    x = X.to(torch.bfloat16)
    y = m(x)
    assert torch.equal(m.prepare(torch.bfloat16)(x), y)  # preparing again starts from the kernel layout
    m.prepare(torch.float16)  # no CPU kernel for fp16 activations: the codes go back into qweight
    assert m.kernel == "dequantize" and m.qweight is not None
    assert set(dict(m.named_buffers())) == {"qweight", "qzeros", "scales", "g_idx", "bias"}  # no stale layout
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


@pytest.mark.parametrize("fast_bf16", [True, False])
@pytest.mark.parametrize("bits,group_size,sym", [(4, 128, True), (4, 64, False), (4, -1, True), (8, -1, True)])
def test_long_prompt_dequantize_gemm_matches_kernel(bits, group_size, sym, fast_bf16, monkeypatch, cpu_kernels):
    """From DEQUANT_MIN_ROWS tokens on, the CPU path is dequantize + one GEMM (bf16 where the CPU has fast bf16
    GEMMs, else fp32): the same result as the kernel."""
    import quant.backends as qb

    monkeypatch.setattr(qb, "cpu_bf16_gemm_fast", lambda: fast_bf16)
    lin = gaussian_linear()
    m = GPTQLinear.from_linear(lin, bits, group_size, sym).prepare(torch.bfloat16)
    assert m.gemm_dtype == (torch.bfloat16 if fast_bf16 else torch.float32)
    rows = (DEQUANT_MIN_ROWS if fast_bf16 else qb.DEQUANT_MIN_ROWS_FP32)[m.kernel]
    assert m.gemm_from_rows == rows
    calls = []
    long_forward = m.backend.long_forward
    monkeypatch.setattr(m.backend, "long_forward", lambda x, *bias: calls.append(1) or long_forward(x, *bias))
    x = torch.randn(rows, 512, generator=torch.Generator().manual_seed(6)).to(torch.bfloat16)
    ref = x.float() @ m.dequantize().t() + m.bias.float()
    long_path = m(x).float()
    assert calls == [1]  # the long path ran
    short_path = torch.cat([m(x[i:i + 1]) for i in range(rows)]).float()  # one token at a time: the kernel
    assert calls == [1]
    assert sqnr(ref, long_path) > 40 and sqnr(ref, short_path) > 40
    assert sqnr(short_path, long_path) > 40


@pytest.mark.parametrize("bits,group_size", [(4, 128), (4, 32), (8, -1)])
def test_long_prompt_weight_dequantized_in_chunks_of_rows(bits, group_size, monkeypatch, cpu_kernels):
    """A long prompt's dequantized weight goes through the scratch buffer a chunk of output rows at a time (here
    200 of 256 rows, then 56): the scratch never holds more than the chunk, and the product is the whole
    weight's, up to the GEMM's summation order."""
    import modeling.cpu as cpu

    m = GPTQLinear.from_linear(gaussian_linear(), bits, group_size).prepare(torch.bfloat16)
    if m.kernel == "cpu-int4":
        pytest.skip("torch's int4 layout is dequantized whole (K, N) for a prompt, not in chunks")
    x = torch.randn(64, 512, generator=torch.Generator().manual_seed(7))
    whole = m.backend.long_forward(x)
    sizes = []
    real = cpu.scratch
    monkeypatch.setattr(cpu, "scratch", lambda n, dtype: sizes.append(n) or real(n, dtype))
    monkeypatch.setattr(cpu, "SCRATCH_CHUNK", 200 * 512)
    chunked = m.backend.long_forward(x)
    assert chunked.shape == whole.shape == (64, 256)
    assert max(sizes) <= 200 * 512 and sum(sizes) == 256 * 512  # two chunks, together the whole weight once
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("bits,group_size,sym,kernel", [
    (4, 128, True, "cuda-int4"), (4, 64, False, "cuda-int4"), (8, -1, True, "cuda-int8"), (8, 128, True, "dequantize"),
])
def test_cuda_kernel_matches_dequantized_reference(bits, group_size, sym, kernel):
    lin = gaussian_linear(1024, 256)
    q = GPTQLinear.from_linear(lin.cuda(), bits, group_size, sym)
    before = {k: v.cpu() for k, v in q.state_dict().items()}
    q.prepare(torch.float16)
    assert q.kernel == kernel
    x = torch.randn(40, 1024, generator=torch.Generator().manual_seed(7)).cuda()
    ref = x @ q.dequantize().t() + q.bias.float()
    for rows in (x[:1], x[:5], x):  # decode, a short prefill, a prefill past cuda-int8's dequantize + GEMM threshold
        got = q(rows.half())
        assert got.dtype == torch.float16 and sqnr(ref[: len(rows)], got.float()) > 35
    after = {k: v.cpu() for k, v in q.state_dict().items()}  # qweight from the kernel layout or the host copy
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)
    if kernel == "cuda-int4":
        assert q.qweight is None and q.backend.host_qweight.device.type == "cpu"  # no second copy of the codes on the GPU


@pytest.mark.parametrize("bits,group_size,act_order", [(4, 128, False), (4, 64, True), (8, -1, False)])
def test_kernel_layout_built_in_column_chunks(monkeypatch, bits, group_size, act_order, cpu_kernels):
    """Layouts are built, and qweight rebuilt for the state dict, BUILD_CHUNK output columns at a time
    (bounded temporaries); a partial last chunk too."""
    import quant.backends as qb

    lin = gaussian_linear(512, 320)
    if act_order:
        perm = torch.randperm(512, generator=torch.Generator().manual_seed(8))
        q, sc, z = quantize_groupwise(lin.weight.detach()[:, perm], bits, group_size, sym=False)
        inv = torch.argsort(perm)
        m = GPTQLinear.from_codes(q[:, inv], sc, z, (torch.arange(512) // group_size)[inv], bits, group_size, lin.bias)
    else:
        m = GPTQLinear.from_linear(lin, bits, group_size)
    whole = GPTQLinear.from_codes(*m.codes(), bits, group_size, m.bias).prepare(torch.bfloat16)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    monkeypatch.setattr(qb, "BUILD_CHUNK", 128)  # 320 columns: chunks of 128, 128 and 64
    m.prepare(torch.bfloat16)
    layout = "w4" if bits == 4 else "w8"
    assert torch.equal(getattr(m.backend, layout), getattr(whole.backend, layout))
    after = m.state_dict()  # qweight rebuilt chunk by chunk too
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)
    x = X.to(torch.bfloat16)
    assert sqnr(x.float() @ m.dequantize().t() + m.bias.float(), m(x).float()) > 40


def test_int4_with_rows_not_a_multiple_of_the_layout_block(monkeypatch):
    """torch's kernel: 48 rows: torch's converter builds the int4 layout (not read back), so qweight is kept and
    long prompts stay on the kernel; 40 rows (not a multiple of 16): no int4 kernel at all. (Our own kernel takes
    any number of rows: test_avx2_int4_any_rows.)"""
    import modeling.ext

    monkeypatch.setattr(modeling.ext, "kernels", lambda: None)
    lin = gaussian_linear(512, 48)
    m = GPTQLinear.from_linear(lin, 4, 128)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.prepare(torch.bfloat16)
    assert m.kernel == "cpu-int4" and m.qweight is not None and m.gemm_from_rows == float("inf")
    x = torch.randn(200, 512, generator=torch.Generator().manual_seed(7))
    ref = x @ m.dequantize().t() + m.bias.float()
    assert sqnr(ref, m(x.to(torch.bfloat16)).float()) > 40
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    odd = GPTQLinear.from_linear(gaussian_linear(512, 40), 4, 128).prepare(torch.bfloat16)
    assert odd.kernel == "dequantize"
    assert sqnr(x[:5] @ odd.dequantize().t() + odd.bias.float(), odd(x[:5].to(torch.bfloat16)).float()) > 40


@pytest.mark.parametrize("bits,group_size", [(4, 128), (8, -1)])
def test_layers_past_the_dequantize_size_cutoff_keep_the_kernel_for_long_prompts(bits, group_size, monkeypatch,
                                                                                  cpu_kernels):
    """The lm_head (49280 x 2048) would need a 200 MB scratch to dequantize: layers over
    DEQUANT_MAX_WEIGHTS run long prompts through the kernel, row by row identical to short calls."""
    import quant.backends as qb

    lin = gaussian_linear()
    monkeypatch.setattr(qb, "DEQUANT_MAX_WEIGHTS", 512 * 256)
    assert GPTQLinear.from_linear(lin, bits, group_size).prepare(torch.bfloat16).gemm_from_rows < float("inf")
    monkeypatch.setattr(qb, "DEQUANT_MAX_WEIGHTS", 512 * 256 - 1)
    m = GPTQLinear.from_linear(lin, bits, group_size).prepare(torch.bfloat16)
    assert m.gemm_from_rows == float("inf")
    monkeypatch.setattr(m.backend, "long_forward", lambda x: pytest.fail("a large layer must not dequantize"))
    x = torch.randn(300, 512, generator=torch.Generator().manual_seed(8)).to(torch.bfloat16)
    assert torch.equal(m(x), torch.cat([m(x[i:i + 20]) for i in range(0, 300, 20)]))


@pytest.mark.parametrize("bits,group_size", [(4, 128), (8, -1), (8, 64)])
def test_backend_layout_is_a_non_persistent_buffer(bits, group_size, cpu_kernels):
    """The kernel layout travels with the module (.to(), deepcopy) and never reaches the state dict."""
    import copy

    m = GPTQLinear.from_linear(gaussian_linear(), bits, group_size).prepare(torch.bfloat16)
    layout = {"cpu-int4": {"backend.w4", "backend.sz"}, "cpu-int8": {"backend.w8", "backend.s8"}, "dequantize": set(),
              "avx2-int4": {"backend.w4", "backend.s", "backend.z"}, "avx2-int8": {"backend.w8", "backend.s8"},
              "avx512-int4": {"backend.w4", "backend.s", "backend.z"}}
    assert set(dict(m.named_buffers())) - {"qweight", "qzeros", "scales", "g_idx", "bias"} == layout[m.kernel]
    assert set(m.state_dict()) == {"qweight", "qzeros", "scales", "g_idx", "bias"}
    x = X.to(torch.bfloat16)
    twin = copy.deepcopy(m).to("cpu")
    assert twin.kernel == m.kernel and torch.equal(twin(x), m(x))
    assert all(torch.equal(v, twin.state_dict()[k]) for k, v in m.state_dict().items())
    twin.to(torch.float32)  # a dtype cast: the stored fp16 scales and bias stay as they are, the layout is rebuilt
    assert twin.scales.dtype == twin.bias.dtype == torch.float16 and twin.kernel == m.kernel
    assert torch.equal(twin(x), m(x)) and all(torch.equal(v, twin.state_dict()[k]) for k, v in m.state_dict().items())


def int8_blocks(x: torch.Tensor) -> torch.Tensor:
    """x with each block of 32 columns rounded to int8 codes of scale max|x| / 127: what our kernels multiply."""
    b = x.float().view(x.shape[0], -1, 32)
    d = b.abs().amax(-1, keepdim=True) / 127
    return (torch.round(b / torch.where(d > 0, d, 1)) * d).view(x.shape)


@pytest.fixture
def int4_kernel(monkeypatch):
    """use(kernel) makes GPTQLinear take our `kernel` for int4 and returns its backend name: avx2 (the AVX2 kernel
    even where AVX-512 is there), vnni (avx512-int4 through VPDPBUSD for every row count) or amx (avx512-int4
    through AMX tiles for every row count); skips where this CPU lacks it."""
    import modeling.ext

    k = modeling.ext.kernels()
    if k is None:
        pytest.skip("our C++ CPU kernels are not available on this machine (no AVX2 or no compiler)")
    rows = k.amx_min_rows()

    def use(kernel):
        if kernel == "avx2":
            monkeypatch.setenv("SANTACODER_NO_AVX512", "1")
            return "avx2-int4"
        if not k.avx512_vnni() or (kernel == "amx" and not k.amx()):
            pytest.skip(f"this CPU has no {'AMX' if kernel == 'amx' else 'AVX-512 VNNI'}")
        k.set_amx_min_rows(1 if kernel == "amx" else 0)
        return "avx512-int4"

    yield use
    k.set_amx_min_rows(rows)


@pytest.mark.parametrize("bits,in_f,out_f,group_size", [
    (4, 512, 48, 32), (4, 512, 40, 64), (4, 192, 24, -1), (4, 384, 56, 128), (4, 768, 8, 256), (8, 512, 40, -1),
    (8, 96, 8, -1),
])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("kernel", ["avx2", "vnni", "amx"])
def test_our_cpu_kernels_are_exact_on_int8_activations(bits, in_f, out_f, group_size, dtype, kernel, int4_kernel):
    """Our kernels compute x' @ W.T exactly (to fp32 rounding), x' being x quantized to int8 per block of 32
    columns: every row count 1-9 (4-row tiles and the 1-3 row tails), any number of output rows, groups of
    32 / 64 / 128 / 256 / whole rows, bf16 and fp32 activations; int4 through each of our kernels (AVX2, AVX-512
    VNNI, AMX; for the last two the output rows rounded up to a multiple of 16). Each row's result is bit for bit the
    one it gets alone (prompt-lookup verification then sees the logits of one-token decoding). The int4 weight,
    dequantized for long prompts, is the reference's exactly."""
    import modeling.ext

    if bits == 8 and kernel != "avx2":
        pytest.skip("int8 has one kernel of ours")
    if modeling.ext.kernels() is None:
        pytest.skip("our C++ CPU kernels are not available on this machine (no AVX2 or no compiler)")
    name = int4_kernel(kernel) if bits == 4 else "avx2-int8"
    if name == "avx512-int4":
        out_f = -(-out_f // 16) * 16
    m = GPTQLinear.from_linear(gaussian_linear(in_f, out_f), bits, group_size, sym=bits == 8).prepare(dtype)
    assert m.kernel == name and m.qweight is None
    x = torch.randn(9, in_f, generator=torch.Generator().manual_seed(9)).to(dtype)
    w = m.dequantize()
    alone = torch.cat([m.backend.forward(x[i:i + 1]) for i in range(9)])
    for rows in range(1, 10):
        got = m.backend.forward(x[:rows])
        assert got.dtype == torch.float32
        assert sqnr(int8_blocks(x[:rows]) @ w.t(), got) > 100
        assert torch.equal(got, alone[:rows])  # a row's result does not depend on the rows that come with it
    assert 40 < sqnr(x.float() @ w.t(), m.backend.forward(x)) < 55  # against x itself: int8 rounding (~45 dB)
    if kernel == "amx":  # the two avx512-int4 kernels agree bit for bit: the row count that picks one changes nothing
        modeling.ext.kernels().set_amx_min_rows(0)
        assert torch.equal(m.backend.forward(x), alone)
    if bits == 4:  # long prompts: rows n0.. of the weight dequantized by the kernel into x's dtype, rounded once
        n0 = out_f // 2 if name == "avx2-int4" else out_f // 32 * 16
        part = torch.empty(out_f - n0, in_f, dtype=dtype)
        dequant = modeling.ext.kernels().q4_dequant if name == "avx2-int4" else modeling.ext.kernels().q4n_dequant
        dequant(m.backend.w4, m.backend.s, m.backend.z, m.backend.group, n0, part)
        assert torch.equal(part, w[n0:].float().to(dtype))
    # the layer: the kernel adds the bias in fp32 and rounds once to the activation dtype
    assert m.backend.fused
    for rows in (1, 4, 9):
        y = m(x[:rows])
        assert y.dtype == dtype and torch.equal(y, (m.backend.forward(x[:rows]) + m.bias.float()).to(dtype))


def test_no_avx512_env_keeps_the_avx2_kernel(monkeypatch):
    """SANTACODER_NO_AVX512=1 (for comparisons, or a CPU whose AVX-512 clocks down) gives avx2-int4 where
    avx512-int4 would be chosen."""
    import modeling.ext

    k = modeling.ext.kernels()
    if k is None or not k.avx512_vnni():
        pytest.skip("this CPU has no AVX-512 VNNI (or our kernels are not built)")
    lin = gaussian_linear(512, 48)
    assert GPTQLinear.from_linear(lin, 4, 128).prepare(torch.bfloat16).kernel == "avx512-int4"
    monkeypatch.setenv("SANTACODER_NO_AVX512", "1")
    assert GPTQLinear.from_linear(lin, 4, 128).prepare(torch.bfloat16).kernel == "avx2-int4"
