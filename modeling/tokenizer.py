"""Tokenizer loading: transformers' AutoTokenizer from the checkpoint folder or hub id."""

from __future__ import annotations

import os

from .loading import CheckpointError, resolve_folder


def load_tokenizer(path_or_id, revision: str | None = None):
    """The checkpoint's tokenizer (a transformers fast tokenizer), with padding on the left."""
    from transformers import AutoTokenizer

    folder = resolve_folder(path_or_id, revision)
    if not any(os.path.exists(os.path.join(folder, f)) for f in ("tokenizer.json", "vocab.json")):
        raise CheckpointError(f"{folder}: no tokenizer files (tokenizer.json or vocab.json + merges.txt)")
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"  # batched generation left-pads
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
