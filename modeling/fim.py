"""Fill-in-the-middle prompts with SantaCoder's hyphenated FIM tokens.

PSM: <fim-prefix>{prefix}<fim-suffix>{suffix}<fim-middle>  -> the model writes the middle.
SPM: <fim-prefix><fim-suffix>{suffix}<fim-middle>{prefix}  -> the model continues the prefix.
Either way the model ends the middle with <|endoftext|>.
"""

from __future__ import annotations

EOS = "<|endoftext|>"
FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD = "<fim-prefix>", "<fim-middle>", "<fim-suffix>", "<fim-pad>"
FIM_TOKENS = (FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD)
STOP_TOKENS = (EOS,) + FIM_TOKENS  # generation ends at any of these


def fim_prompt(prefix: str, suffix: str, mode: str = "psm") -> str:
    """The FIM prompt for the code between `prefix` and `suffix` ("psm" or "spm" order)."""
    if mode == "psm":
        return f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"
    if mode == "spm":
        return f"{FIM_PREFIX}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}{prefix}"
    raise ValueError(f"FIM mode {mode!r} is not supported; use 'psm' or 'spm'")


def extract_middle(text_or_ids, tokenizer=None, prefix: str | None = None) -> str:
    """The generated middle of a FIM completion.

    Takes the decoded text (special tokens kept) or token ids (with `tokenizer`), returns what
    follows the prompt's <fim-middle> (the first) up to the first <|endoftext|> or FIM token. For SPM prompts pass
    the `prefix`, which the text after <fim-middle> starts with, to have it removed.
    """
    if isinstance(text_or_ids, str):
        text = text_or_ids
    else:
        if tokenizer is None:
            raise ValueError("extract_middle: token ids need the tokenizer to decode them (tokenizer=...)")
        ids = text_or_ids.tolist() if hasattr(text_or_ids, "tolist") else list(text_or_ids)
        text = tokenizer.decode(ids, skip_special_tokens=False)
    if FIM_MIDDLE not in text:
        raise ValueError(f"extract_middle: no {FIM_MIDDLE} token in the text; was the prompt made with fim_prompt()?")
    middle = text.split(FIM_MIDDLE, 1)[1]  # a generated <fim-middle> ends the middle
    cut = min((i for i in (middle.find(t) for t in STOP_TOKENS) if i >= 0), default=len(middle))
    middle = middle[:cut]
    if prefix is not None:
        if not middle.startswith(prefix):
            raise ValueError("extract_middle: the text after <fim-middle> does not start with the given SPM prefix")
        middle = middle[len(prefix):]
    return middle
