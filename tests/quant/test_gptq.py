"""GPTQ: one layer against round-to-nearest on correlated inputs, the Hessian, damping, and the whole
small trained model (perplexity on held-out code)."""

import collections
import logging
import tempfile

import pytest
import torch

import calibration_data as cd
from modeling import SantaCoderForCausalLM
from quant import GPTQLinear, QuantConfig, quantize_
from quant.evaluate import perplexity
from quant import gptq
from quant.gptq import Hessian, column_order, gptq_quantize_weight
from quant.primitives import default_g_idx, dequantize_groupwise, quantize_groupwise


def correlated_layer(out_f=128, in_f=256, rows=2048, seed=0):
    """A weight and inputs whose features are correlated and unevenly scaled, as in real activations."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(in_f, in_f, generator=g) / in_f**0.5
    X = (torch.randn(rows, in_f, generator=g) @ mix) * torch.linspace(0.1, 3, in_f)
    return torch.randn(out_f, in_f, generator=g) / in_f**0.5, X


def output_error(W, Wq, X):
    return ((X @ W.t() - X @ Wq.t()) ** 2).mean().item()


def test_hessian_is_two_over_n_xtx_over_batches():
    X = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    h = Hessian(16)
    for part in X.split(70):
        h.add(part.view(7, 10, 16) if len(part) == 70 else part)
    assert torch.allclose(h.H, 2 * X.t() @ X / 300, atol=1e-4) and h.n == 300


@pytest.mark.parametrize("bits,group_size,act_order,static", [
    (4, 128, False, False), (4, 32, True, False), (4, 64, True, True), (4, -1, False, False), (8, -1, False, False),
])
def test_gptq_beats_round_to_nearest_on_the_layer_output(bits, group_size, act_order, static):
    W, X = correlated_layer()
    h = Hessian(256)
    h.add(X)
    q, scales, zeros, g_idx, damp = gptq_quantize_weight(W, h.H, bits, group_size, sym=True, act_order=act_order,
                                                         static_groups=static)
    assert q.dtype == torch.uint8 and int(q.max()) <= 2**bits - 1 and damp == 0.01
    gs = 256 if group_size == -1 else group_size
    assert torch.bincount(g_idx.long()).tolist() == [gs] * (256 // gs)  # every group has group_size columns
    if not act_order or static:
        assert torch.equal(g_idx, default_g_idx(256, group_size))
    else:
        assert not bool((g_idx[1:] >= g_idx[:-1]).all())  # groups formed over the permuted columns
    Wq = dequantize_groupwise(q, scales, zeros, g_idx)
    rq, rs, rz = quantize_groupwise(W, bits, group_size, sym=True)
    rtn = output_error(W, dequantize_groupwise(rq, rs, rz), X)
    gptq = output_error(W, Wq, X)
    assert gptq < 0.75 * rtn, f"GPTQ {gptq:.3g} vs RTN {rtn:.3g}"
    # what GPTQLinear computes is that same weight (scales go through fp16 losslessly: already rounded)
    m = GPTQLinear.from_codes(q, scales, zeros, g_idx, bits, group_size)
    assert torch.equal(m.dequantize(), Wq)


def test_wide_hessians_accumulate_the_upper_blocks_and_mirror_them():
    X = torch.randn(500, 96, generator=torch.Generator().manual_seed(2))
    h = Hessian(96, block=32)  # 3 x 3 blocks: 6 products
    for part in X.split(200):
        h.add(part)
    assert h.block == 32 and torch.allclose(h.H, 2 * X.t() @ X / 500, atol=1e-4) and torch.equal(h.H, h.H.t())


@pytest.mark.parametrize("rows,n", [(300, 96), (20, 64), (4100, 256), (600, 1056)])
def test_amx_hessian_of_bf16_inputs_is_the_fp32_one(rows, n, monkeypatch):
    """bf16 inputs on AMX (gram_bf16: 32 x 32 blocks on and above the diagonal, rows padded to 32, in panels of 16 x
    16 blocks: 1056 columns make three panels a side, the last of one block): the exact products summed in fp32, so
    within fp32 rounding of 2/n X^T X in float64 and of the fp32 GEMMs' H."""
    k = gptq._cpp()
    if k is None or not k.amx_bf16():
        pytest.skip("this CPU has no AMX-BF16 (or our kernels are off)")
    X = (torch.randn(rows, n, generator=torch.Generator().manual_seed(3)) * torch.linspace(0.1, 4, n)).bfloat16()
    ref = 2 * X.double().t() @ X.double() / rows
    got = {}
    for amx in (True, False):
        monkeypatch.setattr(gptq, "CPP", amx)
        h = Hessian(n, block=32)
        for part in (X[:16], *X[16:].split(128)):  # a larger batch after a smaller one: the tile workspace grows
            h.add(part)
        got[amx] = h.H
        assert h._S is None and h._work is None and h.n == rows  # the blocks and tiles are freed once H is read
    assert torch.equal(got[True], got[True].t())
    for amx, H in got.items():
        assert ((H.double() - ref).abs().max() / ref.abs().max()) < 2e-6, amx
    # a later input goes on in fp32 from the H that was read
    h = Hessian(n)
    monkeypatch.setattr(gptq, "CPP", True)
    h.add(X[:rows // 2])
    _ = h.H
    h.add(X[rows // 2:])
    assert ((h.H.double() - ref).abs().max() / ref.abs().max()) < 2e-6


def test_gram_bf16_refuses_a_misaligned_or_short_workspace():
    """Its tiles are written with aligned 64-byte stores: a workspace that is not aligned (or too small) is an error,
    not a crash."""
    k = gptq._cpp()
    if k is None or not k.amx_bf16():
        pytest.skip("this CPU has no AMX-BF16 (or our kernels are off)")
    x, S = torch.randn(64, 64).bfloat16(), torch.zeros(3 * 1024)
    with pytest.raises(RuntimeError, match="64-byte aligned"):
        k.gram_bf16(S, x, torch.empty(2 * 64 * 64 + 32, dtype=torch.bfloat16)[1:])
    with pytest.raises(RuntimeError, match="at least"):
        k.gram_bf16(S, x, torch.empty(2 * 64 * 64 - 1, dtype=torch.bfloat16))
    k.gram_bf16(S, x, torch.empty(2 * 64 * 64, dtype=torch.bfloat16))  # S untouched by the refused calls
    H = torch.empty(64, 64)
    k.gram_unpack(S, H, 1.0)
    assert torch.allclose(H, x.float().t() @ x.float(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("out_f,in_f,group_size,order,static,clip", [
    (128, 256, 128, "columns", False, False), (128, 256, 32, "act-order", False, False),
    (128, 256, 64, "act-order", True, False), (130, 256, -1, "columns", False, False),
    (512, 1024, 128, "group-aware", False, True), (100, 192, 64, "group-aware", False, True),
])
def test_cpp_column_loop_gives_the_torch_loops_codes(out_f, in_f, group_size, order, static, clip, monkeypatch):
    """gptq_columns (C++, one call per group's run of steps) against the torch loop: the same codes, scales, zeros
    and g_idx bit for bit (its update is fused as torch's addr_ is; unfused, 1 code in 524288 of the 512 x 1024
    case differed). 100 output rows: a tail of 4 after the 8-wide steps."""
    if gptq._cpp() is None:
        pytest.skip("our CPU kernels are off")
    W, X = correlated_layer(out_f, in_f, rows=4096)
    h = Hessian(in_f)
    h.add(X)
    got = {}
    for cpp in (True, False):
        monkeypatch.setattr(gptq, "CPP", cpp)
        got[cpp] = gptq_quantize_weight(W, h.H, 4, group_size, True, static_groups=static, order=order, clip=clip)
    for a, b in zip(got[True], got[False]):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.mark.parametrize("n", [1024, 1000])
def test_inverse_cholesky_is_the_upper_factor_of_the_damped_inverse(n):
    """The in-place blocked factorization (H = R R^T from the last block up) and inverse, blocks of 256 (1000: a
    short last block), against float64's three factorizations; H itself left as it was."""
    _, X = correlated_layer(in_f=n, rows=4096)
    H = 2 * X.t() @ X / len(X)
    H0 = H.clone()
    U, damp = gptq._inverse_cholesky(H, 0.01, "layer")
    Hd = H.double() + 0.01 * torch.diag(H).double().mean() * torch.eye(n, dtype=torch.float64)
    ref = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(Hd)), upper=True)
    assert damp == 0.01 and torch.equal(U, U.triu()) and torch.equal(H, H0)
    assert ((U.double() - ref).norm() / ref.norm()) < 1e-5
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    assert torch.equal(gptq._permuted(H, perm, rows=300), H[perm][:, perm])  # the order's copy, by blocks of rows


def test_group_aware_order_keeps_every_group_whole():
    d = torch.tensor([1., 5, 2, 3, 9, 0, 4, 8, 7, 6, 0.5, 0.25])  # 3 groups of 4
    perm = column_order(d, 4, "group-aware")
    # groups by their largest diagonal (9 in group 1, 7 in group 2, 5 in group 0), columns inside by theirs
    assert perm.tolist() == [4, 7, 6, 5, 8, 9, 10, 11, 1, 3, 2, 0]
    assert all(len(set((perm[i:i + 4] // 4).tolist())) == 1 for i in range(0, 12, 4))
    assert column_order(d, 4, "act-order").tolist() == torch.argsort(d, descending=True).tolist()
    assert column_order(d, 4, "columns") is None


@pytest.mark.parametrize("sym", [True, False], ids=["sym", "asym"])
def test_group_aware_and_clip_search_lower_the_output_error_and_keep_g_idx_static(sym):
    """Measured on this layer, output error against round-to-nearest's: columns 0.71, group-aware 0.31, act-order
    0.31, and with the clip search 0.63 / 0.28 / 0.28 (sym); asym 0.73 / 0.31 / 0.32, with the search 0.69 / 0.30 / 0.30."""
    W, X = correlated_layer()
    h = Hessian(256)
    h.add(X)
    err = {}
    for order in ("columns", "group-aware", "act-order"):
        for clip in (False, True):
            q, scales, zeros, g_idx, _ = gptq_quantize_weight(W, h.H, 4, 64, sym=sym, order=order, clip=clip)
            if order != "act-order":
                assert torch.equal(g_idx, default_g_idx(256, 64))
            err[order, clip] = output_error(W, dequantize_groupwise(q, scales, zeros, g_idx), X)
    rq, rs, rz = quantize_groupwise(W, 4, 64, sym=sym)
    rtn = output_error(W, dequantize_groupwise(rq, rs, rz), X)
    assert err["group-aware", False] < 0.6 * err["columns", False] and err["group-aware", False] < 0.5 * rtn
    for order in ("columns", "group-aware", "act-order"):
        assert err[order, True] < 0.97 * err[order, False]
    assert gptq_quantize_weight(W, h.H, 4, 64, act_order=True)[3].tolist() == \
        gptq_quantize_weight(W, h.H, 4, 64, order="act-order")[3].tolist()


def test_auto_keeps_the_setting_with_the_smallest_output_error():
    W, X = correlated_layer()
    h = Hessian(256)
    h.add(X)
    lin = torch.nn.Linear(256, 128)
    lin.weight.data = W
    config = QuantConfig(method="gptq", bits=4, group_size=64, order="auto")
    assert config.candidates() == [("columns", False), ("group-aware", False), ("columns", True), ("group-aware", True)]
    m, rel = gptq._gptq_linear(lin, h.H, config, torch.float32, "layer")
    errs = {}
    for order, clip in config.candidates():
        q, s, z, g, _ = gptq_quantize_weight(W, h.H, 4, 64, order=order, clip=clip)
        errs[order + ("+clip" if clip else "")] = gptq.output_error(W, dequantize_groupwise(q, s, z, g), h.H)
    assert config.choices == {"layer": min(errs, key=errs.get)}
    assert abs(rel - min(errs.values()) / gptq.output_error(W, 0 * W, h.H)) < 1e-6
    assert torch.equal(m.dequantize(), dequantize_groupwise(*gptq_quantize_weight(
        W, h.H, 4, 64, order=config.choices["layer"].split("+")[0], clip="+clip" in config.choices["layer"])[:4]))


def test_damping_grows_until_cholesky_works_and_then_gives_up(caplog):
    W = torch.randn(4, 2)
    indefinite = torch.tensor([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    with caplog.at_level(logging.WARNING):
        *_, damp = gptq_quantize_weight(W, indefinite, 4, -1, name="h.0.mlp.c_fc")
    assert damp >= 1 and "h.0.mlp.c_fc: Hessian not positive definite" in caplog.text
    with pytest.raises(RuntimeError, match="h.0.mlp.c_proj: GPTQ Hessian is not positive definite") as e:
        gptq_quantize_weight(W, torch.tensor([[1.0, 1e6], [1e6, 1.0]]), 4, -1, name="h.0.mlp.c_proj")
    assert "\n" not in str(e.value)


def textbook_gptq(W, H, bits, group_size, sym, damp=0.01):
    """GPTQ as written in the paper's Algorithm 1 without its lazy batches: one column at a time, each
    group's parameters taken from its error-updated columns when the group starts."""
    from quant.primitives import quant_params

    W, maxq = W.double().clone(), 2**bits - 1
    H = H.double() + damp * torch.diag(H).mean() * torch.eye(len(H), dtype=torch.float64)
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Q = torch.zeros(W.shape, dtype=torch.uint8)
    for j in range(W.shape[1]):
        if j % group_size == 0:
            scale, zero = quant_params(W[:, j:j + group_size], bits, sym)
            scale = scale.half().double()
        q = torch.clamp(torch.round(W[:, j] / scale) + zero, 0, maxq)
        Q[:, j] = q.to(torch.uint8)
        err = (W[:, j] - scale * (q - zero)) / U[j, j]
        W[:, j:] -= err[:, None] * U[j, j:][None, :]
    return Q


@pytest.mark.parametrize("sym", [True, False], ids=["sym", "asym"])
@pytest.mark.parametrize("group_size", [64, 256], ids=["g64", "g256-crossing-lazy-batches"])
def test_lazy_batched_gptq_equals_the_textbook_loop(sym, group_size):
    """Groups of 256 span two 128-column lazy batches: their parameters must see every earlier update."""
    W, X = correlated_layer(out_f=64, in_f=512, rows=4096)
    h = Hessian(512)
    h.add(X)
    q, scales, zeros, g_idx, _ = gptq_quantize_weight(W, h.H, 4, group_size, sym=sym, block_size=128)
    ref = textbook_gptq(W, h.H, 4, group_size, sym)
    assert (q == ref).float().mean() > 0.999  # fp32 against fp64: a rare rounding tie may flip
    assert (zeros == 8).all() if sym else not (zeros == 8).all()
    rq, rs, rz = quantize_groupwise(W, 4, group_size, sym=sym)
    assert output_error(W, dequantize_groupwise(q, scales, zeros, g_idx), X) < \
        0.75 * output_error(W, dequantize_groupwise(rq, rs, rz), X)


def test_static_groups_without_act_order_take_the_original_weights_scales():
    W, X = correlated_layer()
    h = Hessian(256)
    h.add(X)
    _, static, *_ = gptq_quantize_weight(W, h.H, 4, 64, static_groups=True)
    _, dynamic, *_ = gptq_quantize_weight(W, h.H, 4, 64)
    _, rtn, _ = quantize_groupwise(W, 4, 64)
    assert torch.equal(static, rtn.half().float())  # every group's scale from W before any update
    assert torch.equal(dynamic[:, 0], static[:, 0]) and not torch.equal(dynamic[:, 1:], static[:, 1:])


def test_dead_input_columns_and_an_all_zero_group():
    """Inputs that are always zero (dead Hessian columns, here three single ones and a whole group): their
    weights are stored as exact zeros, no error flows into them, and the all-zero group gets scale 1."""
    W, X = correlated_layer()
    dead = [5, 77, 200, *range(128, 192)]
    X[:, dead] = 0
    h = Hessian(256)
    h.add(X)
    for sym in (True, False):
        for act_order in (False, True):
            q, scales, zeros, g_idx, damp = gptq_quantize_weight(W, h.H, 4, 64, sym=sym, act_order=act_order)
            Wq = dequantize_groupwise(q, scales, zeros, g_idx)
            assert damp == 0.01 and torch.isfinite(Wq).all()
            assert (Wq[:, dead] == 0).all()
            if not act_order:
                assert (scales[:, 2] == 1).all()
            rq, rs, rz = quantize_groupwise(W, 4, 64, sym=sym)
            ratio = output_error(W, Wq, X) / output_error(W, dequantize_groupwise(rq, rs, rz), X)
            assert ratio < 0.9  # measured 0.81 in column order, 0.43 with act-order (sym and asym)
    W[:, 128:192] = 0  # round-to-nearest of an all-zero group
    for sym in (True, False):
        rq, rs, rz = quantize_groupwise(W, 4, 64, sym=sym)
        assert (rs[:, 2] == 1).all() and (dequantize_groupwise(rq, rs, rz)[:, 128:192] == 0).all()


# -- the small trained model ---------------------------------------------------------------------------------
N_SAMPLES, SEQ_LEN = 32, 256


@pytest.fixture(scope="module")
def ppl(tiny_path):
    """Held-out perplexity of the bf16 model and of each quantized variant (computed once)."""
    base = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16)
    held_out = cd.eval_blocks(base.tokenizer, "heldout", SEQ_LEN)
    cal = cd.calibration_blocks(base.tokenizer, "bundled", N_SAMPLES, SEQ_LEN, seed=0)
    result, models = {"bf16": perplexity(base, held_out)}, {}
    variants = {
        "rtn4-plain": QuantConfig(method="rtn", bits=4, clip=False), "rtn4": QuantConfig(method="rtn", bits=4),
        "gptq4": QuantConfig(method="gptq", bits=4), "gptq4-act": QuantConfig(method="gptq", bits=4, act_order=True),
        "rtn8": QuantConfig(method="rtn", bits=8, group_size=-1), "gptq8": QuantConfig(method="gptq", bits=8, group_size=-1),
    }
    for name, qc in variants.items():
        m = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16)
        quantize_(m, qc, calibration=cal)
        result[name], models[name] = perplexity(m, held_out), m
    result["models"] = models
    return result


def delta(ppl, name):
    return ppl[name] / ppl["bf16"] - 1


def test_gptq_int4_beats_rtn_int4(ppl):
    # measured (32 x 256 calibration tokens, bf16, lm_head int4 too): RTN +11.7%, with the clip search +8.5%,
    # GPTQ (group-aware + clip search) +1.8%
    assert delta(ppl, "rtn4") < 0.8 * delta(ppl, "rtn4-plain")
    assert delta(ppl, "gptq4") < 0.3 * delta(ppl, "rtn4")


def test_int4_gptq_delta_within_measured_bound(ppl):
    # measured on this fixture (32 x 256 calibration tokens, bf16, lm_head int4 too): +1.8% by default, +2.2%
    # with act-order
    assert delta(ppl, "gptq4") < 0.025
    assert delta(ppl, "gptq4-act") < 0.035


def test_default_int4_is_under_gptqmodels_default_on_the_fixture(tiny_path):
    """benchmarks/bench_gptq_peers.py's setting: 128 x 512 calibration tokens without FIM, fp32, lm_head not
    quantized, perplexity on the held-out code. Measured in this setting: ours (group-aware + clip search)
    +2.06% with 2 threads (the seed-0 cell of bench_gptq.py --settings-seeds; GPTQ on this small model moves
    by about a point with the rounding of its inputs alone). Over calibration seeds 0-7 (bench_gptq_peers.py
    --seeds 8, torch's kernels): GPTQModel 7.6's default (GAR on) +4.56% on average (+3.12% at best), its
    desc_act +2.29%, ours +2.33%."""
    base = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    held_out = cd.eval_blocks(base.tokenizer, "heldout", 512)
    cal = cd.calibration_blocks(base.tokenizer, "bundled", 128, 512, fim_rate=0.0, seed=0)
    quantized = quantize_(SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.float32),
                          QuantConfig(method="gptq", bits=4, lm_head=False), calibration=cal)
    d = perplexity(quantized, held_out) / perplexity(base, held_out) - 1
    assert d < 0.025 and d < 0.0456, f"{100 * d:+.2f}%"


def test_int8_delta_at_most_half_a_percent(ppl):  # measured: RTN +0.26%, GPTQ +0.05%
    assert abs(delta(ppl, "rtn8")) <= 0.005 and abs(delta(ppl, "gptq8")) <= 0.005


def test_act_order_model_permutes_and_round_trips(ppl, tmp_path):
    m = ppl["models"]["gptq4-act"]
    layers = [mod for mod in m.modules() if isinstance(mod, GPTQLinear)]
    assert all(mod.perm is not None for mod in layers)  # act-order groups: g_idx not sorted, columns permuted at load
    m.save_pretrained(str(tmp_path / "q"))
    loaded = SantaCoderForCausalLM.from_pretrained(str(tmp_path / "q"), dtype=torch.bfloat16)
    x = torch.randint(0, 2000, (2, 48), generator=torch.Generator().manual_seed(0))
    assert torch.equal(m(x).logits, loaded(x).logits)
    assert torch.equal(m.generate(x[:1], max_new_tokens=16), loaded.generate(x[:1], max_new_tokens=16))


def test_block_by_block_on_another_device_gives_the_same_model(tiny_path):
    """The path --device cuda takes (each block moved to the device and back), run with "cpu:0" here."""
    cal = cd.calibration_blocks(SantaCoderForCausalLM.from_pretrained(tiny_path).tokenizer, n_samples=4, seq_len=128)
    states = []
    for device in (None, "cpu:0"):
        m = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16)
        quantize_(m, QuantConfig(method="gptq", bits=4, act_order=True), calibration=cal, device=device)
        states.append(m.state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_replaying_finished_submodules_gives_the_same_model(tiny_path, monkeypatch, caplog):
    """Quantized modules not run again (the attention's outputs recorded, the attention and the MLP replayed as
    their c_proj over its recorded inputs, all kept in a temporary file): the same numbers as running the block
    again for every Linear (bit for bit, MQA fixture and an MHA model), and each Linear of a block runs once per
    batch instead of up to four times. With no temporary file to write, the block runs again: the same model."""
    from modeling import SantaCoderConfig

    cal = cd.calibration_blocks(SantaCoderForCausalLM.from_pretrained(tiny_path).tokenizer, n_samples=4, seq_len=64)
    mha = SantaCoderConfig(vocab_size=2048, n_positions=128, n_embd=128, n_layer=2, n_head=4, n_kv_head=4, n_inner=256)
    calls = collections.Counter()

    def count(mod, inp):
        if isinstance(mod, GPTQLinear):
            calls[mod] += 1

    def no_file(*a, **k):
        raise OSError(28, "No space left on device")

    real_file = tempfile.TemporaryFile
    monkeypatch.setattr(gptq._Spill, "warned", False)

    for make in (lambda: SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16),
                 lambda: SantaCoderForCausalLM.from_config(mha, dtype=torch.bfloat16, seed=0)):
        states, runs = [], []
        for replay, spill in ((True, True), (False, True), (True, False)):
            monkeypatch.setattr(gptq, "REPLAY", replay)
            monkeypatch.setattr(gptq.tempfile, "TemporaryFile", real_file if spill else no_file)
            m = make()
            calls.clear()
            with torch.nn.modules.module.register_module_forward_pre_hook(count):
                quantize_(m, QuantConfig(method="gptq", bits=4, group_size=64, lm_head=False), calibration=cal)
            states.append(m.state_dict())
            runs.append({n: calls[mod] for n, mod in m.named_modules() if isinstance(mod, GPTQLinear)})
        assert all(torch.equal(states[0][k], s[k]) for s in states[1:] for k in states[0])
        assert set(runs[0].values()) == {1}, runs[0]  # 4 samples: one batch
        assert runs[1]["transformer.h.0.attn.c_attn"] == 4 and runs[1]["transformer.h.0.mlp.c_fc"] == 2
        assert runs[2] == runs[1]  # nothing recorded: every pass runs the block again
    assert caplog.text.count("could not keep recorded batches in a temporary file ([Errno 28] No space left on device)") == 1


def test_replay_of_a_subset_of_linears_and_an_interrupted_block(tiny_path, monkeypatch):
    """Some Linears only, given out of order: the same model with and without replay. A Ctrl-C while a block is
    calibrated leaves its own modules in place (no stand-in) and no temporary file open."""
    cal = cd.calibration_blocks(SantaCoderForCausalLM.from_pretrained(tiny_path).tokenizer, n_samples=4, seq_len=64)
    for modules in (("mlp.c_proj", "attn.c_attn"), ("attn.c_proj",), ("mlp.c_fc", "mlp.c_proj")):
        states = []
        for replay in (True, False):
            monkeypatch.setattr(gptq, "REPLAY", replay)
            m = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
            quantize_(m, QuantConfig(method="gptq", bits=4, group_size=64, lm_head=False, modules=modules),
                      calibration=cal)
            states.append(m.state_dict())
        assert all(torch.equal(states[0][k], states[1][k]) for k in states[0]), modules
    monkeypatch.setattr(gptq, "REPLAY", True)
    calls, inner = [], gptq._gptq_linear

    def interrupted(*args):
        calls.append(args[-1])
        if len(calls) == 4:  # mlp.c_proj of block 0: attn and mlp inputs are in files by then
            raise KeyboardInterrupt
        return inner(*args)

    files, real_file = [], tempfile.TemporaryFile

    def tracked(*args, **kwargs):
        files.append(real_file(*args, **kwargs))
        return files[-1]

    monkeypatch.setattr(gptq, "_gptq_linear", interrupted)
    monkeypatch.setattr(gptq.tempfile, "TemporaryFile", tracked)
    m = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16)
    with pytest.raises(KeyboardInterrupt) as interrupt:  # its traceback keeps the frames alive, as a notebook does
        quantize_(m, QuantConfig(method="gptq", bits=4, group_size=64, lm_head=False), calibration=cal)
    assert interrupt.traceback and calls[-1] == "transformer.h.0.mlp.c_proj"
    block = m.transformer.h[0]
    assert [type(block.get_submodule(n)).__name__ for n in ("ln_1", "attn", "ln_2", "mlp")] == \
        ["LayerNorm", "Attention", "LayerNorm", "MLP"]
    assert len(files) == 3 and all(f.closed for f in files)  # attn.c_proj's inputs, attn's outputs, mlp.c_proj's inputs


def test_spilled_batches_read_back_equal():
    s = gptq._Spill()
    batches = [torch.randn(3, 5).bfloat16(), torch.randn(7), torch.arange(4100, dtype=torch.int16).view(2, -1)]
    for b in batches:
        s.put(b)
    assert len(s) == 3 and all(torch.equal(s[i], b) and s[i].dtype == b.dtype for i, b in enumerate(batches))
    s[0].zero_()  # a private map: the file keeps its values
    assert torch.equal(s[0], batches[0])
    s.close()


def test_per_layer_choices_survive_save_and_load(tiny_path, tmp_path):
    cal = cd.calibration_blocks(SantaCoderForCausalLM.from_pretrained(tiny_path).tokenizer, n_samples=8, seq_len=128)
    m = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16)
    quantize_(m, QuantConfig(method="gptq", bits=4, order="auto"), calibration=cal)
    choices = m.quant_config.choices
    assert set(choices) == {f"transformer.h.{i}.{n}" for i in range(4) for n in
                            ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")} | {"lm_head"}
    assert set(choices.values()) <= {"columns", "group-aware", "columns+clip", "group-aware+clip"}
    assert set(m.quant_errors) == set(choices) and all(0 < e < 0.2 for e in m.quant_errors.values())
    m.save_pretrained(str(tmp_path / "q"))
    loaded = SantaCoderForCausalLM.from_pretrained(str(tmp_path / "q"), dtype=torch.bfloat16)
    assert loaded.quant_config.choices == choices and loaded.quant_config.order == "auto"
    layers = [mod for mod in loaded.modules() if isinstance(mod, GPTQLinear)]
    assert len(layers) == 17 and all(mod.perm is None for mod in layers)  # every choice keeps g_idx in order
    x = torch.randint(0, 2000, (1, 32), generator=torch.Generator().manual_seed(0))
    assert torch.equal(m(x).logits, loaded(x).logits)


def test_calibration_must_be_token_blocks(tiny_path):
    model = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16)
    for bad in (torch.zeros(0, 16, dtype=torch.long), torch.zeros(16, dtype=torch.long), torch.zeros(2, 16)):
        with pytest.raises(ValueError, match="calibration must be token ids of shape"):
            quantize_(model, QuantConfig(method="gptq"), calibration=bad)
