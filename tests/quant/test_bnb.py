"""bitsandbytes backend on CPU: accuracy, bnb's own state-dict keys, the eval-forward save guard."""

import importlib
import sys

import pytest
import torch
import torch.nn as nn

bnb = pytest.importorskip("bitsandbytes", reason="the bnb extra is not installed")

from conftest import sqnr  # noqa: E402
from quant import QuantConfig, quantize_  # noqa: E402
from quant.bnb import Bnb4bitLinear, Bnb8bitLinear  # noqa: E402
from quant.linear import dense_weight  # noqa: E402


def gaussian_linear(in_f=1024, out_f=256):
    g = torch.Generator().manual_seed(0)
    lin = nn.Linear(in_f, out_f)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(out_f, in_f, generator=g) / in_f**0.5)
        lin.bias.zero_()
    return lin


X = torch.randn(6, 1024, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind,bound", [("int8", 38), ("nf4", 19), ("fp4", 17)])
def test_accuracy_and_dequantize(kind, bound):
    lin = gaussian_linear()
    m = Bnb8bitLinear.from_linear(lin) if kind == "int8" else Bnb4bitLinear.from_linear(lin, kind)
    with torch.no_grad():
        ref = lin(X)
        got = m(X if kind == "int8" else X.to(torch.bfloat16))
    assert sqnr(ref, got) > bound, f"{kind}: {sqnr(ref, got):.1f} dB"
    dq = m.dequantize()
    assert dq.shape == lin.weight.shape
    assert sqnr(X @ dq.t(), got) > 30  # the forward pass uses the weights dequantize() returns


def test_state_dict_uses_bnb_keys_and_4bit_save_guard():
    m8 = Bnb8bitLinear.from_linear(gaussian_linear())
    assert {"weight", "bias", "SCB"} <= set(m8.state_dict())
    m4 = Bnb4bitLinear.from_linear(gaussian_linear(), "nf4")
    keys = set(m4.state_dict())
    assert {"weight", "bias", "weight.absmax", "weight.quant_state.bitsandbytes__nf4"} <= keys
    m4.eval()
    with torch.no_grad():
        m4(X.to(torch.bfloat16))
    with pytest.raises(RuntimeError, match="corrupted"):
        m4.state_dict()


@pytest.mark.parametrize("bits", [8, 4])
def test_quantize_bnb_swaps_block_linears(tmp_path, bits):
    """Every block Linear becomes a bnb layer holding its own weight; the model's logits stay close."""
    from conftest import reference_model, save_reference
    from modeling import SantaCoderForCausalLM

    model = SantaCoderForCausalLM.from_pretrained(save_reference(reference_model(), tmp_path), dtype="bf16")
    names = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
    before = {(i, n): dense_weight(b.get_submodule(n)).float().clone()  # oneDNN-packed where bf16 is native
              for i, b in enumerate(model.transformer.h) for n in names}
    x = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).logits.float()
    quantize_(model, QuantConfig(method="bnb", bits=bits))
    kind = Bnb8bitLinear if bits == 8 else Bnb4bitLinear
    for (i, n), w in before.items():
        m = model.transformer.h[i].get_submodule(n)
        assert isinstance(m, kind)
        # its own weight, not a neighbour's (measured 43.1-44.6 dB int8, 20.7-20.9 dB nf4)
        assert sqnr(w, m.dequantize().float()) > (41 if bits == 8 else 19), (i, n)
    with torch.no_grad():  # measured 30.0 dB int8, 11.2 dB nf4 (this random model's large weights amplify errors)
        assert sqnr(ref, model(x).logits.float()) > (27 if bits == 8 else 9)
    assert model.lm_head.weight is model.transformer.wte.weight  # bnb leaves lm_head tied by default


def test_missing_bitsandbytes_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    monkeypatch.delitem(sys.modules, "quant.bnb", raising=False)
    with pytest.raises(ImportError, match=r"pip install -e \"\.\[bnb\]\""):
        importlib.import_module("quant.bnb")
