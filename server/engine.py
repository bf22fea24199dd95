"""The engine: owns the model, runs one generation at a time from a bounded queue, keeps a prompt cache.

Protocol adapters (server/app.py) turn a request into a `Job` (prompt token ids + sampling settings), put
it on the queue with `submit()` and read its events: ("token", id, text) per generated token, then
("end", Result) or ("error", message). A job whose client went away is cancelled and stops at its next
token. The prompt cache keeps the KV cache of the last few prompts (LRU slots); a new prompt reuses the
longest common token prefix of one of them, so only the tokens after the first change are evaluated.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import torch

from modeling.fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX
from modeling.generation import TextDelta, check_generation_args, check_text, steps, stop_token_ids
from quant.serialization import release_freed_memory

log = logging.getLogger("server")

# StarCoder's underscore FIM tokens, which client templates often default to, mean nothing to SantaCoder.
STARCODER_FIM = {"<fim_prefix>": FIM_PREFIX, "<fim_suffix>": FIM_SUFFIX, "<fim_middle>": FIM_MIDDLE,
                 "<fim_pad>": "<fim-pad>"}
COMMENT = {".py": "#", ".sh": "#", ".rb": "#", ".r": "#", ".yaml": "#", ".yml": "#", ".toml": "#", ".sql": "--",
           ".lua": "--", ".hs": "--", ".html": "<!--", ".md": "<!--"}


class BadRequest(ValueError):
    """A request the engine refuses before any work (HTTP 400); `field` names the request field."""

    def __init__(self, field_name: str, why: str):
        super().__init__(f"{field_name} {why}")
        self.field = field_name


class Busy(RuntimeError):
    """The queue is full (HTTP 503)."""


@dataclass
class Result:
    text: str
    tokens: list
    finish: str          # "stop" (EOS, FIM token or stop string), "length", "time", "cancelled"
    stop_word: str       # the stop string that ended it, or ""
    prompt_tokens: int   # the whole prompt
    prompt_n: int        # prompt tokens evaluated (the rest came from the prompt cache)
    cached: int          # prompt tokens taken from the prompt cache
    prompt_ms: float
    predicted_ms: float
    truncated: bool
    kept: int = 0        # tokens whose keys and values the slot now holds (llama.cpp's tokens_cached)


@dataclass
class Job:
    ids: list
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    stop: list = field(default_factory=list)
    seed: int | None = None
    t_max_predict_ms: float | None = None
    cache_prompt: bool = True
    ignore_eos: bool = False  # EOS and FIM tokens do not end it (llama.cpp's ignore_eos)
    prompt_lookup: int | None = None  # draft length of prompt-lookup decoding; None = the server's default
    truncated: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop | None = None
    events: asyncio.Queue | None = None

    def emit(self, *event):
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the server's event loop is gone (shutting down): nobody is listening
            self.cancelled.set()


class Slot:
    """One prompt-cache entry: a KV cache and the tokens whose keys and values it holds."""

    def __init__(self, cache):
        self.cache, self.tokens, self.used = cache, [], 0.0


def common_prefix(a: list, b: list) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Engine:
    def __init__(self, model, ctx: int | None = None, slots: int = 4, max_queue: int = 8, fim_mode: str = "spm",
                 prompt_lookup: int = 0):
        if fim_mode not in ("psm", "spm"):
            raise ValueError(f"--fim-mode {fim_mode!r}: use psm or spm")
        try:
            check_generation_args(prompt_lookup=prompt_lookup)
        except ValueError as e:
            raise ValueError(f"--prompt-lookup {prompt_lookup}: {e.why}") from None
        self.prompt_lookup = prompt_lookup
        self.model, self.tok = model, model.tokenizer
        self.ctx = min(ctx or model.config.n_positions, model.config.n_positions)
        self.fim_mode = fim_mode
        self.slots = [Slot(model.new_cache(1, self.ctx)) for _ in range(max(1, slots))]
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.stop_ids = set(stop_token_ids(model, None))
        self.special = {t: self.tok.convert_tokens_to_ids(t) for t in (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE)}
        self.lock = threading.Lock()  # held while a job runs
        self.taken = 0
        self.history: collections.deque = collections.deque(maxlen=32)  # recent Results, newest last
        self.worker = threading.Thread(target=self._work, name="engine", daemon=True)
        self.worker.start()

    # -- prompts ----------------------------------------------------------------------------------
    def encode(self, text: str) -> list:
        return self.tok(text, add_special_tokens=False).input_ids if text else []

    def text_prompt(self, text: str, max_new_tokens: int, truncate: int | None = None) -> tuple[list, bool]:
        """Token ids of a raw prompt (StarCoder's underscore FIM tokens read as SantaCoder's); too long for
        the context is an error unless `truncate` keeps its last tokens."""
        if not isinstance(text, str):  # token ids (llama.cpp /completion takes them)
            ids = list(text)
            if not ids or not all(isinstance(i, int) and 0 <= i < self.model.config.vocab_size for i in ids):
                raise BadRequest("prompt", f"token ids must be integers in [0, {self.model.config.vocab_size})")
        else:
            check_text(text, "prompt")
            for old, new in STARCODER_FIM.items():
                text = text.replace(old, new)
            ids = self.encode(text)
        room = self.ctx - max_new_tokens
        if room < 1:
            raise BadRequest("prompt", f"has no room: {max_new_tokens} tokens to generate fill the context of "
                                       f"{self.ctx} tokens; ask for fewer")
        if truncate:
            room = min(room, truncate)
        if len(ids) > room:
            if not truncate:
                raise BadRequest("prompt", f"of {len(ids)} tokens + {max_new_tokens} to generate does not fit the "
                                           f"context of {self.ctx} tokens; shorten it or ask for truncation")
            return ids[len(ids) - max(room, 1):], True
        return ids, False

    def fim_prompt(self, prefix: str, suffix: str, max_new_tokens: int, extra=()) -> tuple[list, bool]:
        """Token ids of a fill-in-the-middle prompt with SantaCoder's tokens, in the engine's order:
        PSM  <fim-prefix> extra prefix <fim-suffix> suffix <fim-middle>
        SPM  <fim-prefix> <fim-suffix> suffix <fim-middle> extra prefix   (the cursor comes last, so typing
             there keeps every earlier token in the prompt cache).
        `extra` (other files, [(filename, text)]) starts the prefix: each file as a comment line naming it,
        its text and a blank line. A prompt too long for the context loses the start of that prefix (the
        extra files first) and the end of the suffix (which gives up room down to a quarter of it)."""
        check_text(prefix, "input_prefix", allow_empty=True)
        check_text(suffix, "input_suffix", allow_empty=True)
        for name, text in extra:
            check_text(name, "input_extra.filename", allow_empty=True)
            check_text(text, "input_extra.text", allow_empty=True)
        head = "".join(f"{COMMENT.get(name[name.rfind('.'):].lower() if '.' in name else '', '//')} {name}\n"
                       f"{text}\n\n" for name, text in extra)
        pre, suf = self.encode(head + prefix), self.encode(suffix)
        room = self.ctx - max_new_tokens - 3
        if room < 2:
            raise BadRequest("n_predict", f"={max_new_tokens} leaves no room for a prompt in the context of "
                                          f"{self.ctx} tokens")
        truncated = len(pre) + len(suf) > room
        if truncated:
            suf = suf[:max(room // 4, room - len(pre))]
            pre = pre[len(pre) - (room - len(suf)):]
        p, s, m = self.special[FIM_PREFIX], self.special[FIM_SUFFIX], self.special[FIM_MIDDLE]
        if self.fim_mode == "psm":
            return [p] + pre + [s] + suf + [m], truncated
        return [p, s] + suf + [m] + pre, truncated

    # -- queue ------------------------------------------------------------------------------------
    def submit(self, job: Job):
        """Check the job's settings (BadRequest) and queue it (Busy when the queue is full)."""
        try:
            if job.prompt_lookup is None:
                job.prompt_lookup = self.prompt_lookup
            check_generation_args(max(job.max_new_tokens, 1), job.temperature, job.top_k, job.top_p, job.stop,
                                  job.prompt_lookup)
        except ValueError as e:
            raise BadRequest(getattr(e, "field", "request"), getattr(e, "why", str(e))) from None
        if job.seed is not None and not 0 <= job.seed < 2**64:
            raise BadRequest("seed", f"must lie in [0, 2**64) (got {job.seed})")
        job.loop, job.events = asyncio.get_running_loop(), asyncio.Queue()
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise Busy(f"server busy: {self.queue.maxsize} requests already queued (--max-queue); retry later") from None

    def _work(self):
        while True:
            job = self.queue.get()
            self.taken += 1  # jobs taken off the queue so far
            if job.cancelled.is_set():
                continue
            with self.lock:
                try:
                    result = self._run(job)
                except Exception as e:  # one failed request must not stop the engine
                    log.exception("generation failed")
                    job.emit("error", f"generation failed: {type(e).__name__}: {e}".splitlines()[0])
                    continue
            self.history.append(result)
            job.emit("end", result)
            if self.queue.empty():
                release_freed_memory()  # a long prompt's temporaries go back to the system, not kept by malloc

    def _slot(self, ids: list, reuse: bool) -> tuple[Slot, int]:
        """The slot sharing the longest token prefix with `ids` when that prefix is at least half of what the
        slot holds (every FIM prompt shares its first two tokens: a short match must not evict another
        file's cache), else the least recently used slot (empty ones first). At least one token is left
        to run."""
        best = max(self.slots, key=lambda s: (common_prefix(s.tokens, ids), s.used)) if reuse else None
        n = min(common_prefix(best.tokens, ids), len(ids) - 1) if best is not None else 0
        if n == 0 or 2 * n < len(best.tokens):
            best, n = min(self.slots, key=lambda s: (len(s.tokens) > 0, s.used)), 0
        best.used = time.monotonic()
        return best, n

    @torch.inference_mode()
    def _run(self, job: Job) -> Result:
        slot, cached = self._slot(job.ids, job.cache_prompt)
        slot.cache.length, slot.tokens = cached, []  # until this run ends, the slot holds nothing reusable
        t0 = time.perf_counter()
        t_first = None
        new, pieces, finish, text = [], [], "length", TextDelta(self.tok, job.stop)
        newline = False
        ids = torch.tensor([job.ids], device=self.model.device)
        if job.max_new_tokens == 0:  # evaluate the prompt only (an editor warming the cache)
            self.model(ids[:, cached:], cache=slot.cache, last_only=True)
            t_first = time.perf_counter()
        else:
            it = steps(self.model, ids, max_new_tokens=job.max_new_tokens, do_sample=job.temperature > 0,
                       temperature=job.temperature, top_k=job.top_k, top_p=job.top_p, eos_token_id=[],
                       seed=job.seed, cache=slot.cache, prompt_lookup=job.prompt_lookup or 0)
            next(it)
            for nxt, _ in it:
                t_first = t_first or time.perf_counter()
                tid = int(nxt[0])
                if tid in self.stop_ids and not job.ignore_eos:
                    finish = "stop"
                    break
                new.append(tid)
                piece = text.add(tid)
                pieces.append(piece)
                job.emit("token", tid, piece)
                if text.stopped:
                    finish = "stop"
                    break
                if job.cancelled.is_set():
                    finish = "cancelled"
                    break
                newline = newline or (job.t_max_predict_ms is not None and "\n" in self.tok.decode([tid]))
                if newline and (time.perf_counter() - t_first) * 1e3 > job.t_max_predict_ms:
                    finish = "time"
                    break
            it.close()
            tail = text.flush()
            pieces.append(tail)
            if tail:
                job.emit("token", None, tail)
        slot.tokens = (job.ids + new)[:slot.cache.length]
        t_end = time.perf_counter()
        return Result(text="".join(pieces), tokens=new, finish=finish, stop_word=text.stop_word, prompt_tokens=len(job.ids),
                      prompt_n=len(job.ids) - cached, cached=cached, prompt_ms=(t_first - t0) * 1e3,
                      predicted_ms=(t_end - t_first) * 1e3, truncated=job.truncated, kept=len(slot.tokens))
