"""Weight-only int8/int4 quantization for SantaCoder (QuantLinear schemes, GPTQ, serialization): not built yet."""
