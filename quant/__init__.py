"""Weight-only int8/int4 quantization for SantaCoder: primitives, QuantLinear schemes, quantize_."""

from .api import quantize_
from .config import QuantConfig
from .linear import GPTQLinear, QuantLinear

__all__ = ["QuantConfig", "quantize_", "QuantLinear", "GPTQLinear"]
