"""The fp SantaCoder model: config, fused MQA model with KV cache, loading, generation, FIM, tokenizer."""

from .config import ConfigError, SantaCoderConfig
from .fim import extract_middle, fim_prompt
from .generation import GenerationArgumentError
from .loading import CheckpointError
from .model import KVCache, SantaCoderForCausalLM
from .tokenizer import load_tokenizer

__all__ = [
    "SantaCoderConfig", "SantaCoderForCausalLM", "KVCache", "fim_prompt", "extract_middle", "load_tokenizer",
    "ConfigError", "CheckpointError", "GenerationArgumentError",
]
