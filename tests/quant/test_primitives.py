"""quant.primitives: round trips, exact GPTQ v1 bit layout, quantization error as SQNR."""

import pytest
import torch

from conftest import sqnr
from quant import primitives
from quant.primitives import (clip_quant_params, clip_search_torch, default_g_idx, dequantize_groupwise, pack_gptq, pack_rows,
                              quant_params, quantize_groupwise, quantize_int8_per_channel, unpack_gptq, unpack_rows)


def test_pack_rows_hand_computed():
    # 4-bit: 8 codes per int32, lowest bits first: codes 1..8 -> 0x87654321
    codes = torch.arange(1, 9, dtype=torch.int32).view(8, 1)
    assert pack_rows(codes, 4).item() == 0x87654321 - 2**32  # as a signed int32
    # 8-bit: 4 codes per int32: [0x01, 0x80, 0xff, 0x7f] -> 0x7fff8001
    codes = torch.tensor([[0x01], [0x80], [0xFF], [0x7F]])
    assert pack_rows(codes, 8).item() == 0x7FFF8001


@pytest.mark.parametrize("bits", [4, 8])
def test_pack_unpack_identity(bits, monkeypatch):
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 2**bits, (64, 24), generator=g, dtype=torch.int32)
    whole = pack_rows(codes, bits)
    assert torch.equal(unpack_rows(whole, bits), codes)
    monkeypatch.setattr(primitives, "PACK_CHUNK", 64 * 5)  # 5 columns at a time, a short last chunk
    assert torch.equal(pack_rows(codes, bits), whole)


def test_gptq_layout_small_example():
    """out=8, in=8, int4, one group: the symmetric zero 8 is stored as 7 in every nibble."""
    q = torch.arange(64, dtype=torch.uint8).view(8, 8) % 16  # q[o, i] = (8*o + i) % 16
    scales = torch.full((8, 1), 0.5)
    zeros = torch.full((8, 1), 8, dtype=torch.int32)
    t = pack_gptq(q, scales, zeros, default_g_idx(8, -1), bits=4)
    assert t["qweight"].shape == (1, 8) and t["qweight"].dtype == torch.int32
    # column o of qweight packs q[o, 0..7] = (8o..8o+7) % 16; o=0 -> 0x76543210, o=1 -> 0xfedcba98
    assert t["qweight"][0, 0].item() == 0x76543210
    assert t["qweight"][0, 1].item() == 0xFEDCBA98 - 2**32
    assert t["qzeros"].shape == (1, 1) and t["qzeros"].item() == 0x77777777
    assert t["scales"].dtype == torch.float16 and t["scales"].shape == (1, 8)
    assert torch.equal(t["g_idx"], torch.zeros(8, dtype=torch.int32))


@pytest.mark.parametrize("bits,group_size,sym", [(4, 128, True), (4, 128, False), (4, 32, True), (4, 64, False),
                                                  (4, -1, True), (8, -1, True), (8, 128, False)])
def test_gptq_round_trip(bits, group_size, sym):
    w = torch.randn(96, 256, generator=torch.Generator().manual_seed(1))
    q, scales, zeros = quantize_groupwise(w, bits, group_size, sym)
    g_idx = default_g_idx(256, group_size)
    t = pack_gptq(q, scales, zeros, g_idx, bits)
    groups = 1 if group_size == -1 else 256 // group_size
    assert t["qweight"].shape == (256 * bits // 32, 96) and t["qzeros"].shape == (groups, 96 * bits // 32)
    q2, s2, z2, g2 = unpack_gptq(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], bits)
    assert torch.equal(q2, q.to(torch.int32)) and torch.equal(z2, zeros) and torch.equal(g2, g_idx)
    assert torch.equal(s2, scales.half().float())
    # the dequantized weight is close to w: every code is within half a step of the original
    dq = dequantize_groupwise(q, scales, zeros)
    step = scales.repeat_interleave(256 // groups, dim=1)
    inside = (w - dq).abs() <= step / 2 + 1e-6
    if sym:  # the symmetric grid clips the positive end by one step at most
        inside |= (w - dq).abs() <= step + 1e-6
    assert inside.all()


def test_sqnr_on_gaussian_weights():
    w = torch.randn(512, 2048, generator=torch.Generator().manual_seed(2))
    q8, s8 = quantize_int8_per_channel(w)
    assert q8.dtype == torch.int8 and q8.min() >= -128 and q8.max() <= 127
    assert sqnr(w, q8.float() * s8[:, None]) > 38
    q, s, z = quantize_groupwise(w, 4, 128, sym=True)
    int4_sym = sqnr(w, dequantize_groupwise(q, s, z))
    q, s, z = quantize_groupwise(w, 4, 128, sym=False)
    int4_asym = sqnr(w, dequantize_groupwise(q, s, z))
    assert int4_sym > 18 and int4_asym > 18


def test_bad_input():
    w = torch.randn(8, 100)
    with pytest.raises(ValueError, match="in_features=100 is not divisible by group_size=128"):
        quantize_groupwise(w, 4, 128)
    with pytest.raises(ValueError, match="bits=3"):
        quantize_groupwise(w, 3, -1)
    with pytest.raises(ValueError, match="zero points"):
        pack_gptq(torch.zeros(8, 8, dtype=torch.uint8), torch.ones(8, 1), torch.zeros(8, 1, dtype=torch.int32),
                  default_g_idx(8, -1), 4)


@pytest.mark.parametrize("sym", [True, False], ids=["sym", "asym"])
def test_clip_search_never_increases_the_weighted_error_of_a_group(sym):
    """Heavy-tailed groups (where clipping pays) and their column weights: the searched range never does worse
    than the full one for any group, and does better for most."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    w = torch.distributions.StudentT(3.0).sample((512, 128)) * 0.02  # (groups, group_size)
    imp = torch.rand(128, generator=g) ** 2 * 10  # e.g. a Hessian diagonal

    def err(scale, zero):
        q = torch.clamp(torch.round(w / scale[:, None]) + zero[:, None], 0, 15)
        return ((w - scale[:, None] * (q - zero[:, None])) ** 2) @ imp

    full_scale, full_zero = quant_params(w, 4, sym)
    full = err(full_scale.half().float(), full_zero)
    scale, zero = clip_quant_params(w, 4, sym, imp)
    searched = err(scale, zero)
    assert torch.equal(scale, scale.half().float())  # fp16-rounded, as stored
    assert (searched <= full).all()
    # measured: 91% of the groups better, total error 0.76x (sym) / 0.83x (asym)
    assert (searched < full).float().mean() > 0.8 and searched.sum() < 0.9 * full.sum()
    unweighted, _ = clip_quant_params(w, 4, sym)  # equal weights: another range for some groups
    assert not torch.equal(unweighted, scale)


@pytest.mark.parametrize("bits,sym", [(4, True), (4, False), (8, True), (8, False)])
def test_clip_search_in_cpp_chooses_what_the_torch_search_chooses(bits, sym):
    """The C++ search (modeling/csrc) against the torch one, groups of 128 and whole 2048-wide rows, a width that
    is no multiple of 8 (the scalar tail), no column weights, heavy-tailed weights, an all-zero row: the same scale and zero point for every row but near-ties (only the order of the
    error's sum differs), and then an error within 1e-5 of the torch choice's."""
    from modeling import ext

    if ext.kernels() is None:
        pytest.skip("our CPU kernels are not available here")
    torch.manual_seed(1)
    for rows, n, weighted in [(2048, 128, True), (64, 2048, True), (512, 100, True), (512, 128, False)]:
        w = torch.distributions.StudentT(3.0).sample((rows, n)) * 0.02
        w[0] = 0
        imp = torch.rand(n) ** 2 * 10 if weighted else torch.ones(n)
        scale, zero = clip_quant_params(w, bits, sym, imp if weighted else None)
        ref_scale, ref_zero = clip_search_torch(w, bits, sym, imp)
        assert scale.dtype == ref_scale.dtype and zero.dtype == ref_zero.dtype == torch.int32
        same = (scale == ref_scale) & (zero == ref_zero)
        assert same.float().mean() >= 0.999

        def err(s, z):
            q = torch.clamp(torch.round(w / s[:, None]) + z[:, None], 0, 2**bits - 1)
            return ((w - s[:, None] * (q - z[:, None])) ** 2) @ imp

        assert (err(scale, zero) <= err(ref_scale, ref_zero) * (1 + 1e-5) + 1e-12).all()
