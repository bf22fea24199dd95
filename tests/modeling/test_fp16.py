"""fp16 robustness: the residual stream and LayerNorms in fp32, softmax in fp32 (SDPA), so activations
beyond fp16's range (65504) stay finite; long contexts give finite logits."""

import pytest
import torch

from conftest import reference_model, save_reference
from modeling import SantaCoderConfig, SantaCoderForCausalLM
from modeling.decode import StaticDecoder


def test_residual_beyond_fp16_range_stays_finite(tmp_path):
    """Two MLPs each add 35000 to the same residual channels (a 'massive activation', as large
    models have): 70000 overflows fp16. transformers' GPTBigCode in fp16 turns it into NaN; ours
    keeps the residual in fp32 and matches the fp32 reference."""
    from transformers import GPTBigCodeForCausalLM

    ref = reference_model(multi_query=True)
    with torch.no_grad():
        for block in ref.transformer.h:
            block.mlp.c_proj.bias[:4] = 3.5e4
    path = save_reference(ref, tmp_path)
    x = torch.randint(1, 97, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref(x).logits
        naive = GPTBigCodeForCausalLM.from_pretrained(path, dtype=torch.float16).eval()(x).logits
        got = SantaCoderForCausalLM.from_pretrained(path, dtype="fp16")(x).logits
    assert not naive.isfinite().all()  # the case is real: an fp16 residual overflows
    assert got.isfinite().all()
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_fixture_fp16_full_context(tiny_path):
    """The trained model in fp16 over its whole context (n_positions 512): finite logits, perplexity
    within 0.1% of fp32, and a 384-token prompt + 128 greedy tokens identical to fp32."""
    from calibration_data import eval_blocks

    m32 = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype="fp32")
    m16 = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype="fp16")
    n = m32.config.n_positions
    x = eval_blocks(m32.tokenizer, seq_len=n)[:2]
    ppl = {}
    with torch.no_grad():
        for m in (m32, m16):
            logits = m(x).logits
            assert logits.isfinite().all()
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
            ppl[m.dtype] = nll.exp().item()
    assert abs(ppl[torch.float16] / ppl[torch.float32] - 1) < 1e-3, ppl
    p = x[:1, : n - 128]
    a = m32.generate(p, max_new_tokens=128, eos_token_id=[])
    b = m16.generate(p, max_new_tokens=128, eos_token_id=[], decode="eager")
    assert torch.equal(a, b)


def long_context_logits(model, prompt: int, new: int) -> torch.Tensor:
    """Logits of a `prompt`-token random prompt and `new` greedy steps through the static decoder, (new, vocab)."""
    ids = torch.randint(0, model.config.vocab_size, (1, prompt), generator=torch.Generator().manual_seed(0))
    mode = "graph" if model.device.type == "cuda" else "eager"
    dec = StaticDecoder(model, 1, prompt + new, mode=mode)
    out = [dec.prefill(ids.to(model.device))]
    for _ in range(new - 1):
        out.append(dec.step(out[-1].argmax(-1)).clone())
    return torch.cat(out)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("quantized", [False, True])
def test_full_size_fp16_2048_prompt_and_512_new_tokens(quantized):
    """Full-size random model in fp16 (int4 too): a 2048-token prompt gives finite logits, and
    generate() with a 2048-token prompt and 512 new tokens (the prompt left-truncated to 1536 to fit
    n_positions 2048) gives finite logits at every step."""
    from quant import QuantConfig, quantize_

    model = SantaCoderForCausalLM.from_config(SantaCoderConfig(), dtype=torch.float16, device="cuda")
    if quantized:
        quantize_(model, QuantConfig(method="rtn", bits=4, group_size=128))
    ids = torch.randint(0, 49152, (1, 2048), generator=torch.Generator().manual_seed(1)).cuda()
    with torch.inference_mode():
        assert model(ids).logits.isfinite().all()
    assert long_context_logits(model, 1536, 512).isfinite().all()
    out = model.generate(ids, max_new_tokens=512, eos_token_id=[], truncate=True)
    assert out.shape == (1, 2048)
