"""quantize_(model, config): swap the block Linears of a SantaCoder model for quantized ones."""

from __future__ import annotations

import torch.nn as nn
from tqdm import tqdm

from .config import QuantConfig
from .linear import GPTQLinear


def block_linears(model, config: QuantConfig):
    """(block index, name inside the block, module) for every Linear the config quantizes."""
    for i, block in enumerate(model.transformer.h):
        for name in config.modules:
            yield i, name, block.get_submodule(name)


def set_module(root: nn.Module, name: str, module: nn.Module):
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)


def quantize_(model, config: QuantConfig, calibration=None):
    """Quantize `model` in place (module swap) and return it.

    method="rtn": round to nearest, no data. method="gptq": needs `calibration` token blocks.
    """
    if config.method == "gptq":
        raise NotImplementedError("method='gptq' is not available yet in this version; use method='rtn'")
    if config.method == "bnb":
        raise NotImplementedError("method='bnb' is not available yet in this version; use method='rtn'")
    dtype = model.dtype
    items = list(block_linears(model, config))
    for i, name, lin in tqdm(items, desc=f"RTN int{config.bits}", unit="linear", leave=False):
        q = GPTQLinear.from_linear(lin, config.bits, config.group_size, config.sym, name=f"transformer.h.{i}.{name}")
        set_module(model.transformer.h[i], name, q.prepare(dtype))
    return model
