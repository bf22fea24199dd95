r"""Generate code with a SantaCoder checkpoint: left to right or fill-in-the-middle.

    python generate.py MODEL --prompt "def fib(n):"
    python generate.py MODEL --fim-prefix $'def add(a, b):\n    ' --fim-suffix $'\n' --stop '\n\n'

The completion streams to stdout; speed and peak memory go to stderr. Ctrl-C stops it (exit code 130).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time



class Printer:
    """A put/end streamer: prints whole characters as tokens arrive and times the decode."""

    def __init__(self, tokenizer, out=None, stop=None):
        from modeling.generation import TextDelta

        self.text, self.out = TextDelta(tokenizer, stop), out or sys.stdout  # looked up now: redirections apply
        self.prompt_seen, self.n, self.t_first = False, 0, None

    def put(self, ids):
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        self.n += 1
        if self.t_first is None:
            self.t_first = time.perf_counter()
        self._write(self.text.add(int(ids.view(-1)[0])))

    def end(self):
        self._write(self.text.flush())
        self.out.write("\n")
        self.t_end = time.perf_counter()

    def _write(self, s):
        if s:
            self.out.write(s)
            self.out.flush()


def parse_args(argv=None):
    from modeling.cli import ArgumentParser

    p = ArgumentParser(prog=os.path.basename(__file__), description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="checkpoint folder or hub id (e.g. bigcode/santacoder)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="text to continue")
    src.add_argument("--fim-prefix", help="code before the gap (fill-in-the-middle; needs --fim-suffix)")
    p.add_argument("--fim-suffix", help="code after the gap")
    p.add_argument("--fim-mode", choices=["psm", "spm"], default="psm")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); > 0 samples")
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=None, type=unescape,
                   help=r"end the completion where this string starts (repeatable; \n, \t and \\ are escapes)")
    p.add_argument("--truncate", action="store_true", help="left-truncate a prompt too long for the context")
    p.add_argument("--revision", default=None, help="hub branch, e.g. mha, fim, no-fim")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default=None, help="fp32, bf16 or fp16 (default: bf16 on CPU, fp16 on CUDA)")
    p.add_argument("--decode", choices=["auto", "graph", "eager", "dynamic"], default="auto",
                   help="decode steps: CUDA graph of a static step, the static step uncaptured, or a growing "
                        "cache (auto: graph on CUDA, dynamic on CPU)")
    p.add_argument("--prompt-lookup", type=int, default=0, metavar="K",
                   help="prompt-lookup decoding: draft up to K tokens per forward by copying from the prompt "
                        "and output (0 = off; 5, the server's default, suits CPU int4: see the README)")
    args = p.parse_args(argv)
    if (args.fim_prefix is None) != (args.fim_suffix is None):
        p.error("--fim-prefix and --fim-suffix go together")
    if args.decode == "graph" and not args.device.startswith("cuda"):
        p.error("--decode graph needs --device cuda")
    if args.prompt_lookup and args.decode in ("graph", "eager"):
        p.error(f"--prompt-lookup runs on the growing cache: use --decode auto or dynamic (got {args.decode})")
    from modeling.generation import GenerationArgumentError, check_generation_args, check_text

    try:  # everything checkable is checked before the model loads
        check_generation_args(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.stop,
                              args.prompt_lookup)
        if args.prompt is not None:
            check_text(args.prompt, "prompt")
        else:
            check_text(args.fim_prefix, "fim_prefix", allow_empty=True)
            check_text(args.fim_suffix, "fim_suffix", allow_empty=True)
    except GenerationArgumentError as e:
        p.error(f"--{e.field.replace('_', '-')} {e.why}")
    return args


def unescape(s: str) -> str:
    """\\n, \\t and \\\\ in a command-line string (a shell cannot easily pass a newline)."""
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], s)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def run(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from modeling import CheckpointError, ConfigError, SantaCoderForCausalLM, fim_prompt
    from modeling.memory import peak_memory_mib

    try:
        t0 = time.perf_counter()
        model = SantaCoderForCausalLM.from_pretrained(args.model, revision=args.revision, dtype=args.dtype,
                                                      device=args.device)
        tok = model.tokenizer
        t_load = time.perf_counter() - t0
        if args.prompt is not None:
            prompt = args.prompt
        else:
            prompt = fim_prompt(args.fim_prefix, args.fim_suffix, mode=args.fim_mode)
        ids = tok(prompt, return_tensors="pt").input_ids
        printer = Printer(tok, stop=args.stop)
        if args.prompt is not None:
            sys.stdout.write(prompt)
        t1 = time.perf_counter()
        model.generate(ids, max_new_tokens=args.max_new_tokens, do_sample=args.temperature > 0,
                       temperature=args.temperature or 1.0, top_k=args.top_k, top_p=args.top_p,
                       stop=args.stop, streamer=printer, seed=args.seed, truncate=args.truncate,
                       decode=None if args.decode == "auto" else args.decode, prompt_lookup=args.prompt_lookup)
    except (CheckpointError, ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    prefill = (printer.t_first or t1) - t1
    decode = printer.t_end - (printer.t_first or printer.t_end)
    rate = (printer.n - 1) / decode if printer.n > 1 and decode > 0 else float("nan")
    print(f"[{model.dtype}, {model.device}] load {t_load:.2f} s, prompt {ids.shape[1]} tokens "
          f"(prefill + first token {prefill * 1000:.0f} ms), {printer.n} new tokens at "
          f"{rate:.1f} tok/s, peak memory {peak_memory_mib(model.device):.0f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
