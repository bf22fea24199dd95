"""The static-shape decode step (modeling/decode.py): same logits and tokens as the growing-cache loop,
on CPU (eager) and as a CUDA graph on a GPU."""

import pytest
import torch

from conftest import left_pad, reference_model, save_reference, sqnr
from modeling import SantaCoderConfig, SantaCoderForCausalLM
from modeling.decode import StaticDecoder
from modeling.generation import decode_mode
from quant import QuantConfig, quantize_

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def left_padded(vocab, lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return left_pad([torch.randint(1, vocab, (n,), generator=g).tolist() for n in lengths])


def dynamic_logits(model, ids, mask, tokens):
    """Logits of the growing-cache loop fed `tokens` (n, B): the reference for the static step."""
    B, T = ids.shape
    cache = model.new_cache(B, T + len(tokens))
    out = [model(ids, mask, cache=cache, last_only=True).logits[:, -1]]
    for t in tokens[:-1]:
        mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1) if mask is not None else None
        out.append(model(t[:, None], mask, cache=cache, last_only=True).logits[:, -1])
    return torch.stack(out)


def static_logits(model, ids, mask, tokens, mode):
    dec = StaticDecoder(model, ids.shape[0], ids.shape[1] + len(tokens), mode=mode)
    out = [dec.prefill(ids, mask)]
    for t in tokens[:-1]:
        out.append(dec.step(t).clone())  # clone: on the graph path the step returns a reused buffer
    return torch.stack(out), dec


@pytest.mark.parametrize("multi_query", [True, False])
def test_static_step_matches_dynamic_with_left_padding(tmp_path, multi_query):
    model = SantaCoderForCausalLM.from_pretrained(save_reference(reference_model(multi_query), tmp_path), dtype="fp32")
    ids, mask = left_padded(97, [5, 12, 9])
    tokens = torch.randint(1, 97, (10, 3), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = dynamic_logits(model, ids, mask, tokens)
        got, dec = static_logits(model, ids, mask, tokens, "eager")
    assert dec.cache.length == ids.shape[1] + len(tokens) - 1
    assert torch.allclose(got, ref, atol=1e-4), (got - ref).abs().max()
    # and generate() gives the same tokens through either loop (greedy, batched, padded)
    a = model.generate(ids, attention_mask=mask, max_new_tokens=16, eos_token_id=[], decode="eager")
    b = model.generate(ids, attention_mask=mask, max_new_tokens=16, eos_token_id=[], decode="dynamic")
    assert torch.equal(a, b)


@pytest.mark.parametrize("bits,group_size", [(4, 128), (8, -1)])
def test_static_step_on_quantized_fixture(tiny_path, bits, group_size):
    """The CPU int4/int8 kernels in the static step: the same greedy tokens as the dynamic loop."""
    model = SantaCoderForCausalLM.from_pretrained(tiny_path)  # bf16 on CPU
    quantize_(model, QuantConfig(method="rtn", bits=bits, group_size=group_size))
    x = model.tokenizer("def parse_args(argv):\n    parser = ", return_tensors="pt").input_ids
    a = model.generate(x, max_new_tokens=24, eos_token_id=[], decode="eager")
    b = model.generate(x, max_new_tokens=24, eos_token_id=[], decode="dynamic")
    assert torch.equal(a, b)


def one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value), str(e.value)


def test_decode_mode_choice_and_errors(tmp_path):
    model = SantaCoderForCausalLM.from_pretrained(save_reference(reference_model(), tmp_path), dtype="fp32")
    assert decode_mode(model, 1, None) == "dynamic"  # CPU: the static step measured no faster
    one_line_error("decode='fast' is not one of", model.generate, [[1, 2, 3]], max_new_tokens=2, decode="fast")
    one_line_error("needs a CUDA model", StaticDecoder, model, 1, 8, mode="graph")
    dec = StaticDecoder(model, 1, 4, mode="eager")
    logits = dec.prefill(torch.tensor([[1, 2, 3]]))
    dec.step(logits.argmax(-1))
    one_line_error("KV cache of 4 positions is full", dec.step, logits.argmax(-1))
    one_line_error("batch of 2 prompts", dec.prefill, torch.tensor([[1, 2], [3, 4]]))
    one_line_error("attention_mask row 1 is all padding", model.generate, [[1, 2], [0, 0]],
                   attention_mask=[[1, 1], [0, 0]], max_new_tokens=2)


def test_a_failed_graph_capture_decodes_eagerly_with_a_warning(tmp_path, monkeypatch, caplog):
    """Capture failing (a stand-in for a kernel CUDA cannot record, driven on CPU): a warning, the eager
    static step's logits, and no further graph attempts on that model."""
    import contextlib
    import logging
    import types

    model = SantaCoderForCausalLM.from_pretrained(save_reference(reference_model(), tmp_path), dtype="fp32")
    ids, mask = left_padded(97, [5, 9])
    tokens = torch.randint(1, 97, (8, 2), generator=torch.Generator().manual_seed(2))

    def refuse(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing\nsecond line")

    monkeypatch.setattr(torch.cuda, "device", lambda dev: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "Stream", refuse)
    with torch.inference_mode():
        eager, _ = static_logits(model, ids, mask, tokens, "eager")
        dec = StaticDecoder(model, 2, ids.shape[1] + len(tokens), mode="eager")
        dec.mode = "graph"  # as built for a GPU model
        with caplog.at_level(logging.WARNING):
            out = [dec.prefill(ids, mask)] + [dec.step(t).clone() for t in tokens[:-1]]
    assert "CUDA graph capture failed (RuntimeError: operation not permitted when stream is capturing); " \
           "decoding eagerly" in caplog.text
    assert dec.mode == "eager" and dec.graph is None and torch.equal(torch.stack(out), eager)
    gpu = types.SimpleNamespace(device=torch.device("cuda"))
    assert decode_mode(gpu, 1, None) == "graph" and decode_mode(gpu, 9, None) == "dynamic"
    gpu.graphs_failed = model.graphs_failed
    assert decode_mode(gpu, 1, None) == "dynamic"  # the model that failed once is not captured again


def test_only_layers_with_a_fixed_kernel_are_graph_safe():
    """GPTQ's dequantize fallback reads values back to the host (not capturable): it opts out of graphs."""
    from quant import GPTQLinear

    lin = torch.nn.Linear(256, 128)
    assert GPTQLinear.from_linear(lin, 4, 128).prepare(torch.bfloat16).graph_safe
    fallback = GPTQLinear.from_linear(lin, 8, 128).prepare(torch.bfloat16)  # int8 with groups: no CPU kernel
    assert fallback.kernel == "dequantize" and not fallback.graph_safe


# -- on a GPU -------------------------------------------------------------------------------------
def gpu_model(bits, group_size):
    """2 layers wide enough for the CUDA kernels (tinygemm needs in_features % 1024 == 0), fp16."""
    cfg = SantaCoderConfig(n_layer=2, n_embd=1024, n_head=8, vocab_size=1024, n_positions=512)
    model = SantaCoderForCausalLM.from_config(cfg, dtype=torch.float16, device="cuda", seed=3)
    if bits:
        quantize_(model, QuantConfig(method="rtn", bits=bits, group_size=group_size))
    return model


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("bits,group_size,kernel", [
    (None, None, None), (8, -1, "cuda-int8"), (4, 128, "cuda-int4"), (8, 128, "dequantize"),
])
def test_cuda_graph_replays_the_static_step(bits, group_size, kernel):
    """The graph replays the eager static step exactly; a model with the dequantize fallback (not
    capturable) runs the static step eagerly instead, with no failed capture."""
    model = gpu_model(bits, group_size)
    if kernel:
        assert {m.kernel for m in model.modules() if hasattr(m, "kernel")} == {kernel}
    assert decode_mode(model, 1, None) == "graph" and decode_mode(model, 9, None) == "dynamic"
    ids, mask = left_padded(1024, [17, 30])
    ids, mask = ids.cuda(), mask.cuda()
    tokens = torch.randint(1, 1024, (12, 2), generator=torch.Generator().manual_seed(2)).cuda()
    with torch.inference_mode():
        eager, _ = static_logits(model, ids, mask, tokens, "eager")
        graph, dec = static_logits(model, ids, mask, tokens, "graph")
        dynamic = dynamic_logits(model, ids, mask, tokens)
    assert (dec.graph is None) == (kernel == "dequantize") and not getattr(model, "graphs_failed", False)
    assert torch.equal(graph, eager)  # the same kernels replayed
    assert graph.isfinite().all() and sqnr(dynamic, graph) > 40
    a = model.generate(ids, attention_mask=mask, max_new_tokens=20, eos_token_id=[])  # graph (auto)
    b = model.generate(ids, attention_mask=mask, max_new_tokens=20, eos_token_id=[], decode="dynamic")
    assert (a == b).float().mean() > 0.95  # fp16 ties may flip a late token; the logits are checked above


@pytest.mark.gpu
@cuda
def test_fixture_on_cuda_matches_cpu_fp32(tiny_path):
    """fp16 on the GPU, graphs on: the trained fixture's greedy completion is the fp32 CPU one."""
    ref = SantaCoderForCausalLM.from_pretrained(tiny_path, dtype="fp32")
    model = SantaCoderForCausalLM.from_pretrained(tiny_path, device="cuda")
    assert model.dtype == torch.float16
    x = ref.tokenizer("import os\n\n\ndef list_files(root):\n", return_tensors="pt").input_ids
    expected = ref.generate(x, max_new_tokens=48, eos_token_id=[])
    assert torch.equal(model.generate(x, max_new_tokens=48, eos_token_id=[]).cpu(), expected)


@pytest.mark.gpu
@cuda
def test_int4_folder_generates_a_2048_token_context_in_2_gib(tmp_path):
    """The full-size model, int4 g128 + lm_head, quantized on CPU and saved; loaded onto the GPU it
    generates 512 tokens after a 1536-token prompt with under 2 GiB allocated at any time, loading included."""
    cpu = SantaCoderForCausalLM.from_config(SantaCoderConfig(), dtype=torch.bfloat16)
    quantize_(cpu, QuantConfig(method="rtn", bits=4, group_size=128, lm_head=True))
    cpu.save_pretrained(str(tmp_path / "int4"))
    del cpu
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = SantaCoderForCausalLM.from_pretrained(str(tmp_path / "int4"), device="cuda")
    assert {m.kernel for m in model.modules() if hasattr(m, "kernel")} == {"cuda-int4"}
    x = torch.randint(0, 49152, (1, 1536), generator=torch.Generator().manual_seed(4)).cuda()
    out = model.generate(x, max_new_tokens=512, eos_token_id=[])
    assert out.shape == (1, 2048)
    assert torch.cuda.max_memory_allocated() < 2 * 2**30, torch.cuda.max_memory_allocated() / 2**20
