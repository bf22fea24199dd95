"""transformers interop (modeling/hf.py): every folder save_pretrained writes loads through
AutoModelForCausalLM(trust_remote_code=True) + AutoTokenizer, and transformers' own generate() and
pipeline() give this package's greedy tokens; unquantized folders stay plain gpt_bigcode."""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from modeling import SantaCoderForCausalLM, fim_prompt
from quant import QuantConfig, quantize_

transformers = pytest.importorskip("transformers")
from transformers import AutoModelForCausalLM, AutoTokenizer, GPTBigCodeForCausalLM, pipeline  # noqa: E402

PROMPTS = ["def fibonacci(n):\n", "import os\nclass Config:", "x = [1, 2"]
CONFIGS = {
    "fp": None,
    # without the clip search: with it this folder's bf16 logits hold an exact tie within 16 greedy steps of
    # batch(), and transformers' top_k=1 keeps tied tokens, so test_sampling_through_transformers needs none
    "santacoder-int4": QuantConfig(method="rtn", bits=4, clip=False),
    "int4": QuantConfig(method="rtn", bits=4, lm_head=False),
    "int8": QuantConfig(method="rtn", bits=8),
    "bnb-nf4": QuantConfig(method="bnb", bits=4),
    "bnb-int8": QuantConfig(method="bnb", bits=8),
}


@pytest.fixture(scope="module")
def folders(tiny_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    out = {}
    for name, config in CONFIGS.items():
        if config is not None and config.method == "bnb":
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                continue
        model = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16)
        if config is not None:
            quantize_(model, config)
        model.save_pretrained(str(root / name))
        out[name] = str(root / name)
    fp32 = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    fp32.save_pretrained(str(root / "fp32"))
    out["fp32"] = str(root / "fp32")
    return out


def batch(tok):
    return tok(PROMPTS, return_tensors="pt", padding=True)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_auto_model_generates_our_greedy_tokens(folders, name):
    if name not in folders:
        pytest.skip("bitsandbytes is not installed (extra .[bnb])")
    tok = AutoTokenizer.from_pretrained(folders[name])
    model = AutoModelForCausalLM.from_pretrained(folders[name], trust_remote_code=True)
    assert type(model).__name__ == "SantaCoderQuantForCausalLM" and model.dtype == torch.bfloat16
    ours = SantaCoderForCausalLM.from_pretrained(folders[name])
    enc = batch(tok)  # left-padded: the saved tokenizer_config says so
    assert tok.padding_side == "left" and enc.attention_mask[:, 0].tolist() != [1, 1, 1]
    theirs = model.generate(**enc, max_new_tokens=16, do_sample=False)
    assert torch.equal(theirs, ours.generate(enc.input_ids, attention_mask=enc.attention_mask, max_new_tokens=16))
    ids = tok(fim_prompt("def add(a, b):\n    ", "\n"), return_tensors="pt").input_ids
    assert torch.equal(model.generate(ids, max_new_tokens=12), ours.generate(ids, max_new_tokens=12))


def test_model_card_lines_run_unchanged_on_an_int4_folder(folders):
    checkpoint = folders["santacoder-int4"]
    device = "cpu"
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, trust_remote_code=True).to(device)
    inputs = tokenizer.encode("def print_hello_world():", return_tensors="pt").to(device)
    outputs = model.generate(inputs)
    text = tokenizer.decode(outputs[0])
    ours = SantaCoderForCausalLM.from_pretrained(checkpoint)
    n_new = outputs.shape[1] - inputs.shape[1]
    assert n_new >= 8  # transformers' default length (max_length 30 in transformers 5)
    assert text == tokenizer.decode(ours.generate(inputs, max_new_tokens=n_new)[0])
    assert type(model.santacoder.lm_head).__name__ == "GPTQLinear"


def test_pipeline_gives_our_greedy_text(folders):
    folder = folders["santacoder-int4"]
    pipe = pipeline("text-generation", model=folder, trust_remote_code=True)
    ours = SantaCoderForCausalLM.from_pretrained(folder)
    tok = ours.tokenizer
    expected = []
    for p in PROMPTS:
        ids = tok(p, return_tensors="pt").input_ids
        expected.append(tok.decode(ours.generate(ids, max_new_tokens=12)[0], skip_special_tokens=True))
    assert pipe(PROMPTS[0], max_new_tokens=12, do_sample=False)[0]["generated_text"] == expected[0]
    # a batch of 3 is left-padded: its bf16 numbers differ a little from one prompt at a time (a near tie may
    # pick another token), so it is compared with our generate on the same padded batch
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    out = ours.generate(enc.input_ids, attention_mask=enc.attention_mask, max_new_tokens=12)
    batched = [tok.decode(o, skip_special_tokens=True) for o in out]
    got = pipe(PROMPTS, max_new_tokens=12, do_sample=False, batch_size=3)
    assert [g[0]["generated_text"] for g in got] == batched


def test_sampling_through_transformers(folders):
    tok = AutoTokenizer.from_pretrained(folders["santacoder-int4"])
    model = AutoModelForCausalLM.from_pretrained(folders["santacoder-int4"], trust_remote_code=True)
    enc = batch(tok)
    greedy = model.generate(**enc, max_new_tokens=16, do_sample=False)
    assert torch.equal(model.generate(**enc, max_new_tokens=16, do_sample=True, top_k=1), greedy)
    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        runs.append(model.generate(**enc, max_new_tokens=16, do_sample=True, temperature=1.5, top_p=0.95))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2]) and not torch.equal(runs[0], greedy)


def test_beam_search_and_loss_match_transformers_gpt_bigcode(folders):
    """fp32: our model under transformers' beam search (the KV cache rows follow the beams) gives
    GPTBigCode's beams, and labels= gives its loss; quant.evaluate's perplexity is exp of that loss."""
    from quant.evaluate import perplexity

    folder = folders["fp32"]
    tok = AutoTokenizer.from_pretrained(folder)
    ours = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, dtype=torch.float32)
    ref = GPTBigCodeForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    enc = batch(tok)
    kw = dict(max_new_tokens=12, num_beams=3, do_sample=False, early_stopping=True)
    assert torch.equal(ours.generate(**enc, **kw), ref.generate(**enc, **kw))
    blocks = torch.randint(0, 2000, (3, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss, ref_loss = ours(blocks, labels=blocks).loss, ref(blocks, labels=blocks).loss
    assert abs(loss.item() - ref_loss.item()) < 1e-4
    assert abs(perplexity(ours.santacoder, blocks) / torch.exp(ref_loss).item() - 1) < 1e-4


def test_unquantized_folder_stays_plain_gpt_bigcode(folders):
    folder = folders["fp32"]
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    assert config["model_type"] == "gpt_bigcode" and config["dtype"] == "float32"
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_santacoder_quant.SantaCoderQuantForCausalLM"
    plain = AutoModelForCausalLM.from_pretrained(folder)  # no remote code: transformers' own class
    assert type(plain) is GPTBigCodeForCausalLM
    ours = SantaCoderForCausalLM.from_pretrained(folder, dtype=torch.float32)
    enc = batch(AutoTokenizer.from_pretrained(folder))
    assert torch.equal(plain.generate(**enc, max_new_tokens=16, do_sample=False),
                       ours.generate(enc.input_ids, attention_mask=enc.attention_mask, max_new_tokens=16))
    with open(os.path.join(folder, "generation_config.json")) as f:  # EOS and the four FIM tokens end generation
        assert json.load(f)["eos_token_id"] == [2000, 2001, 2002, 2003, 2004]


def test_folder_without_the_package_is_a_one_line_error(folders, tmp_path):
    script = ("import sys; sys.modules['modeling'] = None\n"  # as if the package were not installed
              "from transformers import AutoModelForCausalLM\n"
              f"AutoModelForCausalLM.from_pretrained({folders['int4']!r}, trust_remote_code=True)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules")})
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1 and last.startswith("ImportError: this folder is loaded by the santacoder-quant package")
    assert last.endswith("install it from the project's folder with: pip install -e .")
