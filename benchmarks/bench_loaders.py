"""Which loader reads which folder: every kind of folder quantize.py writes, each loaded by this package,
by transformers with and without remote code, and by GPTQModel (when installed), each in a fresh process
that generates 12 greedy tokens; the report says whether it loaded and whether its tokens equal ours.

    python benchmarks/bench_loaders.py          # writes benchmarks/results/loaders.md (small trained model, CPU)
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import RESULTS, run_fresh, save_report  # noqa: E402

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "tiny-santacoder")
FOLDERS = {  # name -> quantize.py arguments (None: the bf16 model saved as it is)
    "bf16 (unquantized)": None,
    "GPTQ int4 g128 + lm_head (default)": [],
    "GPTQ int4 g128, lm_head bf16": ["--no-lm-head"],
    "GPTQ int4 asym act-order": ["--asym", "--act-order"],
    "GPTQ int8 per channel": ["--bits", "8"],
    "bitsandbytes NF4": ["--method", "bnb", "--bits", "4"],
    "bitsandbytes LLM.int8": ["--method", "bnb", "--bits", "8"],
}
LOADERS = ["ours", "transformers, trust_remote_code=True", "transformers", "transformers, dtype=float32",
           "GPTQModel.load"]
PROMPT = "def fibonacci(n):\n"


def worker(loader: str, folder: str):
    import torch

    if loader == "ours":
        from modeling import SantaCoderForCausalLM

        model = SantaCoderForCausalLM.from_pretrained(folder)
    elif loader.startswith("transformers"):
        from transformers import AutoModelForCausalLM

        kw = {"trust_remote_code": True} if "remote" in loader else {}
        if "float32" in loader:
            kw["dtype"] = torch.float32
        model = AutoModelForCausalLM.from_pretrained(folder, **kw)
    else:
        os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
        try:
            from gptqmodel import GPTQModel
        except ImportError:
            sys.exit("skip: gptqmodel is not installed (extra .[interop])")
        model = GPTQModel.load(folder, device="cpu").model
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(folder)(PROMPT, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=12, do_sample=False)
    print(json.dumps({"class": type(model).__name__, "tokens": out[0, ids.shape[1]:].tolist()}))


def make_folders(workdir: str) -> dict:
    import quantize

    paths = {}
    for i, (name, args) in enumerate(FOLDERS.items()):
        path = os.path.join(workdir, f"f{i}")
        if args is None:
            import torch

            from modeling import SantaCoderForCausalLM

            SantaCoderForCausalLM.from_pretrained(FIXTURE, dtype=torch.bfloat16).save_pretrained(path)
        elif quantize.main([FIXTURE, "--out", path, "--force", "--n-samples", "32", "--seq-len", "256", *args]):
            sys.exit(f"quantize.py {' '.join(args)} failed")
        paths[name] = path
    return paths


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default=os.path.join(RESULTS, "folders", "loaders"))
    p.add_argument("--out", default=os.path.join(RESULTS, "loaders"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--loader", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.loader, args.path)
    paths = make_folders(args.workdir)
    rows, lines = [], ["| folder | " + " | ".join(LOADERS) + " |", "|---" * (len(LOADERS) + 1) + "|"]
    for name, path in paths.items():
        cells, ours = [], None
        for loader in LOADERS:
            if loader == "GPTQModel.load" and not name.startswith("GPTQ"):
                cells.append("–")
                continue
            row = run_fresh(__file__, ["--loader", loader, "--path", path], keep_going=True)
            rows.append({"folder": name, "loader": loader, "result": row})
            if row is None:
                cells.append("not installed")
            elif "error" in row:
                cells.append(f"no: {row['error'][:110]}")
            else:
                ours = row["tokens"] if loader == "ours" else ours
                same = sum(a == b for a, b in zip(row["tokens"], ours))
                cells.append(f"yes ({row['class']}), {same}/{len(ours)} tokens as ours")
        lines.append(f"| {name} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    save_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
