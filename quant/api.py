"""quantize_(model, config): swap the block Linears of a SantaCoder model for quantized ones."""

from __future__ import annotations

from tqdm import tqdm

from .config import QuantConfig
from .linear import GPTQLinear
from .modules import block_linears, set_module


def quantize_(model, config: QuantConfig, calibration=None, device=None):
    """Quantize `model` in place (module swap) and return it.

    method="rtn": round to nearest, no data; method="bnb": bitsandbytes LLM.int8 / NF4 / FP4;
    method="gptq": needs `calibration` token blocks (n, T), runs block by block on `device` (default:
    the model's). With config.lm_head, lm_head becomes a quantized copy and wte stays as it is for
    the embedding lookup.
    """
    if config.group_size != -1 and config.method != "bnb":  # fail before any work, naming the first layer that cannot
        for i, name, lin in block_linears(model, config):
            if lin.in_features % config.group_size:
                raise ValueError(f"transformer.h.{i}.{name}: in_features={lin.in_features} is not divisible by "
                                 f"group_size={config.group_size}; use a divisor or -1 (one group per row)")
    if config.method == "gptq":
        if calibration is None:
            raise ValueError("method='gptq' needs calibration token blocks: quantize_(model, config, calibration=blocks)")
        from .gptq import gptq_quantize_model

        model.quant_errors = gptq_quantize_model(model, calibration, config, device=device)
    else:
        make = _bnb_maker(config, model.dtype) if config.method == "bnb" else _rtn_maker(config, model.dtype)
        items = list(block_linears(model, config))
        for i, name, lin in tqdm(items, desc=f"{config.method} int{config.bits}", unit="linear", leave=False):
            set_module(model.transformer.h[i], name, make(lin, f"transformer.h.{i}.{name}"))
        if config.lm_head:
            make_head = make if config.for_lm_head() is config else _rtn_maker(config.for_lm_head(), model.dtype)
            model.lm_head = make_head(model.lm_head, "lm_head")  # an untied, quantized copy; wte is untouched
    model.quant_config = config
    return model.train(model.training)  # new modules take the model's train/eval mode


def _rtn_maker(config, dtype):
    def make(lin, name):
        return GPTQLinear.from_linear(lin, config.bits, config.group_size, config.sym, name=name,
                                      clip=bool(config.clip)).prepare(dtype)

    return make


def _bnb_maker(config, dtype):
    from . import bnb  # raises an ImportError naming the `bnb` extra when bitsandbytes is missing

    if config.bits == 8:
        return lambda lin, name: bnb.Bnb8bitLinear.from_linear(lin)
    return lambda lin, name: bnb.Bnb4bitLinear.from_linear(lin, config.bnb_4bit_quant_type, compute_dtype=dtype)
