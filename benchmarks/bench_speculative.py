"""Prompt-lookup decoding (generate(prompt_lookup=K)) against plain greedy decoding, and against
transformers' prompt lookup (generate(prompt_lookup_num_tokens=K)) on the same prompts.

Tasks are made from the held-out source files in calibration_data/heldout (Python, Java, JavaScript):
- copy-edit: a function of the file, then its first line again under a new name: the body is a copy;
- rename: a Python function, then its first lines again with the first parameter renamed;
- fim: fill-in-the-middle (SPM) of three lines inside a function, the rest of the file as the suffix;
- fim-copy: fill-in-the-middle (SPM) of a new function's body above the function it copies (in the suffix);
- scratch: a file's first line only: nothing to copy.

Part 1, the trained fixture (tests/fixtures/tiny-santacoder: real tokenizer, weights that copy): 64 greedy
tokens per task, plain and with lookup, ours (fp32, bf16, int4 RTN) and transformers' GPTBigCodeForCausalLM
(fp32, bf16); tokens/s, drafted / accepted tokens, tokens per decode forward, and whether the output equals
plain greedy decoding token for token. The fixture is tiny (4 layers of 256): its forward costs about as
much for 1 token as for 9, and Python overhead weighs more than on the full-size model.

Part 2, the full-size architecture (random weights, int4 g128 RTN + lm_head, CPU): random weights copy
nothing, so each task's lookup trace from part 1 (ours, int4: tokens drafted and accepted per forward) is
replayed: the same prompt tokens, then forwards of 1 + drafted tokens with the cache rolled back to
1 + accepted, against plain one-token forwards making the same number of tokens; interleaved, best of
--repeats. This measures what those forward shapes cost on the real architecture, with the fixture's
acceptance (a 1.1B model that copies better would accept more).

    python benchmarks/bench_speculative.py            # -> benchmarks/results/speculative_cpu.md
    python benchmarks/bench_speculative.py --skip-full-size
    python benchmarks/bench_speculative.py --draft-lengths 3 5 7   # -> results/speculative_drafts.md: the replay per
        # draft length (fixture traces and the file's own text) and editor requests on the full-size model, no part 1
"""

import argparse
import glob
import os
import re
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import RESULTS, save_report  # noqa: E402

TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-santacoder")
K = 5  # ours, serve.py's default (--draft-lengths measures others; forward_costs what a forward of M rows costs)
K_TRANSFORMERS = 10  # the value transformers' documentation uses


def blocks(lines, lang):
    """(start, end) line ranges of functions/methods: a header line, then lines indented deeper (Python)
    or up to the closing brace at the header's indent (Java, JavaScript)."""
    out = []
    head = re.compile(r"^(\s*)def \w+\(" if lang == "python" else
                      r"^(\s*)(?:(?:public|private|protected|static|final|async)\s+)*[\w<>\[\]]+\s+\w+\(.*\)\s*(?:throws [\w, ]+)?\{\s*$"
                      r"|^(\s*)function \w+\(.*\{\s*$")
    for i, line in enumerate(lines):
        m = head.match(line)
        if not m:
            continue
        indent = len(line) - len(line.lstrip())
        for j in range(i + 1, len(lines)):
            s = lines[j]
            if lang == "python":
                if s.strip() and len(s) - len(s.lstrip()) <= indent:
                    break
            elif s.strip() == "}" and len(s) - len(s.lstrip()) == indent:
                j += 1
                break
        if 8 <= j - i <= 40:
            out.append((i, j))
    return out


def tasks(tok, ctx_tokens: int):
    """{name: (prompt, truth)}: prompts cut to ctx_tokens from the left (FIM: prefix and suffix), and the text
    the file itself continues with (what a model that writes the file's own code would produce)."""
    out = {}

    def fit(text):
        ids = tok(text).input_ids
        return tok.decode(ids[-ctx_tokens:]) if len(ids) > ctx_tokens else text

    for lang, ext in (("python", "py"), ("java", "java"), ("javascript", "js")):
        path = sorted(glob.glob(f"{ROOT}/calibration_data/heldout/{lang}/*.{ext}"))[0]
        text = open(path).read()
        lines = text.splitlines(keepends=True)
        i, j = blocks(lines, lang)[0]
        before, block = "".join(lines[:j]), lines[i:j]
        name = re.search(r"(\w+)\(", block[0]).group(1)
        out[f"copy-edit {lang}"] = (fit(before + "\n" + block[0].replace(name + "(", name + "_v2(", 1)), "".join(block[1:]))
        if lang == "python":
            params = [p.strip().split(":")[0].split("=")[0] for p in block[0].split("(", 1)[1].split(")")[0].split(",")]
            param = next(p for p in params if p and p not in ("self", "cls") and not p.startswith("*"))
            renamed = [re.sub(rf"\b{param}\b", param + "_new", line) for line in block[:2]]
            rest = "".join(re.sub(rf"\b{param}\b", param + "_new", line) for line in block[2:])
            out["rename python"] = (fit(before + "\n" + "".join(renamed)), rest)
            out["scratch python"] = (lines[0], "".join(lines[1:40]))
        a = i + 2
        prefix, suffix = "".join(lines[:a]), "".join(lines[a + 3:])
        pre_ids, suf_ids = tok(prefix).input_ids, tok(suffix).input_ids
        half = ctx_tokens // 2
        prefix, suffix = tok.decode(pre_ids[-half:]), tok.decode(suf_ids[:half])
        from modeling import fim_prompt

        out[f"fim {lang}"] = (fim_prompt(prefix, suffix, mode="spm"), "".join(lines[a:a + 3]))
        # a middle that is partly in the suffix: a new function written above the one it is modelled on
        prefix = "".join(lines[:i]) + block[0].replace(name + "(", name + "_v2(", 1)
        suffix = "\n" + "".join(lines[i:])
        prefix, suffix = tok.decode(tok(prefix).input_ids[-half:]), tok.decode(tok(suffix).input_ids[:half])
        out[f"fim-copy {lang}"] = (fim_prompt(prefix, suffix, mode="spm"), "".join(block[1:]))
    return out


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def fixture_part(new: int, repeats: int):
    from transformers import GPTBigCodeForCausalLM

    from modeling import SantaCoderForCausalLM
    from quant import QuantConfig, quantize_

    rows, traces = [], {}
    ours = {"fp32": SantaCoderForCausalLM.from_pretrained(TINY, dtype="fp32"),
            "bf16": SantaCoderForCausalLM.from_pretrained(TINY, dtype="bf16")}
    ours["int4"] = quantize_(SantaCoderForCausalLM.from_pretrained(TINY, dtype="bf16"), QuantConfig(method="rtn"))
    theirs = {d: GPTBigCodeForCausalLM.from_pretrained(TINY, dtype=getattr(torch, n)).eval()
              for d, n in (("fp32", "float32"), ("bf16", "bfloat16"))}
    tok = ours["fp32"].tokenizer
    calls = [0]
    for m in theirs.values():
        m.register_forward_pre_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    tasks_ = tasks(tok, 512 - new - 16)
    for task, (prompt, _) in tasks_.items():
        x = tok(prompt, return_tensors="pt").input_ids
        for who, models in (("ours", ours), ("transformers", theirs)):
            for dt, m in models.items():
                best = {}
                for _ in range(repeats):  # interleaved: plain, lookup, plain, lookup...
                    for mode in ("plain", "lookup"):
                        if who == "ours":
                            kw = dict(prompt_lookup=K) if mode == "lookup" else {}
                            out, s = timed(lambda: m.generate(x, max_new_tokens=new, eos_token_id=[], **kw))
                            forwards = m.lookup_stats.forwards if mode == "lookup" else new - 1
                            stats = (m.lookup_stats.drafted, m.lookup_stats.accepted) if mode == "lookup" else (0, 0)
                            if mode == "lookup" and dt == "int4":
                                traces[(task, "fixture")] = (x, list(m.lookup_stats.trace))
                        else:
                            kw = dict(prompt_lookup_num_tokens=K_TRANSFORMERS) if mode == "lookup" else {}
                            calls[0] = 0
                            with torch.no_grad():
                                out, s = timed(lambda: m.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=new,
                                                                  min_new_tokens=new, do_sample=False, pad_token_id=0,
                                                                  **kw))
                            forwards, stats = calls[0] - 1, (None, None)
                        if mode not in best or s < best[mode][1]:
                            best[mode] = (out, s, forwards, stats)
                plain, fast = best["plain"], best["lookup"]
                rows.append(dict(task=task, who=who, dtype=dt, prompt=x.shape[1], new=new,
                                 plain_tok_s=new / plain[1], lookup_tok_s=new / fast[1], speedup=plain[1] / fast[1],
                                 drafted=fast[3][0], accepted=fast[3][1], tokens_per_forward=(new - 1) / fast[2],
                                 identical=bool(torch.equal(plain[0], fast[0]))))
                print(rows[-1], file=sys.stderr)
        truth = tok(tasks_[task][1]).input_ids[:new]
        traces[(task, "file's own text")] = (x, oracle_trace(x[0].tolist(), truth))
    return rows, traces


def oracle_trace(prompt: list, truth: list, k: int | None = None) -> list:
    """The (drafted, accepted) trace prompt lookup with draft length k (default K) gives when the model writes
    `truth`: each draft is accepted as far as it matches truth (the same PromptLookup as generation)."""
    from modeling.lookup import PromptLookup

    look = PromptLookup(prompt, k or K)
    look.extend(truth[:1])
    made = 1
    while made < len(truth):
        draft = look.propose(len(truth) - made - 1)
        n = 0
        while n < len(draft) and draft[n] == truth[made + n]:
            n += 1
        look.feedback(len(draft), n)
        look.extend(truth[made:made + n + 1])
        made += n + 1
    return look.trace


def forward_costs(model, repeats: int, rows=(1, 2, 3, 4, 5, 6, 8, 9, 12)) -> dict:
    """Time of one forward of M tokens after 430 cached ones, as a multiple of one token's: what a draft of
    M - 1 tokens costs to verify."""
    x = torch.randint(0, 2000, (1, 430), generator=torch.Generator().manual_seed(1))
    cache = model.new_cache(1, 430 + max(rows))
    with torch.inference_mode():
        model(x, cache=cache, last_only=True)
        best = {}
        for _ in range(repeats):
            for M in rows:
                cache.length = 430
                t = time.perf_counter()
                model(torch.full((1, M), 5), cache=cache, last_only=M == 1)
                best[M] = min(best.get(M, float("inf")), time.perf_counter() - t)
    return {M: best[M] / best[1] for M in rows}


def load_full_size(folder: str | None):
    from modeling import SantaCoderConfig, SantaCoderForCausalLM
    from quant import QuantConfig, quantize_

    torch.manual_seed(0)
    if folder:
        return SantaCoderForCausalLM.from_pretrained(folder)
    model = SantaCoderForCausalLM.from_config(SantaCoderConfig(), dtype=torch.bfloat16)
    return quantize_(model, QuantConfig(method="rtn", bits=4, group_size=128, lm_head=True))


def full_size_part(model, traces: dict, repeats: int):
    """Each task's traces replayed on `model` against plain one-token forwards (timed once per task), interleaved."""
    by_task = {}
    for (task, source), (x, trace) in traces.items():
        by_task.setdefault(task, (x, {}))[1][source] = trace
    rows = []
    with torch.inference_mode():
        for task, (x, sources) in by_task.items():
            # tokens made: the prefill's, then each forward's
            made = {s: 1 + sum(1 + a for _, a in trace) for s, trace in sources.items()}
            longest = max(made.values())
            cache = model.new_cache(1, x.shape[1] + longest + 16)
            model(x, cache=cache, last_only=True)
            T = cache.length
            plain, fast = float("inf"), {s: float("inf") for s in sources}  # seconds per token
            tok = torch.tensor([[5]])
            for _ in range(repeats):
                cache.length = T
                t = time.perf_counter()
                for _ in range(longest - 1):
                    model(tok, cache=cache, last_only=True)
                plain = min(plain, (time.perf_counter() - t) / (longest - 1))
                for source, trace in sources.items():
                    cache.length = T
                    t = time.perf_counter()
                    for drafted, accepted in trace:
                        past = cache.length
                        model(torch.full((1, 1 + drafted), 5), cache=cache)
                        cache.length = past + 1 + accepted
                    fast[source] = min(fast[source], (time.perf_counter() - t) / (made[source] - 1))
            for source, trace in sources.items():
                rows.append(dict(task=task, acceptance=source, prompt=T, new=made[source], forwards=len(trace),
                                 drafted=sum(d for d, _ in trace), accepted=sum(a for _, a in trace),
                                 plain_tok_s=1 / plain, lookup_tok_s=1 / fast[source], speedup=plain / fast[source]))
                print(rows[-1], file=sys.stderr)
    return rows


def draft_length_traces(ks, new: int) -> dict:
    """{(task, "fixture, K=k" | "file's own text, K=k"): (prompt ids, trace)} for each draft length k: the int4
    fixture's own greedy run with prompt_lookup=k, and the file's own text."""
    from modeling import SantaCoderForCausalLM
    from quant import QuantConfig, quantize_

    model = quantize_(SantaCoderForCausalLM.from_pretrained(TINY, dtype="bf16"), QuantConfig(method="rtn"))
    tok, traces = model.tokenizer, {}
    for task, (prompt, truth) in tasks(tok, 512 - new - 16).items():
        x = tok(prompt, return_tensors="pt").input_ids
        for k in ks:
            model.generate(x, max_new_tokens=new, eos_token_id=[], prompt_lookup=k)
            traces[(task, f"fixture, K={k}")] = (x, list(model.lookup_stats.trace))
            traces[(task, f"file's own text, K={k}")] = (x, oracle_trace(x[0].tolist(), tok(truth).input_ids[:new], k))
    return traces


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-full-size", action="store_true")
    p.add_argument("--full-size-folder", help="a full-size int4 folder to replay on (default: built with RTN)")
    p.add_argument("--draft-lengths", type=int, nargs="+", metavar="K",
                   help="the full-size replay and editor requests for each of these draft lengths, instead of "
                        "parts 1 and 2 (-> speculative_drafts.md)")
    p.add_argument("--out", default=None, help="report path without extension (default: results/speculative_cpu, "
                                                "or results/speculative_drafts with --draft-lengths)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.draft_lengths:
        draft_lengths(args)
        return
    args.out = args.out or os.path.join(RESULTS, "speculative_cpu")
    rows, traces = fixture_part(args.new, args.repeats)
    lines = ["# Prompt-lookup decoding on CPU", "",
             f"`python benchmarks/bench_speculative.py` ({args.threads} threads, {args.new} greedy tokens, draft "
             f"length {K} (transformers: {K_TRANSFORMERS}), best of {args.repeats} interleaved runs). Tasks from "
             f"calibration_data/heldout.", "",
             "## The trained fixture: ours and transformers' prompt lookup", "",
             "| task | runtime | plain tok/s | lookup tok/s | speedup | drafted / accepted | tokens per forward | same tokens |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        da = f"{r['drafted']} / {r['accepted']}" if r["drafted"] is not None else "-"
        lines.append(f"| {r['task']} | {r['who']} {r['dtype']} | {r['plain_tok_s']:.0f} | {r['lookup_tok_s']:.0f} | "
                     f"{r['speedup']:.2f}x | {da} | {r['tokens_per_forward']:.2f} | {'yes' if r['identical'] else 'NO'} |")
    full, costs = [], {}
    if not args.skip_full_size:
        model = load_full_size(args.full_size_folder)
        costs = forward_costs(model, args.repeats)
        full = full_size_part(model, traces, args.repeats)
        lines += ["", "## Full-size architecture, int4 g128 + lm_head: traces replayed", "",
                  "Acceptance from the int4 fixture's own greedy run, or from the file's own text (a model that "
                  "writes what the file says).", "",
                  "| task | acceptance from | prompt tokens | tokens | forwards | drafted / accepted | plain tok/s | "
                  "lookup tok/s | speedup |", "|---|---|---|---|---|---|---|---|---|"]
        for r in full:
            lines.append(f"| {r['task']} | {r['acceptance']} | {r['prompt']} | {r['new']} | {r['forwards']} | "
                         f"{r['drafted']} / {r['accepted']} | {r['plain_tok_s']:.2f} | {r['lookup_tok_s']:.2f} | "
                         f"{r['speedup']:.2f}x |")
        lines += ["", "One forward of M tokens (430 cached) against one of 1 token: "
                  + ", ".join(f"M={m} {c:.2f}x" for m, c in costs.items())]
    save_report(args.out, lines, dict(fixture=rows, full_size=full, forward_cost=costs))


def editor_requests(model, tok, ks, repeats: int, n: int = 16) -> tuple[dict, int]:
    """({K: median seconds of a request}, how many requests' tokens differed from plain decoding): n editor
    requests (bench_editor's typing session in fnmatch.filter, 20 lines before the cursor, 6 after, SPM), 16 greedy
    tokens each, for each draft length K and 0 (off), interleaved.
    Tokenized with `tok` (the fixture's: the RTN-built model has none). Its random weights copy nothing: what lookup
    costs where drafts fail."""
    import fnmatch
    import inspect
    import statistics

    from benchmarks.bench_editor import typing_session
    from modeling import fim_prompt

    session = typing_session(inspect.getsourcefile(fnmatch), "filter", 20, 6, 4, None)
    prompts = [tok(fim_prompt(p, s, mode="spm"), return_tensors="pt").input_ids
               for p, s in session[::max(1, len(session) // n)][:n]]
    times, differed = {k: [] for k in (0, *ks)}, 0
    for r in range(repeats):
        for x in prompts:
            outs = []
            for k in list(times)[::1 if r % 2 == 0 else -1]:
                t = time.perf_counter()
                outs.append(model.generate(x, max_new_tokens=16, prompt_lookup=k, eos_token_id=[]))
                times[k].append(time.perf_counter() - t)
            differed += not all(torch.equal(outs[0], o) for o in outs)  # reported, not raised: the replay is kept
    return {k: statistics.median(v) for k, v in times.items()}, differed


def draft_lengths(args):
    """Speedups over plain greedy decoding per task for each draft length, both acceptance sources, one replay; and
    what each draft length costs on editor requests whose drafts fail."""
    from modeling.tokenizer import load_tokenizer

    traces = draft_length_traces(args.draft_lengths, args.new)
    model = load_full_size(args.full_size_folder)
    costs = forward_costs(model, args.repeats)
    rows = full_size_part(model, traces, args.repeats)
    editor, differed = editor_requests(model, load_tokenizer(TINY), args.draft_lengths, args.repeats)
    ks = args.draft_lengths
    lines = ["# Prompt lookup: draft length on the full-size int4 model", "",
             f"`python benchmarks/bench_speculative.py --draft-lengths {' '.join(map(str, ks))}` ({args.threads} threads, "
             f"{args.new} greedy tokens, each task's traces replayed against plain one-token forwards, best of "
             f"{args.repeats} interleaved runs; model: {args.full_size_folder or 'RTN int4 g128 + lm_head, random weights'}). "
             "Speedup over plain greedy decoding.", "",
             "| task | " + " | ".join(f"fixture K={k}" for k in ks) + " | " + " | ".join(f"file's own text K={k}" for k in ks)
             + " |", "|---|" + "---|" * (2 * len(ks))]
    speed = {(r["task"], r["acceptance"]): r["speedup"] for r in rows}
    for task in dict.fromkeys(r["task"] for r in rows):
        cells = [speed[(task, f"{src}, K={k}")] for src in ("fixture", "file's own text") for k in ks]
        lines.append(f"| {task} | " + " | ".join(f"{c:.2f}x" for c in cells) + " |")
    lines += ["", "One forward of M tokens (430 cached) against one of 1 token: "
              + ", ".join(f"M={m} {c:.2f}x" for m, c in costs.items()), "",
              "Editor requests on the same model (its random weights copy nothing): 16 FIM requests of bench_editor.py's "
              "typing session (20 lines before the cursor, 6 after), 16 greedy tokens, median seconds per request "
              "(prompt included), interleaved: " + ", ".join(f"K={k} {t:.3f} s" for k, t in editor.items())
              + f"; requests whose tokens differed from plain decoding: {differed}"]
    save_report(args.out or os.path.join(RESULTS, "speculative_drafts"), lines,
                dict(full_size=rows, forward_cost=costs, editor_median_s=editor, editor_differed=differed))


if __name__ == "__main__":
    main()
