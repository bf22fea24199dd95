"""The fused SantaCoder model, read top to bottom: KV cache, attention, MLP, block, model.

Parameter names are transformers' GPTBigCode names, so a gpt_bigcode checkpoint loads key for key.
Numerics (why the dtypes are what they are):
- Linear layers and the KV cache run in the compute dtype (fp16 on CUDA, bf16 on CPU).
- The residual stream and the LayerNorms are fp32: SantaCoder in fp16 overflows otherwise.
- Attention goes through SDPA, whose kernels keep the scores and the softmax in fp32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TANH_GELUS, SantaCoderConfig
from . import ext
from .cpu import MAX_SCRATCH, lazy_zeros, linear_in_chunks, native_bf16_gemm

# bf16 activations on a CPU without native bf16 GEMMs: from this many rows an fp32 copy of the weight and an fp32
# GEMM win (8192 x 2048: 16 rows 1.09x, 32 rows 2.0x, 128 rows 3.6x; `python benchmarks/bench_linear.py --bf16-rows`)
FP32_GEMM_MIN_ROWS = 16
# up to this many new tokens after cached ones attend row by row (Attention.forward): each row then gets exactly the
# numbers of one-token decoding (prompt-lookup verification); below FP32_GEMM_MIN_ROWS, where bf16 Linears switch
ROW_BY_ROW_MAX = FP32_GEMM_MIN_ROWS - 1


class KVCache:
    """Preallocated keys and values, one tensor per layer of shape (B, n_kv_head, max_len, head_dim).

    For multi-query attention n_kv_head is 1: one K/V head per token is stored, never 16.
    `length` is how many positions are filled; every sequence of a batch shares it (prompts are
    left-padded and the padding is masked).
    """

    def __init__(self, config: SantaCoderConfig, batch_size: int, max_len: int, dtype, device):
        shape = (batch_size, config.n_kv_head, max_len, config.head_dim)
        if torch.device(device).type == "cpu":  # one lazily zeroed block: only the positions written are resident
            kv = lazy_zeros((2, config.n_layer) + shape, dtype)
            self.k, self.v = list(kv[0].unbind()), list(kv[1].unbind())
        else:
            self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layer)]
            self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layer)]
        self.max_len = max_len
        self.length = 0

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)


class Linear(nn.Linear):
    """nn.Linear that runs oneDNN's prepacked kernel when `pack()` has reordered its weight.

    On CPU, one token through packed bf16 weights streams at 43 GB/s against 29 GB/s for F.linear
    (2 threads; benchmarks/bench_linear.py). The packed weight is an opaque mkldnn tensor kept in
    memory only: the state dict holds `weight.to_dense()`, the plain weight bit for bit.
    """

    def pack(self):
        self.weight = nn.Parameter(torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), 1),
                                   requires_grad=False)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.weight.is_mkldnn:
            destination[prefix + "weight"] = self.weight.detach().to_dense()

    def forward(self, x):
        if self.weight.is_mkldnn:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        if x.dtype == torch.bfloat16 and x.device.type == "cpu" and not native_bf16_gemm():  # bf16 emulated
            rows = x.numel() // x.shape[-1]
            if rows >= FP32_GEMM_MIN_ROWS and self.weight.numel() <= MAX_SCRATCH:
                # a prompt: the weight copied into an fp32 scratch in chunks of rows, fp32 GEMMs
                y = linear_in_chunks(x.reshape(rows, -1).float(), self.weight.shape[0],
                                     lambda n0, n1, w: w.copy_(self.weight[n0:n1]),
                                     None if self.bias is None else self.bias.float())
                return y.to(x.dtype).reshape(*x.shape[:-1], -1)
            if x.shape[-1] % 16 == 0 and ext.kernels() is not None:
                # a few tokens (or a weight too large for the scratch: the lm_head): our bf16 kernel (modeling/csrc)
                y = ext.kernels().bf16_mm(x.reshape(rows, -1), self.weight.detach())
                y = y if self.bias is None else y + self.bias
                return y.to(x.dtype).reshape(*x.shape[:-1], -1)
        return F.linear(x, self.weight, self.bias)


def can_pack(device: torch.device, dtype: torch.dtype) -> bool:
    """oneDNN packing: CPU only, fp32 or bf16 (fp16 needs AVX512-FP16, which few CPUs have)."""
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    return dtype == torch.float32 or (dtype == torch.bfloat16 and native_bf16_gemm())


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 on the fp32 residual stream, returning the compute dtype."""

    def forward(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).to(dtype)


class Attention(nn.Module):
    """Causal self-attention with 1 (MQA) or n_head (MHA) K/V heads through F.scaled_dot_product_attention.

    Its CPU and CUDA kernels keep the scores and the softmax in fp32 for bf16/fp16 inputs. Layouts
    (measured in benchmarks/bench_attention.py, CPU):
    - prefill with no padding: (B, nh, T, hd) queries against the K/V heads, is_causal + enable_gqa
      (flash kernel; 2.5x faster than the folded form at T=2048);
    - decode, padding or a continued prefill: the query heads that share a K/V head are folded into
      the sequence, (B, n_kv, T*group, hd), with an explicit mask (12-20x faster than enable_gqa at T=1).
    """

    def __init__(self, config: SantaCoderConfig, layer_idx: int):
        super().__init__()
        self.n_head, self.n_kv, self.hd = config.n_head, config.n_kv_head, config.head_dim
        self.group = self.n_head // self.n_kv  # query heads per K/V head: 16 for MQA, 1 for MHA
        self.scale = 1.0 / math.sqrt(self.hd) if config.scale_attn_weights else 1.0
        self.layer_idx = layer_idx
        # Rows of c_attn: MQA is Q (n_head*hd) | K (hd) | V (hd); MHA interleaves per head (n_head, [q,k,v], hd).
        self.c_attn = Linear(config.n_embd, config.n_embd + 2 * self.n_kv * self.hd)
        self.c_proj = Linear(config.n_embd, config.n_embd)

    def forward(self, x, mask, cache: KVCache | None, slot=None):
        B, T, C = x.shape
        qkv = self.c_attn(x)
        if self.n_kv == 1:
            q, k, v = qkv.split([C, self.hd, self.hd], dim=-1)
            q = q.view(B, T, self.n_head, self.hd)
            k, v = k.unsqueeze(1), v.unsqueeze(1)  # (B, T, hd) -> (B, 1, T, hd)
        else:
            q, k, v = qkv.view(B, T, self.n_head, 3, self.hd).unbind(3)  # each (B, T, nh, hd)
            k, v = k.transpose(1, 2), v.transpose(1, 2)  # (B, nh, T, hd)
        if slot is not None:  # static decode step: write at cache position `slot`, attend over the whole cache
            cache.k[self.layer_idx].index_copy_(2, slot, k)
            cache.v[self.layer_idx].index_copy_(2, slot, v)
            k, v = cache.k[self.layer_idx], cache.v[self.layer_idx]  # (B, n_kv, max_len, hd)
        elif cache is not None:
            start = cache.length
            cache.k[self.layer_idx][:, :, start : start + T] = k
            cache.v[self.layer_idx][:, :, start : start + T] = v
            k = cache.k[self.layer_idx][:, :, : start + T]  # (B, n_kv, S, hd)
            v = cache.v[self.layer_idx][:, :, : start + T]
        if mask is None and T > 1 and k.shape[2] > T:  # a few tokens after cached ones, no padding (lookup drafts)
            # row by row, each exactly as one-token decoding computes it: a query of several rows gets other
            # GEMM blockings, and bf16 logits that tie would then break the other way
            q = q.reshape(B, T, self.n_kv, self.group, self.hd).transpose(1, 2)  # (B, n_kv, T, group, hd)
            past = k.shape[2] - T
            y = torch.stack([F.scaled_dot_product_attention(q[:, :, t], k[:, :, :past + t + 1], v[:, :, :past + t + 1],
                                                            scale=self.scale) for t in range(T)], dim=2)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        if mask is None and T > 1:  # plain causal prefill (no padding, nothing cached before)
            y = F.scaled_dot_product_attention(q.transpose(1, 2), k, v, is_causal=True, scale=self.scale,
                                               enable_gqa=self.group > 1)  # (B, nh, T, hd)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        # (B, T, nh, hd) -> (B, n_kv, T*group, hd): row t*group + j is query head j of the K/V head at time t
        q = q.reshape(B, T, self.n_kv, self.group, self.hd).transpose(1, 2).reshape(B, self.n_kv, T * self.group, self.hd)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)  # (B, n_kv, T*group, hd)
        y = y.view(B, self.n_kv, T, self.group, self.hd).transpose(1, 2).reshape(B, T, C)  # -> (B, T, nh*hd)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config: SantaCoderConfig):
        super().__init__()
        self.c_fc = Linear(config.n_embd, config.n_inner)
        self.c_proj = Linear(config.n_inner, config.n_embd)
        self.approximate = "tanh" if config.activation_function in TANH_GELUS else "none"

    def forward(self, x):
        h = self.c_fc(x)
        if self.approximate == "tanh" and h.dtype == torch.bfloat16 and h.device.type == "cpu" and h.is_contiguous() \
                and not (torch.is_grad_enabled() and h.requires_grad) and ext.kernels() is not None:
            ext.kernels().gelu_tanh_(h)  # in place, 2x torch's speed; the same bf16 values for x >= -2, closer below
            return self.c_proj(h)
        return self.c_proj(F.gelu(h, approximate=self.approximate))


class Block(nn.Module):
    def __init__(self, config: SantaCoderConfig, layer_idx: int):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = Attention(config, layer_idx)
        self.ln_2 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x, mask, cache, dtype, slot=None):
        # x: fp32 residual stream (B, T, C); sublayers run in `dtype`.
        x = x + self.attn(self.ln_1(x, dtype), mask, cache, slot).float()
        return x + self.mlp(self.ln_2(x, dtype)).float()


class Transformer(nn.Module):
    def __init__(self, config: SantaCoderConfig):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)


@dataclass
class CausalLMOutput:
    logits: torch.Tensor  # fp32 (B, T, vocab), or (B, 1, vocab) with last_only


def positions_and_mask(attention_mask, past: int, T: int, group: int, device):
    """Position ids (B, T) and the attention mask (B, 1, T*group, past+T) for the new tokens.

    attention_mask: (B, past+T) of 1 = token, 0 = left padding, or None (no padding).
    The mask is None when causality is all there is and attention can apply it by itself: one new
    token, a prefill with nothing cached (is_causal), or up to ROW_BY_ROW_MAX tokens after cached ones
    without padding (attended row by row).
    """
    S = past + T
    if attention_mask is None:
        pos = torch.arange(past, S, device=device).unsqueeze(0)
        if T == 1 or past == 0 or T <= ROW_BY_ROW_MAX:  # attention applies causality by itself
            return pos, None
        allowed = torch.ones(1, T, S, dtype=torch.bool, device=device).tril(diagonal=past)  # (1, T, S)
    else:
        keep = attention_mask.to(device=device, dtype=torch.bool)
        pos = (keep.long().cumsum(-1) - 1).clamp(min=0)[:, past:]  # real tokens count from 0
        causal = torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=past)
        allowed = causal & keep[:, None, :]  # (B, T, S)
        # A padding query sees only padding; let it see itself so no softmax row is empty.
        allowed[:, torch.arange(T, device=device), torch.arange(past, S, device=device)] = True
    if group > 1:
        Bm = allowed.shape[0]
        allowed = allowed[:, :, None, :].expand(Bm, T, group, S).reshape(Bm, T * group, S)  # row t*group+j
    return pos, allowed.unsqueeze(1)  # (B, 1, T*group, S)


class SantaCoderForCausalLM(nn.Module):
    """SantaCoder with a fused QKV projection and a preallocated MQA KV cache.

    Build with `from_pretrained` (any checkpoint layout, quantized folders included) or
    `from_config` (random weights). `generate` follows transformers' conventions.
    """

    def __init__(self, config: SantaCoderConfig):
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied
        self._tokenizer = None
        self.source = None  # folder the weights came from (tokenizer files live there)

    # -- construction / IO (implemented in loading.py) --------------------------------------------
    @classmethod
    def from_pretrained(cls, path_or_id, revision=None, dtype=None, device=None):
        """Load a SantaCoder checkpoint: local folder or hub id, either layout, safetensors or .bin."""
        from .loading import load_model

        return load_model(cls, path_or_id, revision=revision, dtype=dtype, device=device)

    @classmethod
    def from_config(cls, config: SantaCoderConfig, dtype=None, device=None, seed: int = 0):
        """Random weights (std 0.02, as GPT-2 initialises) built straight on the target device."""
        from .loading import random_model

        return random_model(cls, config, dtype=dtype, device=device, seed=seed)

    def save_pretrained(self, out_dir: str, max_shard_size: int = 2 * 1024**3):
        """Write config.json, model.safetensors (sharded with an index above max_shard_size bytes), the
        tokenizer and generation config, into a temporary folder renamed into place at the end."""
        from .loading import save_model

        save_model(self, out_dir, max_shard_bytes=max_shard_size)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from .tokenizer import load_tokenizer

            if self.source is None:
                raise ValueError("this model has no tokenizer: it was not loaded from a folder; use load_tokenizer(path)")
            self._tokenizer = load_tokenizer(self.source)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tok):
        self._tokenizer = tok

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.wte.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.transformer.wte.weight.device

    # -- forward ---------------------------------------------------------------------------------
    def embed(self, input_ids, pos) -> torch.Tensor:
        """The fp32 residual stream entering the first block: token + position embeddings (B, T, C)."""
        tr = self.transformer
        return tr.wte(input_ids).float() + tr.wpe(pos).float()

    def final_norm(self, x) -> torch.Tensor:
        """The last LayerNorm on the residual stream, in the compute dtype: what lm_head reads."""
        return self.transformer.ln_f(x, self.dtype)

    def forward(self, input_ids, attention_mask=None, cache: KVCache | None = None, last_only: bool = False):
        """Logits for `input_ids` (B, T); with `cache`, the tokens continue what the cache holds.

        attention_mask (B, past+T): 1 for tokens, 0 for left padding. last_only: logits of the
        last position only (what generation needs; saves the vocab projection of the prompt).
        """
        B, T = input_ids.shape
        past = cache.length if cache is not None else 0
        if past + T > self.config.n_positions:
            raise ValueError(
                f"input of {past + T} tokens is longer than the model's n_positions={self.config.n_positions}"
            )
        if cache is not None and past + T > cache.max_len:
            raise ValueError(f"KV cache holds {cache.max_len} positions; {past + T} needed")
        dtype = self.dtype
        group = self.config.n_head // self.config.n_kv_head
        pos, mask = positions_and_mask(attention_mask, past, T, group, input_ids.device)
        x = self.embed(input_ids, pos)  # (B, T, C) fp32 residual stream
        for block in self.transformer.h:
            x = block(x, mask, cache, dtype)
        if cache is not None:
            cache.length = past + T
        if last_only:
            x = x[:, -1:]
        return CausalLMOutput(logits=self.lm_head(self.final_norm(x)).float())

    def decode_step(self, tokens, pos, slot, keep, cache: KVCache) -> torch.Tensor:
        """One new token per row into a fixed-length cache, with static shapes only: what a CUDA graph
        captures once and replays every step (modeling/decode.py drives it).

        tokens, pos (B, 1) long: the tokens and their position ids; slot (1,) long: the cache position
        written (the same for every row); keep (B, max_len) bool: False at left padding. Returns fp32
        logits (B, vocab). Cache positions after `slot` hold stale values and are masked out.
        """
        dtype = self.dtype
        cols = torch.arange(cache.max_len, device=tokens.device)
        mask = (keep & (cols <= slot))[:, None, None, :]  # (B, 1, 1, max_len): broadcast over the query heads
        x = self.embed(tokens, pos)  # (B, 1, C) fp32 residual stream
        for block in self.transformer.h:
            x = block(x, mask, cache, dtype, slot)
        return self.lm_head(self.final_norm(x)).float()[:, -1]

    def pack_for_cpu(self):
        """Reorder the block Linear weights for oneDNN's CPU kernel (done at load on CPU)."""
        if can_pack(self.device, self.dtype):
            for m in self.transformer.h.modules():
                if isinstance(m, Linear) and not m.weight.is_mkldnn:
                    m.pack()
        return self

    def new_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        """A KV cache in the compute dtype for up to max_len positions (default n_positions)."""
        max_len = min(max_len or self.config.n_positions, self.config.n_positions)
        return KVCache(self.config, batch_size, max_len, self.dtype, self.device)

    # -- generation (implemented in generation.py) -----------------------------------------------
    def generate(self, input_ids, attention_mask=None, max_new_tokens=64, do_sample=False, temperature=1.0,
                 top_k=None, top_p=None, eos_token_id=None, stop=None, streamer=None, seed=None,
                 truncate=False, decode=None, prompt_lookup=0):
        """Generate continuations; returns LongTensor (B, T + new), prompt included, like transformers.

        truncate: keep the last tokens of a prompt too long for n_positions - max_new_tokens.
        decode: how the steps run: "graph" (the static step as a CUDA graph), "eager" (the static step),
        "dynamic" (a growing cache); None picks "graph" on CUDA for up to 8 rows, else "dynamic".
        prompt_lookup: draft up to this many tokens per forward by copying what followed the same n-gram
        earlier in the prompt or the output, verified in one forward (modeling/lookup.py): the same greedy
        tokens, the same sampling distribution; one unpadded prompt at a time. 0 = off.
        """
        from .generation import generate

        return generate(self, input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                        do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p,
                        eos_token_id=eos_token_id, stop=stop, streamer=streamer, seed=seed, truncate=truncate,
                        decode=decode, prompt_lookup=prompt_lookup)

    def stream(self, prompt, **kwargs):
        """Yield the completion of a text prompt piece by piece as it is generated (batch of one)."""
        from .generation import stream

        yield from stream(self, prompt, **kwargs)
