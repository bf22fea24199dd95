import pytest

from modeling import ConfigError, SantaCoderConfig

REMOTE = {  # bigcode/santacoder's config.json (main branch), abridged to what matters
    "model_type": "gpt2", "architectures": ["GPT2LMHeadCustomModel"], "attention_head_type": "multiquery",
    "activation_function": "gelu_fast", "vocab_size": 49280, "n_positions": 2048, "n_embd": 2048,
    "n_layer": 24, "n_head": 16, "n_inner": 8192, "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
    "bos_token_id": 49152, "eos_token_id": 49152,
}


def test_both_flavours():
    c = SantaCoderConfig.from_dict(REMOTE)
    assert (c.n_kv_head, c.head_dim, c.checkpoint_layout, c.n_inner) == (1, 128, "remote_code", 8192)
    mha = SantaCoderConfig.from_dict({**REMOTE, "attention_head_type": "multihead"})
    assert mha.n_kv_head == 16 and not mha.multi_query
    d = c.to_dict()
    assert d["model_type"] == "gpt_bigcode" and d["multi_query"] is True and "attention_head_type" not in d
    again = SantaCoderConfig.from_dict(d)
    assert (again.n_kv_head, again.vocab_size, again.checkpoint_layout) == (1, 49280, "gpt_bigcode")


def test_bad_configs():
    with pytest.raises(ConfigError, match="attention_head_type='groupedquery'"):
        SantaCoderConfig.from_dict({**REMOTE, "attention_head_type": "groupedquery"})
    with pytest.raises(ConfigError, match="unsupported architecture"):
        SantaCoderConfig.from_dict({k: v for k, v in REMOTE.items() if k != "attention_head_type"})
    with pytest.raises(ConfigError, match="n_embd=2048 is not divisible by n_head=3"):
        SantaCoderConfig.from_dict({**REMOTE, "n_head": 3})
