"""transformers interop: every folder this package writes loads through AutoModelForCausalLM.

save_pretrained puts a small module (`modeling_santacoder_quant.py`) and an `auto_map` entry in each
folder, so SantaCoder's model-card usage runs unchanged on quantized folders too, on CPU, without optimum
or gptqmodel:

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
    print(tok.decode(model.generate(tok.encode("def f():", return_tensors="pt"))[0]))

SantaCoderQuantForCausalLM is a transformers PreTrainedModel + GenerationMixin around this package's
SantaCoderForCausalLM, loaded by its own from_pretrained (quantized modules and all). transformers' own
generate() drives it through forward(): this package's KV cache rides on the cache object generate()
hands back each step, and its fill level follows the attention mask, so generate's own rewinds stay right.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from transformers import GenerationMixin, GPTBigCodeConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .config import SantaCoderConfig
from .model import KVCache, SantaCoderForCausalLM

log = logging.getLogger(__name__)

# from_pretrained arguments that concern how transformers itself fetches or builds a model; ours ignores them.
IGNORED = {"cache_dir", "force_download", "proxies", "token", "local_files_only", "subfolder", "code_revision",
           "_commit_hash", "trust_remote_code", "low_cpu_mem_usage", "attn_implementation", "use_safetensors",
           "_from_auto", "_from_pipeline", "adapter_kwargs"}


class SantaCoderQuantForCausalLM(PreTrainedModel, GenerationMixin):
    """A SantaCoder folder of this package (fp, GPTQ int4/int8, bitsandbytes) as a transformers model."""

    config_class = GPTBigCodeConfig
    base_model_prefix = "santacoder"
    main_input_name = "input_ids"

    def __init__(self, config: GPTBigCodeConfig, model: SantaCoderForCausalLM | None = None):
        super().__init__(config)
        if model is None:  # from_config: random weights in this package's layout
            model = SantaCoderForCausalLM.from_config(SantaCoderConfig.from_dict(config.to_dict()))
        self.santacoder = model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, revision=None, dtype=None,
                        torch_dtype=None, device_map=None, **kwargs):
        """Load with this package's loader. dtype / torch_dtype ("auto" = the device's compute dtype: bf16 on
        CPU, fp16 on CUDA) and device_map (a device, or "auto" = CUDA when present) are honoured."""
        if model_args:
            raise TypeError(f"{cls.__name__}.from_pretrained takes no positional arguments after the path")
        unknown = sorted(k for k, v in kwargs.items() if k not in IGNORED and v is not None)
        if unknown:
            log.warning("%s.from_pretrained ignores %s", cls.__name__, ", ".join(unknown))
        dtype = dtype if dtype is not None else torch_dtype
        if isinstance(device_map, dict):
            devices = set(device_map.values())
            if len(devices) != 1:
                raise ValueError(f"device_map={device_map}: this model runs on one device; pass device_map='cuda' or 'cpu'")
            device_map = devices.pop()
        if device_map == "auto":
            device_map = "cuda" if torch.cuda.is_available() else "cpu"
        if isinstance(device_map, int):
            device_map = f"cuda:{device_map}"
        model = SantaCoderForCausalLM.from_pretrained(pretrained_model_name_or_path, revision=revision,
                                                      dtype=None if dtype == "auto" else dtype, device=device_map)
        if config is None:
            config = GPTBigCodeConfig.from_pretrained(model.source)
        hf = cls(config, model)
        hf.name_or_path = config.name_or_path = str(pretrained_model_name_or_path)
        try:
            from transformers import GenerationConfig

            hf.generation_config = GenerationConfig.from_pretrained(model.source)
        except OSError:  # a folder without generation_config.json keeps the one made from the config
            pass
        return hf.eval()

    def save_pretrained(self, save_directory, **kwargs):
        """This package's folder format (see modeling.loading.save_model); max_shard_size in bytes."""
        self.santacoder.save_pretrained(save_directory, **{k: v for k, v in kwargs.items() if k == "max_shard_size"})

    def get_input_embeddings(self):
        return self.santacoder.transformer.wte

    def get_output_embeddings(self):
        return self.santacoder.lm_head

    def forward(self, input_ids=None, attention_mask=None, past_key_values=None, use_cache=None, labels=None,
                logits_to_keep=0, return_dict=None, **kwargs):
        """transformers' causal-LM forward. With `past_key_values` (the cache object generate() creates),
        the tokens continue what this package's KV cache attached to it holds; attention_mask covers the
        cached tokens and these (B, past + T), 1 = token, 0 = left padding."""
        if input_ids is None:
            raise ValueError("input_ids is required (inputs_embeds is not supported)")
        m = self.santacoder
        B, T = input_ids.shape
        cache = None
        if past_key_values is not None and use_cache is not False:
            cache = getattr(past_key_values, "santacoder_kv", None)
            past = attention_mask.shape[1] - T if attention_mask is not None else (cache.length if cache else 0)
            cache = fit_cache(m, cache, B, past, T)
            past_key_values.santacoder_kv = cache
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # no padding: the same (cheaper) path as this package's generate
        last_only = logits_to_keep == 1 and labels is None
        logits = m(input_ids, attention_mask, cache=cache, last_only=last_only).logits
        loss = None
        if labels is not None:  # next-token cross-entropy, -100 ignored, as transformers computes it
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten().to(logits.device),
                                   ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=past_key_values)

    def _reorder_cache(self, past_key_values, beam_idx):
        """Beam search: the rows of this package's KV cache follow the beams."""
        cache = getattr(past_key_values, "santacoder_kv", None)
        if cache is not None:
            idx = beam_idx.to(cache.k[0].device)
            cache.k = [k.index_select(0, idx) for k in cache.k]
            cache.v = [v.index_select(0, idx) for v in cache.v]
        return past_key_values


def fit_cache(model: SantaCoderForCausalLM, cache: KVCache | None, B: int, past: int, T: int) -> KVCache:
    """The KV cache for T more tokens after `past` cached ones: the same one rewound to `past`, or a new one
    (capacity doubled, up to n_positions) holding its first `past` positions."""
    need = past + T
    if cache is not None and (cache.k[0].shape[0] != B or past > cache.length):
        raise ValueError(f"the KV cache holds {cache.length} positions of {cache.k[0].shape[0]} rows; "
                         f"{past} positions of {B} rows were expected")
    if cache is None or need > cache.max_len:
        n_pos = model.config.n_positions
        grown = model.new_cache(B, min(n_pos, max(need, 2 * (cache.max_len if cache else 0), 256)))
        if cache is not None and past:
            for new, old in zip(grown.k + grown.v, cache.k + cache.v):
                new[:, :, :past] = old[:, :, :past]
        cache = grown
    cache.length = past
    return cache
