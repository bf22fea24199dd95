"""Perplexity of a causal LM on token blocks: the quality number quantization is judged by."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


@torch.inference_mode()
def perplexity(model, blocks: torch.Tensor, batch_size: int = 8) -> float:
    """exp(mean next-token negative log-likelihood) over every position of blocks (n, T) but the first."""
    nll, count = 0.0, 0
    for b in blocks.split(batch_size):
        b = b.to(model.device)
        logits = model(b).logits[:, :-1]  # fp32 (B, T-1, vocab)
        nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b[:, 1:].reshape(-1), reduction="sum").item()
        count += b[:, 1:].numel()
    return math.exp(nll / count)
