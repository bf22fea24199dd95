"""QuantConfig: the one place where quantization defaults live (the CLI reads them from here)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

BLOCK_LINEARS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
METHODS = ("rtn", "gptq", "bnb")
ORDERS = ("auto", "columns", "group-aware", "act-order")
# act-order is left out of the per-Linear choice: on the trained fixture it had the smallest output error in 13 of
# 16 Linears, yet the model it gave was worse (+2.7% perplexity against +1.0% for group-aware + clip search)
AUTO_ORDERS = ("columns", "group-aware")


@dataclass
class QuantConfig:
    method: str = "gptq"  # rtn | gptq | bnb
    bits: int = 4  # 4 | 8
    group_size: int | None = None  # columns per scale, -1 = one per row; None = 128 for int4, -1 for int8
    sym: bool = True
    # GPTQ's column order, one for every Linear: "group-aware" (groups stay whole: g_idx static), "columns"
    # (stored order) or "act-order" (desc_act: g_idx scattered); or "auto": per Linear, the order and clip
    # setting with the smallest output error ||WX - QX||^2 (benchmarks/bench_gptq_peers.py measures each);
    # None = "group-aware" (or "act-order" with act_order=True)
    order: str | None = None
    act_order: bool = False  # the same as order="act-order" (GPTQ's desc_act)
    clip: bool = True  # search each group's range, weighted by the Hessian diagonal (RTN: unweighted); auto tries both
    static_groups: bool = False  # act-order with groups fixed in column order beforehand (g_idx stays sorted)
    damp_percent: float = 0.01  # GPTQ damping, a fraction of the mean Hessian diagonal
    modules: tuple = BLOCK_LINEARS  # Linear names inside each block that are quantized
    lm_head: bool | None = None  # quantize an untied copy of lm_head; None = yes for int4 (rtn/gptq)
    lm_head_bits: int | None = None  # its bits when they differ (8: per channel, stored as a GPTQModel `dynamic` override)
    # its group size when it differs from the blocks' (a `dynamic` override too); None = the blocks' for an int4
    # lm_head, per channel (-1) for int8. On the trained fixture groups of 32 cost 0.60 point of perplexity on
    # average over 4 calibration seeds against 0.91 for 128 but not in every seed (+0.13 / +0.36 / +0.85 / +1.07
    # against +1.18 / +1.26 / +0.12 / +1.07), so 128 stays the default
    lm_head_group_size: int | None = None
    bnb_4bit_quant_type: str = "nf4"  # method="bnb", bits=4: nf4 or fp4
    choices: dict | None = None  # filled by GPTQ: module name -> "order[+clip]" it kept (saved in the folder)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not supported; use one of {', '.join(METHODS)}")
        if self.bits not in (4, 8):
            raise ValueError(f"bits={self.bits} is not supported; use 4 or 8")
        if self.bnb_4bit_quant_type not in ("nf4", "fp4"):
            raise ValueError(f"bnb_4bit_quant_type={self.bnb_4bit_quant_type!r} is not supported; use nf4 or fp4")
        if self.act_order:
            if self.order not in (None, "act-order"):
                raise ValueError(f"act_order=True contradicts order={self.order!r} (--act-order, --order)")
            self.order = "act-order"
        unknown = [m for m in self.modules if m not in BLOCK_LINEARS]
        if unknown:
            raise ValueError(f"modules: {', '.join(map(str, unknown))} not a block Linear; use some of {', '.join(BLOCK_LINEARS)}")
        self.modules = tuple(m for m in BLOCK_LINEARS if m in self.modules)  # execution order (GPTQ's true sequential)
        self.order = self.order or "group-aware"
        if self.order not in ORDERS:
            raise ValueError(f"order={self.order!r} is not supported; use one of {', '.join(ORDERS)}")
        self.act_order = self.order == "act-order"
        if self.group_size is None:  # int8 per channel is what the fast CPU kernel takes
            self.group_size = 128 if self.bits == 4 else -1
        if self.lm_head is None:
            self.lm_head = self.bits == 4 and self.method != "bnb"
        if self.lm_head_bits is None:
            self.lm_head_bits = self.bits
        if self.lm_head_bits not in (4, 8):
            raise ValueError(f"lm_head_bits={self.lm_head_bits} is not supported; use 4 or 8 (--lm-head-bits)")
        if self.lm_head and self.method == "bnb":
            raise ValueError("lm_head=True is not supported with method='bnb' (--lm-head): bnb folders keep lm_head tied")
        if not self.damp_percent > 0:
            raise ValueError(f"damp_percent={self.damp_percent} must be > 0 (--damp-percent)")
        if self.group_size != -1 and self.group_size <= 0:
            raise ValueError(f"group_size={self.group_size} must be positive or -1 (one group per row)")
        if self.lm_head_group_size is None:
            same = self.lm_head_bits == self.bits
            self.lm_head_group_size = self.group_size if same else -1 if self.lm_head_bits == 8 else 128
        if self.lm_head_group_size != -1 and self.lm_head_group_size <= 0:
            raise ValueError(f"lm_head_group_size={self.lm_head_group_size} must be positive or -1 (--lm-head-group-size)")

    def candidates(self) -> list:
        """The (order, clip) settings GPTQ tries on each Linear; the first of equal error wins."""
        orders = AUTO_ORDERS if self.order == "auto" else (self.order,)
        clips = (False, True) if self.order == "auto" else (bool(self.clip),)
        return [(o, c) for c in clips for o in orders]

    def for_lm_head(self) -> "QuantConfig":
        """The settings of the quantized lm_head: lm_head_bits and lm_head_group_size."""
        if self.lm_head_bits == self.bits and self.lm_head_group_size == self.group_size:
            return self
        return dataclasses.replace(self, bits=self.lm_head_bits, group_size=self.lm_head_group_size, choices=None)
