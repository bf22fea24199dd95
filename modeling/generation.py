"""Generation: prefill once into a preallocated KV cache, then one token per step.

`steps()` is the loop, as a generator of new tokens; `generate()` collects them into a tensor (the
transformers convention: prompt + new tokens) and `stream()` turns them into text pieces.
"""

from __future__ import annotations

import logging
import math
import numbers

import torch

from .decode import MAX_GRAPH_BATCH, StaticDecoder, check_graph_device
from .fim import STOP_TOKENS
from .lookup import PromptLookup, verify_greedy, verify_sampled
from .model import ROW_BY_ROW_MAX

log = logging.getLogger(__name__)


class GenerationArgumentError(ValueError):
    """A generation argument out of range. `field` is the argument's Python name; the CLI and the server
    report it under their own names (--top-p, n_predict, ...)."""

    def __init__(self, field: str, why: str):
        super().__init__(f"{field} {why}")
        self.field, self.why = field, why


def check_generation_args(max_new_tokens=64, temperature=1.0, top_k=None, top_p=None, stop=None, prompt_lookup=0):
    """Refuse out-of-range sampling and length arguments before any work: the one check shared by
    generate.py, the Python API and the server. temperature 0 means greedy."""
    if not isinstance(prompt_lookup, numbers.Integral) or isinstance(prompt_lookup, bool) or not 0 <= prompt_lookup <= 64:
        raise GenerationArgumentError("prompt_lookup", f"must be an integer in [0, 64], 0 = off (got {prompt_lookup!r})")
    if not isinstance(max_new_tokens, numbers.Integral) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise GenerationArgumentError("max_new_tokens", f"must be an integer >= 1 (got {max_new_tokens!r})")
    if not isinstance(temperature, numbers.Real) or not math.isfinite(temperature) or temperature < 0:
        raise GenerationArgumentError("temperature", f"must be a finite number >= 0, 0 = greedy (got {temperature!r})")
    if top_p is not None and not (isinstance(top_p, numbers.Real) and 0 < top_p <= 1):  # NaN fails too
        raise GenerationArgumentError("top_p", f"must lie in (0, 1] (got {top_p!r})")
    if top_k is not None and (not isinstance(top_k, numbers.Integral) or isinstance(top_k, bool) or top_k < 0):
        raise GenerationArgumentError("top_k", f"must be an integer >= 0, 0 = no limit (got {top_k!r})")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if not all(isinstance(s, str) and s for s in stops):
        raise GenerationArgumentError("stop", f"must be non-empty strings (got {stop!r})")
    for s in stops:
        check_text(s, "stop")


def check_text(text, field: str = "prompt", allow_empty: bool = False):
    """A prompt (or FIM part) must be a non-empty str that encodes as UTF-8 (no lone surrogates, which is
    what undecodable bytes on a command line become)."""
    if not isinstance(text, str):
        raise GenerationArgumentError(field, f"must be text (got {type(text).__name__})")
    if not text and not allow_empty:
        raise GenerationArgumentError(field, "is empty: give at least one character of text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise GenerationArgumentError(field, f"is not valid UTF-8 text (undecodable byte at character {e.start})") from None


# Below this, 1/temperature overflows fp32 and sampling is argmax in all but name: it is done as argmax.
GREEDY_BELOW = torch.finfo(torch.float32).tiny


def is_greedy(do_sample, temperature) -> bool:
    return not do_sample or temperature < GREEDY_BELOW


def sample_next(logits, do_sample, temperature, top_k, top_p, generator):
    """Next token ids (B,) from fp32 logits (B, V): argmax, or sampling with temperature / top-k / top-p.
    temperature 0 (or one too small for fp32) is greedy."""
    if is_greedy(do_sample, temperature):
        return logits.argmax(dim=-1)
    return torch.multinomial(sampling_probs(logits, temperature, top_k, top_p), 1, generator=generator).squeeze(-1)


def sampling_probs(logits, temperature, top_k, top_p):
    """The distribution (B, V) that sampling draws from: softmax(logits / temperature), top-k and top-p applied."""
    # Shifted so the largest logit is 0: a small temperature sends the others to -inf, never to inf or NaN.
    logits = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
    if top_k is not None and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs > top_p  # keep the smallest set whose mass reaches top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits.softmax(dim=-1)


DECODE_MODES = ("dynamic", "eager", "graph")


def decode_mode(model, batch_size: int, decode: str | None) -> str:
    """How decode steps run: the caller's choice, else CUDA graphs on a GPU up to MAX_GRAPH_BATCH rows
    (unless a capture on this model once failed) and the growing-cache loop otherwise (on
    CPU the static step measured no faster: benchmarks/results/decode_cpu.md)."""
    if decode is not None:
        if decode not in DECODE_MODES:
            raise ValueError(f"decode={decode!r} is not one of {', '.join(DECODE_MODES)}")
        check_graph_device(decode, model.device)  # here, before the prompt reaches a streamer
        return decode
    graphs = model.device.type == "cuda" and batch_size <= MAX_GRAPH_BATCH and not getattr(model, "graphs_failed", False)
    return "graph" if graphs else "dynamic"


def stop_token_ids(model, eos_token_id):
    """EOS ids: the caller's, else the config's EOS plus every FIM token the tokenizer knows."""
    if eos_token_id is not None:
        return [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    ids = {model.config.eos_token_id} - {None}
    try:
        tok = model.tokenizer
    except Exception:  # a model built from a config has no tokenizer; the config's EOS is enough
        tok = None
    if tok is not None:
        for t in STOP_TOKENS:
            i = tok.convert_tokens_to_ids(t)
            if i is not None and tok.convert_ids_to_tokens(i) == t:  # unknown tokens map to unk: skip them
                ids.add(i)
    return sorted(ids)


def prepare(model, input_ids, attention_mask, max_new_tokens, truncate):
    """Validate and place the inputs; returns (input_ids, attention_mask, number of tokens to make)."""
    if not torch.is_tensor(input_ids):
        input_ids = torch.tensor(input_ids, dtype=torch.long)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise GenerationArgumentError("input_ids", f"must hold at least one token per row (got shape "
                                                   f"{tuple(input_ids.shape)}); is the prompt empty?")
    input_ids = input_ids.to(model.device)
    if attention_mask is not None:
        attention_mask = torch.as_tensor(attention_mask).to(model.device).reshape(input_ids.shape).long()
        if (attention_mask[:, 1:] < attention_mask[:, :-1]).any():
            raise ValueError("attention_mask: right padding is not supported; pad on the left (padding_side='left')")
        if attention_mask.all():
            attention_mask = None  # no padding: cheaper masks
        elif not attention_mask.any(dim=1).all():
            row = int((~attention_mask.any(dim=1)).nonzero()[0])
            raise ValueError(f"attention_mask row {row} is all padding: every prompt needs at least one token")
    n_pos = model.config.n_positions
    T = input_ids.shape[1]
    if T >= n_pos or (truncate and T + max_new_tokens > n_pos):
        if not truncate:
            raise ValueError(
                f"prompt of {T} tokens leaves no room in the model's n_positions={n_pos}; "
                f"shorten it or pass truncate=True (generate.py --truncate) to keep its last tokens"
            )
        keep = max(1, n_pos - max_new_tokens)
        log.warning("prompt of %d tokens left-truncated to its last %d", T, keep)
        input_ids = input_ids[:, -keep:]
        attention_mask = attention_mask[:, -keep:] if attention_mask is not None else None
        T = keep
    n_new = min(max_new_tokens, n_pos - T)
    if n_new < max_new_tokens:
        log.warning("generation stops at the model's n_positions=%d: %d new tokens instead of %d",
                    n_pos, n_new, max_new_tokens)
    return input_ids, attention_mask, n_new


@torch.inference_mode()
def steps(model, input_ids, attention_mask=None, max_new_tokens=64, do_sample=False, temperature=1.0,
          top_k=None, top_p=None, eos_token_id=None, stop=None, seed=None, truncate=False, decode=None,
          cache=None, prompt_lookup=0):
    """Yield (input_ids, attention_mask) once, then (next_tokens (B,), finished (B,)) per new token.

    cache: a KVCache (one row, no padding) whose first `cache.length` positions already hold the keys and
    values of input_ids' first tokens (a prompt cache, server/engine.py); only the other tokens are run,
    and the cache keeps the keys and values of at least every token yielded but the last (cache.length
    says how many tokens it holds) for the next call to reuse.
    prompt_lookup: draft up to this many tokens per forward from the sequence itself (modeling/lookup.py);
    one unpadded prompt at a time, on the growing cache."""
    check_generation_args(max_new_tokens, temperature, top_k, top_p, stop, prompt_lookup)
    input_ids, attention_mask, n_new = prepare(model, input_ids, attention_mask, max_new_tokens, truncate)
    B, T = input_ids.shape
    if prompt_lookup:
        if B != 1 or attention_mask is not None:
            raise GenerationArgumentError("prompt_lookup", f"works on one unpadded prompt at a time (got a batch of {B}"
                                                           f"{' with padding' if attention_mask is not None else ''})")
        if decode not in (None, "dynamic"):
            raise ValueError(f"decode={decode!r}: prompt lookup runs on the growing cache (decode='dynamic')")
        decode = "dynamic"
    if cache is not None:
        if B != 1 or attention_mask is not None or not 0 <= cache.length < T or cache.max_len < T + n_new:
            raise ValueError(f"cache: needs one unpadded row, fewer cached positions ({cache.length}) than prompt "
                             f"tokens ({T}) and room for {T + n_new} positions (holds {cache.max_len})")
        decode = "dynamic"
    mode = decode_mode(model, B, decode)
    yield input_ids, attention_mask
    stops = torch.tensor(stop_token_ids(model, eos_token_id), device=input_ids.device, dtype=torch.long)
    c = model.config
    pad = torch.tensor(next((i for i in (c.pad_token_id, c.eos_token_id) if i is not None), 0), device=input_ids.device)
    stop = [stop] if isinstance(stop, str) else list(stop or [])
    tok = model.tokenizer if stop else None
    generated = [[] for _ in range(B)] if stop else None
    generator = torch.Generator(device=input_ids.device).manual_seed(seed) if seed is not None else None

    if mode == "dynamic":  # the cache grows by one position per step; shapes change every step
        if cache is None:
            cache = model.new_cache(B, T + n_new)
        logits = model(input_ids[:, cache.length:], attention_mask, cache=cache, last_only=True).logits[:, -1]

        def step(nxt):
            nonlocal attention_mask
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask, attention_mask.new_ones(B, 1)], dim=1)
            return model(nxt[:, None], attention_mask, cache=cache, last_only=True).logits[:, -1]
    else:  # static shapes: CUDA graph replay on GPUs (modeling/decode.py)
        dec = StaticDecoder(model, B, T + n_new, mode=mode)
        logits, step = dec.prefill(input_ids, attention_mask), dec.step
    finished = torch.zeros(B, dtype=torch.bool, device=input_ids.device)

    def mark(nxt):  # padding after a row's end; a stop token or stop string ends the row
        nonlocal finished
        nxt = torch.where(finished, pad, nxt)
        finished = finished | torch.isin(nxt, stops)
        if stop:
            for b in range(B):
                generated[b].append(int(nxt[b]))
                tail = tok.decode(generated[b][-(max(map(len, stop)) + 4):])
                if any(s in tail for s in stop):
                    finished[b] = True
        return nxt

    if prompt_lookup:
        yield from lookup_loop(model, input_ids, logits, cache, n_new, prompt_lookup, mark, lambda: finished,
                               do_sample, temperature, top_k, top_p, generator)
        return
    for i in range(n_new):
        nxt = mark(sample_next(logits, do_sample, temperature, top_k, top_p, generator))
        yield nxt, finished
        if bool(finished.all()) or i == n_new - 1:
            return
        logits = step(nxt)


def lookup_loop(model, input_ids, logits, cache, n_new, max_draft, mark, finished, do_sample, temperature, top_k,
                top_p, generator):
    """steps() with prompt lookup: each forward runs the last token and a draft, and yields the accepted
    draft tokens and the model's own next token. Statistics land in model.lookup_stats."""
    # a draft as long as a layer's long-prompt threshold would switch it to dequantize + GEMM: other numerics;
    # past ROW_BY_ROW_MAX rows, attention and the bf16 Linears block differently too
    rows = min((m.gemm_from_rows for m in model.modules() if hasattr(m, "gemm_from_rows")), default=math.inf)
    look = PromptLookup(input_ids[0].tolist(), int(min(max_draft, rows - 2, ROW_BY_ROW_MAX - 1)))
    model.lookup_stats = look
    greedy = is_greedy(do_sample, temperature)
    pending, made = [int(sample_next(logits, do_sample, temperature, top_k, top_p, generator)[0])], 0
    while True:
        for t in pending:
            t = mark(torch.tensor([t], device=input_ids.device))
            made += 1
            yield t, finished()
            if bool(finished().all()) or made == n_new:
                return
            look.extend([int(t)])
        draft = look.propose(n_new - made - 1)
        past = cache.length
        out = model(torch.tensor([[pending[-1], *draft]], device=input_ids.device), cache=cache).logits[0]  # (k+1, V)
        if greedy:
            n, nxt = verify_greedy(out, draft)
        else:
            n, nxt = verify_sampled(sampling_probs(out, temperature, top_k, top_p), draft, generator)
        look.feedback(len(draft), n)
        cache.length = past + 1 + n  # the rejected draft tokens' keys and values are dropped
        pending = [*draft[:n], nxt]


def generate(model, input_ids, streamer=None, **kwargs):
    """See SantaCoderForCausalLM.generate. `streamer`: a transformers streamer (put/end) or a
    callable receiving text pieces (batch of one)."""
    it = steps(model, input_ids, **kwargs)
    input_ids, _ = next(it)
    text = TextDelta(model.tokenizer, kwargs.get("stop")) if streamer is not None and not hasattr(streamer, "put") else None
    if text is not None and input_ids.shape[0] != 1:
        raise ValueError("a text callback streamer needs a batch of one prompt; pass a transformers streamer instead")
    if streamer is not None and text is None:
        streamer.put(input_ids.cpu())
    new = []
    for nxt, finished in it:
        new.append(nxt)
        if text is not None:
            piece = text.add(int(nxt[0]))
            if piece:
                streamer(piece)
        elif streamer is not None:
            streamer.put(nxt.cpu())
    if text is not None:
        piece = text.flush()
        if piece:
            streamer(piece)
    elif streamer is not None:
        streamer.end()
    return torch.cat([input_ids, torch.stack(new, dim=1)], dim=1)


class TextDelta:
    """Turns a growing list of token ids into the newly completed text: whole UTF-8 characters only, cut
    exactly where the first `stop` string starts. Text that could be the start of a stop string is held
    back until the next tokens tell; `stopped` is set once a stop string is seen, `stop_word` names it."""

    def __init__(self, tokenizer, stop=None):
        self.tok, self.ids, self.sent = tokenizer, [], 0
        self.stop = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
        self.stopped, self.stop_word = False, ""

    def add(self, token_id: int) -> str:
        if self.stopped:
            return ""
        self.ids.append(token_id)
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a character split across tokens: wait for the rest
            return ""
        return self._take(text, final=False)

    def flush(self) -> str:
        if self.stopped:
            return ""
        return self._take(self.tok.decode(self.ids, skip_special_tokens=True), final=True)

    def _take(self, text: str, final: bool) -> str:
        end = len(text)
        hits = [(i, s) for i, s in ((text.find(s), s) for s in self.stop) if i >= 0]
        if hits:
            end, self.stop_word = min(hits)
            self.stopped = True
        elif not final:  # hold back a tail that a stop string could start with
            for s in self.stop:
                k = next((k for k in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:k])), 0)
                end = min(end, len(text) - k)
        piece = text[self.sent:end]
        self.sent = max(self.sent, end)
        return piece


def stream(model, prompt, **kwargs):
    """Yield text pieces of the completion of `prompt` (a string or token ids) as they are made."""
    tok = model.tokenizer
    if isinstance(prompt, str):
        check_text(prompt)
    ids = tok(prompt, return_tensors="pt").input_ids if isinstance(prompt, str) else prompt
    it = steps(model, ids, **kwargs)
    input_ids, _ = next(it)
    if input_ids.shape[0] != 1:
        raise ValueError("stream() takes one prompt; use generate() for a batch")
    text = TextDelta(tok, kwargs.get("stop"))
    for nxt, _ in it:
        piece = text.add(int(nxt[0]))
        if piece:
            yield piece
    piece = text.flush()
    if piece:
        yield piece
