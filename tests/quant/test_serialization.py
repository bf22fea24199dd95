"""Quantized folders: save -> load gives the same model; quantization_config errors name the file."""

import json
import os

import pytest
import torch

from modeling import CheckpointError, SantaCoderForCausalLM
from quant import GPTQLinear, QuantConfig, quantize_

X = torch.randint(0, 2000, (2, 40), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kw", [dict(bits=4), dict(bits=4, group_size=-1, sym=False, lm_head=False),
                                dict(bits=8, group_size=-1, lm_head=True), dict(bits=8, group_size=64),
                                dict(bits=4, lm_head_group_size=32)])
def test_save_load_same_logits_and_tokens(tiny_path, tmp_path, kw):
    model = quantize_(SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16), QuantConfig(method="rtn", **kw))
    model.save_pretrained(str(tmp_path / "q"))
    qc = json.load(open(tmp_path / "q" / "config.json"))["quantization_config"]
    assert (qc["quant_method"], qc["checkpoint_format"], qc["bits"], qc["sym"]) == ("gptq", "gptq", kw["bits"], kw.get("sym", True))
    loaded = SantaCoderForCausalLM.from_pretrained(str(tmp_path / "q"))
    layers = [m for m in loaded.modules() if isinstance(m, GPTQLinear)]
    assert len(layers) == 4 * 4 + bool(model.quant_config.lm_head)
    assert all(m.kernel == model.transformer.h[0].mlp.c_fc.kernel for m in layers)
    head = model.quant_config.for_lm_head()  # a `dynamic` override where its bits or groups differ from the blocks'
    assert head.group_size == kw.get("lm_head_group_size", model.quant_config.group_size)
    assert ("dynamic" in qc) == (model.quant_config.lm_head and head is not model.quant_config)
    if model.quant_config.lm_head:
        assert (loaded.lm_head.bits, loaded.lm_head.group_size) == (head.bits, head.group_size)
    with torch.inference_mode():
        assert torch.equal(model(X).logits, loaded(X).logits)
    assert torch.equal(model.generate(X[:1], max_new_tokens=12), loaded.generate(X[:1], max_new_tokens=12))


@pytest.fixture(scope="module")
def int4_folder(tiny_path, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("int4") / "q")
    quantize_(SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16), QuantConfig(method="rtn")).save_pretrained(out)
    return out


def edited(folder, tmp_path, drop=(), **changes):
    import shutil

    dst = str(tmp_path / "edited")
    shutil.copytree(folder, dst)
    cfg = json.load(open(os.path.join(dst, "config.json")))
    cfg["quantization_config"].update(changes)
    for key in drop:
        del cfg["quantization_config"][key]
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))
    return dst


@pytest.mark.parametrize("changes,message", [
    (dict(quant_method="awq"), "quant_method='awq' is not supported"),
    (dict(checkpoint_format="gptq_v2"), "checkpoint_format='gptq_v2' is not supported"),
    (dict(bits=8), "transformer.h.0.attn.c_attn.qweight expected (64, 384) got (32, 384)"),
    (dict(group_size=64), "transformer.h.0.attn.c_attn.qzeros expected (4, 48) got (2, 48)"),
    (dict(bits=3), "bits=3 is not supported"),
    (dict(drop=["bits"]), "config.json: quantization_config has no 'bits'"),
    (dict(modules_in_block_to_quantize=[["attn.c_attn"], ["mlp.gate_proj"]]),
     "config.json: quantization_config.modules_in_block_to_quantize names unknown modules ['mlp.gate_proj']"),
    (dict(quant_method="bitsandbytes"), "config.json: quantization_config has neither load_in_8bit nor load_in_4bit set"),
    (dict(modules_in_block_to_quantize=[["mlp.c_fc"], ["mlp.c_proj"]]),  # attn stored quantized, config says plain
     "missing tensors: transformer.h.0.attn.c_attn.weight"),
])
def test_config_that_disagrees_is_a_one_line_error(int4_folder, tmp_path, changes, message):
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(edited(int4_folder, tmp_path, **changes))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_quantized_tensor_of_the_wrong_dtype_is_named(int4_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = edited(int4_folder, tmp_path)
    state = load_file(os.path.join(folder, "model.safetensors"))
    state["transformer.h.2.mlp.c_fc.qweight"] = state["transformer.h.2.mlp.c_fc.qweight"].long()
    save_file(state, os.path.join(folder, "model.safetensors"))
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(folder)
    assert str(e.value) == f"{folder}: tensors of the wrong shape or dtype: transformer.h.2.mlp.c_fc.qweight expected dtype int32 got int64"


def test_partial_modules_in_block_to_quantize(tiny_path, tmp_path):
    """Only the MLP quantized: attention stays a plain Linear in the file and after loading."""
    model = quantize_(SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16),
                      QuantConfig(method="rtn", modules=("mlp.c_fc", "mlp.c_proj")))
    model.save_pretrained(str(tmp_path / "q"))
    qc = json.load(open(tmp_path / "q" / "config.json"))["quantization_config"]
    assert qc["modules_in_block_to_quantize"] == [["mlp.c_fc"], ["mlp.c_proj"]]
    loaded = SantaCoderForCausalLM.from_pretrained(str(tmp_path / "q"))
    block = loaded.transformer.h[1]
    assert isinstance(block.mlp.c_fc, GPTQLinear) and isinstance(block.mlp.c_proj, GPTQLinear)
    assert not isinstance(block.attn.c_attn, GPTQLinear) and not isinstance(block.attn.c_proj, GPTQLinear)
    with torch.inference_mode():
        assert torch.equal(model(X).logits, loaded(X).logits)


def test_sharded_save_loads_and_a_missing_shard_is_named(tiny_path, tmp_path, int4_folder):
    model = SantaCoderForCausalLM.from_pretrained(int4_folder)
    model.save_pretrained(str(tmp_path / "s"), max_shard_size=1_000_000)
    files = sorted(os.listdir(tmp_path / "s"))
    shards = [f for f in files if f.startswith("model-")]
    assert len(shards) >= 3 and "model.safetensors.index.json" in files and "model.safetensors" not in files
    index = json.load(open(tmp_path / "s" / "model.safetensors.index.json"))
    assert set(index["weight_map"].values()) == set(shards)
    with torch.inference_mode():
        assert torch.equal(SantaCoderForCausalLM.from_pretrained(str(tmp_path / "s"))(X).logits, model(X).logits)
    os.remove(tmp_path / "s" / shards[1])
    with pytest.raises(CheckpointError, match=f"shard file\\(s\\) missing: {shards[1]}"):
        SantaCoderForCausalLM.from_pretrained(str(tmp_path / "s"))


def test_truncated_corrupt_or_pickled_files_are_refused(int4_folder, tmp_path):
    import shutil

    def copy(name):
        dst = tmp_path / name
        shutil.copytree(int4_folder, dst)
        return dst

    truncated = copy("truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    corrupt = copy("corrupt")
    (corrupt / "model.safetensors").write_bytes(b"\xff" * 8 + data[8:])  # header length garbage
    pickled = copy("pickled")
    from safetensors.torch import load_file

    torch.save(load_file(str(pickled / "model.safetensors")), pickled / "pytorch_model.bin")
    os.remove(pickled / "model.safetensors")
    for folder, message in [(truncated, "model.safetensors"), (corrupt, "model.safetensors: not a readable safetensors"),
                            (pickled, "never unpickled (found pytorch_model.bin)")]:
        with pytest.raises(CheckpointError) as e:
            SantaCoderForCausalLM.from_pretrained(str(folder))
        assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


PEAK_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from modeling.memory import peak_rss_mib
from modeling import SantaCoderForCausalLM
from quant import GPTQLinear
import safetensors.torch, quant.serialization, quant.linear
base = peak_rss_mib()
m = SantaCoderForCausalLM.from_pretrained({path!r})
with torch.no_grad():
    m(torch.zeros(1, 4, dtype=torch.long))
layers = [x for x in m.modules() if isinstance(x, GPTQLinear)]
assert len(layers) == 6 * 4 + 1 and all(x.qweight is None and x.kernel == {kernel!r} for x in layers)
print(int((peak_rss_mib() - base) * 2**20))
"""


def test_load_holds_about_the_folder_and_never_an_fp_copy(tmp_path):
    """A 165 MB int4 folder (6 layers of n_embd 1024, vocab 49280) loads in a subprocess growing by about
    the folder: a bf16 copy of the block weights alone would add 150 MB more."""
    import subprocess
    import sys

    from conftest import ROOT, cpu_kernel
    from modeling import SantaCoderConfig

    cfg = SantaCoderConfig(n_layer=6, n_embd=1024, n_head=8, vocab_size=49280, n_positions=2048)
    model = quantize_(SantaCoderForCausalLM.from_config(cfg, dtype=torch.bfloat16), QuantConfig(method="rtn"))
    model.save_pretrained(str(tmp_path))
    folder = sum(os.path.getsize(tmp_path / f) for f in os.listdir(tmp_path))
    script = PEAK_SCRIPT.format(root=ROOT, path=str(tmp_path), kernel=cpu_kernel("cpu-int4"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    grown = int(out.stdout.split()[-1])
    assert grown < 1.2 * folder + 48e6, f"peak grew {grown / 1e6:.0f} MB for a {folder / 1e6:.0f} MB folder"


def test_bnb_folder_missing_a_tensor_is_named(tiny_path, tmp_path):
    pytest.importorskip("bitsandbytes", reason="the bnb extra is not installed")
    from safetensors.torch import load_file, save_file

    quantize_(SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16),
              QuantConfig(method="bnb", bits=8)).save_pretrained(str(tmp_path / "b"))
    state = load_file(str(tmp_path / "b" / "model.safetensors"))
    del state["transformer.h.1.mlp.c_fc.SCB"]
    save_file(state, str(tmp_path / "b" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing tensors transformer.h.1.mlp.c_fc.SCB"):
        SantaCoderForCausalLM.from_pretrained(str(tmp_path / "b"))


@pytest.mark.parametrize("kw", [dict(bits=4), dict(bits=8, group_size=-1, lm_head=True)])
def test_loaded_folder_saves_back_to_the_same_bytes(tiny_path, tmp_path, kw):
    """qweight is dropped at load and rebuilt from the kernel layout on save: nothing is lost on the way."""
    quantize_(SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16),
              QuantConfig(method="rtn", **kw)).save_pretrained(str(tmp_path / "a"))
    SantaCoderForCausalLM.from_pretrained(str(tmp_path / "a")).save_pretrained(str(tmp_path / "b"))
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
