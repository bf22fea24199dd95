"""Shared fixtures: tiny random reference models (transformers' GPTBigCode) and the trained fixture."""

import json
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-santacoder")


@pytest.fixture(params=["ours", "torch"])
def cpu_kernels(request, monkeypatch):
    """Runs a test twice: with our C++ CPU kernels (avx2-int4 / avx2-int8) and with torch's own (cpu-int4 /
    cpu-int8, what a machine without AVX2 or a compiler gets). Returns a function naming the kernel expected
    for torch's name."""
    import modeling.ext

    if request.param == "torch":
        monkeypatch.setattr(modeling.ext, "kernels", lambda: None)
        return lambda name: name
    if modeling.ext.kernels() is None:
        pytest.skip("our C++ CPU kernels are not available on this machine (no AVX2 or no compiler)")
    return cpu_kernel


def cpu_kernel(name: str, out_features: int = 16) -> str:
    """The kernel a CPU layer gets by default where torch's would be `name`: ours where they are built (int4 with
    AVX-512 VNNI: avx512-int4 where out_features is a multiple of 16)."""
    import modeling.ext

    k = modeling.ext.kernels()
    if k is None:
        return name
    wide = k.avx512_vnni() and out_features % 16 == 0
    return {"cpu-int4": "avx512-int4" if wide else "avx2-int4", "cpu-int8": "avx2-int8"}.get(name, name)


def smaps_entry(addr: int) -> dict:
    """The /proc/self/smaps fields (kB) of the mapping holding `addr`."""
    with open("/proc/self/smaps") as f:
        blocks = f.read().split("\n")
    found, fields = False, {}
    for line in blocks:
        head = line.split()[0] if line else ""
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            if found:
                break
            lo, hi = (int(v, 16) for v in head.split("-"))
            found = lo <= addr < hi
        elif found and line.endswith(" kB"):
            key, value = line.split(":")
            fields[key] = int(value.split()[0])
    return fields


def sqnr(ref, x) -> float:
    """Signal-to-quantization-noise ratio of x against ref, in dB (computed in fp32)."""
    ref, x = ref.float(), x.float()
    return (10 * torch.log10(ref.pow(2).mean() / (ref - x).pow(2).mean())).item()


def left_pad(prompts, pad=0):
    """Token lists -> left-padded ids (B, T) and attention mask, as a left-padding tokenizer gives them."""
    T = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (T - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def reference_model(multi_query=True, n_layer=2, n_embd=64, n_head=4, vocab_size=97, n_positions=64, seed=1):
    """A transformers GPTBigCodeForCausalLM with weights large enough that greedy tokens vary.

    GPT-2's std-0.02 init gives near-flat logits (greedy ties, repeated tokens); embeddings of std 1
    and Linear weights of std 2/sqrt(fan_in) give varied sequences with clear argmax margins.
    """
    from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM

    cfg = GPTBigCodeConfig(
        vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        multi_query=multi_query, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = GPTBigCodeForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in ("transformer.wte.weight", "transformer.wpe.weight"):
                p.normal_(0, 1.0, generator=g)
            elif p.dim() == 2:
                p.normal_(0, 2.0 / p.shape[1] ** 0.5, generator=g)
            elif ".ln_" in name or "ln_f" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g) if name.endswith("weight") else 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.normal_(0, 0.1, generator=g)
    return model


def save_reference(model, folder):
    model.save_pretrained(folder, safe_serialization=True)
    return str(folder)


def to_remote_code(model, folder, fmt="bin"):
    """Write `model`'s weights in the original bigcode/santacoder remote-code layout.

    Conv1D weights [in, out]; MQA attention split into q_attn [E, E] and kv_attn [E, 2*hd] (K then V);
    multi-head c_attn as GPT-2's Q | K | V blocks; the attn.bias / attn.masked_bias mask buffers.
    """
    cfg = model.config
    E, nh = cfg.n_embd, cfg.n_head
    hd = E // nh
    sd = {}
    for k, v in model.state_dict().items():
        if k == "lm_head.weight":
            continue
        m = k.split(".")
        if k.endswith("attn.c_attn.weight") or k.endswith("attn.c_attn.bias"):
            prefix, kind = k.rsplit(".c_attn.", 1)
            if cfg.multi_query:
                q, kv = v[:E], v[E:]
                sd[f"{prefix}.q_attn.{kind}"] = (q.t() if kind == "weight" else q).contiguous()
                sd[f"{prefix}.kv_attn.{kind}"] = (kv.t() if kind == "weight" else kv).contiguous()
            else:
                blocks = v.reshape(nh, 3, hd, *v.shape[1:]).transpose(0, 1).reshape(v.shape)  # -> (3, nh, hd)
                sd[k] = (blocks.t() if kind == "weight" else blocks).contiguous()
            continue
        if k.endswith(".weight") and any(s in m for s in ("c_proj", "c_fc")):
            v = v.t()
        sd[k] = v.contiguous().clone()
    for i in range(cfg.n_layer):
        sd[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(cfg.n_positions, cfg.n_positions, dtype=torch.bool))
        sd[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    os.makedirs(folder, exist_ok=True)
    if fmt == "bin":
        torch.save(sd, os.path.join(folder, "pytorch_model.bin"))
    else:
        from safetensors.torch import save_file

        save_file(sd, os.path.join(folder, "model.safetensors"))
    config = {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadCustomModel"],
        "attention_head_type": "multiquery" if cfg.multi_query else "multihead",
        "activation_function": "gelu_fast", "vocab_size": cfg.vocab_size, "n_positions": cfg.n_positions,
        "n_embd": E, "n_layer": cfg.n_layer, "n_head": nh, "n_inner": cfg.n_inner,
        "layer_norm_epsilon": cfg.layer_norm_epsilon, "scale_attn_weights": True,
        "bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id,
        "auto_map": {"AutoModelForCausalLM": "modeling_gpt2_mq.GPT2LMHeadCustomModel"},
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_path():
    if not os.path.exists(os.path.join(TINY, "model.safetensors")):
        pytest.skip("trained fixture tests/fixtures/tiny-santacoder is missing")
    return TINY
