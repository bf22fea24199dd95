"""fp16 robustness: the residual stream and LayerNorms in fp32, softmax in fp32 (SDPA), so activations
beyond fp16's range (65504) stay finite; long contexts give finite logits."""

import pytest
import torch

from conftest import sqnr
from modeling import SantaCoderConfig, SantaCoderForCausalLM
from modeling.decode import StaticDecoder


def overflow_prone_model(dtype):
    """n_positions 2048 and activations past fp16's range unless attention and the residual are guarded.

    Q and K biases of 30 give q.k = 128 * 900 = 115200 > 65504: the scores must be formed in fp32;
    an MLP output bias of 4e4 per layer pushes the residual stream to 8e4 in two layers.
    """
    cfg = SantaCoderConfig(vocab_size=512, n_positions=2048, n_embd=256, n_head=2, n_layer=2)
    model = SantaCoderForCausalLM.from_config(cfg, dtype=dtype, seed=6)
    with torch.no_grad():
        for block in model.transformer.h:
            block.attn.c_attn.bias[: 256 + 128] = 30.0  # Q and K
            block.mlp.c_proj.bias[0] = 4e4
    return model


def test_fp16_full_context_is_finite_and_close_to_fp32():
    x = torch.randint(0, 512, (1, 2048), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        fp32 = overflow_prone_model(torch.float32)(x).logits
        fp16 = overflow_prone_model(torch.float16)(x).logits
    assert torch.isfinite(fp32).all()
    assert torch.isfinite(fp16).all()
    db = sqnr(fp32, fp16)
    assert db > 65, f"fp16 logits SQNR {db:.1f} dB"  # measured 70.6; the same model in bf16 measures 50.4


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


def test_fp16_2048_prompt_and_512_new_tokens_stay_finite():
    """The overflow-prone model in fp16: a 2048-token prompt left-truncated to 1536 + 512 greedy steps of
    the static decoder (a full 2048-position context) give finite logits, close to fp32 fed the same tokens."""
    m16, m32 = overflow_prone_model(torch.float16), overflow_prone_model(torch.float32)
    logits16 = long_context_logits(m16, 1536, 512)
    assert logits16.isfinite().all()
    ids = torch.randint(0, 512, (1, 1536), generator=torch.Generator().manual_seed(0))
    fed = torch.cat([ids, logits16[:-1].argmax(-1)[None]], dim=1)  # the tokens the fp16 run chose
    with torch.no_grad():
        logits32 = m32(fed).logits[0, 1535:]
    db = sqnr(logits32, logits16)
    assert db > 65, f"fp16 decode logits SQNR {db:.1f} dB"  # measured 70.5
    # generate() with a 2048-token prompt: its last 1536 tokens kept, then the same 512 greedy tokens
    head = torch.randint(0, 512, (1, 512), generator=torch.Generator().manual_seed(9))
    out = m16.generate(torch.cat([head, ids], dim=1), max_new_tokens=512, eos_token_id=[], truncate=True,
                       decode="eager")
    assert torch.equal(out[0], torch.cat([ids[0], logits16.argmax(-1)]))


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
