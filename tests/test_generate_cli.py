"""generate.py: streamed text equals the API's greedy output; errors are one line with exit code 2."""

import os
import signal
import subprocess
import sys
import time

import pytest

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


@pytest.mark.parametrize("args,message", [
    (["--prompt", ""], "--prompt is empty"),
    (["--prompt", "def f(): \udcff\udcfe"], "--prompt is not valid UTF-8 text"),  # what bytes 0xff 0xfe become
    (["--fim-prefix", "\udcff", "--fim-suffix", ""], "--fim-prefix is not valid UTF-8 text"),
    (["--prompt", "x", "--max-new-tokens", "0"], "--max-new-tokens must be an integer >= 1 (got 0)"),
    (["--prompt", "x", "--max-new-tokens", "-5"], "--max-new-tokens must be an integer >= 1 (got -5)"),
    (["--prompt", "x", "--temperature", "-1"], "--temperature must be a finite number >= 0"),
    (["--prompt", "x", "--temperature", "nan"], "--temperature must be a finite number >= 0"),
    (["--prompt", "x", "--top-p", "-1"], "--top-p must lie in (0, 1] (got -1.0)"),
    (["--prompt", "x", "--top-p", "1.5"], "--top-p must lie in (0, 1] (got 1.5)"),
    (["--prompt", "x", "--top-k", "-3"], "--top-k must be an integer >= 0"),
    (["--prompt", "x", "--stop", ""], "--stop must be non-empty strings"),
    (["--prompt", "x", "--prompt-lookup", "-1"], "--prompt-lookup must be an integer in [0, 64]"),
    (["--prompt", "x", "--prompt-lookup", "3", "--decode", "eager"], "--prompt-lookup runs on the growing cache"),
])
def test_bad_arguments_are_refused_before_the_model_loads(tmp_path, capsys, args, message):
    """The model path does not exist: an error about it would mean the model was loaded first."""
    import generate

    with pytest.raises(SystemExit) as e:
        generate.main([str(tmp_path / "missing"), *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(f"generate.py: error: {message}") and err.count("\n") == 1, err


def test_undecodable_prompt_bytes_on_the_command_line(tmp_path):
    out = subprocess.run([sys.executable.encode(), b"generate.py", str(tmp_path / "m").encode(), b"--prompt", b"\xff"],
                         cwd=ROOT, capture_output=True)
    last = out.stderr.decode().strip().splitlines()[-1]
    assert out.returncode == 2 and last.startswith("generate.py: error: --prompt is not valid UTF-8 text"), last


def test_tiny_temperature_is_greedy_and_stop_cuts_exactly(tiny_path):
    greedy = run(tiny_path, "--prompt", "import os\n", "--max-new-tokens", "24", "--dtype", "fp32")
    tiny = run(tiny_path, "--prompt", "import os\n", "--max-new-tokens", "24", "--dtype", "fp32",
               "--temperature", "1e-45", "--seed", "0")
    assert greedy.returncode == 0 and tiny.returncode == 0 and tiny.stdout == greedy.stdout
    text = greedy.stdout[len("import os\n"):-1]
    assert "\n" in text[1:]
    cut = run(tiny_path, "--prompt", "import os\n", "--max-new-tokens", "24", "--dtype", "fp32", "--stop", "\\n")
    assert cut.returncode == 0 and cut.stdout == "import os\n" + text[:text.index("\n")] + "\n", cut.stdout


def test_help_shows_escapes_not_line_breaks():
    out = run("--help")
    assert out.returncode == 0 and "--fim-prefix $'def add(a, b):\\n    ' --fim-suffix $'\\n'" in out.stdout


def interrupt_when(cmd, stream_name, marker, timeout=60):
    """Start cmd, send SIGINT once `marker` shows on its stdout or stderr; (returncode, stdout, stderr)."""
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stream, seen, t0 = getattr(p, stream_name), b"", time.monotonic()
    os.set_blocking(stream.fileno(), False)
    while marker not in seen and p.poll() is None and time.monotonic() - t0 < timeout:
        seen += stream.read() or b""
        time.sleep(0.01)
    assert marker in seen, f"never saw {marker!r}: {seen[-300:]!r}"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=timeout)
    if stream_name == "stdout":
        out = seen + (out or b"")
    else:
        err = seen + (err or b"")
    return p.returncode, out.decode(), err.decode()


def test_ctrl_c_is_one_line_and_exit_code_130(tiny_path):
    rc, out, err = interrupt_when([sys.executable, "generate.py", tiny_path, "--prompt", "def main():\n",
                                   "--max-new-tokens", "500", "--dtype", "fp32"], "stdout", b"def main():")
    assert rc == 130 and err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err


def test_sampling_flags_and_spm_reach_the_model(tiny_path, capsys):
    """--temperature/--top-k/--top-p/--seed print the API's seeded sample (each flag changes that sample here),
    and --fim-mode spm prints the middle of the SPM prompt (not the PSM one)."""
    import generate

    model = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype="fp32")
    tok = model.tokenizer
    prompt = "def parse(line):\n"
    ids = tok(prompt, return_tensors="pt").input_ids

    def sample(**kw):
        out = model.generate(ids, max_new_tokens=24, do_sample=True, **kw)
        return prompt + tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True) + "\n"

    flags = dict(temperature=1.3, top_k=3, top_p=0.8, seed=3)
    expected = sample(**flags)
    for change in (dict(temperature=1.0), dict(top_k=None), dict(top_p=None), dict(seed=4)):
        assert sample(**{**flags, **change}) != expected, change
    capsys.readouterr()
    assert generate.main([tiny_path, "--prompt", prompt, "--max-new-tokens", "24", "--dtype", "fp32",
                          "--temperature", "1.3", "--top-k", "3", "--top-p", "0.8", "--seed", "3"]) == 0
    assert capsys.readouterr().out == expected

    prefix, suffix = "def add(a, b):\n    ", "\n\nprint(add(1, 2))\n"
    middles = {}
    for mode in ("psm", "spm"):
        x = tok(fim_prompt(prefix, suffix, mode=mode), return_tensors="pt").input_ids
        middles[mode] = extract_middle(model.generate(x, max_new_tokens=24)[0], tok,
                                       prefix=prefix if mode == "spm" else None)
    assert middles["spm"] != middles["psm"]
    assert generate.main([tiny_path, "--fim-prefix", prefix, "--fim-suffix", suffix, "--fim-mode", "spm",
                          "--max-new-tokens", "24", "--dtype", "fp32"]) == 0
    assert capsys.readouterr().out == middles["spm"] + "\n"


def test_prompt_lookup_prints_the_same_completion(tiny_path, capsys):
    import generate

    prompt = ('"""In-process publish/subscribe event bus supporting sync and async handlers."""\nimport asyncio\n'
              "import fnmatch\nimport inspect\nimport logging\n") * 2  # the fixture copies on from here
    outs = []
    for extra in ([], ["--prompt-lookup", "3"]):
        capsys.readouterr()
        assert generate.main([tiny_path, "--prompt", prompt, "--max-new-tokens", "32", "--dtype", "fp32", *extra]) == 0
        outs.append(capsys.readouterr().out)
    model = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype="fp32")
    ids = model.tokenizer(prompt, return_tensors="pt").input_ids
    model.generate(ids, max_new_tokens=32, prompt_lookup=3)
    assert outs[0] == outs[1] and model.lookup_stats.accepted > 0
