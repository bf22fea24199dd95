"""quantize.py end to end on the small trained model: identical bytes for the same inputs, the
folder loads and generates (left to right and FIM), and every bad-input path."""

import json
import os
import re
import sys

import pytest
import torch

import calibration_data
import generate
import quantize
from modeling import SantaCoderForCausalLM, extract_middle, fim_prompt

FAST = ["--n-samples", "8", "--seq-len", "128"]


def files(folder):
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def two_runs(tiny_path, tmp_path_factory):
    """The same command twice: in this process, and in a fresh one."""
    import subprocess

    from conftest import ROOT

    root = tmp_path_factory.mktemp("q")
    outs = [str(root / "a"), str(root / "b")]
    assert quantize.main([tiny_path, "--out", outs[0], "--act-order", *FAST]) == 0
    run = subprocess.run([sys.executable, "quantize.py", tiny_path, "--out", outs[1], "--act-order", *FAST], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return outs


def test_same_inputs_give_identical_bytes(two_runs):
    a, b = (files(d) for d in two_runs)
    assert list(a) == ["config.json", "generation_config.json", "model.safetensors", "modeling_santacoder_quant.py",
                       "tokenizer.json", "tokenizer_config.json"]
    assert a == b


def test_quantized_folder_generates_left_to_right_and_fim(two_runs, tiny_path, capsys):
    model = SantaCoderForCausalLM.from_pretrained(two_runs[0])
    assert model.config.quantization_config["bits"] == 4 and model.config.quantization_config["desc_act"]
    assert type(model.lm_head).__name__ == "GPTQLinear"
    fp = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16)
    held_out = calibration_data.eval_blocks(model.tokenizer, "heldout", 256)[:8]
    with torch.inference_mode():
        agree = (model(held_out).logits.argmax(-1) == fp(held_out).logits.argmax(-1)).float().mean()
    assert agree > 0.8  # next-token top-1 agreement with the bf16 model on held-out code (measured 0.87)
    ids = model.tokenizer("def fibonacci(n):\n", return_tensors="pt").input_ids
    out_q, out_fp = (m.generate(ids, max_new_tokens=24)[0, ids.shape[1]:] for m in (model, fp))
    assert torch.equal(out_q[:4], out_fp[:4])  # greedy text starts the same (measured: 5 tokens, then drifts)
    # generate.py on the folder: a FIM completion, the same text as the model's own greedy middle
    prefix, suffix = "def add(a, b):\n    ", "\n"
    fim_ids = model.tokenizer(fim_prompt(prefix, suffix), return_tensors="pt").input_ids
    middle = extract_middle(model.generate(fim_ids, max_new_tokens=12)[0], model.tokenizer)
    capsys.readouterr()
    assert generate.main([two_runs[0], "--fim-prefix", prefix, "--fim-suffix", suffix, "--max-new-tokens", "12"]) == 0
    assert capsys.readouterr().out == middle + "\n" and middle.strip()


def test_seed_fim_rate_and_eval(two_runs, tiny_path, tmp_path, monkeypatch, capsys):
    """--seed and --fim-rate choose the calibration blocks (here: other blocks, no FIM tokens, other codes);
    --eval prints the perplexity of the source and of the saved folder on held-out code."""
    from quant.evaluate import perplexity

    seen = []
    real = calibration_data.calibration_blocks
    monkeypatch.setattr(calibration_data, "calibration_blocks", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    out = str(tmp_path / "q")
    capsys.readouterr()
    assert quantize.main([tiny_path, "--out", out, "--act-order", *FAST, "--seed", "1", "--fim-rate", "0", "--eval"]) == 0
    fp = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16)
    tok = fp.tokenizer
    assert len(seen) == 1 and torch.equal(seen[0], real(tok, "bundled", 8, 128, fim_rate=0.0, seed=1))
    fim = [tok.convert_tokens_to_ids(t) for t in ("<fim-prefix>", "<fim-middle>", "<fim-suffix>")]
    assert not torch.isin(seen[0], torch.tensor(fim)).any()
    assert not torch.equal(seen[0], real(tok, "bundled", 8, 128, seed=0))  # the default run's blocks
    assert files(out)["model.safetensors"] != files(two_runs[0])["model.safetensors"]
    m = re.search(r"perplexity on held-out code: ([\d.]+) -> ([\d.]+) \(([+-][\d.]+)%\)", capsys.readouterr().err)
    held_out = calibration_data.eval_blocks(tok, "heldout", 128)
    before, after = perplexity(fp, held_out), perplexity(SantaCoderForCausalLM.from_pretrained(out), held_out)
    assert m and m.groups() == (f"{before:.3f}", f"{after:.3f}", f"{100 * (after / before - 1):+.2f}")
    assert after > before


def test_auto_order_and_an_int8_lm_head_are_written_down(tiny_path, tmp_path, capsys):
    out = str(tmp_path / "q")
    capsys.readouterr()
    assert quantize.main([tiny_path, "--out", out, "--order", "auto", "--lm-head-bits", "8", *FAST]) == 0
    err = capsys.readouterr().err
    assert "gptq int4 group 128 auto (order and clip search chosen per layer) +lm_head int8 group -1" in err
    m = re.search(r"output error of the block Linears: median ([\d.e+-]+), worst ([\d.e+-]+) \(transformer\.h\.\d\."
                  r"[a-z_.]+\); lm_head ([\d.e+-]+)", err)
    assert m and 0 < float(m.group(1)) <= float(m.group(2)) < 0.2 and 0 < float(m.group(3)) < 0.01, err
    q = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
    assert q["dynamic"] == {"+:^lm_head$": {"bits": 8, "group_size": -1}} and q["meta"]["order"] == "auto"
    assert len(q["meta"]["choices"]) == 17 and "kept per Linear: " in err
    loaded = SantaCoderForCausalLM.from_pretrained(out)
    assert loaded.lm_head.bits == 8 and loaded.lm_head.group_size == -1
    assert loaded.quant_config.choices == q["meta"]["choices"]


def test_existing_destination_needs_force(two_runs, tiny_path, capsys):
    before = files(two_runs[1])
    with pytest.raises(SystemExit) as e:
        quantize.main([tiny_path, "--out", two_runs[1], "--method", "rtn"])
    assert e.value.code == 2 and "--force" in capsys.readouterr().err
    assert files(two_runs[1]) == before
    assert quantize.main([tiny_path, "--out", two_runs[1], "--method", "rtn", "--bits", "8", "--group-size", "-1",
                          "--force"]) == 0
    assert SantaCoderForCausalLM.from_pretrained(two_runs[1]).config.quantization_config["bits"] == 8


@pytest.mark.parametrize("args,message", [
    (["--bits", "3"], "invalid choice: 3"),
    (["--group-size", "0"], "group_size=0 must be positive"),
    (["--n-samples", "0"], "--n-samples must be >= 1"),
    (["--method", "bnb", "--lm-head"], "lm_head=True is not supported with method='bnb' (--lm-head)"),
    (["--device", "tpu9"], "--device 'tpu9' is not a device"),
    (["--fim-rate", "1.5"], "--fim-rate 1.5 must lie in [0, 1]"),
    (["--damp-percent", "0"], "damp_percent=0.0 must be > 0 (--damp-percent)"),
    (["--act-order", "--order", "columns"], "act_order=True contradicts order='columns' (--act-order, --order)"),
] + ([(["--device", "cuda"], "--device cuda: CUDA is not available here")] if not torch.cuda.is_available() else []))
def test_bad_flags(tiny_path, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        quantize.main([tiny_path, "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("quantize.py: error: ") and message in err and err.count("\n") == 1, err
    assert not os.path.exists(tmp_path / "o")


@pytest.mark.parametrize("force", [[], ["--force"]])
@pytest.mark.parametrize("under", [False, True])
def test_out_that_is_or_lies_under_a_file_is_refused_before_work(tiny_path, tmp_path, capsys, force, under):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    out = f / "q" if under else f
    with pytest.raises(SystemExit) as e:
        quantize.main([tiny_path, "--out", str(out), "--method", "rtn", *force])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{f} is a file, not a folder" in err.strip().splitlines()[-1]
    assert f.read_text() == "keep me" and sorted(os.listdir(tmp_path)) == ["notes.txt"]


@pytest.mark.parametrize("src,args,message", [
    ("missing", [], "no such folder"),
    (None, ["--group-size", "100"], "transformer.h.0.attn.c_attn: in_features=256 is not divisible by group_size=100"),
    (None, ["--calibration", "nowhere/*.py"], "calibration source 'nowhere/*.py': no .py/.java/.js/.txt/.jsonl files"),
    ("quantized", [], "is already quantized; give the fp16/bf16/fp32 checkpoint it came from"),
])
def test_bad_input_writes_nothing(tiny_path, tmp_path, capsys, src, args, message):
    if src == "quantized":
        src = str(tmp_path / "quantized")
        quantize.main([tiny_path, "--out", src, "--method", "rtn"])
    elif src:
        src = str(tmp_path / src)
    else:
        src = tiny_path
    before = sorted(os.listdir(tmp_path))
    assert quantize.main([src, "--out", str(tmp_path / "o"), *FAST, *args]) == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == before


def test_interrupted_save_leaves_no_destination(tiny_path, tmp_path, monkeypatch, capsys):
    import safetensors.torch

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", interrupted)
    assert quantize.main([tiny_path, "--out", str(tmp_path / "o"), "--method", "rtn"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted; nothing was written"
    assert os.listdir(tmp_path) == []  # neither the destination nor a temporary folder


@pytest.mark.parametrize("bits", [8, 4])
def test_bitsandbytes_folder_round_trip(tiny_path, tmp_path, bits, capsys):
    pytest.importorskip("bitsandbytes", reason="the bnb extra is not installed")
    from quant import QuantConfig, quantize_

    out = str(tmp_path / "bnb")
    assert quantize.main([tiny_path, "--out", out, "--method", "bnb", "--bits", str(bits), "--eval"]) == 0
    assert "perplexity on held-out code" in capsys.readouterr().err  # measured after saving
    loaded = SantaCoderForCausalLM.from_pretrained(out)
    qc = loaded.config.quantization_config
    assert qc["quant_method"] == "bitsandbytes" and qc[f"load_in_{bits}bit"]
    fresh = quantize_(SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16),
                      QuantConfig(method="bnb", bits=bits))  # bnb quantization is deterministic
    layer = loaded.transformer.h[0].mlp.c_fc
    assert type(layer).__name__ == ("Bnb8bitLinear" if bits == 8 else "Bnb4bitLinear")
    assert torch.equal(layer.dequantize(), fresh.transformer.h[0].mlp.c_fc.dequantize())
    x = torch.randint(0, 2000, (1, 32), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(loaded(x).logits, fresh(x).logits)


def tree(folder):
    """{relative path: sha256} of every file under folder (symlinks as their target path)."""
    import hashlib

    out = {}
    for root, dirs, names in os.walk(folder):
        for n in dirs + names:
            p = os.path.join(root, n)
            if os.path.islink(p):
                out[os.path.relpath(p, folder)] = "-> " + os.readlink(p)
            elif os.path.isfile(p):
                out[os.path.relpath(p, folder)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


@pytest.fixture
def src(tiny_path, tmp_path):
    import shutil

    return shutil.copytree(tiny_path, tmp_path / "src")  # a copy: these tests aim at the source


@pytest.mark.parametrize("where", ["the source", "inside", "deep inside", "contains", "symlink", "via symlink"])
def test_destination_overlapping_the_source_is_refused_even_with_force(src, tmp_path, capsys, where):
    os.symlink(src, tmp_path / "link")
    out = {"the source": src, "inside": src / "int4", "deep inside": src / "a" / "b", "contains": tmp_path,
           "symlink": tmp_path / "link", "via symlink": tmp_path / "link" / "int4"}[where]
    before = tree(tmp_path)
    with pytest.raises(SystemExit) as e:
        quantize.main([str(src), "--out", str(out), "--force", "--method", "rtn"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and f"--out {out} is the source {src}, inside it or contains it" in err
    assert tree(tmp_path) == before  # source and everything around it untouched, nothing written


def test_hub_source_resolved_later_is_checked_before_any_work(src, tmp_path, capsys, monkeypatch):
    from modeling import loading

    monkeypatch.setattr(loading, "resolve_folder", lambda path, revision=None: str(src))  # "owner/model" -> src
    before = tree(tmp_path)
    assert quantize.main(["owner/model", "--out", str(src / "int4"), "--method", "rtn"]) == 2
    assert "is the source" in capsys.readouterr().err and tree(tmp_path) == before


def test_force_replaces_model_folders_only(src, tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as e:
        quantize.main([str(src), "--out", str(docs), "--force", "--method", "rtn"])
    assert e.value.code == 2 and "is not a model folder (no config.json)" in capsys.readouterr().err
    assert (docs / "notes.txt").read_text() == "mine"


def test_binary_calibration_file_is_refused(src, tmp_path, capsys):
    blob = tmp_path / "libfoo.so"
    blob.write_bytes(bytes(range(256)) * 64)
    assert quantize.main([str(src), "--out", str(tmp_path / "o"), "--calibration", str(blob), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: calibration source {blob}: not text (it contains NUL bytes); give code as text"
    assert not os.path.exists(tmp_path / "o")


@pytest.mark.parametrize("umask,dir_mode,file_mode", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_written_folder_follows_the_umask(src, tmp_path, umask, dir_mode, file_mode):
    old = os.umask(umask)
    try:
        assert quantize.main([str(src), "--out", str(tmp_path / "o"), "--method", "rtn"]) == 0
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "o").st_mode & 0o777 == dir_mode
    modes = {f: os.stat(tmp_path / "o" / f).st_mode & 0o777 for f in os.listdir(tmp_path / "o")}
    assert set(modes.values()) == {file_mode}, modes


def test_ctrl_c_writes_nothing_and_exits_130(src, tmp_path):
    from test_generate_cli import interrupt_when

    before = tree(tmp_path)
    rc, _, err = interrupt_when([sys.executable, "quantize.py", str(src), "--out", str(tmp_path / "o"),
                                 "--n-samples", "128", "--seq-len", "512"], "stderr", b"linear")  # inside GPTQ
    assert rc == 130 and err.strip().splitlines()[-1] == "interrupted; nothing was written", err[-500:]
    assert "Traceback" not in err and tree(tmp_path) == before
