"""SantaCoderConfig: one dataclass read from either published `config.json` flavour.

- remote-code (`bigcode/santacoder`): `model_type: gpt2`, `attention_head_type: multiquery|multihead`,
  `activation_function: gelu_fast`.
- `gpt_bigcode` (transformers `GPTBigCodeForCausalLM`): `multi_query: true|false`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

# Activations of the published configs; all but "gelu" are the tanh approximation.
TANH_GELUS = {"gelu_pytorch_tanh", "gelu_fast", "gelu_new", "gelu_tanh"}
ACTIVATIONS = TANH_GELUS | {"gelu"}


class ConfigError(ValueError):
    """A config.json that this package cannot turn into a SantaCoder model."""


@dataclass
class SantaCoderConfig:
    vocab_size: int = 49280
    n_positions: int = 2048
    n_embd: int = 2048
    n_layer: int = 24
    n_head: int = 16
    n_kv_head: int = 1  # 1 = multi-query (every published branch but `mha`); n_head = multi-head
    n_inner: int | None = None  # MLP width; None means 4 * n_embd
    activation_function: str = "gelu_pytorch_tanh"
    layer_norm_epsilon: float = 1e-5
    scale_attn_weights: bool = True
    bos_token_id: int | None = 49152
    eos_token_id: int | None = 49152
    pad_token_id: int | None = None
    # Which layout the weights on disk use: "gpt_bigcode" or "remote_code" (Conv1D, q_attn/kv_attn).
    checkpoint_layout: str = "gpt_bigcode"
    quantization_config: dict | None = None
    extra: dict = field(default_factory=dict, repr=False)  # unknown keys, written back on save

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ConfigError(f"config: n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.n_kv_head not in (1, self.n_head):
            raise ConfigError(f"config: n_kv_head={self.n_kv_head} must be 1 (multi-query) or n_head={self.n_head}")
        if self.activation_function not in ACTIVATIONS:
            raise ConfigError(
                f"config: activation_function={self.activation_function!r} is not supported "
                f"(expected one of {sorted(ACTIVATIONS)})"
            )
        if self.n_inner is None:
            self.n_inner = 4 * self.n_embd

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def multi_query(self) -> bool:
        return self.n_kv_head == 1

    @classmethod
    def from_dict(cls, d: dict, source: str = "config.json") -> "SantaCoderConfig":
        """Build from a parsed config.json of either flavour; `source` names the file in errors."""
        d = dict(d)
        model_type = d.pop("model_type", None)
        archs = d.get("architectures") or []
        if model_type == "gpt_bigcode":
            multi_query = d.pop("multi_query", True)
            layout = "gpt_bigcode"
        elif model_type == "gpt2" and "attention_head_type" in d:
            head_type = d.pop("attention_head_type")
            if head_type not in ("multiquery", "multihead"):
                raise ConfigError(
                    f"{source}: attention_head_type={head_type!r} is not supported (multiquery or multihead)"
                )
            multi_query = head_type == "multiquery"
            layout = "remote_code"
        else:
            what = f"model_type={model_type!r}" + (f", architectures={archs}" if archs else "")
            raise ConfigError(
                f"{source}: unsupported architecture ({what}); expected a SantaCoder checkpoint "
                f"(model_type 'gpt_bigcode', or 'gpt2' with attention_head_type)"
            )
        try:
            n_head = int(d.pop("n_head"))
            kwargs = dict(
                vocab_size=int(d.pop("vocab_size")),
                n_positions=int(d.pop("n_positions")),
                n_embd=int(d.pop("n_embd")),
                n_layer=int(d.pop("n_layer")),
                n_head=n_head,
            )
        except KeyError as e:
            raise ConfigError(f"{source}: missing required key {e.args[0]!r}") from None
        d.pop("num_key_value_heads", None)
        known = {"n_inner", "activation_function", "layer_norm_epsilon", "scale_attn_weights",
                 "bos_token_id", "eos_token_id", "pad_token_id", "quantization_config"}
        for k in known:
            if k in d:
                kwargs[k] = d.pop(k)
        try:
            return cls(n_kv_head=1 if multi_query else n_head, checkpoint_layout=layout, extra=d, **kwargs)
        except ConfigError as e:
            raise ConfigError(f"{source}: {str(e).removeprefix('config: ')}") from None

    @classmethod
    def from_json_file(cls, path: str) -> "SantaCoderConfig":
        try:
            with open(path) as f:
                d = json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no config.json; is this a SantaCoder checkpoint folder?") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(d, source=path)

    def to_dict(self) -> dict:
        """The gpt_bigcode flavour, so transformers' GPTBigCodeForCausalLM reads what we save."""
        d = {k: v for k, v in asdict(self).items() if k not in ("extra", "n_kv_head", "checkpoint_layout")}
        d.update(model_type="gpt_bigcode", architectures=["GPTBigCodeForCausalLM"], multi_query=self.multi_query)
        if d["quantization_config"] is None:
            del d["quantization_config"]
        extra = {k: v for k, v in self.extra.items() if k not in ("architectures", "auto_map", "attention_type")}
        return {**extra, **d}
