"""The `quantization_config` of a quantized folder, and the model skeleton it describes.

bitsandbytes folders carry transformers' BitsAndBytesConfig keys instead, and bnb's own tensor names.

On disk (config.json), GPTQ's keys as GPTQModel and transformers write them, so other GPTQ
loaders read our folders:
    {"quant_method": "gptq", "checkpoint_format": "gptq", "bits": 4, "group_size": 128,
     "desc_act": false, "sym": true, "static_groups": false, "damp_percent": 0.01,
     "true_sequential": true, "lm_head": true,
     "modules_in_block_to_quantize": [["attn.c_attn"], ["attn.c_proj"], ["mlp.c_fc"], ["mlp.c_proj"]],
     "meta": {"quantizer": ["santacoder-quant"], "format_version": 1, "method": "gptq",
              "order": "group-aware", "clip": true, "choices": {"transformer.h.0.attn.c_attn": "group-aware+clip", ...}}}
Each quantized Linear's tensors are the GPTQ v1 ones (see quant.primitives). `meta.choices` records the
setting GPTQ kept for each Linear (with order "auto" they differ). The per-layer choice never picks
act-order, so g_idx stays in column order and desc_act false holds for every layer: no per-module
override is needed for them. An lm_head with other bits or groups than the blocks (--lm-head-bits 8,
--lm-head-group-size 32) is told apart the GPTQModel way:
     "dynamic": {"+:^lm_head$": {"bits": 8, "group_size": -1}}
"""

from __future__ import annotations

import ctypes
import functools

from .modules import block_linears, set_module
from .config import BLOCK_LINEARS, ORDERS, QuantConfig
from .linear import GPTQLinear

FORMAT_VERSION = 1


def quantization_config(config: QuantConfig) -> dict:
    """The config.json entry for a model quantized with `config`."""
    meta = {"quantizer": ["santacoder-quant"], "format_version": FORMAT_VERSION, "method": config.method}
    if config.method == "bnb":  # transformers' BitsAndBytesConfig keys; the tensors keep bnb's own names
        return {
            "quant_method": "bitsandbytes", "load_in_8bit": config.bits == 8, "load_in_4bit": config.bits == 4,
            "llm_int8_threshold": 6.0, "llm_int8_skip_modules": ["lm_head"],
            "bnb_4bit_quant_type": config.bnb_4bit_quant_type, "bnb_4bit_use_double_quant": True,
            "bnb_4bit_compute_dtype": "bfloat16", "bnb_4bit_quant_storage": "uint8",
            "meta": {**meta, "modules": list(config.modules)},
        }
    out = {
        "quant_method": "gptq", "checkpoint_format": "gptq", "bits": config.bits, "group_size": config.group_size,
        "desc_act": config.act_order, "sym": config.sym, "static_groups": config.static_groups,
        "damp_percent": config.damp_percent, "true_sequential": True, "lm_head": bool(config.lm_head),
        "modules_in_block_to_quantize": [[m] for m in config.modules],
        "meta": {**meta, "order": config.order, "clip": config.clip},
    }
    head = config.for_lm_head()
    if config.lm_head and head is not config:  # GPTQModel's per-module override
        out["dynamic"] = {"+:^lm_head$": {"bits": head.bits, "group_size": head.group_size}}
    if config.choices:  # what GPTQ kept per Linear (every choice but act-order keeps g_idx in column order)
        out["meta"]["choices"] = dict(config.choices)
    return out


def quant_config_from_dict(d: dict, where: str = "config.json") -> QuantConfig:
    """Read a folder's quantization_config back; one-line errors name `where` and the field."""
    method = d.get("quant_method")
    if method == "bitsandbytes":
        bits = 8 if d.get("load_in_8bit") else 4 if d.get("load_in_4bit") else None
        if bits is None:
            raise ValueError(f"{where}: quantization_config has neither load_in_8bit nor load_in_4bit set")
        modules = tuple(d.get("meta", {}).get("modules", BLOCK_LINEARS))
        return QuantConfig(method="bnb", bits=bits, modules=modules, lm_head=False,
                           bnb_4bit_quant_type=d.get("bnb_4bit_quant_type", "nf4"))
    if method != "gptq":
        raise ValueError(f"{where}: quantization_config.quant_method={method!r} is not supported; this package "
                         f"loads 'gptq' and 'bitsandbytes' folders")
    fmt = d.get("checkpoint_format", "gptq")
    if fmt != "gptq":
        raise ValueError(f"{where}: quantization_config.checkpoint_format={fmt!r} is not supported; only GPTQ v1 "
                         f"('gptq') tensors are read")
    modules = d.get("modules_in_block_to_quantize") or [[m] for m in BLOCK_LINEARS]
    flat = tuple(m for stage in modules for m in ([stage] if isinstance(stage, str) else stage))
    unknown = [m for m in flat if m not in BLOCK_LINEARS]
    if unknown:
        raise ValueError(f"{where}: quantization_config.modules_in_block_to_quantize names unknown modules {unknown}")
    try:
        meta = d.get("meta") if isinstance(d.get("meta"), dict) else {}
        method = meta.get("method") if meta.get("method") in ("gptq", "rtn") else "gptq"  # how the codes were found
        act_order = bool(d.get("desc_act", False))
        dynamic = d.get("dynamic") or {}
        if not isinstance(dynamic, dict):
            raise ValueError(f"{where}: quantization_config.dynamic must be an object of per-module overrides")
        head = dynamic.get("+:^lm_head$", {})
        other = [k for k in dynamic if k != "+:^lm_head$"]
        if other:
            raise ValueError(f"{where}: quantization_config.dynamic overrides {other}; only '+:^lm_head$' is supported")
        order = "act-order" if act_order else meta.get("order", "columns")
        choices = meta.get("choices")
        return QuantConfig(method=method, bits=int(d["bits"]),
                           group_size=int(d.get("group_size", 128)), sym=bool(d.get("sym", True)),
                           order=order if order in ORDERS else "columns", clip=meta.get("clip", False),
                           static_groups=bool(d.get("static_groups", False)),
                           damp_percent=float(d.get("damp_percent", 0.01)), modules=flat,
                           lm_head=bool(d.get("lm_head", False)), lm_head_bits=head.get("bits", int(d["bits"])),
                           lm_head_group_size=head.get("group_size", int(d.get("group_size", 128))),
                           choices=choices if isinstance(choices, dict) else None)
    except KeyError as e:
        raise ValueError(f"{where}: quantization_config has no {e.args[0]!r}") from None
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: quantization_config: {e}") from None


def load_bnb_modules(model, config: QuantConfig, get_tensor, names, compute_dtype, device="cpu") -> set:
    """Build each bitsandbytes layer straight from the folder's tensors (bnb's own keys); returns the names used."""
    from .bnb import bnb_module_from_tensors

    used = set()
    needed = ["weight", "SCB"] if config.bits == 8 else ["weight", "weight.absmax", "weight.quant_map"]
    for i, name, lin in list(block_linears(model, config)):
        prefix = f"transformer.h.{i}.{name}."
        mine = [k for k in names if k.startswith(prefix)]
        absent = [prefix + k for k in needed if prefix + k not in mine]
        if config.bits == 4 and not any(k.startswith(prefix + "weight.quant_state.") for k in mine):
            absent.append(prefix + "weight.quant_state.bitsandbytes__*")
        if absent:
            raise ValueError(f"missing tensors {', '.join(absent)}")
        tensors = {k[len(prefix):]: get_tensor(k) for k in mine}
        set_module(model.transformer.h[i], name, bnb_module_from_tensors(
            config.bits, lin.in_features, lin.out_features, tensors, compute_dtype, config.bnb_4bit_quant_type, device))
        used.update(mine)
    model.quant_config = config
    return used


def quantized_skeleton(model, config: QuantConfig, device="meta"):
    """Swap empty GPTQLinear modules (on `device`) in for the Linears `config` quantizes."""
    for i, name, lin in list(block_linears(model, config)):
        set_module(model.transformer.h[i], name, GPTQLinear(lin.in_features, lin.out_features, config.bits,
                                                            config.group_size, bias=lin.bias is not None, device=device))
    if config.lm_head:
        lin = model.lm_head
        head = config.for_lm_head()
        model.lm_head = GPTQLinear(lin.in_features, lin.out_features, head.bits, head.group_size, bias=False,
                                   device=device)
    model.quant_config = config
    return model


def fill_quantized(model, dtype, get_tensor, device=None):
    """Read each GPTQLinear's stored tensors, build its kernel layout, and let qweight go where the layout
    holds the codes; one layer at a time, so only one layer's stored tensors sit next to the layouts."""
    for name, m in model.named_modules():
        if isinstance(m, GPTQLinear):
            m.load_state_dict({k: get_tensor(f"{name}.{k}").to(device) for k in m.state_dict()}, assign=True)
            m.prepare(dtype)
            release_freed_memory()  # hand the freed qweight and temporaries back, or fragmentation keeps them resident
    return model


def release_freed_memory():
    """glibc's malloc_trim(0): return freed heap pages to the system (a no-op without glibc)."""
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _libc_malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
