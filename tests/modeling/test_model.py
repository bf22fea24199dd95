"""Parity with transformers' GPTBigCodeForCausalLM (an independent implementation), fp32."""

import pytest
import torch

from conftest import reference_model, save_reference, smaps_entry, sqnr
from modeling import SantaCoderForCausalLM


def greedy_reference(ref, x, n, use_cache):
    """transformers' greedy tokens and the smallest top-1/top-2 logit margin along the way."""
    out = ref.generate(x, max_new_tokens=n, do_sample=False, use_cache=use_cache, pad_token_id=0,
                       eos_token_id=None, output_scores=True, return_dict_in_generate=True)
    top2 = torch.stack(out.scores, 1).topk(2, dim=-1).values
    return out.sequences, (top2[..., 0] - top2[..., 1]).min().item()


@pytest.mark.parametrize("multi_query", [True, False], ids=["mqa", "mha"])
def test_logits_match_transformers(tmp_path, multi_query):
    ref = reference_model(multi_query=multi_query)
    model = SantaCoderForCausalLM.from_pretrained(save_reference(ref, tmp_path), dtype="fp32")
    assert model.config.n_kv_head == (1 if multi_query else 4)
    x = torch.randint(0, 97, (3, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref(x).logits
        got = model(x).logits
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (got - expected).abs().max()


@pytest.mark.parametrize("multi_query", [True, False], ids=["mqa", "mha"])
def test_greedy_tokens_match_transformers_with_and_without_cache(tmp_path, multi_query):
    ref = reference_model(multi_query=multi_query)
    model = SantaCoderForCausalLM.from_pretrained(save_reference(ref, tmp_path), dtype="fp32")
    x = torch.randint(1, 97, (1, 8), generator=torch.Generator().manual_seed(2))
    expected, margin = greedy_reference(ref, x, 32, use_cache=True)
    assert margin > 1e-3, "test is ill-posed: the reference has near-ties"
    expected_nocache, _ = greedy_reference(ref, x, 32, use_cache=False)
    assert torch.equal(expected, expected_nocache)
    assert len(set(expected[0, 8:].tolist())) > 4, "test is weak: the reference repeats one token"
    got = model.generate(x, max_new_tokens=32, eos_token_id=[])
    assert torch.equal(got, expected)
    # Without our KV cache: re-run the whole sequence for each token.
    seq = x
    with torch.no_grad():
        for _ in range(32):
            seq = torch.cat([seq, model(seq).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(seq, expected)


def test_kv_cache_stores_one_head_for_mqa(tmp_path):
    ref = reference_model(multi_query=True)
    model = SantaCoderForCausalLM.from_pretrained(save_reference(ref, tmp_path), dtype="fp32")
    cache = model.new_cache(batch_size=2, max_len=50)
    c = model.config
    assert cache.k[0].shape == (2, 1, 50, c.head_dim)
    assert cache.nbytes() == 2 * c.n_layer * 2 * 50 * c.head_dim * 4
    # Prefill through the cache gives the same logits as a plain forward.
    x = torch.randint(0, 97, (2, 30), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = model(x[:, :20], cache=cache).logits
        b = model(x[:, 20:], cache=cache).logits
        full = model(x).logits
    assert torch.allclose(torch.cat([a, b], 1), full, atol=1e-5)


def test_cpu_kv_cache_is_resident_only_where_written(tmp_path):
    """A CPU KV cache sized for a long context reads as zeros and holds memory only for the positions written
    (one anonymous mapping, pages faulted in as the cache fills); the logits are those of a torch.zeros cache."""
    from modeling.model import KVCache

    path = save_reference(reference_model(n_embd=128, n_positions=4096), tmp_path)
    model = SantaCoderForCausalLM.from_pretrained(path, dtype="fp32")
    cache = model.new_cache(1, 4096)  # 2 layers x (k, v) x 4096 positions x 32 x 4 bytes = 2 MiB
    assert all(float(t.abs().sum()) == 0 for t in cache.k + cache.v)
    before = smaps_entry(cache.k[0].data_ptr()).get("Rss", 0)
    x = torch.randint(0, 97, (1, 40), generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        got = model(x, cache=cache).logits
        plain = KVCache.__new__(KVCache)  # the same cache in torch.zeros memory
        plain.k = [torch.zeros_like(t) for t in cache.k]
        plain.v = [torch.zeros_like(t) for t in cache.v]
        plain.max_len, plain.length = 4096, 0
        ref = model(x, cache=plain).logits
    after = smaps_entry(cache.k[0].data_ptr()).get("Rss", 0)
    assert before <= 8 and 0 < after <= 32  # kB: 40 positions x 128 bytes in each of 4 tensors, not 2 MiB
    assert torch.equal(got, ref)


@pytest.mark.parametrize("dtype,bound", [(torch.bfloat16, 34), (torch.float16, 52)])  # measured 37.4 / 56.4 dB:
def test_low_precision_close_to_fp32(tmp_path, dtype, bound):  # an fp16 path degraded to bf16 precision fails
    ref = reference_model(multi_query=True)
    path = save_reference(ref, tmp_path)
    x = torch.randint(0, 97, (2, 40), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        fp32 = SantaCoderForCausalLM.from_pretrained(path, dtype="fp32")(x).logits
        low = SantaCoderForCausalLM.from_pretrained(path, dtype=dtype)(x).logits
    db = sqnr(fp32, low)
    assert db > bound, f"{dtype} logits SQNR {db:.1f} dB"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_cpu_linears_match_plain_linears(tmp_path, dtype):
    from modeling.model import Linear, can_pack

    if not can_pack(torch.device("cpu"), dtype):
        pytest.skip(f"oneDNN packing unavailable for {dtype} on this CPU")
    model = SantaCoderForCausalLM.from_pretrained(save_reference(reference_model(), tmp_path), dtype=dtype)
    linears = [m for m in model.transformer.h.modules() if isinstance(m, Linear)]
    assert linears and all(m.weight.is_mkldnn for m in linears)  # the fast path is the one in use
    x = torch.randint(0, 97, (2, 20), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        packed = model(x).logits
        for m in linears:
            m.weight = torch.nn.Parameter(m.weight.to_dense(), requires_grad=False)
        plain = model(x).logits
    tol = 1e-4 if dtype == torch.float32 else 1e-2  # fp32: summation order differs, ~1e-6 relative
    assert torch.allclose(packed, plain, atol=tol, rtol=tol)


def test_bf16_prompts_take_fp32_gemms_where_bf16_is_emulated(tmp_path, monkeypatch):
    """On a CPU without native bf16 GEMMs (forced here), a prompt of 16+ tokens runs each block Linear as an
    fp32 GEMM on an fp32 copy of the weight; one token stays in bf16. Logits stay as close to fp32."""
    import modeling.cpu as cpu
    import modeling.model as mm

    monkeypatch.setattr(mm, "native_bf16_gemm", lambda: False)  # as on an AVX2 CPU (and no oneDNN packing)
    path = save_reference(reference_model(), tmp_path)
    m32 = SantaCoderForCausalLM.from_pretrained(path, dtype="fp32")
    m16 = SantaCoderForCausalLM.from_pretrained(path, dtype="bf16")
    copies = []
    real = cpu.scratch
    monkeypatch.setattr(cpu, "scratch", lambda n, dtype: copies.append(n) or real(n, dtype))
    x = torch.randint(0, 97, (1, 40), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref, got = m32(x).logits, m16(x).logits
        assert len(copies) == 2 * 4 + 1  # every block Linear of both layers and the lm_head, once
        m16(x[:, :1])
        assert len(copies) == 9  # one token: no fp32 copy (our bf16 kernel, or torch's bf16 GEMM)
    assert sqnr(ref, got) > 34, sqnr(ref, got)  # measured 37.1 dB (the bf16 bound of test_low_precision_close_to_fp32)


def test_few_bf16_rows_take_our_kernel_where_bf16_is_emulated(tmp_path, monkeypatch):
    """On a CPU without native bf16 GEMMs (forced here), up to 15 tokens (decode, speculative verification) go
    through our bf16 kernel (modeling/csrc), in every block Linear and the lm_head: the logits of F.linear's
    bf16 GEMM, up to rounding."""
    import types

    import modeling.model as mm
    from modeling import ext

    real = ext.kernels()
    if real is None:
        pytest.skip("our C++ CPU kernels are not available on this machine (no AVX2 or no compiler)")
    monkeypatch.setattr(mm, "native_bf16_gemm", lambda: False)
    m16 = SantaCoderForCausalLM.from_pretrained(save_reference(reference_model(), tmp_path), dtype="bf16")
    calls = []
    spy = types.SimpleNamespace(bf16_mm=lambda x, w: calls.append(tuple(w.shape)) or real.bf16_mm(x, w),
                                gelu_tanh_=real.gelu_tanh_)
    monkeypatch.setattr(ext, "kernels", lambda: spy)
    x = torch.randint(0, 97, (3, 5), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        got = m16(x).logits
        assert len(calls) == 2 * 4 + 1 and calls[-1] == (97, 64)  # every block Linear, then the lm_head
        monkeypatch.setattr(ext, "kernels", lambda: None)  # torch's bf16 F.linear
        ref = m16(x).logits
    assert sqnr(ref, got) > 35, sqnr(ref, got)
    w = m16.transformer.h[0].mlp.c_fc.weight.detach()
    rows = torch.randn(7, w.shape[1], generator=torch.Generator().manual_seed(6)).bfloat16()
    assert torch.equal(real.bf16_mm(rows, w), torch.cat([real.bf16_mm(r[None], w) for r in rows]))  # row by row
