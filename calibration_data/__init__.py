"""Bundled code corpus and loaders for GPTQ calibration: not built yet."""
