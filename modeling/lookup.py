"""Prompt-lookup decoding: draft tokens by copying what followed the same n-gram earlier in the sequence,
then verify the whole draft in one forward pass.

Code repeats what is already on screen (the suffix below the cursor, a function above, a renamed
variable); decode reads every weight once per forward, so checking k drafted tokens in one forward of
k + 1 rows costs far less than k + 1 forwards of one row. Greedy decoding keeps exactly the tokens the
model would have chosen one by one; sampling keeps the model's distribution (speculative rejection
sampling with a deterministic draft: accept draft d with probability p(d), else sample from p without d).

`PromptLookup` holds the sequence (prompt, FIM suffix and extra context included, plus what is
generated) and an index of its n-grams; `propose()` returns the continuation of the latest earlier
occurrence of the sequence's last n-gram (n = 3, then 2), as long as the adaptive draft length allows.
"""

from __future__ import annotations

import torch

NGRAMS = (3, 2)  # match lengths tried, longest first: 1-token matches draft too much noise on code


class PromptLookup:
    """Draft source and adaptive draft length.

    The draft length starts at `max_draft`, grows by 2 after a fully accepted draft and drops to one
    more than what was accepted otherwise; after a draft with nothing accepted, drafting pauses for
    1, 2, 4, ... 16 steps (reset by the next accepted token), so text with no repeats runs at about
    the plain speed.
    """

    def __init__(self, tokens: list[int], max_draft: int, ngrams: tuple[int, ...] = NGRAMS):
        self.max_draft, self.ngrams = max_draft, ngrams
        self.seq: list[int] = []
        self.index: dict[int, dict[tuple, int]] = {n: {} for n in ngrams}
        self.k, self.pause, self.backoff = max_draft, 0, 0
        self.drafted = self.accepted = self.forwards = 0  # statistics for benchmarks
        self.trace: list[tuple[int, int]] = []  # (drafted, accepted) of every decode forward
        self.extend(tokens)

    def extend(self, tokens):
        seq = self.seq
        for t in tokens:
            L = len(seq)
            for n in self.ngrams:  # the n-gram ending here now has a continuation: t
                if L >= n:
                    self.index[n][tuple(seq[L - n:L])] = L
            seq.append(int(t))

    def propose(self, limit: int) -> list[int]:
        """Up to min(limit, current draft length) tokens, or [] (no match, or drafting paused)."""
        if self.pause > 0:
            self.pause -= 1
            return []
        k = min(limit, self.k)
        if k <= 0:
            return []
        seq = self.seq
        for n in self.ngrams:
            if len(seq) > n:
                at = self.index[n].get(tuple(seq[-n:]))
                if at is not None:
                    return seq[at:at + k]
        return []

    def feedback(self, drafted: int, accepted: int):
        """After every decode forward: what was drafted and how much of it the model kept."""
        self.trace.append((drafted, accepted))
        self.drafted += drafted
        self.accepted += accepted
        self.forwards += 1
        if drafted == 0:
            return
        if accepted == drafted:
            self.k = min(self.max_draft, self.k + 2)
        else:
            self.k = max(1, accepted + 1)
        if accepted == 0:
            self.backoff = min(16, 2 * self.backoff or 1)
            self.pause = self.backoff
        else:
            self.backoff = 0


def verify_greedy(logits: torch.Tensor, draft: list[int]) -> tuple[int, int]:
    """logits (k + 1, vocab) after [last token, *draft]: (drafted tokens accepted, the model's next token)."""
    choice = logits.argmax(dim=-1).tolist()
    n = 0
    while n < len(draft) and choice[n] == draft[n]:
        n += 1
    return n, choice[n]


def verify_sampled(probs: torch.Tensor, draft: list[int], generator=None) -> tuple[int, int]:
    """probs (k + 1, vocab), the target distribution at each position: accept draft token d with
    probability p(d); at the first rejection the next token is drawn from p with d removed, and after a
    fully accepted draft from the last row. The tokens produced follow the target distribution exactly."""
    u = torch.rand(len(draft), generator=generator, device=probs.device).tolist() if draft else []
    for i, d in enumerate(draft):
        if u[i] < float(probs[i, d]):
            continue
        rest = probs[i].clone()
        rest[d] = 0
        return i, int(torch.multinomial(rest / rest.sum(), 1, generator=generator))
    return len(draft), int(torch.multinomial(probs[len(draft)], 1, generator=generator))
