"""generate.py: streamed text equals the API's greedy output; errors are one line with exit code 2."""

import subprocess
import sys


from conftest import ROOT
from modeling import SantaCoderForCausalLM, extract_middle, fim_prompt


def run(*args):
    return subprocess.run([sys.executable, "generate.py", *args], cwd=ROOT, capture_output=True, text=True)


def test_prompt_and_fim_stream_the_greedy_completion(tiny_path):
    model = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype="fp32")
    tok = model.tokenizer
    prompt = "def fibonacci(n):\n"
    out = run(tiny_path, "--prompt", prompt, "--max-new-tokens", "24", "--dtype", "fp32")
    assert out.returncode == 0, out.stderr
    ids = tok(prompt, return_tensors="pt").input_ids
    expected = tok.decode(model.generate(ids, max_new_tokens=24)[0, ids.shape[1]:], skip_special_tokens=True)
    assert out.stdout == prompt + expected + "\n"
    assert "tok/s" in out.stderr and "peak memory" in out.stderr

    out = run(tiny_path, "--prompt", prompt, "--max-new-tokens", "24", "--dtype", "fp32", "--decode", "eager")
    assert out.returncode == 0 and out.stdout == prompt + expected + "\n"  # the static decode step

    prefix, suffix = "def add(a, b):\n    ", "\n\nprint(add(1, 2))\n"
    out = run(tiny_path, "--fim-prefix", prefix, "--fim-suffix", suffix, "--max-new-tokens", "32", "--dtype", "fp32")
    assert out.returncode == 0, out.stderr
    ids = tok(fim_prompt(prefix, suffix), return_tensors="pt").input_ids
    middle = extract_middle(model.generate(ids, max_new_tokens=32)[0], tok)
    assert out.stdout == middle + "\n"


def test_errors_are_one_line(tmp_path, tiny_path):
    out = run(str(tmp_path / "missing"), "--prompt", "x")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no such folder" in out.stderr
    out = run(tiny_path, "--prompt", "x " * 600, "--max-new-tokens", "4")
    assert out.returncode == 2 and "n_positions=512" in out.stderr and "--truncate" in out.stderr
    out = run(tiny_path, "--prompt", "x " * 600, "--max-new-tokens", "4", "--truncate")
    assert out.returncode == 0 and "left-truncated" in out.stderr
    out = run(tiny_path, "--fim-prefix", "a")
    assert out.returncode == 2 and "--fim-suffix" in out.stderr
    out = run(tiny_path, "--prompt", "x", "--decode", "graph")
    assert out.returncode == 2 and "--decode graph needs --device cuda" in out.stderr
