"""Calibration text for GPTQ: the bundled code corpus, user sources, and the FIM transform.

    texts = load_texts("bundled")            # or "heldout", a folder, a glob, a file, "hub:NAME"
    blocks = calibration_blocks(tokenizer)   # LongTensor (n_samples, seq_len), deterministic in `seed`

The bundled corpus (corpus/{python,java,javascript}) was written for this project in SantaCoder's
three languages; heldout/ is a separate split for perplexity. A fraction of the documents is turned
into fill-in-the-middle text with the model's own FIM tokens, split at character level as in
SantaCoder's training recipe, so that calibration sees the inputs code editors send.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import random

import torch

from modeling.fim import EOS, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, fim_prompt

log = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))
SPLITS = {"bundled": os.path.join(HERE, "corpus"), "heldout": os.path.join(HERE, "heldout")}
CODE_EXTENSIONS = (".py", ".java", ".js")
EXTENSIONS = CODE_EXTENSIONS + (".txt", ".jsonl")
JSONL_FIELDS = ("text", "content")


def load_texts(source: str = "bundled", max_documents: int = 10_000) -> list[str]:
    """Documents from `source`: "bundled", "heldout", a folder (searched recursively), a glob, a file,
    or "hub:NAME" (the first max_documents rows of a datasets dataset with a text/content field; needs the
    `hub` extra and the network).

    .py/.java/.js/.txt files are one document each; .jsonl files give one per line. The order is
    sorted by path, so the result does not depend on the file system. Only text is used: a file named
    alone that is not UTF-8 text (invalid bytes, or NUL bytes) is an error; in a folder or glob such
    files are skipped with one warning.
    """
    if source.startswith("hub:"):
        return _hub_texts(source[4:], max_documents)
    if source in SPLITS:
        paths = _files_under(SPLITS[source])
    elif os.path.isdir(source):
        paths = _files_under(source)
    elif os.path.isfile(source):
        paths = [source]  # a file named explicitly is read whatever its extension
    else:
        paths = [p for p in sorted(glob.glob(source, recursive=True)) if os.path.isfile(p) and p.endswith(EXTENSIONS)]
    if not paths:
        raise ValueError(f"calibration source {source!r}: no {'/'.join(EXTENSIONS)} files found "
                         f"(use 'bundled', a folder, a glob, a file or hub:NAME)")
    texts, binary = [], []
    for p in paths:
        try:
            texts.extend(_jsonl_texts(p) if p.endswith(".jsonl") else [_read(p)])
        except BinaryFileError as e:
            if len(paths) == 1:
                raise ValueError(f"calibration source {p}: {e}; give code as text") from None
            binary.append(os.path.relpath(p, source) if os.path.isdir(source) else p)
    if binary:
        log.warning("calibration source %r: skipped %d binary file(s) (not UTF-8 text): %s%s", source, len(binary),
                    ", ".join(binary[:5]), ", ..." if len(binary) > 5 else "")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError(f"calibration source {source!r}: no text in its {len(paths)} files "
                         f"({len(binary)} binary, {len(paths) - len(binary)} empty)")
    return texts


def _files_under(folder: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True) if p.endswith(EXTENSIONS))


class BinaryFileError(ValueError):
    """A calibration file that is not text."""


def _read(path: str) -> str:
    """A file's text; BinaryFileError for NUL bytes or bytes that are not UTF-8 (what code never holds)."""
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data:
        raise BinaryFileError("not text (it contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BinaryFileError(f"not UTF-8 text (invalid byte at offset {e.start})") from None


def _jsonl_texts(path: str) -> list[str]:
    texts = []
    for n, line in enumerate(_read(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        field = next((k for k in JSONL_FIELDS if isinstance(row, dict) and isinstance(row.get(k), str)), None)
        if field is None:
            raise ValueError(f"{path}:{n}: no string field {' or '.join(map(repr, JSONL_FIELDS))}")
        texts.append(row[field])
    return texts


def _hub_texts(name: str, max_documents: int) -> list[str]:
    try:
        import datasets
    except ImportError:
        raise ImportError('calibration from hub:NAME needs the datasets package: pip install -e ".[hub]" '
                          "in this project's folder") from None
    rows = datasets.load_dataset(name, split="train", streaming=True)
    texts = []
    for row in rows:
        field = next((k for k in JSONL_FIELDS if isinstance(row.get(k), str)), None)
        if field is None:
            raise ValueError(f"hub:{name}: rows have no string field {' or '.join(map(repr, JSONL_FIELDS))}")
        texts.append(row[field])
        if len(texts) >= max_documents:
            break
    return texts


def fim_transform(text: str, rng: random.Random, spm: bool = False) -> str:
    """One document as fill-in-the-middle text, cut at two random character positions.

    PSM: <fim-prefix>prefix<fim-suffix>suffix<fim-middle>middle
    SPM: <fim-prefix><fim-suffix>suffix<fim-middle>prefix middle
    (the order of modeling.fim.fim_prompt, with the middle the model learns to write).
    """
    a, b = sorted(rng.randint(0, len(text)) for _ in range(2))
    return fim_prompt(text[:a], text[b:], mode="spm" if spm else "psm") + text[a:b]


def _token_stream(tokenizer, texts, rng: random.Random, fim_rate: float, spm_rate: float) -> list[int]:
    """The documents as one token stream, each ending with <|endoftext|>; a fim_rate share (drawn from rng)
    in FIM form, SPM for a spm_rate share of those."""
    vocab = tokenizer.get_vocab()
    if EOS not in vocab:
        raise ValueError(f"the tokenizer has no {EOS} token to separate documents")
    missing = [t for t in (FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX) if t not in vocab]
    if missing and fim_rate > 0:
        raise ValueError(f"the tokenizer has no {', '.join(missing)} token; use fim_rate=0 (--fim-rate 0)")
    eos = tokenizer.convert_tokens_to_ids(EOS)
    stream = []
    for t in texts:
        if rng.random() < fim_rate:
            t = fim_transform(t, rng, spm=rng.random() < spm_rate)
        stream.extend(tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"])
        stream.append(eos)
    return stream


def calibration_blocks(tokenizer, source: str = "bundled", n_samples: int = 128, seq_len: int = 512,
                       fim_rate: float = 0.5, spm_rate: float = 0.5, seed: int = 0) -> torch.LongTensor:
    """Token blocks (n_samples, seq_len) for calibration, the same for the same arguments.

    Documents are shuffled with `seed`; each becomes FIM text with probability `fim_rate` (SPM
    order for a `spm_rate` share of those), ends with <|endoftext|>, and all are joined into one
    token stream. Blocks are distinct seq_len windows of that stream chosen at random; a source
    too small for n_samples distinct blocks reuses overlapping windows, with a warning.
    """
    if n_samples < 1 or seq_len < 2:
        raise ValueError(f"n_samples={n_samples} and seq_len={seq_len} must be at least 1 and 2")
    if not 0 <= fim_rate <= 1 or not 0 <= spm_rate <= 1:
        raise ValueError(f"fim_rate={fim_rate} and spm_rate={spm_rate} must lie in [0, 1]")
    rng = random.Random(seed)
    texts = load_texts(source)
    rng.shuffle(texts)
    stream = _token_stream(tokenizer, texts, rng, fim_rate, spm_rate)
    if len(stream) < seq_len:
        raise ValueError(f"calibration source {source!r} has {len(stream)} tokens, fewer than one block of "
                         f"seq_len={seq_len}; give more text or a smaller --seq-len")
    distinct = len(stream) // seq_len
    starts = [i * seq_len for i in sorted(rng.sample(range(distinct), min(n_samples, distinct)))]
    if n_samples > distinct:
        log.warning("calibration source %r has %d tokens: %d distinct blocks of %d, %d more overlap",
                    source, len(stream), distinct, seq_len, n_samples - distinct)
        starts += [rng.randint(0, len(stream) - seq_len) for _ in range(n_samples - distinct)]
    data = torch.tensor(stream, dtype=torch.long)
    return torch.stack([data[s:s + seq_len] for s in starts])


def eval_blocks(tokenizer, source: str = "heldout", seq_len: int = 512, fim_rate: float = 0.0,
                seed: int = 0) -> torch.LongTensor:
    """Every consecutive seq_len block of `source` (files in sorted order, each ending with
    <|endoftext|>): the perplexity set. With fim_rate > 0, that share of files is PSM/SPM FIM text."""
    stream = _token_stream(tokenizer, load_texts(source), random.Random(seed), fim_rate, spm_rate=0.5)
    n = len(stream) // seq_len
    if n == 0:
        raise ValueError(f"evaluation source {source!r} has {len(stream)} tokens, fewer than seq_len={seq_len}")
    return torch.tensor(stream[: n * seq_len], dtype=torch.long).view(n, seq_len)
