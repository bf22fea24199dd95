"""Module surgery on a SantaCoder model: which Linears a config quantizes, and swapping one in place."""

from __future__ import annotations

import torch.nn as nn

from .config import QuantConfig


def block_linears(model, config: QuantConfig):
    """(block index, name inside the block, module) for every Linear the config quantizes."""
    for i, block in enumerate(model.transformer.h):
        for name in config.modules:
            yield i, name, block.get_submodule(name)


def set_module(root: nn.Module, name: str, module: nn.Module):
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)
