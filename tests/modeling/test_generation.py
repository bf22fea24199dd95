"""Generation: batching with left padding, sampling, EOS / stop strings, streaming, length limits."""

import logging

import pytest
import torch

from conftest import left_pad, reference_model, save_reference
from modeling import SantaCoderForCausalLM


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = save_reference(reference_model(multi_query=True), tmp_path_factory.mktemp("ref"))
    return SantaCoderForCausalLM.from_pretrained(path, dtype="fp32")


def test_batched_left_padded_equals_one_by_one(model):
    g = torch.Generator().manual_seed(7)
    prompts = [torch.randint(1, 97, (n,), generator=g).tolist() for n in (5, 12, 9)]
    ids, mask = left_pad(prompts)
    batched = model.generate(ids, attention_mask=mask, max_new_tokens=20, eos_token_id=[])
    for b, p in enumerate(prompts):
        single = model.generate(torch.tensor([p]), max_new_tokens=20, eos_token_id=[])
        assert batched[b, ids.shape[1]:].tolist() == single[0, len(p):].tolist()
    # and the logits of the padded batch equal the unpadded ones
    with torch.no_grad():
        lb = model(ids, attention_mask=mask).logits
        for b, p in enumerate(prompts):
            ls = model(torch.tensor([p])).logits
            assert torch.allclose(lb[b, -len(p):], ls[0], atol=1e-4)


def test_sampling_with_seed_is_reproducible_and_differs_across_seeds(model):
    x = torch.randint(1, 97, (2, 6), generator=torch.Generator().manual_seed(8))
    kw = dict(max_new_tokens=24, do_sample=True, temperature=1.5, eos_token_id=[])
    a = model.generate(x, seed=1, **kw)
    b = model.generate(x, seed=1, **kw)
    c = model.generate(x, seed=2, **kw)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    greedy = model.generate(x, max_new_tokens=24, eos_token_id=[])
    assert not torch.equal(a, greedy)


def test_temperature_reshapes_the_distribution(model):
    """Draw frequencies follow softmax(logits / temperature); through generate(), a tiny temperature is
    greedy and a large one is not."""
    from modeling.generation import sample_next

    logits = torch.tensor([[2.0, 1.0, 0.0]]).repeat(6000, 1)
    for t in (0.5, 1.0, 2.0):
        draws = sample_next(logits, True, t, None, None, torch.Generator().manual_seed(0))
        freq = torch.bincount(draws, minlength=3) / len(draws)
        assert torch.allclose(freq, torch.softmax(logits[0] / t, dim=-1), atol=0.02), (t, freq)
    x = torch.randint(1, 97, (2, 6), generator=torch.Generator().manual_seed(8))
    greedy = model.generate(x, max_new_tokens=24, eos_token_id=[])
    kw = dict(max_new_tokens=24, do_sample=True, seed=1, eos_token_id=[])
    assert torch.equal(model.generate(x, temperature=0.01, **kw), greedy)
    assert not torch.equal(model.generate(x, temperature=1.0, **kw), model.generate(x, temperature=3.0, **kw))


def test_top_k_1_is_greedy_and_top_p_restricts_the_support(model):
    x = torch.randint(1, 97, (1, 6), generator=torch.Generator().manual_seed(9))
    greedy = model.generate(x, max_new_tokens=16, eos_token_id=[])
    assert torch.equal(model.generate(x, max_new_tokens=16, do_sample=True, top_k=1, seed=3, eos_token_id=[]), greedy)
    assert torch.equal(model.generate(x, max_new_tokens=16, do_sample=True, top_p=1e-6, seed=3, eos_token_id=[]), greedy)
    from modeling.generation import sample_next

    logits = torch.tensor([[4.0, 3.0, 2.0, -10.0]])  # probs ~ .66 .24 .09 0
    draws = {int(sample_next(logits, True, 1.0, None, 0.85, torch.Generator().manual_seed(s))) for s in range(200)}
    assert draws == {0, 1}
    draws = {int(sample_next(logits, True, 1.0, 3, None, torch.Generator().manual_seed(s))) for s in range(200)}
    assert draws == {0, 1, 2}


def test_eos_stops_and_pads_finished_rows(model):
    x = torch.randint(1, 97, (2, 6), generator=torch.Generator().manual_seed(10))
    free = model.generate(x, max_new_tokens=20, eos_token_id=[])
    eos = int(free[0, 6 + 3])  # the 4th token of row 0 becomes "EOS"
    out = model.generate(x, max_new_tokens=20, eos_token_id=eos)
    row0 = out[0, 6:].tolist()
    first = row0.index(eos)
    assert first <= 3 and all(t == model.config.pad_token_id for t in row0[first + 1:])  # then padding
    if eos not in free[1, 6:].tolist():
        assert out[1, 6:].tolist() == free[1, 6:].tolist()


def test_max_new_tokens_past_n_positions_stops_cleanly(model, caplog):
    x = torch.randint(1, 97, (1, 60), generator=torch.Generator().manual_seed(11))  # n_positions = 64
    with caplog.at_level(logging.WARNING):
        out = model.generate(x, max_new_tokens=20, eos_token_id=[])
    assert out.shape == (1, 64)
    assert "n_positions=64" in caplog.text


def test_prompt_longer_than_n_positions(model, caplog):
    x = torch.randint(1, 97, (1, 70), generator=torch.Generator().manual_seed(12))
    with pytest.raises(ValueError, match="prompt of 70 tokens .* n_positions=64.*truncate"):
        model.generate(x, max_new_tokens=4)
    with caplog.at_level(logging.WARNING):
        out = model.generate(x, max_new_tokens=4, truncate=True, eos_token_id=[])
    assert out.shape == (1, 64) and torch.equal(out[0, :60], x[0, -60:])
    assert "left-truncated" in caplog.text
    with pytest.raises(ValueError, match="right padding"):
        model.generate(x[:, :8], attention_mask=torch.tensor([[1] * 6 + [0] * 2]))
    with pytest.raises(ValueError, match="longer than the model's n_positions=64"):
        model(x)


class Recorder:
    """A transformers-style streamer (put/end)."""

    def __init__(self):
        self.chunks, self.ended = [], False

    def put(self, ids):
        self.chunks.append(ids.clone())

    def end(self):
        self.ended = True


def test_streamer_object_receives_prompt_then_each_token(model):
    x = torch.randint(1, 97, (1, 6), generator=torch.Generator().manual_seed(13))
    rec = Recorder()
    out = model.generate(x, max_new_tokens=10, streamer=rec, eos_token_id=[])
    assert rec.ended and torch.equal(rec.chunks[0], x)
    assert torch.cat([c.view(-1) for c in rec.chunks[1:]]).tolist() == out[0, 6:].tolist()


@pytest.mark.parametrize("kw,field", [
    (dict(max_new_tokens=0), "max_new_tokens"), (dict(max_new_tokens=-5), "max_new_tokens"),
    (dict(max_new_tokens=2.5), "max_new_tokens"), (dict(temperature=-1.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"), (dict(temperature=float("inf")), "temperature"),
    (dict(top_p=0.0), "top_p"), (dict(top_p=-1.0), "top_p"), (dict(top_p=1.5), "top_p"),
    (dict(top_p=float("nan")), "top_p"), (dict(top_k=-3), "top_k"), (dict(top_k=1.5), "top_k"),
    (dict(stop=[""]), "stop"), (dict(stop=[3]), "stop"),
])
def test_out_of_range_arguments_are_refused_before_any_work(model, kw, field):
    from modeling.generation import GenerationArgumentError

    streamed = []
    with pytest.raises(GenerationArgumentError) as e:
        model.generate(torch.tensor([[1, 2, 3]]), streamer=streamed.append, **{"do_sample": True, **kw})
    assert e.value.field == field and str(e.value).startswith(field) and "\n" not in str(e.value)
    assert streamed == []


def test_zero_and_underflowing_temperatures_are_greedy(model):
    x = torch.randint(1, 97, (2, 6), generator=torch.Generator().manual_seed(10))
    greedy = model.generate(x, max_new_tokens=16, eos_token_id=[])
    # 2e-38 and 1e-30 are sampled: logits / 2e-38 overflow fp32 unless they are first shifted to a max of 0
    for t in (0.0, 1e-45, 1e-300, 2e-38, 1e-30):
        assert torch.equal(model.generate(x, max_new_tokens=16, do_sample=True, temperature=t, seed=0,
                                          eos_token_id=[]), greedy), t
