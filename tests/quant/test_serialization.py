"""Quantized folders: save -> load gives the same model; quantization_config errors name the file."""

import json
import os

import pytest
import torch

from modeling import CheckpointError, SantaCoderForCausalLM
from quant import GPTQLinear, QuantConfig, quantize_

X = torch.randint(0, 2000, (2, 40), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kw", [dict(bits=4), dict(bits=4, group_size=-1, sym=False, lm_head=False),
                                dict(bits=8, group_size=-1, lm_head=True), dict(bits=8, group_size=64)])
def test_save_load_same_logits_and_tokens(tiny_path, tmp_path, kw):
    model = quantize_(SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16), QuantConfig(method="rtn", **kw))
    model.save_pretrained(str(tmp_path / "q"))
    qc = json.load(open(tmp_path / "q" / "config.json"))["quantization_config"]
    assert (qc["quant_method"], qc["checkpoint_format"], qc["bits"], qc["sym"]) == ("gptq", "gptq", kw["bits"], kw.get("sym", True))
    loaded = SantaCoderForCausalLM.from_pretrained(str(tmp_path / "q"))
    layers = [m for m in loaded.modules() if isinstance(m, GPTQLinear)]
    assert len(layers) == 4 * 4 + bool(model.quant_config.lm_head)
    assert all(m.kernel == model.transformer.h[0].mlp.c_fc.kernel for m in layers)
    with torch.inference_mode():
        assert torch.equal(model(X).logits, loaded(X).logits)
    assert torch.equal(model.generate(X[:1], max_new_tokens=12), loaded.generate(X[:1], max_new_tokens=12))


@pytest.fixture(scope="module")
def int4_folder(tiny_path, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("int4") / "q")
    quantize_(SantaCoderForCausalLM.from_pretrained(tiny_path, dtype=torch.bfloat16), QuantConfig(method="rtn")).save_pretrained(out)
    return out


def edited(folder, tmp_path, **changes):
    import shutil

    dst = str(tmp_path / "edited")
    shutil.copytree(folder, dst)
    cfg = json.load(open(os.path.join(dst, "config.json")))
    cfg["quantization_config"].update(changes)
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))
    return dst


@pytest.mark.parametrize("changes,message", [
    (dict(quant_method="awq"), "quant_method='awq' is not supported"),
    (dict(checkpoint_format="gptq_v2"), "checkpoint_format='gptq_v2' is not supported"),
    (dict(bits=8), "transformer.h.0.attn.c_attn.qweight expected (64, 384) got (32, 384)"),
    (dict(group_size=64), "transformer.h.0.attn.c_attn.qzeros expected (4, 48) got (2, 48)"),
    (dict(bits=3), "bits=3 is not supported"),
])
def test_config_that_disagrees_is_a_one_line_error(int4_folder, tmp_path, changes, message):
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(edited(int4_folder, tmp_path, **changes))
    assert message in str(e.value) and "\n" not in str(e.value)
