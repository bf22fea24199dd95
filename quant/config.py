"""QuantConfig: the one place where quantization defaults live (the CLI reads them from here)."""

from __future__ import annotations

from dataclasses import dataclass

BLOCK_LINEARS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
METHODS = ("rtn", "gptq", "bnb")


@dataclass
class QuantConfig:
    method: str = "gptq"  # rtn | gptq | bnb
    bits: int = 4  # 4 | 8
    group_size: int | None = None  # columns per scale, -1 = one per row; None = 128 for int4, -1 for int8
    sym: bool = True
    act_order: bool = False  # GPTQ's desc_act: quantize columns by decreasing Hessian diagonal
    static_groups: bool = False  # act-order with groups fixed in column order beforehand (g_idx stays sorted)
    damp_percent: float = 0.01  # GPTQ damping, a fraction of the mean Hessian diagonal
    modules: tuple = BLOCK_LINEARS  # Linear names inside each block that are quantized
    lm_head: bool | None = None  # quantize an untied copy of lm_head; None = yes for int4 (rtn/gptq)
    bnb_4bit_quant_type: str = "nf4"  # method="bnb", bits=4: nf4 or fp4

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not supported; use one of {', '.join(METHODS)}")
        if self.bits not in (4, 8):
            raise ValueError(f"bits={self.bits} is not supported; use 4 or 8")
        if self.bnb_4bit_quant_type not in ("nf4", "fp4"):
            raise ValueError(f"bnb_4bit_quant_type={self.bnb_4bit_quant_type!r} is not supported; use nf4 or fp4")
        if self.group_size is None:  # int8 per channel is what the fast CPU kernel takes
            self.group_size = 128 if self.bits == 4 else -1
        if self.lm_head is None:
            self.lm_head = self.bits == 4 and self.method != "bnb"
        if self.lm_head and self.method == "bnb":
            raise ValueError("lm_head=True is not supported with method='bnb' (--lm-head): bnb folders keep lm_head tied")
        if not self.damp_percent > 0:
            raise ValueError(f"damp_percent={self.damp_percent} must be > 0 (--damp-percent)")
        if self.group_size != -1 and self.group_size <= 0:
            raise ValueError(f"group_size={self.group_size} must be positive or -1 (one group per row)")
