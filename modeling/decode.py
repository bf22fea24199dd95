"""The fast decode path: one static-shape step, replayed as a CUDA graph on GPUs.

At batch size 1 a 1.1B model on a GPU is bound by kernel launches, not FLOPs: eager PyTorch issues
hundreds of small kernels per token. `StaticDecoder` keeps every input of a decode step in a fixed
buffer (token, position ids, cache slot, padding mask; the KV cache has a fixed length), so the step
`SantaCoderForCausalLM.decode_step` has the same shapes and addresses every time. On CUDA it is
captured once into a CUDA graph and replayed; elsewhere (or when capture fails) the same step runs
eagerly. torch.compile is not used: on CPU it took 32 s to compile the int4 step, then decoded
slower than eager (31-38 against 37-42 tok/s in the same process), and it cannot trace
oneDNN-packed bf16 weights.

    dec = StaticDecoder(model, batch_size=1, max_len=T + n_new, mode="graph")
    logits = dec.prefill(input_ids, attention_mask)    # (B, vocab), eager SDPA prefill
    logits = dec.step(next_tokens)                     # (B, vocab), one token per row
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

MAX_GRAPH_BATCH = 8  # generate() uses the static step up to this batch size (small-batch decoding)


def check_graph_device(mode: str, device: torch.device):
    if mode == "graph" and device.type != "cuda":
        raise ValueError(f"decode mode 'graph' needs a CUDA model (this one is on {device})")


class StaticDecoder:
    """Prefill eagerly into a fixed-length KV cache, then decode with a static-shape step.

    mode: "graph" (a CUDA graph; CUDA only) or "eager" (the same step, uncaptured). Models with a layer
    marked graph_safe=False run eagerly; a graph that fails to capture falls back to "eager" with a
    warning. generate() chooses the mode (modeling.generation.decode_mode).
    """

    def __init__(self, model, batch_size: int, max_len: int, mode: str = "eager"):
        dev = model.device
        if mode not in ("graph", "eager"):
            raise ValueError(f"decode mode {mode!r} is not one of graph, eager")
        check_graph_device(mode, dev)
        self.model, self.mode = model, mode
        self.cache = model.new_cache(batch_size, max_len)
        B, L = batch_size, self.cache.max_len
        self.tokens = torch.zeros(B, 1, dtype=torch.long, device=dev)
        self.pos = torch.zeros(B, 1, dtype=torch.long, device=dev)
        self.slot = torch.zeros(1, dtype=torch.long, device=dev)
        self.keep = torch.ones(B, L, dtype=torch.bool, device=dev)
        self.graph = self.logits = None

    def _run(self):
        return self.model.decode_step(self.tokens, self.pos, self.slot, self.keep, self.cache)

    @torch.inference_mode()
    def prefill(self, input_ids, attention_mask=None) -> torch.Tensor:
        """Run the prompt (B, T) through the model into the cache; returns the last logits (B, vocab)."""
        B, T = input_ids.shape
        if B != self.tokens.shape[0]:
            raise ValueError(f"batch of {B} prompts for a decoder built for {self.tokens.shape[0]}")
        self.cache.length = 0
        logits = self.model(input_ids, attention_mask, cache=self.cache, last_only=True).logits[:, -1]
        self.keep.fill_(True)
        if attention_mask is None:
            self.pos.fill_(T - 1)
        else:
            self.keep[:, :T] = attention_mask.bool()
            self.pos.copy_(attention_mask.long().sum(-1, keepdim=True) - 1)  # last real token's position id
        if self.mode == "graph" and not all(getattr(m, "graph_safe", True) for m in self.model.modules()):
            self.mode = "eager"  # a layer that cannot be captured (bitsandbytes, GPTQ's dequantize fallback)
        if self.mode == "graph" and self.graph is None and T < self.cache.max_len:
            self.slot.fill_(T)
            self._capture()  # here rather than in the first step: its cost counts as prompt time
        return logits

    @torch.inference_mode()
    def step(self, tokens) -> torch.Tensor:
        """Append one token per row (B,) at the next position; returns the next logits (B, vocab).

        The returned tensor is a static buffer on the graph path: the next step overwrites it.
        """
        n = self.cache.length
        if n >= self.cache.max_len:
            raise ValueError(f"KV cache of {self.cache.max_len} positions is full")
        self.tokens.copy_(tokens.view(-1, 1))
        self.pos += 1
        self.slot.fill_(n)
        if self.graph is not None:
            with torch.cuda.device(self.slot.device):  # the model's GPU, which need not be the current one
                self.graph.replay()
            self.cache.length = n + 1
            return self.logits
        logits = self._run()
        self.cache.length = n + 1
        return logits

    def _capture(self):
        """Record the step into a CUDA graph (warm-up on a side stream first, as capture requires).

        Warm-up and capture run the step on placeholder inputs at the next cache slot, which the
        first replay overwrites with the real token's K/V before anything attends to it. Everything
        runs on the model's GPU and inside an outer stream context, so a capture that fails leaves
        the current stream as it was; the model then decodes eagerly from now on.
        """
        dev = self.model.device
        try:
            with torch.cuda.device(dev):
                side = torch.cuda.Stream(device=dev)
                side.wait_stream(torch.cuda.current_stream(dev))
                with torch.cuda.stream(side):
                    for _ in range(2):
                        self._run()
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, stream=side):
                        self.logits = self._run()
                torch.cuda.current_stream(dev).wait_stream(side)
            self.graph = graph
        except Exception as e:  # e.g. a kernel that cannot be captured: the same step, eagerly
            log.warning("CUDA graph capture failed (%s: %s); decoding eagerly", type(e).__name__,
                        str(e).splitlines()[0] if str(e) else "")
            self.model.graphs_failed = True  # modeling.generation.decode_mode stops choosing graphs
            self.mode, self.graph, self.logits = "eager", None, None
